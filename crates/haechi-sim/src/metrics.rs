//! Performance metrics over a series of daily simple returns, each defined exactly as the
//! Python library empyrical 0.5.5 defines it, so that a Haechi report can be checked number for
//! number against the tool most quant practitioners already use.
//!
//! # Conventions
//!
//! - Input is `&[f64]` of daily simple returns, `r_t = equity_t / equity_{t-1} - 1`, with the
//!   first return measured against the starting capital ([`returns_from_equity`] builds it).
//!   A year has [`PERIODS_PER_YEAR`] = 252 trading days; the risk-free rate is 0.
//! - Where empyrical would answer NaN (too few observations, a zero denominator, overflow) these
//!   functions answer `None`. A `Some` never holds NaN or ±inf.
//! - Missing values are handled as empyrical's nan-aware numpy reductions handle them: a NaN
//!   return still counts towards the series length (empyrical's length checks and CAGR's number
//!   of years use `len`), is skipped by means, standard deviations and products, and counts as a
//!   0 return on the cumulative equity path. A NaN makes VaR `None`, as `numpy.percentile` gives
//!   NaN. Alpha/beta use only the days where both series are finite.
//! - Drawdowns are measured from the starting capital: the running peak starts at the capital
//!   before the first return (empyrical 0.5.5 prepends it), so a loss on day one is a drawdown.
//! - Sums are Neumaier-compensated and the variance is two-pass. Nothing runs in parallel or
//!   depends on iteration order of a hash, so the same input always gives the same bits.
//!
//! `docs/metrics.md` gives every formula and its edge cases.

use serde::{Deserialize, Serialize};

/// Trading days per year used to annualise daily figures (empyrical's `DAILY`).
pub const PERIODS_PER_YEAR: f64 = 252.0;

/// empyrical's `beta_aligned` treats a benchmark variance below this as zero, which also
/// absorbs the rounding noise left by a constant benchmark whose mean is inexact.
const MIN_BENCHMARK_VARIANCE: f64 = 1.0e-30;

/// Equity level the drawdown path starts from, as in empyrical; the scale only matters for
/// matching its rounding.
const DRAWDOWN_START: f64 = 100.0;

/// Daily simple returns of an equity curve: `r_0 = equity[0] / initial - 1` and
/// `r_t = equity[t] / equity[t-1] - 1`.
///
/// A zero or non-finite denominator gives a non-finite return, which the metrics then treat as
/// described in the module docs; pass positive equity to avoid that.
#[must_use]
pub fn returns_from_equity(initial: f64, equity: &[f64]) -> Vec<f64> {
    let mut previous = initial;
    equity
        .iter()
        .map(|&level| {
            let r = level / previous - 1.0;
            previous = level;
            r
        })
        .collect()
}

/// Compounded return over the whole series, `prod(1 + r) - 1` (empyrical `cum_returns_final`).
///
/// An empty series has earned nothing, so this is 0 where empyrical says NaN.
#[must_use]
pub fn total_return(returns: &[f64]) -> f64 {
    growth(returns) - 1.0
}

/// Compound annual growth rate (empyrical `cagr` / `annual_return`):
/// `prod(1 + r) ^ (252 / n) - 1`, with `n` the length of the series.
#[must_use]
pub fn cagr(returns: &[f64]) -> Option<f64> {
    if returns.is_empty() {
        return None;
    }
    let years = returns.len() as f64 / PERIODS_PER_YEAR;
    finite(growth(returns).powf(1.0 / years) - 1.0)
}

/// Annualised volatility (empyrical `annual_volatility`): sample standard deviation
/// (`ddof = 1`) times `sqrt(252)`. `None` for fewer than two returns.
#[must_use]
pub fn annual_volatility(returns: &[f64]) -> Option<f64> {
    if returns.len() < 2 {
        return None;
    }
    finite(sample_std(returns) * PERIODS_PER_YEAR.sqrt())
}

/// Annualised Sharpe ratio with a zero risk-free rate (empyrical `sharpe_ratio`):
/// `mean(r) / std(r, ddof = 1) * sqrt(252)`. `None` for fewer than two returns or zero
/// volatility.
#[must_use]
pub fn sharpe_ratio(returns: &[f64]) -> Option<f64> {
    if returns.len() < 2 {
        return None;
    }
    finite(mean(returns) / sample_std(returns) * PERIODS_PER_YEAR.sqrt())
}

/// Annualised downside deviation below 0 (empyrical `downside_risk`):
/// `sqrt(mean(min(r, 0)^2)) * sqrt(252)`, the mean taken over every day, gains included as 0.
#[must_use]
pub fn downside_risk(returns: &[f64]) -> Option<f64> {
    if returns.is_empty() {
        return None;
    }
    finite(raw_downside_risk(returns))
}

/// Annualised Sortino ratio with a zero required return (empyrical `sortino_ratio`):
/// `mean(r) * 252 / downside_risk(r)`. `None` for fewer than two returns or no losing day.
#[must_use]
pub fn sortino_ratio(returns: &[f64]) -> Option<f64> {
    if returns.len() < 2 {
        return None;
    }
    finite(mean(returns) * PERIODS_PER_YEAR / raw_downside_risk(returns))
}

/// Drawdown on each day: `level_t / max(start, level_0..=level_t) - 1`, where the level is the
/// compounded equity and `start` the capital before the first return. Values are `<= 0`.
#[must_use]
pub fn drawdown_series(returns: &[f64]) -> Vec<f64> {
    let mut cumulative = 1.0;
    let mut peak = DRAWDOWN_START;
    returns
        .iter()
        .map(|&r| {
            // empyrical's cum_returns zero-fills NaN before compounding.
            if !r.is_nan() {
                cumulative *= 1.0 + r;
            }
            let level = cumulative * DRAWDOWN_START;
            // f64::max keeps the non-NaN side, like numpy's fmax.accumulate.
            peak = peak.max(level);
            (level - peak) / peak
        })
        .collect()
}

