//! Stress tests: what a book of positions would lose under an injected shock, or along a
//! historical crisis replayed name by name. Pure: the caller brings the positions and, for
//! replays and volatility, the price paths.
//!
//! Money is won (`i64`); a shocked price is truncated to the won, as a price is.

use std::collections::BTreeMap;

use chrono::NaiveDate;

/// KRX's daily lower limit since 2015-06-15.
pub const LIMIT_DOWN: f64 = -0.30;

/// One position of the book under stress.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Position {
    pub ticker: String,
    pub sector: Option<String>,
    pub quantity: i64,
    pub price: i64,
    /// Average daily value traded (won), for the liquidity freeze.
    pub avg_daily_value: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Book {
    pub cash: i64,
    pub positions: Vec<Position>,
}

impl Book {
    pub fn equity(&self) -> i64 {
        self.cash + self.positions.iter().map(|p| p.quantity.saturating_mul(p.price)).sum::<i64>()
    }
}

/// An injected shock.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Shock {
    /// Every name gaps by `pct` (−0.10: −10%) at the open of day 1, and stays there.
    MarketGap { pct: f64 },
    /// The names of `sector` fall by `pct` on day 1.
    SectorCrash { sector: String, pct: f64 },
    /// The named tickers close at the lower limit (−30%) `days` days in a row.
    LimitDownStreak { tickers: Vec<String>, days: u32 },
    /// The market falls one daily standard deviation × `k` each day for `days` days; every
    /// name moves with it (beta 1). `daily_vol` is the index's recent daily volatility.
    VolatilitySpike { k: f64, days: u32, daily_vol: f64 },
    /// Volume drops to `factor` of normal: how many days selling each position takes at 10%
    /// of the day's (reduced) value traded. Prices do not move; the result is time to exit.
    LiquidityFreeze { factor: f64 },
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum StressError {
    #[error("{field}: {problem}")]
    Invalid { field: &'static str, problem: String },
}

fn invalid(field: &'static str, problem: impl Into<String>) -> StressError {
    StressError::Invalid { field, problem: problem.into() }
}

impl Shock {
    /// Checks the parameters, naming the field at fault.
    pub fn validate(&self) -> Result<(), StressError> {
        let pct = |p: f64| {
            if !(p.is_finite() && (-0.95..0.0).contains(&p)) {
                return Err(invalid("pct", format!("{p} must be a fall between -0.95 and 0 (exclusive)")));
            }
            Ok(())
        };
        match self {
            Shock::MarketGap { pct: p } => pct(*p),
            Shock::SectorCrash { sector, pct: p } => {
                if sector.trim().is_empty() {
                    return Err(invalid("sector", "is required"));
                }
                pct(*p)
            }
            Shock::LimitDownStreak { tickers, days } => {
                if tickers.is_empty() {
                    return Err(invalid("tickers", "name at least one ticker"));
                }
                if !(1..=10).contains(days) {
                    return Err(invalid("days", format!("{days} is outside 1..=10")));
                }
                Ok(())
            }
            Shock::VolatilitySpike { k, days, daily_vol } => {
                if !(k.is_finite() && (1.0..=10.0).contains(k)) {
                    return Err(invalid("k", format!("{k} is outside 1..=10")));
                }
                if !(1..=60).contains(days) {
                    return Err(invalid("days", format!("{days} is outside 1..=60")));
                }
                if !(daily_vol.is_finite() && *daily_vol > 0.0 && *daily_vol < 0.2) {
                    return Err(invalid("daily_vol", format!("{daily_vol} is not a daily volatility")));
                }
                Ok(())
            }
            Shock::LiquidityFreeze { factor } => {
                if !(factor.is_finite() && *factor > 0.0 && *factor <= 1.0) {
                    return Err(invalid("factor", format!("{factor} is outside (0, 1]")));
                }
                Ok(())
            }
        }
    }
}

/// One position's fate.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct PositionResult {
    pub ticker: String,
    pub value_before: i64,
    pub value_after: i64,
    /// The worst value along the path.
    pub value_worst: i64,
    /// Days to sell it all at 10% of a day's value traded (liquidity freeze only).
    pub days_to_exit: Option<f64>,
    /// Where its path came from: `shock`, `own` (its own history), `index` (its history
    /// lacked the window: the index's path, beta 1).
    pub path: &'static str,
}

/// What the book would go through.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct StressResult {
    pub equity_before: i64,
    pub equity_after: i64,
    /// The lowest equity along the path.
    pub equity_worst: i64,
    /// `equity_worst / equity_before − 1`.
    pub worst_loss: f64,
    /// `equity_after / equity_before − 1`.
    pub end_return: f64,
    /// Equity after each day of the path (day 0 is before the shock).
    pub path: Vec<i64>,
    pub positions: Vec<PositionResult>,
}

