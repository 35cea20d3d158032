//! Parsers for the three file kinds. Each takes a whole file's bytes and returns what it
//! could read plus every problem, so one pass reports all of a file's mistakes.

use super::error::{FileErrors, LoadError, LoadErrorKind, LoadWarning, WarningKind};
use super::reader::{
    IntError, Lines, MonthCache, SplitError, is_blank, parse_date, parse_decimal, parse_whole, show, split_fields,
};
use chrono::NaiveDate;
use haechi_core::{Instrument, Market, RawBar, Ticker};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::path::Path;

/// Clamp warnings listed per file; the rest are counted in one summary warning.
const CLAMP_WARNINGS_PER_FILE: usize = 3;

/// Rows whose dates fall in `from..=to` (chrono day numbers) are kept; all rows are checked.
#[derive(Debug, Clone, Copy)]
pub(super) struct DayRange {
    pub from: i32,
    pub to: i32,
}

impl DayRange {
    fn contains(self, day: i32) -> bool {
        self.from <= day && day <= self.to
    }
}

/// A parsed file: its data, errors (already capped) and warnings.
#[derive(Debug)]
pub(super) struct Parsed<T> {
    pub data: T,
    pub errors: Vec<LoadError>,
    pub warnings: Vec<LoadWarning>,
}

/// One ticker's kept rows in date order, as chrono day numbers and bars.
#[derive(Debug, Default)]
pub(super) struct Bars {
    pub days: Vec<i32>,
    pub bars: Vec<RawBar>,
    pub clamped: usize,
}

/// One index's kept `(day, close)` values in date order.
#[derive(Debug, Default)]
pub(super) struct IndexValues {
    pub days: Vec<i32>,
    pub close: Vec<f64>,
}

/// The header of a file: where each wanted column sits and how many fields rows must have.
struct Header<const N: usize> {
    at: [Option<usize>; N],
    fields: usize,
    line: usize,
}

/// Finds the header (the first non-blank line) and maps `names` to positions by trimmed,
/// case-insensitive name. Reports empty files, malformed and duplicate headers, and each
/// `required` column that is missing.
fn read_header<'a, const N: usize>(
    lines: &mut Lines<'a>,
    names: [&'static str; N],
    required: [bool; N],
    errors: &mut FileErrors<'_>,
) -> Option<Header<N>> {
    let Some((line, text)) = lines.by_ref().find(|(_, l)| !is_blank(l)) else {
        errors.push(Some(1), None, LoadErrorKind::EmptyFile);
        return None;
    };
    let mut fields = Vec::new();
    if let Err(e) = split_fields(text, &mut fields) {
        errors.push(Some(line), None, split_error(e));
        return None;
    }
    let mut at = [None; N];
    let mut ok = true;
    for (i, field) in fields.iter().enumerate() {
        let name = field.trim_ascii();
        if let Some(k) = names.iter().position(|n| n.as_bytes().eq_ignore_ascii_case(name)) {
            if at[k].is_some() {
                errors.push(Some(line), None, LoadErrorKind::DuplicateColumn(names[k]));
                ok = false;
            }
            at[k] = Some(i);
        }
    }
    for k in 0..N {
        if required[k] && at[k].is_none() {
            let header = show_header(text);
            errors.push(Some(line), None, LoadErrorKind::MissingColumn { column: names[k], header });
            ok = false;
        }
    }
    ok.then_some(Header { at, fields: fields.len(), line })
}

fn show_header(text: &[u8]) -> String {
    const MAX: usize = 120;
    let text = String::from_utf8_lossy(text);
    if text.chars().count() <= MAX { text.into_owned() } else { text.chars().take(MAX).chain(['…']).collect() }
}

fn split_error(e: SplitError) -> LoadErrorKind {
    match e {
        SplitError::UnterminatedQuote => LoadErrorKind::UnterminatedQuote,
        SplitError::TextAfterQuote => LoadErrorKind::TextAfterQuote,
    }
}