/// Deepest drawdown (empyrical `max_drawdown`): the minimum of [`drawdown_series`], measured
/// from the starting capital. A non-positive fraction; 0 for an empty series or one that never
/// falls below a previous peak.
#[must_use]
pub fn max_drawdown(returns: &[f64]) -> f64 {
    // Starting at 0 stands for the starting capital itself; comparing with `<` skips NaN as
    // empyrical's nanmin does.
    drawdown_series(returns).into_iter().fold(0.0, |worst, d| if d < worst { d } else { worst })
}

/// Longest stretch, in trading days, spent below a previous peak (not part of empyrical).
///
/// Counts the consecutive days whose [`drawdown_series`] value is below 0: from the first day
/// under a peak up to, not including, the day the peak is regained (equalling it counts as
/// regained), or to the end of the series if it never is. The starting capital is the first
/// peak. 0 when the series never falls below a peak.
#[must_use]
pub fn max_drawdown_duration(returns: &[f64]) -> usize {
    let mut longest = 0;
    let mut current = 0;
    for d in drawdown_series(returns) {
        if d < 0.0 {
            current += 1;
            longest = longest.max(current);
        } else {
            current = 0;
        }
    }
    longest
}

/// Calmar ratio (empyrical `calmar_ratio`): `cagr(r) / |max_drawdown(r)|`. `None` when there
/// is no drawdown or no CAGR.
#[must_use]
pub fn calmar_ratio(returns: &[f64]) -> Option<f64> {
    let drawdown = max_drawdown(returns);
    if drawdown >= 0.0 {
        return None;
    }
    finite(cagr(returns)? / drawdown.abs())
}

/// Annualised alpha and beta against a benchmark, as `(alpha, beta)` (empyrical `alpha_beta`
/// with a zero risk-free rate).
///
/// Only days where both `returns[t]` and `benchmark[t]` are finite are used. Series of different
/// lengths are compared over their common prefix, which is what empyrical's positional
/// alignment of two arrays amounts to. With `b` the benchmark and `m` the number of usable days:
/// `beta = mean((b - mean(b)) * r) / mean((b - mean(b))^2)` (population means) and
/// `alpha = (mean(r - beta * b) + 1)^252 - 1`. `None` with fewer than two usable days or a
/// benchmark variance below 1e-30.
#[must_use]
pub fn alpha_beta(returns: &[f64], benchmark: &[f64]) -> Option<(f64, f64)> {
    let pairs: Vec<(f64, f64)> =
        returns.iter().zip(benchmark).filter(|(r, b)| r.is_finite() && b.is_finite()).map(|(&r, &b)| (r, b)).collect();
    if pairs.len() < 2 {
        return None;
    }
    let count = pairs.len() as f64;
    let benchmark_mean = compensated_sum(pairs.iter().map(|&(_, b)| b)) / count;
    // empyrical centres only the benchmark: mean(b - mean(b)) = 0 makes that the covariance.
    let covariance = compensated_sum(pairs.iter().map(|&(r, b)| (b - benchmark_mean) * r)) / count;
    let variance = compensated_sum(pairs.iter().map(|&(_, b)| {
        let residual = b - benchmark_mean;
        residual * residual
    })) / count;
    if variance.is_nan() || variance < MIN_BENCHMARK_VARIANCE {
        return None;
    }
    let beta = covariance / variance;
    let alpha_mean = compensated_sum(pairs.iter().map(|&(r, b)| r - beta * b)) / count;
    let alpha = (alpha_mean + 1.0).powf(PERIODS_PER_YEAR) - 1.0;
    Some((finite(alpha)?, finite(beta)?))
}

/// Historical value at risk (empyrical `value_at_risk`): the `cutoff` quantile of the returns
/// with numpy's default linear interpolation. Sorted ascending as `x`, `h = (n - 1) * cutoff`,
/// `VaR = x[floor(h)] + (h - floor(h)) * (x[floor(h) + 1] - x[floor(h)])`. A negative number is a
/// loss. `None` for an empty series, a NaN return, or `cutoff` outside `[0, 1]`.
#[must_use]
pub fn value_at_risk(returns: &[f64], cutoff: f64) -> Option<f64> {
    if returns.is_empty() || returns.iter().any(|r| r.is_nan()) || !(0.0..=1.0).contains(&cutoff) {
        return None;
    }
    let sorted = sorted_nan_last(returns);
    let last = sorted.len() - 1;
    // empyrical passes a percentage that numpy divides back; the round trip can move the last bit.
    let quantile = (100.0 * cutoff) / 100.0;
    let virtual_index = last as f64 * quantile;
    let below = virtual_index.floor();
    let weight = virtual_index - below;
    // In range: virtual_index lies in [0, last], and `as` saturates anyway.
    let lower = (below as usize).min(last);
    let upper = (lower + 1).min(last);
    let (a, b) = (sorted[lower], sorted[upper]);
    let difference = b - a;
    // numpy's _lerp interpolates from the nearer end, which is exact at weight 1.
    let value = if weight >= 0.5 { b - difference * (1.0 - weight) } else { a + difference * weight };
    finite(value)
}

/// Conditional value at risk, or expected shortfall (empyrical `conditional_value_at_risk`):
/// the mean of the `floor((n - 1) * cutoff) + 1` smallest returns. `None` for an empty series
/// or `cutoff` outside `[0, 1]`; a NaN among those smallest returns also gives `None` (numpy
/// sorts NaN last).
#[must_use]
pub fn conditional_value_at_risk(returns: &[f64], cutoff: f64) -> Option<f64> {
    if returns.is_empty() || !(0.0..=1.0).contains(&cutoff) {
        return None;
    }
    let sorted = sorted_nan_last(returns);
    // Truncation is Python's int(); the product is non-negative and at most n - 1.
    let cutoff_index = (((sorted.len() - 1) as f64 * cutoff) as usize).min(sorted.len() - 1);
    let tail = &sorted[..=cutoff_index];
    finite(compensated_sum(tail.iter().copied()) / tail.len() as f64)
}

