//! The web portal: server-rendered pages (askama) over the same sessions, CSRF tokens and
//! handlers as the API, in Korean first. Pages work without JavaScript; `portal.js` only
//! enhances. The CSP allows scripts and styles from this origin only, so no inline script.
//!
//! Forms carry CSRF tokens in hidden fields: the session's token once signed in, and before
//! that a double-submit token (a random cookie echoed in the form) for the sign-in form.

pub mod i18n;
pub mod report;

use askama::Template;
use axum::Router;
use axum::extract::{Form, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::routing::{get, post};
use haechi_db::RunQuery;
use serde::Deserialize;

use crate::auth::extract::{AuthVia, ClientInfo, Principal, SESSION_COOKIE};
use crate::auth::{constant_time_eq, random_token, sha256_hex};
use crate::error::ApiError;
use crate::rbac::Permission;
use crate::routes::auth::{authenticate, clear_cookie, create_account};
use crate::routes::runs::readable_run;
use crate::state::AppState;
use i18n::{Lang, Tr};
use std::collections::HashMap;
use std::sync::Arc;

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
            reads_logs: crate::rbac::allows(p.role, Permission::ReadLogs),
            manages_users: crate::rbac::allows(p.role, Permission::ManageUsers),
        }
    }

    /// For benchmarks and tests that render pages without a request.
    #[must_use]
    pub fn new(email: &str) -> NavUser {
        NavUser { email: email.to_owned(), reads_logs: false, manages_users: false }
    }
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
        .route("/runs/{id}/trades.csv", get(run_trades_csv))
        .route("/admin/logs", get(admin_logs))
        .route("/admin/users", get(admin_users))
        .route("/admin/users/{id}", post(admin_user_update))
        .route("/scenarios", get(scenario_list))
        .route("/scenarios/new", get(scenario_new_page).post(scenario_create))
        .route("/scenarios/{id}", get(scenario_page))
        .route("/scenarios/{id}/run", post(scenario_run))
        .route("/scenarios/{id}/edit", post(scenario_edit))
        .route("/scenarios/{id}/shares", post(scenario_shares))
        .route("/scenarios/{id}/versions/{version}/restore", post(scenario_restore))
        .route("/account", get(account_page))
        .route("/account/mfa", post(account_mfa_begin))
        .route("/account/sessions/{handle}/end", post(account_session_end))
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
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_owned())
}

#[derive(Template)]
#[template(path = "portal/login.html")]
struct LoginPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    form_token: &'a str,
    email: &'a str,
    mfa: bool,
    error: Option<&'static str>,
    notice: Option<&'static str>,
}

/// One run as the dashboard lists it, figures already formatted.
struct RunRow {
    id: i64,
    state: String,
    state_key: &'static str,
    total_return: String,
    return_class: &'static str,
    cagr: String,
    max_drawdown: String,
    sharpe: String,
    has_report: bool,
}

#[derive(Template)]
#[template(path = "portal/dashboard.html")]
struct DashboardPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    welcome: String,
    runs: Vec<RunRow>,
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{:+.2}%", v * 100.0))
}

fn state_key(state: &str) -> &'static str {
    match state {
        "queued" => msg("run.state.queued"),
        "running" => msg("run.state.running"),
        "succeeded" => msg("run.state.succeeded"),
        "failed" => msg("run.state.failed"),
        _ => msg("run.state.cancelled"),
    }
}

async fn dashboard(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
) -> Response {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let Ok(p) = principal else { return Redirect::to("/login").into_response() };
    let csrf = match &p.via {
        AuthVia::Session { csrf_token, .. } => csrf_token.clone(),
        AuthVia::Token { .. } => String::new(),
    };
    let runs = match state
        .db()
        .list_runs(&RunQuery { owner_id: Some(p.user.id), page: 0, per_page: 10, ..RunQuery::default() })
        .await
    {
        Ok(page) => page.items,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let rows = runs
        .into_iter()
        .map(|r| RunRow {
            id: r.id,
            state_key: state_key(&r.state),
            return_class: match r.total_return {
                Some(v) if v > 0.0 => "up",
                Some(v) if v < 0.0 => "down",
                _ => "",
            },
            total_return: pct(r.total_return),
            cagr: pct(r.cagr),
            max_drawdown: pct(r.max_drawdown),
            sharpe: r.sharpe.map_or_else(|| "—".to_owned(), |s| format!("{s:.2}")),
            has_report: r.report_key.is_some(),
            state: r.state,
        })
        .collect();
    let html = DashboardPage {
        t,
        user: Some(NavUser::of(&p)),
        csrf: &csrf,
        welcome: t.fill("dashboard.welcome", &[("name", &p.user.display_name)]),
        runs: rows,
    }
    .render();
    page(StatusCode::OK, html, lang_cookie.into_iter().collect())
}

/// The sign-in form, with a fresh double-submit token when the browser has none.
async fn login_page(RawQuery(q): RawQuery, headers: HeaderMap, principal: Result<Principal, ApiError>) -> Response {
    if principal.is_ok() {
        return Redirect::to("/").into_response();
    }
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let registered = q.as_deref().is_some_and(|q| q.split('&').any(|kv| kv == "registered=1"));
    let notice = registered.then_some(msg("register.done"));
    form_page(t, &headers, lang_cookie, StatusCode::OK, |t, token| {
        LoginPage { t, user: None, csrf: "", form_token: token, email: "", mfa: false, error: None, notice }.render()
    })
}

/// Renders a signed-out form page with the double-submit token (a fresh one, and its cookie,
/// when the browser has none).
fn form_page(
    t: Tr,
    headers: &HeaderMap,
    lang_cookie: Option<HeaderValue>,
    status: StatusCode,
    render: impl FnOnce(Tr, &str) -> Result<String, askama::Error>,
) -> Response {
    let mut cookies: Vec<HeaderValue> = lang_cookie.into_iter().collect();
    let token = match cookie(headers, FORM_COOKIE) {
        Some(t) if t.len() >= 32 => t,
        _ => {
            let Ok(fresh) = random_token(32) else { return ApiError::Internal("randomness".into()).into_response() };
            if let Ok(v) = HeaderValue::from_str(&format!("{FORM_COOKIE}={fresh}; Path=/; HttpOnly; SameSite=Strict")) {
                cookies.push(v);
            }
            fresh
        }
    };
    page(status, render(t, &token), cookies)
}

/// Whether the form's double-submit token matches its cookie.
fn form_token_ok(headers: &HeaderMap, sent: &str) -> bool {
    let expected = cookie(headers, FORM_COOKIE).unwrap_or_default();
    !expected.is_empty() && constant_time_eq(sent, &expected)
}

fn login_form(
    t: Tr,
    headers: &HeaderMap,
    lang_cookie: Option<HeaderValue>,
    status: StatusCode,
    email: &str,
    mfa: bool,
    error: Option<&'static str>,
) -> Response {
    form_page(t, headers, lang_cookie, status, |t, token| {
        LoginPage { t, user: None, csrf: "", form_token: token, email, mfa, error, notice: None }.render()
    })
}

#[derive(Debug, Deserialize)]
struct LoginForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    password: String,
    #[serde(default)]
    totp_code: String,
    #[serde(default)]
    recovery_code: String,
    #[serde(default, rename = "_form")]
    form: String,
}

