//! Buy-and-hold of Samsung Electronics (005930) on real KRX data, checked against a hand
//! calculation straight from the CSV. The data is read from `../shared/data/krx/` (or
//! `HAECHI_KRX_DATA`), never copied into the repository. Skipped when absent, unless
//! `HAECHI_REQUIRE_KRX_DATA` is set (CI sets it).
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

mod common;
use common::krx_dir;

use chrono::NaiveDate;
use haechi_core::{Market, Ticker};
use haechi_data::csv::{LoadOptions, load_dir};
use haechi_sim::engine;
use haechi_sim::scenario::{Format, Scenario};
use std::path::PathBuf;

/// (date, open, close) rows of a CSV, parsed independently of the product's loader.
fn rows(path: &PathBuf) -> Vec<(NaiveDate, i64, i64)> {
    let text = std::fs::read_to_string(path).unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next().unwrap().trim(), "date,open,high,low,close,volume");
    lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let f: Vec<&str> = l.split(',').collect();
            (f[0].parse().unwrap(), f[1].parse().unwrap(), f[4].parse().unwrap())
        })
        .collect()
}

#[test]
fn samsung_buy_and_hold_matches_a_hand_calculation() {
    let Some(dir) = krx_dir() else { return };
    let scenario = Scenario::parse(
        r#"
name = "삼성전자 바이앤홀드"
capital = 10_000_000
benchmark = "KS11"
period = { start = 2019-01-02, end = 2023-12-28 }
universe = { tickers = ["005930"] }
strategy = { type = "buy_and_hold" }
sizing = { type = "fixed_shares", shares = 200 }
execution = { fill = "next_open", slippage_bps = 0, commission_rate = 0.00015, liquidate_at_end = true }
"#,
        Format::Toml,
        "inline",
    )
    .unwrap();
    let opts = LoadOptions {
        tickers: scenario.required_tickers(),
        index_dir: Some(dir.join("index")),
        default_market: Some(Market::Kospi),
        ..LoadOptions::default()
    };
    let loaded = load_dir(&dir.join("stocks"), &opts).unwrap();
    let store = &loaded.store;
    let bound = scenario.bind(store).unwrap();
    let out = engine::run(store, &bound.universe, scenario.strategy(&bound).as_mut(), &bound.config).unwrap();

    // Hand calculation from the CSV.
    let csv = rows(&dir.join("stocks/005930.csv"));
    let start = csv.iter().position(|r| r.0 == NaiveDate::from_ymd_opt(2019, 1, 2).unwrap()).unwrap();
    let end = csv.iter().position(|r| r.0 == NaiveDate::from_ymd_opt(2023, 12, 28).unwrap()).unwrap();
    let shares = 200i64;
    // Decided at the 2019-01-02 close, bought at the 2019-01-03 open.
    let buy_price = csv[start + 1].1;
    let buy_amount = shares * buy_price;
    let buy_fee = buy_amount * 15 / 100_000; // 0.015%, truncated
    // Sold at the 2023-12-28 close; it settles 2024-01-03 (12-29 is the year-end holiday),
    // so the 2024 rate applies: 0.03% transaction tax + 0.15% rural tax, each truncated.
    let sell_price = csv[end].2;
    let sell_amount = shares * sell_price;
    let sell_fee = sell_amount * 15 / 100_000;
    let tax = sell_amount * 3 / 10_000 + sell_amount * 15 / 10_000;
    let final_cash = 10_000_000 - buy_amount - buy_fee + sell_amount - sell_fee - tax;

    assert_eq!(out.fills.len(), 2);
    let (b, s) = (&out.fills[0], &out.fills[1]);
    assert_eq!((b.trade_date, b.price.get(), b.commission.get()), (csv[start + 1].0, buy_price, buy_fee));
    assert_eq!((s.trade_date, s.price.get(), s.commission.get(), s.tax.get()), (csv[end].0, sell_price, sell_fee, tax));
    assert_eq!(s.settlement_date, NaiveDate::from_ymd_opt(2024, 1, 3).unwrap());
    assert_eq!(out.commissions.get(), buy_fee + sell_fee);
    assert_eq!(out.taxes.get(), tax);
    let last = out.days.last().unwrap();
    assert_eq!(last.equity.get(), final_cash);
    assert_eq!(last.cash.get(), final_cash);

    // Every day in between: cash after the buy plus 200 shares at that day's close.
    let cash_after_buy = 10_000_000 - buy_amount - buy_fee;
    assert_eq!(out.days.len(), end - start + 1);
    for (i, day) in out.days.iter().enumerate().take(out.days.len() - 1) {
        let (date, _, close) = csv[start + i];
        assert_eq!(day.date, date);
        let expected = if i == 0 { 10_000_000 } else { cash_after_buy + shares * close };
        assert_eq!(day.equity.get(), expected, "{date}");
    }
    assert_eq!(store.slot_of(Ticker::parse("005930").unwrap()), Some(bound.universe[0]));
    assert!(bound.benchmark.is_some(), "KS11 loaded from the index folder");
}
