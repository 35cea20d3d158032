//! Cross-cutting layers: request ids, security headers, the access log and HTTP metrics.

use crate::auth::{UserSlot, client_info};
use crate::error::{ProblemMarker, RequestId};
use crate::metrics_names;
use crate::state::AppState;
use axum::body::Body;
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderName, HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
use haechi_db::{NewAccessEntry, now_ms};
use std::time::Instant;
use tracing::Instrument as _;

pub const REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Gives every request an id (a well-formed incoming `x-request-id` is kept, so a proxy's id
/// follows the request), records it in the access log and metrics, and fills the id into
/// problem bodies.
pub async fn observe(State(state): State<AppState>, mut req: Request, next: Next) -> Response {
    let started = Instant::now();
    let incoming = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty() && v.len() <= 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-'))
        .map(str::to_owned);
    let id = incoming.unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    req.extensions_mut().insert(RequestId(id.clone()));
    let slot = UserSlot::default();
    req.extensions_mut().insert(slot.clone());
    let method = req.method().to_string();
    let route = req.extensions().get::<MatchedPath>().map_or_else(|| "unmatched".to_owned(), |m| m.as_str().to_owned());
    let (parts, body) = req.into_parts();
    let client = client_info(&parts, state.settings().trusted_proxy);
    let req = Request::from_parts(parts, body);

    // One span per request: every line logged while answering it (an internal error's one
    // line included) carries the request id, the route and, once known, the user.
    let span = tracing::info_span!("request", request_id = %id, method = %method, route = %route, user_id = tracing::field::Empty);
    let mut resp = next.run(req).instrument(span).await;
    if resp.extensions().get::<ProblemMarker>().is_some() {
        resp = with_request_id_in_problem(resp, &id).await;
    }
    if let Ok(v) = HeaderValue::from_str(&id) {
        resp.headers_mut().insert(REQUEST_ID, v);
    }
    let status = resp.status().as_u16();
    let elapsed = started.elapsed();
    let labels = [("method", method.clone()), ("route", route.clone()), ("status", status.to_string())];
    metrics::counter!(metrics_names::HTTP_REQUESTS, &labels).increment(1);
    metrics::histogram!(metrics_names::HTTP_REQUEST_DURATION, "route" => route.clone()).record(elapsed.as_secs_f64());
    let user_id = slot.0.lock().ok().and_then(|g| *g);
    let entry = NewAccessEntry {
        at: now_ms(),
        request_id: id,
        user_id,
        ip: client.ip,
        method,
        route,
        status: i32::from(status),
        latency_us: i64::try_from(elapsed.as_micros()).unwrap_or(i64::MAX),
    };
    // Never block a response on logging: a full queue drops the entry and counts it.
    if state.access_log().try_send(entry).is_err() {
        metrics::counter!(metrics_names::ACCESS_LOG_DROPPED).increment(1);
    }
    resp
}

async fn with_request_id_in_problem(resp: Response, id: &str) -> Response {
    let (parts, body) = resp.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1 << 20).await else {
        return Response::from_parts(parts, Body::empty());
    };
    let body = match serde_json::from_slice::<serde_json::Value>(&bytes) {
        Ok(mut v) => {
            v["request_id"] = serde_json::Value::String(id.to_owned());
            serde_json::to_vec(&v).map_or(bytes, Into::into)
        }
        Err(_) => bytes,
    };
    let mut resp = Response::from_parts(parts, Body::from(body));
    resp.headers_mut().remove(header::CONTENT_LENGTH);
    resp
}

/// Security headers on every response.
pub async fn security_headers(req: Request, next: Next) -> Response {
    let docs = req.uri().path().starts_with("/api/docs");
    let mut resp = next.run(req).await;
    let h = resp.headers_mut();
    // Scripts and styles only from this origin; the Swagger UI page also needs inline styles.
    let csp = if docs {
        "default-src 'self'; img-src 'self' data:; style-src 'self' 'unsafe-inline'; script-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    } else {
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
    };
    // A handler that set its own policy (the sandboxed HTML report) keeps it.
    if !h.contains_key(header::CONTENT_SECURITY_POLICY) {
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(csp));
    }
    // Browsers must not guess content types (a JSON body rendered as HTML is an XSS).
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    // Older browsers that ignore frame-ancestors: no framing (clickjacking).
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    // Never leak paths (which may carry ids) to other sites.
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    // Credentials-bearing API answers must not be cached by shared caches.
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    resp
}

/// Writes queued access-log entries in batches, off the request path.
pub async fn access_log_writer(db: haechi_db::Db, mut rx: tokio::sync::mpsc::Receiver<NewAccessEntry>) {
    let mut batch = Vec::with_capacity(256);
    while rx.recv_many(&mut batch, 256).await > 0 {
        let entries = std::mem::take(&mut batch);
        if let Err(e) = db.append_access(entries).await {
            tracing::error!(error = %e, "access log write failed");
        }
    }
}

/// Turns a handler panic into a generic 500 problem; the panic message is logged, not sent.
pub fn panic_response(err: Box<dyn std::any::Any + Send + 'static>) -> Response {
    let msg = err
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| err.downcast_ref::<&str>().copied())
        .unwrap_or("non-string panic");
    axum::response::IntoResponse::into_response(crate::error::ApiError::Internal(format!("handler panicked: {msg}")))
}