fn non_empty(s: &str) -> Option<&str> {
    let s = s.trim();
    (!s.is_empty()).then_some(s)
}

async fn login_submit(
    State(state): State<AppState>,
    client: ClientInfo,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Form(f): Form<LoginForm>,
) -> Response {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    if !form_token_ok(&headers, &f.form) {
        return login_form(
            t,
            &headers,
            lang_cookie,
            StatusCode::FORBIDDEN,
            &f.email,
            false,
            Some(msg("login.form_expired")),
        );
    }
    let (totp, recovery) = (non_empty(&f.totp_code), non_empty(&f.recovery_code));
    match authenticate(&state, &client, &f.email, f.password, totp, recovery).await {
        Ok((session_cookie, _)) => {
            let mut resp = Redirect::to("/").into_response();
            resp.headers_mut().append(header::SET_COOKIE, session_cookie);
            if let Some(c) = lang_cookie {
                resp.headers_mut().append(header::SET_COOKIE, c);
            }
            resp
        }
        Err(ApiError::MfaRequired) => login_form(
            t,
            &headers,
            lang_cookie,
            StatusCode::UNAUTHORIZED,
            &f.email,
            true,
            Some(msg("login.mfa_required")),
        ),
        Err(ApiError::InvalidCredentials) if totp.is_some() || recovery.is_some() => login_form(
            t,
            &headers,
            lang_cookie,
            StatusCode::UNAUTHORIZED,
            &f.email,
            true,
            Some(msg("login.invalid_code")),
        ),
        Err(ApiError::InvalidCredentials) => {
            login_form(t, &headers, lang_cookie, StatusCode::UNAUTHORIZED, &f.email, false, Some(msg("login.invalid")))
        }
        Err(ApiError::TooManyRequests { retry_after_secs }) => {
            let mut resp = login_form(
                t,
                &headers,
                lang_cookie,
                StatusCode::TOO_MANY_REQUESTS,
                &f.email,
                false,
                Some(msg("login.locked")),
            );
            if let Ok(v) = HeaderValue::from_str(&retry_after_secs.to_string()) {
                resp.headers_mut().insert(header::RETRY_AFTER, v);
            }
            resp
        }
        Err(other) => other.into_response(),
    }
}

#[derive(Template)]
#[template(path = "portal/register.html")]
struct RegisterPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    form_token: &'a str,
    email: &'a str,
    display_name: &'a str,
    /// (field, message key), in form order.
    errors: Vec<(&'static str, &'static str)>,
}

impl RegisterPage<'_> {
    fn has_error(&self, field: &str) -> bool {
        self.errors.iter().any(|(f, _)| *f == field)
    }

    fn error_for(&self, field: &str) -> &'static str {
        self.errors.iter().find(|(f, _)| *f == field).map_or("", |(_, key)| self.t.get(key))
    }
}

async fn register_page(RawQuery(q): RawQuery, headers: HeaderMap, principal: Result<Principal, ApiError>) -> Response {
    if principal.is_ok() {
        return Redirect::to("/").into_response();
    }
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    form_page(t, &headers, lang_cookie, StatusCode::OK, |t, token| {
        RegisterPage { t, user: None, csrf: "", form_token: token, email: "", display_name: "", errors: Vec::new() }
            .render()
    })
}

#[derive(Debug, Deserialize)]
struct RegisterForm {
    #[serde(default)]
    email: String,
    #[serde(default)]
    display_name: String,
    #[serde(default)]
    password: String,
    #[serde(default, rename = "_form")]
    form: String,
}

/// Creates the account through the API's own validation; problems come back next to their
/// fields, in the page's language.
async fn register_submit(
    State(state): State<AppState>,
    client: ClientInfo,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Form(f): Form<RegisterForm>,
) -> Response {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    if !form_token_ok(&headers, &f.form) {
        return login_form(t, &headers, lang_cookie, StatusCode::FORBIDDEN, "", false, Some(msg("login.form_expired")));
    }
    let errors: Vec<(&'static str, &'static str)> =
        match create_account(&state, &client, &f.email, &f.display_name, f.password).await {
            Ok(_) => return Redirect::to("/login?registered=1").into_response(),
            Err(ApiError::Validation(problems)) => [
                ("email", msg("register.error.email")),
                ("display_name", msg("register.error.display_name")),
                ("password", msg("register.error.password")),
            ]
            .into_iter()
            .filter(|(field, _)| problems.iter().any(|p| p.field == *field))
            .collect(),
            Err(ApiError::Conflict(_)) => vec![("email", msg("register.error.taken"))],
            Err(other) => return other.into_response(),
        };
    form_page(t, &headers, lang_cookie, StatusCode::UNPROCESSABLE_ENTITY, |t, token| {
        RegisterPage {
            t,
            user: None,
            csrf: "",
            form_token: token,
            email: &f.email,
            display_name: &f.display_name,
            errors,
        }
        .render()
    })
}

/// Trades per page on the report.
const TRADES_PER_PAGE: usize = 50;

struct TradeRow {
    ticker: String,
    entry_date: chrono::NaiveDate,
    exit_date: chrono::NaiveDate,
    quantity: u64,
    pnl: String,
    class: &'static str,
    holding: String,
}

#[derive(Template)]
#[template(path = "portal/run.html")]
struct RunPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    run_id: i64,
    report: Option<Arc<report::ReportView>>,
    equity_svg: String,
    drawdown_svg: String,
    metrics: Vec<report::MetricRow>,
    heat: Vec<report::HeatRow>,
    trades: Vec<TradeRow>,
    page: usize,
    pages: usize,
    state: String,
    state_key: &'static str,
    progress: u32,
}

