//! Fill rules and rejection reasons of the engine, one behaviour per test.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

use chrono::NaiveDate;
use haechi_core::krx::DEFAULT_COMMISSION;
use haechi_core::order::ExpiryReason;
use haechi_core::{
    Instrument, Market, MarketStore, OrderKind, OrderStatus, Price, Quantity, RawBar, RejectReason, Side, StoreBuilder,
    Ticker, Won,
};
use haechi_sim::engine::{self, EngineConfig, FillTiming, OrderOrigin, RunOutput, TaxBasis};
use haechi_sim::strategy::{Context, OrderRequest, Strategy};

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

fn bar(open: u32, high: u32, low: u32, close: u32, volume: u64) -> RawBar {
    RawBar { open, high, low, close, volume }
}

/// Places scripted orders at the close of given sessions.
struct Scripted(Vec<(usize, OrderRequest)>);

impl Strategy for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }
    fn on_close(&mut self, ctx: &Context<'_>, out: &mut Vec<OrderRequest>) {
        out.extend(self.0.iter().filter(|(day, _)| *day == ctx.market.today()).map(|(_, r)| *r));
    }
}

fn config(days: usize) -> EngineConfig {
    EngineConfig {
        capital: Won(10_000_000),
        start: 0,
        end: days - 1,
        fill: FillTiming::NextOpen,
        slippage_bps: 0,
        participation: 0.1,
        locked_limit_share: 0.05,
        commission: DEFAULT_COMMISSION,
        tax_basis: TaxBasis::Settlement,
        max_order_value: None,
        max_position_weight: None,
        cash_reserve: 0.0,
        liquidate_at_end: false,
    }
}

/// One KOSPI stock (slot 0) and one KOSDAQ stock (slot 1) over four sessions in March 2024.
fn store_with(bars0: Vec<(usize, RawBar)>) -> MarketStore {
    let days = vec![d(2024, 3, 4), d(2024, 3, 5), d(2024, 3, 6), d(2024, 3, 7)];
    let mut b = StoreBuilder::new(days).unwrap();
    let inst = |code: &str, market| Instrument {
        ticker: Ticker::parse(code).unwrap(),
        name: code.into(),
        market,
        sector: "test".into(),
    };
    b.add(inst("005930", Market::Kospi), bars0).unwrap();
    b.add(inst("091990", Market::Kosdaq), (0..4).map(|t| (t, bar(20_000, 20_500, 19_500, 20_000, 1_000_000)))).unwrap();
    b.build()
}

fn flat_store() -> MarketStore {
    store_with((0..4).map(|t| (t, bar(71_000, 72_000, 70_000, 71_000, 1_000_000))).collect())
}

fn buy(slot: usize, qty: u64, kind: OrderKind) -> OrderRequest {
    OrderRequest { slot, side: Side::Buy, quantity: qty, kind }
}
fn sell(slot: usize, qty: u64, kind: OrderKind) -> OrderRequest {
    OrderRequest { slot, side: Side::Sell, quantity: qty, kind }
}
fn limit(p: i64) -> OrderKind {
    OrderKind::Limit { price: Price::new(p).unwrap() }
}

fn run(store: &MarketStore, script: Vec<(usize, OrderRequest)>, cfg: &EngineConfig) -> RunOutput {
    engine::run(store, &[0, 1], &mut Scripted(script), cfg).unwrap()
}

fn rejected(out: &RunOutput, i: usize) -> Option<RejectReason> {
    match out.orders[i].status {
        OrderStatus::Rejected { reason } => Some(reason),
        _ => None,
    }
}

#[test]
fn market_order_fills_next_open_with_adverse_slippage_on_tick() {
    let store = store_with(vec![
        (0, bar(50_000, 51_000, 49_000, 50_000, 1_000_000)),
        (1, bar(50_000, 51_000, 49_000, 50_500, 1_000_000)),
        (2, bar(50_900, 51_500, 50_000, 51_000, 1_000_000)),
        (3, bar(51_000, 51_500, 50_000, 51_000, 1_000_000)),
    ]);
    let mut cfg = config(4);
    cfg.slippage_bps = 20;
    let out = run(&store, vec![(0, buy(0, 10, OrderKind::Market)), (1, sell(0, 10, OrderKind::Market))], &cfg);
    // 50,000 × 1.002 = 50,100, on the 100-won grid.
    assert_eq!(out.fills[0].price.get(), 50_100);
    assert_eq!(out.fills[0].trade_date, d(2024, 3, 5));
    // 50,900 × 0.998 = 50,798.2, between 50,700 and 50,800: one of them.
    assert!([50_700, 50_800].contains(&out.fills[1].price.get()), "{:?}", out.fills[1]);
    let p = out.fills[1].price.get();
    assert_eq!(out.fills[1].commission, Won(p * 10 * 15 / 100_000));
    // 2024 KOSPI: 0.03% transaction + 0.15% rural, each truncated on its own.
    assert_eq!(out.fills[1].tax, Won(p * 10 * 3 / 10_000 + p * 10 * 15 / 10_000));
}

