//! The engine's KRX fidelity on the real data in `../shared/data/krx` (imported the way a user
//! imports it, with `haechi data import-krx`): the exchange calendar across a halt, a lower
//! limit from a back-adjusted base, KOSDAQ ticks and taxes, strategies warmed by the history
//! before `period.start`, and every fill of a run over every name priced at a price that could
//! have traded. Skipped when the data is absent, unless `HAECHI_REQUIRE_KRX_DATA` is set (CI).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

mod common;
use common::krx_dir;

use chrono::NaiveDate;
use haechi_core::krx;
use haechi_core::order::ExpiryReason;
use haechi_core::{
    CalendarSource, Market, MarketStore, OrderKind, OrderStatus, Price, RejectReason, Side, Ticker, Won,
};
use haechi_data::csv::{LoadOptions, load_dir};
use haechi_data::krx_import::import_krx;
use haechi_sim::engine::{self, EngineConfig, FillTiming, RunOutput, TaxBasis};
use haechi_sim::scenario::{Format, Scenario};
use haechi_sim::strategy::{Context, OrderRequest, Strategy};
use std::path::PathBuf;
use std::sync::OnceLock;

/// The shared data imported once per test binary into a temporary market folder.
fn market_dir() -> Option<&'static PathBuf> {
    static DIR: OnceLock<Option<(tempfile::TempDir, PathBuf)>> = OnceLock::new();
    DIR.get_or_init(|| {
        let src = krx_dir()?;
        let tmp = tempfile::tempdir().unwrap();
        let out = tmp.path().join("krx");
        let summary = import_krx(&src, &out).unwrap();
        assert_eq!((summary.tickers, summary.kospi, summary.kosdaq), (53, 30, 23));
        // The four unadjusted corporate actions the data's README lists.
        let mut cut: Vec<(String, String)> =
            summary.cuts.iter().map(|c| (c.ticker.to_string(), c.from.to_string())).collect();
        cut.sort();
        assert_eq!(
            cut,
            [("060250", "2021-11-25"), ("096530", "2021-04-23"), ("247540", "2022-06-27"), ("263750", "2021-04-16")]
                .map(|(t, d)| (t.to_owned(), d.to_owned()))
        );
        Some((tmp, out))
    })
    .as_ref()
    .map(|(_, p)| p)
}

fn load(tickers: &[&str]) -> Option<MarketStore> {
    let dir = market_dir()?;
    let opts = LoadOptions {
        tickers: Some(tickers.iter().map(|t| Ticker::parse(t).unwrap()).collect()),
        ..LoadOptions::default()
    };
    Some(load_dir(dir, &opts).unwrap().store)
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

/// Orders by date: `(placed at this close, request)`.
struct OnDates(Vec<(NaiveDate, OrderRequest)>);

impl Strategy for OnDates {
    fn name(&self) -> &'static str {
        "on_dates"
    }
    fn on_close(&mut self, ctx: &Context<'_>, out: &mut Vec<OrderRequest>) {
        out.extend(self.0.iter().filter(|(day, _)| *day == ctx.market.date()).map(|(_, r)| *r));
    }
}

fn config(store: &MarketStore, from: NaiveDate, to: NaiveDate) -> EngineConfig {
    EngineConfig {
        capital: Won(1_000_000_000),
        start: store.session_at_or_after(from),
        end: store.session_at_or_after(to.succ_opt().unwrap()) - 1,
        fill: FillTiming::NextOpen,
        slippage_bps: 0,
        participation: 0.1,
        locked_limit_share: 0.05,
        commission: krx::DEFAULT_COMMISSION,
        tax_basis: TaxBasis::Settlement,
        max_order_value: None,
        max_position_weight: None,
        cash_reserve: 0.0,
        liquidate_at_end: false,
    }
}

fn order(slot: usize, side: Side, quantity: u64, kind: OrderKind) -> OrderRequest {
    OrderRequest { slot, side, quantity, kind }
}

fn run_orders(
    store: &MarketStore,
    orders: Vec<(NaiveDate, OrderRequest)>,
    from: NaiveDate,
    to: NaiveDate,
) -> RunOutput {
    let cfg = config(store, from, to);
    let universe: Vec<usize> = (0..store.n_instruments()).collect();
    engine::run(store, &universe, &mut OnDates(orders), &cfg).unwrap()
}

