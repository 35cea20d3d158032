//! The signed-in user's own account: profile, password, sessions, API tokens, MFA.

use crate::auth::extract::{AuthVia, ClientInfo, Principal};
use crate::auth::{password, random_token, sha256_hex, totp};
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::json::ApiJson;
use crate::rbac::{Permission, Scope};
use crate::routes::audit;
use crate::routes::auth::{UserView, normalise_recovery, start_session, verify_second_factor};
use crate::state::AppState;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use haechi_db::ActiveValue::Set;
use haechi_db::entity::api_token;
use haechi_db::now_ms;
use serde::{Deserialize, Serialize};
use serde_json::json;
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
pub async fn me(principal: Principal) -> ApiResult<axum::Json<MeResponse>> {
    principal.require(Permission::OwnAccount)?;
    let (auth, csrf_token) = match &principal.via {
        AuthVia::Session { csrf_token, .. } => ("session", Some(csrf_token.clone())),
        AuthVia::Token { .. } => ("token", None),
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

/// Fresh re-authentication: the password, and a second factor when MFA is on.
async fn reauthenticate(
    state: &AppState,
    client: &ClientInfo,
    p: &Principal,
    password_: &str,
    code: Option<&str>,
    recovery: Option<&str>,
) -> ApiResult<()> {
    if !password::verify(password_.to_owned(), Some(p.user.password_hash.clone())).await {
        return Err(ApiError::Validation(vec![FieldError::new("password", "is not your current password")]));
    }
    if p.user.mfa_enabled && verify_second_factor(state, client, &p.user, code, recovery).await? != Some(true) {
        return Err(ApiError::Validation(vec![FieldError::new(
            "totp_code",
            "a current, unused one-time code is required",
        )]));
    }
    Ok(())
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
    client: ClientInfo,
    principal: Principal,
    ApiJson(req): ApiJson<PasswordChangeRequest>,
) -> ApiResult<Response> {
    principal.require(Permission::OwnAccount)?;
    if !matches!(principal.via, AuthVia::Session { .. }) {
        return Err(ApiError::Forbidden("change the password from a signed-in browser session"));
    }
    let problems = password::policy_problems(&req.new_password, &principal.user.email, &principal.user.display_name);
    if !problems.is_empty() {
        let problems = problems.into_iter().map(|p| FieldError::new("new_password", p.message)).collect();
        return Err(ApiError::Validation(problems));
    }
    reauthenticate(&state, &client, &principal, &req.current_password, req.totp_code.as_deref(), None).await?;
    let hash = password::hash(req.new_password).await?;
    state.db().set_password(principal.user.id, hash).await?;
    state.cache().invalidate_user(principal.user.id);
    // Every session, this one included, ends; the caller gets a fresh one (new id).
    state.db().delete_other_sessions(principal.user.id, None).await?;
    let (cookie, body) = start_session(&state, &client, &principal.user).await?;
    audit(&state, &client, "password_changed", Some(principal.user.id), None, json!({})).await;
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(resp)
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
    principal: Principal,
) -> ApiResult<axum::Json<Vec<SessionView>>> {
    principal.require(Permission::OwnAccount)?;
    let current = match &principal.via {
        AuthVia::Session { handle, .. } => Some(handle.clone()),
        AuthVia::Token { .. } => None,
    };
    let list = state.db().list_sessions(principal.user.id).await?;
    Ok(axum::Json(
        list.into_iter()
            .map(|s| SessionView {
                current: current.as_deref() == Some(s.handle.as_str()),
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
    client: ClientInfo,
    principal: Principal,
    Path(id): Path<String>,
) -> ApiResult<StatusCode> {
    principal.require(Permission::OwnAccount)?;
    if !state.db().delete_session_by_handle(principal.user.id, &id).await? {
        return Err(ApiError::NotFound);
    }
    audit(&state, &client, "session_revoked", Some(principal.user.id), None, json!({"session": id})).await;
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

fn token_view(t: api_token::Model) -> TokenView {
    TokenView {
        id: t.id,
        name: t.name,
        prefix: t.prefix,
        scopes: t.scopes.split_whitespace().filter_map(Scope::parse).collect(),
        created_at: t.created_at,
        expires_at: t.expires_at,
        last_used_at: t.last_used_at,
        revoked_at: t.revoked_at,
    }
}

/// Creates an API token for apps and agents (`Authorization: Bearer …`).
#[utoipa::path(post, path = "/api/v1/me/tokens", tag = "me", request_body = CreateTokenRequest,
    responses((status = 201, body = CreatedToken), (status = 422, body = Problem)))]
pub async fn create_token(
    State(state): State<AppState>,
    client: ClientInfo,
    principal: Principal,
    ApiJson(req): ApiJson<CreateTokenRequest>,
) -> ApiResult<(StatusCode, axum::Json<CreatedToken>)> {
    principal.require(Permission::OwnAccount)?;
    let created = mint_token(&state, &client, &principal, &req).await?;
    Ok((StatusCode::CREATED, axum::Json(created)))
}

/// Validates a token request, re-authenticates the person, and creates the token; the secret is
/// in the answer only (API and portal).
pub(crate) async fn mint_token(
    state: &AppState,
    client: &ClientInfo,
    principal: &Principal,
    req: &CreateTokenRequest,
) -> ApiResult<CreatedToken> {
    let (state, client) = (state.clone(), client.clone());
    let mut problems = Vec::new();
    let name = req.name.trim().to_owned();
    if name.is_empty() || name.chars().count() > 100 {
        problems.push(FieldError::new("name", "must be 1 to 100 characters"));
    }
    let mut scopes = Vec::new();
    for (i, s) in req.scopes.iter().enumerate() {
        match Scope::parse(s) {
            Some(Scope::Admin) if !crate::rbac::allows(principal.role, Permission::ManageUsers) => {
                problems.push(FieldError::new(format!("scopes[{i}]"), "admin scope needs the admin role"));
            }
            Some(sc) if !scopes.contains(&sc) => scopes.push(sc),
            Some(_) => {}
            None => problems.push(FieldError::new(format!("scopes[{i}]"), "must be read, trade or admin")),
        }
    }
    if scopes.is_empty() && problems.is_empty() {
        problems.push(FieldError::new("scopes", "must name at least one scope"));
    }
    if req.expires_in_days.is_some_and(|d| !(1..=365).contains(&d)) {
        problems.push(FieldError::new("expires_in_days", "must be between 1 and 365"));
    }
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    // Tokens cannot mint tokens: only a person with the password (and code) can.
    reauthenticate(&state, &client, principal, &req.password, req.totp_code.as_deref(), None).await?;
    scopes.sort();
    let secret = format!("hae_{}", random_token(32)?);
    let now = now_ms();
    let t = state
        .db()
        .create_token(api_token::ActiveModel {
            user_id: Set(principal.user.id),
            name: Set(name),
            token_hash: Set(sha256_hex(&secret)),
            prefix: Set(secret.chars().take(10).collect()),
            scopes: Set(scopes.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(" ")),
            created_at: Set(now),
            expires_at: Set(req.expires_in_days.map(|d| now + i64::from(d) * 86_400_000)),
            last_used_at: Set(None),
            revoked_at: Set(None),
            ..Default::default()
        })
        .await?;
    audit(
        &state,
        &client,
        "token_created",
        Some(principal.user.id),
        None,
        json!({"token_id": t.id, "scopes": t.scopes}),
    )
    .await;
    Ok(CreatedToken { info: token_view(t), token: secret })
}

/// The user's API tokens (never the secrets).
#[utoipa::path(get, path = "/api/v1/me/tokens", tag = "me", responses((status = 200, body = Vec<TokenView>)))]
pub async fn list_tokens(State(state): State<AppState>, principal: Principal) -> ApiResult<axum::Json<Vec<TokenView>>> {
    principal.require(Permission::OwnAccount)?;
    Ok(axum::Json(state.db().list_tokens(principal.user.id).await?.into_iter().map(token_view).collect()))
}

/// Revokes one of the user's tokens. Another user's token id answers 404.
#[utoipa::path(delete, path = "/api/v1/me/tokens/{id}", tag = "me", params(("id" = i64, Path)),
    responses((status = 204), (status = 404, body = Problem)))]
pub async fn revoke_token(
    State(state): State<AppState>,
    client: ClientInfo,
    principal: Principal,
    Path(id): Path<i64>,
) -> ApiResult<StatusCode> {
    principal.require(Permission::OwnAccount)?;
    if !state.db().revoke_token(principal.user.id, id).await? {
        return Err(ApiError::NotFound);
    }
    state.cache().invalidate_user(principal.user.id);
    audit(&state, &client, "token_revoked", Some(principal.user.id), None, json!({"token_id": id})).await;
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
pub async fn totp_begin(State(state): State<AppState>, principal: Principal) -> ApiResult<axum::Json<TotpEnrolment>> {
    principal.require(Permission::OwnAccount)?;
    Ok(axum::Json(begin_totp(&state, &principal.user).await?))
}

/// A new secret for `user`, stored but inactive until confirmed (API and portal).
pub(crate) async fn begin_totp(state: &AppState, user: &haechi_db::User) -> ApiResult<TotpEnrolment> {
    if user.mfa_enabled {
        return Err(ApiError::Conflict("two-factor authentication is already on; disable it first".into()));
    }
    let secret = totp::new_secret();
    let enrolment = enrolment_of(&secret, &user.email)?;
    state.db().set_totp_secret(user.id, Some(secret)).await?;
    Ok(enrolment)
}

/// The QR code and URI of a secret (shown again when a confirmation code was wrong).
pub(crate) fn enrolment_of(secret: &str, email: &str) -> ApiResult<TotpEnrolment> {
    let uri = totp::uri(secret, email)?;
    let qr_svg = totp::qr_svg(&uri)?;
    Ok(TotpEnrolment { secret: secret.to_owned(), otpauth_uri: uri, qr_svg })
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
    client: ClientInfo,
    principal: Principal,
    ApiJson(req): ApiJson<TotpConfirmRequest>,
) -> ApiResult<axum::Json<RecoveryCodes>> {
    principal.require(Permission::OwnAccount)?;
    let codes = confirm_totp(&state, &client, &principal.user, &req.code).await?;
    Ok(axum::Json(RecoveryCodes { recovery_codes: codes }))
}

/// Turns MFA on when `code` matches the pending secret; returns ten recovery codes.
pub(crate) async fn confirm_totp(
    state: &AppState,
    client: &ClientInfo,
    user: &haechi_db::User,
    code: &str,
) -> ApiResult<Vec<String>> {
    let Some(secret) = user.totp_secret.clone().filter(|_| !user.mfa_enabled) else {
        return Err(ApiError::Conflict("no enrolment in progress: POST /api/v1/me/mfa/totp first".into()));
    };
    let Some(step) = totp::matching_step(&secret, code, totp::unix_now())? else {
        return Err(ApiError::Validation(vec![FieldError::new("code", "does not match the authenticator")]));
    };
    let codes = (0..10).map(|_| crate::auth::recovery_code()).collect::<Result<Vec<_>, _>>()?;
    let hashes = codes.iter().map(|c| sha256_hex(&normalise_recovery(c))).collect();
    state.db().enable_mfa(user.id, step, hashes).await?;
    state.cache().invalidate_user(user.id);
    audit(state, client, "mfa_enabled", Some(user.id), None, json!({})).await;
    Ok(codes)
}

/// Turns MFA off. Needs the password and a current code.
#[utoipa::path(delete, path = "/api/v1/me/mfa/totp", tag = "me", request_body = Reauth,
    responses((status = 204), (status = 422, body = Problem)))]
pub async fn totp_disable(
    State(state): State<AppState>,
    client: ClientInfo,
    principal: Principal,
    ApiJson(req): ApiJson<Reauth>,
) -> ApiResult<StatusCode> {
    principal.require(Permission::OwnAccount)?;
    if !principal.user.mfa_enabled {
        return Err(ApiError::Conflict("two-factor authentication is not on".into()));
    }
    reauthenticate(&state, &client, &principal, &req.password, req.totp_code.as_deref(), req.recovery_code.as_deref())
        .await?;
    state.db().disable_mfa(principal.user.id).await?;
    state.cache().invalidate_user(principal.user.id);
    audit(&state, &client, "mfa_disabled", Some(principal.user.id), None, json!({})).await;
    Ok(StatusCode::NO_CONTENT)
}
