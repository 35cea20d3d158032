//! The run report page: the report JSON from object storage, read into the few fields the page
//! shows, charts drawn as SVG on the server. Reports never change once written, so the parsed
//! view is cached per run.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::sync::{Arc, Mutex, OnceLock};

use chrono::NaiveDate;
use serde::Deserialize;

use super::i18n::Tr;

/// The parts of `report.json` the page uses; everything else in the file is skipped.
#[derive(Debug, Deserialize)]
pub struct ReportView {
    pub summary: SummaryView,
    #[serde(default)]
    pub equity_curve: Vec<PointView>,
    #[serde(default)]
    pub monthly_returns: Vec<MonthView>,
    #[serde(default)]
    pub trades: Vec<TradeView>,
    #[serde(default)]
    pub positions: Vec<PositionView>,
    pub data: DataView,
}

/// A position still open at the end of the run.
#[derive(Debug, Deserialize)]
pub struct PositionView {
    pub ticker: String,
    #[serde(default)]
    pub name: String,
    pub quantity: u64,
    pub cost: i64,
    pub last_price: i64,
    pub value: i64,
    pub weight: f64,
    pub unrealized_pnl: i64,
}

/// One order and what became of it.
#[derive(Debug, Deserialize)]
pub struct OrderView {
    pub ticker: String,
    pub side: String,
    /// `market` or `limit`.
    #[serde(rename = "type")]
    pub kind: String,
    #[serde(default)]
    pub price: Option<i64>,
    pub quantity: u64,
    pub placed_on: NaiveDate,
    pub executes_on: NaiveDate,
    pub origin: String,
    pub status: String,
    #[serde(default)]
    pub reason: Option<String>,
    pub filled_quantity: u64,
}

#[derive(Debug, Default, Deserialize)]
pub struct OrderCountsView {
    pub placed: u64,
    pub filled: u64,
    pub partially_filled: u64,
    pub expired: u64,
    pub rejected: u64,
    #[serde(default)]
    pub rejected_by_reason: std::collections::BTreeMap<String, u64>,
}

#[derive(Debug, Deserialize)]
pub struct DataView {
    pub first_session: NaiveDate,
    pub last_session: NaiveDate,
    #[serde(default)]
    pub benchmark: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct SummaryView {
    pub initial_capital: i64,
    pub final_equity: i64,
    pub total_return: f64,
    pub cagr: Option<f64>,
    pub annual_volatility: Option<f64>,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub max_drawdown: f64,
    pub max_drawdown_duration_days: u64,
    pub benchmark_total_return: Option<f64>,
    pub alpha: Option<f64>,
    pub beta: Option<f64>,
    pub win_rate: Option<f64>,
    pub closed_trades: u64,
    pub turnover: f64,
    #[serde(default)]
    pub commissions: i64,
    #[serde(default)]
    pub taxes: i64,
    #[serde(default)]
    pub orders: OrderCountsView,
}

#[derive(Debug, Deserialize)]
pub struct PointView {
    pub date: NaiveDate,
    pub equity: i64,
    pub drawdown: f64,
    pub benchmark: Option<f64>,
}

#[derive(Debug, Deserialize)]
pub struct MonthView {
    pub year: i32,
    pub month: u32,
    #[serde(rename = "return")]
    pub ret: f64,
}

#[derive(Debug, Deserialize)]
pub struct TradeView {
    pub ticker: String,
    pub entry_date: NaiveDate,
    pub exit_date: NaiveDate,
    pub quantity: u64,
    pub cost: i64,
    pub proceeds: i64,
    pub pnl: i64,
    pub holding_sessions: f64,
}

/// Parsed reports by object key, a few dozen at most.
fn cache() -> &'static Mutex<HashMap<String, Arc<ReportView>>> {
    static CACHE: OnceLock<Mutex<HashMap<String, Arc<ReportView>>>> = OnceLock::new();
    CACHE.get_or_init(|| Mutex::new(HashMap::new()))
}

const CACHED_REPORTS: usize = 32;

/// The cached view of the report at `key`, if parsed before.
pub fn cached(key: &str) -> Option<Arc<ReportView>> {
    cache().lock().ok()?.get(key).cloned()
}