/// Samsung Electronics was halted 2018-04-30 … 2018-05-03 for its 50:1 split; 05-01 is Labour
/// Day. On KRX a sale on 04-27 settles on 05-02 (04-30 and 05-02 are sessions), and an order
/// for the open of 04-30 meets a halted name. Both hold whether 005930 is loaded alone or with
/// 000660, which traded through.
#[test]
fn a_halted_name_settles_and_rejects_by_the_exchange_calendar() {
    for tickers in [&["005930"][..], &["005930", "000660"][..]] {
        let Some(store) = load(tickers) else { return };
        assert_eq!(store.calendar_source(), CalendarSource::Exchange);
        let s = store.slot_of(Ticker::parse("005930").unwrap()).unwrap();
        let orders = vec![
            (d(2018, 4, 24), order(s, Side::Buy, 10, OrderKind::Market)),
            (d(2018, 4, 26), order(s, Side::Sell, 5, OrderKind::Market)),
            (d(2018, 4, 27), order(s, Side::Sell, 5, OrderKind::Market)),
        ];
        let out = run_orders(&store, orders, d(2018, 4, 2), d(2018, 5, 31));
        let sale = &out.fills[1];
        assert_eq!((sale.trade_date, sale.settlement_date), (d(2018, 4, 27), d(2018, 5, 2)), "{tickers:?}");
        let last = &out.orders[2];
        assert_eq!(last.executes_on, d(2018, 4, 30), "{tickers:?}");
        assert_eq!(last.status, OrderStatus::Rejected { reason: RejectReason::NotTraded }, "{tickers:?}");
    }
}

/// 012450 on 2014-11-26: its back-adjusted previous close 35,068 puts the raw lower limit
/// (±15% then) at 29,818, off the 50-won grid; the session traded 29,844 … 31,033. A market
/// sell at the open fills on the grid inside both: 29,850.
#[test]
fn a_lower_limit_from_an_off_grid_base_fills_on_the_grid() {
    let Some(store) = load(&["012450"]) else { return };
    let orders = vec![
        (d(2014, 11, 3), order(0, Side::Buy, 100, OrderKind::Market)),
        (d(2014, 11, 25), order(0, Side::Sell, 100, OrderKind::Market)),
    ];
    let out = run_orders(&store, orders, d(2014, 11, 3), d(2014, 11, 28));
    let sale = out.fills.iter().find(|f| f.side == Side::Sell).unwrap();
    assert_eq!((sale.trade_date, sale.price.get()), (d(2014, 11, 26), 29_850));
    assert!(krx::is_on_tick(sale.trade_date, Market::Kospi, sale.price));
}

/// 145020 (Hugel, KOSDAQ) traded above 100,000 won before 2023, where KOSDAQ's tick is 100 and
/// KOSPI's 500: a limit at 300,100 is valid on KOSDAQ. Its sale pays KOSDAQ's 0.23% (2021),
/// one tax truncated once — a KOSPI name pays 0.08% + 0.15%, each truncated.
#[test]
fn a_kosdaq_name_trades_under_kosdaq_ticks_and_tax() {
    let Some(store) = load(&["145020"]) else { return };
    assert_eq!(store.instrument(0).market, Market::Kosdaq);
    let day = d(2021, 3, 2);
    let i = store.session_at_or_after(day);
    let close = store.raw(0, i).unwrap().close;
    assert!(close > 100_000, "the test needs a price above 100,000 won: {close}");
    // A limit above the next session's high on the KOSDAQ grid (not on KOSPI's 500-won grid).
    let limit = (i64::from(close) * 105 / 100) / 500 * 500 + 100;
    let price = Price::new(limit).unwrap();
    assert!(krx::is_on_tick(day, Market::Kosdaq, price) && !krx::is_on_tick(day, Market::Kospi, price));
    let orders = vec![
        (store.dates()[i], order(0, Side::Buy, 7, OrderKind::Limit { price })),
        (d(2021, 6, 1), order(0, Side::Sell, 7, OrderKind::Market)),
    ];
    let out = run_orders(&store, orders, d(2021, 2, 1), d(2021, 6, 30));
    assert_eq!(out.orders[0].status, OrderStatus::Filled, "{:?}", out.orders[0]);
    let sale = out.fills.iter().find(|f| f.side == Side::Sell).unwrap();
    assert_eq!(sale.tax.get(), sale.amount.get() * 23 / 10_000);
    // Loading the raw stocks folder, which says nothing about markets, is refused.
    let raw = krx_dir().unwrap().join("stocks");
    let err = load_dir(&raw, &LoadOptions::default()).unwrap_err().to_string();
    assert!(err.contains("no instruments.csv, so the market of 53 ticker(s) is unknown"), "{err}");
}

