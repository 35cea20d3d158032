//! Market data for Haechi: CSV import into the columnar [`MarketStore`] and a deterministic
//! synthetic KRX market for the demo and benchmarks, and the import of real KRX data.
//!
//! [`MarketStore`]: haechi_core::MarketStore
pub mod csv;
pub mod krx_import;
pub mod rng;
pub mod synth;
