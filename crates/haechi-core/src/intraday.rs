//! A synthetic intraday session consistent with a daily bar, for the fake KIS stream and the
//! demo: the first print is the open (the opening auction), the last the close (the closing
//! call), the path touches the high and the low in between, every price is on the tick grid
//! inside [low, high], and the prints' volumes add up to the bar's volume.
//! Deterministic: the same bar, steps and seed give the same path.

use crate::store::RawBar;
use crate::{Market, Price, krx};
use chrono::{NaiveDate, NaiveTime};

/// One print of a replayed session.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tick {
    /// 0 for the opening print, `steps − 1` for the closing call.
    pub step: u32,
    pub price: Price,
    pub volume: u64,
}

/// Fewest steps a path can have: open, high, low, close.
pub const MIN_STEPS: u32 = 4;

/// When step `step` of `steps` prints, in KST: the opening auction at 09:00, the continuous
/// prints spread evenly to 15:20, the closing call's print at 15:30.
#[must_use]
pub fn step_time(step: u32, steps: u32) -> NaiveTime {
    let n = steps.max(MIN_STEPS);
    let secs = if step + 1 >= n {
        15 * 3600 + 30 * 60
    } else {
        // 09:00 to 15:20 is 380 minutes over the n − 2 gaps before the closing call.
        9 * 3600 + u64::from(step) * 380 * 60 / u64::from(n - 2)
    };
    NaiveTime::from_num_seconds_from_midnight_opt(u32::try_from(secs).unwrap_or(0), 0).unwrap_or(NaiveTime::MIN)
}

/// The session's prints, `steps` of them (at least [`MIN_STEPS`]); none for a bar without
/// volume (a halted name does not print).
#[must_use]
pub fn session_path(day: NaiveDate, market: Market, bar: RawBar, steps: u32, seed: u64) -> Vec<Tick> {
    if bar.volume == 0 || bar.high == 0 {
        return Vec::new();
    }
    let n = steps.max(MIN_STEPS) as usize;
    let mut rng = SplitMix(seed ^ u64::from(bar.open).rotate_left(17) ^ u64::from(bar.close));
    let (low, high) = (i64::from(bar.low.min(bar.high)), i64::from(bar.high.max(bar.low)));
    let clamp = |p: i64| p.clamp(low, high);
    // Where the high and the low print: two distinct inner steps, in a random order.
    let a = 1 + rng.below(n as u64 - 2) as usize;
    let mut b = 1 + rng.below(n as u64 - 3) as usize;
    if b >= a {
        b += 1;
    }
    let mut points = vec![(0, clamp(i64::from(bar.open))), (a, high), (b, low), (n - 1, clamp(i64::from(bar.close)))];
    points.sort_unstable_by_key(|p| p.0);
    let mut prices = vec![0_i64; n];
    for w in points.windows(2) {
        let ((i0, p0), (i1, p1)) = (w[0], w[1]);
        for (i, slot) in prices.iter_mut().enumerate().take(i1 + 1).skip(i0) {
            let t = (i - i0) as f64 / (i1 - i0).max(1) as f64;
            let line = p0 as f64 + (p1 - p0) as f64 * t;
            // Noise that vanishes at the waypoints, so they keep their exact prices.
            let wiggle = (rng.unit() - 0.5) * (high - low) as f64 * 0.2 * (t * (1.0 - t) * 4.0);
            *slot = clamp((line + wiggle).round() as i64);
        }
    }
    for (i, p) in points {
        prices[i] = p;
    }
    // U-shaped volume: the open and the close trade the most.
    let weights: Vec<f64> = (0..n)
        .map(|i| {
            let x = i as f64 / (n - 1) as f64;
            (1.0 + 3.0 * (2.0 * x - 1.0).powi(2)) * (0.5 + rng.unit())
        })
        .collect();
    let total: f64 = weights.iter().sum();
    let mut left = bar.volume;
    let mut ticks = Vec::with_capacity(n);
    for (i, (p, w)) in prices.into_iter().zip(weights).enumerate() {
        let v = if i + 1 == n { left } else { ((bar.volume as f64 * w / total) as u64).min(left) };
        left -= v;
        ticks.push(Tick { step: i as u32, price: on_grid(day, market, p, low, high), volume: v });
    }
    ticks
}

/// The tick-grid price nearest below `p` that stays inside [low, high] (a back-adjusted bar's
/// own prices can be off the grid: then they are kept as printed).
fn on_grid(day: NaiveDate, market: Market, p: i64, low: i64, high: i64) -> Price {
    let down = krx::round_down_to_tick(day, market, p);
    let q = if down.get() >= low { down.get() } else { krx::round_up_to_tick(day, market, p).get().min(high) };
    let q = if q < low || q > high { p } else { q };
    Price::new(q).unwrap_or(Price::MIN)
}

/// SplitMix64: small, fast, and good enough for a synthetic path.
#[derive(Debug, Clone)]
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1_u64 << 53) as f64
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn day() -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 3, 4).unwrap_or_default()
    }

    proptest! {
        #[test]
        fn a_path_is_faithful_to_its_bar(
            low in 1_000_u32..200_000, spread in 0_u32..40, o in 0.0_f64..1.0, c in 0.0_f64..1.0,
            volume in 1_u64..5_000_000, steps in 4_u32..200, seed in any::<u64>(),
        ) {
            // A bar on the grid, as the exchange prints them.
            let g = |x: f64| krx::round_down_to_tick(day(), Market::Kospi, x as i64).get() as u32;
            let low = krx::round_up_to_tick(day(), Market::Kospi, i64::from(low)).get() as u32;
            let high = g(f64::from(low) * (1.0 + f64::from(spread) / 100.0)).max(low);
            let mid = |u: f64| g(f64::from(low) + f64::from(high - low) * u).max(low);
            let bar = RawBar { open: mid(o), high, low, close: mid(c), volume };
            let path = session_path(day(), Market::Kospi, bar, steps, seed);
            prop_assert_eq!(path.len(), steps as usize);
            prop_assert_eq!(path[0].price.get(), i64::from(bar.open));
            prop_assert_eq!(path[path.len() - 1].price.get(), i64::from(bar.close));
            prop_assert!(path.iter().any(|t| t.price.get() == i64::from(high)));
            prop_assert!(path.iter().any(|t| t.price.get() == i64::from(low)));
            prop_assert_eq!(path.iter().map(|t| t.volume).sum::<u64>(), volume);
            for t in &path {
                prop_assert!(t.price.get() >= i64::from(low) && t.price.get() <= i64::from(high));
                prop_assert!(krx::is_on_tick(day(), Market::Kospi, t.price));
            }
            prop_assert_eq!(&path, &session_path(day(), Market::Kospi, bar, steps, seed));
        }
    }

    #[test]
    fn steps_print_from_the_open_to_the_closing_call() {
        let hm = |h, m| NaiveTime::from_hms_opt(h, m, 0).unwrap_or(NaiveTime::MIN);
        assert_eq!(step_time(0, 78), hm(9, 0));
        assert_eq!(step_time(1, 78), hm(9, 5));
        assert_eq!(step_time(76, 78), hm(15, 20));
        assert_eq!(step_time(77, 78), hm(15, 30));
        let times: Vec<_> = (0..10).map(|s| step_time(s, 10)).collect();
        assert!(times.windows(2).all(|w| w[0] < w[1]), "{times:?}");
    }

    #[test]
    fn a_halted_name_does_not_print() {
        let bar = RawBar { open: 100, high: 100, low: 100, close: 100, volume: 0 };
        assert!(session_path(day(), Market::Kospi, bar, 10, 1).is_empty());
    }
}
