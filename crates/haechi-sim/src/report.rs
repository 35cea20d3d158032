//! The run report: a stable JSON document (`schema_version`, see `docs/report.md`) and the
//! model the HTML report and the portal are rendered from.
//!
//! One type for both directions: the engine's run is built into a [`Report`], the worker stores
//! it as `report.json`, and the portal reads it back with [`Report::from_json`], which refuses
//! a document of another schema version rather than show a report it would misread.

use crate::engine::{DayRecord, FinalPosition, OrderRecord, RunOutput};
use crate::metrics::{self, ReturnMetrics};
use crate::scenario::{BenchmarkSeries, Scenario};
use crate::trades::{self, ClosedTrade, TradeStats};
use chrono::{Datelike, NaiveDate};
use haechi_core::{CalendarSource, Fill, MarketStore, OrderStatus, Won};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// Bumped whenever a field changes meaning or disappears; additions keep the version.
pub const SCHEMA_VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Report {
    pub schema_version: u32,
    pub generator: String,
    pub scenario: Scenario,
    pub data: DataSummary,
    pub summary: Summary,
    pub equity_curve: Vec<EquityPoint>,
    pub monthly_returns: Vec<MonthlyReturn>,
    pub orders: Vec<OrderRecord>,
    pub fills: Vec<Fill>,
    pub trades: Vec<ClosedTrade>,
    pub positions: Vec<PositionRecord>,
}

/// What the run was computed on.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DataSummary {
    /// True when the market data says it was generated (a `synthetic.json` marker).
    pub synthetic: bool,
    pub first_session: NaiveDate,
    pub last_session: NaiveDate,
    pub sessions: usize,
    pub universe_size: usize,
    pub benchmark: Option<String>,
    /// Rows whose low/high were clamped to contain open and close when loading.
    pub clamped_rows: usize,
    /// `exchange` (the market's trading days) or `bar_union` (the loaded bars' dates: then
    /// `warnings` says why that matters).
    #[serde(default = "default_calendar")]
    pub calendar: CalendarSource,
    /// What the reader should know about the data before trusting the figures.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub warnings: Vec<String>,
}

fn default_calendar() -> CalendarSource {
    CalendarSource::BarUnion
}

