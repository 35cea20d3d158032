//! Property tests: whatever the market and whatever the orders, the account stays sound.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

use chrono::{Days, NaiveDate};
use haechi_core::krx::{self, DEFAULT_COMMISSION};
use haechi_core::{Instrument, Market, MarketStore, OrderKind, Price, RawBar, Side, StoreBuilder, Ticker, Won};
use haechi_sim::engine::{self, EngineConfig, FillTiming, TaxBasis};
use haechi_sim::strategy::{Context, OrderRequest, Strategy as SimStrategy};
use proptest::prelude::*;

struct Scripted(Vec<(usize, OrderRequest)>);

impl SimStrategy for Scripted {
    fn name(&self) -> &'static str {
        "scripted"
    }
    fn on_close(&mut self, ctx: &Context<'_>, out: &mut Vec<OrderRequest>) {
        out.extend(self.0.iter().filter(|(day, _)| *day == ctx.market.today()).map(|(_, r)| *r));
    }
}

const DAYS: usize = 25;
const NAMES: usize = 3;

/// A random walk per name, on tick and inside the band, with some sessions missing.
fn market() -> impl Strategy<Value = MarketStore> {
    let name = (1_000u32..300_000, proptest::collection::vec((-25i32..=25, 0u32..30, 0u64..5_000, 0u8..10), DAYS));
    proptest::collection::vec(name, NAMES).prop_map(|names| {
        let start = NaiveDate::from_ymd_opt(2022, 12, 1).unwrap();
        let dates: Vec<NaiveDate> = (0..DAYS as u64).map(|i| start.checked_add_days(Days::new(i)).unwrap()).collect();
        let mut b = StoreBuilder::new(dates.clone()).unwrap();
        for (i, (p0, steps)) in names.into_iter().enumerate() {
            let market = [Market::Kospi, Market::Kosdaq, Market::Etf][i];
            let mut prev = i64::from(p0);
            let mut bars = Vec::new();
            for (t, (pct, spread, vol, gap)) in steps.into_iter().enumerate() {
                let date = dates[t];
                let band = krx::price_band(date, market, Price::new(prev).unwrap());
                let close = band.clamp(krx::round_down_to_tick(date, market, prev * i64::from(100 + pct) / 100)).get();
                let open = krx::round_down_to_tick(date, market, prev).get();
                let hi = band
                    .clamp(krx::round_up_to_tick(date, market, open.max(close) * i64::from(100 + spread) / 100))
                    .get();
                let lo = band
                    .clamp(krx::round_down_to_tick(date, market, open.min(close) * i64::from(100 - spread) / 100))
                    .get();
                if gap != 0 {
                    bars.push((
                        t,
                        RawBar { open: open as u32, high: hi as u32, low: lo as u32, close: close as u32, volume: vol },
                    ));
                    prev = close;
                }
            }
            let ticker = Ticker::parse(&format!("{:06}", 100_010 + 10 * i)).unwrap();
            b.add(Instrument { ticker, name: ticker.to_string(), market, sector: String::new() }, bars).unwrap();
        }
        b.build()
    })
}

fn orders() -> impl Strategy<Value = Vec<(usize, OrderRequest)>> {
    let one = (0..DAYS, 0..NAMES, any::<bool>(), 1u64..400, prop::option::of(500i64..400_000)).prop_map(
        |(day, slot, is_buy, quantity, limit)| {
            let kind = match limit.and_then(Price::new) {
                Some(price) => OrderKind::Limit { price },
                None => OrderKind::Market,
            };
            (day, OrderRequest { slot, side: if is_buy { Side::Buy } else { Side::Sell }, quantity, kind })
        },
    );
    proptest::collection::vec(one, 0..60)
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn account_invariants_hold_for_any_orders(
        store in market(),
        script in orders(),
        capital in 100_000i64..50_000_000,
        close_fill in any::<bool>(),
        slippage_bps in 0u32..50,
        participation in 0.01f64..1.0,
    ) {
        let cfg = EngineConfig {
            capital: Won(capital),
            start: 0,
            end: DAYS - 1,
            fill: if close_fill { FillTiming::Close } else { FillTiming::NextOpen },
            slippage_bps,
            participation,
            locked_limit_share: 0.05,
            commission: DEFAULT_COMMISSION,
            tax_basis: TaxBasis::Settlement,
            max_order_value: None,
            max_position_weight: None,
            cash_reserve: 0.0,
            liquidate_at_end: true,
        };
        let out = engine::run(&store, &[0, 1, 2], &mut Scripted(script), &cfg).unwrap();

        // Replay the fills day by day: cash never negative, no negative position, and each
        // day's equity equals cash + Σ quantity × close.
        let mut cash = capital;
        let mut qty = [0i64; NAMES];
        let mut fills = out.fills.iter().peekable();
        for (t, day) in out.days.iter().enumerate() {
            while let Some(f) = fills.next_if(|f| f.trade_date == day.date) {
                let slot = store.slot_of(f.ticker).unwrap();
                let market = store.instrument(slot).market;
                prop_assert_eq!(f.amount.get(), f.price.get() * f.quantity.get() as i64);
                prop_assert_eq!(f.commission, DEFAULT_COMMISSION.charge(f.amount));
                prop_assert!(f.commission.get() >= 0 && f.tax.get() >= 0);
                prop_assert!(krx::is_on_tick(f.trade_date, market, f.price), "fill off tick: {:?}", f);
                match f.side {
                    Side::Buy => { cash -= f.amount.get() + f.commission.get(); qty[slot] += f.quantity.get() as i64; prop_assert_eq!(f.tax, Won(0)); }
                    Side::Sell => {
                        cash += f.amount.get() - f.commission.get() - f.tax.get();
                        qty[slot] -= f.quantity.get() as i64;
                        prop_assert_eq!(f.tax, krx::sell_tax_rates(f.settlement_date, market).charge(f.amount));
                    }
                }
                prop_assert!(cash >= 0, "cash went negative: {}", cash);
                prop_assert!(qty[slot] >= 0);
            }
            prop_assert_eq!(day.cash.get(), cash);
            let value: i64 = (0..NAMES).map(|s| qty[s] * store.last_close(s, t).map_or(0, |p| p.get())).sum();
            prop_assert_eq!(day.equity.get(), cash + value);
            prop_assert_eq!(day.invested.get(), value);
        }
        prop_assert!(fills.next().is_none());
        prop_assert_eq!(out.commissions.get(), out.fills.iter().map(|f| f.commission.get()).sum::<i64>());
        prop_assert_eq!(out.taxes.get(), out.fills.iter().map(|f| f.tax.get()).sum::<i64>());
        // Every order is accounted for, exactly once.
        let filled: u64 = out.orders.iter().map(|o| o.filled_quantity.get()).sum();
        prop_assert_eq!(filled, out.fills.iter().map(|f| f.quantity.get()).sum::<u64>());
    }
}