/// The run's parsed report, from the cache or object storage; `None` until it succeeded.
async fn load_report(state: &AppState, run: &haechi_db::Run) -> Result<Option<Arc<report::ReportView>>, ApiError> {
    let Some(prefix) = run.report_key.as_deref().filter(|_| run.state == "succeeded") else { return Ok(None) };
    let key = format!("{prefix}report.json");
    if let Some(v) = report::cached(&key) {
        return Ok(Some(v));
    }
    let bytes = state
        .services()
        .objects
        .get(&key)
        .await
        .map_err(|e| ApiError::Internal(format!("reading the report of run {}: {e}", run.id)))?;
    let parsed = tokio::task::spawn_blocking(move || report::parse(&key, &bytes))
        .await
        .map_err(|e| ApiError::Internal(format!("parsing a report: {e}")))?
        .map_err(|e| ApiError::Internal(format!("report of run {}: {e}", run.id)))?;
    Ok(Some(parsed))
}

/// What the report page shows of the run row.
#[derive(Debug, Clone)]
pub struct RunHeader {
    pub id: i64,
    pub state: String,
    pub progress: f64,
}

/// Renders the report page (also what the render benchmark measures).
///
/// # Errors
/// A template error.
pub fn render_run_page(
    t: Tr,
    user: Option<NavUser>,
    csrf: &str,
    run: &RunHeader,
    r: Option<Arc<report::ReportView>>,
    page: usize,
) -> Result<String, askama::Error> {
    let (equity_svg, drawdown_svg, metrics, heat) = match &r {
        Some(r) => (
            report::equity_svg(r, &t),
            report::drawdown_svg(r, &t),
            report::metric_rows(&r.summary),
            report::heat_rows(r),
        ),
        None => (String::new(), String::new(), Vec::new(), Vec::new()),
    };
    let n = r.as_ref().map_or(0, |r| r.trades.len());
    let pages = n.div_ceil(TRADES_PER_PAGE).max(1);
    let page = page.clamp(1, pages);
    let trades = r
        .as_ref()
        .map(|r| {
            r.trades
                .iter()
                .skip((page - 1) * TRADES_PER_PAGE)
                .take(TRADES_PER_PAGE)
                .map(|tr| TradeRow {
                    ticker: tr.ticker.clone(),
                    entry_date: tr.entry_date,
                    exit_date: tr.exit_date,
                    quantity: tr.quantity,
                    pnl: report::won(tr.pnl),
                    class: match tr.pnl.signum() {
                        1 => "up",
                        -1 => "down",
                        _ => "",
                    },
                    holding: format!("{:.0}", tr.holding_sessions),
                })
                .collect()
        })
        .unwrap_or_default();
    RunPage {
        t,
        user,
        csrf,
        run_id: run.id,
        report: r,
        equity_svg,
        drawdown_svg,
        metrics,
        heat,
        trades,
        page,
        pages,
        state: run.state.clone(),
        state_key: state_key(&run.state),
        progress: (run.progress * 100.0).round().clamp(0.0, 100.0) as u32,
    }
    .render()
}

fn page_param(q: Option<&str>) -> usize {
    q.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "page").and_then(|(_, v)| v.parse().ok())
    })
    .unwrap_or(1)
}

async fn run_page(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
) -> Response {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let Ok(p) = principal else { return Redirect::to("/login").into_response() };
    if let Err(e) = p.require(Permission::Simulate) {
        return e.into_response();
    }
    let run = match readable_run(&state, &p, id).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let r = match load_report(&state, &run).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    let csrf = match &p.via {
        AuthVia::Session { csrf_token, .. } => csrf_token.clone(),
        AuthVia::Token { .. } => String::new(),
    };
    let header = RunHeader { id: run.id, state: run.state.clone(), progress: run.progress };
    let html = render_run_page(t, Some(NavUser::of(&p)), &csrf, &header, r, page_param(q.as_deref()));
    page(StatusCode::OK, html, lang_cookie.into_iter().collect())
}

async fn run_trades_csv(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    principal: Result<Principal, ApiError>,
) -> Response {
    let Ok(p) = principal else { return Redirect::to("/login").into_response() };
    if let Err(e) = p.require(Permission::Simulate) {
        return e.into_response();
    }
    let run = match readable_run(&state, &p, id).await {
        Ok(r) => r,
        Err(e) => return e.into_response(),
    };
    match load_report(&state, &run).await {
        Ok(Some(r)) => {
            let mut resp = report::trades_csv(&r).into_response();
            let h = resp.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
            if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"run-{id}-trades.csv\"")) {
                h.insert(header::CONTENT_DISPOSITION, v);
            }
            resp
        }
        Ok(None) => ApiError::Conflict(format!("the run has no report ({})", run.state)).into_response(),
        Err(e) => e.into_response(),
    }
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
    if !parts.headers.contains_key(crate::auth::extract::CSRF_HEADER)
        && let Some((_, v)) = url::form_urlencoded::parse(&bytes).find(|(k, _)| k == "_csrf")
        && let Ok(h) = HeaderValue::from_str(&v)
    {
        parts.headers.insert(crate::auth::extract::CSRF_HEADER, h);
    }
    next.run(axum::extract::Request::from_parts(parts, axum::body::Body::from(bytes))).await
}

#[derive(Template)]
#[template(path = "portal/account.html")]
struct AccountPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    mfa_enabled: bool,
    recovery_left: String,
    enrolment: Option<crate::routes::me::TotpEnrolment>,
    recovery_codes: Vec<String>,
    error: Option<&'static str>,
    sessions: Vec<SessionRow>,
    tokens: Vec<TokenRow>,
}

struct SessionRow {
    handle: String,
    ip: String,
    agent: String,
    created: String,
    seen: String,
    current: bool,
}

struct TokenRow {
    id: i64,
    name: String,
    prefix: String,
    scopes: String,
    created: String,
    seen: String,
    revoked: bool,
}

fn session_csrf(p: &Principal) -> String {
    match &p.via {
        AuthVia::Session { csrf_token, .. } => csrf_token.clone(),
        AuthVia::Token { .. } => String::new(),
    }
}

