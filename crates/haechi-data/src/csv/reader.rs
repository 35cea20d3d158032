//! Byte-level tokenising and value parsing shared by the three file kinds.
//!
//! Everything works on `&[u8]` so a file never has to be valid UTF-8 as a whole and no
//! per-row allocation happens on the common (unquoted) path.

use std::borrow::Cow;

const BOM: &[u8] = b"\xEF\xBB\xBF";

/// Walks a buffer line by line, numbering lines from 1 the way editors do.
#[derive(Debug)]
pub(super) struct Lines<'a> {
    rest: &'a [u8],
    line: usize,
}

impl<'a> Lines<'a> {
    pub(super) fn new(buf: &'a [u8]) -> Lines<'a> {
        Lines { rest: buf.strip_prefix(BOM).unwrap_or(buf), line: 0 }
    }
}

impl<'a> Iterator for Lines<'a> {
    /// The 1-based line number and the line without its `\n` / `\r\n` terminator.
    type Item = (usize, &'a [u8]);

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let (line, rest) = match find_byte(b'\n', self.rest) {
            Some(i) => (&self.rest[..i], &self.rest[i + 1..]),
            None => (self.rest, &[][..]),
        };
        self.rest = rest;
        self.line += 1;
        Some((self.line, line.strip_suffix(b"\r").unwrap_or(line)))
    }
}

/// Position of the first `needle` in `hay`.
///
/// Scans a word at a time: line and field splitting is most of the work of loading
/// hundreds of megabytes, and the byte-by-byte loop is several times slower.
#[inline]
fn find_byte(needle: u8, hay: &[u8]) -> Option<usize> {
    const LO: u64 = 0x0101_0101_0101_0101;
    const HI: u64 = 0x8080_8080_8080_8080;
    let pattern = LO.wrapping_mul(u64::from(needle));
    let mut chunks = hay.chunks_exact(8);
    let mut base = 0;
    for chunk in &mut chunks {
        let mut word = [0u8; 8];
        word.copy_from_slice(chunk);
        let x = u64::from_le_bytes(word) ^ pattern;
        // Classic "has zero byte" test; exact for the lowest matching byte, which is all
        // that is needed here.
        let found = x.wrapping_sub(LO) & !x & HI;
        if found != 0 {
            return Some(base + (found.trailing_zeros() / 8) as usize);
        }
        base += 8;
    }
    chunks.remainder().iter().position(|&b| b == needle).map(|i| base + i)
}

/// Why a line could not be split into fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum SplitError {
    UnterminatedQuote,
    TextAfterQuote,
}

/// Splits one line into fields, RFC 4180 style: a field that starts with `"` runs to the
/// next lone `"`, may contain commas, and writes a quote as `""`. Quoted fields cannot span
/// lines: keeping records and lines identical keeps every error's line number exact.
pub(crate) fn split_fields<'a>(line: &'a [u8], out: &mut Vec<Cow<'a, [u8]>>) -> Result<(), SplitError> {
    out.clear();
    if find_byte(b'"', line).is_none() {
        split_plain(line, out);
        return Ok(());
    }
    let mut rest = line;
    loop {
        if let Some(quoted) = rest.strip_prefix(b"\"") {
            let (field, after) = take_quoted(quoted)?;
            out.push(field);
            match after.split_first() {
                None => return Ok(()),
                Some((b',', tail)) => rest = tail,
                Some(_) => return Err(SplitError::TextAfterQuote),
            }
        } else {
            match find_byte(b',', rest) {
                Some(i) => {
                    out.push(Cow::Borrowed(&rest[..i]));
                    rest = &rest[i + 1..];
                }
                None => {
                    out.push(Cow::Borrowed(rest));
                    return Ok(());
                }
            }
        }
    }
}

