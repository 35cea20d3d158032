//! The run report page's model: the run's `report.json` from object storage, read as
//! [`haechi_sim::report::Report`] (the type the worker wrote it from; another schema version is
//! refused, never misread), and what the page makes of it: metric rows, the monthly heat map,
//! the CSV exports and the page shown when the report cannot be read. The charts are
//! [`haechi_sim::chart`]'s, the same the standalone HTML report draws.
//!
//! Reports never change once written, so parsed reports are cached by store and key.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use askama::Template;
use axum::http::{HeaderValue, StatusCode};
use axum::response::Response;
use haechi_objects::{Objects, ObjectsError};
pub use haechi_sim::report::{Report, ReportError, Summary};

use super::NavUser;
use super::i18n::Tr;
use crate::error::ApiError;

/// Parsed reports by [`Objects::describe`] and key: a few dozen at most, and no more than
/// [`CACHE_BUDGET`] bytes of JSON between them.
type Cache = HashMap<String, (usize, Arc<Report>)>;

fn cache() -> &'static Mutex<Cache> {
    static CACHE: OnceLock<Mutex<Cache>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

const CACHED_REPORTS: usize = 32;
/// The JSON size the cached reports may add up to; a report keeps its orders and fills, so a
/// long run over many names weighs megabytes.
const CACHE_BUDGET: usize = 64 << 20;

/// The cache entry of `key` in `store`. The store is part of it: two stores (two servers of one
/// test process, each over a fresh database whose runs both start at 1) must never answer for
/// each other.
fn entry(store: &Objects, key: &str) -> String {
    format!("{}\n{key}", store.describe())
}

/// The cached report at cache entry `entry`, if parsed before.
fn cached(entry: &str) -> Option<Arc<Report>> {
    cache().lock().ok()?.get(entry).map(|(_, r)| r.clone())
}

/// Parses a report and caches it under `entry` (what the render benchmark times).
///
/// # Errors
/// Another schema version, or not a report.
pub fn parse(entry: &str, bytes: &[u8]) -> Result<Arc<Report>, ReportError> {
    let report = Arc::new(Report::from_json(bytes)?);
    if bytes.len() <= CACHE_BUDGET
        && let Ok(mut c) = cache().lock()
    {
        let used: usize = c.values().map(|(n, _)| n).sum();
        if c.len() >= CACHED_REPORTS || used + bytes.len() > CACHE_BUDGET {
            c.clear();
        }
        c.insert(entry.to_owned(), (bytes.len(), report.clone()));
    }
    Ok(report)
}

/// Why a run's report could not be shown.
#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error("reading the report: {0}")]
    Read(#[from] ObjectsError),
    #[error("report {key}: {source}")]
    Report { key: String, source: ReportError },
    #[error("parsing a report crashed: {0}")]
    Crashed(String),
}

impl From<LoadError> for ApiError {
    fn from(e: LoadError) -> ApiError {
        ApiError::Internal(e.to_string())
    }
}

/// The report at `key`, from the cache or the store.
///
/// # Errors
/// The object cannot be read, or is not a report of this schema version.
pub async fn load(objects: &Objects, key: &str) -> Result<Arc<Report>, LoadError> {
    let entry = entry(objects, key);
    if let Some(r) = cached(&entry) {
        return Ok(r);
    }
    let bytes = objects.get(key).await?;
    // A ten-year report is megabytes of JSON: parse it off the async threads.
    tokio::task::spawn_blocking(move || parse(&entry, &bytes))
        .await
        .map_err(|e| LoadError::Crashed(e.to_string()))?
        .map_err(|source| LoadError::Report { key: key.to_owned(), source })
}

#[derive(Template)]
#[template(path = "portal/report_error.html")]
struct ReportErrorPage<'a> {
    t: Tr,
    user: Option<NavUser>,
    csrf: &'a str,
    run_id: i64,
    message: String,
}

/// The page shown instead of a report that cannot be read: a 500, since the run is fine and the
/// fault is the server's (a report of another schema version comes from another build of
/// Haechi). The cause is logged here, once.
pub(super) fn error_page(
    t: Tr,
    user: Option<NavUser>,
    csrf: &str,
    run_id: i64,
    e: &LoadError,
    cookies: Vec<HeaderValue>,
) -> Response {
    tracing::error!(run_id, error = %e, "a run's report cannot be shown");
    let message = match e {
        LoadError::Report { source: ReportError::SchemaVersion { found, expected }, .. } => {
            t.fill("report.error.schema", &[("found", &found.to_string()), ("expected", &expected.to_string())])
        }
        _ => t.get("report.error.unreadable").to_owned(),
    };
    let html = ReportErrorPage { t, user, csrf, run_id, message }.render();
    super::page(StatusCode::INTERNAL_SERVER_ERROR, html, cookies)
}

/// One metric row: its catalogue name and explanation, and the formatted value.
#[derive(Debug)]
pub struct MetricRow {
    pub name: &'static str,
    pub help: &'static str,
    pub value: String,
    pub class: &'static str,
}

fn pct(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{:+.2}%", v * 100.0))
}

fn num(v: Option<f64>) -> String {
    v.map_or_else(|| "—".to_owned(), |v| format!("{v:.2}"))
}

/// Won with thousands separators.
#[must_use]
pub fn won(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + 4);
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    if v < 0 { format!("-{out}") } else { out }
}

fn sign(v: Option<f64>) -> &'static str {
    match v {
        Some(v) if v > 0.0 => "up",
        Some(v) if v < 0.0 => "down",
        _ => "",
    }
}

