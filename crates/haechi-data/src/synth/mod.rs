//! A deterministic synthetic Korean stock market, for the demo, tests and benchmarks.
//!
//! [`generate`] builds a [`MarketStore`] of KOSPI and KOSDAQ stocks whose daily bars obey KRX's
//! rules and look statistically like the real thing; [`write_dir`] saves it as CSV files.
//! The same [`SynthConfig`] always gives the same market, byte for byte, on every platform:
//! randomness comes from the crate's own fixed generator and portable math ([`crate::rng`]).
//!
//! ```no_run
//! use haechi_data::synth::{generate, write_dir, SynthConfig, INDEX_KOSPI};
//! use chrono::NaiveDate;
//!
//! let cfg = SynthConfig {
//!     seed: 7,
//!     tickers: 200,
//!     from: NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
//!     to: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
//! };
//! let store = generate(&cfg)?;
//! assert!(store.index(INDEX_KOSPI).is_some());
//! write_dir(&store, &cfg, std::path::Path::new("synthetic"))?;
//! # Ok::<(), haechi_data::synth::SynthError>(())
//! ```
//!
//! # The universe
//!
//! Instrument `i` has ticker `100010 + 10·i` (100010, 100020, …), trades on KOSPI when
//! `i % 5` is 0, 1 or 3 and on KOSDAQ otherwise (60/40), belongs to a KRX industry dealt out in
//! turn from its market's list, and has a made-up company name built from a folklore stem and a
//! sector-flavoured ending (해치전자, 청룡바이오). None of this depends on the seed.
//!
//! # Returns
//!
//! A stock's daily log return is
//!
//! ```text
//! x = μᵢ + βᵢ·m + λᵢ·sₖ + κᵢ·q + σᵢ,ₜ·ε + J
//! ```
//!
//! * `m`, the market factor: GARCH(1,1) variance (volatility clusters) driving Student-t shocks
//!   with 4 degrees of freedom (fat tails), about 17.5% a year in calm times;
//! * `sₖ`, the stock's sector factor, and `q`, a factor shared by KOSDAQ names, both scaled by the
//!   market's current volatility so that everything gets louder together;
//! * `ε`, idiosyncratic Student-t noise whose variance follows its own GARCH(1,1);
//! * `J`, a rare news jump of 8–40% either way (about every 8 years for a KOSPI name, 2.7 for a
//!   KOSDAQ one), which is what takes a stock to its daily limit now and then;
//! * `βᵢ`, `λᵢ`, `κᵢ`, `σᵢ` drawn per stock from the seed, KOSDAQ names getting higher betas and
//!   idiosyncratic volatility; the drift `μᵢ` is a small random alpha less the variance drag of
//!   the non-market terms, so that a cap-weighted index of volatile names does not compound
//!   unrealistically fast.
//!
//! **Regimes.** A crash starts 40% of the way into the period and lasts 15–40 sessions (the seed
//! picks): market volatility triples, idiosyncratic volatility rises a quarter (correlations go
//! up in a crash), and the market factor is bridged to fall by exactly 42% (log −0.55) over the
//! window whatever its shocks did. The market then regains about a third of the fall while
//! volatility decays. Shorter stress spells (5–15 sessions, doubled volatility, negative drift)
//! strike at random about once a year outside the crash. Over 300 seeds of two-year periods with
//! 40 instruments, KS11's worst peak-to-trough drawdown ranged from 34% to 77% (median 49%); with
//! 10 instruments it never fell below 27%. With only a handful of members one stock can dominate
//! the index and soften the fall.
//!
//! # Prices, volumes and indices
//!
//! Each close is the previous close × e^x, rounded to the nearest valid tick for that date and
//! market (the 2023-01-25 tick reform applies by date) and clamped into the daily price band
//! computed from the previous close (±30%, or ±15% before 2015-06-15). The open is the previous
//! close moved by an overnight gap that leans towards the day's move; high and low extend beyond
//! the open and close by half-normal excursions, rounded outwards onto the grid and kept within the
//! band. Starting prices are log-uniform between 1,000 and 500,000 won; a gentle pull keeps
//! prices between about 500 won and 3 million won, so tick rounding never freezes a path. Volume is a fixed share of each stock's shares
//! outstanding times log-normal noise that persists from day to day, higher on big-move days;
//! since market cap and price are drawn independently, cheap stocks trade more shares. Every
//! instrument trades every session.
//!
//! KS11 and KQ11 are cap-weighted over each market's members with fixed shares outstanding. The
//! first session is the base date: KS11 closes it at exactly 2,000.00 and KQ11 at 700.00. The
//! index's open, high and low come from the members' (high and low keep half of the members'
//! summed excursion, since members do not all peak at the same moment); its volume is the
//! members' total. An index whose market has no members (fewer than three instruments) is left
//! out.
//!
//! # Calendar
//!
//! [`synth_sessions`] takes weekdays less the fixed-date Korean market holidays and the year-end
//! closing day. Lunar holidays (설날, 추석, 부처님오신날), substitute holidays, election days and
//! one-off closures are not modelled, so a synthetic year has a few more sessions than a real one.