/// Splits a data row, reporting malformed quoting and a field count that differs from the
/// header's. `None` for blank lines and bad rows.
fn split_row<'a>(
    line: usize,
    text: &'a [u8],
    expected: usize,
    fields: &mut Vec<Cow<'a, [u8]>>,
    errors: &mut FileErrors<'_>,
) -> Option<()> {
    if is_blank(text) {
        return None;
    }
    if let Err(e) = split_fields(text, fields) {
        errors.push(Some(line), None, split_error(e));
        return None;
    }
    if fields.len() != expected {
        errors.push(Some(line), None, LoadErrorKind::FieldCount { expected, found: fields.len() });
        return None;
    }
    Some(())
}

fn field<'f>(fields: &'f [Cow<'_, [u8]>], at: Option<usize>) -> &'f [u8] {
    at.and_then(|i| fields.get(i)).map_or(&[][..], |f| &f[..])
}

/// Tracks the previous good date so out-of-order rows can name both dates. It advances
/// even past a bad row: one mistyped date then yields one error instead of one per row.
struct DateOrder {
    previous: Option<(i32, usize)>,
}

impl DateOrder {
    fn check(&mut self, day: i32, line: usize, errors: &mut FileErrors<'_>) -> bool {
        let ok = match self.previous {
            Some((prev, prev_line)) if day <= prev => {
                errors.push(
                    Some(line),
                    Some("date"),
                    LoadErrorKind::DateOrder { date: to_date(day), previous: to_date(prev), previous_line: prev_line },
                );
                false
            }
            _ => true,
        };
        self.previous = Some((day, line));
        ok
    }
}

/// Day numbers come from `parse_date`, which only accepts years 0000–9999, all inside
/// chrono's range; the fallback only keeps this total.
pub(super) fn to_date(day: i32) -> NaiveDate {
    NaiveDate::from_num_days_from_ce_opt(day).unwrap_or_default()
}

fn date_at(fields: &[Cow<'_, [u8]>], at: Option<usize>, line: usize, errors: &mut FileErrors<'_>) -> Option<i32> {
    let raw = field(fields, at);
    let day = parse_date(raw);
    if day.is_none() {
        errors.push(Some(line), Some("date"), LoadErrorKind::BadDate(show(raw)));
    }
    day
}

const STOCK_COLUMNS: [&str; 6] = ["date", "open", "high", "low", "close", "volume"];

/// One valid ticker row.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Row {
    day: i32,
    /// open, high, low, close
    prices: [u32; 4],
    volume: u64,
}

/// What the field at each position of a ticker file holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Ignored,
    Date,
    /// Index into `[open, high, low, close, volume]`.
    Value(usize),
}

fn roles(header: &Header<6>) -> Vec<Role> {
    let mut roles = vec![Role::Ignored; header.fields];
    for (k, at) in header.at.iter().enumerate() {
        if let Some(slot) = at.and_then(|i| roles.get_mut(i)) {
            *slot = if k == 0 { Role::Date } else { Role::Value(k - 1) };
        }
    }
    roles
}

/// Reads a plainly written valid row (bare digits, no quotes or spaces) in one pass.
/// `None` for anything else, which [`slow_row`] then re-reads to accept or explain; keeping
/// all judgement there means the fast path cannot report anything differently.
#[inline]
fn fast_row(text: &[u8], roles: &[Role], months: &mut MonthCache) -> Option<Row> {
    let mut pos = 0;
    let mut day = 0;
    let mut values = [0u64; 5];
    for (k, role) in roles.iter().enumerate() {
        if k > 0 {
            if text.get(pos) != Some(&b',') {
                return None;
            }
            pos += 1;
        }
        match *role {
            Role::Ignored => {
                let rest = text.get(pos..)?;
                let len = rest.iter().position(|&b| b == b',' || b == b'"').unwrap_or(rest.len());
                if rest.get(len) == Some(&b'"') {
                    return None;
                }
                pos += len;
            }
            Role::Date => {
                day = months.parse(text.get(pos..pos + 10)?)?;
                pos += 10;
            }
            Role::Value(i) => {
                let start = pos;
                let mut v: u64 = 0;
                while let Some(&b) = text.get(pos) {
                    let d = b.wrapping_sub(b'0');
                    if d > 9 {
                        break;
                    }
                    // Wrapping is harmless: more than 19 digits is refused just below.
                    v = v.wrapping_mul(10).wrapping_add(u64::from(d));
                    pos += 1;
                }
                if pos == start || pos - start > 19 {
                    return None;
                }
                *values.get_mut(i)? = v;
            }
        }
    }
    if pos != text.len() {
        return None;
    }
    let [open, high, low, close, volume] = values;
    let price = |v: u64| u32::try_from(v).ok().filter(|p| *p > 0);
    Some(Row { day, prices: [price(open)?, price(high)?, price(low)?, price(close)?], volume })
}

