//! Load errors and warnings, each pinned to a file, a line and (where it applies) a column.

use chrono::NaiveDate;
use haechi_core::{Market, StoreError, Ticker, TickerError};
use serde::Serialize;
use std::fmt;
use std::path::{Path, PathBuf};

/// Errors listed per file before the rest are only counted: one systematically broken file
/// (wrong delimiter, wrong encoding) would otherwise bury the problems in every other file.
pub(super) const MAX_ERRORS_PER_FILE: usize = 20;
/// Errors listed in total before the rest are only counted.
pub(super) const MAX_ERRORS: usize = 200;
/// Warnings listed in the report; [`LoadReport::warnings_total`](super::LoadReport) counts all.
pub(super) const MAX_WARNINGS: usize = 100;

/// One problem that prevents loading, e.g.
/// `data/005930.csv:17: column "close": "7l200" is not a whole number`.
#[derive(Debug, thiserror::Error)]
pub struct LoadError {
    pub path: PathBuf,
    /// 1-based; the header is line 1. `None` for problems with the file as a whole.
    pub line: Option<usize>,
    pub column: Option<&'static str>,
    pub kind: LoadErrorKind,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadErrorKind {
    #[error("cannot read: {0}")]
    Io(#[source] std::io::Error),
    #[error("file is empty (expected a header line)")]
    EmptyFile,
    #[error("missing column \"{column}\" (header is \"{header}\")")]
    MissingColumn { column: &'static str, header: String },
    #[error("column \"{0}\" appears more than once in the header")]
    DuplicateColumn(&'static str),
    #[error("expected {expected} fields as in the header, found {found}")]
    FieldCount { expected: usize, found: usize },
    #[error("unterminated quoted field (quoted fields cannot span lines)")]
    UnterminatedQuote,
    #[error("unexpected text after a closing quote")]
    TextAfterQuote,
    #[error("{0:?} is not a date (expected YYYY-MM-DD)")]
    BadDate(String),
    #[error("value is empty")]
    EmptyValue,
    #[error("{0:?} is not a whole number")]
    NotWholeNumber(String),
    #[error("{0:?} is not a number")]
    NotANumber(String),
    #[error("price must be positive, found {0:?}")]
    NonPositivePrice(String),
    #[error("price {0:?} exceeds the largest storable price (4294967295 won)")]
    PriceTooLarge(String),
    #[error("volume must not be negative, found {0:?}")]
    NegativeVolume(String),
    #[error("volume {0:?} is too large")]
    VolumeTooLarge(String),
    #[error("{date} does not come after {previous} on line {previous_line}; dates must be strictly increasing")]
    DateOrder { date: NaiveDate, previous: NaiveDate, previous_line: usize },
    #[error("{value:?} is not a ticker: {reason}")]
    BadTicker { value: String, reason: TickerError },
    #[error("ticker {ticker} is already listed on line {first_line}")]
    DuplicateTicker { ticker: Ticker, first_line: usize },
    #[error("unknown market {0:?} (expected KOSPI, KOSDAQ, KONEX or ETF)")]
    UnknownMarket(String),
    #[error("text is not valid UTF-8 (save the file as UTF-8)")]
    NotUtf8,
    #[error("no file for requested ticker {0}")]
    MissingTickerFile(Ticker),
    #[error("files {0} and {1} are both ticker {2}")]
    DuplicateTickerFile(String, String, Ticker),
    #[error("no TICKER.csv files found")]
    NoTickerFiles,
    #[error("{0} more errors in this file not listed")]
    MoreInFile(usize),
    #[error("{0} more errors not listed")]
    More(usize),
    #[error("a loader thread failed unexpectedly; the data was not loaded")]
    WorkerFailed,
    #[error("cannot build the store: {0}")]
    Store(StoreError),
    #[error(
        "no instruments.csv, so the market of {count} ticker(s) is unknown (first: {first}); KOSPI and KOSDAQ \
         differ in ticks and taxes: add instruments.csv (ticker,name,market,sector) (haechi simulate and haechi \
         sweep also take --default-market to trade every name under one market's rules)"
    )]
    NoInstrumentsFile { count: usize, first: Ticker },
    #[error(
        "{0} is not in the instruments file, so its market is unknown: add a row for it (haechi simulate and \
         haechi sweep also take --default-market)"
    )]
    NotInInstrumentsFile(Ticker),
    #[error("{0} is not a trading day in the calendar file, which covers that date")]
    NotATradingDay(NaiveDate),
}

