//! The dashboard, the run report page, its trades CSV, and run comparison.

use super::*;

/// One run as the dashboard lists it, figures already formatted.
pub(super) struct RunRow {
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
pub(super) struct DashboardPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    welcome: String,
    runs: Vec<RunRow>,
}

pub(super) fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{:+.2}%", v * 100.0))
}

pub(super) fn state_key(state: &str) -> &'static str {
    match state {
        "queued" => msg("run.state.queued"),
        "running" => msg("run.state.running"),
        "succeeded" => msg("run.state.succeeded"),
        "failed" => msg("run.state.failed"),
        _ => msg("run.state.cancelled"),
    }
}

pub(super) async fn dashboard(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<OwnAccount>,
) -> UiResult {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let csrf = session_csrf(&p);
    // Auditors review; they have no runs of their own to list.
    let runs = if haechi_app::rbac::allows(p.role(), Permission::Simulate) {
        let latest = haechi_app::paging::Paging::new(Some(0), Some(10))?;
        app_runs::list(state.app(), &p, app_runs::RunFilter::default(), latest).await?.items
    } else {
        Vec::new()
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
    Ok(page(StatusCode::OK, html, lang_cookie.into_iter().collect()))
}

/// Trades per page on the report.
pub(super) const TRADES_PER_PAGE: usize = 50;

pub(super) struct TradeRow {
    ticker: String,
    entry_date: chrono::NaiveDate,
    exit_date: chrono::NaiveDate,
    quantity: u64,
    pnl: String,
    class: &'static str,
    holding: String,
}

pub(super) struct PositionRow {
    ticker: String,
    name: String,
    quantity: u64,
    avg_price: String,
    last_price: String,
    value: String,
    weight: String,
    pnl: String,
    class: &'static str,
}

/// The order counts and each rejection reason, labelled in the page's language.
pub(super) struct OrderSummary {
    counts: Vec<(&'static str, usize)>,
    rejections: Vec<(String, usize)>,
    commissions: String,
    taxes: String,
    total: usize,
}

fn up_down(v: i64) -> &'static str {
    match v.signum() {
        1 => "up",
        -1 => "down",
        _ => "",
    }
}

fn position_rows(r: &report::Report) -> Vec<PositionRow> {
    r.positions
        .iter()
        .map(|p| {
            let (pos, quantity) = (&p.position, p.position.quantity.get());
            PositionRow {
                ticker: pos.ticker.to_string(),
                name: p.name.clone(),
                quantity,
                avg_price: report::won(if quantity == 0 { 0 } else { pos.cost.get() / quantity as i64 }),
                last_price: report::won(pos.last_price.get()),
                value: report::won(pos.value.get()),
                weight: format!("{:.1}%", p.weight * 100.0),
                pnl: report::won(p.unrealized_pnl.get()),
                class: up_down(p.unrealized_pnl.get()),
            }
        })
        .collect()
}

fn order_summary(t: &Tr, r: &report::Report) -> OrderSummary {
    let o = &r.summary.orders;
    OrderSummary {
        counts: vec![
            (msg("orders.placed"), o.placed),
            (msg("orders.filled"), o.filled),
            (msg("orders.partially_filled"), o.partially_filled),
            (msg("orders.expired"), o.expired),
            (msg("orders.rejected"), o.rejected),
        ],
        rejections: o
            .rejected_by_reason
            .iter()
            .map(|(code, n)| (t.lookup(&format!("reject.{code}")).unwrap_or(code).to_owned(), *n))
            .collect(),
        commissions: report::won(r.summary.commissions.get()),
        taxes: report::won(r.summary.taxes.get()),
        total: o.placed,
    }
}

#[derive(Template)]
#[template(path = "portal/run.html")]
pub(super) struct RunPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    run_id: i64,
    report: Option<Arc<report::Report>>,
    equity_svg: String,
    drawdown_svg: String,
    metrics: Vec<report::MetricRow>,
    heat: Vec<report::HeatRow>,
    trades: Vec<TradeRow>,
    positions: Vec<PositionRow>,
    orders: Option<OrderSummary>,
    page: usize,
    pages: usize,
    state: String,
    heading: Option<String>,
    base: String,
    note: Option<String>,
    state_key: &'static str,
    progress: u32,
}

use haechi_app::runs::{self as app_runs, report_key};

/// The run's parsed report, from the cache or object storage; `None` until it succeeded.
pub(super) async fn load_report(
    state: &AppState,
    run: &haechi_db::Run,
) -> Result<Option<Arc<report::Report>>, report::LoadError> {
    let Some(key) = report_key(run, "report.json") else { return Ok(None) };
    report::load(state.app().objects(), &key).await.map(Some)
}

/// What the report page shows of the run row.
#[derive(Debug, Clone)]
pub struct RunHeader {
    pub id: i64,
    pub state: String,
    pub progress: f64,
    /// The page's heading; `None`: "Report #id".
    pub heading: Option<String>,
    /// Where the page's CSV links start (`/runs/{id}`; a paper account's report has its own).
    pub base: String,
    /// A line under the heading saying what the figures are computed from.
    pub note: Option<String>,
    /// The order summary (a paper account's orders are on its own page instead).
    pub show_orders: bool,
}