enum SlowRow {
    Blank,
    /// The row has errors (already reported); its date, if that at least was valid.
    Bad(Option<i32>),
    Good(Row),
}

/// Reads any row, reporting every problem in it.
fn slow_row<'a>(
    line: usize,
    text: &'a [u8],
    header: &Header<6>,
    fields: &mut Vec<Cow<'a, [u8]>>,
    errors: &mut FileErrors<'_>,
) -> SlowRow {
    if is_blank(text) {
        return SlowRow::Blank;
    }
    if split_row(line, text, header.fields, fields, errors).is_none() {
        return SlowRow::Bad(None);
    }
    let mut ok = true;
    let day = date_at(fields, header.at[0], line, errors);
    let mut prices = [0u32; 4];
    for (k, slot) in prices.iter_mut().enumerate() {
        match price(field(fields, header.at[k + 1])) {
            Ok(p) => *slot = p,
            Err(kind) => {
                errors.push(Some(line), Some(STOCK_COLUMNS[k + 1]), kind);
                ok = false;
            }
        }
    }
    let volume = match volume(field(fields, header.at[5])) {
        Ok(v) => v,
        Err(kind) => {
            errors.push(Some(line), Some("volume"), kind);
            ok = false;
            0
        }
    };
    match day {
        Some(day) if ok => SlowRow::Good(Row { day, prices, volume }),
        day => SlowRow::Bad(day),
    }
}

/// Parses a `TICKER.csv` file of daily bars in whole won.
pub(super) fn parse_stock(path: &Path, bytes: &[u8], range: DayRange) -> Parsed<Bars> {
    let mut errors = FileErrors::new(path);
    let mut warnings = Vec::new();
    let mut out = Bars::default();
    let mut lines = Lines::new(bytes);
    let Some(header) = read_header(&mut lines, STOCK_COLUMNS, [true; 6], &mut errors) else {
        return Parsed { data: out, errors: errors.finish(), warnings };
    };
    let roles = roles(&header);
    // A generous guess from the file size avoids regrowing the columns for typical rows.
    let guess = bytes.len() / 40;
    out.days.reserve(guess);
    out.bars.reserve(guess);
    let mut order = DateOrder { previous: None };
    let mut fields = Vec::with_capacity(header.fields);
    let mut rows = 0usize;
    let mut months = MonthCache::default();
    for (line, text) in lines {
        let row = match fast_row(text, &roles, &mut months) {
            Some(row) => row,
            None => match slow_row(line, text, &header, &mut fields, &mut errors) {
                SlowRow::Blank => continue,
                SlowRow::Bad(day) => {
                    rows += 1;
                    if let Some(day) = day {
                        order.check(day, line, &mut errors);
                    }
                    continue;
                }
                SlowRow::Good(row) => row,
            },
        };
        rows += 1;
        if !order.check(row.day, line, &mut errors) || !range.contains(row.day) {
            continue;
        }
        let [open, high, low, close] = row.prices;
        let mut bar = RawBar { open, high, low, close, volume: row.volume };
        // Back-adjusted prices are rounded independently, so low can sit a won or two above
        // open/close (see the data README); the store needs low <= open, close <= high.
        let new_low = low.min(open).min(close);
        let new_high = high.max(open).max(close);
        if new_low != low || new_high != high {
            if out.clamped < CLAMP_WARNINGS_PER_FILE {
                warnings.push(LoadWarning {
                    path: path.to_path_buf(),
                    line: Some(line),
                    kind: WarningKind::Clamped { open, high, low, close, new_low, new_high },
                });
            }
            out.clamped += 1;
            bar.low = new_low;
            bar.high = new_high;
        }
        out.days.push(row.day);
        out.bars.push(bar);
    }
    if out.clamped > CLAMP_WARNINGS_PER_FILE {
        warnings.push(LoadWarning {
            path: path.to_path_buf(),
            line: None,
            kind: WarningKind::MoreClamped(out.clamped - CLAMP_WARNINGS_PER_FILE),
        });
    }
    if rows == 0 && errors.is_empty() {
        warnings.push(LoadWarning { path: path.to_path_buf(), line: Some(header.line), kind: WarningKind::NoRows });
    }
    Parsed { data: out, errors: errors.finish(), warnings }
}

