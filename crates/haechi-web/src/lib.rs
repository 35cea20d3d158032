//! Haechi's HTTP server: the REST API under `/api/v1` (JSON, `application/problem+json`
//! errors), browser sessions with CSRF protection, API tokens for apps and agents, TOTP MFA,
//! roles, brute-force defence, access and audit logs, OpenAPI 3.1 and Prometheus metrics.
//!
//! [`build`] makes the router; [`serve`] runs it on a listener until a shutdown signal, so
//! tests bind port 0 and talk to the real server.

pub mod auth;
pub mod error;
pub mod json;
pub mod metrics_names;
pub mod middleware;
pub mod portal;
pub mod routes;
pub mod settings;
pub mod state;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use haechi_app::App;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};
use routes::{admin, auth as auth_routes, health, me, paper, risk, runs, scenarios, sweeps};
pub use settings::WebSettings;
pub use state::AppState;
use std::net::SocketAddr;
use std::sync::OnceLock;
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;
use utoipa_swagger_ui::SwaggerUi;

#[derive(OpenApi)]
#[openapi(
    info(title = "Haechi (해치) API", description = "Practise investing under real KRX rules. Errors are RFC 9457 problem documents."),
    modifiers(&Security),
    tags(
        (name = "auth", description = "Registration, login, logout"),
        (name = "me", description = "The signed-in user's own account"),
        (name = "scenarios", description = "Investment scenarios and their versions"),
        (name = "runs", description = "Simulation runs and reports"),
        (name = "sweeps", description = "Parameter sweeps: a scenario over a grid of its numeric fields"),
        (name = "paper", description = "Paper trading: mock accounts, orders with fail-safes, fills, positions, equity"),
        (name = "risk", description = "Threat response: the risk score, its components and threat events"),
        (name = "admin", description = "Administration and logs"),
        (name = "ops", description = "Health and metrics"),
    )
)]
struct ApiDoc;

struct Security;

impl Modify for Security {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components
            .add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new("haechi_session"))));
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()),
        );
    }
}

/// The Prometheus recorder is process-global; install it once and share the handle (workers
/// serve it too).
pub fn metrics_handle() -> PrometheusHandle {
    static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5];
            let slow = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0];
            let builder = PrometheusBuilder::new()
                .set_buckets_for_metric(Matcher::Full(metrics_names::HTTP_REQUEST_DURATION.into()), &buckets)
                .and_then(|b| b.set_buckets_for_metric(Matcher::Prefix("haechi_run_".into()), &slow))
                .and_then(|b| b.set_buckets_for_metric(Matcher::Prefix("haechi_job_".into()), &slow))
                .unwrap_or_else(|_| PrometheusBuilder::new());
            match builder.install_recorder() {
                Ok(h) => h,
                // Another recorder is installed (embedding): keep a private one for rendering.
                Err(_) => PrometheusBuilder::new().build_recorder().handle(),
            }
        })
        .clone()
}

