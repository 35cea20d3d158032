//! Parameter sweeps: one scenario run at every point of a grid over its numeric fields.
//!
//! A grid is a list of axes (`strategy.fast=5..50:5`, `sizing.percent=5,10,20`); the points are
//! their Cartesian product, the first axis varying slowest. Everything is checked before any
//! work starts — every axis's syntax, every point's scenario (a field the format does not know,
//! a non-numeric field, a point that breaks a rule such as `fast < slow`), the size of the grid
//! — and all problems are reported together.
//!
//! Points run in batches: a thread steps a batch's runs through the sessions in lockstep
//! ([`Stepper`]), so each session's bars are read once per batch, and threads take batches
//! from a shared counter until none is left. A point's run is the same sequence of engine calls
//! as a single `haechi simulate`, so its report is the same to the won.
//!
//! Against overfitting, each point also reports its in-sample and out-of-sample halves (the
//! first `in_sample` share of the sessions and the rest, from the same continuous run), and the
//! sweep reports the deflated Sharpe ratio of its best point ([`deflated_sharpe`]).

use crate::engine::{RunOutput, Stepper};
use crate::metrics;
use crate::report::{self, ReportContext, Summary};
use crate::scenario::{Bound, Document, Number, Scenario};
use haechi_core::MarketStore;
use serde::Serialize;
use std::fmt::Write as _;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Most points one sweep may have.
pub const MAX_POINTS: usize = 100_000;
/// Most axes one grid may have (a scenario has fewer numeric fields than this).
pub const MAX_AXES: usize = 16;
/// Problems listed before the rest are only counted.
const MAX_LISTED: usize = 50;

/// One axis of a grid: a field path and the values it takes.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Axis {
    pub path: String,
    pub values: Vec<Number>,
}

/// Parses `path=lo..hi:step` (inclusive; `:step` defaults to 1), `path=a,b,c` or
/// `path=[a, b, c]`. Values are integers when every number written is one, else decimals.
///
/// # Errors
/// A sentence naming what is wrong with `spec`.
pub fn parse_axis(spec: &str) -> Result<Axis, String> {
    let Some((path, values)) = spec.split_once('=') else {
        return Err(format!("grid {spec:?}: expected FIELD=VALUES, such as strategy.fast=5..50:5"));
    };
    let path = path.trim();
    let ok_path = !path.is_empty()
        && path.split('.').all(|k| !k.is_empty() && k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'));
    if !ok_path {
        return Err(format!("grid {spec:?}: {path:?} is not a field path such as strategy.fast"));
    }
    let text = values.trim().trim_start_matches('[').trim_end_matches(']').trim();
    let at = |what: String| format!("grid {path}: {what}");
    let values = if let Some((lo, rest)) = text.split_once("..") {
        let (hi, step) = rest.split_once(':').map_or((rest, None), |(h, s)| (h, Some(s)));
        let words = [Some(lo), Some(hi), step];
        let integral = words.iter().flatten().all(|w| w.trim().parse::<i64>().is_ok());
        if integral {
            let num = |w: &str| w.trim().parse::<i64>().map_err(|_| at(format!("{:?} is not a number", w.trim())));
            let (lo, hi, step) = (num(lo)?, num(hi)?, step.map_or(Ok(1), num)?);
            if step <= 0 {
                return Err(at(format!("the step must be positive, found {step}")));
            }
            if lo > hi {
                return Err(at(format!("the range {lo}..{hi} is empty (its start is after its end)")));
            }
            // In i128: the span of two i64 can overflow i64.
            let count = (i128::from(hi) - i128::from(lo)) / i128::from(step) + 1;
            if count > MAX_POINTS as i128 {
                return Err(at(format!("{count} values; a sweep may have at most {MAX_POINTS} points")));
            }
            let count = count as i64;
            (0..count).map(|k| Number::Int(lo + k * step)).collect()
        } else {
            let num = |w: &str| {
                w.trim()
                    .parse::<f64>()
                    .ok()
                    .filter(|v| v.is_finite())
                    .ok_or_else(|| at(format!("{:?} is not a number", w.trim())))
            };
            let (lo, hi, step) = (num(lo)?, num(hi)?, step.map_or(Ok(1.0), num)?);
            if step <= 0.0 {
                return Err(at(format!("the step must be positive, found {step}")));
            }
            if lo > hi {
                return Err(at(format!("the range {lo}..{hi} is empty (its start is after its end)")));
            }
            // A small tolerance keeps the end when steps of 0.1 add up to 0.30000000000000004.
            let count = ((hi - lo) / step + 1e-9).floor() + 1.0;
            if count > MAX_POINTS as f64 {
                return Err(at(format!("{count} values; a sweep may have at most {MAX_POINTS} points")));
            }
            (0..count as i64).map(|k| Number::Float(round12(lo + k as f64 * step))).collect()
        }
    } else {
        let words: Vec<&str> = text.split(',').map(str::trim).filter(|w| !w.is_empty()).collect();
        if words.is_empty() {
            return Err(at("no values given".to_owned()));
        }
        if words.iter().all(|w| w.parse::<i64>().is_ok()) {
            words.iter().filter_map(|w| w.parse().ok()).map(Number::Int).collect()
        } else {
            let mut out = Vec::with_capacity(words.len());
            for w in words {
                match w.parse::<f64>() {
                    Ok(v) if v.is_finite() => out.push(Number::Float(v)),
                    _ => return Err(at(format!("{w:?} is not a number"))),
                }
            }
            out
        }
    };
    Ok(Axis { path: path.to_owned(), values })
}

fn round12(v: f64) -> f64 {
    format!("{v:.12}").parse().unwrap_or(v)
}

/// Everything wrong with a sweep, found before it starts.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct SweepError {
    pub problems: Vec<String>,
}

