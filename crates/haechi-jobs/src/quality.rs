//! Data-quality checks over stored daily bars: what a careful analyst looks at before trusting a
//! backtest on them.
//!
//! - `gap`: a session of the market's calendar inside a ticker's trading life without a bar. The
//!   calendar is derived from the data itself — a day counts as a session when at least half of
//!   the tickers trading around it have a bar — because KIS's holiday calendar is real-only and
//!   limited to one call a day.
//! - `ohlc`: low above open or close, high below them, or a non-positive price.
//! - `zero_volume`: a bar with no volume (a halt, or bad data).
//! - `limit_move`: a close-to-close move beyond the day's KRX price limit (±30 %, ±15 % before
//!   2015-06-15), with half a percent of slack for tick rounding; usually a split or rights issue
//!   that the prices were not adjusted for.

use std::collections::{BTreeMap, HashMap};

use chrono::NaiveDate;
use haechi_core::Market;
use haechi_db::BarRow;

use crate::market::{day_from_number, day_number};

/// One problem found.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Finding {
    pub ticker: String,
    pub check: &'static str,
    /// First day concerned (`YYYY-MM-DD`).
    pub day: NaiveDate,
    /// Last day, for a run of missing sessions.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub until: Option<NaiveDate>,
    pub detail: String,
}

/// The report an ETL run writes next to its data.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct QualityReport {
    pub run_id: i64,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub tickers: usize,
    pub bars: usize,
    pub sessions: usize,
    /// Findings per check.
    pub counts: BTreeMap<String, usize>,
    pub findings: Vec<Finding>,
}

/// Checks `bars` (sorted by ticker, then day).
#[must_use]
pub fn check(
    run_id: i64,
    bars: &[BarRow],
    markets: &HashMap<String, Market>,
    from: NaiveDate,
    to: NaiveDate,
) -> QualityReport {
    let mut by_ticker: BTreeMap<&str, Vec<&BarRow>> = BTreeMap::new();
    for b in bars {
        by_ticker.entry(b.ticker.as_str()).or_default().push(b);
    }
    let sessions = derive_sessions(&by_ticker);
    let mut findings = Vec::new();
    for (ticker, rows) in &by_ticker {
        let market = markets.get(*ticker).copied().unwrap_or(Market::Kospi);
        let (Some(first), Some(last)) = (rows.first().map(|r| r.day), rows.last().map(|r| r.day)) else { continue };
        // Gaps: sessions within the ticker's life that it lacks, merged into runs.
        let have: std::collections::HashSet<i32> = rows.iter().map(|r| r.day).collect();
        let mut run: Option<(i32, i32, usize)> = None;
        for &s in sessions.iter().filter(|s| **s >= first && **s <= last) {
            if have.contains(&s) {
                if let Some((a, b, n)) = run.take() {
                    findings.push(gap(ticker, a, b, n));
                }
            } else {
                run = Some(match run {
                    Some((a, _, n)) => (a, s, n + 1),
                    None => (s, s, 1),
                });
            }
        }
        if let Some((a, b, n)) = run {
            findings.push(gap(ticker, a, b, n));
        }
        let mut prev: Option<&BarRow> = None;
        for r in rows {
            let day = day_from_number(r.day).unwrap_or(from);
            if r.low <= 0 || r.low > r.open.min(r.close) || r.high < r.open.max(r.close) || r.high < r.low {
                findings.push(Finding {
                    ticker: (*ticker).to_owned(),
                    check: "ohlc",
                    day,
                    until: None,
                    detail: format!("open {} high {} low {} close {}", r.open, r.high, r.low, r.close),
                });
            }
            if r.volume == 0 {
                findings.push(Finding {
                    ticker: (*ticker).to_owned(),
                    check: "zero_volume",
                    day,
                    until: None,
                    detail: "volume 0".into(),
                });
            }
            if let Some(p) = prev
                && p.close > 0
            {
                let limit = haechi_core::krx::price_limit_percent(day, market) as f64 / 100.0;
                let mv = r.close as f64 / p.close as f64 - 1.0;
                if mv.abs() > limit + 0.005 {
                    findings.push(Finding {
                        ticker: (*ticker).to_owned(),
                        check: "limit_move",
                        day,
                        until: None,
                        detail: format!(
                            "close {} → {} ({:+.1} %, limit ±{:.0} %)",
                            p.close,
                            r.close,
                            mv * 100.0,
                            limit * 100.0
                        ),
                    });
                }
            }
            prev = Some(r);
        }
    }
    let mut counts = BTreeMap::new();
    for f in &findings {
        *counts.entry(f.check.to_owned()).or_insert(0) += 1;
    }
    QualityReport {
        run_id,
        from,
        to,
        tickers: by_ticker.len(),
        bars: bars.len(),
        sessions: sessions.iter().filter(|s| **s >= day_number(from) && **s <= day_number(to)).count(),
        counts,
        findings,
    }
}

