//! Loading daily market data from a directory of CSV files into a [`MarketStore`].
//!
//! # Layout
//!
//! ```text
//! data/
//!   005930.csv        one file per instrument, named after its ticker
//!   000660.csv
//!   instruments.csv   optional: names, markets, sectors
//!   index/KS11.csv    optional: benchmark indices
//! ```
//!
//! All files are UTF-8 CSV with a header line. A leading byte-order mark, `\r\n` line ends
//! and blank lines (anywhere) are tolerated. Header names are matched trimmed and
//! case-insensitively, in any order; unknown columns are ignored but every row must have as
//! many fields as the header. Fields may be double-quoted RFC 4180 style (commas inside,
//! `""` for a quote) but may not span lines. Values are trimmed of surrounding spaces.
//!
//! ## `TICKER.csv`
//!
//! The file stem must be a KRX short code ([`Ticker`]: six digits or upper-case letters);
//! other `.csv` files in the directory are skipped with a warning (`instruments.csv` and
//! `calendar.csv` silently). Columns `date,open,high,low,close,volume`:
//!
//! * `date`: `YYYY-MM-DD`, strictly increasing down the file;
//! * `open`, `high`, `low`, `close`: whole won, `1..=4294967295` (zero is refused because
//!   the store reads `open == 0` as "no bar"; halted days are simply left out);
//! * `volume`: whole shares, `0..=u64::MAX`.
//!
//! Integers may carry a zero fraction (`50000.0`), as spreadsheet exports write them.
//! Back-adjusted histories round each price separately, so `low` can sit a few won above
//! `min(open, close)` or `high` below `max(open, close)`; such rows are clamped
//! (`low = min(low, open, close)`, `high = max(high, open, close)`), counted in
//! [`LoadReport::clamped_rows`] and warned about, not rejected.
//!
//! ## `instruments.csv`
//!
//! Columns `ticker,name,market,sector`; `ticker` and `market` are required. `market` is
//! `KOSPI`, `KOSDAQ`, `KONEX` or `ETF` in any case. A ticker may appear once. Rows for
//! tickers without a data file are ignored. A ticker whose market is unknown (no file, or no
//! row) is an error: KOSPI and KOSDAQ differ in ticks and taxes, so guessing would price and
//! tax it wrongly. [`LoadOptions::default_market`] opts in to one market for all of them
//! (their ticker as name, no sector), with a warning.
//!
//! ## `calendar.csv`
//!
//! The exchange's trading days: a `date` column (other columns are ignored), strictly
//! increasing (`haechi data synth` and `haechi data import-krx` write one). With it, the
//! store's sessions are the calendar's days from the first to the last loaded bar, so a day
//! on which every loaded name was halted is still a session (orders meet no bar and settlement
//! counts it), and a bar on a day the calendar omits is an error. Bars outside the calendar's
//! range extend it, with a warning; a calendar file without days counts as none. Without it, the sessions are the union of the bars'
//! dates, with a warning that reports repeat.
//!
//! ## `index/NAME.csv`
//!
//! Same header as a ticker file, but prices are decimals (`2501.53`) and only `date` and
//! `close` are required; `open`, `high`, `low` and `volume` may be empty. The series is
//! stored as [`IndexSeries`] `NAME`, aligned to the store's sessions: `NaN` where the
//! index has no row, rows on days no instrument traded ignored.
//!
//! # Sessions and errors
//!
//! Without a calendar the store's sessions are the sorted union of the dates of all kept
//! ticker rows. Loading
//! reports every problem across all files (up to 20 per file and 200 in all, then counts),
//! each as `path:line: column "name": message`.

mod error;
mod files;
pub(crate) mod reader;

pub use error::{LoadError, LoadErrorKind, LoadErrors, LoadWarning, WarningKind};

use chrono::{Datelike, NaiveDate};
use error::{MAX_WARNINGS, cap_total};
use files::{Bars, DayRange, IndexValues, Parsed, parse_index, parse_instruments, parse_stock, to_date};
use haechi_core::{IndexSeries, Instrument, Market, MarketStore, StoreBuilder, Ticker, TradingCalendar};
use serde::Serialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

const INSTRUMENTS_FILE: &str = "instruments.csv";
const CALENDAR_FILE: &str = "calendar.csv";
const INDEX_DIR: &str = "index";

