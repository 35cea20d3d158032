//! The return model: common factors for the whole market, per-instrument profiles, and the
//! bar-by-bar path of one instrument on KRX's tick grid. See the parent module for the overview.

use crate::rng::{Rng, exp, ln};
use chrono::NaiveDate;
use haechi_core::{Market, Price, RawBar, krx};
use std::ops::Range;

/// Long-run daily volatility of the market factor: about 17.5% a year, KOSPI's long-run level.
const MARKET_VOL: f64 = 0.011;
/// GARCH(1,1) reaction and persistence, typical fitted values for equity indices.
const MARKET_GARCH: (f64, f64) = (0.08, 0.90);
/// Idiosyncratic variance clusters too; single stocks react more sharply to their own shocks.
const IDIO_GARCH: (f64, f64) = (0.10, 0.88);
/// Daily log drift of the market factor in ordinary times (≈ 7.5% a year); stress spells and the
/// crash give much of it back, leaving KS11 a few percent a year over long periods.
const MARKET_DRIFT: f64 = 0.000_3;
/// Shocks are cut at this many standard deviations so one freak draw cannot blow up the variance
/// recursion; the daily price limit cuts the price move anyway.
const SHOCK_CAP: f64 = 12.0;
/// Largest standardised shock the variance recursions see (see [`garch_step`]).
const GARCH_SHOCK_CAP: f64 = 4.0;

/// The crash starts this far into the period…
const CRASH_START: f64 = 0.4;
/// …lasts 15 to 40 sessions…
const CRASH_LEN: (u64, u64) = (15, 40);
/// …with market volatility this many times normal…
const CRASH_VOL_MULT: f64 = 3.0;
/// …and takes the market factor down by exactly this much in log terms (−42%), whatever the
/// shocks did: the crash window is a bridge, its drift set so the factor ends there.
const CRASH_LOG_RETURN: f64 = -0.55;
/// Afterwards the market claws back this share of the fall over twice the crash's length, while
/// volatility decays back to normal with this e-folding time in sessions.
const REBOUND_SHARE: f64 = 0.35;
const AFTERSHOCK_DECAY: f64 = 10.0;

/// Random stress spells: chance per calm session that one starts, length, volatility and drift.
const STRESS_CHANCE: f64 = 1.0 / 300.0;
const STRESS_LEN: (u64, u64) = (5, 15);
const STRESS_VOL_MULT: f64 = 2.0;
const STRESS_DRIFT: f64 = -0.002;
/// Calm sessions kept between a stress spell and the crash, so the crash stays its own event.
const STRESS_GAP_BEFORE_CRASH: usize = 20;

/// News jumps (earnings surprises, approvals, scandals): daily chance per stock by market, and
/// the range of their log size. They are what sends a stock to the daily limit now and then.
const JUMP_CHANCE_KOSPI: f64 = 0.000_5;
const JUMP_CHANCE_KOSDAQ: f64 = 0.001_5;
const JUMP_SIZE: (f64, f64) = (0.08, 0.40);

/// Daily volatility range of sector factors and the KOSDAQ factor's volatility.
const SECTOR_VOL: (f64, f64) = (0.005, 0.010);
const KOSDAQ_FACTOR_VOL: f64 = 0.006;

/// Prices are nudged back inside this range (won) so tick rounding never freezes a path at a
/// few won and prices stay far inside `u32`; the hard cap only bounds freak paths.
const PRICE_FLOOR: f64 = 500.0;
const PRICE_CEILING: f64 = 3_000_000.0;
const PRICE_PULL: f64 = 0.01;
const PRICE_CAP: f64 = 100_000_000.0;

/// Volume: persistence and noise of the log-volume AR(1), and its stationary variance.
const VOLUME_AR: f64 = 0.6;
const VOLUME_NOISE: f64 = 0.45;
const VOLUME_LOG_VAR: f64 = VOLUME_NOISE * VOLUME_NOISE / (1.0 - VOLUME_AR * VOLUME_AR);
/// Extra volume per standard deviation of the day's move, capped at ten deviations.
const VOLUME_PER_MOVE: f64 = 1.2;

/// Stream tags: every factor and instrument draws from its own stream (see [`Rng::stream`]).
const STREAM_MARKET: u64 = 1;
const STREAM_KOSDAQ: u64 = 2;
const STREAM_SECTOR: u64 = 1 << 32;
const STREAM_PROFILE: u64 = 2 << 32;
const STREAM_PATH: u64 = 3 << 32;