/// Splits a line without quotes at every comma, eight bytes at a time.
fn split_plain<'a>(line: &'a [u8], out: &mut Vec<Cow<'a, [u8]>>) {
    let mut start = 0;
    let mut base = 0;
    let mut chunks = line.chunks_exact(8);
    for chunk in &mut chunks {
        let mut commas = eq_mask(chunk, b',');
        while commas != 0 {
            let end = base + (commas.trailing_zeros() / 8) as usize;
            out.push(Cow::Borrowed(line.get(start..end).unwrap_or_default()));
            start = end + 1;
            commas &= commas - 1;
        }
        base += 8;
    }
    for (k, &b) in chunks.remainder().iter().enumerate() {
        if b == b',' {
            out.push(Cow::Borrowed(line.get(start..base + k).unwrap_or_default()));
            start = base + k + 1;
        }
    }
    out.push(Cow::Borrowed(line.get(start..).unwrap_or_default()));
}

/// The high bit of every byte of `chunk` (8 bytes) that equals `needle`, exactly (unlike
/// the test in [`find_byte`], which may also flag bytes above a match).
#[inline]
fn eq_mask(chunk: &[u8], needle: u8) -> u64 {
    const LOW7: u64 = 0x7F7F_7F7F_7F7F_7F7F;
    let mut word = [0u8; 8];
    word.copy_from_slice(chunk);
    let x = u64::from_le_bytes(word) ^ 0x0101_0101_0101_0101u64.wrapping_mul(u64::from(needle));
    !(((x & LOW7) + LOW7) | x | LOW7)
}

/// Reads a quoted field's body (after the opening quote); returns it and what follows the
/// closing quote.
fn take_quoted(mut body: &[u8]) -> Result<(Cow<'_, [u8]>, &[u8]), SplitError> {
    let mut owned: Option<Vec<u8>> = None;
    loop {
        let q = find_byte(b'"', body).ok_or(SplitError::UnterminatedQuote)?;
        let segment = &body[..q];
        let after = &body[q + 1..];
        if let Some(tail) = after.strip_prefix(b"\"") {
            let buf = owned.get_or_insert_with(Vec::new);
            buf.extend_from_slice(segment);
            buf.push(b'"');
            body = tail;
            continue;
        }
        let field = match owned {
            Some(mut buf) => {
                buf.extend_from_slice(segment);
                Cow::Owned(buf)
            }
            None => Cow::Borrowed(segment),
        };
        return Ok((field, after));
    }
}

/// True for a line holding nothing but whitespace; such lines are skipped wherever they are.
pub(super) fn is_blank(line: &[u8]) -> bool {
    line.iter().all(u8::is_ascii_whitespace)
}

/// A field as text for messages: lossy, trimmed and shortened so a garbage field cannot
/// flood the error list.
pub(super) fn show(field: &[u8]) -> String {
    const MAX: usize = 40;
    let text = String::from_utf8_lossy(field.trim_ascii());
    if text.chars().count() <= MAX {
        text.into_owned()
    } else {
        let mut short: String = text.chars().take(MAX).collect();
        short.push('…');
        short
    }
}

/// Why a field is not an acceptable whole number.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum IntError {
    Empty,
    NotWhole,
    Negative,
    TooLarge,
}

/// Parses a non-negative whole number. A zero fraction (`50000.0`) is accepted because
/// spreadsheet and pandas exports write integer columns that way; any other fraction is not.
#[inline]
pub(super) fn parse_whole(field: &[u8]) -> Result<u64, IntError> {
    // Fast path for the overwhelmingly common case: 1 to 19 bare digits cannot overflow.
    if !field.is_empty() && field.len() <= 19 {
        let mut value: u64 = 0;
        let mut plain = true;
        for &b in field {
            let d = b.wrapping_sub(b'0');
            if d > 9 {
                plain = false;
                break;
            }
            value = value * 10 + u64::from(d);
        }
        if plain {
            return Ok(value);
        }
    }
    let s = field.trim_ascii();
    if s.is_empty() {
        return Err(IntError::Empty);
    }
    let (negative, s) = match s.split_first() {
        Some((b'-', tail)) => (true, tail),
        _ => (false, s),
    };
    let digits = match find_byte(b'.', s) {
        Some(i) => {
            let frac = &s[i + 1..];
            if frac.is_empty() || !frac.iter().all(|&b| b == b'0') {
                return Err(IntError::NotWhole);
            }
            &s[..i]
        }
        None => s,
    };
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(IntError::NotWhole);
    }
    let mut value: u64 = 0;
    for &b in digits {
        value = value.checked_mul(10).and_then(|v| v.checked_add(u64::from(b - b'0'))).ok_or(IntError::TooLarge)?;
    }
    if negative && value != 0 {
        return Err(IntError::Negative);
    }
    Ok(value)
}