mod model;
mod universe;
mod write;

#[cfg(test)]
mod tests;

use chrono::{Datelike, NaiveDate, Weekday};
use haechi_core::{IndexSeries, Instrument, Market, MarketStore, RawBar, StoreBuilder, StoreError, TickerError};
use model::{Factors, IndexAcc, IndexBars, PathInputs, Profile};
use serde::{Deserialize, Serialize};
use std::path::PathBuf;

pub use universe::MAX_TICKERS;
pub use write::write_dir;

/// Name of the synthetic KOSPI index.
pub const INDEX_KOSPI: &str = "KS11";
/// Name of the synthetic KOSDAQ index.
pub const INDEX_KOSDAQ: &str = "KQ11";
/// Bumped whenever the same configuration would produce different data.
pub const GENERATOR_VERSION: u32 = 1;

/// Index levels on the base date, the first session.
const KOSPI_BASE_LEVEL: f64 = 2_000.0;
const KOSDAQ_BASE_LEVEL: f64 = 700.0;

/// What to generate. The same configuration always yields the same market.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct SynthConfig {
    pub seed: u64,
    /// Number of instruments, 1 ..= [`MAX_TICKERS`].
    pub tickers: usize,
    /// First calendar day (inclusive).
    pub from: NaiveDate,
    /// Last calendar day (inclusive).
    pub to: NaiveDate,
}