/// A stored price: positive (zero means "no bar" in the store) and within `u32`.
#[inline]
fn price(raw: &[u8]) -> Result<u32, LoadErrorKind> {
    match parse_whole(raw) {
        Ok(0) | Err(IntError::Negative) => Err(LoadErrorKind::NonPositivePrice(show(raw))),
        Ok(v) => u32::try_from(v).map_err(|_| LoadErrorKind::PriceTooLarge(show(raw))),
        Err(IntError::TooLarge) => Err(LoadErrorKind::PriceTooLarge(show(raw))),
        Err(IntError::Empty) => Err(LoadErrorKind::EmptyValue),
        Err(IntError::NotWhole) => Err(LoadErrorKind::NotWholeNumber(show(raw))),
    }
}

#[inline]
fn volume(raw: &[u8]) -> Result<u64, LoadErrorKind> {
    parse_whole(raw).map_err(|e| match e {
        IntError::Empty => LoadErrorKind::EmptyValue,
        IntError::NotWhole => LoadErrorKind::NotWholeNumber(show(raw)),
        IntError::Negative => LoadErrorKind::NegativeVolume(show(raw)),
        IntError::TooLarge => LoadErrorKind::VolumeTooLarge(show(raw)),
    })
}

/// Parses an `index/NAME.csv` file. Only `date` and `close` are required and kept; open,
/// high, low and volume are checked when present (they may be empty) so a corrupt file
/// is noticed rather than half-used.
pub(super) fn parse_index(path: &Path, bytes: &[u8], range: DayRange) -> Parsed<IndexValues> {
    let mut errors = FileErrors::new(path);
    let mut warnings = Vec::new();
    let mut out = IndexValues::default();
    let mut lines = Lines::new(bytes);
    let required = [true, false, false, false, true, false];
    let Some(header) = read_header(&mut lines, STOCK_COLUMNS, required, &mut errors) else {
        return Parsed { data: out, errors: errors.finish(), warnings };
    };
    let mut order = DateOrder { previous: None };
    let mut fields = Vec::with_capacity(header.fields);
    let mut rows = 0usize;
    for (line, text) in lines {
        if split_row(line, text, header.fields, &mut fields, &mut errors).is_none() {
            continue;
        }
        rows += 1;
        let day = date_at(&fields, header.at[0], line, &mut errors);
        let mut ok = true;
        let mut close = None;
        for (&column, &at) in STOCK_COLUMNS.iter().zip(&header.at).skip(1) {
            let Some(at) = at else { continue };
            let raw = field(&fields, Some(at));
            let problem = match parse_decimal(raw) {
                Err(()) => Some(LoadErrorKind::NotANumber(show(raw))),
                Ok(None) if column == "close" => Some(LoadErrorKind::EmptyValue),
                Ok(Some(v)) if column == "volume" && v < 0.0 => Some(LoadErrorKind::NegativeVolume(show(raw))),
                Ok(Some(v)) if column != "volume" && v <= 0.0 => Some(LoadErrorKind::NonPositivePrice(show(raw))),
                Ok(v) => {
                    if column == "close" {
                        close = v;
                    }
                    None
                }
            };
            if let Some(kind) = problem {
                errors.push(Some(line), Some(column), kind);
                ok = false;
            }
        }
        let Some(day) = day else { continue };
        if !order.check(day, line, &mut errors) || !ok || !range.contains(day) {
            continue;
        }
        if let Some(close) = close {
            out.days.push(day);
            out.close.push(close);
        }
    }
    if rows == 0 && errors.is_empty() {
        warnings.push(LoadWarning { path: path.to_path_buf(), line: Some(header.line), kind: WarningKind::NoRows });
    }
    Parsed { data: out, errors: errors.finish(), warnings }
}

