//! A mock account's invariants under any sequence of orders, cancels, prints and session ends,
//! replayed independently from the fills.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

use chrono::NaiveDate;
use haechi_core::krx::{self, DEFAULT_COMMISSION};
use haechi_core::{Market, OrderId, OrderKind, Price, Quantity, RejectReason, Side, Ticker, Won};
use haechi_paper::{NewOrder, OrderState, PaperAccount, Print};
use proptest::prelude::*;
use std::collections::BTreeMap;

const TICKERS: [&str; 3] = ["005930", "000660", "091990"];

#[derive(Debug, Clone)]
enum Op {
    Place { t: usize, buy: bool, limit: Option<i64>, qty: u64 },
    Cancel(u64),
    Print { t: usize, pct: i64, volume: u64, auction: bool },
    EndSession,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0..3usize, any::<bool>(), prop::option::of(-20i64..20), 1u64..300)
            .prop_map(|(t, buy, limit, qty)| Op::Place { t, buy, limit, qty }),
        1 => (1u64..40).prop_map(Op::Cancel),
        4 => (0..3usize, -25i64..25, 0u64..400, any::<bool>())
            .prop_map(|(t, pct, volume, auction)| Op::Print { t, pct, volume, auction }),
        1 => Just(Op::EndSession),
    ]
}

fn d(day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(2024, 3, day).unwrap()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

    #[test]
    fn cash_reservations_and_holdings_stay_sound(ops in proptest::collection::vec(op(), 1..120), cash in 1_000_000i64..50_000_000) {
        let mut acct = PaperAccount::new(Won(cash), DEFAULT_COMMISSION).unwrap();
        let tickers: Vec<Ticker> = TICKERS.iter().map(|t| Ticker::parse(t).unwrap()).collect();
        let markets = [Market::Kospi, Market::Kospi, Market::Kosdaq];
        let closes = [71_000i64, 180_000, 20_000];
        let mut day = 4u32;
        let mut fills = Vec::new();
        for op in ops {
            let session = d(day);
            match op {
                Op::Place { t, buy, limit, qty } => {
                    let band = krx::price_band(session, markets[t], Price::new(closes[t]).unwrap());
                    let kind = match limit {
                        None => OrderKind::Market,
                        Some(pct) => OrderKind::Limit {
                            price: krx::round_down_to_tick(session, markets[t], closes[t] * (100 + pct) / 100),
                        },
                    };
                    let side = if buy { Side::Buy } else { Side::Sell };
                    let before = (acct.cash(), acct.reserved(), acct.holdings().clone(), acct.orders().len());
                    let new = NewOrder { ticker: tickers[t], market: markets[t], side, kind, quantity: Quantity(qty), session, band: Some(band) };
                    match acct.place(new) {
                        Ok(_) => {}
                        Err(reason) => {
                            // A refusal changes nothing, and says why.
                            prop_assert!(matches!(reason, RejectReason::InsufficientCash | RejectReason::InsufficientShares | RejectReason::OutsidePriceLimit), "{reason:?}");
                            prop_assert_eq!(before, (acct.cash(), acct.reserved(), acct.holdings().clone(), acct.orders().len()));
                        }
                    }
                }
                Op::Cancel(id) => {
                    let _ = acct.cancel(OrderId(id));
                }
                Op::Print { t, pct, volume, auction } => {
                    let price = krx::round_down_to_tick(session, markets[t], closes[t] * (100 + pct) / 100);
                    let print = Print { ticker: tickers[t], price, volume, auction, session, settlement: d(day + 2) };
                    let got = acct.on_print(&print);
                    prop_assert!(got.iter().map(|f| f.quantity.get()).sum::<u64>() <= volume, "a print fills at most its volume");
                    for f in &got {
                        let o = &acct.orders()[&f.order_id];
                        match (f.side, o.kind) {
                            (Side::Buy, OrderKind::Limit { price: l }) => prop_assert!(f.price <= l),
                            (Side::Sell, OrderKind::Limit { price: l }) => prop_assert!(f.price >= l),
                            _ => prop_assert_eq!(f.price, price),
                        }
                    }
                    fills.extend(got);
                }
                Op::EndSession => {
                    acct.expire(session);
                    day += 1;
                    // The store keeps the account between operations: what it rebuilds is the
                    // same account (the open-order index is checked below).
                    let stored = acct.to_stored();
                    acct = PaperAccount::restore(stored.clone());
                    prop_assert_eq!(acct.to_stored(), stored);
                }
            }
            // Invariants after every step.
            prop_assert!(acct.cash().get() >= 0);
            prop_assert!(acct.reserved() <= acct.cash(), "reserved {:?} > cash {:?}", acct.reserved(), acct.cash());
            let open_reserved: i64 = acct.orders().values().filter(|o| o.state.is_open()).map(|o| o.reserved.get()).sum();
            prop_assert_eq!(open_reserved, acct.reserved().get());
            prop_assert!(acct.orders().values().filter(|o| !o.state.is_open()).all(|o| o.reserved == Won::ZERO));
            let mut promised: BTreeMap<Ticker, u64> = BTreeMap::new();
            for o in acct.orders().values().filter(|o| o.state.is_open() && o.side == Side::Sell) {
                *promised.entry(o.ticker).or_default() += o.remaining();
            }
            let mut held: BTreeMap<Ticker, i64> = BTreeMap::new();
            for f in &fills {
                *held.entry(f.ticker).or_default() += if f.side == Side::Buy { f.quantity.get() as i64 } else { -(f.quantity.get() as i64) };
            }
            for t in &tickers {
                let h = acct.holdings().get(t).copied().unwrap_or_default();
                prop_assert_eq!(h.quantity as i64, held.get(t).copied().unwrap_or(0), "holding = Σ fills");
                prop_assert_eq!(h.reserved, promised.get(t).copied().unwrap_or(0));
                prop_assert!(h.reserved <= h.quantity);
                // The matcher's index holds exactly the ticker's open orders.
                let mut index = acct.open_orders(*t).to_vec();
                index.sort();
                let open: Vec<OrderId> = acct.orders().values().filter(|o| o.ticker == *t && o.state.is_open()).map(|o| o.id).collect();
                prop_assert_eq!(index, open);
            }
            // Cash = start − Σ buys' cost + Σ sells' proceeds.
            let flow: i64 = fills.iter().map(|f| match f.side {
                Side::Buy => -(f.amount.get() + f.commission.get()),
                Side::Sell => f.amount.get() - f.commission.get() - f.tax.get(),
            }).sum();
            prop_assert_eq!(acct.cash().get(), cash + flow);
            // Each order's filled quantity is the sum of its fills, and never beyond it.
            for o in acct.orders().values() {
                let q: u64 = fills.iter().filter(|f| f.order_id == o.id).map(|f| f.quantity.get()).sum();
                prop_assert_eq!(q, o.filled.get());
                prop_assert!(o.filled <= o.quantity);
                prop_assert_eq!(o.state == OrderState::Filled, o.filled == o.quantity);
            }
        }
    }
}