/// Common factor returns for every session.
#[derive(Debug, Clone)]
pub struct Factors {
    /// Daily log return of the market factor.
    pub market: Vec<f64>,
    /// Extra factor shared by KOSDAQ names (small-cap / growth tilt).
    pub kosdaq: Vec<f64>,
    /// One daily log-return series per sector in [`super::universe::all_sectors`] order.
    pub sectors: Vec<Vec<f64>>,
    /// Multiplier on idiosyncratic volatility: 1 when calm, higher in a crash or stress spell.
    pub stress: Vec<f64>,
}

/// Per-session regime: volatility multiplier and drift of the market factor.
struct Regimes {
    mult: Vec<f64>,
    drift: Vec<f64>,
    crash: Range<usize>,
}

fn plan_regimes(rng: &mut Rng, n: usize) -> Regimes {
    let mut mult = vec![1.0; n];
    let mut drift = vec![MARKET_DRIFT; n];
    let start = ((n as f64 * CRASH_START) as usize).min(n);
    let len = CRASH_LEN.0 + rng.below(CRASH_LEN.1 - CRASH_LEN.0 + 1);
    let end = (start + len as usize).min(n);
    let crash = start..end;
    for t in crash.clone() {
        mult[t] = CRASH_VOL_MULT;
        drift[t] = 0.0;
    }
    let len = end - start;
    let rebound_end = (end + 2 * len).min(n);
    for t in end..rebound_end {
        drift[t] += REBOUND_SHARE * -CRASH_LOG_RETURN / (2 * len) as f64;
        mult[t] = 1.0 + (CRASH_VOL_MULT - 1.0) * exp(-((t - end + 1) as f64) / AFTERSHOCK_DECAY);
    }
    let calm_before = start.saturating_sub(STRESS_GAP_BEFORE_CRASH);
    let mut t = 0;
    while t < n {
        let calm = t < calm_before || t >= rebound_end;
        if calm && rng.chance(STRESS_CHANCE) {
            let spell = (STRESS_LEN.0 + rng.below(STRESS_LEN.1 - STRESS_LEN.0 + 1)) as usize;
            let stop = if t < calm_before { (t + spell).min(calm_before) } else { (t + spell).min(n) };
            for d in t..stop {
                mult[d] = STRESS_VOL_MULT;
                drift[d] = STRESS_DRIFT;
            }
            t = stop;
        } else {
            t += 1;
        }
    }
    Regimes { mult, drift, crash }
}

/// The crash window for `n` sessions under `seed`, for tests that look at it.
#[cfg(test)]
pub fn crash_window(seed: u64, n: usize) -> Range<usize> {
    plan_regimes(&mut Rng::stream(seed, STREAM_MARKET), n).crash
}

/// Next GARCH(1,1) variance after standardised shock `z` at variance `h`. The shock's square is
/// capped at 4² because with fat-tailed shocks one 10σ day would otherwise multiply the variance
/// tenfold for weeks; the regime multiplier stays out for the same reason.
#[inline]
fn garch_step(omega: f64, alpha: f64, beta: f64, h: f64, z: f64) -> f64 {
    omega + alpha * h * (z * z).min(GARCH_SHOCK_CAP * GARCH_SHOCK_CAP) + beta * h
}

#[inline]
fn capped_t4(rng: &mut Rng) -> f64 {
    rng.student_t4().clamp(-SHOCK_CAP, SHOCK_CAP)
}

impl Factors {
    /// Simulates the common factors for `n` sessions.
    pub fn simulate(seed: u64, n: usize, n_sectors: usize) -> Factors {
        let mut rng = Rng::stream(seed, STREAM_MARKET);
        let Regimes { mult, drift, crash } = plan_regimes(&mut rng, n);

        let (alpha, beta) = MARKET_GARCH;
        let var_long = MARKET_VOL * MARKET_VOL;
        let omega = var_long * (1.0 - alpha - beta);
        let mut h = var_long;
        let mut market = Vec::with_capacity(n);
        // How loud the whole market is today relative to normal; sectors move with it.
        let mut loudness = Vec::with_capacity(n);
        for t in 0..n {
            let z = capped_t4(&mut rng);
            market.push(drift[t] + mult[t] * h.sqrt() * z);
            loudness.push((h / var_long).sqrt() * (1.0 + (mult[t] - 1.0) / 2.0));
            h = garch_step(omega, alpha, beta, h, z);
        }
        if !crash.is_empty() {
            let realised: f64 = market[crash.clone()].iter().sum();
            let adjust = (CRASH_LOG_RETURN - realised) / crash.len() as f64;
            for r in &mut market[crash.clone()] {
                *r += adjust;
            }
        }

        let mut kq_rng = Rng::stream(seed, STREAM_KOSDAQ);
        let kosdaq = loudness.iter().map(|l| KOSDAQ_FACTOR_VOL * l * capped_t4(&mut kq_rng)).collect();
        let sectors = (0..n_sectors)
            .map(|s| {
                let mut r = Rng::stream(seed, STREAM_SECTOR + s as u64);
                let vol = r.range(SECTOR_VOL.0, SECTOR_VOL.1);
                loudness.iter().map(|l| vol * l * capped_t4(&mut r)).collect()
            })
            .collect();
        let stress = mult.iter().map(|m| 1.0 + (m - 1.0) / 8.0).collect();
        Factors { market, kosdaq, sectors, stress }
    }
}