const INSTRUMENT_COLUMNS: [&str; 4] = ["ticker", "name", "market", "sector"];

/// Parses `instruments.csv`: `ticker,name,market,sector`. `ticker` and `market` are
/// required; an empty or absent name defaults to the ticker, sector to "".
pub(super) fn parse_instruments(path: &Path, bytes: &[u8]) -> Parsed<BTreeMap<Ticker, Instrument>> {
    let mut errors = FileErrors::new(path);
    let mut out = BTreeMap::new();
    let mut lines = Lines::new(bytes);
    let Some(header) = read_header(&mut lines, INSTRUMENT_COLUMNS, [true, false, true, false], &mut errors) else {
        return Parsed { data: out, errors: errors.finish(), warnings: Vec::new() };
    };
    let mut first_line: BTreeMap<Ticker, usize> = BTreeMap::new();
    let mut fields = Vec::with_capacity(header.fields);
    for (line, text) in lines {
        if split_row(line, text, header.fields, &mut fields, &mut errors).is_none() {
            continue;
        }
        let text_of = |k: usize, errors: &mut FileErrors<'_>| -> Option<String> {
            let raw = field(&fields, header.at[k]);
            match std::str::from_utf8(raw) {
                Ok(s) => Some(s.trim().to_owned()),
                Err(_) => {
                    errors.push(Some(line), Some(INSTRUMENT_COLUMNS[k]), LoadErrorKind::NotUtf8);
                    None
                }
            }
        };
        let ticker = text_of(0, &mut errors).and_then(|raw| match Ticker::parse(&raw) {
            Ok(t) => Some(t),
            Err(reason) => {
                errors.push(Some(line), Some("ticker"), LoadErrorKind::BadTicker { value: raw, reason });
                None
            }
        });
        let repeated = ticker.and_then(|t| Some((t, *first_line.get(&t)?)));
        if let Some((ticker, first_line)) = repeated {
            errors.push(Some(line), Some("ticker"), LoadErrorKind::DuplicateTicker { ticker, first_line });
        }
        let name = text_of(1, &mut errors);
        let market = text_of(2, &mut errors).and_then(|raw| match raw.parse::<Market>() {
            Ok(m) => Some(m),
            Err(_) => {
                errors.push(Some(line), Some("market"), LoadErrorKind::UnknownMarket(raw));
                None
            }
        });
        let sector = text_of(3, &mut errors);
        let Some(ticker) = ticker else { continue };
        if repeated.is_some() {
            continue;
        }
        first_line.insert(ticker, line);
        let (Some(name), Some(market), Some(sector)) = (name, market, sector) else { continue };
        let name = if name.is_empty() { ticker.to_string() } else { name };
        out.insert(ticker, Instrument { ticker, name, market, sector });
    }
    Parsed { data: out, errors: errors.finish(), warnings: Vec::new() }
}