/// Bars as back-adjusted histories have them: any whole-won prices, off the tick grid, low and
/// high around open and close, a day-to-day move anywhere within ±35% (beyond the band too).
fn adjusted_market() -> impl Strategy<Value = MarketStore> {
    let day = (-35i64..=35, 0i64..=4, 0i64..=4, -10i64..=10, 0u64..5_000, 0u8..10);
    let name = (900i64..400_000, proptest::collection::vec(day, DAYS));
    proptest::collection::vec(name, NAMES).prop_map(|names| {
        let start = NaiveDate::from_ymd_opt(2014, 11, 3).unwrap();
        let dates: Vec<NaiveDate> = (0..DAYS as u64).map(|i| start.checked_add_days(Days::new(i)).unwrap()).collect();
        let mut b = StoreBuilder::new(dates).unwrap();
        for (i, (p0, steps)) in names.into_iter().enumerate() {
            let market = [Market::Kospi, Market::Kosdaq, Market::Kospi][i];
            let mut prev = p0;
            let mut bars = Vec::new();
            for (t, (pct, up, down, gap_pct, vol, gap)) in steps.into_iter().enumerate() {
                let close = (prev * (100 + pct) / 100 + pct).max(1);
                let open = (prev * (100 + gap_pct) / 100 + 7).max(1);
                let high = open.max(close) * (1000 + up) / 1000 + up;
                let low = (open.min(close) * (1000 - down) / 1000 - down).max(1);
                if gap != 0 {
                    let p = |v: i64| v as u32;
                    bars.push((t, RawBar { open: p(open), high: p(high), low: p(low), close: p(close), volume: vol }));
                    prev = close;
                }
            }
            let ticker = Ticker::parse(&format!("{:06}", 200_010 + 10 * i)).unwrap();
            b.add(Instrument { ticker, name: ticker.to_string(), market, sector: String::new() }, bars).unwrap();
        }
        b.build()
    })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Whatever the bars and the orders, a fill is priced on the tick grid, inside its
    /// session's [low, high] and inside the price band: a price that could have traded.
    #[test]
    fn every_fill_is_on_the_grid_inside_the_session_and_the_band(
        store in adjusted_market(),
        script in orders(),
        close_fill in any::<bool>(),
        slippage_bps in 0u32..200,
    ) {
        let cfg = EngineConfig {
            capital: Won(100_000_000),
            start: 0,
            end: DAYS - 1,
            fill: if close_fill { FillTiming::Close } else { FillTiming::NextOpen },
            slippage_bps,
            participation: 1.0,
            locked_limit_share: 0.05,
            commission: DEFAULT_COMMISSION,
            tax_basis: TaxBasis::Settlement,
            max_order_value: None,
            max_position_weight: None,
            cash_reserve: 0.0,
            liquidate_at_end: true,
        };
        let out = engine::run(&store, &[0, 1, 2], &mut Scripted(script), &cfg).unwrap();
        for f in &out.fills {
            let slot = store.slot_of(f.ticker).unwrap();
            let market = store.instrument(slot).market;
            let day = store.dates().binary_search(&f.trade_date).unwrap();
            let bar = store.raw(slot, day).unwrap();
            let p = f.price.get();
            prop_assert!(krx::is_on_tick(f.trade_date, market, f.price), "off the grid: {:?}", f);
            prop_assert!(i64::from(bar.low) <= p && p <= i64::from(bar.high), "outside [{}, {}]: {:?}", bar.low, bar.high, f);
            if let Some(base) = day.checked_sub(1).and_then(|d| store.last_close(slot, d)) {
                let band = krx::price_band(f.trade_date, market, base);
                prop_assert!(band.contains(f.price), "outside the band {:?}: {:?}", band, f);
            }
        }
    }
}
