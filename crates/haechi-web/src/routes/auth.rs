//! Registration, login and logout.

use crate::auth::extract::{AuthVia, ClientInfo, Principal, SESSION_COOKIE};
use crate::auth::throttle::{self, IP_MULTIPLIER, Policy};
use crate::auth::{email_tag, normalise_email, password, random_token, sha256_hex, totp};
use crate::error::{ApiError, ApiResult, FieldError, Problem};
use crate::json::ApiJson;
use crate::rbac::Role;
use crate::routes::audit;
use crate::state::AppState;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use haechi_db::entity::session;
use haechi_db::{NewUser, User, now_ms};
use serde::{Deserialize, Serialize};
use serde_json::json;
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

impl From<&User> for UserView {
    fn from(u: &User) -> UserView {
        UserView {
            id: u.id,
            email: u.email.clone(),
            display_name: u.display_name.clone(),
            role: Role::parse(&u.role).unwrap_or(Role::Investor),
            mfa_enabled: u.mfa_enabled,
            disabled: u.disabled,
            created_at: u.created_at,
        }
    }
}

pub(crate) fn email_problems(email: &str) -> Vec<FieldError> {
    let e = email.trim();
    let valid = e.len() <= 254
        && e.split_once('@').is_some_and(|(local, domain)| {
            !local.is_empty() && domain.contains('.') && !domain.starts_with('.') && !domain.ends_with('.')
        })
        && !e.chars().any(|c| c.is_whitespace() || c.is_control());
    if valid { Vec::new() } else { vec![FieldError::new("email", "must be an email address such as name@example.com")] }
}

/// Creates an account with the `investor` role.
#[utoipa::path(post, path = "/api/v1/auth/register", tag = "auth", request_body = RegisterRequest,
    responses((status = 201, body = UserView), (status = 409, body = Problem), (status = 422, body = Problem)))]
pub async fn register(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(req): ApiJson<RegisterRequest>,
) -> ApiResult<(StatusCode, axum::Json<UserView>)> {
    let user = create_account(&state, &client, &req.email, &req.display_name, req.password).await?;
    Ok((StatusCode::CREATED, axum::Json(UserView::from(&user))))
}

/// Validates (every problem at once) and creates an `investor` account: the one registration
/// path of the API and the portal.
pub(crate) async fn create_account(
    state: &AppState,
    client: &ClientInfo,
    email: &str,
    display_name: &str,
    password: String,
) -> ApiResult<User> {
    let email = normalise_email(email);
    let name = display_name.trim().to_owned();
    let mut problems = email_problems(&email);
    if name.is_empty() || name.chars().count() > 100 || name.chars().any(char::is_control) {
        problems.push(FieldError::new("display_name", "must be 1 to 100 characters"));
    }
    problems.extend(password::policy_problems(&password, &email, &name));
    if !problems.is_empty() {
        return Err(ApiError::Validation(problems));
    }
    let hash = password::hash(password).await?;
    let user = state
        .db()
        .create_user(NewUser { email, display_name: name, password_hash: hash, role: Role::Investor.as_str().into() })
        .await?;
    audit(state, client, "user_registered", Some(user.id), None, json!({})).await;
    Ok(user)
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

/// The fail2ban-friendly line (see `deploy/fail2ban/`). Carries no email, only a tag.
fn log_auth_failure(client: &ClientInfo, reason: &str, email: &str) {
    tracing::warn!(target: "haechi::auth", "haechi_auth_failure ip={} reason={} email_hash={}", client.ip, reason, email_tag(email));
}

async fn record_failure(state: &AppState, keys: &[(String, Policy)]) -> ApiResult<()> {
    let now = now_ms();
    for (key, policy) in keys {
        let prev = state.db().throttle(key).await?;
        state.db().put_throttle(throttle::after_failure(key, prev, now, *policy)).await?;
    }
    Ok(())
}

/// Signs in with email and password (and a one-time code when MFA is on). Sets the session
/// cookie; the body carries the CSRF token for later unsafe requests.
#[utoipa::path(post, path = "/api/v1/auth/login", tag = "auth", request_body = LoginRequest,
    responses((status = 200, body = LoginResponse), (status = 401, body = Problem), (status = 429, body = Problem)))]