/// Parses a plain decimal (`2501.53`, `-0.5`, `7`); `None` for an empty field. Exponents,
/// `inf` and `NaN` are refused: no exporter writes them, and `NaN` already means "no value".
pub(super) fn parse_decimal(field: &[u8]) -> Result<Option<f64>, ()> {
    let s = field.trim_ascii();
    if s.is_empty() {
        return Ok(None);
    }
    let unsigned = s.strip_prefix(b"-").or_else(|| s.strip_prefix(b"+")).unwrap_or(s);
    let mut dots = 0;
    let mut digits = 0;
    for &b in unsigned {
        match b {
            b'0'..=b'9' => digits += 1,
            b'.' => dots += 1,
            _ => return Err(()),
        }
    }
    if digits == 0 || dots > 1 {
        return Err(());
    }
    let text = std::str::from_utf8(s).map_err(|_| ())?;
    let value: f64 = text.parse().map_err(|_| ())?;
    if value.is_finite() { Ok(Some(value)) } else { Err(()) }
}

/// Parses `YYYY-MM-DD` into chrono's day number (`NaiveDate::num_days_from_ce`), which
/// is cheaper to compare, range-check and bucket than a `NaiveDate`.
#[inline]
pub(super) fn parse_date(field: &[u8]) -> Option<i32> {
    parse_ymd(field).map(|(y, m, d)| days_from_ce(y, m, d))
}

/// A valid `YYYY-MM-DD` as numbers.
#[inline]
fn parse_ymd(field: &[u8]) -> Option<(i32, i32, i32)> {
    let &[y0, y1, y2, y3, b'-', m0, m1, b'-', d0, d1] = field.trim_ascii() else {
        return None;
    };
    let digit = |b: u8| -> Option<i32> { b.is_ascii_digit().then(|| i32::from(b - b'0')) };
    let year = digit(y0)? * 1000 + digit(y1)? * 100 + digit(y2)? * 10 + digit(y3)?;
    let month = digit(m0)? * 10 + digit(m1)?;
    let day = digit(d0)? * 10 + digit(d1)?;
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    Some((year, month, day))
}

/// Remembers the month of the last date parsed: consecutive rows nearly always share it,
/// and then only the day needs checking. Gives exactly what [`parse_date`] gives.
#[derive(Debug, Default)]
pub(super) struct MonthCache {
    /// `YYYY-MM-` of the cached month.
    prefix: [u8; 8],
    first_day: i32,
    /// Days in the cached month; 0 while nothing is cached.
    len: i32,
}

impl MonthCache {
    #[inline]
    pub(super) fn parse(&mut self, field: &[u8]) -> Option<i32> {
        if let Some((prefix, &[d0, d1])) = field.split_first_chunk::<8>()
            && self.len > 0
            && *prefix == self.prefix
        {
            let day = i32::from(d0.wrapping_sub(b'0')) * 10 + i32::from(d1.wrapping_sub(b'0'));
            let digits = d0.is_ascii_digit() && d1.is_ascii_digit();
            return (digits && (1..=self.len).contains(&day)).then(|| self.first_day + day - 1);
        }
        let (y, m, d) = parse_ymd(field)?;
        if let Some((prefix, _)) = field.split_first_chunk::<8>()
            && field.len() == 10
        {
            *self = MonthCache { prefix: *prefix, first_day: days_from_ce(y, m, 1), len: days_in_month(y, m) };
        }
        Some(days_from_ce(y, m, d))
    }
}