#[test]
fn a_limit_buy_fills_at_its_limit_or_at_an_auction_print_through_it_and_prints_are_shared_in_priority() {
    let t = Ticker::parse("005930").unwrap();
    let session = d(4);
    let band = Some(krx::price_band(session, Market::Kospi, Price::new(71_000).unwrap()));
    let mut acct = PaperAccount::new(Won(100_000_000), DEFAULT_COMMISSION).unwrap();
    let limit = |p: i64| OrderKind::Limit { price: Price::new(p).unwrap() };
    let order = |kind, qty| NewOrder {
        ticker: t,
        market: Market::Kospi,
        side: Side::Buy,
        kind,
        quantity: Quantity(qty),
        session,
        band,
    };
    let low = acct.place(order(limit(70_000), 100)).unwrap();
    let high = acct.place(order(limit(71_000), 100)).unwrap();
    // Reserved: 100 × 70,000 + 1,050 and 100 × 71,000 + 1,065.
    assert_eq!(acct.reserved(), Won(7_001_050 + 7_101_065));
    let print = |price: i64, volume, auction| Print {
        ticker: t,
        price: Price::new(price).unwrap(),
        volume,
        auction,
        session,
        settlement: d(6),
    };
    // The open at 69,500 is through both limits: both fill at the open, the higher limit first.
    let f = acct.on_print(&print(69_500, 150, true));
    assert_eq!(f.len(), 2);
    assert_eq!((f[0].order_id, f[0].quantity.get(), f[0].price.get()), (high, 100, 69_500));
    assert_eq!((f[1].order_id, f[1].quantity.get(), f[1].price.get()), (low, 50, 69_500));
    // Later prints at or below the limit fill at the limit.
    let f = acct.on_print(&print(69_900, 80, false));
    assert_eq!((f[0].order_id, f[0].quantity.get(), f[0].price.get()), (low, 50, 70_000));
    assert_eq!(acct.orders()[&low].state, OrderState::Filled);
    assert_eq!(acct.reserved(), Won::ZERO);
    // A print above every limit fills nothing; orders of the next session wait for it.
    let next = acct.place(NewOrder { session: d(5), ..order(OrderKind::Market, 10) }).unwrap();
    assert!(acct.on_print(&print(70_500, 1_000, false)).is_empty());
    assert_eq!(acct.orders()[&next].state, OrderState::Accepted);
    // Selling more than held (or already promised) is refused.
    let sell = |qty| NewOrder { side: Side::Sell, ..order(OrderKind::Market, qty) };
    assert!(acct.place(sell(150)).is_ok());
    assert_eq!(acct.place(sell(60)), Err(RejectReason::InsufficientShares));
    // The session ends: its open orders expire and free what they held.
    assert_eq!(acct.expire(session).len(), 1);
    assert_eq!(acct.holdings()[&t].reserved, 0);
}
