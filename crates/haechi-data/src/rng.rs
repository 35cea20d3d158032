//! A small pseudo-random generator, fixed forever, and the portable math its distributions need.
//!
//! The synthetic market must come out byte-identical for a given seed on every platform and with
//! every future toolchain. So nothing here leans on a crate whose stream may change between
//! releases, nor on the platform's `libm`, whose `exp` and `ln` may differ in the last bit from
//! one system to the next:
//!
//! * the generator is xoshiro256** seeded through SplitMix64 (Blackman and Vigna's public-domain
//!   algorithms, fully pinned by their reference code and by the known-answer test below);
//! * [`exp`] and [`ln`] use only `+ − × ÷` and `sqrt`, which IEEE 754 requires to be correctly
//!   rounded, and Rust never fuses a multiply and an add unless asked to, so every result is
//!   reproducible bit for bit;
//! * normal deviates come from the ziggurat method, whose tables are built at first use from
//!   those same functions, so no trigonometry or platform math is involved.

/// A stream of pseudo-random numbers (xoshiro256**). Not for cryptography.
#[derive(Debug, Clone)]
pub struct Rng {
    s: [u64; 4],
}

/// Layers of the normal ziggurat, its base layer's right edge, and the area of each layer
/// (Marsaglia and Tsang, "The Ziggurat Method for Generating Random Variables", 2000).
const ZIG_LAYERS: usize = 128;
const ZIG_R: f64 = 3.442_619_855_899;
const ZIG_V: f64 = 9.912_563_035_262_17e-3;

/// Layer edges `x[i]` (decreasing, `x[128] = 0`) and the share `x[i+1]/x[i]` of layer `i` that
/// lies wholly under the density.
#[derive(Debug)]
struct Ziggurat {
    x: [f64; ZIG_LAYERS + 1],
    ratio: [f64; ZIG_LAYERS],
}

/// The tables, built once with this module's own `exp`, `ln` and `sqrt`, so they are the same
/// bits everywhere.
fn ziggurat() -> &'static Ziggurat {
    static TABLES: std::sync::OnceLock<Ziggurat> = std::sync::OnceLock::new();
    TABLES.get_or_init(|| {
        let mut x = [0.0; ZIG_LAYERS + 1];
        let mut f = exp(-0.5 * ZIG_R * ZIG_R);
        // The base layer is the rectangle under x[1] plus the tail; its notional width makes its
        // area V like every other layer's.
        x[0] = ZIG_V / f;
        x[1] = ZIG_R;
        for i in 2..ZIG_LAYERS {
            x[i] = (-2.0 * ln(ZIG_V / x[i - 1] + f)).sqrt();
            f = exp(-0.5 * x[i] * x[i]);
        }
        let mut ratio = [0.0; ZIG_LAYERS];
        for (i, r) in ratio.iter_mut().enumerate() {
            *r = x[i + 1] / x[i];
        }
        Ziggurat { x, ratio }
    })
}

const GOLDEN_GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a strong 64-bit mixer.
const fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

impl Rng {
    /// A generator seeded from one number.
    #[must_use]
    pub fn new(seed: u64) -> Rng {
        let mut x = seed;
        let mut next = || {
            x = x.wrapping_add(GOLDEN_GAMMA);
            mix64(x)
        };
        // SplitMix64 never yields four zeros in a row, so the state is never all-zero.
        let s = [next(), next(), next(), next()];
        Rng { s }
    }

    /// An independent stream for one `(seed, stream)` pair. Giving every instrument and factor
    /// its own stream keeps, say, instrument 7's prices the same however many instruments are
    /// generated after it.
    #[must_use]
    pub fn stream(seed: u64, stream: u64) -> Rng {
        Rng::new(mix64(seed ^ mix64(stream.wrapping_add(GOLDEN_GAMMA))))
    }

    /// The next 64 random bits.
    #[inline]
    pub fn next_u64(&mut self) -> u64 {
        let s = &mut self.s;
        let result = s[1].wrapping_mul(5).rotate_left(7).wrapping_mul(9);
        let t = s[1] << 17;
        s[2] ^= s[0];
        s[3] ^= s[1];
        s[1] ^= s[2];
        s[0] ^= s[3];
        s[2] ^= t;
        s[3] = s[3].rotate_left(45);
        result
    }

    /// Uniform on `[0, 1)` with 53 random bits.
    #[inline]
    pub fn uniform(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on the open interval `(0, 1)`, safe to take the logarithm of.
    #[inline]
    pub fn open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform on `[lo, hi)`.
    #[inline]
    pub fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.uniform()
    }