impl std::fmt::Display for SweepError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let n = self.problems.len();
        writeln!(f, "the sweep has {n} problem{}:", if n == 1 { "" } else { "s" })?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// A checked sweep: the axes and one validated scenario per point.
#[derive(Debug, Clone)]
pub struct Plan {
    pub axes: Vec<Axis>,
    pub points: Vec<Vec<(String, Number)>>,
    pub scenarios: Vec<Scenario>,
}

/// Checks a grid against a scenario document and builds every point's scenario.
/// `axis_errors` are problems the caller met parsing axes (so all are reported together).
///
/// # Errors
/// [`SweepError`] listing every problem: axis syntax, a repeated field, too many points, and
/// each distinct scenario problem with the first point that has it and how many do.
pub fn plan(doc: &Document, axes: Vec<Axis>, axis_errors: Vec<String>) -> Result<Plan, SweepError> {
    check_grid(doc, &axes, axis_errors)?;
    let n = grid_len(&axes);
    let mut points = Vec::with_capacity(n);
    let mut scenarios = Vec::with_capacity(n);
    // (field and kind of problem, its first message, first point, count), in order of first
    // appearance: the same rule broken at many points is one line.
    let mut seen: Vec<((String, &'static str), String, usize, usize)> = Vec::new();
    for index in 0..n {
        let point = point_at(&axes, index);
        match doc.scenario(&point) {
            Ok(s) => scenarios.push(s),
            Err(e) => note_problems(&mut seen, e, index),
        }
        points.push(point);
    }
    point_problems(&seen, n, |i| points[i].clone())?;
    Ok(Plan { axes, points, scenarios })
}

/// Checks a grid and every point's scenario like [`plan`] without keeping the scenarios (a
/// server checks a sweep of 100,000 points in the request this way). Returns the number of
/// points.
///
/// # Errors
/// As [`plan`].
pub fn check(doc: &Document, axes: &[Axis], axis_errors: Vec<String>) -> Result<usize, SweepError> {
    check_grid(doc, axes, axis_errors)?;
    let n = grid_len(axes);
    let mut seen = Vec::new();
    for index in 0..n {
        if let Err(e) = doc.scenario(&point_at(axes, index)) {
            note_problems(&mut seen, e, index);
        }
    }
    point_problems(&seen, n, |i| point_at(axes, i))?;
    Ok(n)
}

/// The plan of some points of a grid (by index), for a worker running one chunk of a sweep.
/// The plan's point `k` is the grid's point `indices[k]`.
///
/// # Errors
/// [`SweepError`] when a point's scenario is not valid (the grid was checked when the sweep
/// was created, so only a changed format could cause it).
pub fn plan_points(doc: &Document, axes: Vec<Axis>, indices: &[usize]) -> Result<Plan, SweepError> {
    let mut points = Vec::with_capacity(indices.len());
    let mut scenarios = Vec::with_capacity(indices.len());
    for &i in indices {
        let point = point_at(&axes, i);
        let s = doc.scenario(&point).map_err(|e| SweepError {
            problems: e.problems.iter().map(|p| format!("{p} (at {})", describe(&point))).collect(),
        })?;
        scenarios.push(s);
        points.push(point);
    }
    Ok(Plan { axes, points, scenarios })
}

/// How many points a grid has (the product of the axes' lengths).
#[must_use]
pub fn grid_len(axes: &[Axis]) -> usize {
    axes.iter().map(|a| a.values.len()).product()
}

fn note_problems(
    seen: &mut Vec<((String, &'static str), String, usize, usize)>,
    e: crate::scenario::ScenarioError,
    index: usize,
) {
    for p in e.problems {
        let key = (p.path.clone(), p.code);
        match seen.iter_mut().find(|(k, ..)| *k == key) {
            Some(entry) => entry.3 += 1,
            None => seen.push((key, p.to_string(), index, 1)),
        }
    }
}

fn point_problems(
    seen: &[((String, &'static str), String, usize, usize)],
    n: usize,
    point: impl Fn(usize) -> Vec<(String, Number)>,
) -> Result<(), SweepError> {
    if seen.is_empty() {
        return Ok(());
    }
    let listed = seen.len().min(MAX_LISTED);
    let mut problems: Vec<String> = seen[..listed]
        .iter()
        .map(|(_, text, first, count)| {
            if *count == n {
                format!("{text} (every point)")
            } else {
                format!("{text} ({count} of {n} points, first at {})", describe(&point(*first)))
            }
        })
        .collect();
    if seen.len() > listed {
        problems.push(format!("{} more problems not listed", seen.len() - listed));
    }
    Err(SweepError { problems })
}

/// The checks that need no point: axis syntax, repeated fields, size, each axis alone.
fn check_grid(doc: &Document, axes: &[Axis], axis_errors: Vec<String>) -> Result<(), SweepError> {
    let mut problems = axis_errors;
    if axes.is_empty() && problems.is_empty() {
        problems.push("no grid given: add at least one --grid FIELD=VALUES".to_owned());
    }
    if axes.len() + problems.len() > MAX_AXES {
        problems.push(format!("the grid has {} axes; at most {MAX_AXES}", axes.len() + problems.len()));
        return Err(SweepError { problems });
    }
    let mut seen = std::collections::HashSet::new();
    for a in axes {
        if !seen.insert(a.path.as_str()) {
            problems.push(format!("grid {}: the field is given twice", a.path));
        }
    }
    let total = axes.iter().try_fold(1usize, |n, a| n.checked_mul(a.values.len()));
    match total {
        Some(n) if n <= MAX_POINTS => {}
        _ => {
            let sizes: Vec<String> = axes.iter().map(|a| a.values.len().to_string()).collect();
            problems.push(format!(
                "the grid has {} points ({}); a sweep may have at most {MAX_POINTS}",
                total.map_or_else(|| "too many".to_owned(), |n| n.to_string()),
                sizes.join(" × ")
            ));
        }
    }
    // Each axis alone at its first value, so that one axis's problem (a wrong strategy type)
    // does not hide another's (a misspelt field), nor an axis that does not parse.
    for a in axes {
        if let Err(e) = doc.scenario(&[(a.path.clone(), a.values[0])]) {
            for p in e.problems {
                let text = format!("grid {}={}: {p}", a.path, a.values[0]);
                if !problems.contains(&text) {
                    problems.push(text);
                }
            }
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(SweepError { problems }) }
}

fn point_at(axes: &[Axis], mut index: usize) -> Vec<(String, Number)> {
    let mut out = vec![(String::new(), Number::Int(0)); axes.len()];
    for (k, axis) in axes.iter().enumerate().rev() {
        let len = axis.values.len();
        out[k] = (axis.path.clone(), axis.values[index % len]);
        index /= len;
    }
    out
}

/// `strategy.fast=5, strategy.slow=60`.
#[must_use]
pub fn describe(point: &[(String, Number)]) -> String {
    point.iter().map(|(p, v)| format!("{p}={v}")).collect::<Vec<_>>().join(", ")
}

/// How to run a sweep.
#[derive(Debug, Clone, Copy)]
pub struct SweepOptions {
    /// Threads; 0 = available parallelism.
    pub threads: usize,
    /// Runs a thread steps in lockstep.
    pub batch: usize,
    /// Share of the sessions that is in-sample (the rest is out-of-sample), in (0, 1).
    pub in_sample: f64,
    /// Whether the data is synthetic and how many rows were clamped, for the reports.
    pub synthetic: bool,
    pub clamped_rows: usize,
    /// Time spent per session stepped: zero except in tests and demos that need a sweep slow
    /// enough to watch or to kill a worker in the middle of.
    pub session_delay: std::time::Duration,
}

impl Default for SweepOptions {
    fn default() -> Self {
        SweepOptions {
            threads: 0,
            batch: 8,
            in_sample: 0.7,
            synthetic: false,
            clamped_rows: 0,
            session_delay: std::time::Duration::ZERO,
        }
    }
}

/// Return and Sharpe ratio over part of a run.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Half {
    pub sessions: usize,
    pub total_return: f64,
    pub sharpe: Option<f64>,
}

/// What one grid point produced.
#[derive(Debug, Clone, Serialize)]
pub struct PointResult {
    pub index: usize,
    pub params: Vec<(String, Number)>,
    pub summary: Summary,
    pub in_sample: Half,
    pub out_of_sample: Half,
    /// Daily Sharpe ratio (not annualised) and the higher moments of the daily returns, for
    /// the deflated Sharpe ratio.
    #[serde(skip)]
    pub moments: Moments,
    /// A hash of every fill (ids, dates, quantities, prices, charges): two runs with the same
    /// digest filled the same.
    pub fills_digest: String,
}

/// Per-period Sharpe ratio, skewness and (non-excess) kurtosis of a return series.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    pub sharpe: f64,
    pub skew: f64,
    pub kurtosis: f64,
    pub n: usize,
}

impl Moments {
    #[must_use]
    pub fn of(returns: &[f64]) -> Moments {
        let n = returns.len();
        if n < 2 {
            return Moments { n, kurtosis: 3.0, ..Moments::default() };
        }
        let nf = n as f64;
        let mean = returns.iter().sum::<f64>() / nf;
        let m2 = returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / nf;
        let m3 = returns.iter().map(|r| (r - mean).powi(3)).sum::<f64>() / nf;
        let m4 = returns.iter().map(|r| (r - mean).powi(4)).sum::<f64>() / nf;
        let sd = (returns.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (nf - 1.0)).sqrt();
        let finite = |v: f64, d: f64| if v.is_finite() { v } else { d };
        Moments {
            sharpe: finite(mean / sd, 0.0),
            skew: finite(m3 / m2.powf(1.5), 0.0),
            kurtosis: finite(m4 / (m2 * m2), 3.0),
            n,
        }
    }
}

/// Runs every point of `plan` over `store`.
///
/// # Errors
/// [`SweepError`] when a point cannot be bound to the data (a ticker it names is missing, no
/// session in its period), listing each distinct problem, before any point runs.
pub fn run(store: &MarketStore, plan: &Plan, opts: SweepOptions) -> Result<Vec<PointResult>, SweepError> {
    // What binding checks (the universe's tickers, the period's sessions, the benchmark) is
    // not numeric, so no grid point binds differently from the first: check it once here, and
    // bind each batch's points when it runs (a bound point holds the benchmark series, too
    // much to keep for 100,000 points at once).
    if let Some(first) = plan.scenarios.first()
        && let Err(e) = first.bind(store)
    {
        return Err(SweepError { problems: e.problems.iter().map(ToString::to_string).collect() });
    }
    let n = plan.scenarios.len();
    let batch = opts.batch.max(1);
    let batches = n.div_ceil(batch);
    let threads = match opts.threads {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        t => t,
    }
    .clamp(1, batches.max(1));
    let next = AtomicUsize::new(0);
    let results: Mutex<Vec<PointResult>> = Mutex::new(Vec::with_capacity(n));
    let failures: Mutex<Vec<String>> = Mutex::new(Vec::new());
    let work = || {
        loop {
            let b = next.fetch_add(1, Ordering::Relaxed);
            if b >= batches {
                break;
            }
            let range = b * batch..((b + 1) * batch).min(n);
            match run_batch(store, plan, range, &opts) {
                Ok(done) => results.lock().unwrap_or_else(std::sync::PoisonError::into_inner).extend(done),
                Err(e) => failures.lock().unwrap_or_else(std::sync::PoisonError::into_inner).push(e),
            }
        }
    };
    std::thread::scope(|s| {
        for _ in 1..threads {
            s.spawn(work);
        }
        work();
    });
    let failures = failures.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    if !failures.is_empty() {
        return Err(SweepError { problems: failures });
    }
    let mut results = results.into_inner().unwrap_or_else(std::sync::PoisonError::into_inner);
    results.sort_by_key(|r| r.index);
    Ok(results)
}

/// Steps the runs of `range` through the sessions together.
fn run_batch(
    store: &MarketStore,
    plan: &Plan,
    range: std::ops::Range<usize>,
    opts: &SweepOptions,
) -> Result<Vec<PointResult>, String> {
    let mut bound: Vec<Bound> = Vec::with_capacity(range.len());
    for i in range.clone() {
        bound.push(plan.scenarios[i].bind(store).map_err(|e| format!("{e} (at {})", describe(&plan.points[i])))?);
    }
    let mut runs = Vec::with_capacity(range.len());
    for (k, i) in range.clone().enumerate() {
        let b = &bound[k];
        let stepper = Stepper::new(store, &b.universe, &b.config).map_err(|e| e.to_string())?;
        runs.push((k, i, stepper, plan.scenarios[i].strategy(b)));
    }
    let last = bound.iter().map(|b| b.config.end).max().unwrap_or(0);
    for day in 0..=last {
        for (k, _, stepper, strategy) in &mut runs {
            let c = &bound[*k].config;
            if day < c.start {
                stepper.history(day, strategy.as_mut());
            } else if day <= c.end {
                stepper.step(day, strategy.as_mut());
            }
        }
        if !opts.session_delay.is_zero() {
            std::thread::sleep(opts.session_delay);
        }
    }
    Ok(runs
        .into_iter()
        .map(|(k, i, stepper, _)| {
            let b = &bound[k];
            let output = stepper.finish();
            let ctx = ReportContext {
                store,
                start: b.config.start,
                benchmark: b.benchmark.as_ref(),
                synthetic: opts.synthetic,
                clamped_rows: opts.clamped_rows,
                universe_size: b.universe.len(),
            };
            point_result(i, plan, output, ctx, opts.in_sample)
        })
        .collect())
}

fn point_result(index: usize, plan: &Plan, output: RunOutput, ctx: ReportContext<'_>, in_sample: f64) -> PointResult {
    let fills_digest = digest(&output);
    let scenario = &plan.scenarios[index];
    let capital = scenario.capital.get() as f64;
    let equity: Vec<f64> = output.days.iter().map(|d| d.equity.get() as f64).collect();
    let returns = metrics::returns_from_equity(capital, &equity);
    let k = ((returns.len() as f64) * in_sample).floor() as usize;
    let half = |r: &[f64]| Half {
        sessions: r.len(),
        total_return: metrics::total_return(r),
        sharpe: metrics::sharpe_ratio(r),
    };
    let moments = Moments::of(&returns);
    let (is, oos) = returns.split_at(k.min(returns.len()));
    let report = report::build(scenario, output, ctx);
    PointResult {
        index,
        params: plan.points[index].clone(),
        summary: report.summary,
        in_sample: half(is),
        out_of_sample: half(oos),
        moments,
        fills_digest,
    }
}

/// A hash of a run's fills (64-bit FNV-1a over each fill's fields in a fixed layout), stable
/// across builds and Rust versions, so digests from different machines can be compared.
#[must_use]
pub fn digest(output: &RunOutput) -> String {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            h ^= u64::from(*b);
            h = h.wrapping_mul(0x0100_0000_01b3);
        }
    };
    for f in &output.fills {
        feed(&f.order_id.0.to_le_bytes());
        feed(f.ticker.as_str().as_bytes());
        feed(&[u8::from(f.side == haechi_core::Side::Buy)]);
        for d in [f.trade_date, f.settlement_date] {
            feed(&chrono::Datelike::num_days_from_ce(&d).to_le_bytes());
        }
        feed(&f.quantity.get().to_le_bytes());
        for v in [f.price.get(), f.amount.get(), f.commission.get(), f.tax.get()] {
            feed(&v.to_le_bytes());
        }
    }
    format!("{h:016x}")
}

/// The deflated Sharpe ratio (Bailey and López de Prado, 2014) of the best of `trials`: the
/// probability that its true Sharpe ratio is above zero once the number of trials, their
/// spread and the best's skewness and kurtosis are accounted for. Sharpe ratios here are per
/// session (not annualised). `None` with fewer than two trials or returns.
#[must_use]
pub fn deflated_sharpe(best: Moments, trials: &[f64]) -> Option<DeflatedSharpe> {
    let n = trials.len();
    if n < 2 || best.n < 2 {
        return None;
    }
    let mean = trials.iter().sum::<f64>() / n as f64;
    let var = trials.iter().map(|s| (s - mean).powi(2)).sum::<f64>() / (n as f64 - 1.0);
    const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;
    let nf = n as f64;
    let expected_max = var.sqrt()
        * ((1.0 - EULER_GAMMA) * inverse_normal(1.0 - 1.0 / nf)
            + EULER_GAMMA * inverse_normal(1.0 - 1.0 / (nf * std::f64::consts::E)));
    let sr = best.sharpe;
    let denom = 1.0 - best.skew * sr + (best.kurtosis - 1.0) / 4.0 * sr * sr;
    if denom <= 0.0 {
        return None;
    }
    let z = (sr - expected_max) * ((best.n as f64 - 1.0).sqrt()) / denom.sqrt();
    Some(DeflatedSharpe { trials: n, expected_max_sharpe: expected_max, sharpe: sr, probability: normal_cdf(z) })
}

/// The deflated Sharpe ratio's inputs and result.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, serde::Deserialize)]
pub struct DeflatedSharpe {
    pub trials: usize,
    /// The Sharpe ratio (per session) the best of this many trials would reach by luck.
    pub expected_max_sharpe: f64,
    /// The best point's Sharpe ratio per session.
    pub sharpe: f64,
    /// Probability that the best point's true Sharpe ratio exceeds zero.
    pub probability: f64,
}

/// The standard normal CDF, through `erfc` (Numerical Recipes' Chebyshev fit, |error| < 1.2e-7).
#[must_use]
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * erfc(-x / std::f64::consts::SQRT_2)
}

fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -z * z - 1.265_512_23
        + t * (1.000_023_68
            + t * (0.374_091_96
                + t * (0.096_784_18
                    + t * (-0.186_288_06
                        + t * (0.278_868_07
                            + t * (-1.135_203_98 + t * (1.488_515_87 + t * (-0.822_152_23 + t * 0.170_872_77))))))));
    let r = t * poly.exp();
    if x >= 0.0 { r } else { 2.0 - r }
}

/// The standard normal quantile (Acklam's rational approximation, relative error < 1.2e-9).
#[must_use]
pub fn inverse_normal(p: f64) -> f64 {
    if p <= 0.0 {
        return f64::NEG_INFINITY;
    }
    if p >= 1.0 {
        return f64::INFINITY;
    }
    const A: [f64; 6] = [
        -3.969_683_028_665_376e1,
        2.209_460_984_245_205e2,
        -2.759_285_104_469_687e2,
        1.383_577_518_672_69e2,
        -3.066_479_806_614_716e1,
        2.506_628_277_459_239,
    ];
    const B: [f64; 5] = [
        -5.447_609_879_822_406e1,
        1.615_858_368_580_409e2,
        -1.556_989_798_598_866e2,
        6.680_131_188_771_972e1,
        -1.328_068_155_288_572e1,
    ];
    const C: [f64; 6] = [
        -7.784_894_002_430_293e-3,
        -3.223_964_580_411_365e-1,
        -2.400_758_277_161_838,
        -2.549_732_539_343_734,
        4.374_664_141_464_968,
        2.938_163_982_698_783,
    ];
    const D: [f64; 4] =
        [7.784_695_709_041_462e-3, 3.224_671_290_700_398e-1, 2.445_134_137_142_996, 3.754_408_661_907_416];
    let tail = |q: f64| {
        (((((C[0] * q + C[1]) * q + C[2]) * q + C[3]) * q + C[4]) * q + C[5])
            / ((((D[0] * q + D[1]) * q + D[2]) * q + D[3]) * q + 1.0)
    };
    if p < 0.024_25 {
        tail((-2.0 * p.ln()).sqrt())
    } else if p > 1.0 - 0.024_25 {
        -tail((-2.0 * (1.0 - p).ln()).sqrt())
    } else {
        let q = p - 0.5;
        let r = q * q;
        (((((A[0] * r + A[1]) * r + A[2]) * r + A[3]) * r + A[4]) * r + A[5]) * q
            / (((((B[0] * r + B[1]) * r + B[2]) * r + B[3]) * r + B[4]) * r + 1.0)
    }
}

/// The metrics a sweep table shows, in column order.
pub const METRIC_COLUMNS: &[&str] = &[
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "annual_volatility",
    "final_equity",
    "trade_count",
    "closed_trades",
    "win_rate",
    "turnover",
    "effective_slippage_bps",
    "is_return",
    "is_sharpe",
    "oos_return",
    "oos_sharpe",
];

impl PointResult {
    /// A metric by its [`METRIC_COLUMNS`] name; `None` when undefined (no trades, flat equity).
    #[must_use]
    pub fn metric(&self, name: &str) -> Option<f64> {
        let s = &self.summary;
        match name {
            "total_return" => Some(s.returns.total_return),
            "cagr" => s.returns.cagr,
            "sharpe" => s.returns.sharpe,
            "sortino" => s.returns.sortino,
            "max_drawdown" => Some(s.returns.max_drawdown),
            "annual_volatility" => s.returns.annual_volatility,
            "final_equity" => Some(s.final_equity.get() as f64),
            "trade_count" => Some(s.trade_count as f64),
            "closed_trades" => Some(s.trades.closed_trades as f64),
            "win_rate" => s.trades.win_rate,
            "turnover" => Some(s.turnover),
            "effective_slippage_bps" => s.effective_slippage_bps,
            "is_return" => Some(self.in_sample.total_return),
            "is_sharpe" => self.in_sample.sharpe,
            "oos_return" => Some(self.out_of_sample.total_return),
            "oos_sharpe" => self.out_of_sample.sharpe,
            _ => None,
        }
    }
}

/// The results as CSV: `point`, one column per axis, the metrics, the fills digest. Empty
/// cells for undefined metrics; numbers in full precision so anyone can recompute rankings.
#[must_use]
pub fn to_csv(axes: &[Axis], results: &[PointResult]) -> String {
    let mut out = String::from("point");
    for a in axes {
        out.push(',');
        out.push_str(&a.path);
    }
    for m in METRIC_COLUMNS {
        out.push(',');
        out.push_str(m);
    }
    out.push_str(",fills_digest\n");
    for r in results {
        let _ = write!(out, "{}", r.index);
        for (_, v) in &r.params {
            let _ = write!(out, ",{v}");
        }
        for m in METRIC_COLUMNS {
            match r.metric(m) {
                Some(v) if m == &"final_equity" || m == &"trade_count" || m == &"closed_trades" => {
                    let _ = write!(out, ",{}", v as i64);
                }
                Some(v) => {
                    let _ = write!(out, ",{v}");
                }
                None => out.push(','),
            }
        }
        let _ = writeln!(out, ",{}", r.fills_digest);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_parse_ranges_lists_and_decimals() {
        let a = parse_axis("strategy.fast=5..50:5").unwrap();
        assert_eq!(a.path, "strategy.fast");
        assert_eq!(a.values.len(), 10);
        assert_eq!((a.values[0], a.values[9]), (Number::Int(5), Number::Int(50)));
        assert_eq!(parse_axis("strategy.slow=60..150:10").unwrap().values.len(), 10);
        assert_eq!(parse_axis("x=1..3").unwrap().values, vec![Number::Int(1), Number::Int(2), Number::Int(3)]);
        assert_eq!(parse_axis("x=[2, 4,8]").unwrap().values, vec![Number::Int(2), Number::Int(4), Number::Int(8)]);
        let f = parse_axis("sizing.percent=0.1..0.3:0.1").unwrap().values;
        assert_eq!(f, vec![Number::Float(0.1), Number::Float(0.2), Number::Float(0.3)]);
        assert_eq!(parse_axis("x=1,2.5").unwrap().values, vec![Number::Float(1.0), Number::Float(2.5)]);
    }

    #[test]
    fn bad_axes_say_what_is_wrong() {
        let err = |s: &str| parse_axis(s).unwrap_err();
        assert!(err("strategy.fast").contains("expected FIELD=VALUES"));
        assert!(err("=1..2").contains("not a field path"));
        assert!(err("a..b=1").contains("not a field path"));
        assert!(err("x=10..5").contains("is empty"));
        assert!(err("x=1..5:0").contains("step must be positive"));
        assert!(err("x=1..5:-1").contains("step must be positive"));
        assert!(err("x=a..5").contains("\"a\" is not a number"));
        assert!(err("x=1,two").contains("\"two\" is not a number"));
        assert!(err("x=").contains("no values"));
        assert!(err("x=0..10000000").contains("at most 100000"));
        assert!(err("x=-9223372036854775808..9223372036854775807").contains("at most 100000"));
        assert!(err("x=-1e308..1e308:1").contains("at most 100000"));
        assert!(
            err("x=99999999999999999999..1").contains("is not a number")
                || err("x=99999999999999999999..1").contains("empty")
        );
    }

    #[test]
    fn points_enumerate_the_product_with_the_first_axis_slowest() {
        let axes = vec![parse_axis("a=1,2").unwrap(), parse_axis("b=10,20,30").unwrap()];
        let got: Vec<String> = (0..6).map(|i| describe(&point_at(&axes, i))).collect();
        assert_eq!(got[0], "a=1, b=10");
        assert_eq!(got[2], "a=1, b=30");
        assert_eq!(got[3], "a=2, b=10");
        assert_eq!(got[5], "a=2, b=30");
    }

    #[test]
    fn normal_functions_match_known_values() {
        // Values from Python's statistics.NormalDist().cdf / inv_cdf.
        for (x, p) in [
            (0.0, 0.5),
            (1.0, 0.841_344_746_068_542_9),
            (-1.96, 0.024_997_895_148_220_435),
            (3.0, 0.998_650_101_968_369_9),
        ] {
            assert!((normal_cdf(x) - p).abs() < 2e-7, "cdf({x})");
        }
        for (p, x) in [
            (0.5, 0.0),
            (0.99, 2.326_347_874_040_840_8),
            (0.01, -2.326_347_874_040_840_8),
            (0.999, 3.090_232_306_167_813_5),
        ] {
            assert!((inverse_normal(p) - x).abs() < 1e-8, "inv({p})");
        }
    }

    #[test]
    fn deflated_sharpe_matches_an_independent_computation() {
        // Recomputed in Python (stdlib NormalDist) from the paper's formula with these inputs:
        // trials' Sharpe ratios 0.01 + 0.002 k (k = 0..99), best SR 0.2, skew −0.5, kurtosis 6,
        // T = 1,250 returns.
        let trials: Vec<f64> = (0..100).map(|k| 0.01 + 0.002 * k as f64).collect();
        let best = Moments { sharpe: 0.2, skew: -0.5, kurtosis: 6.0, n: 1_250 };
        let d = deflated_sharpe(best, &trials).unwrap();
        assert!((d.expected_max_sharpe - EXPECTED_MAX).abs() < 1e-6, "{}", d.expected_max_sharpe);
        assert!((d.probability - EXPECTED_DSR).abs() < 1e-5, "{}", d.probability);
        // More trials for the same best raise the bar and lower the probability.
        let many: Vec<f64> = (0..1000).map(|k| 0.01 + 0.0002 * k as f64).collect();
        assert!(deflated_sharpe(best, &many).unwrap().expected_max_sharpe > 0.0);
        assert_eq!(deflated_sharpe(best, &[0.1]), None);
    }

    const EXPECTED_MAX: f64 = 0.146_833_131_060_528_98;
    const EXPECTED_DSR: f64 = 0.960_126_719_262_699_7;
}