/// What the seed decides about one instrument, drawn from its own stream.
#[derive(Debug, Clone, Copy)]
pub struct Profile {
    /// Price the day before the first session, before tick rounding.
    pub start_price: f64,
    /// Fixed shares outstanding, for index weights and volume.
    pub shares: u64,
    pub beta: f64,
    pub sector_loading: f64,
    pub kosdaq_loading: f64,
    /// Long-run daily idiosyncratic volatility.
    pub idio_vol: f64,
    /// Own daily log drift.
    pub drift: f64,
    /// Share of outstanding shares traded on a quiet day.
    pub turnover: f64,
    /// Daily chance of a news jump.
    pub jump_chance: f64,
}

impl Profile {
    pub fn draw(seed: u64, i: usize, market: Market) -> Profile {
        let mut r = Rng::stream(seed, STREAM_PROFILE + i as u64);
        let start_price = r.log_uniform(1_000.0, 500_000.0);
        let kospi = market == Market::Kospi;
        // KOSDAQ names are smaller, more volatile, higher-beta and more heavily traded.
        let beta = if kospi { r.range(0.7, 1.3) } else { r.range(0.8, 1.5) };
        let sector_loading = r.range(0.6, 1.4);
        let kosdaq_loading = if kospi { 0.0 } else { r.range(0.7, 1.3) };
        let idio_vol = if kospi { r.log_uniform(0.010, 0.020) } else { r.log_uniform(0.018, 0.032) };
        let alpha = r.range(-0.000_2, 0.000_2);
        let cap = if kospi { r.log_uniform(2e11, 1e13) } else { r.log_uniform(5e10, 2e12) };
        // Market cap and price are drawn independently, so cheap stocks have more shares and
        // trade more of them, as on the real exchange.
        let shares = (cap / start_price).clamp(1e6, 5e9).round() as u64;
        let turnover = if kospi { r.log_uniform(0.001, 0.012) } else { r.log_uniform(0.003, 0.04) };
        let jump_chance = if kospi { JUMP_CHANCE_KOSPI } else { JUMP_CHANCE_KOSDAQ };
        // Take each non-market source's variance drag out of the log drift, so a stock's expected
        // simple return is its market exposure plus a small own alpha. Without this, a
        // cap-weighted index over hundreds of volatile names compounds at 15-20% a year.
        let sector_vol = (SECTOR_VOL.0 + SECTOR_VOL.1) / 2.0;
        let (j_lo, j_hi) = JUMP_SIZE;
        let jump_second_moment = (j_hi * j_hi - j_lo * j_lo) / (2.0 * ln(j_hi / j_lo));
        let drag = idio_vol * idio_vol
            + (sector_loading * sector_vol) * (sector_loading * sector_vol)
            + (kosdaq_loading * KOSDAQ_FACTOR_VOL) * (kosdaq_loading * KOSDAQ_FACTOR_VOL)
            + jump_chance * jump_second_moment;
        let drift = alpha - drag / 2.0;
        Profile { start_price, shares, beta, sector_loading, kosdaq_loading, idio_vol, drift, turnover, jump_chance }
    }

    /// The reference price before the first session: the start price on the first session's grid.
    pub fn base_price(&self, first_session: NaiveDate, market: Market) -> i64 {
        nearest_tick(first_session, market, self.start_price)
    }
}