#[test]
fn close_timing_fills_at_the_same_close() {
    let store = flat_store();
    let mut cfg = config(4);
    cfg.fill = FillTiming::Close;
    let out = run(&store, vec![(1, buy(0, 3, OrderKind::Market))], &cfg);
    assert_eq!(out.fills[0].trade_date, d(2024, 3, 5));
    assert_eq!(out.fills[0].price.get(), 71_000);
    assert_eq!(out.orders[0].executes_on, out.orders[0].placed_on);
}

#[test]
fn limit_buy_gapping_through_fills_at_the_open() {
    let store = store_with(vec![
        (0, bar(71_000, 72_000, 70_000, 71_000, 1_000_000)),
        (1, bar(69_000, 69_500, 68_000, 69_000, 1_000_000)),
    ]);
    let out = run(&store, vec![(0, buy(0, 5, limit(70_000)))], &config(4));
    assert_eq!(out.orders[0].status, OrderStatus::Filled);
    assert_eq!(out.fills[0].price.get(), 69_000);
}

#[test]
fn limit_sell_gapping_through_fills_at_the_open() {
    let store = store_with(vec![
        (0, bar(71_000, 72_000, 70_000, 71_000, 1_000_000)),
        (1, bar(71_000, 72_000, 70_000, 71_000, 1_000_000)),
        (2, bar(75_000, 76_000, 74_000, 75_000, 1_000_000)),
    ]);
    let script = vec![(0, buy(0, 5, OrderKind::Market)), (1, sell(0, 5, limit(73_000)))];
    let out = run(&store, script, &config(4));
    assert_eq!(out.fills[1].price.get(), 75_000);
}

#[test]
fn limit_reached_inside_the_range_fills_at_the_limit() {
    let store = store_with(vec![
        (0, bar(71_000, 72_000, 70_000, 71_000, 1_000_000)),
        (1, bar(71_000, 71_500, 69_500, 70_500, 1_000_000)),
    ]);
    let out = run(&store, vec![(0, buy(0, 5, limit(70_000)))], &config(4));
    assert_eq!(out.fills[0].price.get(), 70_000);
}

#[test]
fn limit_not_reached_expires_at_the_close() {
    let store = flat_store();
    let out = run(&store, vec![(0, buy(0, 5, limit(69_000)))], &config(4));
    assert_eq!(out.orders[0].status, OrderStatus::Expired { reason: ExpiryReason::LimitNotReached });
    assert!(out.fills.is_empty());
    // A day order: nothing carries over to later sessions.
    assert_eq!(out.orders.len(), 1);
}

#[test]
fn slippage_rounds_to_the_nearest_tick_and_never_leaves_the_sessions_range() {
    let store = store_with(vec![
        (0, bar(71_000, 72_000, 70_000, 71_000, 1_000_000)),
        // Opens at its high and at its low: slippage cannot push a fill past either.
        (1, bar(71_000, 71_000, 70_000, 70_500, 1_000_000)),
        (2, bar(70_000, 70_800, 70_000, 70_500, 1_000_000)),
        (3, bar(70_000, 70_800, 70_000, 70_500, 1_000_000)),
    ]);
    let mut cfg = config(4);
    cfg.slippage_bps = 50;
    let out = run(&store, vec![(0, buy(0, 10, OrderKind::Market)), (1, sell(0, 10, OrderKind::Market))], &cfg);
    // 71,000 × 1.005 = 71,355 would round to 71,400, above the session's high: 71,000.
    assert_eq!(out.fills[0].price.get(), 71_000);
    // 70,000 × 0.995 = 69,650, below the session's low: 70,000.
    assert_eq!(out.fills[1].price.get(), 70_000);
    assert_eq!(out.effective_slippage_bps(), Some(0.0));
}