/// What to load from a data directory.
#[derive(Debug, Clone, Default)]
pub struct LoadOptions {
    /// Load only these tickers (each must have a file); `None` loads every `TICKER.csv`.
    pub tickers: Option<Vec<Ticker>>,
    /// Keep only rows on or after this date. Rows outside the range are still validated.
    pub from: Option<NaiveDate>,
    /// Keep only rows on or before this date.
    pub to: Option<NaiveDate>,
    /// Directory of index files; default `<dir>/index`. A missing default directory means
    /// no indices; a missing explicit one is warned about.
    pub index_dir: Option<PathBuf>,
    /// Instruments file; default `<dir>/instruments.csv` if it exists. An explicit path
    /// must exist.
    pub instruments: Option<PathBuf>,
    /// Market of tickers missing from the instruments file; `None` makes them an error.
    pub default_market: Option<Market>,
    /// Trading-day file; default `<dir>/calendar.csv` if it exists. An explicit path must exist.
    pub calendar: Option<PathBuf>,
    /// Files parsed in parallel on this many threads; 0 = available parallelism.
    pub threads: usize,
}

/// A loaded store and what happened while loading it.
#[derive(Debug)]
pub struct Loaded {
    pub store: MarketStore,
    pub report: LoadReport,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadReport {
    /// Files read: ticker files, index files and the instruments file.
    pub files: usize,
    /// Bars stored (ticker rows inside the date range).
    pub rows: usize,
    /// Stored bars whose low or high had to be clamped around open and close.
    pub clamped_rows: usize,
    /// The first warnings, in file order.
    pub warnings: Vec<LoadWarning>,
    /// All warnings, including those not listed.
    pub warnings_total: usize,
}

/// Loads every ticker file in `dir` (or those in [`LoadOptions::tickers`]), the instruments
/// file and the index files into a [`MarketStore`]; see the [module docs](self) for formats.
///
/// # Errors
/// [`LoadErrors`] listing every problem found in every file; nothing is loaded if there is
/// any.
pub fn load_dir(dir: &Path, opts: &LoadOptions) -> Result<Loaded, LoadErrors> {
    let mut errors: Vec<LoadError> = Vec::new();
    let mut warnings: Vec<LoadWarning> = Vec::new();
    let mut files = 0usize;

    let instruments_path = match &opts.instruments {
        Some(p) => Some(p.clone()),
        None => Some(dir.join(INSTRUMENTS_FILE)).filter(|p| p.is_file()),
    };
    let calendar_path = match &opts.calendar {
        Some(p) => Some(p.clone()),
        None => Some(dir.join(CALENDAR_FILE)).filter(|p| p.is_file()),
    };
    let ticker_files = match &opts.tickers {
        Some(list) => requested_files(dir, list),
        None => scan_ticker_files(dir, instruments_path.as_deref(), &mut errors, &mut warnings),
    };
    let index_paths = index_files(dir, opts, &mut errors, &mut warnings);

    let instruments = match &instruments_path {
        Some(path) => match std::fs::read(path) {
            Ok(bytes) => {
                files += 1;
                let parsed = parse_instruments(path, &bytes);
                absorb(parsed, &mut errors, &mut warnings)
            }
            Err(e) => {
                errors.push(io_error(path, e));
                BTreeMap::new()
            }
        },
        None => BTreeMap::new(),
    };
    let calendar = calendar_path.as_ref().map(|path| match std::fs::read(path) {
        Ok(bytes) => {
            files += 1;
            (path.clone(), absorb(files::parse_calendar(path, &bytes), &mut errors, &mut warnings))
        }
        Err(e) => {
            errors.push(io_error(path, e));
            (path.clone(), Vec::new())
        }
    });

    let range = DayRange {
        from: opts.from.map_or(i32::MIN, |d| d.num_days_from_ce()),
        to: opts.to.map_or(i32::MAX, |d| d.num_days_from_ce()),
    };
    let jobs: Vec<Job> = ticker_files
        .into_iter()
        .map(|(t, p)| Job::Ticker(t, p))
        .chain(index_paths.into_iter().map(|(name, p)| Job::Index(name, p)))
        .collect();
    let Some(outcomes) = run_parallel(&jobs, opts.threads, |job| job.run(range)) else {
        errors.push(LoadError { path: dir.to_path_buf(), line: None, column: None, kind: LoadErrorKind::WorkerFailed });
        return Err(LoadErrors(cap_total(errors, dir)));
    };

    let mut stocks: Vec<(Ticker, PathBuf, Bars)> = Vec::new();
    let mut indices: Vec<(String, IndexValues)> = Vec::new();
    for (job, outcome) in jobs.into_iter().zip(outcomes) {
        match (job, outcome) {
            (_, Outcome::Unreadable(e)) => errors.push(e),
            (Job::Ticker(t, p), Outcome::Ticker(parsed)) => {
                files += 1;
                stocks.push((t, p, absorb(parsed, &mut errors, &mut warnings)));
            }
            (Job::Index(name, _), Outcome::Index(parsed)) => {
                files += 1;
                indices.push((name, absorb(parsed, &mut errors, &mut warnings)));
            }
            // `Job::run` answers each job with an outcome of its own kind.
            (Job::Ticker(..), Outcome::Index(_)) | (Job::Index(..), Outcome::Ticker(_)) => {}
        }
    }

    if opts.tickers.is_none() && stocks.is_empty() && errors.is_empty() {
        errors.push(LoadError {
            path: dir.to_path_buf(),
            line: None,
            column: None,
            kind: LoadErrorKind::NoTickerFiles,
        });
    }
    if !errors.is_empty() {
        return Err(LoadErrors(cap_total(errors, dir)));
    }

    unknown_markets(
        dir,
        &stocks,
        &instruments,
        instruments_path.is_some(),
        opts.default_market,
        &mut errors,
        &mut warnings,
    );
    let (dates, map) = match &calendar {
        Some((path, days)) if !days.is_empty() => calendar_sessions(path, days, &stocks, &mut errors, &mut warnings),
        // A calendar file with no day in it is no calendar.
        Some(_) => {
            if !stocks.is_empty() {
                warnings.push(LoadWarning { path: dir.to_path_buf(), line: None, kind: WarningKind::NoCalendar });
            }
            sessions(&stocks)
        }
        None => {
            if !stocks.is_empty() {
                warnings.push(LoadWarning { path: dir.to_path_buf(), line: None, kind: WarningKind::NoCalendar });
            }
            sessions(&stocks)
        }
    };
    if !errors.is_empty() {
        return Err(LoadErrors(cap_total(errors, dir)));
    }
    let report_rows: usize = stocks.iter().map(|(_, _, b)| b.days.len()).sum();
    let clamped_rows = stocks.iter().map(|(_, _, b)| b.clamped).sum();
    let exchange = calendar
        .filter(|(_, days)| !days.is_empty())
        .map(|(_, days)| TradingCalendar::new(days.iter().map(|d| to_date(*d)).collect()));
    let market = opts.default_market.unwrap_or(Market::Kospi);
    let store = build_store(dates, &map, exchange, stocks, indices, &instruments, market)
        .map_err(|kind| LoadErrors(vec![LoadError { path: dir.to_path_buf(), line: None, column: None, kind }]))?;

    let warnings_total = warnings.len();
    warnings.truncate(MAX_WARNINGS);
    Ok(Loaded { store, report: LoadReport { files, rows: report_rows, clamped_rows, warnings, warnings_total } })
}

fn absorb<T>(parsed: Parsed<T>, errors: &mut Vec<LoadError>, warnings: &mut Vec<LoadWarning>) -> T {
    errors.extend(parsed.errors);
    warnings.extend(parsed.warnings);
    parsed.data
}

fn io_error(path: &Path, e: std::io::Error) -> LoadError {
    LoadError { path: path.to_path_buf(), line: None, column: None, kind: LoadErrorKind::Io(e) }
}

/// Paths of explicitly requested tickers, sorted and deduplicated. Existence is checked
/// when reading, which is also where a missing file is reported.
fn requested_files(dir: &Path, list: &[Ticker]) -> Vec<(Ticker, PathBuf)> {
    let mut tickers = list.to_vec();
    tickers.sort_unstable();
    tickers.dedup();
    tickers.into_iter().map(|t| (t, dir.join(format!("{t}.csv")))).collect()
}

/// Every `*.csv` file in `dir`, sorted by ticker. Files whose stem is not a ticker are
/// warned about, except the instruments file.
fn scan_ticker_files(
    dir: &Path,
    instruments: Option<&Path>,
    errors: &mut Vec<LoadError>,
    warnings: &mut Vec<LoadWarning>,
) -> Vec<(Ticker, PathBuf)> {
    let mut found = Vec::new();
    for path in csv_files(dir, errors) {
        let is_instruments = instruments.is_some_and(|i| i == path)
            || path.file_name().is_some_and(|n| n.eq_ignore_ascii_case(INSTRUMENTS_FILE))
            || path.file_name().is_some_and(|n| n.eq_ignore_ascii_case(CALENDAR_FILE));
        if is_instruments {
            continue;
        }
        let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned()).unwrap_or_default();
        match Ticker::parse(&stem) {
            Ok(t) => found.push((t, path)),
            Err(e) => warnings.push(LoadWarning { path, line: None, kind: WarningKind::NotATicker(e.to_string()) }),
        }
    }
    found.sort();
    // `005930.csv` and `005930.CSV` can coexist on case-sensitive file systems.
    for pair in found.windows(2) {
        if let [(a, pa), (b, pb)] = pair
            && a == b
        {
            errors.push(LoadError {
                path: dir.to_path_buf(),
                line: None,
                column: None,
                kind: LoadErrorKind::DuplicateTickerFile(file_name(pa), file_name(pb), *a),
            });
        }
    }
    found.dedup_by(|a, b| a.0 == b.0);
    found
}

