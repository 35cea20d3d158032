//! Money, prices, quantities and rates.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::ops::{Add, AddAssign, Neg, Sub, SubAssign};

/// An amount of Korean won. Whole won only: KRX has no smaller unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Won(pub i64);

impl Won {
    pub const ZERO: Won = Won(0);

    #[must_use]
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl Add for Won {
    type Output = Won;
    fn add(self, rhs: Won) -> Won {
        Won(self.0 + rhs.0)
    }
}
impl Sub for Won {
    type Output = Won;
    fn sub(self, rhs: Won) -> Won {
        Won(self.0 - rhs.0)
    }
}
impl AddAssign for Won {
    fn add_assign(&mut self, rhs: Won) {
        self.0 += rhs.0;
    }
}
impl SubAssign for Won {
    fn sub_assign(&mut self, rhs: Won) {
        self.0 -= rhs.0;
    }
}
impl Neg for Won {
    type Output = Won;
    fn neg(self) -> Won {
        Won(-self.0)
    }
}
impl fmt::Display for Won {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", group_thousands(self.0))
    }
}

/// Formats an integer with `,` every three digits, as Korean brokers display won.
#[must_use]
pub fn group_thousands(v: i64) -> String {
    let digits = v.unsigned_abs().to_string();
    let mut out = String::with_capacity(digits.len() + digits.len() / 3 + 1);
    if v < 0 {
        out.push('-');
    }
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// A price per share in won. Always positive.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "i64", into = "i64")]
pub struct Price(i64);

impl Price {
    /// One won, the smallest price.
    pub const MIN: Price = Price(1);

    /// Returns `None` unless `won > 0`.
    #[must_use]
    pub const fn new(won: i64) -> Option<Price> {
        if won > 0 { Some(Price(won)) } else { None }
    }

    #[must_use]
    pub const fn get(self) -> i64 {
        self.0
    }

    /// The value of `qty` shares at this price.
    #[must_use]
    pub const fn times(self, qty: Quantity) -> Won {
        Won(self.0 * qty.0 as i64)
    }
}

impl TryFrom<i64> for Price {
    type Error = String;
    fn try_from(v: i64) -> Result<Self, Self::Error> {
        Price::new(v).ok_or_else(|| format!("price must be positive, got {v}"))
    }
}
impl From<Price> for i64 {
    fn from(p: Price) -> i64 {
        p.0
    }
}
impl fmt::Display for Price {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", group_thousands(self.0))
    }
}

/// A number of shares. KRX trades in lots of one share.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Quantity(pub u64);

impl Quantity {
    pub const ZERO: Quantity = Quantity(0);

    #[must_use]
    pub const fn get(self) -> u64 {
        self.0
    }

    #[must_use]
    pub const fn is_zero(self) -> bool {
        self.0 == 0
    }
}

/// A rate in parts per billion, so that 0.0140527% (KIS's online commission) is exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default, Serialize, Deserialize)]
#[serde(transparent)]
pub struct Rate(u64);

impl Rate {
    pub const ZERO: Rate = Rate(0);
    const SCALE: u64 = 1_000_000_000;

    #[must_use]
    pub const fn from_ppb(ppb: u64) -> Rate {
        Rate(ppb)
    }

    /// Basis points to a rate: `bps(15)` is 0.15%.
    #[must_use]
    pub const fn from_bps(bps: u64) -> Rate {
        Rate(bps * 100_000)
    }

    /// A fraction such as `0.00015` (0.015%), rounded to the nearest part per billion.
    /// Returns `None` for negative, non-finite or absurd (> 100%) fractions.
    #[must_use]
    pub fn from_fraction(f: f64) -> Option<Rate> {
        if !f.is_finite() || !(0.0..=1.0).contains(&f) {
            return None;
        }
        // Fractions arrive from config as f64; rounding to ppb removes binary noise
        // (0.00015 * 1e9 = 150000.00000000003).
        Some(Rate((f * Self::SCALE as f64).round() as u64))
    }

    #[must_use]
    pub const fn ppb(self) -> u64 {
        self.0
    }

    #[must_use]
    pub fn as_fraction(self) -> f64 {
        self.0 as f64 / Self::SCALE as f64
    }

    /// The charge on `amount`, truncated to the won (원 미만 절사). Negative amounts charge nothing.
    #[must_use]
    pub const fn charge(self, amount: Won) -> Won {
        if amount.0 <= 0 {
            return Won(0);
        }
        // i128 keeps amount × ppb exact for any won amount an i64 can hold.
        Won(((amount.0 as i128 * self.0 as i128) / Self::SCALE as i128) as i64)
    }
}

impl Add for Rate {
    type Output = Rate;
    fn add(self, rhs: Rate) -> Rate {
        Rate(self.0 + rhs.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charge_truncates_to_the_won() {
        // 0.015% of 1,234,567 = 185.185... → 185
        assert_eq!(Rate::from_fraction(0.00015).unwrap().charge(Won(1_234_567)), Won(185));
        // KIS online commission, 0.0140527% of 10,000,000 = 1,405.27 → 1,405
        assert_eq!(Rate::from_ppb(140_527).charge(Won(10_000_000)), Won(1_405));
        assert_eq!(Rate::from_bps(20).charge(Won(-5)), Won(0));
    }

    #[test]
    fn rate_from_fraction_rejects_nonsense() {
        assert!(Rate::from_fraction(-0.1).is_none());
        assert!(Rate::from_fraction(f64::NAN).is_none());
        assert!(Rate::from_fraction(1.5).is_none());
        assert_eq!(Rate::from_fraction(0.00015), Some(Rate::from_ppb(150_000)));
    }

    #[test]
    fn price_must_be_positive() {
        assert!(Price::new(0).is_none());
        assert!(Price::new(-1).is_none());
        assert_eq!(Price::new(5).unwrap().times(Quantity(3)), Won(15));
    }

    #[test]
    fn thousands_are_grouped() {
        assert_eq!(group_thousands(0), "0");
        assert_eq!(group_thousands(1_000), "1,000");
        assert_eq!(group_thousands(-12_345_678), "-12,345,678");
        assert_eq!(group_thousands(999), "999");
    }
}