/// The API and its OpenAPI document.
pub fn api() -> (Router<AppState>, utoipa::openapi::OpenApi) {
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(auth_routes::register))
        .routes(routes!(auth_routes::login))
        .routes(routes!(auth_routes::logout))
        .routes(routes!(me::me))
        .routes(routes!(me::change_password))
        .routes(routes!(me::list_sessions))
        .routes(routes!(me::revoke_session))
        .routes(routes!(me::list_tokens, me::create_token))
        .routes(routes!(me::revoke_token))
        .routes(routes!(me::totp_begin, me::totp_disable))
        .routes(routes!(me::totp_confirm))
        .routes(routes!(paper::list, paper::create))
        .routes(routes!(paper::get, paper::update, paper::close))
        .routes(routes!(paper::reset))
        .routes(routes!(paper::halt))
        .routes(routes!(paper::site_halt))
        .routes(routes!(paper::orders, paper::place))
        .routes(routes!(paper::get_order, paper::modify, paper::cancel))
        .routes(routes!(paper::positions))
        .routes(routes!(paper::fills))
        .routes(routes!(paper::equity))
        .routes(routes!(paper::performance))
        .routes(routes!(paper::events))
        .routes(routes!(paper::socket))
        .routes(routes!(paper::lift_loss_halt))
        .routes(routes!(paper::mirror, paper::set_mirror))
        .routes(routes!(paper::reconcile))
        .routes(routes!(paper::market))
        .routes(routes!(paper::ticker))
        .routes(routes!(risk::risk))
        .routes(routes!(risk::acknowledge))
        .routes(routes!(risk::stress))
        .routes(routes!(scenarios::list, scenarios::create))
        .routes(routes!(scenarios::import))
        .routes(routes!(scenarios::get, scenarios::update, scenarios::delete))
        .routes(routes!(scenarios::undelete))
        .routes(routes!(scenarios::purge))
        .routes(routes!(scenarios::duplicate))
        .routes(routes!(scenarios::versions))
        .routes(routes!(scenarios::version))
        .routes(routes!(scenarios::diff))
        .routes(routes!(scenarios::restore))
        .routes(routes!(scenarios::export))
        .routes(routes!(scenarios::get_shares, scenarios::put_shares))
        .routes(routes!(runs::create, runs::list_for_scenario))
        .routes(routes!(runs::list))
        .routes(routes!(runs::compare))
        .routes(routes!(runs::events))
        .routes(routes!(runs::get, runs::delete))
        .routes(routes!(runs::cancel))
        .routes(routes!(runs::report))
        .routes(routes!(sweeps::create))
        .routes(routes!(sweeps::get))
        .routes(routes!(admin::list_users))
        .routes(routes!(admin::update_user))
        .routes(routes!(admin::list_roles))
        .routes(routes!(admin::set_role_mfa))
        .routes(routes!(admin::audit_log))
        .routes(routes!(admin::access_log))
        .routes(routes!(health::healthz))
        .routes(routes!(health::readyz))
        .routes(routes!(health::metrics))
        .split_for_parts()
}

/// The OpenAPI document alone (for `haechi openapi` and tests).
#[must_use]
pub fn openapi() -> utoipa::openapi::OpenApi {
    api().1
}

/// Builds the HTTP edge over the application: routes, docs, layers, and the background
/// access-log writer.
pub fn build(app: App, settings: WebSettings) -> Router {
    let (tx, rx) = tokio::sync::mpsc::channel(8192);
    tokio::spawn(middleware::access_log_writer(app.db().clone(), rx));
    let body_limit = settings.body_limit_bytes;
    let state = AppState::new(app, settings, metrics_handle(), tx);
    let (router, spec) = api();
    router
        .merge(SwaggerUi::new("/api/docs").url("/api/openapi.json", spec))
        .merge(portal::router())
        .fallback(|| async { error::ApiError::NotFound })
        .layer(DefaultBodyLimit::max(body_limit))
        // A bug must cost one request a 500, not the connection (inside `observe`, so the
        // 500 is logged and counted like any other answer).
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(middleware::panic_response))
        // Inside `observe`, so the page keeps the request id; outside the rest, so every
        // error answer on a portal path (a panic's too) becomes a page.
        .layer(axum::middleware::from_fn(portal::errors::error_pages))
        .layer(axum::middleware::from_fn_with_state(state.clone(), middleware::observe))
        .layer(axum::middleware::from_fn(middleware::security_headers))
        .with_state(state)
}

/// Serves `app` on `listener` until `shutdown` resolves, finishing in-flight requests.
///
/// # Errors
/// The listener's I/O error.
pub async fn serve(
    listener: tokio::net::TcpListener,
    app: Router,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    axum::serve(listener, app.into_make_service_with_connect_info::<SocketAddr>())
        .with_graceful_shutdown(shutdown)
        .await
}