/// Prices after each day, from a start price and daily factors (truncated to the won).
fn walk(price: i64, factors: &[f64]) -> Vec<i64> {
    let mut out = Vec::with_capacity(factors.len() + 1);
    out.push(price);
    let mut level = price as f64;
    for f in factors {
        level *= f;
        // A hair above the product, so 45,000 × 80/90 is 40,000, not 39,999.
        out.push((level * (1.0 + 1e-12)).max(0.0).floor() as i64);
    }
    out
}

fn assemble(book: &Book, paths: Vec<(Vec<i64>, &'static str)>, exits: Vec<Option<f64>>) -> StressResult {
    let days = paths.iter().map(|(p, _)| p.len()).max().unwrap_or(1).max(1);
    let mut equity = vec![book.cash; days];
    let mut positions = Vec::with_capacity(book.positions.len());
    for ((pos, (prices, source)), exit) in book.positions.iter().zip(paths).zip(exits) {
        let value = |d: usize| {
            let price = prices.get(d).or(prices.last()).copied().unwrap_or(pos.price);
            pos.quantity.saturating_mul(price)
        };
        for (d, e) in equity.iter_mut().enumerate() {
            *e += value(d);
        }
        positions.push(PositionResult {
            ticker: pos.ticker.clone(),
            value_before: value(0),
            value_after: value(days - 1),
            value_worst: (0..days).map(value).min().unwrap_or(0),
            days_to_exit: exit,
            path: source,
        });
    }
    let before = equity[0];
    let after = equity[days - 1];
    let worst = equity.iter().copied().min().unwrap_or(before);
    let ratio = |v: i64| if before > 0 { v as f64 / before as f64 - 1.0 } else { 0.0 };
    StressResult {
        equity_before: before,
        equity_after: after,
        equity_worst: worst,
        worst_loss: ratio(worst),
        end_return: ratio(after),
        path: equity,
        positions,
    }
}

/// Applies a shock to the book.
pub fn shock(book: &Book, shock: &Shock) -> Result<StressResult, StressError> {
    shock.validate()?;
    let mut paths = Vec::with_capacity(book.positions.len());
    let mut exits = vec![None; book.positions.len()];
    for (i, p) in book.positions.iter().enumerate() {
        let factors: Vec<f64> = match shock {
            Shock::MarketGap { pct } => vec![1.0 + pct],
            Shock::SectorCrash { sector, pct } => {
                let hit = p.sector.as_deref().is_some_and(|s| s == sector);
                vec![if hit { 1.0 + pct } else { 1.0 }]
            }
            Shock::LimitDownStreak { tickers, days } => {
                let hit = tickers.iter().any(|t| t == &p.ticker);
                vec![if hit { 1.0 + LIMIT_DOWN } else { 1.0 }; *days as usize]
            }
            Shock::VolatilitySpike { k, days, daily_vol } => vec![1.0 - k * daily_vol; *days as usize],
            Shock::LiquidityFreeze { factor } => {
                exits[i] = p.avg_daily_value.filter(|a| *a > 0).map(|adv| {
                    let value = p.quantity.saturating_mul(p.price) as f64;
                    value / (adv as f64 * factor * 0.10)
                });
                vec![1.0]
            }
        };
        paths.push((walk(p.price, &factors), "shock"));
    }
    Ok(assemble(book, paths, exits))
}

/// A crisis window to replay.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Replay {
    pub name: &'static str,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

/// The historical replays the issue names.
pub fn replays() -> Vec<Replay> {
    let d = |y, m, d| NaiveDate::from_ymd_opt(y, m, d).unwrap_or(NaiveDate::MIN);
    vec![
        Replay { name: "2008-09..2009-03", from: d(2008, 9, 1), to: d(2009, 3, 31) },
        Replay { name: "2020-02..2020-04", from: d(2020, 2, 1), to: d(2020, 4, 30) },
        Replay { name: "2022", from: d(2022, 1, 1), to: d(2022, 12, 31) },
        Replay { name: "2024-08-05", from: d(2024, 7, 31), to: d(2024, 8, 9) },
    ]
}

/// Replays a window: each position follows its own closes over the window (relative to the
/// first close in it), or the index's when its history lacks the window. `closes` maps a
/// ticker to its date-sorted closes; `index` is the market's.
pub fn replay(
    book: &Book,
    window: &Replay,
    closes: &BTreeMap<String, Vec<(NaiveDate, f64)>>,
    index: &[(NaiveDate, f64)],
) -> Result<StressResult, StressError> {
    let in_window = |s: &[(NaiveDate, f64)]| -> Vec<(NaiveDate, f64)> {
        s.iter().copied().filter(|(d, c)| *d >= window.from && *d <= window.to && c.is_finite() && *c > 0.0).collect()
    };
    let market = in_window(index);
    if market.len() < 2 {
        return Err(invalid(
            "window",
            format!("the index has no days in {} ({}..={})", window.name, window.from, window.to),
        ));
    }
    let dates: Vec<NaiveDate> = market.iter().map(|(d, _)| *d).collect();
    let factors_on = |series: &[(NaiveDate, f64)]| -> Option<Vec<f64>> {
        // Aligned to the index's days; a day the name lacks (a halt) is flat.
        let by_day: BTreeMap<NaiveDate, f64> = series.iter().copied().collect();
        let first = *by_day.get(&dates[0])?;
        let mut last = first;
        let mut out = Vec::with_capacity(dates.len() - 1);
        for d in &dates[1..] {
            let c = by_day.get(d).copied().unwrap_or(last);
            out.push(c / last);
            last = c;
        }
        Some(out)
    };
    let index_factors = factors_on(&market).unwrap_or_default();
    let mut paths = Vec::with_capacity(book.positions.len());
    for p in &book.positions {
        let own = closes.get(&p.ticker).and_then(|s| factors_on(&in_window(s)));
        let (factors, source) = match own {
            Some(f) => (f, "own"),
            None => (index_factors.clone(), "index"),
        };
        paths.push((walk(p.price, &factors), source));
    }
    let exits = vec![None; book.positions.len()];
    Ok(assemble(book, paths, exits))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pos(t: &str, sector: &str, q: i64, price: i64) -> Position {
        Position {
            ticker: t.into(),
            sector: Some(sector.into()),
            quantity: q,
            price,
            avg_daily_value: Some(1_000_000_000),
        }
    }

    fn book() -> Book {
        Book {
            cash: 1_000_000,
            positions: vec![pos("005930", "전기전자", 10, 70_000), pos("035720", "서비스업", 10, 50_000)],
        }
    }

    #[test]
    fn a_market_gap_marks_every_position_down_and_cash_holds() {
        let r = shock(&book(), &Shock::MarketGap { pct: -0.10 }).unwrap();
        assert_eq!(r.equity_before, 2_200_000);
        assert_eq!(r.equity_after, 1_000_000 + 630_000 + 450_000);
        assert!((r.worst_loss - (2_080_000.0 / 2_200_000.0 - 1.0)).abs() < 1e-12);
        assert_eq!(r.path, vec![2_200_000, 2_080_000]);
    }

    #[test]
    fn a_limit_down_streak_hits_only_the_named_names_and_compounds() {
        let s = Shock::LimitDownStreak { tickers: vec!["035720".into()], days: 3 };
        let r = shock(&book(), &s).unwrap();
        // 50,000 × 0.7³ = 17,150.
        assert_eq!(r.positions[1].value_after, 171_500);
        assert_eq!(r.positions[0].value_after, 700_000);
        assert_eq!(r.path.len(), 4);
        assert_eq!(r.equity_worst, r.equity_after);
    }

    #[test]
    fn sector_crash_and_liquidity_freeze() {
        let r = shock(&book(), &Shock::SectorCrash { sector: "전기전자".into(), pct: -0.2 }).unwrap();
        assert_eq!(r.positions[0].value_after, 560_000);
        assert_eq!(r.positions[1].value_after, 500_000);
        let mut b = book();
        b.positions[0].avg_daily_value = Some(700_000);
        let r = shock(&b, &Shock::LiquidityFreeze { factor: 0.1 }).unwrap();
        // 700,000 of position over 10% of 10% of 700,000 a day: 100 days.
        assert!((r.positions[0].days_to_exit.unwrap() - 100.0).abs() < 1e-9);
        assert_eq!(r.equity_after, r.equity_before);
    }

    #[test]
    fn bad_parameters_name_their_field() {
        let e = shock(&book(), &Shock::MarketGap { pct: 0.1 }).unwrap_err();
        assert!(e.to_string().starts_with("pct: 0.1 must be a fall"), "{e}");
        let e = shock(&book(), &Shock::LimitDownStreak { tickers: vec![], days: 2 }).unwrap_err();
        assert!(e.to_string().starts_with("tickers:"), "{e}");
    }

    #[test]
    fn a_replay_follows_each_name_or_the_index_and_halts_are_flat() {
        let d = |day| NaiveDate::from_ymd_opt(2020, 3, day).unwrap();
        let w = Replay { name: "t", from: d(2), to: d(6) };
        let index = vec![(d(2), 100.0), (d(3), 90.0), (d(4), 80.0), (d(5), 100.0)];
        let mut closes = BTreeMap::new();
        // Halted on the 4th: flat that day.
        closes.insert("005930".to_string(), vec![(d(2), 70_000.0), (d(3), 35_000.0), (d(5), 70_000.0)]);
        let r = replay(&book(), &w, &closes, &index).unwrap();
        assert_eq!(r.positions[0].path, "own");
        assert_eq!(r.positions[1].path, "index");
        assert_eq!(r.positions[0].value_worst, 350_000);
        assert_eq!(r.positions[1].value_worst, 400_000);
        assert_eq!(r.path.len(), 4);
        assert_eq!(r.path[3], r.equity_before);
        let empty = Replay { name: "none", from: d(20), to: d(25) };
        assert!(replay(&book(), &empty, &closes, &index).is_err());
    }
}
