//! Real KRX data, first-class: turns the layout of `shared/data/krx` (documented in its
//! README) into a market folder the loader reads with the right market rules.
//!
//! ```text
//! SRC/stocks/TICKER.csv              → OUT/TICKER.csv (rows before a corporate-action jump cut)
//! SRC/reference/tickers.csv          → OUT/instruments.csv (name, market, KRX industry)
//! SRC/calendar/krx_trading_days.csv  → OUT/calendar.csv
//! SRC/index/{KS11,KQ11,KS200}.csv    → OUT/index/
//! ```
//!
//! Markets are those of 2021 (`market_2021`), when the `stocks/` histories were captured; a
//! name that moved market during its history (Kakao 035720 and Celltrion 068270 left KOSDAQ
//! in 2017–2018) is priced and taxed under its 2021 market throughout.
//!
//! Some sources were adjusted for splits only up to a capture date and appended raw rows
//! afterwards, so a later split shows as a one-day move no price limit allows (263750 on
//! 2021-04-16 closed at 0.199 of the day before). Such a series cannot be traded across the
//! jump: the importer keeps a series' rows from its last such jump on and reports where each
//! cut series now starts.

use crate::csv::reader::split_fields;
use chrono::NaiveDate;
use haechi_core::{Market, Ticker, krx};
use serde::Serialize;
use std::borrow::Cow;
use std::path::{Path, PathBuf};

#[derive(Debug, thiserror::Error)]
pub enum ImportError {
    #[error("{}: cannot read: {source}", path.display())]
    Read { path: PathBuf, source: std::io::Error },
    #[error("{}: cannot write: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    #[error("{}:{line}: {what}", path.display())]
    Bad { path: PathBuf, line: usize, what: String },
    #[error("{}: not the shared KRX layout (expected stocks/, reference/tickers.csv, calendar/krx_trading_days.csv)", .0.display())]
    NotKrxLayout(PathBuf),
}

/// A series cut at a corporate-action jump.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Cut {
    pub ticker: Ticker,
    /// The first kept row: the jump's day.
    pub from: NaiveDate,
    /// Close over the previous row's close on that day.
    pub ratio: f64,
    pub rows_dropped: usize,
}

/// What an import wrote.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ImportSummary {
    pub tickers: usize,
    pub kospi: usize,
    pub kosdaq: usize,
    pub rows: usize,
    pub calendar_days: usize,
    pub indices: Vec<String>,
    pub cuts: Vec<Cut>,
}

fn read(path: &Path) -> Result<String, ImportError> {
    std::fs::read_to_string(path).map_err(|source| ImportError::Read { path: path.to_path_buf(), source })
}

fn write(path: &Path, text: &str) -> Result<(), ImportError> {
    std::fs::write(path, text).map_err(|source| ImportError::Write { path: path.to_path_buf(), source })
}

fn bad(path: &Path, line: usize, what: impl Into<String>) -> ImportError {
    ImportError::Bad { path: path.to_path_buf(), line, what: what.into() }
}

/// Splits a CSV line (RFC 4180 quotes) into owned fields.
fn fields(path: &Path, line: usize, text: &str) -> Result<Vec<String>, ImportError> {
    let mut out: Vec<Cow<'_, [u8]>> = Vec::new();
    split_fields(text.as_bytes(), &mut out).map_err(|e| bad(path, line, format!("{e:?}")))?;
    Ok(out.iter().map(|f| String::from_utf8_lossy(f).trim().to_owned()).collect())
}