/// The valid price nearest `raw` (ties go down), at least one won and at most [`PRICE_CAP`].
///
/// Same grid as `krx::round_down_to_tick`/`round_up_to_tick` with one table look-up instead of
/// two: both use the tick of the unrounded price, and rounding up across a band boundary lands on
/// the boundary, which every tick table makes a multiple of the coarser tick.
fn nearest_tick(date: NaiveDate, market: Market, raw: f64) -> i64 {
    let raw = raw.clamp(1.0, PRICE_CAP);
    // Truncation after adding ½ rounds a positive number without a libm call.
    let x = (raw + 0.5) as i64;
    let tick = krx::tick_size(date, market, x);
    let down = floor_to_multiple(x, tick);
    if down == x {
        return x;
    }
    let up = down + tick;
    if down >= 1 && raw - down as f64 <= up as f64 - raw { down } else { up }
}

/// `x` rounded down to a multiple of `tick`, for `x ≥ 0`. KRX ticks are a handful of constants;
/// spelling them out lets the compiler replace a slow 64-bit division with a multiplication in
/// this per-bar path.
#[inline]
fn floor_to_multiple(x: i64, tick: i64) -> i64 {
    match tick {
        1 => x,
        5 => x - x % 5,
        10 => x - x % 10,
        50 => x - x % 50,
        100 => x - x % 100,
        500 => x - x % 500,
        1_000 => x - x % 1_000,
        _ => x - x % tick.max(1),
    }
}

/// The lowest valid price at or above `x` (like `krx::round_up_to_tick`, see [`nearest_tick`]).
#[inline]
fn tick_at_or_above(date: NaiveDate, market: Market, x: i64) -> i64 {
    let x = x.max(1);
    let tick = krx::tick_size(date, market, x);
    let down = floor_to_multiple(x, tick);
    if down == x { x } else { down + tick }
}

/// The highest valid price at or below `x`, at least one won (like `krx::round_down_to_tick`).
#[inline]
fn tick_at_or_below(date: NaiveDate, market: Market, x: i64) -> i64 {
    let x = x.max(1);
    floor_to_multiple(x, krx::tick_size(date, market, x)).max(1)
}

/// `⌈x⌉` for `x ≥ 0` without a libm call.
#[inline]
fn ceil_positive(x: f64) -> i64 {
    let t = x as i64;
    if (t as f64) < x { t + 1 } else { t }
}

/// Everything one instrument's path needs besides its own stream.
pub struct PathInputs<'a> {
    pub seed: u64,
    pub index: usize,
    pub market: Market,
    pub sector: usize,
    pub profile: &'a Profile,
    pub sessions: &'a [NaiveDate],
    pub factors: &'a Factors,
}

/// Fills `out` (one bar per session) with instrument `index`'s path.
pub fn simulate_path(p: &PathInputs<'_>, out: &mut [RawBar]) {
    let PathInputs { seed, index, market, sector, profile: pr, sessions, factors: f } = *p;
    let Some(first) = sessions.first() else { return };
    let mut rng = Rng::stream(seed, STREAM_PATH + index as u64);
    let (alpha, beta) = IDIO_GARCH;
    let var_long = pr.idio_vol * pr.idio_vol;
    let omega = var_long * (1.0 - alpha - beta);
    let mut h = var_long;
    let mut log_volume = 0.0;
    let base_volume = pr.shares as f64 * pr.turnover;
    let sector_returns = &f.sectors[sector];
    let mut prev = pr.base_price(*first, market);

    for (t, (bar, &date)) in out.iter_mut().zip(sessions).enumerate() {
        let prev_f = prev as f64;
        let pull = if prev_f < PRICE_FLOOR {
            PRICE_PULL * ln(PRICE_FLOOR / prev_f)
        } else if prev_f > PRICE_CEILING {
            -PRICE_PULL * ln(prev_f / PRICE_CEILING)
        } else {
            0.0
        };
        let own_vol = h.sqrt() * f.stress[t];
        let z = capped_t4(&mut rng);
        let eps = h.sqrt() * z;
        h = garch_step(omega, alpha, beta, h, z);
        let jump = if rng.chance(pr.jump_chance) {
            let size = rng.log_uniform(JUMP_SIZE.0, JUMP_SIZE.1);
            if rng.chance(0.5) { size } else { -size }
        } else {
            0.0
        };
        let x = pr.drift
            + pull
            + jump
            + pr.beta * f.market[t]
            + pr.sector_loading * sector_returns[t]
            + pr.kosdaq_loading * f.kosdaq[t]
            + f.stress[t] * eps;

        let band = krx::price_band(date, market, Price::new(prev).unwrap_or(Price::MIN));
        let (lo, hi) = (band.lower.get(), band.upper_orderable.get());
        let close = nearest_tick(date, market, prev_f * exp(x)).clamp(lo, hi);
        // Part of the day's move happens overnight, so the open leans towards the close.
        let gap = (0.3 * x + 0.25 * own_vol * rng.normal()).max(-0.5);
        let open = nearest_tick(date, market, prev_f * (1.0 + gap)).clamp(lo, hi);
        // High and low reach beyond the open and close by half-normal fractions of the price,
        // rounded outwards onto the grid.
        let up = 0.5 * own_vol * rng.normal().abs();
        let down = (0.5 * own_vol * rng.normal().abs()).min(0.9);
        let top = open.max(close);
        let bottom = open.min(close);
        let high_raw = (top as f64 * (1.0 + up)).min(PRICE_CAP);
        let high = tick_at_or_above(date, market, ceil_positive(high_raw)).clamp(top, hi);
        let low_raw = bottom as f64 * (1.0 - down);
        let low = tick_at_or_below(date, market, low_raw as i64).clamp(lo, bottom);

        let move_sd = ((close - prev).abs() as f64 / prev_f) / pr.idio_vol;
        log_volume = VOLUME_AR * log_volume + VOLUME_NOISE * rng.normal();
        let volume = base_volume * exp(log_volume - VOLUME_LOG_VAR / 2.0) * (1.0 + VOLUME_PER_MOVE * move_sd.min(10.0));
        *bar = RawBar {
            open: open as u32,
            high: high as u32,
            low: low as u32,
            close: close as u32,
            // Truncation after adding ½ rounds a positive number; `as` saturates at the ends.
            volume: ((volume + 0.5) as u64).max(1),
        };
        prev = close;
    }
}

