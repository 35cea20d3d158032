//! KIS sends every value as a string: integers (`"58700"`), decimals (`"-0.68"`), dates
//! (`YYYYMMDD`), often space-padded, empty for "not applicable". These read them leniently but
//! name the field when a value is really wrong.

use chrono::NaiveDate;
use serde_json::{Map, Value};

/// One response object, read field by field with errors that name the field.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    obj: &'a Map<String, Value>,
    /// `output2[3]`, for error messages.
    at: &'a str,
}

/// Why a field could not be read: the message names the field and the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError(pub String);

impl std::fmt::Display for FieldError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<'a> Fields<'a> {
    #[must_use]
    pub fn new(obj: &'a Map<String, Value>, at: &'a str) -> Fields<'a> {
        Fields { obj, at }
    }

    /// The field as trimmed text. KIS field names are lowercase in quotes and uppercase in order
    /// answers (and the portal prints some in the other case), so both are tried.
    #[must_use]
    pub fn text(&self, name: &str) -> &'a str {
        let v = self.obj.get(name).or_else(|| {
            let alt = if name.bytes().any(|b| b.is_ascii_lowercase()) {
                name.to_ascii_uppercase()
            } else {
                name.to_ascii_lowercase()
            };
            self.obj.get(&alt)
        });
        match v {
            Some(Value::String(s)) => s.trim(),
            _ => "",
        }
    }

    /// An integer field; empty means 0. Decimal text with a zero fraction (`"57250.0000"`) is
    /// accepted; a real fraction is an error rather than silently truncated.
    ///
    /// # Errors
    /// Text that is not a whole number.
    pub fn int(&self, name: &str) -> Result<i64, FieldError> {
        parse_int(self.text(name)).map_err(|v| self.bad(name, v, "a whole number"))
    }

    /// A whole number of won where KIS may send a fraction (averages): rounded to the won.
    ///
    /// # Errors
    /// Text that is not a number.
    pub fn won_rounded(&self, name: &str) -> Result<i64, FieldError> {
        let t = self.text(name);
        if t.is_empty() {
            return Ok(0);
        }
        t.parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(|f| f.round() as i64)
            .ok_or_else(|| self.bad(name, t, "a number"))
    }

    /// A decimal field; empty means 0.
    ///
    /// # Errors
    /// Text that is not a number.
    pub fn dec(&self, name: &str) -> Result<f64, FieldError> {
        let t = self.text(name);
        if t.is_empty() {
            return Ok(0.0);
        }
        t.parse::<f64>().ok().filter(|f| f.is_finite()).ok_or_else(|| self.bad(name, t, "a number"))
    }

    /// A `YYYYMMDD` date.
    ///
    /// # Errors
    /// Empty or not a date.
    pub fn date(&self, name: &str) -> Result<NaiveDate, FieldError> {
        let t = self.text(name);
        parse_date(t).ok_or_else(|| self.bad(name, t, "a YYYYMMDD date"))
    }

    /// A `YYYYMMDD` date, `None` when empty or all zeros.
    ///
    /// # Errors
    /// Text that is neither empty nor a date.
    pub fn opt_date(&self, name: &str) -> Result<Option<NaiveDate>, FieldError> {
        let t = self.text(name);
        if t.is_empty() || t.bytes().all(|b| b == b'0') {
            return Ok(None);
        }
        parse_date(t).map(Some).ok_or_else(|| self.bad(name, t, "a YYYYMMDD date"))
    }

    /// `Y` → true, anything else false.
    #[must_use]
    pub fn yes(&self, name: &str) -> bool {
        self.text(name).eq_ignore_ascii_case("y")
    }

    fn bad(&self, name: &str, value: &str, expected: &str) -> FieldError {
        FieldError(format!("{}.{name}: {value:?} is not {expected}", self.at))
    }
}

/// Parses KIS integer text: trimmed, optional sign, a zero fraction allowed.
///
/// # Errors
/// The offending text.
pub fn parse_int(t: &str) -> Result<i64, &str> {
    let t = t.trim();
    if t.is_empty() {
        return Ok(0);
    }
    let (whole, frac) = t.split_once('.').unwrap_or((t, ""));
    if !frac.bytes().all(|b| b == b'0') {
        return Err(t);
    }
    let whole = whole.strip_prefix('+').unwrap_or(whole);
    if whole.is_empty() || whole == "-" {
        return Ok(0);
    }
    whole.parse::<i64>().map_err(|_| t)
}

/// `YYYYMMDD` → date.
#[must_use]
pub fn parse_date(t: &str) -> Option<NaiveDate> {
    let t = t.trim();
    if t.len() != 8 {
        return None;
    }
    NaiveDate::parse_from_str(t, "%Y%m%d").ok()
}

/// `date` as KIS writes it.
#[must_use]
pub fn ymd(date: NaiveDate) -> String {
    date.format("%Y%m%d").to_string()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    #[test]
    fn lenient_numbers_strict_where_it_matters() {
        assert_eq!(parse_int(" 58700 "), Ok(58700));
        assert_eq!(parse_int("-400"), Ok(-400));
        assert_eq!(parse_int("+3"), Ok(3));
        assert_eq!(parse_int(""), Ok(0));
        assert_eq!(parse_int("57250.0000"), Ok(57250));
        assert!(parse_int("57250.5").is_err());
        assert!(parse_int("12a").is_err());
    }

    #[test]
    fn field_errors_name_the_field_and_the_place() {
        let v: Value = serde_json::json!({"stck_clpr": "abc", "ODNO": "0000001234", "d": "20250613"});
        let f = Fields::new(v.as_object().unwrap(), "output2[4]");
        let e = f.int("stck_clpr").unwrap_err();
        assert_eq!(e.0, "output2[4].stck_clpr: \"abc\" is not a whole number");
        assert_eq!(f.int("odno").unwrap(), 1234, "case-insensitive lookup");
        assert_eq!(f.date("d").unwrap(), NaiveDate::from_ymd_opt(2025, 6, 13).unwrap());
        assert_eq!(f.int("missing").unwrap(), 0);
        assert!(f.date("missing").is_err());
    }
}