impl RunHeader {
    /// A run's header.
    #[must_use]
    pub fn run(id: i64, state: &str, progress: f64) -> RunHeader {
        RunHeader {
            id,
            state: state.to_owned(),
            progress,
            heading: None,
            base: format!("/runs/{id}"),
            note: None,
            show_orders: true,
        }
    }
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
    r: Option<Arc<report::Report>>,
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
                    ticker: tr.ticker.to_string(),
                    entry_date: tr.entry_date,
                    exit_date: tr.exit_date,
                    quantity: tr.quantity,
                    pnl: report::won(tr.pnl.get()),
                    class: up_down(tr.pnl.get()),
                    holding: format!("{:.0}", tr.holding_sessions),
                })
                .collect()
        })
        .unwrap_or_default();
    let positions = r.as_deref().map(position_rows).unwrap_or_default();
    let orders = r.as_deref().filter(|_| run.show_orders).map(|r| order_summary(&t, r));
    RunPage {
        t,
        user,
        csrf,
        positions,
        orders,
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
        heading: run.heading.clone(),
        base: run.base.clone(),
        note: run.note.clone(),
        state_key: state_key(&run.state),
        progress: (run.progress * 100.0).round().clamp(0.0, 100.0) as u32,
    }
    .render()
}

pub(super) fn page_param(q: Option<&str>) -> usize {
    q.and_then(|q| {
        url::form_urlencoded::parse(q.as_bytes()).find(|(k, _)| k == "page").and_then(|(_, v)| v.parse().ok())
    })
    .unwrap_or(1)
}

pub(super) async fn run_page(
    State(state): State<AppState>,
    axum::extract::Path(id): axum::extract::Path<i64>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<Simulate>,
) -> UiResult {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
    let run = app_runs::get(state.app(), &p, RunId(id)).await?;
    let csrf = session_csrf(&p);
    let r = match load_report(&state, &run).await {
        Ok(r) => r,
        Err(e) => {
            return Ok(report::error_page(t, Some(NavUser::of(&p)), &csrf, id, &e, lang_cookie.into_iter().collect()));
        }
    };
    let header = RunHeader::run(run.id, &run.state, run.progress);
    let html = render_run_page(t, Some(NavUser::of(&p)), &csrf, &header, r, page_param(q.as_deref()))?;
    Ok(page(StatusCode::OK, Ok(html), lang_cookie.into_iter().collect()))
}

/// The run's trades or orders as CSV (`trades.csv`, `orders.csv`).
pub(super) async fn run_csv(
    State(state): State<AppState>,
    axum::extract::Path((id, file)): axum::extract::Path<(i64, String)>,
    Signed(p, ..): Signed<Simulate>,
) -> UiResult {
    if file != "trades.csv" && file != "orders.csv" {
        return Err(ApiError::NotFound.into());
    }
    let run = app_runs::get(state.app(), &p, RunId(id)).await?;
    let report = load_report(&state, &run).await.map_err(ApiError::from)?;
    let Some(csv) = report.map(|r| if file == "trades.csv" { report::trades_csv(&r) } else { report::orders_csv(&r) })
    else {
        return Err(ApiError::Conflict(format!("the run has no report ({})", run.state)).into());
    };
    let mut resp = csv.into_response();
    let h = resp.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/csv; charset=utf-8"));
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"run-{id}-{file}\"")) {
        h.insert(header::CONTENT_DISPOSITION, v);
    }
    Ok(resp)
}

/// One run's column in the comparison.
pub(super) struct CompareColumn {
    id: i64,
    name: String,
}

/// One metric across the compared runs: (formatted value, colour class) per run.
pub(super) struct CompareRow {
    name: &'static str,
    help: &'static str,
    values: Vec<(String, &'static str)>,
}

#[derive(Template)]
#[template(path = "portal/compare.html")]
pub(super) struct ComparePage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    error: Option<&'static str>,
    columns: Vec<CompareColumn>,
    rows: Vec<CompareRow>,
    chart: String,
}

/// Up to five finished runs side by side: the key figures and the equity rebased to 100.
pub(super) async fn compare_page(
    State(state): State<AppState>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
    Signed(p, ..): Signed<Simulate>,
) -> UiResult {
    let (t, lang_cookie) = language(q.as_deref(), &headers);
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
        return Ok(page(StatusCode::UNPROCESSABLE_ENTITY, html, lang_cookie.into_iter().collect()));
    }
    let wanted = ids.iter().map(i64::to_string).collect::<Vec<_>>().join(",");
    let mut reports = Vec::new();
    let mut columns = Vec::new();
    for (name, run) in app_runs::compare(state.app(), &p, &wanted).await? {
        match load_report(&state, &run).await {
            Ok(Some(r)) => reports.push(r),
            Ok(None) => {
                let html = render(Some(msg("compare.need")), Vec::new(), Vec::new(), String::new());
                return Ok(page(StatusCode::UNPROCESSABLE_ENTITY, html, lang_cookie.into_iter().collect()));
            }
            Err(e) => {
                let (user, cookies) = (Some(NavUser::of(&p)), lang_cookie.into_iter().collect());
                return Ok(report::error_page(t, user, &csrf, run.id, &e, cookies));
            }
        }
        columns.push(CompareColumn { id: run.id, name });
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
    let views: Vec<&report::Report> = reports.iter().map(|r| r.as_ref()).collect();
    let chart = report::compare_svg(&views, &t);
    let html = render(None, columns, rows, chart);
    Ok(page(StatusCode::OK, html, lang_cookie.into_iter().collect()))
}