fn file_name(path: &Path) -> String {
    path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
}

/// Regular files in `dir` with a `.csv` extension (any case), unsorted.
fn csv_files(dir: &Path, errors: &mut Vec<LoadError>) -> Vec<PathBuf> {
    let entries = match std::fs::read_dir(dir) {
        Ok(entries) => entries,
        Err(e) => {
            errors.push(io_error(dir, e));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for entry in entries {
        match entry {
            Ok(entry) => {
                let path = entry.path();
                let is_csv = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("csv"));
                if is_csv && path.is_file() {
                    out.push(path);
                }
            }
            Err(e) => errors.push(io_error(dir, e)),
        }
    }
    out
}

/// Index files as `(NAME, path)`, sorted by name.
fn index_files(
    dir: &Path,
    opts: &LoadOptions,
    errors: &mut Vec<LoadError>,
    warnings: &mut Vec<LoadWarning>,
) -> Vec<(String, PathBuf)> {
    let index_dir = opts.index_dir.clone().unwrap_or_else(|| dir.join(INDEX_DIR));
    if !index_dir.is_dir() {
        if opts.index_dir.is_some() {
            warnings.push(LoadWarning { path: index_dir, line: None, kind: WarningKind::NoIndexDir });
        }
        return Vec::new();
    }
    let mut out: Vec<(String, PathBuf)> = csv_files(&index_dir, errors)
        .into_iter()
        .filter_map(|p| {
            let name = p.file_stem()?.to_string_lossy().into_owned();
            (!name.is_empty()).then_some((name, p))
        })
        .collect();
    out.sort();
    out
}

enum Job {
    Ticker(Ticker, PathBuf),
    Index(String, PathBuf),
}

enum Outcome {
    Unreadable(LoadError),
    Ticker(Parsed<Bars>),
    Index(Parsed<IndexValues>),
}

impl Job {
    fn run(&self, range: DayRange) -> Outcome {
        let (Job::Ticker(_, path) | Job::Index(_, path)) = self;
        let bytes = match std::fs::read(path) {
            Ok(bytes) => bytes,
            Err(e) => {
                let kind = match (self, e.kind()) {
                    (Job::Ticker(t, _), std::io::ErrorKind::NotFound) => LoadErrorKind::MissingTickerFile(*t),
                    _ => LoadErrorKind::Io(e),
                };
                return Outcome::Unreadable(LoadError { path: path.clone(), line: None, column: None, kind });
            }
        };
        match self {
            Job::Ticker(..) => Outcome::Ticker(parse_stock(path, &bytes, range)),
            Job::Index(..) => Outcome::Index(parse_index(path, &bytes, range)),
        }
    }
}

/// Runs `f` over `jobs` on up to `threads` threads (0 = available parallelism), returning
/// results in job order. Threads pull jobs from a shared counter so a few large files do
/// not leave the other threads idle; the calling thread works too, so a failure to spawn
/// only costs speed. `None` if a worker panicked.
fn run_parallel<J: Sync, R: Send>(jobs: &[J], threads: usize, f: impl Fn(&J) -> R + Sync) -> Option<Vec<R>> {
    let threads = match threads {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        n => n,
    }
    .min(jobs.len())
    .max(1);
    let next = AtomicUsize::new(0);
    let worker = || {
        let mut done = Vec::new();
        loop {
            let i = next.fetch_add(1, Ordering::Relaxed);
            let Some(job) = jobs.get(i) else { break };
            done.push((i, f(job)));
        }
        done
    };
    let mut slots: Vec<Option<R>> = std::iter::repeat_with(|| None).take(jobs.len()).collect();
    let mut place = |done: Vec<(usize, R)>| {
        for (i, r) in done {
            if let Some(slot) = slots.get_mut(i) {
                *slot = Some(r);
            }
        }
    };
    let all_joined = std::thread::scope(|s| {
        let handles: Vec<_> =
            (1..threads).filter_map(|_| std::thread::Builder::new().spawn_scoped(s, worker).ok()).collect();
        place(worker());
        let mut all_joined = true;
        for h in handles {
            match h.join() {
                Ok(done) => place(done),
                Err(_) => all_joined = false,
            }
        }
        all_joined
    });
    if !all_joined {
        return None;
    }
    slots.into_iter().collect()
}

/// Tickers whose market is unknown: errors, unless a default market was asked for, which
/// makes them warnings (one each when an instruments file exists, where a missing row is
/// likely a mistake; one in all when there is none).
fn unknown_markets(
    dir: &Path,
    stocks: &[(Ticker, PathBuf, Bars)],
    instruments: &BTreeMap<Ticker, Instrument>,
    have_file: bool,
    default: Option<Market>,
    errors: &mut Vec<LoadError>,
    warnings: &mut Vec<LoadWarning>,
) {
    if !have_file {
        let Some(first) = stocks.first().map(|s| s.0) else { return };
        let count = stocks.len();
        match default {
            Some(market) => warnings.push(LoadWarning {
                path: dir.to_path_buf(),
                line: None,
                kind: WarningKind::NoInstruments { count, market },
            }),
            None => errors.push(LoadError {
                path: dir.to_path_buf(),
                line: None,
                column: None,
                kind: LoadErrorKind::NoInstrumentsFile { count, first },
            }),
        }
        return;
    }
    for (t, path, _) in stocks {
        if !instruments.contains_key(t) {
            match default {
                Some(market) => warnings.push(LoadWarning {
                    path: path.clone(),
                    line: None,
                    kind: WarningKind::NotInInstruments(market),
                }),
                None => errors.push(LoadError {
                    path: path.clone(),
                    line: None,
                    column: None,
                    kind: LoadErrorKind::NotInInstrumentsFile(*t),
                }),
            }
        }
    }
}

/// Sessions from the exchange calendar: its days from the first to the last bar, plus bar
/// days after its end (warned about). A bar on a day inside the calendar's range that it
/// does not list is an error naming the file and the date (the first such date per file).
fn calendar_sessions(
    path: &Path,
    days: &[i32],
    stocks: &[(Ticker, PathBuf, Bars)],
    errors: &mut Vec<LoadError>,
    warnings: &mut Vec<LoadWarning>,
) -> (Vec<NaiveDate>, SessionMap) {
    let lo = stocks.iter().filter_map(|(_, _, b)| b.days.first()).min().copied();
    let hi = stocks.iter().filter_map(|(_, _, b)| b.days.last()).max().copied();
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return (Vec::new(), SessionMap { lo: 0, slot: Vec::new() });
    };
    // Callers pass a non-empty calendar (an empty file counts as none).
    let (cal_first, cal_last) = (days.first().copied().unwrap_or(i32::MAX), days.last().copied().unwrap_or(i32::MIN));
    let covered = |d: i32| (cal_first..=cal_last).contains(&d);
    for (_, file, b) in stocks {
        if let Some(bad) = b.days.iter().find(|d| covered(**d) && days.binary_search(d).is_err()) {
            errors.push(LoadError {
                path: file.clone(),
                line: None,
                column: Some("date"),
                kind: LoadErrorKind::NotATradingDay(to_date(*bad)),
            });
        }
    }
    let len = usize::try_from(i64::from(hi) - i64::from(lo) + 1).unwrap_or(0);
    let mut slot = vec![u32::MAX; len];
    let mut mark = |d: i32| {
        if let Some(s) = usize::try_from(d - lo).ok().and_then(|off| slot.get_mut(off)) {
            *s = 0;
        }
    };
    for &d in days.iter().filter(|d| (lo..=hi).contains(*d)) {
        mark(d);
    }
    let mut past = std::collections::BTreeSet::new();
    for (_, _, b) in stocks {
        for &d in b.days.iter().filter(|d| !covered(**d)) {
            past.insert(d);
            mark(d);
        }
    }
    if !past.is_empty() {
        warnings.push(LoadWarning {
            path: path.to_path_buf(),
            line: None,
            kind: WarningKind::PastCalendar { count: past.len(), first: to_date(cal_first), last: to_date(cal_last) },
        });
    }
    let mut dates = Vec::new();
    for (off, s) in slot.iter_mut().enumerate() {
        if *s != u32::MAX {
            *s = u32::try_from(dates.len()).unwrap_or(u32::MAX);
            dates.push(to_date(lo + i32::try_from(off).unwrap_or(0)));
        }
    }
    (dates, SessionMap { lo, slot })
}

