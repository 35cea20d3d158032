//! One error type for the HTTP layer, rendered as RFC 9457 `application/problem+json`.
//! 5xx bodies stay generic: the cause is logged once, with the request id that the body
//! carries, so an operator can find it.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use haechi_app::{AppError, AuthFailure, FieldProblem};
use serde::Serialize;
use std::collections::BTreeMap;
use utoipa::ToSchema;

/// A problem detail (RFC 9457).
#[derive(Debug, Clone, Serialize, ToSchema)]
pub struct Problem {
    /// A URI reference naming the problem type (`/problems/validation`).
    #[serde(rename = "type")]
    pub kind: String,
    pub title: String,
    pub status: u16,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// The request id, also in the `x-request-id` response header.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub request_id: Option<String>,
    /// Field-level problems, for validation errors.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
}

/// One invalid field: a JSON-pointer-like path (`email`, `scopes[1]`) and what is wrong.
#[derive(Debug, Clone, Serialize, ToSchema, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    /// What is wrong, in English.
    pub message: String,
    /// Scenario problems only: a stable code (`between`, `required`, … listed in
    /// docs/scenarios.md) so a client can word the message in its own language.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
    /// The values the message quotes, by placeholder name (`min`, `max`, `value`).
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub params: BTreeMap<String, String>,
}

impl FieldError {
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError { field: field.into(), message: message.into(), code: None, params: BTreeMap::new() }
    }
}

impl From<FieldProblem> for FieldError {
    fn from(p: FieldProblem) -> FieldError {
        FieldError { field: p.field, message: p.message, code: p.code, params: p.params }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("validation failed")]
    Validation(Vec<FieldError>),
    #[error("bad request: {0}")]
    BadRequest(String),
    #[error("authentication required")]
    Unauthenticated,
    /// Login failures: one message for unknown email, wrong password and disabled account.
    #[error("invalid credentials")]
    InvalidCredentials,
    #[error("a one-time code is required")]
    MfaRequired,
    #[error("forbidden: {0}")]
    Forbidden(&'static str),
    #[error("CSRF token missing or wrong")]
    Csrf,
    #[error("not found")]
    NotFound,
    #[error("conflict: {0}")]
    Conflict(String),
    #[error("too many attempts")]
    TooManyRequests { retry_after_secs: u64 },
    #[error("payload too large")]
    PayloadTooLarge,
    /// A WebSocket endpoint asked without a WebSocket handshake.
    #[error("upgrade required: {0}")]
    UpgradeRequired(String),
    #[error("busy")]
    Unavailable { retry_after_secs: u64 },
    #[error("quota: {0}")]
    Quota(String),
    #[error("internal error: {0}")]
    Internal(String),
}

/// How the use cases' errors answer over HTTP (the table is in docs/architecture.md).
impl From<AppError> for ApiError {
    fn from(e: AppError) -> ApiError {
        match e {
            AppError::NotFound => ApiError::NotFound,
            AppError::Forbidden(why) => ApiError::Forbidden(why),
            AppError::Conflict(what) => ApiError::Conflict(what),
            AppError::Invalid(problems) => ApiError::Validation(problems.into_iter().map(FieldError::from).collect()),
            AppError::BadRequest(what) => ApiError::BadRequest(what),
            AppError::Unauthenticated(AuthFailure::Missing) => ApiError::Unauthenticated,
            AppError::Unauthenticated(AuthFailure::InvalidCredentials) => ApiError::InvalidCredentials,
            AppError::Unauthenticated(AuthFailure::MfaRequired) => ApiError::MfaRequired,
            AppError::Unauthenticated(AuthFailure::Csrf) => ApiError::Csrf,
            AppError::RateLimited { retry_after } => {
                ApiError::TooManyRequests { retry_after_secs: retry_after.as_secs() }
            }
            AppError::Unavailable { retry_after } => ApiError::Unavailable { retry_after_secs: retry_after.as_secs() },
            AppError::Quota(what) => ApiError::Quota(what),
            internal @ AppError::Internal { .. } => ApiError::Internal(internal.to_string()),
        }
    }
}

/// The request id of the request being answered, set by the request-id middleware.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

impl ApiError {
    fn parts(&self) -> (StatusCode, &'static str, &'static str) {
        match self {
            ApiError::Validation(_) => {
                (StatusCode::UNPROCESSABLE_ENTITY, "validation", "입력값이 올바르지 않습니다 Invalid input")
            }
            ApiError::BadRequest(_) => (StatusCode::BAD_REQUEST, "bad-request", "잘못된 요청 Bad request"),
            ApiError::Unauthenticated => {
                (StatusCode::UNAUTHORIZED, "unauthenticated", "로그인이 필요합니다 Authentication required")
            }
            ApiError::InvalidCredentials => (
                StatusCode::UNAUTHORIZED,
                "invalid-credentials",
                "이메일 또는 비밀번호가 올바르지 않습니다 Invalid email or password",
            ),
            ApiError::MfaRequired => {
                (StatusCode::UNAUTHORIZED, "mfa-required", "일회용 코드가 필요합니다 One-time code required")
            }
            ApiError::Forbidden(_) => (StatusCode::FORBIDDEN, "forbidden", "권한이 없습니다 Forbidden"),
            ApiError::Csrf => {
                (StatusCode::FORBIDDEN, "csrf", "CSRF 토큰이 없거나 틀렸습니다 CSRF token missing or wrong")
            }
            ApiError::NotFound => (StatusCode::NOT_FOUND, "not-found", "찾을 수 없습니다 Not found"),
            ApiError::Conflict(_) => (StatusCode::CONFLICT, "conflict", "이미 존재합니다 Already exists"),
            ApiError::TooManyRequests { .. } => {
                (StatusCode::TOO_MANY_REQUESTS, "too-many-requests", "시도가 너무 많습니다 Too many attempts")
            }
            ApiError::PayloadTooLarge => {
                (StatusCode::PAYLOAD_TOO_LARGE, "payload-too-large", "요청이 너무 큽니다 Payload too large")
            }
            ApiError::Quota(_) => (StatusCode::TOO_MANY_REQUESTS, "quota", "한도를 넘었습니다 Quota exceeded"),
            ApiError::UpgradeRequired(_) => (
                StatusCode::UPGRADE_REQUIRED,
                "upgrade-required",
                "웹소켓 연결이 필요합니다 WebSocket handshake required",
            ),
            ApiError::Unavailable { .. } => {
                (StatusCode::SERVICE_UNAVAILABLE, "busy", "잠시 후 다시 시도하세요 Busy, retry shortly")
            }
            ApiError::Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal", "서버 오류 Internal server error"),
        }
    }

