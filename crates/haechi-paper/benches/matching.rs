//! Matching speed: trade prints against an account's open orders.
//! `cargo bench -p haechi-paper --bench matching`
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::NaiveDate;
use haechi_core::krx::{self, DEFAULT_COMMISSION};
use haechi_core::{Market, OrderKind, Price, Quantity, Side, Ticker, Won};
use haechi_paper::{NewOrder, PaperAccount, Print};

fn main() {
    divan::main();
}

const NAMES: usize = 200;
const ORDERS: usize = 10_000;
const PRINTS: usize = 200_000;

/// 10,000 open limit buys over 200 names (50 each, limits 1–10% under the previous close), and
/// 200,000 prints that mostly miss (as most prints do): 1 in 50 reaches some limits.
fn setup() -> (PaperAccount, Vec<Print>) {
    let session = NaiveDate::from_ymd_opt(2024, 3, 4).unwrap();
    let mut acct = PaperAccount::new(Won(1_000_000_000_000), DEFAULT_COMMISSION).unwrap();
    let tickers: Vec<Ticker> =
        (0..NAMES).map(|i| Ticker::parse(&format!("{:06}", 100_010 + i * 10)).unwrap()).collect();
    let close = 50_000i64;
    let band = Some(krx::price_band(session, Market::Kospi, Price::new(close).unwrap()));
    for k in 0..ORDERS {
        let price = krx::round_down_to_tick(session, Market::Kospi, close * (99 - (k % 10) as i64) / 100);
        acct.place(NewOrder {
            ticker: tickers[k % NAMES],
            market: Market::Kospi,
            side: Side::Buy,
            kind: OrderKind::Limit { price },
            quantity: Quantity(100),
            session,
            band,
        })
        .unwrap();
    }
    let prints = (0..PRINTS)
        .map(|k| {
            let dip = if k % 50 == 0 { 96 } else { 100 };
            Print {
                ticker: tickers[k % NAMES],
                price: krx::round_down_to_tick(session, Market::Kospi, close * dip / 100),
                volume: 10,
                auction: false,
                session,
                settlement: NaiveDate::from_ymd_opt(2024, 3, 6).unwrap(),
            }
        })
        .collect();
    (acct, prints)
}

#[divan::bench(sample_count = 10)]
fn prints_against_10000_open_orders(bencher: divan::Bencher) {
    bencher.counter(divan::counter::ItemsCount::new(PRINTS)).with_inputs(setup).bench_local_values(
        |(mut acct, prints)| {
            let mut fills = 0usize;
            for p in &prints {
                fills += acct.on_print(p).len();
            }
            divan::black_box(fills)
        },
    );
}
