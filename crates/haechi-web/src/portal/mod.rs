//! The web portal: server-rendered pages (askama) over the same sessions, CSRF tokens and
//! handlers as the API, in Korean first. Pages work without JavaScript; `portal.js` only
//! enhances. The CSP allows scripts and styles from this origin only, so no inline script.
//!
//! Forms carry CSRF tokens in hidden fields: the session's token once signed in, and before
//! that a double-submit token (a random cookie echoed in the form) for the sign-in form.

mod account;
mod admin;
pub mod editor;
pub mod errors;
pub mod i18n;
mod paper;
pub mod report;
mod risk;
mod runs;
mod scenarios;
mod sign_in;
mod sweeps;

use askama::Template;
use axum::Router;
use axum::extract::{Form, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use serde::Deserialize;

use crate::auth::{Caller, ClientInfo};
use crate::error::ApiError;
use crate::routes::auth::{clear_cookie, session_cookie};
use crate::state::AppState;
use errors::{
    ManagePolicies, ManageUsers, MaybeSigned, OwnAccount, ReadLogs, Signed, Simulate, Trade, UiError, UiResult,
};
use haechi_app::auth::{constant_time_eq, random_token};
use haechi_app::rbac::{Permission, allows};
use haechi_app::{AppError, AuthFailure, Principal, RunId};
use i18n::{Lang, Tr};
use std::collections::HashMap;
use std::sync::Arc;

use account::*;
use admin::*;
use paper::*;
use risk::*;
use runs::*;
pub use runs::{RunHeader, render_run_page};
use scenarios::*;
use sign_in::*;
use sweeps::*;

/// The pre-sign-in CSRF cookie (double submit).
const FORM_COOKIE: &str = "haechi_form";

/// Who is signed in, as the navigation needs it.
#[derive(Debug, Clone)]
pub struct NavUser {
    pub email: String,
    /// Sees the admin log pages (admins and auditors).
    pub reads_logs: bool,
    /// Sees the user administration (admins).
    pub manages_users: bool,
}

impl NavUser {
    fn of(p: &Principal) -> NavUser {
        NavUser {
            email: p.user.email.clone(),
            reads_logs: allows(p.role(), Permission::ReadLogs),
            manages_users: allows(p.role(), Permission::ManageUsers),
        }
    }

    /// For benchmarks and tests that render pages without a request.
    #[must_use]
    pub fn new(email: &str) -> NavUser {
        NavUser { email: email.to_owned(), reads_logs: false, manages_users: false }
    }
}

/// A strategy type (`sma_cross`) in the page's language, or the type itself if unknown.
fn strategy_label(t: &Tr, kind: &str) -> String {
    t.lookup(&format!("strategy.{kind}")).unwrap_or(kind).to_owned()
}

/// Marks a message key, so the catalogue test finds it.
pub(crate) const fn msg(key: &'static str) -> &'static str {
    key
}

pub fn router() -> Router<AppState> {
    Router::new()
        .route("/", get(dashboard))
        .route("/login", get(login_page).post(login_submit))
        .route("/register", get(register_page).post(register_submit))
        .route("/logout", post(logout))
        .route("/runs/compare", get(compare_page))
        .route("/runs/{id}", get(run_page))
        .route("/runs/{id}/{file}", get(run_csv))
        .route("/admin/logs", get(admin_logs))
        .route("/admin/users", get(admin_users))
        .route("/admin/users/{id}", post(admin_user_update))
        .route("/admin/policies", post(admin_policies))
        .route("/admin/trading-halt", post(admin_trading_halt))
        .route("/scenarios", get(scenario_list))
        .route("/scenarios/new", get(scenario_new_page).post(scenario_create))
        .route("/scenarios/{id}", get(scenario_page))
        .route("/scenarios/{id}/run", post(scenario_run))
        .route("/scenarios/{id}/sweep", post(scenario_sweep))
        .route("/sweeps/{id}", get(sweep_page))
        .route("/sweeps/{id}/points/{point}/run", post(sweep_point_run))
        .route("/scenarios/{id}/edit", post(scenario_edit))
        .route("/scenarios/{id}/shares", post(scenario_shares))
        .route("/scenarios/{id}/versions/{version}/restore", post(scenario_restore))
        .route("/accounts", get(accounts_page).post(account_open))
        .route("/accounts/{id}", get(account_view))
        .route("/accounts/{id}/orders", post(order_submit))
        .route("/accounts/{id}/halt", post(account_halt))
        .route("/accounts/{id}/loss-halt", post(account_lift_loss_halt))
        .route("/accounts/{id}/mirror", post(account_mirror))
        .route("/accounts/{id}/report", get(account_report))
        .route("/accounts/{id}/stress", get(account_stress))
        .route("/accounts/{id}/report/{file}", get(account_report_csv))
        .route("/accounts/{id}/reset", post(account_reset))
        .route("/orders/{id}/cancel", post(order_cancel))
        .route("/orders/{id}/modify", post(order_modify))
        .route("/risk", get(risk_page))
        .route("/risk/events/{id}/acknowledge", post(risk_event_ack))
        .route("/account", get(account_page))
        .route("/account/mfa", post(account_mfa_begin))
        .route("/account/sessions/{handle}/end", post(account_session_end))
        .route("/account/tokens", post(account_token_create))
        .route("/account/tokens/{id}/revoke", post(account_token_revoke))
        .route("/account/mfa/confirm", post(account_mfa_confirm))
        .layer(axum::middleware::from_fn(form_csrf))
        .route("/assets/{file}", get(asset))
}

/// Language for this request, and the cookie to set when `?lang=` chose it.
fn language(query: Option<&str>, headers: &HeaderMap) -> (Tr, Option<HeaderValue>) {
    let (lang, cookie) = Lang::negotiate(query, headers);
    (Tr::new(lang), cookie)
}

fn page(status: StatusCode, html: Result<String, askama::Error>, cookies: Vec<HeaderValue>) -> Response {
    match html {
        Ok(body) => {
            let mut resp = (status, Html(body)).into_response();
            for c in cookies {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            resp
        }
        Err(e) => ApiError::Internal(format!("template: {e}")).into_response(),
    }
}

fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    crate::auth::cookie_value(headers, name).map(str::to_owned)
}

/// Portal forms carry the CSRF token as the `_csrf` field; the session extractor checks the
/// `x-csrf-token` header. Copying one into the other keeps a single check for API and portal.
async fn form_csrf(req: axum::extract::Request, next: axum::middleware::Next) -> Response {
    let is_form = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.starts_with("application/x-www-form-urlencoded"));
    if req.method() != axum::http::Method::POST || !is_form {
        return next.run(req).await;
    }
    let (mut parts, body) = req.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, 1024 * 1024).await else {
        return ApiError::PayloadTooLarge.into_response();
    };
    if !parts.headers.contains_key(crate::auth::CSRF_HEADER)
        && let Some((_, v)) = url::form_urlencoded::parse(&bytes).find(|(k, _)| k == "_csrf")
        && let Ok(h) = HeaderValue::from_str(&v)
    {
        parts.headers.insert(crate::auth::CSRF_HEADER, h);
    }
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

fn session_csrf(p: &Principal) -> String {
    p.csrf_token().unwrap_or_default().to_owned()
}

fn kst(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms + 9 * 3_600_000)
        .map_or_else(String::new, |d| d.format("%Y-%m-%d %H:%M:%S").to_string())
}

const CSS: &str = include_str!("../../assets/portal.css");
const JS: &str = include_str!("../../assets/portal.js");
const ICON: &str = include_str!("../../assets/favicon.svg");

/// The portal's own stylesheet and script, embedded in the binary (no CDN, no build step).
async fn asset(axum::extract::Path(file): axum::extract::Path<String>) -> Response {
    let (body, kind) = match file.as_str() {
        "portal.css" => (CSS, "text/css; charset=utf-8"),
        "portal.js" => (JS, "text/javascript; charset=utf-8"),
        "favicon.svg" => (ICON, "image/svg+xml"),
        _ => return ApiError::NotFound.into_response(),
    };
    let mut resp = body.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(kind));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=3600"));
    resp
}
