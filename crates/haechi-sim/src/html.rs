//! The self-contained HTML report: one file, inline CSS and SVG, no scripts, no network.
//!
//! Text from scenarios and data (names, tickers) goes through askama's HTML escaping; the SVG
//! charts are [`crate::chart`]'s, the same the portal shows, coloured by this page's own CSS.

use crate::chart;
use crate::report::Report;
use askama::Template;
use haechi_core::Side;
use haechi_core::money::group_thousands;

/// Fills shown in the page; the JSON report carries all of them.
const MAX_FILL_ROWS: usize = 1_000;

#[derive(Template)]
#[template(path = "report.html")]
struct ReportPage<'a> {
    generator: &'a str,
    schema_version: u32,
    title: &'a str,
    description: Option<&'a str>,
    strategy: &'a str,
    first_session: String,
    last_session: String,
    sessions: usize,
    universe_size: usize,
    benchmark: Option<&'a str>,
    synthetic: bool,
    warnings: &'a [String],
    headline: Vec<Metric>,
    metrics: Vec<Metric>,
    equity_svg: String,
    drawdown_svg: String,
    month_headers: Vec<String>,
    monthly: Vec<MonthRow>,
    order_rows: Vec<(String, usize)>,
    positions: Vec<PositionRow>,
    fills: Vec<FillRow>,
    fills_total: usize,
    fills_truncated: bool,
}

struct Metric {
    ko: &'static str,
    en: &'static str,
    value: String,
    class: &'static str,
}

struct Cell {
    text: String,
    class: &'static str,
}

struct MonthRow {
    year: i32,
    cells: Vec<Cell>,
    total: Cell,
}

struct PositionRow {
    ticker: String,
    name: String,
    qty: String,
    price: String,
    value: String,
    weight: String,
    pnl: String,
    class: &'static str,
}

struct FillRow {
    date: String,
    settles: String,
    ticker: String,
    side: &'static str,
    class: &'static str,
    qty: String,
    price: String,
    amount: String,
    fee: String,
    tax: String,
}

