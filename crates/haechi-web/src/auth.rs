//! Request extractors: who is calling ([`Caller`]) and from where ([`ClientInfo`]). The
//! decisions (expiry, revocation, CSRF, scopes, the role's MFA rule) are the app layer's
//! [`haechi_app::identify`]; this module only reads headers.

use crate::error::{ApiError, RequestId};
use crate::state::AppState;
use axum::extract::{ConnectInfo, FromRequestParts};
use axum::http::request::Parts;
use axum::http::{Method, header};
use haechi_app::identify::{Access, Credential, identify};
use haechi_app::{AppError, AuthFailure, Principal, RequestMeta};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

/// The session cookie's name.
pub const SESSION_COOKIE: &str = "haechi_session";
/// The header carrying the CSRF token on unsafe requests authenticated by cookie.
pub const CSRF_HEADER: &str = "x-csrf-token";

/// Slot the access-log middleware reads after the handler ran, to record the user id.
#[derive(Debug, Clone, Default)]
pub struct UserSlot(pub Arc<Mutex<Option<i64>>>);

/// The client's address, request id and user agent, for audit and throttling.
#[derive(Debug, Clone)]
pub struct ClientInfo(pub RequestMeta);

impl FromRequestParts<AppState> for ClientInfo {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(ClientInfo(client_info(parts, state.settings().trusted_proxy)))
    }
}

#[must_use]
pub fn client_info(parts: &Parts, trusted_proxy: bool) -> RequestMeta {
    let forwarded = trusted_proxy
        .then(|| parts.headers.get("x-forwarded-for").and_then(|v| v.to_str().ok()))
        .flatten()
        // The right-most entry is the one the proxy itself added (or the only one, when it
        // overwrites the header); entries left of it are whatever the client sent.
        .and_then(|v| v.rsplit(',').next())
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
    RequestMeta { ip, request_id, user_agent }
}

/// A cookie's value from the request headers.
pub(crate) fn cookie_value<'a>(headers: &'a axum::http::HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// The signed-in caller: a bearer token or the session cookie, checked by the app layer.
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

/// Authenticates a request's parts (for extractors of the API and the portal).
///
/// # Errors
/// What [`identify`] says.
pub async fn authenticate(parts: &Parts, state: &AppState) -> Result<Principal, AppError> {
    let bearer = parts
        .headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .map(str::trim);
    let credential = match (bearer, cookie_value(&parts.headers, SESSION_COOKIE)) {
        (Some(token), _) => Credential::Bearer(token),
        (None, Some(cookie)) => {
            Credential::Session { cookie, csrf_sent: parts.headers.get(CSRF_HEADER).and_then(|v| v.to_str().ok()) }
        }
        (None, None) => return Err(AppError::Unauthenticated(AuthFailure::Missing)),
    };
    let safe = matches!(parts.method, Method::GET | Method::HEAD | Method::OPTIONS);
    let path = parts.uri.path();
    let own_account = path.starts_with("/api/v1/me") || path == "/account" || path.starts_with("/account/");
    let principal = identify(state.app(), credential, Access { safe, own_account }).await?;
    if let Some(slot) = parts.extensions.get::<UserSlot>()
        && let Ok(mut g) = slot.0.lock()
    {
        *g = Some(principal.id().get());
    }
    tracing::Span::current().record("user_id", principal.id().get());
    Ok(principal)
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        Ok(Caller(authenticate(parts, state).await?))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parts(xff: &str) -> Parts {
        let (mut parts, ()) =
            axum::http::Request::builder().header("x-forwarded-for", xff).body(()).unwrap().into_parts();
        parts.extensions.insert(ConnectInfo(SocketAddr::from(([10, 0, 0, 2], 443))));
        parts
    }

    #[test]
    fn behind_a_proxy_the_client_cannot_choose_its_address() {
        // An appending proxy: the client's own claim comes first, the proxy's view last.
        assert_eq!(client_info(&parts("6.6.6.6, 203.0.113.9"), true).ip, "203.0.113.9");
        // An overwriting proxy: one entry.
        assert_eq!(client_info(&parts("203.0.113.9"), true).ip, "203.0.113.9");
        // Without a trusted proxy the header is ignored: the peer's address counts.
        assert_eq!(client_info(&parts("6.6.6.6"), false).ip, "10.0.0.2");
    }
}
