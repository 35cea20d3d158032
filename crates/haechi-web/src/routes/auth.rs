//! Registration, login and logout.

use crate::auth::{Caller, ClientInfo, SESSION_COOKIE};
use crate::error::{ApiError, ApiResult, Problem};
use crate::json::ApiJson;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use haechi_app::accounts::{self, Registration, SignIn};
use haechi_app::sessions::{self, StartedSession};
use haechi_app::{Account, Role};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct RegisterRequest {
    /// Unique, case-insensitive.
    pub email: String,
    pub display_name: String,
    /// At least 12 characters, not containing the email or display name.
    pub password: String,
}

/// A user as the API shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct UserView {
    pub id: i64,
    pub email: String,
    pub display_name: String,
    pub role: Role,
    pub mfa_enabled: bool,
    pub disabled: bool,
    /// Unix milliseconds.
    pub created_at: i64,
}

impl From<&Account> for UserView {
    fn from(u: &Account) -> UserView {
        UserView {
            id: u.id.get(),
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            role: u.role,
            mfa_enabled: u.mfa_enabled,
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

/// The answer to a registration: the same whether or not the address already had an account.
#[derive(Debug, Serialize, ToSchema)]
pub struct RegisterAccepted {
    /// The address as it will be signed in with (trimmed, lower-cased).
    pub email: String,
    pub message: String,
}

/// Creates an account with the `investor` role. Answers `202` with the same body whether or not
/// the address already has an account (so the endpoint reveals no account's existence); sign
/// in to use the account.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 202, body = RegisterAccepted), (status = 422, body = Problem), (status = 429, body = Problem),
        (status = 503, body = Problem)))]
pub async fn register(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, axum::Json<RegisterAccepted>)> {
    let email = haechi_app::auth::normalise_email(&req.email);
    let new =
        Registration { email: req.email, display_name: req.display_name, password: req.password, role: Role::Investor };
    accounts::register_anonymous(state.app(), &meta, new).await?;
    let message = "registered unless the address already had an account: sign in with your password".to_owned();
    Ok((StatusCode::ACCEPTED, axum::Json(RegisterAccepted { email, message })))
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct LoginRequest {
    pub email: String,
    pub password: String,
    /// Six-digit code from the authenticator app, when MFA is on.
    #[serde(default)]
    pub totp_code: Option<String>,
    /// One of the recovery codes, instead of `totp_code`.
    #[serde(default)]
    pub recovery_code: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct LoginResponse {
    pub user: UserView,
    /// Send this in the `x-csrf-token` header on every unsafe request made with the cookie.
    pub csrf_token: String,
    /// Unix milliseconds when the session ends at the latest.
    pub expires_at: i64,
}

/// Signs in with email and password (and a one-time code when MFA is on). Sets the session
/// cookie; the body carries the CSRF token for later unsafe requests.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let attempt = SignIn {
        email: &req.email,
        password: req.password,
        totp_code: req.totp_code.as_deref(),
        recovery_code: req.recovery_code.as_deref(),
    };
    let started = accounts::sign_in(state.app(), &meta, attempt).await?;
    signed_in(&started, state.settings().cookie_secure)
}

/// The session cookie for a session just started.
pub(crate) fn session_cookie(started: &StartedSession, secure: bool) -> Result<HeaderValue, ApiError> {
    let secure = if secure { "; Secure" } else { "" };
    let cookie = format!(
        "{SESSION_COOKIE}={}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}",
        started.secret,
        started.max_age.as_secs()
    );
    HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(format!("cookie: {e}")))
}

/// The sign-in answer: the session cookie and the body with the CSRF token.
pub(crate) fn signed_in(started: &StartedSession, secure: bool) -> ApiResult<Response> {
    let cookie = session_cookie(started, secure)?;
    let body = LoginResponse {
        user: UserView::from(&started.account),
        csrf_token: started.csrf_token.clone(),
        expires_at: started.expires_at,
    };
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(resp)
}

pub(crate) fn clear_cookie(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"))
        .unwrap_or(HeaderValue::from_static("haechi_session=; Path=/; Max-Age=0"))
}

/// Ends the current session (cookie) — API tokens are revoked under `/me/tokens` instead.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn logout(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(p): Caller,
) -> ApiResult<Response> {
    sessions::sign_out(state.app(), &meta, &p).await?;
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, clear_cookie(state.settings().cookie_secure));
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}