fn days_in_month(year: i32, month: i32) -> i32 {
    match month {
        2 if (year % 4 == 0 && year % 100 != 0) || year % 400 == 0 => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 0000-12-31 in the proleptic Gregorian calendar (so 0001-01-01 is day 1),
/// matching chrono. Howard Hinnant's `days_from_civil`, for years 0..=9999 only: shifting
/// them by one 400-year era keeps everything non-negative, so the divisions are unsigned
/// divisions by constants, which matters at millions of rows.
fn days_from_ce(year: i32, month: i32, day: i32) -> i32 {
    const ERA_DAYS: u32 = 146_097;
    let (year, month, day) = (year.unsigned_abs() + 400, month.unsigned_abs(), day.unsigned_abs());
    let y = if month <= 2 { year - 1 } else { year };
    let era = y / 400;
    let yoe = y % 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    // Day 0 of the shifted count is 0000-03-01 minus one era; 0000-12-31 is 305 days after
    // 0000-03-01.
    let days = era * ERA_DAYS + doe;
    i32::try_from(days).unwrap_or(i32::MAX) - i32::try_from(ERA_DAYS + 305).unwrap_or(0)
}

#[cfg(test)]
mod tests {
    use super::*;
    use chrono::{Datelike, NaiveDate};
    use proptest::prelude::*;

    fn fields(line: &str) -> Result<Vec<String>, SplitError> {
        let mut out = Vec::new();
        split_fields(line.as_bytes(), &mut out)?;
        Ok(out.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect())
    }

    #[test]
    fn lines_strip_bom_and_crlf_and_number_from_one() {
        let got: Vec<_> = Lines::new(b"\xEF\xBB\xBFa,b\r\nc\n\nd").collect();
        assert_eq!(got, vec![(1, &b"a,b"[..]), (2, &b"c"[..]), (3, &b""[..]), (4, &b"d"[..])]);
    }

    #[test]
    fn quoted_fields_keep_commas_and_doubled_quotes() {
        assert_eq!(fields(r#"a,"b,c","say ""hi""",,"""#).unwrap(), ["a", "b,c", r#"say "hi""#, "", ""]);
        assert_eq!(fields("a,").unwrap(), ["a", ""]);
        assert_eq!(fields(r#""a"x,b"#), Err(SplitError::TextAfterQuote));
        assert_eq!(fields(r#"a,"b"#), Err(SplitError::UnterminatedQuote));
    }

    #[test]
    fn plain_and_quoted_splitting_agree() {
        let line = "2024-01-02,100,,110,90,105,1000,x,y,longer field here,";
        let mut plain = Vec::new();
        split_plain(line.as_bytes(), &mut plain);
        let want: Vec<&str> = line.split(',').collect();
        let got: Vec<String> = plain.iter().map(|f| String::from_utf8_lossy(f).into_owned()).collect();
        assert_eq!(got, want);
        assert_eq!(fields(&format!("{line}\"z\"")).unwrap().len(), want.len());
    }

    #[test]
    fn find_byte_agrees_with_position() {
        for len in 0..40 {
            for at in 0..=len {
                let mut hay = vec![b'x'; len];
                if at < len {
                    hay[at] = b',';
                }
                let want = hay.iter().position(|&b| b == b',');
                assert_eq!(find_byte(b',', &hay), want, "len {len} at {at}");
            }
        }
        // High bytes (UTF-8) must not produce false matches.
        assert_eq!(find_byte(b',', "삼성전자,".as_bytes()), Some(12));
    }

    #[test]
    fn whole_numbers() {
        assert_eq!(parse_whole(b"50000"), Ok(50_000));
        assert_eq!(parse_whole(b" 7 "), Ok(7));
        assert_eq!(parse_whole(b"50000.00"), Ok(50_000));
        assert_eq!(parse_whole(b"-0"), Ok(0));
        assert_eq!(parse_whole(b""), Err(IntError::Empty));
        assert_eq!(parse_whole(b"7l200"), Err(IntError::NotWhole));
        assert_eq!(parse_whole(b"1.5"), Err(IntError::NotWhole));
        assert_eq!(parse_whole(b"1."), Err(IntError::NotWhole));
        assert_eq!(parse_whole(b"."), Err(IntError::NotWhole));
        assert_eq!(parse_whole(b"+5"), Err(IntError::NotWhole));
        assert_eq!(parse_whole(b"-5"), Err(IntError::Negative));
        assert_eq!(parse_whole(b"18446744073709551615"), Ok(u64::MAX));
        assert_eq!(parse_whole(b"18446744073709551616"), Err(IntError::TooLarge));
    }

    #[test]
    fn decimals() {
        assert_eq!(parse_decimal(b"2501.53"), Ok(Some(2501.53)));
        assert_eq!(parse_decimal(b""), Ok(None));
        assert_eq!(parse_decimal(b"-1"), Ok(Some(-1.0)));
        assert_eq!(parse_decimal(b"1e5"), Err(()));
        assert_eq!(parse_decimal(b"NaN"), Err(()));
        assert_eq!(parse_decimal(b"1.2.3"), Err(()));
        assert_eq!(parse_decimal(b"."), Err(()));
    }

    #[test]
    fn dates() {
        let d = |s: &str| parse_date(s.as_bytes());
        assert_eq!(d("2024-02-29"), Some(NaiveDate::from_ymd_opt(2024, 2, 29).unwrap().num_days_from_ce()));
        assert_eq!(d("2023-02-29"), None);
        assert_eq!(d("1900-02-29"), None);
        assert!(d("2000-02-29").is_some());
        assert_eq!(d("2024-1-05"), None);
        assert_eq!(d("2024/01/05"), None);
        assert_eq!(d("2024-13-01"), None);
        assert_eq!(d("2024-00-10"), None);
        assert_eq!(d("2024-01-00"), None);
    }

    proptest! {
        #[test]
        fn date_parser_matches_chrono(y in 0i32..=9999, m in 0u32..=13, day in 0u32..=32) {
            let text = format!("{y:04}-{m:02}-{day:02}");
            let want = NaiveDate::from_ymd_opt(y, m, day).map(|d| d.num_days_from_ce());
            prop_assert_eq!(parse_date(text.as_bytes()), want);
        }

        #[test]
        fn plain_split_matches_str_split(line in "[a-c,\u{80}-\u{ff}]{0,40}") {
            let mut out = Vec::new();
            split_fields(line.as_bytes(), &mut out).unwrap();
            let got: Vec<&[u8]> = out.iter().map(|f| &f[..]).collect();
            let want: Vec<&[u8]> = line.split(',').map(str::as_bytes).collect();
            prop_assert_eq!(got, want);
        }

        #[test]
        fn month_cache_matches_parse_date(dates in proptest::collection::vec("(20[0-2][0-9]-0[1-3]-[0-3][0-9]| 2024-01-0[1-9]|2024-01-0x|2024-01-1)", 0..40)) {
            let mut cache = MonthCache::default();
            for date in &dates {
                prop_assert_eq!(cache.parse(date.as_bytes()), parse_date(date.as_bytes()), "{}", date);
            }
        }

        #[test]
        fn whole_parser_matches_std(v in any::<u64>()) {
            prop_assert_eq!(parse_whole(v.to_string().as_bytes()), Ok(v));
        }

        #[test]
        fn splitting_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..200)) {
            let mut out = Vec::new();
            for (_, line) in Lines::new(&bytes) {
                let _ = split_fields(line, &mut out);
                for f in &out {
                    let _ = parse_whole(f);
                    let _ = parse_decimal(f);
                    let _ = parse_date(f);
                    let _ = show(f);
                }
            }
        }
    }
}