    /// The problem body, without the request id (added by the middleware that knows it).
    #[must_use]
    pub fn problem(&self) -> Problem {
        let (status, kind, title) = self.parts();
        let detail = match self {
            ApiError::BadRequest(d) | ApiError::Conflict(d) | ApiError::Quota(d) | ApiError::UpgradeRequired(d) => {
                Some(d.clone())
            }
            ApiError::Forbidden(d) => Some((*d).to_owned()),
            ApiError::TooManyRequests { retry_after_secs } => Some(format!("retry after {retry_after_secs} s")),
            _ => None,
        };
        let errors = match self {
            ApiError::Validation(e) => e.clone(),
            _ => Vec::new(),
        };
        Problem {
            kind: format!("/problems/{kind}"),
            title: title.to_owned(),
            status: status.as_u16(),
            detail,
            request_id: None,
            errors,
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(cause) = &self {
            // Logged here once; the body says nothing about the cause.
            tracing::error!(%cause, "internal error");
        }
        let problem = self.problem();
        let status = StatusCode::from_u16(problem.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        let mut resp = (status, axum::Json(problem)).into_response();
        resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let ApiError::TooManyRequests { retry_after_secs } | ApiError::Unavailable { retry_after_secs } = self
            && let Ok(v) = HeaderValue::from_str(&retry_after_secs.max(1).to_string())
        {
            resp.headers_mut().insert(header::RETRY_AFTER, v);
        }
        // Lets the request-id middleware fill in `request_id` without re-parsing.
        resp.extensions_mut().insert(ProblemMarker);
        resp
    }
}

/// Marks responses whose body is a problem document.
#[derive(Debug, Clone, Copy)]
pub struct ProblemMarker;

pub type ApiResult<T> = Result<T, ApiError>;
