//! Request extractors: who is calling ([`Principal`]) and from where ([`ClientInfo`]).

use super::{constant_time_eq, sha256_hex};
use crate::error::{ApiError, RequestId};
use crate::rbac::{Permission, Role, Scope, allows};
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};
use haechi_db::{User, now_ms};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "haechi_session";
/// The header carrying the CSRF token on unsafe requests authenticated by cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";
/// `last_seen` is written at most this often per session or token, to keep reads cheap.
const TOUCH_EVERY_MS: i64 = 60_000;

/// How the caller proved who they are.
#[derive(Debug, Clone)]
pub enum AuthVia {
    Session { id_hash: String, handle: String, csrf_token: String },
    Token { id: i64, scopes: Vec<Scope> },
}

/// An authenticated user.
#[derive(Debug, Clone)]
pub struct Principal {
    pub user: User,
    pub role: Role,
    pub via: AuthVia,
}

impl Principal {
    /// Checks the role matrix and, for API tokens, the `admin` scope on admin permissions.
    ///
    /// # Errors
    /// [`ApiError::Forbidden`] when either says no.
    pub fn require(&self, perm: Permission) -> Result<(), ApiError> {
        if !allows(self.role, perm) {
            return Err(ApiError::Forbidden("your role does not allow this"));
        }
        if let AuthVia::Token { scopes, .. } = &self.via
            && perm.is_admin()
            && !scopes.contains(&Scope::Admin)
        {
            return Err(ApiError::Forbidden("this API token lacks the admin scope"));
        }
        Ok(())
    }
}

/// Slot the access-log middleware reads after the handler ran, to record the user id.
#[derive(Debug, Clone, Default)]
pub struct UserSlot(pub Arc<Mutex<Option<i64>>>);

/// The client's address and the request id, for logs and throttling.
#[derive(Debug, Clone)]
pub struct ClientInfo {
    pub ip: String,
    pub request_id: String,
    pub user_agent: String,
}

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(client_info(parts, state.settings().trusted_proxy))
    }
}

#[must_use]
pub fn client_info(parts: &Parts, trusted_proxy: bool) -> ClientInfo {
    let forwarded = trusted_proxy
        .then(|| parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()))
        .flatten()
        .and_then(|v| v.split(',').next())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());
    let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip().to_string());
    let ip: String = forwarded.or(peer).unwrap_or_else(|| "unknown".into()).chars().take(64).collect();
    let request_id = parts.extensions.get::<RequestId>().map(|r| r.0.clone()).unwrap_or_default();
    let user_agent = parts
        .headers
        .get(header::USER_AGENT)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .chars()
        .take(255)
        .collect();
    ClientInfo { ip, request_id, user_agent }
}

fn cookie_value<'a>(parts: &'a Parts, name: &str) -> Option<&'a str> {
    parts
        .headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

impl FromRequestParts<AppState> for Principal {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let db = state.db();
        let now = now_ms();
        let bearer = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
            .map(str::trim);
        let mut cached_user = None;
        let (user_id, via) = if let Some(token) = bearer {
            let hash = sha256_hex(token);
            let (t, user) = match state.cache().token(&hash) {
                Some(hit) => hit,
                None => {
                    let t = db.token_by_hash(&hash).await?.ok_or(ApiError::Unauthenticated)?;
                    let user = db.user_by_id(t.user_id).await?.ok_or(ApiError::Unauthenticated)?;
                    if t.last_used_at.is_none_or(|l| now - l > TOUCH_EVERY_MS) {
                        db.touch_token(t.id, now).await?;
                    }
                    state.cache().put_token(hash, t.clone(), user.clone());
                    (t, user)
                }
            };
            if t.revoked_at.is_some() || t.expires_at.is_some_and(|e| e <= now) {
                return Err(ApiError::Unauthenticated);
            }
            let scopes: Vec<Scope> = t.scopes.split_whitespace().filter_map(Scope::parse).collect();
            if !is_safe(&parts.method) && !scopes.iter().any(|s| matches!(s, Scope::Trade | Scope::Admin)) {
                return Err(ApiError::Forbidden("this API token is read-only"));
            }
            cached_user = Some(user);
            (t.user_id, AuthVia::Token { id: t.id, scopes })
        } else if let Some(cookie) = cookie_value(parts, SESSION_COOKIE) {
            let id_hash = sha256_hex(cookie);
            let s = db.session_by_hash(&id_hash).await?.ok_or(ApiError::Unauthenticated)?;
            let idle_ms = state.settings().session_idle.as_millis() as i64;
            if s.expires_at <= now || s.last_seen_at + idle_ms <= now {
                db.delete_session(&id_hash).await?;
                return Err(ApiError::Unauthenticated);
            }
            if !is_safe(&parts.method) {
                let sent = parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()).unwrap_or_default();
                if !constant_time_eq(sent, &s.csrf_token) {
                    return Err(ApiError::Csrf);
                }
            }
            if now - s.last_seen_at > TOUCH_EVERY_MS {
                db.touch_session(&id_hash, now).await?;
            }
            (s.user_id, AuthVia::Session { id_hash, handle: s.handle, csrf_token: s.csrf_token })
        } else {
            return Err(ApiError::Unauthenticated);
        };
        let user = match cached_user {
            Some(u) => u,
            None => db.user_by_id(user_id).await?.ok_or(ApiError::Unauthenticated)?,
        };
        if user.disabled {
            return Err(ApiError::Unauthenticated);
        }
        let role = Role::parse(&user.role).unwrap_or(Role::Investor);
        // A role that requires MFA keeps unenrolled members to their own account pages,
        // where they can enrol, until they do.
        if !user.mfa_enabled && !parts.uri.path().starts_with("/api/v1/me") && role_requires_mfa(state, role).await? {
            return Err(ApiError::Forbidden(
                "your role requires two-factor authentication: enrol at /api/v1/me/mfa/totp",
            ));
        }
        if let Some(slot) = parts.extensions.get::<UserSlot>()
            && let Ok(mut g) = slot.0.lock()
        {
            *g = Some(user.id);
        }
        Ok(Principal { user, role, via })
    }
}

async fn role_requires_mfa(state: &AppState, role: Role) -> Result<bool, ApiError> {
    if let Some(v) = state.cache().policy(role.as_str()) {
        return Ok(v);
    }
    let v = state.db().role_requires_mfa(role.as_str()).await?;
    state.cache().put_policy(role.as_str(), v);
    Ok(v)
}
