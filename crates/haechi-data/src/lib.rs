//! Market data for Haechi: CSV import into the columnar [`MarketStore`] and a deterministic
//! synthetic KRX market for the demo and benchmarks.
//!
//! [`MarketStore`]: haechi_core::MarketStore
pub mod csv;
pub mod rng;
pub mod synth;
