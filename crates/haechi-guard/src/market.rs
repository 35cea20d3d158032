//! Market detectors: signals over an index's daily series and, for breadth and limit-downs,
//! over its constituents'. Everything at day `i` reads days `..=i` only.

use chrono::NaiveDate;

use crate::signal::{Facts, Signal};

/// One day of an index (levels are statistics, not money: `f64`).
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct IndexDay {
    pub date: NaiveDate,
    pub open: f64,
    pub close: f64,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum SeriesError {
    #[error("{what} line {line}: {problem}")]
    Line { what: String, line: usize, problem: String },
    #[error("{what}: no rows")]
    Empty { what: String },
}

/// An index's days with running sums, so a signal at any day is O(1) (the maxima O(window)).
#[derive(Debug, Clone)]
pub struct MarketSeries {
    days: Vec<IndexDay>,
    /// `close_sum[i]` = Σ close[..i].
    close_sum: Vec<f64>,
    /// `sq_sum[i]` = Σ r² over returns `1..i` (return 0 has no previous close).
    sq_sum: Vec<f64>,
    /// Per day: (names below their 200-day average, names with 200 days of data, limit-downs).
    breadth: Vec<Option<(u32, u32, u32)>>,
}

impl MarketSeries {
    /// Days must be in increasing date order with positive, finite levels.
    pub fn new(what: &str, days: Vec<IndexDay>) -> Result<Self, SeriesError> {
        if days.is_empty() {
            return Err(SeriesError::Empty { what: what.into() });
        }
        for (i, d) in days.iter().enumerate() {
            // Line numbers as in a CSV with a header: day 0 is line 2.
            let bad = |problem: String| SeriesError::Line { what: what.into(), line: i + 2, problem };
            if !(d.close.is_finite() && d.close > 0.0) {
                return Err(bad(format!("close {} is not a positive number", d.close)));
            }
            if !(d.open.is_finite() && d.open >= 0.0) {
                return Err(bad(format!("open {} is not a number ≥ 0", d.open)));
            }
            if i > 0 && days[i - 1].date >= d.date {
                return Err(bad(format!("date {} does not come after {}", d.date, days[i - 1].date)));
            }
        }
        let mut close_sum = Vec::with_capacity(days.len() + 1);
        let mut sq_sum = Vec::with_capacity(days.len() + 1);
        close_sum.push(0.0);
        sq_sum.push(0.0);
        for (i, d) in days.iter().enumerate() {
            close_sum.push(close_sum[i] + d.close);
            let r = if i == 0 { 0.0 } else { d.close / days[i - 1].close - 1.0 };
            sq_sum.push(sq_sum[i] + r * r);
        }
        let breadth = vec![None; days.len()];
        Ok(Self { days, close_sum, sq_sum, breadth })
    }

    /// Reads `date,open,high,low,close[,volume]` with a header, as in `data/krx/index/`.
    /// A blank open (some early rows) is read as 0, which the gap signal skips.
    pub fn parse_csv(what: &str, text: &str) -> Result<Self, SeriesError> {
        let mut lines = text.lines().enumerate();
        let header = lines.next().map(|(_, h)| h.trim()).unwrap_or_default();
        let cols: Vec<&str> = header.split(',').map(str::trim).collect();
        let col = |name: &str| {
            cols.iter().position(|c| *c == name).ok_or_else(|| SeriesError::Line {
                what: what.into(),
                line: 1,
                problem: format!("the header has no \"{name}\" column (found: {header})"),
            })
        };
        let (di, oi, ci) = (col("date")?, col("open")?, col("close")?);
        let mut days = Vec::new();
        for (n, line) in lines {
            let line = line.trim();
            if line.is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split(',').map(str::trim).collect();
            let bad = |field: &str, problem: String| SeriesError::Line {
                what: what.into(),
                line: n + 1,
                problem: format!("{field}: {problem}"),
            };
            let get = |i: usize, field: &str| f.get(i).copied().ok_or_else(|| bad(field, "missing".into()));
            let date =
                NaiveDate::parse_from_str(get(di, "date")?, "%Y-%m-%d").map_err(|e| bad("date", e.to_string()))?;
            let num = |i: usize, field: &str| -> Result<f64, SeriesError> {
                let s = get(i, field)?;
                if s.is_empty() && field == "open" {
                    return Ok(0.0);
                }
                s.parse::<f64>().map_err(|_| bad(field, format!("\"{s}\" is not a number")))
            };
            days.push(IndexDay { date, open: num(oi, "open")?, close: num(ci, "close")? });
        }
        Self::new(what, days)
    }

    /// Adds breadth from constituents' closes (each a date-sorted series). Limit-downs use
    /// the KRX lower limit of the day: −30% from 2015-06-15, −15% before.
    pub fn with_constituents(mut self, names: &[Vec<(NaiveDate, f64)>]) -> Self {
        use std::collections::HashMap;
        let index_of: HashMap<NaiveDate, usize> = self.days.iter().enumerate().map(|(i, d)| (d.date, i)).collect();
        let mut acc = vec![(0u32, 0u32, 0u32); self.days.len()];
        let mut any = vec![false; self.days.len()];
        let wide_limits = NaiveDate::from_ymd_opt(2015, 6, 15).unwrap_or(NaiveDate::MIN);
        for closes in names {
            let mut sum = 0.0;
            for (k, &(date, close)) in closes.iter().enumerate() {
                sum += close;
                if k >= 200 {
                    sum -= closes[k - 200].1;
                }
                let Some(&i) = index_of.get(&date) else {
                    continue;
                };
                if k + 1 >= 200 {
                    any[i] = true;
                    acc[i].1 += 1;
                    if close < sum / 200.0 {
                        acc[i].0 += 1;
                    }
                }
                if k > 0 {
                    let limit = if date >= wide_limits { 0.30 } else { 0.15 };
                    // Adjusted prices round: half a percent of slack.
                    if close / closes[k - 1].1 - 1.0 <= -(limit - 0.005) {
                        acc[i].2 += 1;
                        any[i] = true;
                    }
                }
            }
        }
        self.breadth = acc.into_iter().zip(any).map(|(a, seen)| seen.then_some(a)).collect();
        self
    }

    pub fn days(&self) -> &[IndexDay] {
        &self.days
    }

    pub fn len(&self) -> usize {
        self.days.len()
    }

    pub fn is_empty(&self) -> bool {
        self.days.is_empty()
    }

    fn sma(&self, i: usize, n: usize) -> Option<f64> {
        (i + 1 >= n).then(|| (self.close_sum[i + 1] - self.close_sum[i + 1 - n]) / n as f64)
    }

    /// Annualised volatility of the `n` returns ending at day `i` (mean taken as zero, as
    /// risk desks do for daily returns).
    fn vol(&self, i: usize, n: usize) -> Option<f64> {
        (i >= n).then(|| ((self.sq_sum[i + 1] - self.sq_sum[i + 1 - n]) / n as f64 * 252.0).sqrt())
    }

    fn high(&self, i: usize, n: usize) -> Option<f64> {
        (i + 1 >= n).then(|| self.days[i + 1 - n..=i].iter().map(|d| d.close).fold(f64::MIN, f64::max))
    }

    /// The value of one market signal at day `i`; `None` without enough history or for a
    /// signal that is not the market's.
    pub fn signal(&self, i: usize, signal: Signal) -> Option<f64> {
        let day = self.days.get(i)?;
        let prev = i.checked_sub(1).map(|p| self.days[p].close);
        match signal {
            Signal::MarketTrend(n) => self.sma(i, n.into()).map(|s| day.close / s - 1.0),
            Signal::MarketDrawdown(n) => self.high(i, n.into()).map(|h| day.close / h - 1.0),
            Signal::MarketVol(n) => self.vol(i, n.into()),
            Signal::MarketVolRatio => match (self.vol(i, 20), self.vol(i, 252)) {
                (Some(a), Some(b)) if b > 0.0 => Some(a / b),
                _ => None,
            },
            Signal::MarketDayReturn => prev.map(|p| day.close / p - 1.0),
            Signal::MarketGap => prev.filter(|_| day.open > 0.0).map(|p| day.open / p - 1.0),
            Signal::MarketBreadthBelow200 => {
                self.breadth[i].filter(|b| b.1 > 0).map(|(below, with, _)| f64::from(below) / f64::from(with))
            }
            Signal::MarketLimitDowns => self.breadth[i].map(|b| f64::from(b.2)),
            _ => None,
        }
    }

    /// The facts of day `i` for the given signals (the non-market ones are skipped).
    pub fn facts(&self, i: usize, signals: &[Signal]) -> Facts {
        let mut f = Facts::new();
        for &s in signals {
            if let Some(v) = self.signal(i, s) {
                f.set(s, v);
            }
        }
        f
    }

    /// The index of the first day on or after `date`.
    pub fn position(&self, date: NaiveDate) -> usize {
        self.days.partition_point(|d| d.date < date)
    }
}

/// The signals the market findings read, for callers that build facts for detection.
pub const FINDING_SIGNALS: &[Signal] = &[
    Signal::MarketDrawdown(252),
    Signal::MarketVolRatio,
    Signal::MarketDayReturn,
    Signal::MarketGap,
    Signal::MarketBreadthBelow200,
    Signal::MarketLimitDowns,
];

#[cfg(test)]
mod tests {
    use super::*;

    fn day(n: u32, close: f64) -> IndexDay {
        IndexDay {
            date: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap() + chrono::Days::new(n.into()),
            open: close,
            close,
        }
    }

    #[test]
    fn trend_drawdown_and_day_return_read_only_the_past() {
        let days: Vec<_> = (0..10).map(|n| day(n, 100.0 + f64::from(n))).collect();
        let s = MarketSeries::new("t", days).unwrap();
        assert_eq!(s.signal(3, Signal::MarketTrend(5)), None);
        // Closes 100..=104: average 102, close 104.
        let t = s.signal(4, Signal::MarketTrend(5)).unwrap();
        assert!((t - (104.0 / 102.0 - 1.0)).abs() < 1e-12);
        assert_eq!(s.signal(9, Signal::MarketDrawdown(5)), Some(0.0));
        assert!((s.signal(1, Signal::MarketDayReturn).unwrap() - 0.01).abs() < 1e-12);
        assert_eq!(s.signal(0, Signal::MarketDayReturn), None);
    }

    #[test]
    fn csv_errors_name_the_line_and_field() {
        let err = MarketSeries::parse_csv(
            "KS11",
            "date,open,high,low,close,volume\n2020-01-02,1,1,1,2,0\n2020-01-03,1,1,1,x,0\n",
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "KS11 line 3: close: \"x\" is not a number");
        let err = MarketSeries::parse_csv("KS11", "date,open,high,low,close\n2020-01-03,1,1,1,2\n2020-01-02,1,1,1,2\n")
            .unwrap_err();
        assert_eq!(err.to_string(), "KS11 line 3: date 2020-01-02 does not come after 2020-01-03");
        let err = MarketSeries::parse_csv("KS11", "when,close\n").unwrap_err();
        assert!(err.to_string().contains("no \"date\" column"), "{err}");
    }

    #[test]
    fn breadth_counts_names_under_their_average_and_limit_downs() {
        let days: Vec<_> = (0..201).map(|n| day(n, 100.0)).collect();
        let dates: Vec<_> = days.iter().map(|d| d.date).collect();
        let flat: Vec<_> = dates.iter().map(|d| (*d, 100.0)).collect();
        let mut crash = flat.clone();
        crash[200].1 = 70.0;
        let s = MarketSeries::new("t", days).unwrap().with_constituents(&[flat, crash]);
        assert_eq!(s.signal(200, Signal::MarketBreadthBelow200), Some(0.5));
        assert_eq!(s.signal(200, Signal::MarketLimitDowns), Some(1.0));
        assert_eq!(s.signal(198, Signal::MarketBreadthBelow200), None);
    }
}