    /// Log-uniform on `[lo, hi)`: every decade equally likely. Both bounds must be positive.
    pub fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        lo * exp(self.uniform() * ln(hi / lo))
    }

    /// Uniform integer in `0..n` (0 when `n == 0`), without modulo bias (Lemire's method).
    pub fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            return 0;
        }
        let threshold = n.wrapping_neg() % n;
        loop {
            let m = u128::from(self.next_u64()) * u128::from(n);
            if (m as u64) >= threshold {
                return (m >> 64) as u64;
            }
        }
    }

    /// `true` with probability `p`.
    #[inline]
    pub fn chance(&mut self, p: f64) -> bool {
        self.uniform() < p
    }

    /// Standard normal deviate (Marsaglia and Tsang's ziggurat, 128 layers, in Doornik's
    /// variant that takes the layer and the uniform from one 64-bit draw). About 99% of draws
    /// cost one multiply and one comparison.
    pub fn normal(&mut self) -> f64 {
        let zig = ziggurat();
        loop {
            let bits = self.next_u64();
            let layer = (bits & 0x7f) as usize;
            // Top 53 bits as a uniform on [-1, 1).
            let u = 2.0 * ((bits >> 11) as f64 * (1.0 / (1u64 << 53) as f64)) - 1.0;
            if u.abs() < zig.ratio[layer] {
                return u * zig.x[layer];
            }
            if layer == 0 {
                return self.normal_tail(u < 0.0);
            }
            let x = u * zig.x[layer];
            let f0 = exp(-0.5 * (zig.x[layer] * zig.x[layer] - x * x));
            let f1 = exp(-0.5 * (zig.x[layer + 1] * zig.x[layer + 1] - x * x));
            if f1 + self.uniform() * (f0 - f1) < 1.0 {
                return x;
            }
        }
    }

    /// A draw from the normal tail beyond the base layer's edge (Marsaglia's tail method).
    fn normal_tail(&mut self, negative: bool) -> f64 {
        loop {
            let x = -ln(self.open01()) / ZIG_R;
            let y = -ln(self.open01());
            if y + y > x * x {
                return if negative { -(ZIG_R + x) } else { ZIG_R + x };
            }
        }
    }

    /// Student-t with 4 degrees of freedom, scaled to unit variance (t₄ itself has variance 2).
    ///
    /// Bailey's polar method (Math. Comp. 62, 1994): for (U, V) uniform in the unit disc and
    /// W = U² + V², U·√(ν(W^(−2/ν) − 1)/W) is t-distributed with ν degrees of freedom; with ν = 4
    /// it needs only square roots. Four degrees of freedom match the tails of daily stock
    /// returns: the fourth moment is infinite, so large samples show heavy excess kurtosis.
    pub fn student_t4(&mut self) -> f64 {
        loop {
            let u = 2.0 * self.uniform() - 1.0;
            let v = 2.0 * self.uniform() - 1.0;
            let w = u * u + v * v;
            if w > 0.0 && w < 1.0 {
                // (4/2)·(1/√W − 1)/W: the ν = 4 formula with the 1/√2 scaling folded in.
                return u * (2.0 * (1.0 / w.sqrt() - 1.0) / w).sqrt();
            }
        }
    }
}

// fdlibm's constants, given as bits exactly as its source lists them.
const LN2_HI: f64 = f64::from_bits(0x3fe6_2e42_fee0_0000); // 0.6931471803691238
const LN2_LO: f64 = f64::from_bits(0x3dea_39ef_3579_3c76); // 1.9082149292705877e-10
const LOG2_E: f64 = core::f64::consts::LOG2_E;
const SQRT2: f64 = core::f64::consts::SQRT_2;

/// Rounds to a nearby integer. `f64::round` is exact too, but without SSE4.1 it is a call into
/// libm in the hot loop; any nearby integer serves the range reductions below.
#[inline]
fn round_to_int(x: f64) -> i64 {
    if x >= 0.0 { (x + 0.5) as i64 } else { (x - 0.5) as i64 }
}

/// `2^k` for `k` in `-1022..=1023`, built from its bits.
#[inline]
fn pow2(k: i64) -> f64 {
    f64::from_bits(((k + 1023) as u64) << 52)
}

