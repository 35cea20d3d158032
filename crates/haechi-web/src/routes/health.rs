//! Liveness, readiness and metrics.

use crate::state::AppState;
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

/// The process is up.
#[utoipa::path(get, path = "/healthz", tag = "ops", responses((status = 200, body = String)))]
pub async fn healthz() -> &'static str {
    "ok"
}

/// The database answers.
#[utoipa::path(get, path = "/readyz", tag = "ops", responses((status = 200, body = String), (status = 503)))]
pub async fn readyz(State(state): State<AppState>) -> impl IntoResponse {
    match state.db().ping().await {
        Ok(()) => (axum::http::StatusCode::OK, "ready"),
        Err(e) => {
            tracing::warn!(error = %e, "readiness check failed");
            (axum::http::StatusCode::SERVICE_UNAVAILABLE, "database unreachable")
        }
    }
}

/// Prometheus metrics: requests by route and status, latency histogram. Needs
/// `Authorization: Bearer <metrics_token>`; without a configured token it is not served.
#[utoipa::path(get, path = "/metrics", tag = "ops",
    responses((status = 200, body = String), (status = 401), (status = 404)))]
pub async fn metrics(State(state): State<AppState>, headers: axum::http::HeaderMap) -> axum::response::Response {
    let Some(expected) = state.settings().metrics_token.as_deref() else {
        return crate::error::ApiError::NotFound.into_response();
    };
    let sent = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or_default();
    if !haechi_app::auth::constant_time_eq(sent, expected) {
        return crate::error::ApiError::Unauthenticated.into_response();
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], state.metrics().render()).into_response()
}
