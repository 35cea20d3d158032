#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Every file in `shared/kis/fixtures/` goes through the parser its endpoint uses. A new fixture
//! without a parser fails this test rather than being skipped.

use std::path::PathBuf;

use chrono::NaiveDate;
use haechi_kis::client::classify_body;
use haechi_kis::frame::{Frame, parse_frame, parse_trades};
use haechi_kis::model;

fn fixtures_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("HAECHI_KIS_FIXTURES")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kis/fixtures"));
    if dir.join("token.json").is_file() {
        return Some(dir);
    }
    assert!(
        std::env::var_os("HAECHI_REQUIRE_SHARED").is_none(),
        "KIS fixtures required but not found at {}",
        dir.display()
    );
    None
}

#[test]
fn every_fixture_parses() {
    let Some(dir) = fixtures_dir() else { return };
    let mut seen = Vec::new();
    for entry in std::fs::read_dir(&dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        let text = std::fs::read_to_string(&path).unwrap();
        match name.as_str() {
            "h0stcnt0.txt" => {
                let Frame::Data(frame) = parse_frame(text.trim_end()).unwrap() else {
                    panic!("{name}: not a data frame")
                };
                let trades = parse_trades(&frame).unwrap();
                assert_eq!(trades.len(), 1);
                let t = &trades[0];
                assert_eq!((t.ticker.as_str(), t.price, t.change, t.volume), ("005930", 58_700, -400, 120));
                assert_eq!(t.business_date, NaiveDate::from_ymd_opt(2025, 6, 13).unwrap());
            }
            _ => {
                let body: serde_json::Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
                check_json(&name, &body);
            }
        }
        seen.push(name);
    }
    seen.sort();
    assert_eq!(seen.len(), 8, "{seen:?}");
}

fn check_json(name: &str, body: &serde_json::Value) {
    match name {
        "token.json" => {
            let t = model::parse_token(body).unwrap();
            assert!(!t.access_token.is_empty());
            assert!(t.expires_at_ms > 0);
        }
        "inquire-price.json" => {
            let q = model::parse_quote(body).unwrap();
            assert_eq!((q.ticker.as_str(), q.price, q.change, q.tick_size), ("005930", 58_700, -400, 100));
            assert!(q.upper_limit > q.price && q.lower_limit < q.price);
        }
        "inquire-daily-itemchartprice.json" => {
            let p = model::parse_chart_page(body).unwrap();
            assert_eq!(p.name, "삼성전자");
            assert_eq!(p.bars.len(), 6);
            assert!(p.bars.windows(2).all(|w| w[0].date > w[1].date), "newest first");
            assert_eq!(p.bars[0].date, NaiveDate::from_ymd_opt(2025, 6, 13).unwrap());
            // 06-03 and 06-06 were holidays: not in the data.
            assert!(p.bars.iter().all(|b| b.date.format("%m%d").to_string() != "0606"));
            assert!(p.bars.iter().all(|b| b.low <= b.open.min(b.close) && b.high >= b.open.max(b.close)));
        }
        "order-cash.json" => {
            let a = model::parse_order_ack(body).unwrap();
            assert_eq!(a.order_no.len(), 10);
            assert!(!a.branch.is_empty());
        }
        "inquire-balance.json" => {
            let b = model::parse_balance_page(body).unwrap();
            assert_eq!(b.holdings.len(), 2);
            assert_eq!(b.holdings[0].average_price, 57_250);
            assert_eq!(b.summary.cash, 91_960_000);
            assert_eq!(b.summary.total_value, b.summary.cash_d2 + b.summary.securities_value);
        }
        "error-rate-limit.json" => {
            let e = classify_body("inquire-price", 500, body).unwrap();
            assert!(e.is_rate_limit(), "{e}");
        }
        "error-expired-token.json" => {
            let e = classify_body("inquire-price", 500, body).unwrap();
            assert!(e.is_token_rejected(), "{e}");
            assert_eq!(e.code(), Some("EGW00123"));
        }
        other => panic!("fixture {other} has no parser: add it to this test"),
    }
}