/// Every problem found while loading, in file order. `Display` lists one per line.
#[derive(Debug, thiserror::Error)]
#[error("{}", Lines(.0))]
pub struct LoadErrors(pub Vec<LoadError>);

/// Something odd that did not stop loading.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LoadWarning {
    pub path: PathBuf,
    pub line: Option<usize>,
    pub kind: WarningKind,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, thiserror::Error)]
pub enum WarningKind {
    #[error("low {low} / high {high} do not bracket open {open} and close {close}; clamped to {new_low} / {new_high}")]
    Clamped { open: u32, high: u32, low: u32, close: u32, new_low: u32, new_high: u32 },
    #[error("{0} more clamped rows not listed")]
    MoreClamped(usize),
    #[error("skipped: the file name is not a ticker ({0})")]
    NotATicker(String),
    #[error("no data rows")]
    NoRows,
    #[error("not in the instruments file; using market {0}, the ticker as name and no sector")]
    NotInInstruments(Market),
    #[error("no instruments file; {count} ticker(s) use market {market}, the ticker as name and no sector")]
    NoInstruments { count: usize, market: Market },
    #[error("index directory does not exist; no indices loaded")]
    NoIndexDir,
    #[error(
        "no calendar.csv: the sessions are the days the loaded names traded, so a day all of them were \
         halted is missing (settlement dates and day orders move); reports carry this warning"
    )]
    NoCalendar,
    #[error("{count} session(s) outside the calendar's range {first} to {last} are taken from the bars")]
    PastCalendar { count: usize, first: NaiveDate, last: NaiveDate },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = Location { path: &self.path, line: self.line, column: self.column };
        write!(f, "{at}: {}", self.kind)
    }
}

impl fmt::Display for LoadWarning {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let at = Location { path: &self.path, line: self.line, column: None };
        write!(f, "{at}: {}", self.kind)
    }
}

struct Location<'a> {
    path: &'a Path,
    line: Option<usize>,
    column: Option<&'static str>,
}

impl fmt::Display for Location<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.path.display())?;
        if let Some(line) = self.line {
            write!(f, ":{line}")?;
        }
        if let Some(column) = self.column {
            write!(f, ": column \"{column}\"")?;
        }
        Ok(())
    }
}

struct Lines<'a>(&'a [LoadError]);

impl fmt::Display for Lines<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, e) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "{e}")?;
        }
        Ok(())
    }
}

/// Collects one file's errors, listing the first [`MAX_ERRORS_PER_FILE`].
#[derive(Debug)]
pub(super) struct FileErrors<'p> {
    path: &'p Path,
    listed: Vec<LoadError>,
    more: usize,
}

impl<'p> FileErrors<'p> {
    pub(super) fn new(path: &'p Path) -> FileErrors<'p> {
        FileErrors { path, listed: Vec::new(), more: 0 }
    }

    pub(super) fn push(&mut self, line: Option<usize>, column: Option<&'static str>, kind: LoadErrorKind) {
        if self.listed.len() < MAX_ERRORS_PER_FILE {
            self.listed.push(LoadError { path: self.path.to_path_buf(), line, column, kind });
        } else {
            self.more += 1;
        }
    }

    pub(super) fn is_empty(&self) -> bool {
        self.listed.is_empty()
    }

    pub(super) fn finish(mut self) -> Vec<LoadError> {
        if self.more > 0 {
            self.listed.push(LoadError {
                path: self.path.to_path_buf(),
                line: None,
                column: None,
                kind: LoadErrorKind::MoreInFile(self.more),
            });
        }
        self.listed
    }
}

/// Caps the total list, keeping file order, and notes how many were cut.
pub(super) fn cap_total(mut errors: Vec<LoadError>, dir: &Path) -> Vec<LoadError> {
    if errors.len() > MAX_ERRORS {
        let more = errors.len() - MAX_ERRORS;
        errors.truncate(MAX_ERRORS);
        errors.push(LoadError { path: dir.to_path_buf(), line: None, column: None, kind: LoadErrorKind::More(more) });
    }
    errors
}