/// `e^x`, portable to the last bit (see the module docs), within an ulp or so of the true value.
/// Arguments are clamped to `[-708, 709]`, where the result stays a normal finite number.
///
/// The method is fdlibm's `e_exp.c` (Sun Microsystems, freely redistributable): reduce to
/// `x = k·ln2 + r` with `|r| ≤ ln2/2`, then a rational approximation of `e^r`.
#[must_use]
pub fn exp(x: f64) -> f64 {
    const P1: f64 = f64::from_bits(0x3fc5_5555_5555_553e); // 0.16666666666666602
    const P2: f64 = f64::from_bits(0xbf66_c16c_16be_bd93); // -0.0027777777777015593
    const P3: f64 = f64::from_bits(0x3f11_566a_af25_de2c); // 6.613756321437934e-05
    const P4: f64 = f64::from_bits(0xbebb_bd41_c5d2_6bf1); // -1.6533902205465252e-06
    const P5: f64 = f64::from_bits(0x3e66_3769_72be_a4d0); // 4.1381367970572385e-08
    if x.is_nan() {
        return x;
    }
    let x = x.clamp(-708.0, 709.0);
    let k = round_to_int(x * LOG2_E);
    let kf = k as f64;
    // LN2_HI has trailing zero bits, so kf·LN2_HI is exact and `hi` carries no rounding error.
    let hi = x - kf * LN2_HI;
    let lo = kf * LN2_LO;
    let r = hi - lo;
    let t = r * r;
    let c = r - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
    let y = 1.0 - ((lo - (r * c) / (2.0 - c)) - hi);
    // The clamp keeps k within -1021..=1023; y lies in [0.7, 1.42], so y·2^k stays finite and
    // normal.
    y * pow2(k)
}