fn gap(ticker: &str, a: i32, b: i32, n: usize) -> Finding {
    let (da, db) = (day_from_number(a).unwrap_or_default(), day_from_number(b).unwrap_or_default());
    Finding {
        ticker: ticker.to_owned(),
        check: "gap",
        day: da,
        until: (a != b).then_some(db),
        detail: format!("{n} session{} without a bar", if n == 1 { "" } else { "s" }),
    }
}

/// Days on which at least half of the tickers alive then have a bar.
fn derive_sessions(by_ticker: &BTreeMap<&str, Vec<&BarRow>>) -> Vec<i32> {
    let mut with_bar: BTreeMap<i32, usize> = BTreeMap::new();
    let mut lives: Vec<(i32, i32)> = Vec::new();
    for rows in by_ticker.values() {
        if let (Some(a), Some(b)) = (rows.first(), rows.last()) {
            lives.push((a.day, b.day));
        }
        for r in rows {
            *with_bar.entry(r.day).or_insert(0) += 1;
        }
    }
    with_bar
        .into_iter()
        .filter(|(day, n)| {
            let alive = lives.iter().filter(|(a, b)| a <= day && day <= b).count();
            *n * 2 >= alive
        })
        .map(|(d, _)| d)
        .collect()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    fn bar(t: &str, day: i32, o: i64, h: i64, l: i64, c: i64, v: i64) -> BarRow {
        BarRow { ticker: t.into(), day, open: o, high: h, low: l, close: c, volume: v }
    }

    #[test]
    fn finds_gaps_bad_ohlc_zero_volume_and_limit_moves() {
        let mut bars = Vec::new();
        for (i, d) in [20240102, 20240103, 20240104, 20240105, 20240108].iter().enumerate() {
            bars.push(bar("000010", *d, 100, 110, 90, 100 + i as i64, 10));
            // 000020 misses 01-04 and 01-05 and has one broken bar and one jump.
            if *d != 20240104 && *d != 20240105 {
                let (h, c) = if *d == 20240108 { (200, 200) } else { (110, 100) };
                bars.push(bar("000020", *d, 100, h, 90, c, if *d == 20240103 { 0 } else { 10 }));
            }
            bars.push(bar("000030", *d, 100, 95, 90, 100, 10)); // high below open every day
        }
        bars.sort_by(|a, b| (a.ticker.as_str(), a.day).cmp(&(b.ticker.as_str(), b.day)));
        let from = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        let to = NaiveDate::from_ymd_opt(2024, 1, 31).unwrap();
        let r = check(1, &bars, &HashMap::new(), from, to);
        let gaps: Vec<_> = r.findings.iter().filter(|f| f.check == "gap").collect();
        assert_eq!(gaps.len(), 1);
        assert_eq!(gaps[0].ticker, "000020");
        assert_eq!(gaps[0].day, NaiveDate::from_ymd_opt(2024, 1, 4).unwrap());
        assert_eq!(gaps[0].until, NaiveDate::from_ymd_opt(2024, 1, 5));
        assert_eq!(r.counts["ohlc"], 5);
        assert_eq!(r.counts["zero_volume"], 1);
        let jumps: Vec<_> = r.findings.iter().filter(|f| f.check == "limit_move").collect();
        assert_eq!(jumps.len(), 1);
        assert!(jumps[0].detail.contains("+100.0 %"), "{}", jumps[0].detail);
        assert_eq!(r.sessions, 5);
    }

    #[test]
    fn clean_data_has_no_findings() {
        let bars: Vec<_> = [20240102, 20240103].iter().map(|d| bar("000010", *d, 100, 110, 90, 105, 5)).collect();
        let d = NaiveDate::from_ymd_opt(2024, 1, 1).unwrap();
        assert!(check(1, &bars, &HashMap::new(), d, d).findings.is_empty());
    }
}