#[test]
fn slippage_under_a_tick_costs_the_configured_rate_on_average() {
    // 5 bps of 71,000 is 35.5 won, a third of the 100-won tick. Rounding every fill up would
    // charge 14 bps, rounding to the nearest 0; stochastic rounding charges 5 on average.
    let days: Vec<NaiveDate> = (0..400).map(|i| d(2020, 1, 1) + chrono::Days::new(i)).collect();
    let mut b = StoreBuilder::new(days.clone()).unwrap();
    let inst = Instrument {
        ticker: Ticker::parse("005930").unwrap(),
        name: "x".into(),
        market: Market::Kospi,
        sector: String::new(),
    };
    b.add(inst, (0..days.len()).map(|t| (t, bar(71_000, 72_000, 70_000, 71_000, 1_000_000)))).unwrap();
    let store = b.build();
    let script: Vec<(usize, OrderRequest)> = (0..days.len() - 1)
        .map(|t| (t, if t % 2 == 0 { buy(0, 10, OrderKind::Market) } else { sell(0, 10, OrderKind::Market) }))
        .collect();
    let mut cfg = config(days.len());
    cfg.slippage_bps = 5;
    let go = |script: Vec<(usize, OrderRequest)>| engine::run(&store, &[0], &mut Scripted(script), &cfg).unwrap();
    let out = go(script.clone());
    assert!(out.fills.len() > 390);
    let bps = out.effective_slippage_bps().unwrap();
    assert!((4.0..=6.0).contains(&bps), "effective {bps} bps");
    // Deterministic: the same run gives the same fills.
    assert_eq!(out.fills, go(script).fills);
}

#[test]
fn a_locked_limit_rations_the_locked_side_and_the_rest_expires() {
    // 2024-03-05 opens, trades and closes at the upper limit of 71,000 (92,300) on 10,000 shares.
    let store = store_with(vec![
        (0, bar(71_000, 72_000, 70_000, 71_000, 1_000_000)),
        (1, bar(92_300, 92_300, 92_300, 92_300, 10_000)),
        (2, bar(92_300, 95_000, 90_000, 94_000, 1_000_000)),
        (3, bar(94_000, 95_000, 93_000, 94_000, 1_000_000)),
    ]);
    let mut cfg = config(4);
    cfg.participation = 1.0;
    cfg.capital = Won(100_000_000);
    let out = run(&store, vec![(0, buy(0, 800, OrderKind::Market))], &cfg);
    // 5% of 10,000 shares.
    assert_eq!(
        out.orders[0].status,
        OrderStatus::PartiallyFilled {
            filled: Quantity(500),
            expired: Quantity(300),
            reason: ExpiryReason::LockedLimit
        }
    );
    cfg.locked_limit_share = 0.0;
    let out = run(&store, vec![(0, buy(0, 100, OrderKind::Market))], &cfg);
    assert_eq!(out.orders[0].status, OrderStatus::Expired { reason: ExpiryReason::LockedLimit });
    // Sellers into a locked-up market are not queued: they fill up to the participation cap.
    let script = vec![(0, buy(0, 500, OrderKind::Market)), (1, sell(0, 500, OrderKind::Market))];
    let store2 = store_with(vec![
        (0, bar(71_000, 72_000, 70_000, 71_000, 1_000_000)),
        (1, bar(71_000, 72_000, 70_000, 71_000, 1_000_000)),
        (2, bar(92_300, 92_300, 92_300, 92_300, 10_000)),
        (3, bar(94_000, 95_000, 93_000, 94_000, 1_000_000)),
    ]);
    let out = run(&store2, script, &cfg);
    assert_eq!(out.orders[1].status, OrderStatus::Filled);
    assert_eq!(out.fills[1].price.get(), 92_300);
}

#[test]
fn a_session_without_a_grid_price_in_its_range_fills_nothing() {
    // A back-adjusted bar that traded only at 70,050, between two 100-won ticks.
    let store = store_with(vec![
        (0, bar(71_000, 72_000, 70_000, 71_000, 1_000_000)),
        (1, bar(70_050, 70_050, 70_050, 70_050, 1_000_000)),
        (2, bar(71_000, 72_000, 70_000, 71_000, 1_000_000)),
        (3, bar(71_000, 72_000, 70_000, 71_000, 1_000_000)),
    ]);
    let out = run(&store, vec![(0, buy(0, 10, OrderKind::Market))], &config(4));
    assert_eq!(out.orders[0].status, OrderStatus::Expired { reason: ExpiryReason::NoValidPrice });
    assert!(out.fills.is_empty());
}

