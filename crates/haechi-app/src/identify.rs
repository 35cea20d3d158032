//! Who is calling: a bearer token or a session cookie turned into a [`Principal`], with the
//! checks every request needs (expiry, revocation, disabled accounts, read-only tokens, CSRF,
//! the role's MFA requirement). The edges parse headers; this decides.

use crate::auth::{constant_time_eq, sha256_hex};
use crate::error::{AppError, AppResult, AuthFailure};
use crate::principal::{Account, AuthVia, Principal};
use crate::{App, Role, Scope, TokenId};

/// `last_seen` is written at most this often per session or token, to keep reads cheap.
const TOUCH_EVERY_MS: i64 = 60_000;

/// What the caller presented.
#[derive(Debug, Clone, Copy)]
pub enum Credential<'a> {
    /// `Authorization: Bearer …`.
    Bearer(&'a str),
    /// The session cookie's value and, for unsafe requests, the CSRF token sent with it.
    Session { cookie: &'a str, csrf_sent: Option<&'a str> },
}

/// What the request is, as far as authentication cares.
#[derive(Debug, Clone, Copy)]
pub struct Access {
    /// GET, HEAD, OPTIONS: no CSRF token needed, and read-only tokens suffice.
    pub safe: bool,
    /// A request to the caller's own account pages, which stay open to members of a role that
    /// requires MFA until they enrol.
    pub own_account: bool,
}

/// Authenticates a request.
///
/// # Errors
/// [`AppError::Unauthenticated`] for a missing, unknown, expired or revoked credential or a
/// disabled account ([`AuthFailure::Csrf`] for a missing CSRF token); [`AppError::Forbidden`]
/// for a read-only token on an unsafe request or an unenrolled member of a role that requires MFA.
pub async fn identify(app: &App, credential: Credential<'_>, access: Access) -> AppResult<Principal> {
    let db = app.db();
    let now = app.now_ms();
    let missing = AppError::Unauthenticated(AuthFailure::Missing);
    let (user, via) = match credential {
        Credential::Bearer(token) => {
            let hash = sha256_hex(token);
            let (t, user) = match app.cache().token(&hash) {
                Some(hit) => hit,
                None => {
                    let t = db.token_by_hash(&hash).await?.ok_or(AppError::Unauthenticated(AuthFailure::Missing))?;
                    let user =
                        db.user_by_id(t.user_id).await?.ok_or(AppError::Unauthenticated(AuthFailure::Missing))?;
                    if t.last_used_at.is_none_or(|l| now - l > TOUCH_EVERY_MS) {
                        db.touch_token(t.id, now).await?;
                    }
                    app.cache().put_token(hash, t.clone(), user.clone());
                    (t, user)
                }
            };
            if t.revoked_at.is_some() || t.expires_at.is_some_and(|e| e <= now) {
                return Err(missing);
            }
            let scopes: Vec<Scope> = t.scopes.split_whitespace().filter_map(Scope::parse).collect();
            if !access.safe && !scopes.iter().any(|s| matches!(s, Scope::Trade | Scope::Admin)) {
                return Err(AppError::Forbidden("this API token is read-only"));
            }
            (Account::from(&user), AuthVia::Token { id: TokenId(t.id), scopes })
        }
        Credential::Session { cookie, csrf_sent } => {
            let id_hash = sha256_hex(cookie);
            let s = db.session_by_hash(&id_hash).await?.ok_or(AppError::Unauthenticated(AuthFailure::Missing))?;
            let idle_ms = i64::try_from(app.settings().session_idle.as_millis()).unwrap_or(i64::MAX);
            if s.expires_at <= now || s.last_seen_at.saturating_add(idle_ms) <= now {
                db.delete_session(&id_hash).await?;
                return Err(missing);
            }
            if !access.safe && !constant_time_eq(csrf_sent.unwrap_or_default(), &s.csrf_token) {
                return Err(AppError::Unauthenticated(AuthFailure::Csrf));
            }
            if now - s.last_seen_at > TOUCH_EVERY_MS {
                db.touch_session(&id_hash, now).await?;
            }
            let user = db.user_by_id(s.user_id).await?.ok_or(AppError::Unauthenticated(AuthFailure::Missing))?;
            (Account::from(&user), AuthVia::Session { id_hash, handle: s.handle, csrf_token: s.csrf_token })
        }
    };
    if user.disabled {
        return Err(missing);
    }
    // A role that requires MFA keeps unenrolled members to their own account pages, where
    // they can enrol, until they do.
    if !user.mfa_enabled && !access.own_account && role_requires_mfa(app, user.role).await? {
        return Err(AppError::Forbidden("your role requires two-factor authentication: enrol at /api/v1/me/mfa/totp"));
    }
    Ok(Principal { user, via })
}

/// Whether members of `role` must use two-factor authentication (cached briefly).
///
/// # Errors
/// The database's.
pub async fn role_requires_mfa(app: &App, role: Role) -> AppResult<bool> {
    if let Some(v) = app.cache().policy(role.as_str()) {
        return Ok(v);
    }
    let v = app.db().role_requires_mfa(role.as_str()).await?;
    app.cache().put_policy(role.as_str(), v);
    Ok(v)
}