/// Closes of `ticker` from the imported CSV, read independently of the loader.
fn closes(ticker: &str) -> Vec<(NaiveDate, f64)> {
    let text = std::fs::read_to_string(market_dir().unwrap().join(format!("{ticker}.csv"))).unwrap();
    text.lines()
        .skip(1)
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[4].parse().unwrap())
        })
        .collect()
}

/// Both signal strategies read the history before `period.start`: their first order in the run
/// is the first signal of an independent computation over the whole series. The starts are
/// chosen so that the signal comes before a strategy starting cold could give any (60 sessions
/// for the slow average, 15 for RSI), so the test fails if history is ignored.
#[test]
fn signal_strategies_use_the_history_before_the_start() {
    let Some(store) = load(&["005930"]) else { return };
    let series = closes("005930");
    let begin_at = |start: NaiveDate| series.iter().position(|(day, _)| *day >= start).unwrap();
    let begin = begin_at(d(2019, 6, 3));

    // sma_cross 20/60: buy when the fast mean crosses above the slow one.
    let mean = |t: usize, n: usize| series[t + 1 - n..=t].iter().map(|c| c.1).sum::<f64>() / n as f64;
    let above = |t: usize| mean(t, 20) > mean(t, 60);
    // Held or not, the first cross in the run is a signal: a cross up buys; a cross down with
    // nothing held does nothing, so look for the first cross up.
    let first_up = (begin..series.len()).find(|&t| above(t) && !above(t - 1)).unwrap();
    let run = |strategy: &str, start: NaiveDate| {
        let text = format!(
            r#"
name = "history"
capital = 100_000_000
period = {{ start = {start}, end = 2021-12-30 }}
universe = {{ tickers = ["005930"] }}
strategy = {strategy}
execution = {{ slippage_bps = 0 }}
"#
        );
        let s = Scenario::parse(&text, Format::Toml, "inline").unwrap();
        let b = s.bind(&store).unwrap();
        engine::run(&store, &b.universe, s.strategy(&b).as_mut(), &b.config).unwrap()
    };
    assert!(first_up < begin + 60, "the data no longer has an early cross");
    let out = run(r#"{ type = "sma_cross", fast = 20, slow = 60 }"#, d(2019, 6, 3));
    assert_eq!(out.orders[0].placed_on, series[first_up].0, "sma_cross");
    assert_eq!(out.orders[0].side, Side::Buy);

    // rsi_reversion 14 / 30 / 70: Wilder's RSI seeded from the whole series.
    let n = 14.0;
    let mut rsi = vec![None; series.len()];
    let (mut g, mut l) = (0.0, 0.0);
    for t in 1..series.len() {
        let ch = series[t].1 - series[t - 1].1;
        let (gain, loss) = (ch.max(0.0), (-ch).max(0.0));
        if t <= 14 {
            g += gain / n;
            l += loss / n;
        } else {
            g = (g * (n - 1.0) + gain) / n;
            l = (l * (n - 1.0) + loss) / n;
        }
        if t >= 14 {
            rsi[t] = Some(if l == 0.0 { 100.0 } else { 100.0 - 100.0 / (1.0 + g / l) });
        }
    }
    let begin = begin_at(d(2019, 5, 2));
    let first_buy = (begin..series.len()).find(|&t| rsi[t].is_some_and(|r| r < 30.0)).unwrap();
    assert!(first_buy < begin + 14, "the data no longer has an early signal");
    let out = run(r#"{ type = "rsi_reversion", period = 14, oversold = 30, overbought = 70 }"#, d(2019, 5, 2));
    assert_eq!(out.orders[0].placed_on, series[first_buy].0, "rsi_reversion");
}

/// sma_cross over all 53 names, 2010–2024, with 5 bps of slippage: every fill is on the grid,
/// inside its session's low–high and inside the band, and the effective slippage stays near
/// the configured rate instead of a whole tick per fill.
#[test]
fn every_fill_on_the_real_data_is_a_price_that_could_have_traded() {
    let Some(dir) = market_dir() else { return };
    let store = load_dir(dir, &LoadOptions::default()).unwrap().store;
    let text = r#"
name = "all names"
capital = 1_000_000_000
period = { start = 2010-01-04, end = 2024-12-13 }
universe = { all = true }
strategy = { type = "sma_cross", fast = 10, slow = 40 }
sizing = { type = "percent_of_equity", percent = 2 }
execution = { slippage_bps = 5, participation = 0.1 }
"#;
    let s = Scenario::parse(text, Format::Toml, "inline").unwrap();
    let b = s.bind(&store).unwrap();
    let out = engine::run(&store, &b.universe, s.strategy(&b).as_mut(), &b.config).unwrap();
    assert!(out.fills.len() > 3_000, "{} fills", out.fills.len());
    for f in &out.fills {
        let slot = store.slot_of(f.ticker).unwrap();
        let market = store.instrument(slot).market;
        let day = store.dates().binary_search(&f.trade_date).unwrap();
        let bar = store.raw(slot, day).unwrap();
        assert!(krx::is_on_tick(f.trade_date, market, f.price), "off the grid: {f:?}");
        assert!(
            i64::from(bar.low) <= f.price.get() && f.price.get() <= i64::from(bar.high),
            "outside the range: {f:?} {bar:?}"
        );
    }
    let bps = out.effective_slippage_bps().unwrap();
    assert!((3.0..=7.0).contains(&bps), "effective slippage {bps} bps for 5 configured");
    let expired_no_price = out
        .orders
        .iter()
        .filter(|o| matches!(o.status, OrderStatus::Expired { reason: ExpiryReason::NoValidPrice }))
        .count();
    eprintln!(
        "{} fills, effective slippage {bps:.2} bps, {expired_no_price} orders found no grid price",
        out.fills.len()
    );
}

/// Locked limits in the real data: SK hynix (000660) opened, traded and closed at its +15%
/// upper limit of 4,025 on 2003-04-16 (870,285 shares), and SM (041510) at its −15% lower
/// limit of 50,100 on 2012-11-15 (132,550 shares). Orders on the locked side fill only
/// `locked_limit_share` (5%) of the volume; the rest expires `locked_limit`.
#[test]
fn a_locked_limit_rations_the_locked_side_on_real_sessions() {
    let Some(store) = load(&["000660", "041510"]) else { return };
    let hynix = store.slot_of(Ticker::parse("000660").unwrap()).unwrap();
    let sm = store.slot_of(Ticker::parse("041510").unwrap()).unwrap();
    let orders = vec![
        (d(2003, 4, 15), order(hynix, Side::Buy, 100_000, OrderKind::Market)),
        (d(2012, 11, 1), order(sm, Side::Buy, 10_000, OrderKind::Market)),
        (d(2012, 11, 14), order(sm, Side::Sell, 10_000, OrderKind::Market)),
    ];
    let mut cfg = config(&store, d(2003, 4, 1), d(2012, 11, 30));
    cfg.capital = Won(10_000_000_000);
    let universe = [hynix, sm];
    let out = engine::run(&store, &universe, &mut OnDates(orders), &cfg).unwrap();
    let buy = &out.orders[0];
    assert_eq!(buy.executes_on, d(2003, 4, 16));
    assert_eq!(
        buy.status,
        OrderStatus::PartiallyFilled {
            filled: haechi_core::Quantity(870_285 * 5 / 100),
            expired: haechi_core::Quantity(100_000 - 870_285 * 5 / 100),
            reason: ExpiryReason::LockedLimit
        }
    );
    assert_eq!(out.fills[0].price.get(), 4_025);
    let sell = out.orders.iter().find(|o| o.side == Side::Sell).unwrap();
    assert_eq!(sell.executes_on, d(2012, 11, 15));
    assert_eq!(
        sell.status,
        OrderStatus::PartiallyFilled {
            filled: haechi_core::Quantity(132_550 * 5 / 100),
            expired: haechi_core::Quantity(10_000 - 132_550 * 5 / 100),
            reason: ExpiryReason::LockedLimit
        }
    );
}