/// A trading-day list: a `date` column (other columns ignored), strictly increasing.
pub(super) fn parse_calendar(path: &Path, bytes: &[u8]) -> Parsed<Vec<i32>> {
    let mut errors = FileErrors::new(path);
    let mut out = Vec::new();
    let mut lines = Lines::new(bytes);
    let Some(header) = read_header(&mut lines, ["date"], [true], &mut errors) else {
        return Parsed { data: out, errors: errors.finish(), warnings: Vec::new() };
    };
    let mut order = DateOrder { previous: None };
    let mut fields = Vec::with_capacity(header.fields);
    for (line, text) in lines {
        if split_row(line, text, header.fields, &mut fields, &mut errors).is_none() {
            continue;
        }
        if let Some(day) = date_at(&fields, header.at[0], line, &mut errors)
            && order.check(day, line, &mut errors)
        {
            out.push(day);
        }
    }
    Parsed { data: out, errors: errors.finish(), warnings: Vec::new() }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn header(text: &str) -> Header<6> {
        let mut lines = Lines::new(text.as_bytes());
        let path = Path::new("x.csv");
        let mut errors = FileErrors::new(path);
        read_header(&mut lines, STOCK_COLUMNS, [true; 6], &mut errors).unwrap()
    }

    fn slow(text: &str, header: &Header<6>) -> (Option<Row>, usize) {
        let path = Path::new("x.csv");
        let mut errors = FileErrors::new(path);
        let mut fields = Vec::new();
        let row = match slow_row(2, text.as_bytes(), header, &mut fields, &mut errors) {
            SlowRow::Good(row) => Some(row),
            SlowRow::Blank | SlowRow::Bad(_) => None,
        };
        (row, errors.finish().len())
    }

    #[test]
    fn fast_path_takes_plain_rows_and_leaves_the_rest() {
        let h = header("date,open,high,low,close,volume,change");
        let roles = roles(&h);
        let row = fast_row(b"2024-01-02,100,110,90,105,1000,-0.5", &roles, &mut MonthCache::default()).unwrap();
        assert_eq!(row, Row { day: parse_date(b"2024-01-02").unwrap(), prices: [100, 110, 90, 105], volume: 1000 });
        for odd in [
            "2024-01-02,100,110,90,105,1000",
            "2024-01-02,100,110,90,105,1000,\"x\"",
            "2024-01-02, 100,110,90,105,1000,",
            "2024-01-02,100.0,110,90,105,1000,",
            "2024-01-02,0,110,90,105,1000,",
            "2024-01-02,4294967296,110,90,105,1000,",
            "2024-01-02,100,110,90,105,99999999999999999999,",
            "2024-01-02,100,110,90,105,1000,,",
            "2024-01-021,100,110,90,105,1000,",
            "",
        ] {
            assert_eq!(fast_row(odd.as_bytes(), &roles, &mut MonthCache::default()), None, "{odd}");
        }
    }

    const ODD: &str = "(0|4294967296|[0-9]{19,21}| 5|\"7\"|7\\.0|-1|x|)";

    fn column_values() -> impl Strategy<Value = (Vec<&'static str>, Vec<String>)> {
        let cols = Just(vec!["volume", "date", "x", "close", "low", "high", "open"]).prop_shuffle();
        let dates = proptest::collection::vec(
            prop_oneof![8 => "20[0-9]{2}-0[1-9]-[0-2][0-9]", 1 => "2023-02-29|2024-1-05", 1 => ODD],
            7,
        );
        let numbers = proptest::collection::vec(prop_oneof![8 => "[1-9][0-9]{0,5}", 2 => ODD], 7);
        (cols, dates, numbers).prop_map(|(cols, dates, numbers)| {
            let values = cols
                .iter()
                .zip(dates.into_iter().zip(numbers))
                .map(|(c, (d, n))| if *c == "date" { d } else { n })
                .collect();
            (cols, values)
        })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]

        #[test]
        fn fast_path_agrees_with_the_slow_path((cols, values) in column_values()) {
            let h = header(&cols.join(","));
            let line = values.join(",");
            let fast = fast_row(line.as_bytes(), &roles(&h), &mut MonthCache::default());
            let (slow_row, slow_errors) = slow(&line, &h);
            if let Some(fast) = fast {
                prop_assert_eq!(Some(fast), slow_row);
                prop_assert_eq!(slow_errors, 0);
            }
            // Whenever the slow path accepts a row written with bare digits (at most 19, as
            // written by anything real), the fast path must too, or loading silently loses
            // its speed.
            let plain = values
                .iter()
                .all(|v| (1..=19).contains(&v.len()) && v.bytes().all(|b| b.is_ascii_digit() || b == b'-'));
            if plain && slow_row.is_some() {
                prop_assert!(fast.is_some(), "{}", line);
            }
        }
    }
}