#[test]
fn volume_cap_makes_a_partial_fill_and_the_rest_expires() {
    let store = store_with((0..4).map(|t| (t, bar(10_000, 10_000, 10_000, 10_000, 1_000))).collect());
    let out = run(&store, vec![(0, buy(0, 250, OrderKind::Market))], &config(4));
    assert_eq!(
        out.orders[0].status,
        OrderStatus::PartiallyFilled { filled: Quantity(100), expired: Quantity(150), reason: ExpiryReason::VolumeCap }
    );
    assert_eq!(out.fills[0].quantity, Quantity(100));
}

#[test]
fn orders_on_one_ticker_share_the_day_volume_cap() {
    let store = store_with((0..4).map(|t| (t, bar(10_000, 10_000, 10_000, 10_000, 1_000))).collect());
    let script = vec![(0, buy(0, 80, OrderKind::Market)), (0, buy(0, 80, OrderKind::Market))];
    let out = run(&store, script, &config(4));
    assert_eq!(out.orders[0].filled_quantity, Quantity(80));
    assert_eq!(out.orders[1].filled_quantity, Quantity(20));
    let out = run(&store, vec![(0, buy(0, 100, OrderKind::Market)), (0, buy(0, 1, OrderKind::Market))], &config(4));
    assert_eq!(out.orders[1].status, OrderStatus::Expired { reason: ExpiryReason::VolumeCap });
}

#[test]
fn limit_off_the_tick_grid_is_rejected() {
    // 70,050 lies in the 50,000–200,000 band whose tick is 100.
    let out = run(&flat_store(), vec![(0, buy(0, 1, limit(70_050)))], &config(4));
    assert_eq!(rejected(&out, 0), Some(RejectReason::OffTick));
}

#[test]
fn limit_outside_the_daily_band_is_rejected() {
    // Previous close 71,000: the band is 49,700 ..= 92,300.
    let out = run(&flat_store(), vec![(0, buy(0, 1, limit(92_400))), (0, buy(0, 1, limit(49_600)))], &config(4));
    assert_eq!(rejected(&out, 0), Some(RejectReason::OutsidePriceLimit));
    assert_eq!(rejected(&out, 1), Some(RejectReason::OutsidePriceLimit));
    let out = run(&flat_store(), vec![(0, buy(0, 1, limit(92_300)))], &config(4));
    assert_eq!(out.orders[0].status, OrderStatus::Filled);
}

#[test]
fn buy_short_of_cash_including_fees_is_rejected() {
    // 140 × 71,000 = 9,940,000 fits 10,000,000; 141 shares do not.
    let mut cfg = config(4);
    cfg.participation = 1.0;
    let out = run(&flat_store(), vec![(0, buy(0, 141, OrderKind::Market))], &cfg);
    assert_eq!(rejected(&out, 0), Some(RejectReason::InsufficientCash));
    // Exactly the cash minus the commission fails by the commission alone.
    cfg.capital = Won(71_000 * 100 + 1_064);
    let out = run(&flat_store(), vec![(0, buy(0, 100, OrderKind::Market))], &cfg);
    assert_eq!(rejected(&out, 0), Some(RejectReason::InsufficientCash), "commission is 1,065");
    cfg.capital = Won(71_000 * 100 + 1_065);
    let out = run(&flat_store(), vec![(0, buy(0, 100, OrderKind::Market))], &cfg);
    assert_eq!(out.orders[0].status, OrderStatus::Filled);
    assert_eq!(out.days.last().unwrap().cash, Won(0));
}

#[test]
fn selling_more_than_held_is_rejected() {
    let script =
        vec![(0, buy(0, 5, OrderKind::Market)), (1, sell(0, 6, OrderKind::Market)), (1, sell(1, 1, OrderKind::Market))];
    let out = run(&flat_store(), script, &config(4));
    assert_eq!(rejected(&out, 1), Some(RejectReason::InsufficientShares));
    assert_eq!(rejected(&out, 2), Some(RejectReason::InsufficientShares));
}

#[test]
fn order_on_a_day_without_a_bar_is_rejected() {
    let store = store_with(vec![
        (0, bar(71_000, 72_000, 70_000, 71_000, 1_000_000)),
        (2, bar(71_000, 72_000, 70_000, 71_000, 1_000_000)),
    ]);
    let out = run(&store, vec![(0, buy(0, 1, OrderKind::Market))], &config(4));
    assert_eq!(rejected(&out, 0), Some(RejectReason::NotTraded));
    let store =
        store_with((0..4).map(|t| (t, bar(71_000, 72_000, 70_000, 71_000, if t == 1 { 0 } else { 5_000 }))).collect());
    let out = run(&store, vec![(0, buy(0, 1, OrderKind::Market))], &config(4));
    assert_eq!(rejected(&out, 0), Some(RejectReason::NotTraded), "zero volume means no trading");
}

