//! The signed-in user's own account: profile, password, sessions, API tokens, MFA.

use crate::auth::{Caller, ClientInfo};
use crate::error::{ApiResult, Problem};
use crate::json::ApiJson;
use crate::routes::auth::{UserView, signed_in};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::Response;
use haechi_app::accounts::{self, Reauth as Proof};
use haechi_app::rbac::Permission;
use haechi_app::tokens::{self, TokenInfo, TokenRequest};
use haechi_app::{AuthVia, Scope, TokenId, mfa, sessions};
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

#[derive(Debug, Serialize, ToSchema)]
pub struct MeResponse {
    pub user: UserView,
    /// How this request was authenticated: `session` or `token`.
    pub auth: String,
    /// The CSRF token of the current session (cookie authentication only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub csrf_token: Option<String>,
}

/// The current user.
#[utoipa::path(get, path = "/api/v1/me", tag = "me", security(("session" = []), ("bearer" = [])),
    responses((status = 200, body = MeResponse), (status = 401, body = Problem)))]
pub async fn me(Caller(principal): Caller) -> ApiResult<axum::Json<MeResponse>> {
    principal.require(Permission::OwnAccount)?;
    let (auth, csrf_token) = match &principal.via {
        AuthVia::Session { csrf_token, .. } => ("session", Some(csrf_token.clone())),
        AuthVia::Token { .. } | AuthVia::Local => ("token", None),
    };
    Ok(axum::Json(MeResponse { user: UserView::from(&principal.user), auth: auth.into(), csrf_token }))
}

/// Re-authentication for sensitive changes: the password, and the current TOTP code when
/// MFA is on.
#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Reauth {
    pub password: String,
    #[serde(default)]
    pub totp_code: Option<String>,
    /// Instead of `totp_code`, e.g. to turn MFA off after losing the authenticator.
    #[serde(default)]
    pub recovery_code: Option<String>,
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct PasswordChangeRequest {
    pub current_password: String,
    pub new_password: String,
    #[serde(default)]
    pub totp_code: Option<String>,
}

/// Changes the password, ends every other session and renews the current one.
#[utoipa::path(post, path = "/api/v1/me/password", tag = "me", request_body = PasswordChangeRequest,
    responses((status = 200, body = crate::routes::auth::LoginResponse), (status = 422, body = Problem)))]
