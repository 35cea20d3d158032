//! Errors in the portal. Handlers return [`UiResult`] and use `?` on use cases; whatever goes
//! wrong, a browser gets an HTML page in its language, never a JSON problem document: the
//! [`error_pages`] layer turns every error answer on a portal path (a use case's error, an
//! extractor's rejection, the router's 404 and 405, the body limit) into one.

use super::i18n::{Lang, Tr};
use crate::auth::authenticate;
use crate::error::{ApiError, RequestId};
use crate::state::AppState;
use askama::Template;
use axum::body::Body;
use axum::extract::{FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{Html, IntoResponse, Redirect, Response};
use haechi_app::rbac::Permission;
use haechi_app::{AppError, AuthFailure, Principal};
use std::marker::PhantomData;

/// An error a portal handler returns: nobody signed in goes to the sign-in page, anything
/// else answers with its status and (through [`error_pages`]) an HTML page.
#[derive(Debug)]
pub enum UiError {
    SignIn,
    Api(ApiError),
}

pub type UiResult<T = Response> = Result<T, UiError>;

impl From<AppError> for UiError {
    fn from(e: AppError) -> UiError {
        match e {
            AppError::Unauthenticated(AuthFailure::Missing) => UiError::SignIn,
            other => UiError::Api(other.into()),
        }
    }
}

impl From<ApiError> for UiError {
    fn from(e: ApiError) -> UiError {
        match e {
            ApiError::Unauthenticated => UiError::SignIn,
            other => UiError::Api(other),
        }
    }
}

impl From<askama::Error> for UiError {
    fn from(e: askama::Error) -> UiError {
        UiError::Api(ApiError::Internal(format!("template: {e}")))
    }
}

impl IntoResponse for UiError {
    fn into_response(self) -> Response {
        match self {
            UiError::SignIn => Redirect::to("/login").into_response(),
            UiError::Api(e) => e.into_response(),
        }
    }
}

/// A permission a page needs, as a type, for [`Signed`].
pub trait Need {
    const PERMISSION: Permission;
}

macro_rules! need {
    ($($name:ident => $perm:ident),* $(,)?) => {$(
        #[doc = concat!("Pages that need `", stringify!($perm), "`.")]
        #[derive(Debug, Clone, Copy)]
        pub struct $name;
        impl Need for $name {
            const PERMISSION: Permission = Permission::$perm;
        }
    )*};
}

need!(Simulate => Simulate, Trade => Trade, OwnAccount => OwnAccount, ReadLogs => ReadLogs, ManageUsers => ManageUsers, ManagePolicies => ManagePolicies);

/// Someone signed in who holds `P`'s permission; otherwise the handler never runs (sign-in
/// page when nobody is signed in, an error page when the role does not allow it).
#[derive(Debug, Clone)]
pub struct Signed<P>(pub Principal, pub PhantomData<P>);

impl<P: Need + Send + Sync> FromRequestParts<AppState> for Signed<P> {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let p = authenticate(parts, state).await?;
        p.require(P::PERMISSION)?;
        Ok(Signed(p, PhantomData))
    }
}

/// Whoever is signed in, if anyone (pages that look different signed in or out).
#[derive(Debug, Clone)]
pub struct MaybeSigned(pub Option<Principal>);

impl FromRequestParts<AppState> for MaybeSigned {
    type Rejection = UiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(MaybeSigned(authenticate(parts, state).await.ok()))
    }
}

#[derive(Template)]
#[template(path = "portal/error.html")]
struct ErrorPage<'a> {
    t: Tr,
    user: Option<super::NavUser>,
    csrf: &'a str,
    title: &'static str,
    explain: &'static str,
    request_id: &'a str,
}

/// The page's message keys for an error answer.
fn keys(status: StatusCode, problem_type: &str) -> (&'static str, &'static str) {
    match status {
        StatusCode::FORBIDDEN if problem_type.ends_with("/csrf") => ("error.csrf.title", "error.csrf.text"),
        StatusCode::FORBIDDEN => ("error.forbidden.title", "error.forbidden.text"),
        StatusCode::NOT_FOUND => ("error.not_found.title", "error.not_found.text"),
        StatusCode::CONFLICT => ("error.conflict.title", "error.conflict.text"),
        StatusCode::PAYLOAD_TOO_LARGE => ("error.too_large.title", "error.too_large.text"),
        StatusCode::TOO_MANY_REQUESTS | StatusCode::SERVICE_UNAVAILABLE => {
            ("error.too_many.title", "error.too_many.text")
        }
        StatusCode::UNPROCESSABLE_ENTITY => ("error.invalid.title", "error.invalid.text"),
        StatusCode::METHOD_NOT_ALLOWED => ("error.method.title", "error.method.text"),
        s if s.is_server_error() => ("error.internal.title", "error.internal.text"),
        _ => ("error.bad_request.title", "error.bad_request.text"),
    }
}

/// Paths that are not the portal's: the API (problem documents are its contract), docs and
/// operations endpoints (scraped by machines).
fn is_portal_path(path: &str) -> bool {
    !(path.starts_with("/api/") || matches!(path, "/healthz" | "/readyz" | "/metrics"))
}

/// Turns every error answer on a portal path that is not already a page into an HTML error
/// page in the request's language, keeping its status and headers (`Retry-After`, cookies).
pub async fn error_pages(req: Request, next: Next) -> Response {
    if !is_portal_path(req.uri().path()) {
        return next.run(req).await;
    }
    let (lang, lang_cookie) = Lang::negotiate(req.uri().query(), req.headers());
    let request_id = req.extensions().get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let resp = next.run(req).await;
    let status = resp.status();
    let is_html = resp
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("text/html"));
    if !(status.is_client_error() || status.is_server_error()) || is_html {
        return resp;
    }
    let (mut parts, body) = resp.into_parts();
    let problem_type = match axum::body::to_bytes(body, 64 * 1024).await {
        Ok(bytes) => serde_json::from_slice::<serde_json::Value>(&bytes)
            .ok()
            .and_then(|v| v.get("type").and_then(|t| t.as_str()).map(str::to_owned))
            .unwrap_or_default(),
        Err(_) => String::new(),
    };
    let (title, explain) = keys(status, &problem_type);
    let page = ErrorPage { t: Tr::new(lang), user: None, csrf: "", title, explain, request_id: &request_id };
    let html = page.render().unwrap_or_else(|_| format!("<!doctype html><title>{status}</title><h1>{status}</h1>"));
    parts.headers.remove(header::CONTENT_LENGTH);
    parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
    if let Some(c) = lang_cookie {
        parts.headers.append(header::SET_COOKIE, c);
    }
    let mut resp = Response::from_parts(parts, Body::from(Html(html).0));
    // The page is for people; the problem marker no longer describes the body.
    resp.extensions_mut().remove::<crate::error::ProblemMarker>();
    resp
}