/// Natural logarithm, portable to the last bit (see the module docs), within an ulp or so.
/// Returns `-inf` for zero and `NaN` for negative or non-finite input; subnormal input is treated
/// as zero, which no caller here produces.
///
/// The method is fdlibm's `e_log.c`: split `x = m·2^k` with `m` in `[√½, √2)` and approximate
/// `ln m` by a polynomial in `s = (m−1)/(m+1)`.
#[must_use]
pub fn ln(x: f64) -> f64 {
    const LG1: f64 = f64::from_bits(0x3fe5_5555_5555_5593); // 0.6666666666666735
    const LG2: f64 = f64::from_bits(0x3fd9_9999_9997_fa04); // 0.3999999999940942
    const LG3: f64 = f64::from_bits(0x3fd2_4924_9422_9359); // 0.2857142874366239
    const LG4: f64 = f64::from_bits(0x3fcc_71c5_1d8e_78af); // 0.22222198432149784
    const LG5: f64 = f64::from_bits(0x3fc7_4664_96cb_03de); // 0.1818357216161805
    const LG6: f64 = f64::from_bits(0x3fc3_9a09_d078_c69f); // 0.15313837699209373
    const LG7: f64 = f64::from_bits(0x3fc2_f112_df3e_5244); // 0.14798198605116586
    if x.is_nan() || x < 0.0 || x.is_infinite() {
        return f64::NAN;
    }
    if x < f64::MIN_POSITIVE {
        return f64::NEG_INFINITY;
    }
    let bits = x.to_bits();
    let mut k = ((bits >> 52) & 0x7ff) as i64 - 1023;
    let mut m = f64::from_bits((bits & 0x000f_ffff_ffff_ffff) | 0x3ff0_0000_0000_0000);
    if m > SQRT2 {
        m *= 0.5;
        k += 1;
    }
    let f = m - 1.0;
    let s = f / (2.0 + f);
    let z = s * s;
    let w = z * z;
    let t1 = w * (LG2 + w * (LG4 + w * LG6));
    let t2 = z * (LG1 + w * (LG3 + w * (LG5 + w * LG7)));
    let r = t2 + t1;
    let hfsq = 0.5 * f * f;
    let kf = k as f64;
    kf * LN2_HI - ((hfsq - (s * (hfsq + r) + kf * LN2_LO)) - f)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Pins the algorithm: if these change, every synthetic market changes with them.
    #[test]
    fn xoshiro_stream_is_pinned() {
        let mut r = Rng::new(0);
        // SplitMix64's published first outputs for seed 0.
        assert_eq!(r.s, [0xe220_a839_7b1d_cdaf, 0x6e78_9e6a_a1b9_65f4, 0x06c4_5d18_8009_454f, 0xf88b_b8a8_724c_81ec]);
        let got: Vec<u64> = (0..3).map(|_| r.next_u64()).collect();
        assert_eq!(got, PINNED_SEED0, "{got:#x?}");
        let mut a = Rng::stream(42, 1);
        let mut b = Rng::stream(42, 2);
        assert_ne!(a.next_u64(), b.next_u64());
    }
    const PINNED_SEED0: [u64; 3] = [11_091_344_671_253_066_420, 13_793_997_310_169_335_082, 1_900_383_378_846_508_768];

    #[test]
    fn exp_and_ln_agree_with_std_to_a_few_ulps() {
        let mut r = Rng::new(7);
        for _ in 0..100_000 {
            let x = r.range(-50.0, 50.0);
            let (mine, std) = (exp(x), x.exp());
            assert!(((mine - std) / std).abs() < 3e-16, "exp({x}) = {mine}, std {std}");
            let y = r.log_uniform(1e-150, 1e150);
            let (mine, std) = (ln(y), y.ln());
            assert!((mine - std).abs() <= 3e-16 * std.abs().max(1e-3), "ln({y}) = {mine}, std {std}");
        }
        for x in [1e-300, 1e-20, 0.5, 0.999_999, 1.000_001, 2.0, 1e20, f64::MAX] {
            assert!((ln(x) - x.ln()).abs() <= 3e-16 * x.ln().abs().max(1e-3), "ln({x})");
        }
        assert_eq!(exp(0.0), 1.0);
        assert_eq!(ln(1.0), 0.0);
        assert!(exp(1e6).is_finite() && exp(-1e6) > 0.0);
        assert!(ln(-1.0).is_nan() && ln(0.0) == f64::NEG_INFINITY);
    }

    #[test]
    fn normal_and_t4_have_unit_variance_and_t4_is_fat_tailed() {
        let mut r = Rng::new(3);
        let n = 400_000;
        let moments = |xs: &[f64]| {
            let m = xs.iter().sum::<f64>() / xs.len() as f64;
            let v = xs.iter().map(|x| (x - m).powi(2)).sum::<f64>() / xs.len() as f64;
            let k = xs.iter().map(|x| (x - m).powi(4)).sum::<f64>() / xs.len() as f64 / (v * v);
            (m, v, k - 3.0)
        };
        let zs: Vec<f64> = (0..n).map(|_| r.normal()).collect();
        let (m, v, k) = moments(&zs);
        assert!(m.abs() < 0.01 && (v - 1.0).abs() < 0.01 && k.abs() < 0.05, "normal {m} {v} {k}");
        // The ziggurat's slow paths (layer edges and the tail beyond 3.44) must carry the right mass.
        let beyond = |c: f64| zs.iter().filter(|z| z.abs() > c).count() as f64 / n as f64;
        assert!((beyond(1.0) / 0.317_31 - 1.0).abs() < 0.02, "{}", beyond(1.0));
        assert!((beyond(2.0) / 0.045_50 - 1.0).abs() < 0.05, "{}", beyond(2.0));
        assert!((beyond(3.442_6) / 0.000_576 - 1.0).abs() < 0.25, "{}", beyond(3.442_6));
        let ts: Vec<f64> = (0..n).map(|_| r.student_t4()).collect();
        let (m, v, k) = moments(&ts);
        assert!(m.abs() < 0.01 && (v - 1.0).abs() < 0.1 && k > 3.0, "t4 {m} {v} {k}");
        // t₄'s distribution function in closed form: F(t) = ½ + ¾x − ¼x³ with x = t/√(t² + 4).
        let upper_tail = |a: f64| {
            let t = a * std::f64::consts::SQRT_2;
            let x = t / (t * t + 4.0).sqrt();
            0.5 - 0.75 * x + 0.25 * x * x * x
        };
        for a in [0.5, 1.0, 2.0, 4.0] {
            let got = ts.iter().filter(|t| **t > a).count() as f64 / n as f64;
            assert!((got / upper_tail(a) - 1.0).abs() < 0.1, "P(t > {a}) = {got}, want {}", upper_tail(a));
        }
    }

    #[test]
    fn below_is_in_range_and_covers_it() {
        let mut r = Rng::new(9);
        let mut seen = [0u32; 7];
        for _ in 0..7_000 {
            seen[r.below(7) as usize] += 1;
        }
        assert!(seen.iter().all(|c| (800..1200).contains(c)), "{seen:?}");
        assert_eq!(r.below(0), 0);
    }
}