/// Running cap-weighted sums for one index. Sums are exact integers (shares × price in `u128`),
/// so the index does not depend on the order members are added in.
#[derive(Debug, Clone)]
pub struct IndexAcc {
    members: usize,
    open: Vec<u128>,
    high: Vec<u128>,
    low: Vec<u128>,
    close: Vec<u128>,
    volume: Vec<u64>,
}

/// An index's daily bars, values rounded to hundredths as published.
#[derive(Debug, Clone, PartialEq)]
pub struct IndexBars {
    pub open: Vec<f64>,
    pub high: Vec<f64>,
    pub low: Vec<f64>,
    pub close: Vec<f64>,
    pub volume: Vec<u64>,
}

/// Members peak and bottom at different times of day, so the index's intraday range is narrower
/// than its members' summed ranges; it keeps this share of the summed excursion.
const INDEX_RANGE_SHARE: f64 = 0.5;

impl IndexAcc {
    pub fn new(n: usize) -> IndexAcc {
        IndexAcc {
            members: 0,
            open: vec![0; n],
            high: vec![0; n],
            low: vec![0; n],
            close: vec![0; n],
            volume: vec![0; n],
        }
    }

    pub fn is_empty(&self) -> bool {
        self.members == 0
    }

    /// Adds one member with its shares outstanding and bars (one per session).
    pub fn add(&mut self, shares: u64, bars: impl Iterator<Item = RawBar>) {
        let w = u128::from(shares);
        self.members += 1;
        for (t, b) in bars.enumerate().take(self.close.len()) {
            self.open[t] += w * u128::from(b.open);
            self.high[t] += w * u128::from(b.high);
            self.low[t] += w * u128::from(b.low);
            self.close[t] += w * u128::from(b.close);
            self.volume[t] = self.volume[t].saturating_add(b.volume);
        }
    }

    /// The index, scaled so that the first session closes at exactly `level` (the base date).
    pub fn finish(&self, level: f64) -> IndexBars {
        let n = self.close.len();
        let scale = level / self.close.first().copied().unwrap_or(0).max(1) as f64;
        let cents = |v: f64| (v * 100.0).round() / 100.0;
        let mut bars = IndexBars {
            open: Vec::with_capacity(n),
            high: Vec::with_capacity(n),
            low: Vec::with_capacity(n),
            close: Vec::with_capacity(n),
            volume: self.volume.clone(),
        };
        for t in 0..n {
            let o = self.open[t] as f64 * scale;
            let c = self.close[t] as f64 * scale;
            let top = o.max(c);
            let bottom = o.min(c);
            let h = top + INDEX_RANGE_SHARE * (self.high[t] as f64 * scale - top);
            let l = bottom - INDEX_RANGE_SHARE * (bottom - self.low[t] as f64 * scale);
            // Rounding is monotone, so low ≤ open, close ≤ high survives it.
            bars.open.push(cents(o));
            bars.high.push(cents(h));
            bars.low.push(cents(l));
            bars.close.push(cents(c));
        }
        bars
    }
}