/// Session index of every day in `lo..=hi`, `u32::MAX` for days without a session.
/// Day numbers are bounded (years 0000–9999), so the table stays small even for absurd
/// ranges and turns the union and the alignment into O(rows) work without sorting.
struct SessionMap {
    lo: i32,
    slot: Vec<u32>,
}

impl SessionMap {
    fn get(&self, day: i32) -> Option<usize> {
        let off = usize::try_from(day.checked_sub(self.lo)?).ok()?;
        self.slot.get(off).filter(|s| **s != u32::MAX).map(|s| *s as usize)
    }
}

fn sessions(stocks: &[(Ticker, PathBuf, Bars)]) -> (Vec<NaiveDate>, SessionMap) {
    // Each file is sorted, so its first and last days bound it.
    let lo = stocks.iter().filter_map(|(_, _, b)| b.days.first()).min().copied();
    let hi = stocks.iter().filter_map(|(_, _, b)| b.days.last()).max().copied();
    let (Some(lo), Some(hi)) = (lo, hi) else {
        return (Vec::new(), SessionMap { lo: 0, slot: Vec::new() });
    };
    let len = usize::try_from(i64::from(hi) - i64::from(lo) + 1).unwrap_or(0);
    let mut slot = vec![u32::MAX; len];
    for (_, _, b) in stocks {
        for &d in &b.days {
            if let Some(s) = usize::try_from(d - lo).ok().and_then(|off| slot.get_mut(off)) {
                *s = 0;
            }
        }
    }
    let mut dates = Vec::new();
    for (off, s) in slot.iter_mut().enumerate() {
        if *s != u32::MAX {
            *s = u32::try_from(dates.len()).unwrap_or(u32::MAX);
            dates.push(to_date(lo + i32::try_from(off).unwrap_or(0)));
        }
    }
    (dates, SessionMap { lo, slot })
}