pub async fn login(
    State(state): State<AppState>,
    client: ClientInfo,
    ApiJson(req): ApiJson<LoginRequest>,
) -> ApiResult<Response> {
    let (cookie, body) =
        authenticate(&state, &client, &req.email, req.password, req.totp_code.as_deref(), req.recovery_code.as_deref())
            .await?;
    let mut resp = axum::Json(body).into_response();
    resp.headers_mut().append(header::SET_COOKIE, cookie);
    Ok(resp)
}

/// Checks the credentials (with lockout, audit and the second factor) and starts a session: the
/// one sign-in path of the API and the portal.
pub(crate) async fn authenticate(
    state: &AppState,
    client: &ClientInfo,
    email: &str,
    password: String,
    totp_code: Option<&str>,
    recovery_code: Option<&str>,
) -> ApiResult<(HeaderValue, LoginResponse)> {
    let (state, client) = (state.clone(), client.clone());
    let email = normalise_email(email);
    let s = state.settings();
    let acct = Policy { max_failures: s.login_max_failures, lock: s.login_lock };
    let ip = Policy { max_failures: s.login_max_failures.saturating_mul(IP_MULTIPLIER), lock: s.login_lock };
    let keys =
        [(format!("acct:{}", email.chars().take(254).collect::<String>()), acct), (format!("ip:{}", client.ip), ip)];
    let now = now_ms();
    let mut wait = None;
    for (key, _) in &keys {
        wait = wait.max(throttle::retry_after(state.db().throttle(key).await?.as_ref(), now));
    }
    if let Some(retry_after_secs) = wait {
        log_auth_failure(&client, "locked", &email);
        audit(&state, &client, "login_blocked", None, None, json!({"email_hash": email_tag(&email)})).await;
        return Err(ApiError::TooManyRequests { retry_after_secs });
    }
    let user = state.db().user_by_email(&email).await?;
    let ok = password::verify(password, user.as_ref().map(|u| u.password_hash.clone())).await;
    let user = match user {
        Some(u) if ok && !u.disabled => u,
        other => {
            record_failure(&state, &keys).await?;
            log_auth_failure(&client, "bad_credentials", &email);
            let uid = other.map(|u| u.id);
            audit(
                &state,
                &client,
                "login_failure",
                uid,
                None,
                json!({"reason": "bad_credentials", "email_hash": email_tag(&email)}),
            )
            .await;
            return Err(ApiError::InvalidCredentials);
        }
    };
    if user.mfa_enabled {
        second_factor(&state, &client, &user, totp_code, recovery_code, &keys).await?;
    }
    state.db().clear_throttle(&keys[0].0).await?;
    let started = start_session(&state, &client, &user).await?;
    audit(&state, &client, "login_success", Some(user.id), None, json!({"mfa": user.mfa_enabled})).await;
    Ok(started)
}

/// Checks a TOTP code (once per step) or, failing that, a recovery code (once ever).
/// `None` when neither was given. Shared by login and by re-authentication.
pub(crate) async fn verify_second_factor(
    state: &AppState,
    client: &ClientInfo,
    user: &User,
    code: Option<&str>,
    recovery: Option<&str>,
) -> ApiResult<Option<bool>> {
    let secret = user.totp_secret.clone().unwrap_or_default();
    Ok(Some(match (code, recovery) {
        (Some(code), _) => match totp::matching_step(&secret, code, totp::unix_now())? {
            Some(step) => state.db().consume_totp_step(user.id, step).await?,
            None => false,
        },
        (None, Some(rc)) => {
            let used = state.db().consume_recovery_code(user.id, &sha256_hex(&normalise_recovery(rc))).await?;
            if used {
                let left = state.db().unused_recovery_codes(user.id).await?;
                audit(state, client, "recovery_code_used", Some(user.id), None, json!({"remaining": left})).await;
            }
            used
        }
        (None, None) => return Ok(None),
    }))
}