/// Imports `src` (the shared layout) into `out` (created if missing).
///
/// # Errors
/// [`ImportError`] naming the file and line of the first problem; files already written stay
/// (running the import again overwrites them).
pub fn import_krx(src: &Path, out: &Path) -> Result<ImportSummary, ImportError> {
    let stocks = src.join("stocks");
    let reference = src.join("reference/tickers.csv");
    let calendar = src.join("calendar/krx_trading_days.csv");
    if !stocks.is_dir() || !reference.is_file() || !calendar.is_file() {
        return Err(ImportError::NotKrxLayout(src.to_path_buf()));
    }
    let index_out = out.join("index");
    std::fs::create_dir_all(&index_out).map_err(|source| ImportError::Write { path: index_out.clone(), source })?;

    // instruments.csv
    let text = read(&reference)?;
    let mut lines = text.lines().enumerate();
    let header = lines.next().map(|(_, h)| fields(&reference, 1, h)).transpose()?.unwrap_or_default();
    let col = |name: &str| {
        header.iter().position(|h| h == name).ok_or_else(|| bad(&reference, 1, format!("no column {name:?}")))
    };
    let (c_ticker, c_name, c_market, c_industry) =
        (col("ticker")?, col("name_ko")?, col("market_2021")?, col("krx_industry_2021")?);
    let (c_wics, c_market_now, c_ksic) = (col("wics_sector_2021")?, col("market_2026")?, col("ksic_industry_2026")?);
    let mut instruments = String::from("ticker,name,market,sector\n");
    let mut markets: Vec<(Ticker, Market)> = Vec::new();
    for (i, line) in lines {
        if line.trim().is_empty() {
            continue;
        }
        let f = fields(&reference, i + 1, line)?;
        let get = |c: usize| f.get(c).map(String::as_str).unwrap_or("");
        let ticker = Ticker::parse(get(c_ticker)).map_err(|e| bad(&reference, i + 1, format!("ticker: {e}")))?;
        // Names listed after 2021 (373220) have only today's market and classification.
        let market_text = if get(c_market).is_empty() { get(c_market_now) } else { get(c_market) };
        let market: Market = market_text
            .parse()
            .map_err(|_| bad(&reference, i + 1, format!("{ticker}: unknown market {market_text:?}")))?;
        let sector = [get(c_industry), get(c_wics), get(c_ksic)].into_iter().find(|s| !s.is_empty()).unwrap_or("");
        let clean = |s: &str| s.replace([',', '"'], " ");
        instruments.push_str(&format!("{ticker},{},{market},{}\n", clean(get(c_name)), clean(sector)));
        markets.push((ticker, market));
    }
    write(&out.join("instruments.csv"), &instruments)?;

    // calendar.csv
    let cal_text = read(&calendar)?;
    let calendar_days = cal_text.lines().skip(1).filter(|l| !l.trim().is_empty()).count();
    write(&out.join("calendar.csv"), &cal_text)?;

    // Stocks, cut at corporate-action jumps.
    let mut summary = ImportSummary {
        tickers: 0,
        kospi: 0,
        kosdaq: 0,
        rows: 0,
        calendar_days,
        indices: Vec::new(),
        cuts: Vec::new(),
    };
    for (ticker, market) in &markets {
        let path = stocks.join(format!("{ticker}.csv"));
        if !path.is_file() {
            continue;
        }
        let text = read(&path)?;
        let rows: Vec<&str> = text.lines().collect();
        let mut keep_from = 1usize;
        let mut prev: Option<i64> = None;
        let mut cut: Option<Cut> = None;
        for (i, line) in rows.iter().enumerate().skip(1) {
            if line.trim().is_empty() {
                continue;
            }
            let f: Vec<&str> = line.split(',').collect();
            let (Some(date), Some(close)) = (f.first(), f.get(4)) else {
                return Err(bad(&path, i + 1, "expected date,open,high,low,close,volume"));
            };
            let date: NaiveDate =
                date.trim().parse().map_err(|_| bad(&path, i + 1, format!("{date:?} is not a date")))?;
            let close: i64 = close
                .trim()
                .parse()
                .map_err(|_| bad(&path, i + 1, format!("close {close:?} is not a whole number")))?;
            if let Some(p) = prev.filter(|p| *p > 0) {
                let ratio = close as f64 / p as f64;
                // Half a percent over the limit allows for rounding in adjusted prices.
                let limit = krx::price_limit_percent(date, *market) as f64 / 100.0 + 0.005;
                if (ratio - 1.0).abs() > limit {
                    keep_from = i;
                    cut = Some(Cut { ticker: *ticker, from: date, ratio, rows_dropped: i - 1 });
                }
            }
            prev = Some(close);
        }
        let mut body = String::with_capacity(text.len());
        body.push_str(rows.first().copied().unwrap_or("date,open,high,low,close,volume"));
        body.push('\n');
        for line in rows.iter().skip(keep_from).filter(|l| !l.trim().is_empty()) {
            body.push_str(line);
            body.push('\n');
            summary.rows += 1;
        }
        write(&out.join(format!("{ticker}.csv")), &body)?;
        summary.tickers += 1;
        match market {
            Market::Kosdaq => summary.kosdaq += 1,
            _ => summary.kospi += 1,
        }
        if let Some(c) = cut {
            summary.cuts.push(c);
        }
    }

    for name in ["KS11", "KQ11", "KS200"] {
        let path = src.join("index").join(format!("{name}.csv"));
        if path.is_file() {
            write(&index_out.join(format!("{name}.csv")), &read(&path)?)?;
            summary.indices.push(name.to_owned());
        }
    }
    Ok(summary)
}