fn build_store(
    dates: Vec<NaiveDate>,
    map: &SessionMap,
    exchange: Option<TradingCalendar>,
    stocks: Vec<(Ticker, PathBuf, Bars)>,
    indices: Vec<(String, IndexValues)>,
    instruments: &BTreeMap<Ticker, Instrument>,
    default_market: Market,
) -> Result<MarketStore, LoadErrorKind> {
    let n_days = dates.len();
    let mut builder = StoreBuilder::new(dates).map_err(LoadErrorKind::Store)?;
    if let Some(calendar) = exchange {
        builder.exchange_calendar(calendar).map_err(LoadErrorKind::Store)?;
    }
    builder.reserve(stocks.len());
    for (ticker, _, bars) in stocks {
        let instrument = instruments.get(&ticker).cloned().unwrap_or_else(|| Instrument {
            ticker,
            name: ticker.to_string(),
            market: default_market,
            sector: String::new(),
        });
        let cells = bars.days.iter().zip(bars.bars).filter_map(|(d, b)| Some((map.get(*d)?, b)));
        builder.add(instrument, cells).map_err(LoadErrorKind::Store)?;
    }
    for (name, values) in indices {
        let mut close = vec![f64::NAN; n_days];
        for (d, v) in values.days.iter().zip(values.close) {
            if let Some(c) = map.get(*d).and_then(|s| close.get_mut(s)) {
                *c = v;
            }
        }
        builder.add_index(IndexSeries { name, close }).map_err(LoadErrorKind::Store)?;
    }
    Ok(builder.build())
}

#[cfg(test)]
mod tests;