/// The login's second factor; failures count towards the lockout like bad passwords.
async fn second_factor(
    state: &AppState,
    client: &ClientInfo,
    user: &User,
    code: Option<&str>,
    recovery: Option<&str>,
    keys: &[(String, Policy)],
) -> ApiResult<()> {
    let Some(accepted) = verify_second_factor(state, client, user, code, recovery).await? else {
        return Err(ApiError::MfaRequired);
    };
    if !accepted {
        record_failure(state, keys).await?;
        log_auth_failure(client, "bad_totp", &user.email);
        audit(state, client, "login_failure", Some(user.id), None, json!({"reason": "bad_second_factor"})).await;
        return Err(ApiError::InvalidCredentials);
    }
    Ok(())
}

/// Recovery codes are shown grouped (`abcd-efgh-…`); accept them with or without dashes.
pub(crate) fn normalise_recovery(code: &str) -> String {
    code.chars().filter(char::is_ascii_alphanumeric).map(|c| c.to_ascii_lowercase()).collect()
}

/// Creates a session with a fresh random id and returns its cookie and the login body.
pub(crate) async fn start_session(
    state: &AppState,
    client: &ClientInfo,
    user: &User,
) -> ApiResult<(HeaderValue, LoginResponse)> {
    let secret = random_token(32)?;
    let csrf_token = random_token(32)?;
    let now = now_ms();
    let absolute = state.settings().session_absolute;
    let expires_at = now + absolute.as_millis() as i64;
    state
        .db()
        .create_session(session::Model {
            id_hash: sha256_hex(&secret),
            handle: random_token(12)?,
            user_id: user.id,
            csrf_token: csrf_token.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at,
            ip: client.ip.clone(),
            user_agent: client.user_agent.clone(),
        })
        .await?;
    let secure = if state.settings().cookie_secure { "; Secure" } else { "" };
    let cookie =
        format!("{SESSION_COOKIE}={secret}; Path=/; HttpOnly; SameSite=Lax; Max-Age={}{secure}", absolute.as_secs());
    let cookie = HeaderValue::from_str(&cookie).map_err(|e| ApiError::Internal(format!("cookie: {e}")))?;
    Ok((cookie, LoginResponse { user: UserView::from(user), csrf_token, expires_at }))
}

pub(crate) fn clear_cookie(secure: bool) -> HeaderValue {
    let secure = if secure { "; Secure" } else { "" };
    HeaderValue::from_str(&format!("{SESSION_COOKIE}=; Path=/; HttpOnly; SameSite=Lax; Max-Age=0{secure}"))
        .unwrap_or(HeaderValue::from_static("haechi_session=; Path=/; Max-Age=0"))
}

/// Ends the current session (cookie) — API tokens are revoked under `/me/tokens` instead.
#[utoipa::path(post, path = "/api/v1/auth/logout", tag = "auth",
    responses((status = 204), (status = 401, body = Problem), (status = 403, body = Problem)))]
pub async fn logout(State(state): State<AppState>, client: ClientInfo, principal: Principal) -> ApiResult<Response> {
    if let AuthVia::Session { id_hash, .. } = &principal.via {
        state.db().delete_session(id_hash).await?;
    }
    audit(&state, &client, "logout", Some(principal.user.id), None, json!({})).await;
    let mut headers = HeaderMap::new();
    headers.insert(header::SET_COOKIE, clear_cookie(state.settings().cookie_secure));
    Ok((StatusCode::NO_CONTENT, headers).into_response())
}