/// The warning a report carries when the calendar is the union of the loaded bars.
pub const BAR_UNION_WARNING: &str = "no exchange calendar came with the data, so the sessions are the days the loaded names \
     traded: a day every one of them was halted is missing, which moves settlement dates and \
     lets a day order wait across the halt; give the data a calendar.csv (haechi data import-krx and \
     haechi data synth write one)";

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Summary {
    pub initial_capital: Won,
    pub final_equity: Won,
    #[serde(flatten)]
    pub returns: ReturnMetrics,
    pub benchmark_total_return: Option<f64>,
    #[serde(flatten)]
    pub trades: TradeStats,
    /// Annualised one-way turnover: traded value / 2 / mean equity × 252 / sessions.
    pub turnover: f64,
    /// Mean share of equity invested in positions at the close.
    pub exposure: f64,
    pub commissions: Won,
    pub taxes: Won,
    /// Number of fills.
    pub trade_count: usize,
    pub orders: OrderCounts,
    /// Bars the engine stepped through: universe size × sessions.
    pub bar_steps: u64,
    /// Market orders' slippage as filled, in basis points of their reference prices
    /// (amount-weighted; rounding to the tick grid and the session's range move it off the
    /// configured rate). `None` without a market-order fill.
    #[serde(default)]
    pub effective_slippage_bps: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct OrderCounts {
    pub placed: usize,
    pub filled: usize,
    pub partially_filled: usize,
    pub expired: usize,
    pub rejected: usize,
    /// Rejections per reason code.
    pub rejected_by_reason: BTreeMap<String, usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct EquityPoint {
    pub date: NaiveDate,
    pub equity: Won,
    pub cash: Won,
    pub invested: Won,
    /// Fraction below the running peak (≤ 0).
    pub drawdown: f64,
    /// The benchmark scaled to start at the initial capital.
    pub benchmark: Option<f64>,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MonthlyReturn {
    pub year: i32,
    pub month: u32,
    #[serde(rename = "return")]
    pub ret: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PositionRecord {
    #[serde(flatten)]
    pub position: FinalPosition,
    pub name: String,
    /// Share of final equity.
    pub weight: f64,
    pub unrealized_pnl: Won,
}

/// One calendar year of monthly returns, as both report pages tabulate them.
#[derive(Debug, Clone, PartialEq)]
pub struct YearReturns {
    pub year: i32,
    /// January to December; `None` where the run did not cover the month.
    pub months: [Option<f64>; 12],
    /// The months present, compounded.
    pub total: f64,
}

impl Report {
    /// [`Report::monthly_returns`] by year, oldest first.
    #[must_use]
    pub fn monthly_by_year(&self) -> Vec<YearReturns> {
        let mut by_year: BTreeMap<i32, [Option<f64>; 12]> = BTreeMap::new();
        for m in &self.monthly_returns {
            if let Some(i) = (m.month as usize).checked_sub(1).filter(|i| *i < 12) {
                by_year.entry(m.year).or_insert([None; 12])[i] = Some(m.ret);
            }
        }
        by_year
            .into_iter()
            .map(|(year, months)| YearReturns {
                year,
                months,
                total: months.iter().flatten().fold(1.0, |g, r| g * (1.0 + r)) - 1.0,
            })
            .collect()
    }
}

/// Why a stored report could not be read back.
#[derive(Debug, thiserror::Error)]
pub enum ReportError {
    /// Written by a build with another schema: its fields may mean something else.
    #[error("report schema version {found} is not supported: this build reads schema version {expected}")]
    SchemaVersion { found: u64, expected: u32 },
    /// Not JSON, or not a report's shape.
    #[error("not a readable report: {0}")]
    Json(#[from] serde_json::Error),
}

/// Just the version, read before the rest so a document of another schema is named as such
/// rather than failing on whichever field changed.
#[derive(Deserialize)]
struct VersionOnly {
    schema_version: u64,
}

impl Report {
    /// The report as stored (`report.json`).
    ///
    /// # Errors
    /// Serialisation failed, which no report built by [`build`] does.
    pub fn to_json(&self) -> Result<Vec<u8>, ReportError> {
        Ok(serde_json::to_vec(self)?)
    }

    /// Reads a stored report, refusing one of another [`SCHEMA_VERSION`].
    ///
    /// # Errors
    /// [`ReportError::SchemaVersion`] naming the version found, or [`ReportError::Json`].
    pub fn from_json(json: impl AsRef<[u8]>) -> Result<Report, ReportError> {
        let json = json.as_ref();
        let VersionOnly { schema_version } = serde_json::from_slice(json)?;
        if schema_version != u64::from(SCHEMA_VERSION) {
            return Err(ReportError::SchemaVersion { found: schema_version, expected: SCHEMA_VERSION });
        }
        Ok(serde_json::from_slice(json)?)
    }
}

/// Inputs beyond the run itself.
#[derive(Debug, Clone, Copy)]
pub struct ReportContext<'a> {
    pub store: &'a MarketStore,
    /// Session index where the run started.
    pub start: usize,
    pub benchmark: Option<&'a BenchmarkSeries>,
    pub synthetic: bool,
    pub clamped_rows: usize,
    pub universe_size: usize,
}

/// Builds the report from a run.
#[must_use]
pub fn build(scenario: &Scenario, run: RunOutput, ctx: ReportContext<'_>) -> Report {
    let capital = scenario.capital;
    let effective_slippage_bps = run.effective_slippage_bps();
    let equity: Vec<f64> = run.days.iter().map(|d| d.equity.get() as f64).collect();
    let returns = metrics::returns_from_equity(capital.get() as f64, &equity);
    let drawdowns = metrics::drawdown_series(&returns);
    let bench = ctx.benchmark.map(|b| benchmark_view(b, ctx.start, run.days.len()));
    let bench_returns = bench.as_ref().map(|b| b.returns.as_slice());
    let summary_returns = metrics::summarize(&returns, bench_returns);
    let closed = trades::closed_trades(&run.fills, ctx.store.dates());
    let stats = trades::trade_stats(&closed);

    let traded: f64 = run.fills.iter().map(|f| f.amount.get() as f64).sum();
    let n = run.days.len().max(1) as f64;
    let mean_equity = equity.iter().sum::<f64>() / n;
    let turnover = if mean_equity > 0.0 { traded / 2.0 / mean_equity * metrics::PERIODS_PER_YEAR / n } else { 0.0 };
    let exposure = run
        .days
        .iter()
        .map(|d| if d.equity.get() > 0 { d.invested.get() as f64 / d.equity.get() as f64 } else { 0.0 })
        .sum::<f64>()
        / n;

    let equity_curve = run
        .days
        .iter()
        .enumerate()
        .map(|(i, d)| EquityPoint {
            date: d.date,
            equity: d.equity,
            cash: d.cash,
            invested: d.invested,
            drawdown: drawdowns.get(i).copied().unwrap_or(0.0),
            benchmark: bench.as_ref().and_then(|b| b.scaled(i, capital)),
        })
        .collect();
    let final_equity = run.days.last().map_or(capital, |d| d.equity);
    let positions = run
        .positions
        .iter()
        .map(|p| PositionRecord {
            name: ctx.store.slot_of(p.ticker).map(|s| ctx.store.instrument(s).name.clone()).unwrap_or_default(),
            weight: if final_equity.get() > 0 { p.value.get() as f64 / final_equity.get() as f64 } else { 0.0 },
            unrealized_pnl: p.value - p.cost,
            position: p.clone(),
        })
        .collect();

    Report {
        schema_version: SCHEMA_VERSION,
        generator: concat!("haechi ", env!("CARGO_PKG_VERSION")).to_owned(),
        scenario: scenario.clone(),
        data: DataSummary {
            synthetic: ctx.synthetic,
            first_session: run.days.first().map_or(scenario.period.start, |d| d.date),
            last_session: run.days.last().map_or(scenario.period.end, |d| d.date),
            sessions: run.days.len(),
            universe_size: ctx.universe_size,
            benchmark: ctx.benchmark.map(|b| b.name.clone()),
            clamped_rows: ctx.clamped_rows,
            calendar: ctx.store.calendar_source(),
            warnings: match ctx.store.calendar_source() {
                CalendarSource::BarUnion => vec![BAR_UNION_WARNING.to_owned()],
                CalendarSource::Exchange => Vec::new(),
            },
        },
        summary: Summary {
            initial_capital: capital,
            final_equity,
            returns: summary_returns,
            benchmark_total_return: bench.as_ref().and_then(|b| b.total_return()),
            trades: stats,
            turnover,
            exposure,
            commissions: run.commissions,
            taxes: run.taxes,
            trade_count: run.fills.len(),
            orders: order_counts(&run.orders),
            bar_steps: run.bar_steps,
            effective_slippage_bps,
        },
        monthly_returns: monthly_returns(capital, &run.days),
        equity_curve,
        orders: run.orders,
        fills: run.fills,
        trades: closed,
        positions,
    }
}

fn order_counts(orders: &[OrderRecord]) -> OrderCounts {
    let mut c = OrderCounts { placed: orders.len(), ..OrderCounts::default() };
    for o in orders {
        match o.status {
            OrderStatus::Filled => c.filled += 1,
            OrderStatus::PartiallyFilled { .. } => c.partially_filled += 1,
            OrderStatus::Expired { .. } => c.expired += 1,
            OrderStatus::Rejected { reason } => {
                c.rejected += 1;
                *c.rejected_by_reason.entry(reason.code().to_owned()).or_default() += 1;
            }
        }
    }
    c
}

/// Month-end equity over the previous month-end (the first month over the initial capital).
fn monthly_returns(capital: Won, days: &[DayRecord]) -> Vec<MonthlyReturn> {
    let mut out = Vec::new();
    let mut prev = capital.get() as f64;
    for (i, d) in days.iter().enumerate() {
        let month_ends =
            days.get(i + 1).is_none_or(|next| (next.date.year(), next.date.month()) != (d.date.year(), d.date.month()));
        if month_ends {
            let eq = d.equity.get() as f64;
            out.push(MonthlyReturn {
                year: d.date.year(),
                month: d.date.month(),
                ret: if prev > 0.0 { eq / prev - 1.0 } else { 0.0 },
            });
            prev = eq;
        }
    }
    out
}

/// The benchmark over the run's sessions.
struct BenchView {
    values: Vec<f64>,
    /// Daily returns aligned with the strategy's (NaN where either end is missing).
    returns: Vec<f64>,
    base: Option<f64>,
}

fn benchmark_view(b: &BenchmarkSeries, start: usize, len: usize) -> BenchView {
    let values: Vec<f64> = (start..start + len).map(|i| b.values.get(i).copied().unwrap_or(f64::NAN)).collect();
    let before = start.checked_sub(1).and_then(|i| b.values.get(i).copied()).unwrap_or(f64::NAN);
    let returns = (0..len)
        .map(|i| {
            let prev = if i == 0 { before } else { values[i - 1] };
            let r = values[i] / prev - 1.0;
            if r.is_finite() { r } else { f64::NAN }
        })
        .collect();
    let base = values.iter().copied().find(|v| v.is_finite() && *v > 0.0);
    BenchView { values, returns, base }
}

impl BenchView {
    fn scaled(&self, i: usize, capital: Won) -> Option<f64> {
        let (v, base) = (self.values.get(i).copied()?, self.base?);
        v.is_finite().then(|| v / base * capital.get() as f64)
    }

    fn total_return(&self) -> Option<f64> {
        let last = self.values.iter().rev().copied().find(|v| v.is_finite())?;
        Some(last / self.base? - 1.0)
    }
}

/// The summary as a plain-text table for terminals, Korean label first.
#[must_use]
pub fn summary_text(report: &Report) -> String {
    use haechi_core::money::group_thousands;
    use std::fmt::Write as _;
    let s = &report.summary;
    let r = &s.returns;
    let pct = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{:.2}%", v * 100.0));
    let num = |v: Option<f64>| v.map_or_else(|| "-".to_owned(), |v| format!("{v:.2}"));
    let won = |v: Won| format!("{} 원", group_thousands(v.get()));
    let rows: Vec<(&str, String)> = vec![
        ("초기자본 Initial capital", won(s.initial_capital)),
        ("최종자산 Final equity", won(s.final_equity)),
        ("총수익률 Total return", pct(Some(r.total_return))),
        ("연복리수익률 CAGR", pct(r.cagr)),
        ("연변동성 Annual volatility", pct(r.annual_volatility)),
        ("샤프 Sharpe", num(r.sharpe)),
        ("소르티노 Sortino", num(r.sortino)),
        ("칼마 Calmar", num(r.calmar)),
        ("최대낙폭 Max drawdown", pct(Some(r.max_drawdown))),
        ("낙폭기간 Drawdown duration", format!("{} sessions", r.max_drawdown_duration_days)),
        ("알파 Alpha", pct(r.alpha)),
        ("베타 Beta", num(r.beta)),
        ("VaR 95%", pct(r.var_95)),
        ("CVaR 95%", pct(r.cvar_95)),
        ("벤치마크 Benchmark return", pct(s.benchmark_total_return)),
        ("승률 Win rate", pct(s.trades.win_rate)),
        ("손익비 Profit factor", num(s.trades.profit_factor)),
        ("평균보유 Avg holding", s.trades.avg_holding_days.map_or("-".into(), |d| format!("{d:.1} sessions"))),
        ("회전율 Turnover (annual)", pct(Some(s.turnover))),
        ("투자비중 Exposure", pct(Some(s.exposure))),
        ("수수료 Commissions", won(s.commissions)),
        ("세금 Taxes", won(s.taxes)),
        ("체결 Fills", s.trade_count.to_string()),
        (
            "주문 Orders",
            format!(
                "{} placed, {} filled, {} partial, {} expired, {} rejected",
                s.orders.placed, s.orders.filled, s.orders.partially_filled, s.orders.expired, s.orders.rejected
            ),
        ),
    ];
    let mut out = String::new();
    let _ = writeln!(
        out,
        "{} ({} → {}, {} sessions)",
        report.scenario.name, report.data.first_session, report.data.last_session, report.data.sessions
    );
    if report.data.synthetic {
        let _ = writeln!(out, "합성 데이터 Synthetic data: not real market prices");
    }
    for (label, value) in rows {
        // Hangul is two columns wide in a terminal; pad by display width, not chars.
        let width: usize = label.chars().map(|c| if c.is_ascii() { 1 } else { 2 }).sum();
        let _ = writeln!(out, "  {label}{}  {value}", " ".repeat(34usize.saturating_sub(width)));
    }
    if !s.orders.rejected_by_reason.is_empty() {
        let reasons: Vec<String> = s.orders.rejected_by_reason.iter().map(|(k, v)| format!("{k} {v}")).collect();
        let _ = writeln!(out, "  거부 사유 Rejections: {}", reasons.join(", "));
    }
    out
}
