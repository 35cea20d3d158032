//! "What the plan changed" over history: a portfolio held through a span with and without a
//! playbook, day by day, and the figures per crisis window. `haechi guard evaluate` prints
//! this; the headline in `docs/threat-response.md` comes from it.
//!
//! Timing: a rule decides on day `i`'s close; the portfolio trades at day `i + 1`'s open.
//! So the overnight gap is taken at the old exposure, and no decision uses a price it could
//! not have seen. Each unit of exposure changed costs `cost` (fees and slippage). Cash earns
//! nothing, which understates the plan: a real account's cash sits in a deposit or an MMF.

use chrono::{Datelike, NaiveDate};

use crate::market::{IndexDay, MarketSeries};
use crate::playbook::{Evaluator, Playbook};

/// A named span of dates to report figures over.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Window {
    pub name: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
}

impl Window {
    pub fn new(name: &str, from: (i32, u32, u32), to: (i32, u32, u32)) -> Option<Self> {
        Some(Self {
            name: name.into(),
            from: NaiveDate::from_ymd_opt(from.0, from.1, from.2)?,
            to: NaiveDate::from_ymd_opt(to.0, to.1, to.2)?,
        })
    }
}

/// The crisis windows the issue names, and the tuning and test halves of 2005–2024.
pub fn default_windows() -> Vec<Window> {
    [
        Window::new("2005–2014 (tuning)", (2005, 1, 1), (2014, 12, 31)),
        Window::new("2015–2024 (out of sample)", (2015, 1, 1), (2024, 12, 31)),
        Window::new("2005–2024", (2005, 1, 1), (2024, 12, 31)),
        Window::new("2008", (2008, 1, 1), (2008, 12, 31)),
        Window::new("2008-09..2009-03", (2008, 9, 1), (2009, 3, 31)),
        Window::new("2011-08", (2011, 7, 1), (2011, 12, 31)),
        Window::new("2020-03", (2020, 2, 1), (2020, 4, 30)),
        Window::new("2022", (2022, 1, 1), (2022, 12, 31)),
        Window::new("2024-08-05", (2024, 7, 1), (2024, 9, 30)),
    ]
    .into_iter()
    .flatten()
    .collect()
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Options {
    pub from: Option<NaiveDate>,
    pub to: Option<NaiveDate>,
    /// Cost per unit of exposure changed (0.001 = 0.1%).
    pub cost: f64,
    pub windows: Vec<Window>,
}

impl Default for Options {
    fn default() -> Self {
        Self { from: None, to: None, cost: 0.001, windows: default_windows() }
    }
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct DayRow {
    pub date: NaiveDate,
    /// Equity with the playbook, starting at 1.
    pub with: f64,
    /// Equity without it.
    pub without: f64,
    /// Share of equity in the portfolio during the day (after the open's trade).
    pub exposure: f64,
    /// Share in the inverse ETF.
    pub hedge: f64,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Side {
    pub total_return: f64,
    pub cagr: f64,
    pub max_drawdown: f64,
    pub worst_month: Option<f64>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Figures {
    pub window: Window,
    /// Trading days of the window inside the evaluated span.
    pub days: usize,
    pub with: Side,
    pub without: Side,
    /// 1 − (max drawdown with) / (max drawdown without): 0.4 = a 40% smaller drawdown.
    pub drawdown_cut: Option<f64>,
    /// CAGR without minus CAGR with, in percentage points (positive: the plan cost).
    pub cagr_cost_points: f64,
    /// Times the exposure changed.
    pub actions: usize,
    /// Cuts undone within 20 trading days at a higher level than they were cut at.
    pub whipsaws: usize,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Change {
    pub date: NaiveDate,
    pub rule: String,
    pub fired: bool,
    pub evidence: Vec<(String, f64)>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Evaluation {
    pub playbook: String,
    pub asset: String,
    pub signals_from: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    pub cost: f64,
    pub timing: &'static str,
    pub whole: Figures,
    pub windows: Vec<Figures>,
    pub changes: Vec<Change>,
    pub days: Vec<DayRow>,
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EvaluateError {
    #[error("no trading day of {asset} falls in {from}..={to}")]
    NoDays { asset: String, from: NaiveDate, to: NaiveDate },
    #[error("{asset} has a day ({date}) that {signals} lacks: the asset must trade on the signal series' days")]
    Misaligned { asset: String, signals: String, date: NaiveDate },
}

const TIMING: &str = "decide at the close, trade at the next open; the gap is taken at the old exposure";

/// Holds `asset` (an index, or a portfolio's level series) over the span with and without
/// `playbook`, whose signals come from `market` (the index the rules watch).
pub fn evaluate(
    market: &MarketSeries,
    market_name: &str,
    asset: &[IndexDay],
    asset_name: &str,
    playbook: &Playbook,
    opts: &Options,
) -> Result<Evaluation, EvaluateError> {
    let signals = playbook.signals();
    let from = opts.from.unwrap_or(NaiveDate::MIN);
    let to = opts.to.unwrap_or(NaiveDate::MAX);
    let start = asset.partition_point(|d| d.date < from);
    let end = asset.partition_point(|d| d.date <= to);
    if start >= end {
        return Err(EvaluateError::NoDays { asset: asset_name.into(), from, to });
    }
    let mdays = market.days();
    let mut evaluator = Evaluator::new(playbook.clone());
    // Warm the rules up on the market's history before the span, so a span starting in a
    // downtrend starts defended, as a live account would be.
    let first_market = market.position(asset[start].date);
    for i in 0..first_market {
        evaluator.step(&market.facts(i, &signals));
    }
    let mut posture = evaluator.posture();
    let (mut with, mut without) = (1.0f64, 1.0f64);
    // Exposure during the previous day; set on the span's first day, which only positions.
    let (mut held, mut hedged) = (1.0f64, 0.0f64);
    let mut stop_peak: Option<f64> = None;
    let mut stopped = false;
    let mut rows = Vec::with_capacity(end - start);
    let mut changes = Vec::new();
    for k in start..end {
        let day = asset[k];
        let mi = market.position(day.date);
        if mdays.get(mi).is_none_or(|m| m.date != day.date) {
            return Err(EvaluateError::Misaligned {
                asset: asset_name.into(),
                signals: market_name.into(),
                date: day.date,
            });
        }
        let mday = mdays[mi];
        let target = if stopped { 0.0 } else { posture.exposure };
        let hedge = posture.hedge;
        if k > start {
            let prev = asset[k - 1].close;
            let mprev = mdays[mi.saturating_sub(1)].close;
            // Overnight at yesterday's positions, trade at the open, the day at the new ones.
            let (gap, intraday) = if day.open > 0.0 {
                (day.open / prev - 1.0, day.close / day.open - 1.0)
            } else {
                (day.close / prev - 1.0, 0.0)
            };
            let (mgap, mintraday) = if mday.open > 0.0 && mi > 0 {
                (mday.open / mprev - 1.0, mday.close / mday.open - 1.0)
            } else {
                (mday.close / mprev - 1.0, 0.0)
            };
            with *= 1.0 + held * gap - hedged * mgap;
            with -= with * ((target - held).abs() + (hedge - hedged).abs()) * opts.cost;
            with *= 1.0 + target * intraday - hedge * mintraday;
            without *= day.close / prev;
        }
        held = target;
        hedged = hedge;
        rows.push(DayRow { date: day.date, with, without, exposure: target, hedge });
        // The close: rules see today's facts and set tomorrow's posture.
        for t in evaluator.step(&market.facts(mi, &signals)) {
            changes.push(Change { date: day.date, rule: t.rule_id, fired: t.fired, evidence: t.evidence });
        }
        posture = evaluator.posture();
        match posture.stop {
            Some(stop) => {
                let peak = stop_peak.get_or_insert(day.close);
                *peak = peak.max(day.close);
                if day.close < *peak * (1.0 - stop) {
                    stopped = true;
                }
            }
            None => {
                stop_peak = None;
                stopped = false;
            }
        }
    }
    let span = Window { name: "whole span".into(), from: rows[0].date, to: rows[rows.len() - 1].date };
    let whole = figures(&rows, &span);
    let windows =
        opts.windows.iter().filter(|w| w.to >= span.from && w.from <= span.to).map(|w| figures(&rows, w)).collect();
    Ok(Evaluation {
        playbook: playbook.name.clone(),
        asset: asset_name.into(),
        signals_from: market_name.into(),
        from: span.from,
        to: span.to,
        cost: opts.cost,
        timing: TIMING,
        whole,
        windows,
        changes,
        days: rows,
    })
}

fn side(rows: &[DayRow], pick: fn(&DayRow) -> f64) -> Side {
    let first = pick(&rows[0]);
    let last = pick(&rows[rows.len() - 1]);
    let total_return = last / first - 1.0;
    let years = (rows[rows.len() - 1].date - rows[0].date).num_days() as f64 / 365.25;
    let cagr = if years > 0.0 { (last / first).powf(1.0 / years) - 1.0 } else { 0.0 };
    let (mut peak, mut mdd) = (f64::MIN, 0.0f64);
    for r in rows {
        let v = pick(r);
        peak = peak.max(v);
        mdd = mdd.min(v / peak - 1.0);
    }
    // Calendar months, each from the last close before it (or the window's first day).
    let mut worst: Option<f64> = None;
    let mut base = first;
    for (i, r) in rows.iter().enumerate() {
        let month_ends =
            rows.get(i + 1).is_none_or(|n| (n.date.year(), n.date.month()) != (r.date.year(), r.date.month()));
        if month_ends {
            let m = pick(r) / base - 1.0;
            worst = Some(worst.map_or(m, |w| w.min(m)));
            base = pick(r);
        }
    }
    Side { total_return, cagr, max_drawdown: mdd, worst_month: worst }
}

fn figures(rows: &[DayRow], w: &Window) -> Figures {
    let a = rows.partition_point(|r| r.date < w.from);
    let b = rows.partition_point(|r| r.date <= w.to);
    let sub = &rows[a..b.max(a)];
    if sub.is_empty() {
        let empty = Side { total_return: 0.0, cagr: 0.0, max_drawdown: 0.0, worst_month: None };
        return Figures {
            window: w.clone(),
            days: 0,
            with: empty.clone(),
            without: empty,
            drawdown_cut: None,
            cagr_cost_points: 0.0,
            actions: 0,
            whipsaws: 0,
        };
    }
    let with = side(sub, |r| r.with);
    let without = side(sub, |r| r.without);
    let drawdown_cut = (without.max_drawdown < 0.0).then(|| 1.0 - with.max_drawdown / without.max_drawdown);
    let mut actions = 0;
    let mut whipsaws = 0;
    for i in 1..sub.len() {
        if sub[i].exposure != sub[i - 1].exposure || sub[i].hedge != sub[i - 1].hedge {
            actions += 1;
        }
        // A cut (exposure falls) undone within 20 sessions.
        if sub[i].exposure < sub[i - 1].exposure {
            let cut_from = sub[i - 1].exposure;
            if sub[i + 1..(i + 21).min(sub.len())].iter().any(|r| r.exposure >= cut_from) {
                whipsaws += 1;
            }
        }
    }
    Figures {
        window: w.clone(),
        days: sub.len(),
        cagr_cost_points: (without.cagr - with.cagr) * 100.0,
        with,
        without,
        drawdown_cut,
        actions,
        whipsaws,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn series(closes: &[f64]) -> Vec<IndexDay> {
        let d0 = NaiveDate::from_ymd_opt(2020, 1, 1).unwrap();
        closes
            .iter()
            .enumerate()
            .map(|(i, c)| IndexDay { date: d0 + chrono::Days::new(i as u64), open: *c, close: *c })
            .collect()
    }

    fn playbook(text: &str) -> Playbook {
        Playbook::from_toml(text).unwrap()
    }

    #[test]
    fn a_cut_on_the_close_applies_from_the_next_day_and_costs_the_turnover() {
        // Day 2 falls 10%: the rule fires at its close; day 3's −10% is taken at 30%.
        let closes = [100.0, 100.0, 90.0, 81.0, 81.0];
        let mut days = series(&closes);
        // Each day opens at the previous close: every move is intraday, after the trade.
        for i in 1..days.len() {
            days[i].open = closes[i - 1];
        }
        let market = MarketSeries::new("m", days.clone()).unwrap();
        let pb = playbook(
            r#"name = "t"
[[rules]]
id = "crash"
when = ["market.day_return <= -0.08"]
until = ["market.day_return >= 0"]
actions = [{ do = "reduce_exposure", to = 0.3 }]"#,
        );
        let opts = Options { cost: 0.01, windows: vec![], ..Options::default() };
        let e = evaluate(&market, "m", &days, "m", &pb, &opts).unwrap();
        let w: Vec<f64> = e.days.iter().map(|d| d.with).collect();
        assert_eq!(e.days[2].exposure, 1.0);
        assert_eq!(e.days[3].exposure, 0.3);
        let after_trade = 0.9 * (1.0 - 0.7 * 0.01);
        assert!((w[3] - after_trade * (1.0 - 0.3 * 0.1)).abs() < 1e-12, "{w:?}");
        // Day 3 (−10%) keeps it active; day 4 (0%) releases it: day 5 would be back at 1.
        assert_eq!(e.days[4].exposure, 0.3);
        assert_eq!(e.changes.len(), 2);
        assert!((e.days[4].without - 0.81).abs() < 1e-12);
        assert!(e.whole.with.max_drawdown > e.whole.without.max_drawdown);
        assert_eq!(e.whole.actions, 1);
    }

    #[test]
    fn a_gap_down_is_taken_at_the_old_exposure() {
        let mut days = series(&[100.0, 100.0, 100.0]);
        // Day 2 opens 10% down and closes there.
        days[2].open = 90.0;
        days[2].close = 90.0;
        let market = MarketSeries::new("m", days.clone()).unwrap();
        let pb = playbook(
            r#"name = "t"
[[rules]]
id = "gap"
when = ["market.gap < -0.05"]
actions = [{ do = "reduce_exposure", to = 0.0 }]"#,
        );
        let e = evaluate(&market, "m", &days, "m", &pb, &Options::default()).unwrap();
        assert!((e.days[2].with - 0.9).abs() < 1e-12);
    }

    #[test]
    fn a_span_without_days_or_a_misaligned_asset_is_an_error() {
        let days = series(&[100.0, 101.0]);
        let market = MarketSeries::new("m", days.clone()).unwrap();
        let pb =
            playbook("name = \"t\"\n[[rules]]\nid = \"a\"\nwhen = [\"score > 1\"]\nactions = [{ do = \"alert\" }]");
        let opts = Options { from: NaiveDate::from_ymd_opt(2030, 1, 1), ..Options::default() };
        assert!(matches!(evaluate(&market, "m", &days, "a", &pb, &opts), Err(EvaluateError::NoDays { .. })));
        let mut other = days.clone();
        other[1].date = NaiveDate::from_ymd_opt(2021, 1, 1).unwrap();
        assert!(matches!(
            evaluate(&market, "m", &other, "a", &pb, &Options::default()),
            Err(EvaluateError::Misaligned { .. })
        ));
    }

    #[test]
    fn worst_month_and_whipsaws_are_counted() {
        let rows: Vec<DayRow> = [
            (2020, 1, 30, 1.0, 1.0),
            (2020, 1, 31, 1.0, 1.0),
            (2020, 2, 3, 0.9, 0.3),
            (2020, 2, 4, 0.8, 1.0),
            (2020, 3, 2, 0.88, 1.0),
        ]
        .iter()
        .map(|&(y, m, d, v, x)| DayRow {
            date: NaiveDate::from_ymd_opt(y, m, d).unwrap(),
            with: v,
            without: v,
            exposure: x,
            hedge: 0.0,
        })
        .collect();
        let w = Window::new("w", (2020, 1, 1), (2020, 12, 31)).unwrap();
        let f = figures(&rows, &w);
        assert!((f.with.worst_month.unwrap() + 0.2).abs() < 1e-12);
        assert_eq!(f.whipsaws, 1);
        assert_eq!(f.actions, 2);
        assert!((f.with.max_drawdown + 0.2).abs() < 1e-12);
    }
}