#[allow(clippy::too_many_arguments)]
async fn account_render(
    state: &AppState,
    t: Tr,
    p: &Principal,
    enrolment: Option<crate::routes::me::TotpEnrolment>,
    recovery_codes: Vec<String>,
    error: Option<&'static str>,
    status: StatusCode,
    cookies: Vec<HeaderValue>,
) -> Response {
    let left = match state.db().unused_recovery_codes(p.user.id).await {
        Ok(n) => n,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let current = match &p.via {
        AuthVia::Session { handle, .. } => Some(handle.clone()),
        AuthVia::Token { .. } => None,
    };
    let sessions = match state.db().list_sessions(p.user.id).await {
        Ok(list) => list
            .into_iter()
            .map(|s| SessionRow {
                current: current.as_deref() == Some(s.handle.as_str()),
                handle: s.handle,
                ip: s.ip,
                agent: s.user_agent,
                created: kst(s.created_at),
                seen: kst(s.last_seen_at),
            })
            .collect(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let tokens = match state.db().list_tokens(p.user.id).await {
        Ok(list) => list
            .into_iter()
            .map(|k| TokenRow {
                id: k.id,
                name: k.name,
                prefix: k.prefix,
                scopes: k.scopes,
                created: kst(k.created_at),
                seen: k.last_used_at.map(kst).unwrap_or_default(),
                revoked: k.revoked_at.is_some(),
            })
            .collect(),
        Err(e) => return ApiError::from(e).into_response(),
    };
    let csrf = session_csrf(p);
    let html = AccountPage {
        sessions,
        tokens,
        t,
        user: Some(NavUser::of(p)),
        csrf: &csrf,
        mfa_enabled: p.user.mfa_enabled || !recovery_codes.is_empty(),
        recovery_left: t.fill("account.recovery_left", &[("n", &left.to_string())]),
        enrolment,
        recovery_codes,
        error,
    }
    .render();
    page(status, html, cookies)
}

async fn account_page(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
) -> Response {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let Ok(p) = principal else { return Redirect::to("/login").into_response() };
    account_render(&state, t, &p, None, Vec::new(), None, StatusCode::OK, lang_cookie.into_iter().collect()).await
}

async fn account_mfa_begin(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
) -> Response {
    let (t, _) = language(q.as_deref(), &headers);
    let p = match principal {
        Ok(p) => p,
        Err(ApiError::Unauthenticated) => return Redirect::to("/login").into_response(),
        Err(e) => return e.into_response(),
    };
    match crate::routes::me::begin_totp(&state, &p.user).await {
        Ok(enrolment) => {
            account_render(&state, t, &p, Some(enrolment), Vec::new(), None, StatusCode::OK, Vec::new()).await
        }
        Err(ApiError::Conflict(_)) => Redirect::to("/account").into_response(),
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct ConfirmForm {
    #[serde(default)]
    code: String,
}

async fn account_mfa_confirm(
    State(state): State<AppState>,
    client: ClientInfo,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
    Form(f): Form<ConfirmForm>,
) -> Response {
    let (t, _) = language(q.as_deref(), &headers);
    let p = match principal {
        Ok(p) => p,
        Err(ApiError::Unauthenticated) => return Redirect::to("/login").into_response(),
        Err(e) => return e.into_response(),
    };
    match crate::routes::me::confirm_totp(&state, &client, &p.user, f.code.trim()).await {
        Ok(codes) => account_render(&state, t, &p, None, codes, None, StatusCode::OK, Vec::new()).await,
        Err(ApiError::Validation(_)) => {
            let secret = p.user.totp_secret.clone().unwrap_or_default();
            match crate::routes::me::enrolment_of(&secret, &p.user.email) {
                Ok(e) => {
                    account_render(
                        &state,
                        t,
                        &p,
                        Some(e),
                        Vec::new(),
                        Some(msg("account.bad_code")),
                        StatusCode::UNPROCESSABLE_ENTITY,
                        Vec::new(),
                    )
                    .await
                }
                Err(e) => e.into_response(),
            }
        }
        Err(ApiError::Conflict(_)) => Redirect::to("/account").into_response(),
        Err(e) => e.into_response(),
    }
}

/// One log line, already formatted; `a`..`d` are the columns of the log shown.
struct LogRow {
    at: String,
    user: String,
    ip: String,
    a: String,
    b: String,
    c: String,
    d: String,
}

#[derive(Template)]
#[template(path = "portal/admin_logs.html")]
struct AdminLogsPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    audit: bool,
    user_id: String,
    kind: String,
    status: String,
    total: String,
    rows: Vec<LogRow>,
    prev: Option<String>,
    next: Option<String>,
}

const LOG_ROWS: u64 = 50;

fn kst(ms: i64) -> String {
    chrono::DateTime::from_timestamp_millis(ms + 9 * 3_600_000)
        .map_or_else(String::new, |d| d.format("%Y-%m-%d %H:%M:%S").to_string())
}

/// Access and audit logs with filters, for admins and auditors.
async fn admin_logs(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
) -> Response {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let Ok(p) = principal else { return Redirect::to("/login").into_response() };
    if let Err(e) = p.require(Permission::ReadLogs) {
        return e.into_response();
    }
    let params: HashMap<String, String> =
        q.as_deref().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let get = |k: &str| params.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let audit = get("log") == "audit";
    let (user_id, kind, status) = (get("user_id"), get("kind"), get("status"));
    let page_no: u64 = get("page").parse().unwrap_or(0);
    let query = haechi_db::LogQuery {
        user_id: user_id.parse().ok(),
        kind: (!kind.is_empty()).then(|| kind.clone()),
        status: status.parse().ok(),
        page: page_no,
        per_page: LOG_ROWS,
        ..haechi_db::LogQuery::default()
    };
    let (rows, total) = if audit {
        match state.db().audit_entries(&query).await {
            Ok(pg) => (
                pg.items
                    .into_iter()
                    .map(|e| LogRow {
                        at: kst(e.at),
                        user: e.user_id.map_or_else(String::new, |u| u.to_string()),
                        ip: e.ip,
                        a: e.event,
                        b: e.detail,
                        c: String::new(),
                        d: String::new(),
                    })
                    .collect::<Vec<_>>(),
                pg.total,
            ),
            Err(e) => return ApiError::from(e).into_response(),
        }
    } else {
        match state.db().access_entries(&query).await {
            Ok(pg) => (
                pg.items
                    .into_iter()
                    .map(|e| LogRow {
                        at: kst(e.at),
                        user: e.user_id.map_or_else(String::new, |u| u.to_string()),
                        ip: e.ip,
                        a: e.method,
                        b: e.route,
                        c: e.status.to_string(),
                        d: format!("{:.1}", e.latency_us as f64 / 1000.0),
                    })
                    .collect::<Vec<_>>(),
                pg.total,
            ),
            Err(e) => return ApiError::from(e).into_response(),
        }
    };
    let link = |pg: u64| {
        let mut u = url::form_urlencoded::Serializer::new(String::from("/admin/logs?"));
        u.append_pair("log", if audit { "audit" } else { "access" });
        for (k, v) in [("user_id", &user_id), ("kind", &kind), ("status", &status)] {
            if !v.is_empty() {
                u.append_pair(k, v);
            }
        }
        u.append_pair("page", &pg.to_string());
        u.finish()
    };
    let csrf = session_csrf(&p);
    let html = AdminLogsPage {
        t,
        user: Some(NavUser::of(&p)),
        csrf: &csrf,
        audit,
        total: t.fill("admin.total", &[("n", &total.to_string())]),
        prev: (page_no > 0).then(|| link(page_no - 1)),
        next: ((page_no + 1) * LOG_ROWS < total).then(|| link(page_no + 1)),
        rows,
        user_id,
        kind,
        status,
    }
    .render();
    page(StatusCode::OK, html, lang_cookie.into_iter().collect())
}

const EXAMPLE_SCENARIO: &str = include_str!("../../../../examples/sma_cross.toml");

#[derive(Template)]
#[template(path = "portal/scenario_new.html")]
struct ScenarioNewPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    toml: &'a str,
    /// (field path, message) from the API's own validation.
    problems: Vec<(String, String)>,
}

/// The signed-in user allowed to simulate, or the answer to send instead (to sign-in, or the
/// API's problem).
fn signed_in(principal: Result<Principal, ApiError>) -> Result<Principal, Box<Response>> {
    match principal {
        Ok(p) => match p.require(Permission::Simulate) {
            Ok(()) => Ok(p),
            Err(e) => Err(Box::new(e.into_response())),
        },
        Err(ApiError::Unauthenticated) => Err(Box::new(Redirect::to("/login").into_response())),
        Err(e) => Err(Box::new(e.into_response())),
    }
}

async fn scenario_new_page(
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
) -> Response {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let p = match signed_in(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let csrf = session_csrf(&p);
    let html =
        ScenarioNewPage { t, user: Some(NavUser::of(&p)), csrf: &csrf, toml: EXAMPLE_SCENARIO, problems: Vec::new() }
            .render();
    page(StatusCode::OK, html, lang_cookie.into_iter().collect())
}

#[derive(Debug, Deserialize)]
struct ScenarioForm {
    #[serde(default)]
    toml: String,
}

/// Validates with the API's scenario validation (every problem at once) and stores version 1.
async fn scenario_create(
    State(state): State<AppState>,
    client: ClientInfo,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
    Form(f): Form<ScenarioForm>,
) -> Response {
    let (t, _) = language(q.as_deref(), &headers);
    let p = match signed_in(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match crate::spec::validate_toml(&f.toml, "scenario.toml") {
        Ok(valid) => match crate::routes::scenarios::create_scenario_from(
            &state,
            &client,
            &p,
            valid,
            "created in the portal".into(),
        )
        .await
        {
            Ok((s, _)) => Redirect::to(&format!("/scenarios/{}?created=1", s.id)).into_response(),
            Err(e) => e.into_response(),
        },
        Err(problems) => {
            let csrf = session_csrf(&p);
            let problems = problems.into_iter().map(|e| (e.field, e.message)).collect();
            let html =
                ScenarioNewPage { t, user: Some(NavUser::of(&p)), csrf: &csrf, toml: &f.toml, problems }.render();
            page(StatusCode::UNPROCESSABLE_ENTITY, html, Vec::new())
        }
    }
}

struct VersionRow {
    version: i32,
    when: String,
    message: String,
}

struct DiffRow {
    path: String,
    op: &'static str,
    before: String,
    after: String,
}

struct DiffView {
    title: String,
    rows: Vec<DiffRow>,
}

#[derive(Template)]
#[template(path = "portal/scenario.html")]
struct ScenarioPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    id: i64,
    name: String,
    strategy: String,
    version: i32,
    toml: String,
    created: bool,
    owner: bool,
    versions: Vec<VersionRow>,
    diff: Option<DiffView>,
    problems: Vec<(String, String)>,
    error: Option<&'static str>,
    share_emails: String,
    share_analysts: bool,
    share_error: Option<String>,
    share_saved: bool,
}

/// What the scenario page shows besides the stored document: an edit to keep, its problems.
struct PageState {
    toml: Option<String>,
    problems: Vec<(String, String)>,
    error: Option<&'static str>,
    status: StatusCode,
    /// The sharing form as submitted, with what was wrong in it.
    share: Option<(String, bool, String)>,
}

#[allow(clippy::too_many_arguments)]
async fn scenario_render(
    state: &AppState,
    t: Tr,
    p: &Principal,
    id: i64,
    q: Option<&str>,
    extra: PageState,
    cookies: Vec<HeaderValue>,
) -> Response {
    let (s, access) = match crate::routes::scenarios::readable(state, p, id, false).await {
        Ok(found) => found,
        Err(e) => return e.into_response(),
    };
    let v = match crate::routes::scenarios::current(state, &s).await {
        Ok(v) => v,
        Err(e) => return e.into_response(),
    };
    let history = match state.db().scenario_versions(s.id).await {
        Ok(list) => list,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let spec: serde_json::Value = serde_json::from_str(&v.spec).unwrap_or_default();
    let param = |k: &str| {
        q.and_then(|q| url::form_urlencoded::parse(q.as_bytes()).find(|(key, _)| key == k).map(|(_, v)| v.into_owned()))
    };
    let diff = param("diff").and_then(|d| d.parse::<i32>().ok()).and_then(|from| {
        let old = history.iter().find(|h| h.version == from)?;
        let before: serde_json::Value = serde_json::from_str(&old.spec).unwrap_or_default();
        let show = |v: &Option<serde_json::Value>| v.as_ref().map_or_else(String::new, |v| v.to_string());
        Some(DiffView {
            title: t.fill("scenario.diff_title", &[("from", &from.to_string()), ("to", &v.version.to_string())]),
            rows: crate::spec::diff(&before, &spec)
                .into_iter()
                .map(|c| DiffRow {
                    op: match c.op {
                        "added" => msg("scenario.op.added"),
                        "removed" => msg("scenario.op.removed"),
                        _ => msg("scenario.op.changed"),
                    },
                    before: show(&c.before),
                    after: show(&c.after),
                    path: c.path,
                })
                .collect(),
        })
    });
    let (share_emails, share_analysts, share_error) = match extra.share {
        Some((emails, analysts, error)) => (emails, analysts, Some(error)),
        None if access == haechi_db::Access::Owner => match state.db().scenario_shares(s.id).await {
            Ok(users) => {
                (users.into_iter().map(|u| u.email).collect::<Vec<_>>().join("\n"), s.shared_with_analysts, None)
            }
            Err(e) => return ApiError::from(e).into_response(),
        },
        None => (String::new(), false, None),
    };
    let csrf = session_csrf(p);
    let html = ScenarioPage {
        share_emails,
        share_analysts,
        share_error,
        share_saved: param("shared").as_deref() == Some("1"),
        t,
        user: Some(NavUser::of(p)),
        csrf: &csrf,
        id: s.id,
        name: s.name.clone(),
        strategy: s.strategy.clone(),
        version: s.current_version,
        toml: extra.toml.unwrap_or_else(|| crate::spec::to_toml(&spec)),
        created: param("created").as_deref() == Some("1"),
        owner: access == haechi_db::Access::Owner,
        versions: history
            .iter()
            .map(|h| VersionRow { version: h.version, when: kst(h.created_at), message: h.message.clone() })
            .collect(),
        diff,
        problems: extra.problems,
        error: extra.error,
    }
    .render();
    page(extra.status, html, cookies)
}

async fn scenario_page(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
) -> Response {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let p = match signed_in(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let extra = PageState { toml: None, problems: Vec::new(), error: None, status: StatusCode::OK, share: None };
    scenario_render(&state, t, &p, id, q.as_deref(), extra, lang_cookie.into_iter().collect()).await
}

#[derive(Debug, Deserialize)]
struct EditForm {
    #[serde(default)]
    toml: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    base_version: Option<i32>,
}

/// Saves an edit as the next version, with the API's validation and its stale-save guard.
async fn scenario_edit(
    State(state): State<AppState>,
    client: ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
    Form(f): Form<EditForm>,
) -> Response {
    let (t, _) = language(q.as_deref(), &headers);
    let p = match signed_in(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let outcome = match crate::spec::validate_toml(&f.toml, "scenario.toml") {
        Err(problems) => Err(PageState {
            toml: Some(f.toml.clone()),
            problems: problems.into_iter().map(|e| (e.field, e.message)).collect(),
            error: None,
            status: StatusCode::UNPROCESSABLE_ENTITY,
            share: None,
        }),
        Ok(valid) => match crate::routes::scenarios::save_edit(
            &state,
            &client,
            &p,
            id,
            valid,
            f.message.trim().to_owned(),
            f.base_version,
        )
        .await
        {
            Ok(_) => Ok(()),
            Err(ApiError::Conflict(_)) => Err(PageState {
                toml: Some(f.toml.clone()),
                problems: Vec::new(),
                error: Some(msg("scenario.stale")),
                status: StatusCode::CONFLICT,
                share: None,
            }),
            Err(e) => return e.into_response(),
        },
    };
    match outcome {
        Ok(()) => Redirect::to(&format!("/scenarios/{id}")).into_response(),
        Err(extra) => scenario_render(&state, t, &p, id, None, extra, Vec::new()).await,
    }
}

async fn scenario_restore(
    State(state): State<AppState>,
    client: ClientInfo,
    axum::extract::Path((id, version)): axum::extract::Path<(i64, i32)>,
    principal: Result<Principal, ApiError>,
) -> Response {
    let p = match signed_in(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match crate::routes::scenarios::restore_version(&state, &client, &p, id, version).await {
        Ok(_) => Redirect::to(&format!("/scenarios/{id}")).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn scenario_run(
    State(state): State<AppState>,
    client: ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    principal: Result<Principal, ApiError>,
) -> Response {
    let p = match signed_in(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    match crate::routes::runs::start_run(&state, &client, &p, id, None).await {
        Ok(run) => Redirect::to(&format!("/runs/{}", run.id)).into_response(),
        Err(e) => e.into_response(),
    }
}

/// One run's column in the comparison.
struct CompareColumn {
    id: i64,
    name: String,
}

/// One metric across the compared runs: (formatted value, colour class) per run.
struct CompareRow {
    name: &'static str,
    help: &'static str,
    values: Vec<(String, &'static str)>,
}

#[derive(Template)]
#[template(path = "portal/compare.html")]
struct ComparePage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    error: Option<&'static str>,
    columns: Vec<CompareColumn>,
    rows: Vec<CompareRow>,
    chart: String,
}

/// Up to five finished runs side by side: the key figures and the equity rebased to 100.
async fn compare_page(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
) -> Response {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let p = match signed_in(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let csrf = session_csrf(&p);
    let mut ids: Vec<i64> = q
        .as_deref()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .filter(|(k, _)| k == "ids")
                .flat_map(|(_, v)| v.split(',').filter_map(|x| x.trim().parse().ok()).collect::<Vec<i64>>())
                .collect()
        })
        .unwrap_or_default();
    ids.dedup();
    let render = |error: Option<&'static str>, columns, rows, chart| {
        ComparePage { t, user: Some(NavUser::of(&p)), csrf: &csrf, error, columns, rows, chart }.render()
    };
    if !(2..=5).contains(&ids.len()) {
        let html = render(Some(msg("compare.need")), Vec::new(), Vec::new(), String::new());
        return page(StatusCode::UNPROCESSABLE_ENTITY, html, lang_cookie.into_iter().collect());
    }
    let mut reports = Vec::new();
    let mut columns = Vec::new();
    for id in &ids {
        let run = match readable_run(&state, &p, *id).await {
            Ok(r) => r,
            Err(e) => return e.into_response(),
        };
        match load_report(&state, &run).await {
            Ok(Some(r)) => reports.push(r),
            Ok(None) => {
                let html = render(Some(msg("compare.need")), Vec::new(), Vec::new(), String::new());
                return page(StatusCode::UNPROCESSABLE_ENTITY, html, lang_cookie.into_iter().collect());
            }
            Err(e) => return e.into_response(),
        }
        let name = match state.db().scenario_by_id(run.scenario_id).await {
            Ok(Some(s)) => s.name,
            _ => String::new(),
        };
        columns.push(CompareColumn { id: *id, name });
    }
    let per_run: Vec<Vec<report::MetricRow>> = reports.iter().map(|r| report::metric_rows(&r.summary)).collect();
    let rows = per_run
        .first()
        .map(|first| {
            (0..first.len())
                .map(|i| CompareRow {
                    name: first[i].name,
                    help: first[i].help,
                    values: per_run.iter().map(|m| (m[i].value.clone(), m[i].class)).collect(),
                })
                .collect()
        })
        .unwrap_or_default();
    let views: Vec<&report::ReportView> = reports.iter().map(|r| r.as_ref()).collect();
    let chart = report::compare_svg(&views, &t);
    let html = render(None, columns, rows, chart);
    page(StatusCode::OK, html, lang_cookie.into_iter().collect())
}

struct UserRow {
    id: i64,
    email: String,
    name: String,
    role: String,
    mfa: bool,
    disabled: bool,
}

#[derive(Template)]
#[template(path = "portal/admin_users.html")]
struct AdminUsersPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    total: String,
    users: Vec<UserRow>,
    roles: Vec<(&'static str, &'static str)>,
    notice: Option<&'static str>,
    error: Option<&'static str>,
}

fn role_key(role: crate::rbac::Role) -> &'static str {
    use crate::rbac::Role;
    match role {
        Role::Admin => msg("role.admin"),
        Role::Analyst => msg("role.analyst"),
        Role::Investor => msg("role.investor"),
        Role::Auditor => msg("role.auditor"),
    }
}

fn manager(principal: Result<Principal, ApiError>) -> Result<Principal, Box<Response>> {
    match principal {
        Ok(p) => match p.require(Permission::ManageUsers) {
            Ok(()) => Ok(p),
            Err(e) => Err(Box::new(e.into_response())),
        },
        Err(ApiError::Unauthenticated) => Err(Box::new(Redirect::to("/login").into_response())),
        Err(e) => Err(Box::new(e.into_response())),
    }
}

async fn admin_users_render(
    state: &AppState,
    t: Tr,
    p: &Principal,
    notice: Option<&'static str>,
    error: Option<&'static str>,
    status: StatusCode,
    cookies: Vec<HeaderValue>,
) -> Response {
    let page_of_users = match state.db().list_users(0, 200).await {
        Ok(pg) => pg,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let csrf = session_csrf(p);
    let html = AdminUsersPage {
        t,
        user: Some(NavUser::of(p)),
        csrf: &csrf,
        total: t.fill("admin.total", &[("n", &page_of_users.total.to_string())]),
        users: page_of_users
            .items
            .into_iter()
            .map(|u| UserRow {
                id: u.id,
                email: u.email,
                name: u.display_name,
                role: u.role,
                mfa: u.mfa_enabled,
                disabled: u.disabled,
            })
            .collect(),
        roles: crate::rbac::Role::ALL.iter().map(|r| (r.as_str(), role_key(*r))).collect(),
        notice,
        error,
    }
    .render();
    page(status, html, cookies)
}

/// Users with their role, two-factor state and account state; admins change them here.
async fn admin_users(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
) -> Response {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let p = match manager(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let changed = q.as_deref().is_some_and(|q| q.split('&').any(|kv| kv == "changed=1"));
    let notice = changed.then_some(msg("admin.changed"));
    admin_users_render(&state, t, &p, notice, None, StatusCode::OK, lang_cookie.into_iter().collect()).await
}

#[derive(Debug, Deserialize)]
struct UserForm {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<String>,
}

async fn admin_user_update(
    State(state): State<AppState>,
    client: ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
    Form(f): Form<UserForm>,
) -> Response {
    let (t, _) = language(q.as_deref(), &headers);
    let p = match manager(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let update = crate::routes::admin::UserUpdate {
        role: f.role.as_deref().and_then(crate::rbac::Role::parse),
        disabled: f.disabled.as_deref().map(|d| d == "true"),
    };
    match crate::routes::admin::apply_user_update(&state, &client, &p, id, &update).await {
        Ok(_) => Redirect::to("/admin/users?changed=1").into_response(),
        Err(ApiError::Validation(_)) => {
            admin_users_render(
                &state,
                t,
                &p,
                None,
                Some(msg("admin.self_change")),
                StatusCode::UNPROCESSABLE_ENTITY,
                Vec::new(),
            )
            .await
        }
        Err(e) => e.into_response(),
    }
}

/// Ends another of the user's own sessions (a stranger's handle is simply not found).
async fn account_session_end(
    State(state): State<AppState>,
    client: ClientInfo,
    axum::extract::Path(handle): axum::extract::Path<String>,
    principal: Result<Principal, ApiError>,
) -> Response {
    let p = match principal {
        Ok(p) => p,
        Err(ApiError::Unauthenticated) => return Redirect::to("/login").into_response(),
        Err(e) => return e.into_response(),
    };
    match state.db().delete_session_by_handle(p.user.id, &handle).await {
        Ok(true) => {
            crate::routes::audit(
                &state,
                &client,
                "session_revoked",
                Some(p.user.id),
                None,
                serde_json::json!({"session": handle}),
            )
            .await;
            Redirect::to("/account").into_response()
        }
        Ok(false) => ApiError::NotFound.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

/// Revokes one of the user's own API tokens.
async fn account_token_revoke(
    State(state): State<AppState>,
    client: ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    principal: Result<Principal, ApiError>,
) -> Response {
    let p = match principal {
        Ok(p) => p,
        Err(ApiError::Unauthenticated) => return Redirect::to("/login").into_response(),
        Err(e) => return e.into_response(),
    };
    match state.db().revoke_token(p.user.id, id).await {
        Ok(true) => {
            state.cache().invalidate_user(p.user.id);
            crate::routes::audit(
                &state,
                &client,
                "token_revoked",
                Some(p.user.id),
                None,
                serde_json::json!({"token_id": id}),
            )
            .await;
            Redirect::to("/account").into_response()
        }
        Ok(false) => ApiError::NotFound.into_response(),
        Err(e) => ApiError::from(e).into_response(),
    }
}

struct ScenarioRow {
    id: i64,
    name: String,
    strategy: String,
    version: i32,
    updated: String,
    shared: bool,
}

#[derive(Template)]
#[template(path = "portal/scenarios.html")]
struct ScenarioListPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    q: String,
    /// (value, selected)
    strategies: Vec<(&'static str, bool)>,
    /// (value, label key, selected)
    scopes: Vec<(&'static str, &'static str, bool)>,
    total: String,
    rows: Vec<ScenarioRow>,
    prev: Option<String>,
    next: Option<String>,
}

const SCENARIO_ROWS: u64 = 25;

/// The user's scenarios and those shared with them, searchable and filtered (the API's query).
async fn scenario_list(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
) -> Response {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let p = match signed_in(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let params: HashMap<String, String> =
        q.as_deref().map(|q| url::form_urlencoded::parse(q.as_bytes()).into_owned().collect()).unwrap_or_default();
    let get = |k: &str| params.get(k).map(|v| v.trim().to_owned()).unwrap_or_default();
    let (search, strategy, scope) = (get("q"), get("strategy"), get("scope"));
    let page_no: u64 = get("page").parse().unwrap_or(0);
    let query = haechi_db::ScenarioQuery {
        viewer_id: p.user.id,
        viewer_is_analyst: p.role == crate::rbac::Role::Analyst,
        scope: match scope.as_str() {
            "owned" => haechi_db::ScenarioScope::Owned,
            "shared" => haechi_db::ScenarioScope::Shared,
            _ => haechi_db::ScenarioScope::All,
        },
        search: (!search.is_empty()).then(|| search.clone()),
        strategy: (!strategy.is_empty()).then(|| strategy.clone()),
        deleted: false,
        page: page_no,
        per_page: SCENARIO_ROWS,
    };
    let found = match state.db().list_scenarios(&query).await {
        Ok(pg) => pg,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let link = |pg: u64| {
        let mut u = url::form_urlencoded::Serializer::new(String::from("/scenarios?"));
        for (k, v) in [("q", &search), ("strategy", &strategy), ("scope", &scope)] {
            if !v.is_empty() {
                u.append_pair(k, v);
            }
        }
        u.append_pair("page", &pg.to_string());
        u.finish()
    };
    let csrf = session_csrf(&p);
    let html = ScenarioListPage {
        t,
        user: Some(NavUser::of(&p)),
        csrf: &csrf,
        total: t.fill("admin.total", &[("n", &found.total.to_string())]),
        prev: (page_no > 0).then(|| link(page_no - 1)),
        next: ((page_no + 1) * SCENARIO_ROWS < found.total).then(|| link(page_no + 1)),
        rows: found
            .items
            .into_iter()
            .map(|s| ScenarioRow {
                shared: s.owner_id != p.user.id,
                id: s.id,
                name: s.name,
                strategy: s.strategy,
                version: s.current_version,
                updated: kst(s.updated_at),
            })
            .collect(),
        strategies: ["buy_and_hold", "sma_cross", "momentum_rotation", "rebalance", "rsi_reversion"]
            .into_iter()
            .map(|v| (v, v == strategy))
            .collect(),
        scopes: [
            ("all", msg("scenarios.scope_all")),
            ("owned", msg("scenarios.scope_owned")),
            ("shared", msg("scenarios.scope_shared")),
        ]
        .into_iter()
        .map(|(v, k)| (v, k, v == scope || (scope.is_empty() && v == "all")))
        .collect(),
        q: search,
    }
    .render();
    page(StatusCode::OK, html, lang_cookie.into_iter().collect())
}

#[derive(Debug, Deserialize)]
struct ShareForm {
    #[serde(default)]
    emails: String,
    #[serde(default)]
    analysts: Option<String>,
}

/// Replaces the scenario's readers; unknown emails are named and nothing changes.
async fn scenario_shares(
    State(state): State<AppState>,
    client: ClientInfo,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    principal: Result<Principal, ApiError>,
    Form(f): Form<ShareForm>,
) -> Response {
    let (t, _) = language(q.as_deref(), &headers);
    let p = match signed_in(principal) {
        Ok(p) => p,
        Err(r) => return *r,
    };
    let emails: Vec<String> =
        f.emails.split(['\n', ',', ';']).map(str::trim).filter(|e| !e.is_empty()).map(str::to_owned).collect();
    let analysts = f.analysts.as_deref() == Some("true");
    let req = crate::routes::scenarios::Shares { emails: emails.clone(), analysts };
    match crate::routes::scenarios::set_shares(&state, &client, &p, id, &req).await {
        Ok(()) => Redirect::to(&format!("/scenarios/{id}?shared=1#sharing")).into_response(),
        Err(ApiError::Validation(problems)) => {
            let bad: Vec<String> = problems
                .iter()
                .filter_map(|e| e.field.strip_prefix("emails[")?.strip_suffix(']')?.parse::<usize>().ok())
                .filter_map(|i| emails.get(i).cloned())
                .collect();
            let error = t.fill("share.unknown", &[("list", &bad.join(", "))]);
            let extra = PageState {
                toml: None,
                problems: Vec::new(),
                error: None,
                status: StatusCode::UNPROCESSABLE_ENTITY,
                share: Some((f.emails.clone(), analysts, error)),
            };
            scenario_render(&state, t, &p, id, None, extra, Vec::new()).await
        }
        Err(e) => e.into_response(),
    }
}

#[derive(Debug, Deserialize)]
struct LogoutForm {
    #[serde(default, rename = "_csrf")]
    csrf: String,
}

/// Ends the session named by the cookie when the form's token is the session's own.
async fn logout(State(state): State<AppState>, headers: HeaderMap, Form(f): Form<LogoutForm>) -> Response {
    let Some(secret) = cookie(&headers, SESSION_COOKIE) else { return Redirect::to("/login").into_response() };
    let id_hash = sha256_hex(&secret);
    let session = match state.db().session_by_hash(&id_hash).await {
        Ok(s) => s,
        Err(e) => return ApiError::from(e).into_response(),
    };
    let Some(s) = session else { return Redirect::to("/login").into_response() };
    if !constant_time_eq(&f.csrf, &s.csrf_token) {
        return ApiError::Csrf.into_response();
    }
    if let Err(e) = state.db().delete_session(&id_hash).await {
        return ApiError::from(e).into_response();
    }
    let mut resp = Redirect::to("/login").into_response();
    resp.headers_mut().append(header::SET_COOKIE, clear_cookie(state.settings().cookie_secure));
    resp
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
