//! Korea Investment & Securities (KIS) Open API for Haechi.
//!
//! - [`KisClient`]: typed REST calls (quotes, period bars, stock info, financials, cash orders,
//!   balance, orderable amount, daily fills) with the behaviour every KIS wrapper's users ask for:
//!   one shared, persisted access token ([`token`]), a rate limiter shared across processes
//!   ([`limiter`]), retries with backoff on rate-limit answers and transient failures, one re-issue
//!   on an expired token, and real-money orders refused unless explicitly allowed.
//! - [`ws`]: the `H0STCNT0` real-time trade feed with reconnect and resubscription.
//! - [`fake`] (feature `fake`): a KIS look-alike over a synthetic market, for tests and the demo.
//!
//! The specification this follows is `shared/kis/KIS_API.md` (paths, headers and parameter names
//! as in KIS's own Postman collection; the newer order TR ids).

pub mod client;
pub mod config;
pub mod error;
pub mod frame;
pub mod limiter;
pub mod model;
pub mod token;
pub mod wire;
pub mod ws;

#[cfg(feature = "fake")]
pub mod fake;

pub use client::{KisClient, RawArchive, RawResponse};
pub use config::{Account, AccountTr, Credentials, KisConfig, KisEnv, Secret};
pub use error::{KisError, codes};

/// A boxed future, for the object-safe store and limiter traits.
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

/// Milliseconds since the Unix epoch.
#[must_use]
pub fn now_ms() -> i64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_millis() as i64)
}

/// The current time (chrono's `clock` feature is left out of the build).
#[must_use]
pub fn utc_now() -> chrono::DateTime<chrono::Utc> {
    chrono::DateTime::from_timestamp_millis(now_ms()).unwrap_or_default()
}