#[test]
fn fail_safes_reject_large_orders_and_concentration() {
    let mut cfg = config(4);
    cfg.max_order_value = Some(Won(1_000_000));
    let out = run(&flat_store(), vec![(0, buy(0, 15, OrderKind::Market)), (0, buy(0, 14, OrderKind::Market))], &cfg);
    assert_eq!(rejected(&out, 0), Some(RejectReason::MaxOrderValue));
    assert_eq!(out.orders[1].status, OrderStatus::Filled);
    let mut cfg = config(4);
    cfg.max_position_weight = Some(0.25);
    // 36 × 71,000 = 2,556,000 > 25% of 10,000,000; 35 shares = 2,485,000 fits.
    let out = run(&flat_store(), vec![(0, buy(0, 36, OrderKind::Market)), (0, buy(0, 35, OrderKind::Market))], &cfg);
    assert_eq!(rejected(&out, 0), Some(RejectReason::MaxPositionWeight));
    assert_eq!(out.orders[1].status, OrderStatus::Filled);
}

#[test]
fn fills_record_t_plus_2_settlement() {
    let out =
        run(&flat_store(), vec![(0, buy(0, 1, OrderKind::Market)), (1, buy(0, 1, OrderKind::Market))], &config(4));
    assert_eq!(out.fills[0].settlement_date, d(2024, 3, 7));
    // 03-06 + 2 sessions runs past the data: Thu 03-07, then Fri 03-08 by weekdays.
    assert_eq!(out.fills[1].settlement_date, d(2024, 3, 8));
}

#[test]
fn sell_tax_follows_the_settlement_date_across_a_rate_change() {
    // KRX_RULES §4.1: trades of 2024-12-27 settle on 2025-01-02 and pay the 2025 rate.
    let days = vec![d(2024, 12, 26), d(2024, 12, 27), d(2024, 12, 30), d(2025, 1, 2), d(2025, 1, 3)];
    let mut b = StoreBuilder::new(days).unwrap();
    let inst = Instrument {
        ticker: Ticker::parse("005930").unwrap(),
        name: "x".into(),
        market: Market::Kospi,
        sector: "".into(),
    };
    b.add(inst, (0..5).map(|t| (t, bar(50_000, 50_000, 50_000, 50_000, 1_000_000)))).unwrap();
    let store = b.build();
    // Buy at the 12-26 close, sell at the 12-27 close.
    let mut cfg = config(5);
    cfg.fill = FillTiming::Close;
    let mut strat = Scripted(vec![(0, buy(0, 20, OrderKind::Market)), (1, sell(0, 20, OrderKind::Market))]);
    let out = engine::run(&store, &[0], &mut strat, &cfg).unwrap();
    let sale = out.fills[1];
    assert_eq!(sale.trade_date, d(2024, 12, 27));
    assert_eq!(sale.settlement_date, d(2025, 1, 2));
    assert_eq!(sale.tax, Won(1_500), "2025 KOSPI: 0% + 0.15% of 1,000,000");
    cfg.tax_basis = TaxBasis::Trade;
    let out = engine::run(&store, &[0], &mut strat, &cfg).unwrap();
    assert_eq!(out.fills[1].tax, Won(300 + 1_500), "2024 KOSPI by trade date: 0.03% + 0.15%");
}

#[test]
fn kosdaq_sales_pay_no_rural_tax() {
    let script = vec![(0, buy(1, 50, OrderKind::Market)), (1, sell(1, 50, OrderKind::Market))];
    let out = run(&flat_store(), script, &config(4));
    // 2024 KOSDAQ 0.18% of 1,000,000.
    assert_eq!(out.fills[1].tax, Won(1_800));
}

#[test]
fn liquidation_at_end_sells_everything_at_the_last_close() {
    let mut cfg = config(4);
    cfg.liquidate_at_end = true;
    let out = run(&flat_store(), vec![(0, buy(0, 10, OrderKind::Market))], &cfg);
    let last = out.orders.last().unwrap();
    assert_eq!(last.origin, OrderOrigin::Liquidation);
    assert_eq!(last.status, OrderStatus::Filled);
    assert!(out.positions.is_empty());
    let day = out.days.last().unwrap();
    assert_eq!(day.equity, day.cash);
    assert_eq!(day.invested, Won(0));
}
