//! Browser sessions: started at sign-in, listed and ended by their owner. The cookie carries a
//! random secret whose SHA-256 is the row key, so a database dump holds no live session.

use crate::audit::{RequestMeta, record};
use crate::auth::{random_token, sha256_hex};
use crate::error::{AppError, AppResult};
use crate::principal::{Account, AuthVia, Principal};
use crate::{App, UserId};
use serde_json::json;

/// A session just started: the secret for the cookie (shown once) and what the client needs.
#[derive(Debug, Clone)]
pub struct StartedSession {
    pub account: Account,
    /// The cookie's value.
    pub secret: String,
    /// Echoed on every unsafe request made with the cookie.
    pub csrf_token: String,
    /// Unix milliseconds when the session ends at the latest.
    pub expires_at: i64,
    /// How long the cookie should live.
    pub max_age: std::time::Duration,
}

/// Starts a session for `user` with a fresh random id.
pub(crate) async fn start(app: &App, meta: &RequestMeta, user: &haechi_db::User) -> AppResult<StartedSession> {
    let secret = random_token(32)?;
    let csrf_token = random_token(32)?;
    let now = app.now_ms();
    let absolute = app.settings().session_absolute;
    let expires_at = now.saturating_add(i64::try_from(absolute.as_millis()).unwrap_or(i64::MAX));
    app.db()
        .create_session(haechi_db::Session {
            id_hash: sha256_hex(&secret),
            handle: random_token(12)?,
            user_id: user.id,
            csrf_token: csrf_token.clone(),
            created_at: now,
            last_seen_at: now,
            expires_at,
            ip: meta.ip.clone(),
            user_agent: meta.user_agent.clone(),
        })
        .await?;
    Ok(StartedSession { account: Account::from(user), secret, csrf_token, expires_at, max_age: absolute })
}

/// Ends the caller's current session (if it is one) and records the sign-out.
///
/// # Errors
/// The database's.
pub async fn sign_out(app: &App, meta: &RequestMeta, p: &Principal) -> AppResult<()> {
    if let AuthVia::Session { id_hash, .. } = &p.via {
        app.db().delete_session(id_hash).await?;
    }
    record(app, meta, "logout", Some(p.id()), None, json!({})).await;
    Ok(())
}

/// One of the caller's sessions.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SessionInfo {
    /// Public handle, for ending it.
    pub handle: String,
    pub created_at: i64,
    pub last_seen_at: i64,
    pub expires_at: i64,
    pub ip: String,
    pub user_agent: String,
    /// The session this request came with.
    pub current: bool,
}

/// The caller's active sessions, newest first.
///
/// # Errors
/// [`AppError::Forbidden`] without the permission; the database's.
pub async fn list(app: &App, p: &Principal) -> AppResult<Vec<SessionInfo>> {
    p.require_person()?;
    let current = match &p.via {
        AuthVia::Session { handle, .. } => Some(handle.as_str()),
        _ => None,
    };
    let rows = app.db().list_sessions(p.id().get()).await?;
    Ok(rows
        .into_iter()
        .map(|s| SessionInfo {
            current: current == Some(s.handle.as_str()),
            handle: s.handle,
            created_at: s.created_at,
            last_seen_at: s.last_seen_at,
            expires_at: s.expires_at,
            ip: s.ip,
            user_agent: s.user_agent,
        })
        .collect())
}

/// Ends one of the caller's sessions by its handle.
///
/// # Errors
/// [`AppError::NotFound`] for a handle that is not one of the caller's sessions.
pub async fn revoke(app: &App, meta: &RequestMeta, p: &Principal, handle: &str) -> AppResult<()> {
    p.require_person()?;
    if !app.db().delete_session_by_handle(p.id().get(), handle).await? {
        return Err(AppError::NotFound);
    }
    record(app, meta, "session_revoked", Some(p.id()), None, json!({"session": handle})).await;
    Ok(())
}

/// Ends every session of `user` (after a role change, a disabled account, a new password).
pub(crate) async fn end_all(app: &App, user: UserId) -> AppResult<u64> {
    Ok(app.db().delete_other_sessions(user.get(), None).await?)
}