pub async fn change_password(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(principal): Caller,
    ApiJson(req): ApiJson<PasswordChangeRequest>,
) -> ApiResult<Response> {
    let proof = Proof { password: &req.current_password, totp_code: req.totp_code.as_deref(), recovery_code: None };
    let started = accounts::change_password(state.app(), &meta, &principal, proof, req.new_password).await?;
    signed_in(&started, state.settings().cookie_secure)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct SessionView {
    /// Public handle, for revoking.
    pub id: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub ip: String,
    pub user_agent: String,
    pub current: bool,
}

/// The user's active sessions.
#[utoipa::path(get, path = "/api/v1/me/sessions", tag = "me", responses((status = 200, body = Vec<SessionView>)))]
pub async fn list_sessions(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> ApiResult<axum::Json<Vec<SessionView>>> {
    let list = sessions::list(state.app(), &principal).await?;
    Ok(axum::Json(
        list.into_iter()
            .map(|s| SessionView {
                current: s.current,
                id: s.handle,
                created_at: s.created_at,
                last_seen_at: s.last_seen_at,
                expires_at: s.expires_at,
                ip: s.ip,
                user_agent: s.user_agent,
            })
            .collect(),
    ))
}

/// Ends one of the user's sessions. Another user's session id answers 404.
#[utoipa::path(delete, path = "/api/v1/me/sessions/{id}", tag = "me", params(("id" = String, Path, description = "session handle")),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn revoke_session(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(principal): Caller,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    sessions::revoke(state.app(), &meta, &principal, &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateTokenRequest {
    pub name: String,
    /// Any of `read`, `trade`, `admin`.
    pub scopes: Vec<String>,
    /// Days until it expires (1–365); omitted means it never expires.
    #[serde(default)]
    pub expires_in_days: Option<u32>,
    /// Fresh re-authentication.
    pub password: String,
    #[serde(default)]
    pub totp_code: Option<String>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TokenView {
    pub id: i64,
    pub name: String,
    pub prefix: String,
    pub scopes: Vec<Scope>,
    pub created_at: i64,
    pub expires_at: Option<i64>,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct CreatedToken {
    #[serde(flatten)]
    pub info: TokenView,
    /// The token itself. Shown this once; only its hash is stored.
    pub token: String,
}

impl From<TokenInfo> for TokenView {
    fn from(t: TokenInfo) -> TokenView {
        TokenView {
            id: t.id.get(),
            name: t.name,
            prefix: t.prefix,
            scopes: t.scopes,
            created_at: t.created_at,
            expires_at: t.expires_at,
            last_used_at: t.last_used_at,
            revoked_at: t.revoked_at,
        }
    }
}

/// Creates an API token for apps and agents (`Authorization: Bearer …`).
#[utoipa::path(post, path = "/api/v1/me/tokens", tag = "me", request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedToken), (status = 422, body = Problem)))]
pub async fn create_token(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(principal): Caller,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, axum::Json<CreatedToken>)> {
    let ask = TokenRequest {
        name: &req.name,
        scopes: &req.scopes,
        expires_in_days: req.expires_in_days,
        proof: Proof { password: &req.password, totp_code: req.totp_code.as_deref(), recovery_code: None },
    };
    let (info, token) = tokens::create(state.app(), &meta, &principal, ask).await?;
    Ok((StatusCode::CREATED, axum::Json(CreatedToken { info: info.into(), token })))
}

/// The user's API tokens (never the secrets).
#[utoipa::path(get, path = "/api/v1/me/tokens", tag = "me", responses((status = 200, body = Vec<TokenView>)))]
pub async fn list_tokens(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> ApiResult<axum::Json<Vec<TokenView>>> {
    Ok(axum::Json(tokens::list(state.app(), &principal).await?.into_iter().map(TokenView::from).collect()))
}

/// Revokes one of the user's tokens. Another user's token id answers 404.
#[utoipa::path(delete, path = "/api/v1/me/tokens/{id}", tag = "me", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(principal): Caller,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    tokens::revoke(state.app(), &meta, &principal, TokenId(id)).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[derive(Debug, Serialize, ToSchema)]
pub struct TotpEnrolment {
    /// Base32 secret, for manual entry.
    pub secret: String,
    pub otpauth_uri: String,
    /// The URI as an SVG QR code.
    pub qr_svg: String,
}

/// Starts TOTP enrolment: a new secret that is not active until confirmed with a code.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp", tag = "me", responses((status = 200, body = TotpEnrolment), (status = 409, body = Problem)))]
pub async fn totp_begin(
    State(state): State<AppState>,
    Caller(principal): Caller,
) -> ApiResult<axum::Json<TotpEnrolment>> {
    Ok(axum::Json(mfa::begin(state.app(), &principal).await?.into()))
}

impl From<mfa::Enrolment> for TotpEnrolment {
    fn from(e: mfa::Enrolment) -> TotpEnrolment {
        TotpEnrolment { secret: e.secret, otpauth_uri: e.otpauth_uri, qr_svg: e.qr_svg }
    }
}

#[derive(Debug, Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct TotpConfirmRequest {
    pub code: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct RecoveryCodes {
    /// Ten one-time codes, shown this once.
    pub recovery_codes: Vec<String>,
}

/// Confirms enrolment with a current code; turns MFA on and returns ten recovery codes.
#[utoipa::path(post, path = "/api/v1/me/mfa/totp/confirm", tag = "me", request_body = TotpConfirmRequest,
    responses((status = 200, body = RecoveryCodes), (status = 422, body = Problem)))]
pub async fn totp_confirm(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(principal): Caller,
    ApiJson(req): ApiJson<TotpConfirmRequest>,
) -> ApiResult<axum::Json<RecoveryCodes>> {
    let codes = mfa::confirm(state.app(), &meta, &principal, &req.code).await?;
    Ok(axum::Json(RecoveryCodes { recovery_codes: codes }))
}

/// Turns MFA off. Needs the password and a current code.
#[utoipa::path(delete, path = "/api/v1/me/mfa/totp", tag = "me", request_body = Reauth,
    responses((status = 204), (status = 422, body = Problem)))]
pub async fn totp_disable(
    State(state): State<AppState>,
    ClientInfo(meta): ClientInfo,
    Caller(principal): Caller,
    ApiJson(req): ApiJson<Reauth>,
) -> ApiResult<StatusCode> {
    let proof = Proof {
        password: &req.password,
        totp_code: req.totp_code.as_deref(),
        recovery_code: req.recovery_code.as_deref(),
    };
    mfa::disable(state.app(), &meta, &principal, proof).await?;
    Ok(StatusCode::NO_CONTENT)
}