/// Parses and caches a report.
///
/// # Errors
/// The JSON does not have the report's shape.
pub fn parse(key: &str, bytes: &[u8]) -> Result<Arc<ReportView>, serde_json::Error> {
    let view = Arc::new(serde_json::from_slice::<ReportView>(bytes)?);
    if let Ok(mut c) = cache().lock() {
        if c.len() >= CACHED_REPORTS {
            c.clear();
        }
        c.insert(key.to_owned(), view.clone());
    }
    Ok(view)
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
pub fn metric_rows(s: &SummaryView) -> Vec<MetricRow> {
    use super::msg;
    let row = |name, help, value: String, class| MetricRow { name, help, value, class };
    vec![
        row(
            msg("metric.total_return"),
            msg("metric.total_return.help"),
            pct(Some(s.total_return)),
            sign(Some(s.total_return)),
        ),
        row(msg("metric.cagr"), msg("metric.cagr.help"), pct(s.cagr), sign(s.cagr)),
        row(
            msg("metric.benchmark"),
            msg("metric.benchmark.help"),
            pct(s.benchmark_total_return),
            sign(s.benchmark_total_return),
        ),
        row(msg("metric.mdd"), msg("metric.mdd.help"), pct(Some(s.max_drawdown)), "down"),
        row(msg("metric.mdd_days"), msg("metric.mdd_days.help"), s.max_drawdown_duration_days.to_string(), ""),
        row(
            msg("metric.volatility"),
            msg("metric.volatility.help"),
            pct(s.annual_volatility).trim_start_matches('+').to_owned(),
            "",
        ),
        row(msg("metric.sharpe"), msg("metric.sharpe.help"), num(s.sharpe), ""),
        row(msg("metric.sortino"), msg("metric.sortino.help"), num(s.sortino), ""),
        row(msg("metric.alpha"), msg("metric.alpha.help"), pct(s.alpha), sign(s.alpha)),
        row(msg("metric.beta"), msg("metric.beta.help"), num(s.beta), ""),
        row(
            msg("metric.win_rate"),
            msg("metric.win_rate.help"),
            pct(s.win_rate).trim_start_matches('+').to_owned(),
            "",
        ),
        row(msg("metric.trades"), msg("metric.trades.help"), s.closed_trades.to_string(), ""),
        row(msg("metric.turnover"), msg("metric.turnover.help"), format!("{:.0}%", s.turnover * 100.0), ""),
        row(msg("metric.final_equity"), msg("metric.final_equity.help"), format!("₩{}", won(s.final_equity)), ""),
    ]
}

const W: f64 = 960.0;
const PAD_L: f64 = 72.0;
const PAD_R: f64 = 12.0;
const PAD_T: f64 = 12.0;
const PAD_B: f64 = 28.0;
/// Points per line: more than the pixels would show only costs bytes.
const MAX_POINTS: usize = 480;

fn step_of(n: usize) -> usize {
    n.div_ceil(MAX_POINTS).max(1)
}

/// Indices to draw: every `step`-th point and the last.
fn sampled(n: usize) -> impl Iterator<Item = usize> {
    let step = step_of(n);
    let last = n.checked_sub(1).filter(|l| !l.is_multiple_of(step));
    (0..n).step_by(step).chain(last)
}

struct Frame {
    h: f64,
    lo: f64,
    hi: f64,
    n: usize,
}

impl Frame {
    fn x(&self, i: usize) -> f64 {
        PAD_L + (W - PAD_L - PAD_R) * i as f64 / (self.n.max(2) - 1) as f64
    }
    fn y(&self, v: f64) -> f64 {
        let span = (self.hi - self.lo).max(f64::EPSILON);
        PAD_T + (self.h - PAD_T - PAD_B) * (self.hi - v) / span
    }
    /// Horizontal grid lines with labels, and the first session of each year on the x axis.
    fn axes(&self, svg: &mut String, dates: &[NaiveDate], label: impl Fn(f64) -> String) {
        use chrono::Datelike as _;
        for k in 0..=4 {
            let v = self.lo + (self.hi - self.lo) * f64::from(k) / 4.0;
            let y = self.y(v);
            let _ = write!(
                svg,
                r#"<line class="grid" x1="{PAD_L}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="axis" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
                W - PAD_R,
                PAD_L - 6.0,
                y + 4.0,
                label(v)
            );
        }
        let mut last_year = None;
        let every = (dates.len() / 252 / 8).max(1) as i32;
        for (i, d) in dates.iter().enumerate() {
            if last_year != Some(d.year()) {
                last_year = Some(d.year());
                if d.year() % every == 0 {
                    let _ = write!(
                        svg,
                        r#"<text class="axis" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                        self.x(i),
                        self.h - 8.0,
                        d.year()
                    );
                }
            }
        }
    }
}

fn won_axis(v: f64) -> String {
    if v.abs() >= 1e8 { format!("{:.1}억", v / 1e8) } else { format!("{:.0}만", v / 1e4) }
}

/// Equity against the benchmark, each sampled point with a `<title>` (the browser's tooltip,
/// no script needed) and data attributes the portal script reads for a live readout.
#[must_use]
pub fn equity_svg(r: &ReportView, t: &Tr) -> String {
    let pts = &r.equity_curve;
    let h = 300.0;
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {h}" role="img" aria-labelledby="equity-title"><title id="equity-title">{}</title>"#,
        t.get("report.equity_chart")
    );
    if pts.len() < 2 {
        svg.push_str("</svg>");
        return svg;
    }
    let values = pts.iter().flat_map(|p| std::iter::once(p.equity as f64).chain(p.benchmark));
    let (lo, hi) = values.fold((f64::MAX, f64::MIN), |(lo, hi), v| (lo.min(v), hi.max(v)));
    let f = Frame { h, lo: lo * 0.98, hi: hi * 1.02, n: pts.len() };
    let dates: Vec<NaiveDate> = pts.iter().map(|p| p.date).collect();
    f.axes(&mut svg, &dates, won_axis);
    let mut bench = String::new();
    let mut line = String::new();
    for i in sampled(pts.len()) {
        let p = &pts[i];
        if let Some(b) = p.benchmark {
            let _ = write!(bench, "{:.1},{:.1} ", f.x(i), f.y(b));
        }
        let _ = write!(line, "{:.1},{:.1} ", f.x(i), f.y(p.equity as f64));
    }
    if !bench.is_empty() {
        let _ = write!(svg, r#"<polyline class="bench" points="{}"/>"#, bench.trim_end());
    }
    let _ = write!(svg, r#"<polyline class="equity" points="{}"/>"#, line.trim_end());
    // Hover targets: a thin column per sampled point.
    let step = step_of(pts.len());
    let col = (W - PAD_L - PAD_R) / pts.len() as f64 * step as f64;
    for i in sampled(pts.len()) {
        let p = &pts[i];
        let bench_text = p
            .benchmark
            .map_or(String::new(), |b| format!(" · {} ₩{}", t.get("report.benchmark"), won(b.round() as i64)));
        let _ = write!(
            svg,
            r#"<rect class="hover" x="{:.1}" y="{PAD_T}" width="{:.1}" height="{:.1}" data-date="{}" data-equity="{}"><title>{} ₩{}{}</title></rect>"#,
            f.x(i) - col / 2.0,
            col.max(1.0),
            h - PAD_T - PAD_B,
            p.date,
            p.equity,
            p.date,
            won(p.equity),
            bench_text
        );
    }
    svg.push_str("</svg>");
    svg
}

/// Several runs' equity, each rebased to 100 at its start, on one date axis.
#[must_use]
pub fn compare_svg(runs: &[&ReportView], t: &Tr) -> String {
    let h = 300.0;
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {h}" role="img" aria-labelledby="cmp-title"><title id="cmp-title">{}</title>"#,
        t.get("compare.chart")
    );
    let series: Vec<Vec<(NaiveDate, f64)>> = runs
        .iter()
        .map(|r| {
            let base = r.equity_curve.first().map_or(1.0, |p| p.equity.max(1) as f64);
            r.equity_curve.iter().map(|p| (p.date, p.equity as f64 / base * 100.0)).collect()
        })
        .collect();
    let (Some(d0), Some(d1)) = (
        series.iter().filter_map(|s| s.first().map(|p| p.0)).min(),
        series.iter().filter_map(|s| s.last().map(|p| p.0)).max(),
    ) else {
        svg.push_str("</svg>");
        return svg;
    };
    let (lo, hi) = series.iter().flatten().fold((f64::MAX, f64::MIN), |(lo, hi), p| (lo.min(p.1), hi.max(p.1)));
    let span = (d1 - d0).num_days().max(1) as f64;
    // The frame's x is by index: map dates onto 0..=1000.
    let f = Frame { h, lo: lo * 0.98, hi: hi * 1.02, n: 1001 };
    let dates: Vec<NaiveDate> =
        (0..=1000).map(|i| d0 + chrono::Days::new((span * f64::from(i) / 1000.0) as u64)).collect();
    f.axes(&mut svg, &dates, |v| format!("{v:.0}"));
    for (k, s) in series.iter().enumerate() {
        let mut line = String::new();
        for i in sampled(s.len()) {
            let (d, v) = s[i];
            let x = ((d - d0).num_days() as f64 / span * 1000.0).round() as usize;
            let _ = write!(line, "{:.1},{:.1} ", f.x(x), f.y(v));
        }
        let _ = write!(svg, r#"<polyline class="series s{k}" points="{}"/>"#, line.trim_end());
    }
    svg.push_str("</svg>");
    svg
}

/// The drawdown from the running peak, as a filled area.
#[must_use]
pub fn drawdown_svg(r: &ReportView, t: &Tr) -> String {
    let pts = &r.equity_curve;
    let h = 160.0;
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {h}" role="img" aria-labelledby="dd-title"><title id="dd-title">{}</title>"#,
        t.get("report.drawdown_chart")
    );
    if pts.len() < 2 {
        svg.push_str("</svg>");
        return svg;
    }
    let lo = pts.iter().map(|p| p.drawdown).fold(0.0f64, f64::min).min(-0.01);
    let f = Frame { h, lo, hi: 0.0, n: pts.len() };
    let dates: Vec<NaiveDate> = pts.iter().map(|p| p.date).collect();
    f.axes(&mut svg, &dates, |v| format!("{:.0}%", v * 100.0));
    let mut area = format!("{:.1},{:.1} ", f.x(0), f.y(0.0));
    for i in sampled(pts.len()) {
        let _ = write!(area, "{:.1},{:.1} ", f.x(i), f.y(pts[i].drawdown));
    }
    let _ = write!(area, "{:.1},{:.1}", f.x(pts.len() - 1), f.y(0.0));
    let _ = write!(svg, r#"<polygon class="drawdown" points="{area}"/>"#);
    svg.push_str("</svg>");
    svg
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
pub fn heat_rows(r: &ReportView) -> Vec<HeatRow> {
    let mut by_year: std::collections::BTreeMap<i32, [Option<f64>; 12]> = std::collections::BTreeMap::new();
    for m in &r.monthly_returns {
        if (1..=12).contains(&m.month) {
            by_year.entry(m.year).or_insert([None; 12])[(m.month - 1) as usize] = Some(m.ret);
        }
    }
    by_year
        .into_iter()
        .map(|(year, months)| HeatRow {
            year,
            cells: months
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
pub fn trades_csv(r: &ReportView) -> String {
    let mut out = String::from("\u{feff}ticker,entry_date,exit_date,quantity,cost,proceeds,pnl,holding_sessions\n");
    for tr in &r.trades {
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{:.1}",
            tr.ticker, tr.entry_date, tr.exit_date, tr.quantity, tr.cost, tr.proceeds, tr.pnl, tr.holding_sessions
        );
    }
    out
}

/// Only the orders of a report: a long run has thousands, which the cached page view does
/// without.
#[derive(Debug, Deserialize)]
struct OrdersOnly {
    #[serde(default)]
    orders: Vec<OrderView>,
}

/// Every order of the run, for a spreadsheet, read from the report's JSON.
///
/// # Errors
/// The JSON does not have the report's shape.
pub fn orders_csv(report_json: &[u8]) -> Result<String, serde_json::Error> {
    let r: OrdersOnly = serde_json::from_slice(report_json)?;
    let mut out = String::from(
        "\u{feff}placed_on,executes_on,ticker,side,type,limit_price,quantity,filled_quantity,status,reason,origin\n",
    );
    for o in &r.orders {
        let price = o.price.map(|p| p.to_string()).unwrap_or_default();
        let _ = writeln!(
            out,
            "{},{},{},{},{},{},{},{},{},{},{}",
            o.placed_on,
            o.executes_on,
            o.ticker,
            o.side,
            o.kind,
            price,
            o.quantity,
            o.filled_quantity,
            o.status,
            o.reason.as_deref().unwrap_or(""),
            o.origin
        );
    }
    Ok(out)
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

    #[test]
    fn sampling_keeps_the_last_point_and_bounds_the_count() {
        let v: Vec<usize> = sampled(2_500).collect();
        assert!(v.len() <= MAX_POINTS + 1);
        assert_eq!(*v.last().unwrap(), 2_499);
        assert_eq!(v[0], 0);
        assert_eq!(sampled(10).count(), 10);
        assert_eq!(sampled(0).count(), 0);
        assert_eq!(sampled(1).collect::<Vec<_>>(), [0]);
    }
}