/// Why a synthetic market could not be generated or written.
#[derive(Debug, thiserror::Error)]
pub enum SynthError {
    #[error("tickers must be between 1 and {MAX_TICKERS}, got {0}")]
    Tickers(usize),
    #[error("the period starts ({from}) after it ends ({to})")]
    Period { from: NaiveDate, to: NaiveDate },
    #[error("no trading sessions between {from} and {to}")]
    NoSessions { from: NaiveDate, to: NaiveDate },
    /// [`write_dir`] was handed a store that the configuration does not describe; its index bars
    /// could not be rebuilt faithfully.
    #[error("the store was not generated from this configuration: {0}")]
    StoreMismatch(String),
    /// A name or sector would need CSV quoting; generated ones never do.
    #[error("{field} {value:?} contains a comma, quote or line break and cannot go into an unquoted CSV field")]
    Unquotable { field: &'static str, value: String },
    /// Reading or writing `path` (a file or a directory) failed.
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot start a generator thread: {0}")]
    Thread(#[source] std::io::Error),
    #[error(transparent)]
    Json(#[from] serde_json::Error),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Ticker(#[from] TickerError),
}

/// Fixed-date holidays on which KRX is closed, as (month, day).
const FIXED_HOLIDAYS: [(u32, u32); 9] = [
    (1, 1),   // 신정
    (3, 1),   // 삼일절
    (5, 1),   // 근로자의 날: not a public holiday, but the exchange closes
    (5, 5),   // 어린이날
    (6, 6),   // 현충일
    (8, 15),  // 광복절
    (10, 3),  // 개천절
    (10, 9),  // 한글날
    (12, 25), // 성탄절
];

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

/// The year-end closing day (연말 휴장일): the last weekday of December.
fn is_year_end_closing(d: NaiveDate) -> bool {
    if d.month() != 12 || d.day() < 29 {
        return false;
    }
    // Only weekends can lie between `d` and December 31 when `d` is the last weekday.
    let mut next = d;
    while let Some(n) = next.succ_opt() {
        if n.year() != d.year() {
            break;
        }
        if !is_weekend(n) {
            return false;
        }
        next = n;
    }
    true
}

/// Synthetic trading sessions from `from` to `to`, both inclusive: weekdays less the fixed-date
/// holidays (1/1, 3/1, 5/1, 5/5, 6/6, 8/15, 10/3, 10/9, 12/25) and the year-end closing day (the
/// last weekday of December). Lunar and substitute holidays are not modelled.
#[must_use]
pub fn synth_sessions(from: NaiveDate, to: NaiveDate) -> Vec<NaiveDate> {
    let mut out = Vec::new();
    let mut d = from;
    while d <= to {
        let holiday = FIXED_HOLIDAYS.contains(&(d.month(), d.day()));
        if !is_weekend(d) && !holiday && !is_year_end_closing(d) {
            out.push(d);
        }
        match d.succ_opt() {
            Some(n) => d = n,
            None => break,
        }
    }
    out
}

fn validate(cfg: &SynthConfig) -> Result<Vec<NaiveDate>, SynthError> {
    if cfg.tickers == 0 || cfg.tickers > MAX_TICKERS {
        return Err(SynthError::Tickers(cfg.tickers));
    }
    if cfg.from > cfg.to {
        return Err(SynthError::Period { from: cfg.from, to: cfg.to });
    }
    let sessions = synth_sessions(cfg.from, cfg.to);
    if sessions.is_empty() {
        return Err(SynthError::NoSessions { from: cfg.from, to: cfg.to });
    }
    Ok(sessions)
}

/// Per-market index accumulators, KOSPI first.
struct Indices {
    kospi: IndexAcc,
    kosdaq: IndexAcc,
}

impl Indices {
    fn new(n: usize) -> Indices {
        Indices { kospi: IndexAcc::new(n), kosdaq: IndexAcc::new(n) }
    }

    fn acc(&mut self, market: Market) -> &mut IndexAcc {
        if market == Market::Kospi { &mut self.kospi } else { &mut self.kosdaq }
    }

    /// Finished bars of each index that has members, as (name, bars).
    fn finish(&self) -> Vec<(&'static str, IndexBars)> {
        let mut out = Vec::with_capacity(2);
        for (name, acc, level) in
            [(INDEX_KOSPI, &self.kospi, KOSPI_BASE_LEVEL), (INDEX_KOSDAQ, &self.kosdaq, KOSDAQ_BASE_LEVEL)]
        {
            if !acc.is_empty() {
                out.push((name, acc.finish(level)));
            }
        }
        out
    }
}

/// Generates the synthetic market described by `cfg`.
///
/// # Errors
/// [`SynthError::Tickers`] unless `1 <= cfg.tickers <= MAX_TICKERS`; [`SynthError::Period`] if
/// `from > to`; [`SynthError::NoSessions`] if no session falls in the period.
pub fn generate(cfg: &SynthConfig) -> Result<MarketStore, SynthError> {
    let threads = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    generate_with_threads(cfg, threads)
}

/// Instruments each thread simulates between hand-overs to the single-threaded store builder:
/// enough to amortise spawning, few enough that the shared buffer stays small.
const INSTRUMENTS_PER_THREAD: usize = 32;

/// What the path of one instrument needs besides the shared inputs.
struct Job {
    instrument: Instrument,
    profile: Profile,
    sector: usize,
}

/// [`generate`] on up to `threads` threads. Every instrument draws from its own random stream,
/// so the result is the same for any thread count.
fn generate_with_threads(cfg: &SynthConfig, threads: usize) -> Result<MarketStore, SynthError> {
    let sessions = validate(cfg)?;
    let n = sessions.len();
    let sectors = universe::all_sectors();
    let factors = Factors::simulate(cfg.seed, n, sectors.len());
    let mut builder = StoreBuilder::new(sessions.clone())?;
    // The synthetic market's sessions are its exchange's calendar.
    builder.exchange_calendar(haechi_core::TradingCalendar::new(sessions.clone()))?;
    builder.reserve(cfg.tickers);
    let mut indices = Indices::new(n);
    let threads = threads.clamp(1, cfg.tickers);
    let batch = threads * INSTRUMENTS_PER_THREAD;
    // One buffer reused for every batch: no allocation per bar.
    let mut bars = vec![RawBar::default(); batch.min(cfg.tickers) * n];
    let simulate = |first: usize, jobs: &[Job], out: &mut [RawBar]| {
        for (k, (job, path)) in jobs.iter().zip(out.chunks_mut(n)).enumerate() {
            let inputs = PathInputs {
                seed: cfg.seed,
                index: first + k,
                market: job.instrument.market,
                sector: job.sector,
                profile: &job.profile,
                sessions: &sessions,
                factors: &factors,
            };
            model::simulate_path(&inputs, path);
        }
    };
    let mut start = 0;
    while start < cfg.tickers {
        let count = batch.min(cfg.tickers - start);
        let mut jobs = Vec::with_capacity(count);
        for i in start..start + count {
            let instrument = universe::instrument(i)?;
            let profile = Profile::draw(cfg.seed, i, instrument.market);
            let sector = universe::sector_index(&sectors, &instrument.sector);
            jobs.push(Job { instrument, profile, sector });
        }
        let filled = &mut bars[..count * n];
        let per_thread = count.div_ceil(threads);
        std::thread::scope(|scope| -> Result<(), SynthError> {
            let mut parts = jobs.chunks(per_thread).zip(filled.chunks_mut(per_thread * n)).enumerate();
            // This thread takes the first share itself once the others are under way.
            let own = parts.next();
            for (p, (part_jobs, out)) in parts {
                let simulate = &simulate;
                std::thread::Builder::new()
                    .spawn_scoped(scope, move || simulate(start + p * per_thread, part_jobs, out))
                    .map_err(SynthError::Thread)?;
            }
            if let Some((_, (part_jobs, out))) = own {
                simulate(start, part_jobs, out);
            }
            Ok(())
        })?;
        for (job, path) in jobs.into_iter().zip(filled.chunks(n)) {
            indices.acc(job.instrument.market).add(job.profile.shares, path.iter().copied());
            builder.add(job.instrument, path.iter().copied().enumerate())?;
        }
        start += count;
    }
    for (name, index) in indices.finish() {
        builder.add_index(IndexSeries { name: name.to_owned(), close: index.close })?;
    }
    Ok(builder.build())
}

/// Rebuilds the index bars of a store generated from `cfg` (the store keeps only closes).
/// Checks first that the store is what `cfg` generates, instrument for instrument.
fn index_bars(store: &MarketStore, cfg: &SynthConfig) -> Result<Vec<(&'static str, IndexBars)>, SynthError> {
    let sessions = validate(cfg)?;
    if store.dates() != sessions.as_slice() {
        return Err(SynthError::StoreMismatch(format!(
            "{} sessions in the store, {} in the configuration's period",
            store.n_days(),
            sessions.len()
        )));
    }
    if store.n_instruments() != cfg.tickers {
        return Err(SynthError::StoreMismatch(format!(
            "{} instruments in the store, {} configured",
            store.n_instruments(),
            cfg.tickers
        )));
    }
    let n = sessions.len();
    let mut indices = Indices::new(n);
    for (i, inst) in store.instruments().iter().enumerate() {
        if inst.ticker.as_str() != universe::ticker_code(i) || inst.market != universe::market_of(i) {
            return Err(SynthError::StoreMismatch(format!("slot {i} holds {} on {}", inst.ticker, inst.market)));
        }
        let shares = Profile::draw(cfg.seed, i, inst.market).shares;
        let bars = (0..n).map(|t| store.raw(i, t).unwrap_or_default());
        indices.acc(inst.market).add(shares, bars);
    }
    let out = indices.finish();
    for (name, bars) in &out {
        if store.index(name).map(|s| s.close.as_slice()) != Some(bars.close.as_slice()) {
            return Err(SynthError::StoreMismatch(format!("index {name} differs from the one generated")));
        }
    }
    Ok(out)
}
