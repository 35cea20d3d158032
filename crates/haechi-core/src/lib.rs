//! Haechi's domain types and the Korea Exchange (KRX) rules they obey.
//!
//! Everything here is pure: no I/O, no clock, no randomness. Types are built through
//! constructors that reject invalid values, so a [`Ticker`], [`Price`] or [`Quantity`] in hand
//! is always valid. Money is whole won in `i64` ([`Won`]); rates are integer parts per billion
//! ([`Rate`]) so every charge is computed exactly and truncated to the won, as brokers do.
//!
//! ```
//! use haechi_core::{krx, Market, Price};
//! use chrono::NaiveDate;
//!
//! let day = NaiveDate::from_ymd_opt(2024, 3, 4).unwrap();
//! // KRX's own worked example: base 9,940 won moves at most 2,980 won either way.
//! let band = krx::price_band(day, Market::Kospi, Price::new(9_940).unwrap());
//! assert_eq!((band.lower.get(), band.upper.get()), (6_960, 12_920));
//! assert_eq!(krx::tick_size(day, Market::Kosdaq, 166_500), 100);
//! ```

pub mod calendar;
pub mod intraday;
pub mod krx;
pub mod ledger;
pub mod market;
pub mod money;
pub mod order;
pub mod platform;
pub mod pretrade;
pub mod store;

pub use calendar::TradingCalendar;
pub use ledger::{Ledger, LedgerError, Position};
pub use market::{Bar, BarError, Market, Ticker, TickerError};
pub use money::{Price, Quantity, Rate, Won};
pub use order::{Fill, Order, OrderId, OrderKind, OrderStatus, RejectReason, Side};
pub use store::{CalendarSource, IndexSeries, Instrument, MarketStore, RawBar, StoreBuilder, StoreError};