/// Renders the report as one HTML page.
///
/// # Errors
/// Only if the template engine fails, which would be a bug in the template.
// Stays whole: the page is one template written top to bottom, like the page it makes.
pub fn render(report: &Report) -> Result<String, askama::Error> {
    let s = &report.summary;
    let r = &s.returns;
    let pct = |v: f64| format!("{:.2}%", v * 100.0);
    let opt_pct = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), pct);
    let ratio = |v: Option<f64>| v.map_or_else(|| "—".to_owned(), |v| format!("{v:.2}"));
    let won = |v: i64| format!("{}원", group_thousands(v));
    let m = |ko, en, value: String, class| Metric { ko, en, value, class };
    let headline = vec![
        m("총수익률", "Total return", pct(r.total_return), sign_class(r.total_return)),
        m("연복리수익률", "CAGR", opt_pct(r.cagr), r.cagr.map_or("", sign_class)),
        m("최대낙폭", "Max drawdown", pct(r.max_drawdown), "down"),
        m("샤프지수", "Sharpe", ratio(r.sharpe), ""),
        m("최종자산", "Final equity", won(s.final_equity.get()), ""),
        m(
            "벤치마크 수익률",
            "Benchmark return",
            opt_pct(s.benchmark_total_return),
            s.benchmark_total_return.map_or("", sign_class),
        ),
    ];
    let metrics = vec![
        m("초기자본", "Initial capital", won(s.initial_capital.get()), ""),
        m("최종자산", "Final equity", won(s.final_equity.get()), ""),
        m("총수익률", "Total return", pct(r.total_return), sign_class(r.total_return)),
        m("연복리수익률", "CAGR", opt_pct(r.cagr), ""),
        m("연환산 변동성", "Annual volatility", opt_pct(r.annual_volatility), ""),
        m("샤프지수", "Sharpe ratio", ratio(r.sharpe), ""),
        m("소르티노지수", "Sortino ratio", ratio(r.sortino), ""),
        m("칼마지수", "Calmar ratio", ratio(r.calmar), ""),
        m("최대낙폭", "Max drawdown", pct(r.max_drawdown), ""),
        m("최대낙폭 기간", "Max drawdown duration", format!("{} 거래일 sessions", r.max_drawdown_duration_days), ""),
        m("알파(연)", "Alpha (annual)", opt_pct(r.alpha), ""),
        m("베타", "Beta", ratio(r.beta), ""),
        m("VaR 95% (일)", "Daily VaR 95%", opt_pct(r.var_95), ""),
        m("CVaR 95% (일)", "Daily CVaR 95%", opt_pct(r.cvar_95), ""),
        m("승률", "Win rate", opt_pct(s.trades.win_rate), ""),
        m("손익비", "Profit factor", ratio(s.trades.profit_factor), ""),
        m(
            "평균 보유기간",
            "Average holding",
            s.trades.avg_holding_days.map_or("—".into(), |d| format!("{d:.1} 거래일 sessions")),
            "",
        ),
        m("청산 거래 수", "Closed trades", s.trades.closed_trades.to_string(), ""),
        m("회전율(연)", "Turnover (annual)", pct(s.turnover), ""),
        m("투자비중(평균)", "Exposure (mean)", pct(s.exposure), ""),
        m("수수료", "Commissions", won(s.commissions.get()), ""),
        m("세금", "Taxes", won(s.taxes.get()), ""),
        m("체결 수", "Fills", s.trade_count.to_string(), ""),
        m(
            "실효 슬리피지",
            "Effective slippage",
            s.effective_slippage_bps.map_or("—".into(), |b| format!("{b:.1} bp")),
            "",
        ),
    ];

    let mut order_rows = vec![
        ("주문 Placed".to_owned(), s.orders.placed),
        ("전량 체결 Filled".to_owned(), s.orders.filled),
        ("부분 체결 Partially filled".to_owned(), s.orders.partially_filled),
        ("미체결 만료 Expired".to_owned(), s.orders.expired),
        ("거부 Rejected".to_owned(), s.orders.rejected),
    ];
    order_rows.extend(s.orders.rejected_by_reason.iter().map(|(code, n)| (format!("　거부 사유 reason: {code}"), *n)));

    let positions = report
        .positions
        .iter()
        .map(|p| PositionRow {
            ticker: p.position.ticker.to_string(),
            name: p.name.clone(),
            qty: group_thousands(p.position.quantity.get() as i64),
            price: group_thousands(p.position.last_price.get()),
            value: group_thousands(p.position.value.get()),
            weight: pct(p.weight),
            pnl: group_thousands(p.unrealized_pnl.get()),
            class: sign_class(p.unrealized_pnl.get() as f64),
        })
        .collect();
    let fills = report
        .fills
        .iter()
        .take(MAX_FILL_ROWS)
        .map(|f| {
            let (side, class) = match f.side {
                Side::Buy => ("매수 Buy", "up"),
                Side::Sell => ("매도 Sell", "down"),
            };
            FillRow {
                date: f.trade_date.to_string(),
                settles: f.settlement_date.to_string(),
                ticker: f.ticker.to_string(),
                side,
                class,
                qty: group_thousands(f.quantity.get() as i64),
                price: group_thousands(f.price.get()),
                amount: group_thousands(f.amount.get()),
                fee: group_thousands(f.commission.get()),
                tax: group_thousands(f.tax.get()),
            }
        })
        .collect();

    let page = ReportPage {
        generator: &report.generator,
        schema_version: report.schema_version,
        title: &report.scenario.name,
        description: report.scenario.description.as_deref(),
        strategy: report.scenario.strategy.name(),
        first_session: report.data.first_session.to_string(),
        last_session: report.data.last_session.to_string(),
        sessions: report.data.sessions,
        universe_size: report.data.universe_size,
        benchmark: report.data.benchmark.as_deref(),
        synthetic: report.data.synthetic,
        warnings: &report.data.warnings,
        headline,
        metrics,
        equity_svg: chart::equity(report, "자산 추이 Equity vs benchmark", "벤치마크 Benchmark"),
        drawdown_svg: chart::drawdown(report, "낙폭 Drawdown"),
        month_headers: (1..=12).map(|m| format!("{m}월")).collect(),
        monthly: monthly_rows(report),
        order_rows,
        positions,
        fills,
        fills_total: report.fills.len(),
        fills_truncated: report.fills.len() > MAX_FILL_ROWS,
    };
    page.render()
}

fn sign_class(v: f64) -> &'static str {
    if v > 0.0 {
        "up"
    } else if v < 0.0 {
        "down"
    } else {
        ""
    }
}

fn monthly_rows(report: &Report) -> Vec<MonthRow> {
    report
        .monthly_by_year()
        .into_iter()
        .map(|y| MonthRow {
            year: y.year,
            cells: y.months.iter().map(|m| pct_cell(*m)).collect(),
            total: pct_cell(Some(y.total)),
        })
        .collect()
}

fn pct_cell(v: Option<f64>) -> Cell {
    match v {
        Some(v) => Cell { text: format!("{:.1}%", v * 100.0), class: sign_class(v) },
        None => Cell { text: String::new(), class: "" },
    }
}