/// Every metric of this module for one return series, as it goes into a report.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct ReturnMetrics {
    /// [`total_return`].
    pub total_return: f64,
    /// [`cagr`].
    pub cagr: Option<f64>,
    /// [`annual_volatility`].
    pub annual_volatility: Option<f64>,
    /// [`sharpe_ratio`].
    pub sharpe: Option<f64>,
    /// [`sortino_ratio`].
    pub sortino: Option<f64>,
    /// [`calmar_ratio`].
    pub calmar: Option<f64>,
    /// [`max_drawdown`].
    pub max_drawdown: f64,
    /// [`max_drawdown_duration`], in trading days.
    pub max_drawdown_duration_days: usize,
    /// Alpha from [`alpha_beta`]; `None` without a benchmark.
    pub alpha: Option<f64>,
    /// Beta from [`alpha_beta`]; `None` without a benchmark.
    pub beta: Option<f64>,
    /// [`value_at_risk`] at cutoff 0.05.
    pub var_95: Option<f64>,
    /// [`conditional_value_at_risk`] at cutoff 0.05.
    pub cvar_95: Option<f64>,
}

/// All metrics of `returns`, with alpha and beta against `benchmark` when one is given.
#[must_use]
pub fn summarize(returns: &[f64], benchmark: Option<&[f64]>) -> ReturnMetrics {
    let alpha_beta = benchmark.and_then(|b| alpha_beta(returns, b));
    ReturnMetrics {
        total_return: total_return(returns),
        cagr: cagr(returns),
        annual_volatility: annual_volatility(returns),
        sharpe: sharpe_ratio(returns),
        sortino: sortino_ratio(returns),
        calmar: calmar_ratio(returns),
        max_drawdown: max_drawdown(returns),
        max_drawdown_duration_days: max_drawdown_duration(returns),
        alpha: alpha_beta.map(|(alpha, _)| alpha),
        beta: alpha_beta.map(|(_, beta)| beta),
        var_95: value_at_risk(returns, 0.05),
        cvar_95: conditional_value_at_risk(returns, 0.05),
    }
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

/// Neumaier's compensated sum: the error stays near one rounding regardless of length, and it is
/// sequential, so bit-for-bit reproducible.
fn compensated_sum(values: impl IntoIterator<Item = f64>) -> f64 {
    let mut sum = 0.0_f64;
    let mut compensation = 0.0_f64;
    for x in values {
        let t = sum + x;
        compensation += if sum.abs() >= x.abs() { (sum - t) + x } else { (x - t) + sum };
        sum = t;
    }
    sum + compensation
}

/// `prod(1 + r)` over the non-NaN returns (numpy `nanprod`).
fn growth(returns: &[f64]) -> f64 {
    returns.iter().filter(|r| !r.is_nan()).fold(1.0, |product, r| product * (1.0 + r))
}

/// Mean of the non-NaN returns (numpy `nanmean`); NaN when there are none.
fn mean(returns: &[f64]) -> f64 {
    let (sum, count) = sum_and_count(returns.iter().copied().filter(|r| !r.is_nan()));
    sum / count as f64
}

/// Sample standard deviation (`ddof = 1`) of the non-NaN returns (numpy `nanstd`); NaN for
/// fewer than two of them.
fn sample_std(returns: &[f64]) -> f64 {
    let values = || returns.iter().copied().filter(|r| !r.is_nan());
    let (sum, count) = sum_and_count(values());
    if count < 2 {
        return f64::NAN;
    }
    // A constant series has no spread; the two-pass formula would report rounding noise from
    // an inexact mean (e.g. of [0.1; 3]) and turn a zero-risk series into a Sharpe of 1e16.
    let mut rest = values();
    if let Some(first) = rest.next()
        && rest.all(|r| r == first)
    {
        return 0.0;
    }
    let mean = sum / count as f64;
    let squares = compensated_sum(values().map(|r| (r - mean) * (r - mean)));
    (squares / (count - 1) as f64).sqrt()
}

fn sum_and_count(values: impl Iterator<Item = f64>) -> (f64, usize) {
    let mut count = 0_usize;
    let sum = compensated_sum(values.inspect(|_| count += 1));
    (sum, count)
}

/// Unchecked downside risk: NaN or inf pass through so callers can apply empyrical's
/// NaN-means-undefined rule once, on their own result.
fn raw_downside_risk(returns: &[f64]) -> f64 {
    let (sum, count) = sum_and_count(returns.iter().filter(|r| !r.is_nan()).map(|&r| {
        let shortfall = r.min(0.0);
        shortfall * shortfall
    }));
    (sum / count as f64).sqrt() * PERIODS_PER_YEAR.sqrt()
}

/// Ascending copy with NaN at the end, the order numpy's sort and partition use.
fn sorted_nan_last(returns: &[f64]) -> Vec<f64> {
    let mut sorted = returns.to_vec();
    sorted.sort_by(|a, b| match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        (false, false) => a.total_cmp(b),
    });
    sorted
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const REL: f64 = 1e-12;

    /// Relative comparison with a floor so that expected zeros need only be within 1e-15.
    fn assert_close(actual: f64, expected: f64, what: &str) {
        let tolerance = REL * expected.abs() + 1e-15;
        assert!(
            (actual - expected).abs() <= tolerance,
            "{what}: got {actual:e}, expected {expected:e} (diff {:e})",
            (actual - expected).abs()
        );
    }

    fn assert_some_close(actual: Option<f64>, expected: f64, what: &str) {
        match actual {
            Some(a) => assert_close(a, expected, what),
            None => panic!("{what}: got None, expected {expected:e}"),
        }
    }

    /// Deterministic pseudo-random returns in roughly [-2.4%, +2.6%] from a 64-bit LCG
    /// (Knuth's MMIX constants), so the tests need no RNG crate and never change.
    fn lcg_returns(seed: u64, n: usize) -> Vec<f64> {
        let mut state = seed;
        (0..n)
            .map(|_| {
                state = state.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
                let unit = (state >> 11) as f64 / (1_u64 << 53) as f64;
                (unit - 0.48) * 0.05
            })
            .collect()
    }

    /// A benchmark correlated with `returns` but not a linear function of it.
    fn lcg_benchmark(returns: &[f64], seed: u64) -> Vec<f64> {
        let noise = lcg_returns(seed, returns.len());
        returns.iter().zip(&noise).map(|(r, e)| 0.6 * r + 0.4 * e).collect()
    }

    /// Equity path starting at 1, compounded left to right: the independent route for
    /// everything cumulative.
    fn equity_path(returns: &[f64]) -> Vec<f64> {
        let mut path = Vec::with_capacity(returns.len() + 1);
        path.push(1.0);
        for r in returns {
            let last = path[path.len() - 1];
            path.push(last * (1.0 + r));
        }
        path
    }

    fn naive_mean(xs: &[f64]) -> f64 {
        let mut sum = 0.0;
        for x in xs {
            sum += x;
        }
        sum / xs.len() as f64
    }

    /// Sample variance from the pairwise-difference identity
    /// `var = sum_{i<j} (x_i - x_j)^2 / (n (n - 1))`, which never forms the mean.
    fn pairwise_variance(xs: &[f64]) -> f64 {
        let n = xs.len() as f64;
        let mut sum = 0.0;
        for i in 0..xs.len() {
            for j in (i + 1)..xs.len() {
                sum += (xs[i] - xs[j]).powi(2);
            }
        }
        sum / (n * (n - 1.0))
    }

    /// Drawdown of each day against the best of all earlier levels, starting capital included,
    /// found by scanning backwards every time (O(n^2)).
    fn brute_drawdowns(returns: &[f64]) -> Vec<f64> {
        let path = equity_path(returns);
        (1..path.len())
            .map(|t| {
                let best = path[..=t].iter().copied().fold(f64::MIN, f64::max);
                path[t] / best - 1.0
            })
            .collect()
    }

    // ---- empyrical reference fixture -------------------------------------------------------
    //
    // Reference values computed with empyrical 0.5.5 (numpy 1.26.4, pandas 2.1.4, Python
    // 3.11.7; `pip install empyrical==0.5.5 six "numpy<2" "pandas<2.2"`), not with this code.
    // empyrical-reloaded 0.7.1 (numpy 2.4.6) printed the same values to the last digit or two.
    // Re-run with:
    //
    //   import numpy as np, empyrical as ep
    //   r = np.array(REFERENCE_RETURNS); b = np.array(REFERENCE_BENCHMARK)
    //   show = lambda name, v: print(f"{name} = {float(v)!r}")
    //   show("total_return", ep.cum_returns_final(r)); show("cagr", ep.cagr(r))
    //   show("annual_volatility", ep.annual_volatility(r)); show("sharpe", ep.sharpe_ratio(r))
    //   show("downside_risk", ep.downside_risk(r)); show("sortino", ep.sortino_ratio(r))
    //   show("max_drawdown", ep.max_drawdown(r)); show("calmar", ep.calmar_ratio(r))
    //   a, be = ep.alpha_beta(r, b); show("alpha", a); show("beta", be)
    //   show("var_05", ep.value_at_risk(r, 0.05)); show("var_25", ep.value_at_risk(r, 0.25))
    //   show("cvar_05", ep.conditional_value_at_risk(r, 0.05))
    //   show("cvar_25", ep.conditional_value_at_risk(r, 0.25))
    //   a, be = ep.alpha_beta(r, b[:15]); show("alpha_prefix15", a); show("beta_prefix15", be)
    //   rn = r.copy(); rn[3] = np.nan; bn = b.copy(); bn[7] = np.nan
    //   a, be = ep.alpha_beta(rn, bn); show("alpha_nan", a); show("beta_nan", be)
    //   show("sharpe_nan", ep.sharpe_ratio(rn)); show("cagr_nan", ep.cagr(rn))
    //   show("max_drawdown_nan", ep.max_drawdown(rn)); show("sortino_nan", ep.sortino_ratio(rn))
    //   show("annual_volatility_nan", ep.annual_volatility(rn))
    //   for s in ([-0.05, 0.01, 0.01], [-0.1]):
    //       a = np.array(s); print(s, ep.max_drawdown(a), ep.cagr(a), ep.calmar_ratio(a),
    //                              ep.downside_risk(a), ep.value_at_risk(a))

    const REFERENCE_RETURNS: [f64; 20] = [
        -0.012, 0.0085, 0.0153, -0.0221, 0.0047, -0.0068, 0.0312, -0.0154, 0.0021, 0.0109, -0.0087, -0.0175, 0.0246,
        0.0032, -0.0041, 0.0138, -0.0263, 0.0074, 0.0191, -0.0029,
    ];
    const REFERENCE_BENCHMARK: [f64; 20] = [
        -0.008, 0.0061, 0.0102, -0.0153, 0.0019, -0.0032, 0.0215, -0.0098, 0.0007, 0.0081, -0.0049, -0.0121, 0.0178,
        0.0011, -0.0035, 0.0092, -0.0187, 0.0043, 0.0122, -0.0014,
    ];

    #[test]
    fn matches_empyrical_reference_values() {
        let r = &REFERENCE_RETURNS;
        let b = &REFERENCE_BENCHMARK;
        assert_close(total_return(r), 0.02293250932926183, "total_return");
        assert_some_close(cagr(r), 0.3306748838506641, "cagr");
        assert_some_close(annual_volatility(r), 0.24791183916868512, "annual_volatility");
        assert_some_close(sharpe_ratio(r), 1.2706129770013381, "sharpe");
        assert_some_close(downside_risk(r), 0.15932581711700086, "downside_risk");
        assert_some_close(sortino_ratio(r), 1.97708071234105, "sortino");
        assert_close(max_drawdown(r), -0.02855827019745949, "max_drawdown");
        assert_some_close(calmar_ratio(r), 11.578953541803823, "calmar");
        let (alpha, beta) = alpha_beta(r, b).unwrap();
        assert_close(alpha, 0.01757784501384463, "alpha");
        assert_close(beta, 1.4578397803760423, "beta");
        assert_some_close(value_at_risk(r, 0.05), -0.02231, "var 5%");
        assert_some_close(value_at_risk(r, 0.25), -0.009524999999999999, "var 25%");
        assert_some_close(conditional_value_at_risk(r, 0.05), -0.0263, "cvar 5%");
        assert_some_close(conditional_value_at_risk(r, 0.25), -0.01866, "cvar 25%");
    }

    #[test]
    fn matches_empyrical_on_short_benchmark_and_nan_entries() {
        let r = &REFERENCE_RETURNS;
        let b = &REFERENCE_BENCHMARK;
        let (alpha, beta) = alpha_beta(r, &b[..15]).unwrap();
        assert_close(alpha, -0.025151453977079297, "alpha prefix");
        assert_close(beta, 1.4543568623223526, "beta prefix");

        let mut rn = *r;
        rn[3] = f64::NAN;
        let mut bn = *b;
        bn[7] = f64::NAN;
        let (alpha, beta) = alpha_beta(&rn, &bn).unwrap();
        assert_close(alpha, 0.03664947519696282, "alpha nan");
        assert_close(beta, 1.4510611818621897, "beta nan");
        assert_some_close(sharpe_ratio(&rn), 2.620241149518464, "sharpe nan");
        assert_some_close(cagr(&rn), 0.7634450792432157, "cagr nan");
        assert_close(max_drawdown(&rn), -0.028558270197459393, "max_drawdown nan");
        assert_some_close(sortino_ratio(&rn), 4.390677496858235, "sortino nan");
        assert_some_close(annual_volatility(&rn), 0.23841116187222264, "volatility nan");
        assert_eq!(value_at_risk(&rn, 0.05), None);
    }

    #[test]
    fn matches_empyrical_on_a_first_day_loss() {
        // empyrical 0.5.5 seeds the running peak with the starting capital, so a loss on the
        // first day is a drawdown (a peak taken from the first close would report 0 here).
        let r = [-0.05, 0.01, 0.01];
        assert_close(max_drawdown(&r), -0.05, "max_drawdown");
        assert_some_close(cagr(&r), -0.9284229756316845, "cagr");
        assert_some_close(calmar_ratio(&r), -18.56845951263369, "calmar");
        assert_some_close(value_at_risk(&r, 0.05), -0.044000000000000004, "var");

        let single = [-0.1];
        assert_close(max_drawdown(&single), -0.1, "single max_drawdown");
        assert_some_close(cagr(&single), -0.9999999999970548, "single cagr");
        assert_some_close(calmar_ratio(&single), -9.999999999970548, "single calmar");
        assert_some_close(downside_risk(&single), 1.5874507866387546, "single downside");
        assert_some_close(value_at_risk(&single, 0.05), -0.1, "single var");
    }

    // ---- each metric by an independent route ------------------------------------------------

    #[test]
    fn returns_from_equity_recompounds_to_the_curve() {
        let equity = [1_000.0, 1_100.0, 990.0, 990.0, 1_188.0];
        let r = returns_from_equity(1_000.0, &equity);
        assert_eq!(r.len(), 5);
        assert_close(r[0], 0.0, "day 0 against the starting capital");
        assert_close(r[1], 0.1, "day 1");
        assert_close(r[2], -0.1, "day 2");
        assert_close(r[3], 0.0, "day 3");
        assert_close(r[4], 0.2, "day 4");
        assert_close(1_000.0 * (1.0 + total_return(&r)), 1_188.0, "recompounded");
        assert!(returns_from_equity(1.0, &[]).is_empty());
        assert_close(returns_from_equity(500.0, &[450.0])[0], -0.1, "first day loss");
    }

    #[test]
    fn total_return_and_cagr_follow_the_equity_path() {
        for seed in [1, 7, 42] {
            let r = lcg_returns(seed, 300);
            let path = equity_path(&r);
            let final_level = path[path.len() - 1];
            assert_close(total_return(&r), final_level - 1.0, "total_return");
            // Through logarithms rather than a power of the product.
            let log_growth: f64 = r.iter().map(|x| x.ln_1p()).sum();
            let expected = (log_growth * 252.0 / r.len() as f64).exp() - 1.0;
            assert_some_close(cagr(&r), expected, "cagr");
        }
    }

    #[test]
    fn constant_daily_return_compounds_in_closed_form() {
        let c = 0.001;
        let year = vec![c; 252];
        assert_close(total_return(&year), 1.001_f64.powi(252) - 1.0, "total_return");
        assert_some_close(cagr(&year), 1.001_f64.powi(252) - 1.0, "cagr over one year");
        let two_years = vec![c; 504];
        assert_some_close(cagr(&two_years), 1.001_f64.powi(252) - 1.0, "cagr over two years");
        let half_year = vec![c; 126];
        assert_some_close(cagr(&half_year), 1.001_f64.powi(252) - 1.0, "cagr over half a year");
        // No spread at all, so no Sharpe, no volatility risk and no downside.
        assert_eq!(annual_volatility(&year), Some(0.0));
        assert_eq!(sharpe_ratio(&year), None);
        assert_eq!(downside_risk(&year), Some(0.0));
        assert_eq!(sortino_ratio(&year), None);
        assert_eq!(max_drawdown(&year), 0.0);
        assert_eq!(calmar_ratio(&year), None);
    }

    #[test]
    fn a_constant_series_with_an_inexact_mean_still_has_no_volatility() {
        // 0.1 + 0.1 + 0.1 != 0.3: a plain two-pass std would be about 1e-17, not 0.
        let r = [0.1, 0.1, 0.1];
        assert_eq!(annual_volatility(&r), Some(0.0));
        assert_eq!(sharpe_ratio(&r), None);
    }

    #[test]
    fn volatility_and_sharpe_match_the_pairwise_variance_identity() {
        for seed in [3, 11, 2024] {
            let r = lcg_returns(seed, 250);
            let std = pairwise_variance(&r).sqrt();
            assert_some_close(annual_volatility(&r), std * 252_f64.sqrt(), "volatility");
            let mean = naive_mean(&r);
            assert_some_close(sharpe_ratio(&r), mean / std * 252_f64.sqrt(), "sharpe");
        }
    }

    #[test]
    fn volatility_of_a_two_point_series_is_half_the_gap_times_root_two() {
        // Sample std of {a, b} is |a - b| / sqrt(2).
        let r = [0.01, -0.03];
        let std = 0.04 / 2_f64.sqrt();
        assert_some_close(annual_volatility(&r), std * 252_f64.sqrt(), "volatility");
        assert_some_close(sharpe_ratio(&r), -0.01 / std * 252_f64.sqrt(), "sharpe");
    }

    #[test]
    fn downside_risk_averages_squared_losses_over_every_day() {
        // Losses 0.02 and 0.04 over four days: sqrt((0.0004 + 0.0016) / 4) = sqrt(0.0005).
        let r = [0.03, -0.02, 0.01, -0.04];
        let expected = 0.0005_f64.sqrt() * 252_f64.sqrt();
        assert_some_close(downside_risk(&r), expected, "downside_risk");
        assert_some_close(sortino_ratio(&r), -0.005 * 252.0 / expected, "sortino");

        for seed in [5, 99] {
            let r = lcg_returns(seed, 260);
            let mut sum_sq = 0.0;
            for &x in &r {
                if x < 0.0 {
                    sum_sq += x * x;
                }
            }
            let dr = (sum_sq / r.len() as f64 * 252.0).sqrt();
            assert_some_close(downside_risk(&r), dr, "downside_risk lcg");
            assert_some_close(sortino_ratio(&r), naive_mean(&r) * 252.0 / dr, "sortino lcg");
        }
    }

    #[test]
    fn no_losing_day_means_no_sortino() {
        let r = [0.01, 0.02, 0.03];
        assert_eq!(downside_risk(&r), Some(0.0));
        assert_eq!(sortino_ratio(&r), None);
        assert!(sharpe_ratio(&r).is_some());
    }

    #[test]
    fn drawdowns_match_a_brute_force_scan() {
        for seed in [2, 17, 123] {
            let r = lcg_returns(seed, 400);
            let brute = brute_drawdowns(&r);
            let series = drawdown_series(&r);
            assert_eq!(series.len(), r.len());
            for (t, (got, want)) in series.iter().zip(&brute).enumerate() {
                assert_close(*got, *want, &format!("drawdown day {t}"));
            }
            let worst = brute.iter().copied().fold(0.0, f64::min);
            assert_close(max_drawdown(&r), worst, "max_drawdown");

            // Longest run of days under an earlier peak, counted straight from the path.
            let path = equity_path(&r);
            let mut longest = 0;
            let mut run = 0;
            let mut best = path[0];
            for &level in &path[1..] {
                if level < best {
                    run += 1;
                } else {
                    best = level;
                    run = 0;
                }
                longest = longest.max(run);
            }
            assert!(longest > 0, "the lcg series should have a drawdown");
            assert_eq!(max_drawdown_duration(&r), longest, "duration seed {seed}");

            let expected_calmar = cagr(&r).unwrap() / worst.abs();
            assert_some_close(calmar_ratio(&r), expected_calmar, "calmar");
        }
    }

    #[test]
    fn known_drawdown_and_its_duration() {
        // Levels 1.1, 0.55, 0.66, 1.32, 1.188: the 50% fall from 1.1 lasts two days until 1.32
        // makes a new high, then one more day under it.
        let r = [0.1, -0.5, 0.2, 1.0, -0.1];
        assert_close(max_drawdown(&r), -0.5, "max_drawdown");
        let dd = drawdown_series(&r);
        assert_close(dd[0], 0.0, "day 0");
        assert_close(dd[1], -0.5, "day 1");
        assert_close(dd[2], -0.4, "day 2");
        assert_close(dd[3], 0.0, "day 3");
        assert_close(dd[4], -0.1, "day 4");
        assert_eq!(max_drawdown_duration(&r), 2);
    }

    #[test]
    fn drawdown_duration_edges() {
        // Never regained: every day counts, to the end.
        assert_eq!(max_drawdown_duration(&[-0.1, 0.01, 0.01]), 3);
        // 1.25 * 0.8 * 1.25 = 1.25 exactly: equalling the peak ends the drawdown.
        assert_eq!(max_drawdown_duration(&[0.25, -0.2, 0.25]), 1);
        assert_eq!(max_drawdown(&[0.25, -0.2, 0.25]), -0.2);
        // However shallow, a dip is time under water.
        assert_eq!(max_drawdown_duration(&[0.01, -1e-9, 0.0, 1e-8]), 2);
        // Only gains.
        assert_eq!(max_drawdown_duration(&[0.01, 0.02]), 0);
        assert_eq!(max_drawdown_duration(&[]), 0);
    }

    #[test]
    fn alpha_beta_of_an_exact_linear_relation() {
        let b = lcg_returns(8, 300);
        let r: Vec<f64> = b.iter().map(|x| 2.0 * x + 0.0001).collect();
        let (alpha, beta) = alpha_beta(&r, &b).unwrap();
        assert_close(beta, 2.0, "beta");
        // The relation is exact only up to rounding in r, so alpha is looser than 1e-12.
        let expected = 1.0001_f64.powi(252) - 1.0;
        assert!((alpha - expected).abs() < 1e-10, "alpha {alpha} vs {expected}");
    }

    /// Textbook OLS slope with both series centred, and the intercept from the means.
    fn ols(r: &[f64], b: &[f64]) -> (f64, f64) {
        let mr = naive_mean(r);
        let mb = naive_mean(b);
        let mut sxy = 0.0;
        let mut sxx = 0.0;
        for (x, y) in b.iter().zip(r) {
            sxy += (x - mb) * (y - mr);
            sxx += (x - mb) * (x - mb);
        }
        let beta = sxy / sxx;
        let alpha = (mr - beta * mb + 1.0).powi(252) - 1.0;
        (alpha, beta)
    }

    #[test]
    fn alpha_beta_match_ordinary_least_squares() {
        for seed in [4, 31, 77] {
            let r = lcg_returns(seed, 300);
            let b = lcg_benchmark(&r, seed + 1000);
            let (alpha, beta) = alpha_beta(&r, &b).unwrap();
            let (ea, eb) = ols(&r, &b);
            assert_close(beta, eb, "beta");
            assert_close(alpha, ea, "alpha");
        }
    }

    #[test]
    fn alpha_beta_skip_non_finite_days_and_use_the_common_prefix() {
        let r = lcg_returns(12, 120);
        let b = lcg_benchmark(&r, 13);
        let mut r_gappy = r.clone();
        let mut b_gappy = b.clone();
        r_gappy[5] = f64::NAN;
        b_gappy[9] = f64::NAN;
        b_gappy[40] = f64::INFINITY;
        let kept: Vec<usize> = (0..r.len()).filter(|i| ![5, 9, 40].contains(i)).collect();
        let r_kept: Vec<f64> = kept.iter().map(|&i| r[i]).collect();
        let b_kept: Vec<f64> = kept.iter().map(|&i| b[i]).collect();
        let (alpha, beta) = alpha_beta(&r_gappy, &b_gappy).unwrap();
        let (ea, eb) = ols(&r_kept, &b_kept);
        assert_close(beta, eb, "beta with gaps");
        assert_close(alpha, ea, "alpha with gaps");

        // A longer benchmark and a longer return series both fall back to the overlap.
        let (ea, eb) = ols(&r[..80], &b[..80]);
        let (alpha, beta) = alpha_beta(&r[..80], &b).unwrap();
        assert_close(beta, eb, "beta short returns");
        assert_close(alpha, ea, "alpha short returns");
        let (alpha, beta) = alpha_beta(&r, &b[..80]).unwrap();
        assert_close(beta, eb, "beta short benchmark");
        assert_close(alpha, ea, "alpha short benchmark");
    }

    #[test]
    fn alpha_beta_undefined_cases() {
        assert_eq!(alpha_beta(&[], &[]), None);
        assert_eq!(alpha_beta(&[0.01], &[0.02]), None);
        assert_eq!(alpha_beta(&[0.01, 0.02], &[0.03]), None, "one overlapping day");
        assert_eq!(alpha_beta(&[0.01, 0.02, 0.03], &[f64::NAN, 0.01, f64::NAN]), None);
        // A flat benchmark has no variance (or only rounding noise under the 1e-30 floor).
        assert_eq!(alpha_beta(&[0.01, 0.02, 0.03], &[0.01, 0.01, 0.01]), None);
        assert_eq!(alpha_beta(&[0.01, 0.02, 0.03], &[0.1, 0.1, 0.1]), None);
        // Two days are enough (empyrical gives alpha 2.514..., beta 0.5 here).
        let (alpha, beta) = alpha_beta(&[0.01, 0.02], &[0.01, 0.03]).unwrap();
        assert_close(beta, 0.5, "two-day beta");
        assert_close(alpha, 1.005_f64.powi(252) - 1.0, "two-day alpha");
    }

    #[test]
    fn value_at_risk_interpolates_linearly() {
        // Sorted: -0.05, -0.03, -0.01, 0.02, 0.04 (n = 5, so h = 4q).
        let r = [0.02, -0.01, -0.05, 0.04, -0.03];
        assert_some_close(value_at_risk(&r, 0.0), -0.05, "minimum");
        assert_some_close(value_at_risk(&r, 1.0), 0.04, "maximum");
        assert_some_close(value_at_risk(&r, 0.5), -0.01, "median");
        // h = 0.2: 20% of the way from -0.05 to -0.03.
        assert_some_close(value_at_risk(&r, 0.05), -0.046, "5%");
        // h = 2.6: 60% of the way from -0.01 to 0.02.
        assert_some_close(value_at_risk(&r, 0.65), 0.008, "65%");

        for seed in [6, 60] {
            let r = lcg_returns(seed, 101);
            // n = 101: h = 100q lands on whole indices for whole percentages.
            let mut sorted = r.clone();
            sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
            assert_some_close(value_at_risk(&r, 0.05), sorted[5], "5% lcg");
            assert_some_close(value_at_risk(&r, 0.37), sorted[37], "37% lcg");
            // Between ranks: as a weighted average rather than a slope.
            let h = 100.0_f64 * 0.053;
            let lo = h.floor() as usize;
            let w = h - lo as f64;
            let expected = sorted[lo] * (1.0 - w) + sorted[lo + 1] * w;
            assert_some_close(value_at_risk(&r, 0.053), expected, "5.3% lcg");
        }
    }

    #[test]
    fn conditional_value_at_risk_averages_the_worst_days() {
        let r = [0.02, -0.01, -0.05, 0.04, -0.03];
        // (5 - 1) * 0.05 = 0.2 -> only the worst day.
        assert_some_close(conditional_value_at_risk(&r, 0.05), -0.05, "5%");
        // (5 - 1) * 0.5 = 2 -> the three worst days.
        assert_some_close(conditional_value_at_risk(&r, 0.5), -0.03, "50%");
        assert_some_close(conditional_value_at_risk(&r, 1.0), -0.006, "everything");

        let r = lcg_returns(21, 21);
        // (21 - 1) * 0.05 = 1 -> the two worst days, found by picking minima one at a time.
        let mut pool = r.clone();
        let mut worst = Vec::new();
        for _ in 0..2 {
            let (i, _) = pool.iter().enumerate().min_by(|a, b| a.1.partial_cmp(b.1).unwrap()).unwrap();
            worst.push(pool.remove(i));
        }
        assert_some_close(conditional_value_at_risk(&r, 0.05), (worst[0] + worst[1]) / 2.0, "two worst");
        let var = value_at_risk(&r, 0.05).unwrap();
        assert!(conditional_value_at_risk(&r, 0.05).unwrap() <= var);
    }

    #[test]
    fn tail_metrics_reject_bad_cutoffs_and_nan() {
        let r = [0.01, -0.02, 0.03];
        for cutoff in [-0.01, 1.01, f64::NAN] {
            assert_eq!(value_at_risk(&r, cutoff), None);
            assert_eq!(conditional_value_at_risk(&r, cutoff), None);
        }
        let with_nan = [0.01, f64::NAN, -0.02, 0.03];
        assert_eq!(value_at_risk(&with_nan, 0.05), None);
        // numpy puts NaN last, so the worst day alone is still defined ...
        assert_some_close(conditional_value_at_risk(&with_nan, 0.05), -0.02, "nan last");
        // ... but not a tail that reaches the NaN.
        assert_eq!(conditional_value_at_risk(&with_nan, 1.0), None);
    }

    #[test]
    fn empty_series() {
        let r: [f64; 0] = [];
        assert_eq!(total_return(&r), 0.0);
        assert_eq!(cagr(&r), None);
        assert_eq!(annual_volatility(&r), None);
        assert_eq!(sharpe_ratio(&r), None);
        assert_eq!(downside_risk(&r), None);
        assert_eq!(sortino_ratio(&r), None);
        assert_eq!(max_drawdown(&r), 0.0);
        assert!(drawdown_series(&r).is_empty());
        assert_eq!(max_drawdown_duration(&r), 0);
        assert_eq!(calmar_ratio(&r), None);
        assert_eq!(value_at_risk(&r, 0.05), None);
        assert_eq!(conditional_value_at_risk(&r, 0.05), None);
        let m = summarize(&r, Some(&r[..]));
        assert_eq!(m.alpha, None);
        assert_eq!(m.beta, None);
    }

    #[test]
    fn single_return() {
        let r = [0.02];
        assert_close(total_return(&r), 0.02, "total_return");
        assert_some_close(cagr(&r), 1.02_f64.powf(252.0) - 1.0, "cagr");
        assert_eq!(annual_volatility(&r), None);
        assert_eq!(sharpe_ratio(&r), None);
        assert_eq!(downside_risk(&r), Some(0.0));
        assert_eq!(sortino_ratio(&r), None);
        assert_eq!(max_drawdown(&r), 0.0);
        assert_eq!(calmar_ratio(&r), None);
        assert_eq!(value_at_risk(&r, 0.05), Some(0.02));
        assert_eq!(conditional_value_at_risk(&r, 0.05), Some(0.02));
    }

    #[test]
    fn all_zero_returns() {
        let r = [0.0; 10];
        assert_eq!(total_return(&r), 0.0);
        assert_eq!(cagr(&r), Some(0.0));
        assert_eq!(annual_volatility(&r), Some(0.0));
        assert_eq!(sharpe_ratio(&r), None);
        assert_eq!(downside_risk(&r), Some(0.0));
        assert_eq!(sortino_ratio(&r), None);
        assert_eq!(max_drawdown(&r), 0.0);
        assert_eq!(max_drawdown_duration(&r), 0);
        assert_eq!(calmar_ratio(&r), None);
    }

    #[test]
    fn undefined_results_are_none_not_infinite() {
        // Growth so large that the annualised figure overflows.
        let huge = [1e6, 1e6];
        assert_eq!(cagr(&huge), None);
        assert!(total_return(&huge).is_finite());
        // A total loss below -100% has no real annual rate.
        assert_eq!(cagr(&[-1.5, 0.1, 0.1, 0.1, 0.1]), None);
        // An infinite return poisons every moment.
        let inf = [0.01, f64::INFINITY, -0.02];
        assert_eq!(annual_volatility(&inf), None);
        assert_eq!(sharpe_ratio(&inf), None);
        assert_eq!(sortino_ratio(&inf), None);
        assert_eq!(value_at_risk(&inf, 1.0), None);
    }

    #[test]
    fn summarize_collects_the_individual_metrics() {
        let r = lcg_returns(9, 252);
        let b = lcg_benchmark(&r, 10);
        let m = summarize(&r, Some(b.as_slice()));
        let (alpha, beta) = alpha_beta(&r, &b).unwrap();
        let expected = ReturnMetrics {
            total_return: total_return(&r),
            cagr: cagr(&r),
            annual_volatility: annual_volatility(&r),
            sharpe: sharpe_ratio(&r),
            sortino: sortino_ratio(&r),
            calmar: calmar_ratio(&r),
            max_drawdown: max_drawdown(&r),
            max_drawdown_duration_days: max_drawdown_duration(&r),
            alpha: Some(alpha),
            beta: Some(beta),
            var_95: value_at_risk(&r, 0.05),
            cvar_95: conditional_value_at_risk(&r, 0.05),
        };
        assert_eq!(m, expected);
        assert!(m.sharpe.is_some() && m.sortino.is_some() && m.calmar.is_some());

        let without = summarize(&r, None);
        assert_eq!(without.alpha, None);
        assert_eq!(without.beta, None);
        assert_eq!(without.sharpe, m.sharpe);

        let json = serde_json::to_value(summarize(&[], None)).unwrap();
        assert_eq!(json["cagr"], serde_json::Value::Null);
        assert_eq!(json["max_drawdown_duration_days"], 0);
    }

    #[test]
    fn same_input_gives_the_same_bits() {
        let r = lcg_returns(33, 500);
        let b = lcg_benchmark(&r, 34);
        let first = summarize(&r, Some(b.as_slice()));
        let again = summarize(&r.clone(), Some(b.clone().as_slice()));
        let bits = |m: &ReturnMetrics| {
            [m.cagr, m.annual_volatility, m.sharpe, m.sortino, m.calmar, m.alpha, m.beta].map(|x| x.map(f64::to_bits))
        };
        assert_eq!(bits(&first), bits(&again));
    }

    proptest! {
        #[test]
        fn invariants_hold_for_arbitrary_series(
            r in proptest::collection::vec(-0.3_f64..0.3, 0..120),
            b in proptest::collection::vec(-0.3_f64..0.3, 0..120),
        ) {
            let mdd = max_drawdown(&r);
            prop_assert!((-1.0..=0.0).contains(&mdd));
            let series = drawdown_series(&r);
            prop_assert_eq!(series.len(), r.len());
            prop_assert_eq!(series.iter().copied().fold(0.0, f64::min), mdd);
            let duration = max_drawdown_duration(&r);
            prop_assert!(duration <= r.len());
            prop_assert_eq!(duration == 0, mdd == 0.0);

            let m = summarize(&r, Some(b.as_slice()));
            for x in [m.cagr, m.annual_volatility, m.sharpe, m.sortino, m.calmar, m.alpha,
                      m.beta, m.var_95, m.cvar_95].into_iter().flatten() {
                prop_assert!(x.is_finite());
            }
            if let (Some(var), Some(cvar)) = (m.var_95, m.cvar_95) {
                prop_assert!(cvar <= var);
            }
            if let (Some(vol), Some(down)) = (m.annual_volatility, downside_risk(&r)) {
                prop_assert!(vol >= 0.0 && down >= 0.0);
            }
        }

        #[test]
        fn a_series_against_itself_has_beta_one_and_no_alpha(
            r in proptest::collection::vec(-0.1_f64..0.1, 2..80),
        ) {
            if let Some((alpha, beta)) = alpha_beta(&r, &r) {
                prop_assert!((beta - 1.0).abs() < 1e-9, "beta {}", beta);
                prop_assert!(alpha.abs() < 1e-9, "alpha {}", alpha);
            }
        }
    }
}