/// The metrics the page explains, in the order a reader needs them.
#[must_use]
pub fn metric_rows(s: &Summary) -> Vec<MetricRow> {
    use super::msg;
    let row = |name, help, value: String, class| MetricRow { name, help, value, class };
    let r = &s.returns;
    vec![
        row(
            msg("metric.total_return"),
            msg("metric.total_return.help"),
            pct(Some(r.total_return)),
            sign(Some(r.total_return)),
        ),
        row(msg("metric.cagr"), msg("metric.cagr.help"), pct(r.cagr), sign(r.cagr)),
        row(
            msg("metric.benchmark"),
            msg("metric.benchmark.help"),
            pct(s.benchmark_total_return),
            sign(s.benchmark_total_return),
        ),
        row(msg("metric.mdd"), msg("metric.mdd.help"), pct(Some(r.max_drawdown)), "down"),
        row(msg("metric.mdd_days"), msg("metric.mdd_days.help"), r.max_drawdown_duration_days.to_string(), ""),
        row(
            msg("metric.volatility"),
            msg("metric.volatility.help"),
            pct(r.annual_volatility).trim_start_matches('+').to_owned(),
            "",
        ),
        row(msg("metric.sharpe"), msg("metric.sharpe.help"), num(r.sharpe), ""),
        row(msg("metric.sortino"), msg("metric.sortino.help"), num(r.sortino), ""),
        row(msg("metric.alpha"), msg("metric.alpha.help"), pct(r.alpha), sign(r.alpha)),
        row(msg("metric.beta"), msg("metric.beta.help"), num(r.beta), ""),
        row(
            msg("metric.win_rate"),
            msg("metric.win_rate.help"),
            pct(s.trades.win_rate).trim_start_matches('+').to_owned(),
            "",
        ),
        row(msg("metric.trades"), msg("metric.trades.help"), s.trades.closed_trades.to_string(), ""),
        row(msg("metric.turnover"), msg("metric.turnover.help"), format!("{:.0}%", s.turnover * 100.0), ""),
        row(msg("metric.final_equity"), msg("metric.final_equity.help"), format!("₩{}", won(s.final_equity.get())), ""),
        row(
            msg("metric.slippage"),
            msg("metric.slippage.help"),
            s.effective_slippage_bps.map_or_else(|| "—".to_owned(), |b| format!("{b:.1} bp")),
            "",
        ),
    ]
}

/// Equity against the benchmark, titled in the page's language.
#[must_use]
pub fn equity_svg(r: &Report, t: &Tr) -> String {
    haechi_sim::chart::equity(r, t.get("report.equity_chart"), t.get("report.benchmark"))
}

/// The drawdown from the running peak.
#[must_use]
pub fn drawdown_svg(r: &Report, t: &Tr) -> String {
    haechi_sim::chart::drawdown(r, t.get("report.drawdown_chart"))
}

/// Several runs' equity, each rebased to 100 at its start.
#[must_use]
pub fn compare_svg(runs: &[&Report], t: &Tr) -> String {
    haechi_sim::chart::compare(runs, t.get("compare.chart"))
}

/// One year of the monthly heat map: twelve cells, empty where the run did not trade.
#[derive(Debug)]
pub struct HeatRow {
    pub year: i32,
    pub cells: Vec<HeatCell>,
}

#[derive(Debug)]
pub struct HeatCell {
    pub text: String,
    /// An inline-free colour class: `h-up-3` … `h-down-3`, by size of the move.
    pub class: String,
}

#[must_use]
pub fn heat_rows(r: &Report) -> Vec<HeatRow> {
    r.monthly_by_year()
        .into_iter()
        .map(|y| HeatRow {
            year: y.year,
            cells: y
                .months
                .iter()
                .map(|m| match m {
                    None => HeatCell { text: String::new(), class: "h-none".into() },
                    Some(v) => {
                        let level = ((v.abs() * 100.0) / 3.0).ceil().clamp(1.0, 3.0) as u8;
                        let dir = if *v >= 0.0 { "up" } else { "down" };
                        HeatCell { text: format!("{:+.1}", v * 100.0), class: format!("h-{dir}-{level}") }
                    }
                })
                .collect(),
        })
        .collect()
}

/// The closed trades as CSV, Excel-friendly (UTF-8 with BOM).
#[must_use]
pub fn trades_csv(r: &Report) -> String {
    let mut out = String::from("\u{feff}ticker,entry_date,exit_date,quantity,cost,proceeds,pnl,holding_sessions\n");
    for tr in &r.trades {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{:.1}",
            tr.ticker,
            tr.entry_date,
            tr.exit_date,
            tr.quantity,
            tr.cost.get(),
            tr.proceeds.get(),
            tr.pnl.get(),
            tr.holding_sessions
        );
    }
    out
}

/// Every order of the run, for a spreadsheet.
#[must_use]
pub fn orders_csv(r: &Report) -> String {
    let mut out = String::from(
        "\u{feff}placed_on,executes_on,ticker,side,type,limit_price,quantity,filled_quantity,status,reason,origin\n",
    );
    for o in &r.orders {
        // The columns carry the report's own codes (`limit`, `partially_filled`, `volume_cap`):
        // read them from the order's JSON form rather than repeat every enum's names here.
        let v = serde_json::to_value(o).unwrap_or_default();
        let text = |k: &str| match &v[k] {
            serde_json::Value::String(s) => s.clone(),
            serde_json::Value::Null => String::new(),
            other => other.to_string(),
        };
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{}",
            o.placed_on,
            o.executes_on,
            o.ticker,
            text("side"),
            text("type"),
            text("price"),
            o.quantity.get(),
            o.filled_quantity.get(),
            text("status"),
            text("reason"),
            text("origin")
        );
    }
    out
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn won_groups_thousands() {
        assert_eq!(won(0), "0");
        assert_eq!(won(1_234_567), "1,234,567");
        assert_eq!(won(-1_000), "-1,000");
    }
}
