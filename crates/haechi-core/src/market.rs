//! Tickers, markets and daily bars.

use crate::money::Price;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A KRX short code: six ASCII characters, digits or upper-case letters (`005930`, `0001A0`).
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Ticker([u8; 6]);

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TickerError {
    #[error("ticker {0:?} must be exactly 6 characters (a KRX short code such as 005930)")]
    Length(String),
    #[error("ticker {0:?} may contain only digits and upper-case letters")]
    Character(String),
}

impl Ticker {
    /// Parses a KRX short code.
    ///
    /// # Errors
    /// [`TickerError`] when the code is not six digits or upper-case ASCII letters.
    pub fn parse(s: &str) -> Result<Ticker, TickerError> {
        let b = s.as_bytes();
        if b.len() != 6 {
            return Err(TickerError::Length(s.to_owned()));
        }
        if !b.iter().all(|c| c.is_ascii_digit() || c.is_ascii_uppercase()) {
            return Err(TickerError::Character(s.to_owned()));
        }
        let mut out = [0u8; 6];
        out.copy_from_slice(b);
        Ok(Ticker(out))
    }

    #[must_use]
    pub fn as_str(&self) -> &str {
        // Only ASCII is ever stored, so this cannot fail; the fallback keeps it panic-free.
        std::str::from_utf8(&self.0).unwrap_or("??????")
    }
}

impl FromStr for Ticker {
    type Err = TickerError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Ticker::parse(s)
    }
}
impl TryFrom<String> for Ticker {
    type Error = TickerError;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Ticker::parse(&s)
    }
}
impl From<Ticker> for String {
    fn from(t: Ticker) -> String {
        t.as_str().to_owned()
    }
}
impl fmt::Display for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
impl fmt::Debug for Ticker {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Ticker({})", self.as_str())
    }
}

/// The KRX market an instrument trades on. ETFs trade on KOSPI but follow their own tick and
/// tax rules, so they are a market of their own here.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum Market {
    Kospi,
    Kosdaq,
    Konex,
    Etf,
}

impl Market {
    pub const ALL: [Market; 4] = [Market::Kospi, Market::Kosdaq, Market::Konex, Market::Etf];

    #[must_use]
    pub const fn as_str(self) -> &'static str {
        match self {
            Market::Kospi => "KOSPI",
            Market::Kosdaq => "KOSDAQ",
            Market::Konex => "KONEX",
            Market::Etf => "ETF",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown market {0:?}: expected KOSPI, KOSDAQ, KONEX or ETF")]
pub struct UnknownMarket(pub String);

impl FromStr for Market {
    type Err = UnknownMarket;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Market::ALL
            .into_iter()
            .find(|m| m.as_str().eq_ignore_ascii_case(s.trim()))
            .ok_or_else(|| UnknownMarket(s.to_owned()))
    }
}
impl fmt::Display for Market {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One day of trading for one instrument. `low <= open, close <= high` always holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bar {
    pub date: NaiveDate,
    open: Price,
    high: Price,
    low: Price,
    close: Price,
    volume: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BarError {
    #[error("low {low} is above high {high}")]
    LowAboveHigh { low: i64, high: i64 },
    #[error("{field} {value} lies outside the day's range {low}..={high}")]
    OutsideRange { field: &'static str, value: i64, low: i64, high: i64 },
}

impl Bar {
    /// Builds a bar, checking that open and close lie within `low..=high`.
    ///
    /// # Errors
    /// [`BarError`] naming the inconsistent field.
    pub fn new(
        date: NaiveDate,
        open: Price,
        high: Price,
        low: Price,
        close: Price,
        volume: u64,
    ) -> Result<Bar, BarError> {
        let (l, h) = (low.get(), high.get());
        if l > h {
            return Err(BarError::LowAboveHigh { low: l, high: h });
        }
        for (field, p) in [("open", open), ("close", close)] {
            if !(l..=h).contains(&p.get()) {
                return Err(BarError::OutsideRange { field, value: p.get(), low: l, high: h });
            }
        }
        Ok(Bar { date, open, high, low, close, volume })
    }

    #[must_use]
    pub const fn open(&self) -> Price {
        self.open
    }
    #[must_use]
    pub const fn high(&self) -> Price {
        self.high
    }
    #[must_use]
    pub const fn low(&self) -> Price {
        self.low
    }
    #[must_use]
    pub const fn close(&self) -> Price {
        self.close
    }
    #[must_use]
    pub const fn volume(&self) -> u64 {
        self.volume
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticker_accepts_krx_codes() {
        assert_eq!(Ticker::parse("005930").unwrap().as_str(), "005930");
        assert_eq!(Ticker::parse("0001A0").unwrap().to_string(), "0001A0");
    }

    #[test]
    fn ticker_rejects_malformed_codes() {
        assert!(matches!(Ticker::parse("5930"), Err(TickerError::Length(_))));
        assert!(matches!(Ticker::parse("0059300"), Err(TickerError::Length(_))));
        assert!(matches!(Ticker::parse("00593a"), Err(TickerError::Character(_))));
        assert!(matches!(Ticker::parse("00 930"), Err(TickerError::Character(_))));
        assert!(matches!(Ticker::parse("삼성"), Err(TickerError::Character(_))));
        assert!(matches!(Ticker::parse("삼성전자"), Err(TickerError::Length(_))));
    }

    #[test]
    fn market_parses_case_insensitively() {
        assert_eq!("kosdaq".parse::<Market>().unwrap(), Market::Kosdaq);
        assert_eq!(" KOSPI ".parse::<Market>().unwrap(), Market::Kospi);
        assert!("NASDAQ".parse::<Market>().is_err());
    }

    #[test]
    fn bar_rejects_open_outside_range() {
        let d = NaiveDate::from_ymd_opt(2024, 1, 2).unwrap();
        let p = |v| Price::new(v).unwrap();
        assert!(Bar::new(d, p(100), p(110), p(90), p(105), 1).is_ok());
        assert_eq!(
            Bar::new(d, p(89), p(110), p(90), p(105), 1),
            Err(BarError::OutsideRange { field: "open", value: 89, low: 90, high: 110 })
        );
        assert!(matches!(Bar::new(d, p(100), p(90), p(110), p(100), 1), Err(BarError::LowAboveHigh { .. })));
    }
}
