//! KIS real-time frames (spec §6.3–§6.6): the `|`/`^` data frames and the JSON control messages,
//! and the `H0STCNT0` trade record.
//!
//! Parsing is pure and never panics: whatever the socket delivers, the feed gets either a value
//! or an error that names what is wrong.

use chrono::{NaiveDate, NaiveTime};

/// The domestic real-time trade TR.
pub const H0STCNT0: &str = "H0STCNT0";

/// `H0STCNT0` field names in KIS's order (§6.6). KIS appends fields over time, so a record may
/// carry more than these.
pub const H0STCNT0_FIELDS: [&str; 46] = [
    "MKSC_SHRN_ISCD",
    "STCK_CNTG_HOUR",
    "STCK_PRPR",
    "PRDY_VRSS_SIGN",
    "PRDY_VRSS",
    "PRDY_CTRT",
    "WGHN_AVRG_STCK_PRC",
    "STCK_OPRC",
    "STCK_HGPR",
    "STCK_LWPR",
    "ASKP1",
    "BIDP1",
    "CNTG_VOL",
    "ACML_VOL",
    "ACML_TR_PBMN",
    "SELN_CNTG_CSNU",
    "SHNU_CNTG_CSNU",
    "NTBY_CNTG_CSNU",
    "CTTR",
    "SELN_CNTG_SMTN",
    "SHNU_CNTG_SMTN",
    "CCLD_DVSN",
    "SHNU_RATE",
    "PRDY_VOL_VRSS_ACML_VOL_RATE",
    "OPRC_HOUR",
    "OPRC_VRSS_PRPR_SIGN",
    "OPRC_VRSS_PRPR",
    "HGPR_HOUR",
    "HGPR_VRSS_PRPR_SIGN",
    "HGPR_VRSS_PRPR",
    "LWPR_HOUR",
    "LWPR_VRSS_PRPR_SIGN",
    "LWPR_VRSS_PRPR",
    "BSOP_DATE",
    "NEW_MKOP_CLS_CODE",
    "TRHT_YN",
    "ASKP_RSQN1",
    "BIDP_RSQN1",
    "TOTAL_ASKP_RSQN",
    "TOTAL_BIDP_RSQN",
    "VOL_TNRT",
    "PRDY_SMNS_HOUR_ACML_VOL",
    "PRDY_SMNS_HOUR_ACML_VOL_RATE",
    "HOUR_CLS_CODE",
    "MRKT_TRTM_CLS_CODE",
    "VI_STND_PRC",
];

/// A frame that could not be understood.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    #[error("empty frame")]
    Empty,
    #[error("frame starts with {0:?}: expected 0 or 1 (data) or {{ (control)")]
    UnknownStart(char),
    #[error("data frame encryption flag {0:?} is not 0 or 1")]
    BadFlag(String),
    #[error("data frame has {0} |-separated parts, needs 4 (encrypted|tr_id|count|payload)")]
    MissingParts(usize),
    #[error("{tr_id} frame count {count:?} is not a positive number of records")]
    BadCount { tr_id: String, count: String },
    #[error("{tr_id} frame has {fields} fields, which cannot be cut into {count} equal records")]
    Uneven { tr_id: String, fields: usize, count: usize },
    #[error("control message is not a JSON object: {0}")]
    Json(String),
    #[error("expected a {expected} frame, got {got}")]
    WrongTr { expected: &'static str, got: String },
    #[error("{tr_id} frame is encrypted; its records are readable only after decryption")]
    Encrypted { tr_id: String },
    #[error("{tr_id} record {record} has {fields} fields, needs at least {needed}")]
    ShortRecord { tr_id: String, record: usize, fields: usize, needed: usize },
    #[error("{tr_id} record {record} field {field}: {value:?} is not {expected}")]
    Field { tr_id: String, record: usize, field: &'static str, value: String, expected: &'static str },
}

/// One text message from the KIS WebSocket.
#[derive(Debug, Clone, PartialEq)]
pub enum Frame<'a> {
    Data(DataFrame<'a>),
    Control(Control),
}

/// `<encrypted>|<tr_id>|<count>|<payload>`, borrowed from the message text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataFrame<'a> {
    pub encrypted: bool,
    pub tr_id: &'a str,
    /// Records in the frame, as KIS announced it.
    pub count: usize,
    /// The payload as received (base64 when `encrypted`).
    pub payload: &'a str,
    /// The `^`-separated fields cut into `count` records. Empty for an encrypted frame: its
    /// fields exist only after decryption.
    pub records: Vec<Vec<&'a str>>,
}

/// A JSON control message: a subscribe/unsubscribe answer or a PINGPONG.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Control {
    /// Empty when the header has none (KIS's error answers are not always complete).
    pub tr_id: String,
    pub tr_key: Option<String>,
    pub encrypt: Option<String>,
    pub rt_cd: Option<String>,
    pub msg_cd: Option<String>,
    /// Trimmed: KIS pads it with spaces.
    pub msg1: Option<String>,
    /// AES IV for the TR's encrypted frames (§6.8).
    pub iv: Option<String>,
    /// AES key for the TR's encrypted frames (§6.8).
    pub key: Option<String>,
    pub is_pingpong: bool,
}

impl Control {
    /// `rt_cd` is `"0"`.
    #[must_use]
    pub fn is_success(&self) -> bool {
        self.rt_cd.as_deref() == Some("0")
    }
}

/// Parses one text message (§6.4 dispatch: `0`/`1` data, `{` control).
///
/// # Errors
/// The frame is neither shape, or a data frame's parts or record count do not add up.
// Stays whole: a single pass over the frame's bytes following §6.4 field by field; the
// branches share the cursor, and the spec reads in the same order.
pub fn parse_frame(text: &str) -> Result<Frame<'_>, FrameError> {
    match text.chars().next() {
        None => Err(FrameError::Empty),
        Some('0' | '1') => parse_data(text).map(Frame::Data),
        Some('{') => parse_control(text).map(Frame::Control),
        Some(c) => Err(FrameError::UnknownStart(c)),
    }
}

fn parse_data(text: &str) -> Result<DataFrame<'_>, FrameError> {
    let parts: Vec<&str> = text.splitn(4, '|').collect();
    let &[flag, tr_id, count_text, payload] = parts.as_slice() else {
        return Err(FrameError::MissingParts(parts.len()));
    };
    let encrypted = match flag {
        "0" => false,
        "1" => true,
        other => return Err(FrameError::BadFlag(other.to_owned())),
    };
    let count = match count_text.parse::<usize>() {
        Ok(n) if n >= 1 && count_text.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => return Err(FrameError::BadCount { tr_id: tr_id.to_owned(), count: count_text.to_owned() }),
    };
    // Frames arrive with the WebSocket's text, sometimes with a line end from a recording.
    let payload = payload.trim_end_matches(['\r', '\n']);
    let records = if encrypted {
        Vec::new()
    } else {
        let fields: Vec<&str> = payload.split('^').collect();
        if !fields.len().is_multiple_of(count) {
            return Err(FrameError::Uneven { tr_id: tr_id.to_owned(), fields: fields.len(), count });
        }
        fields.chunks(fields.len() / count).map(<[&str]>::to_vec).collect()
    };
    Ok(DataFrame { encrypted, tr_id, count, payload, records })
}

fn parse_control(text: &str) -> Result<Control, FrameError> {
    let value: serde_json::Value = serde_json::from_str(text).map_err(|e| FrameError::Json(e.to_string()))?;
    let header = &value["header"];
    let body = &value["body"];
    let tr_id = string_at(&header["tr_id"]).unwrap_or_default();
    Ok(Control {
        is_pingpong: tr_id == "PINGPONG",
        tr_id,
        tr_key: string_at(&header["tr_key"]),
        encrypt: string_at(&header["encrypt"]),
        rt_cd: string_at(&body["rt_cd"]),
        msg_cd: string_at(&body["msg_cd"]),
        msg1: string_at(&body["msg1"]).map(|m| m.trim().to_owned()),
        iv: string_at(&body["output"]["iv"]),
        key: string_at(&body["output"]["key"]),
    })
}

/// KIS sends strings, but a number where a string is expected should not lose the message.
fn string_at(v: &serde_json::Value) -> Option<String> {
    match v {
        serde_json::Value::String(s) => Some(s.clone()),
        serde_json::Value::Number(n) => Some(n.to_string()),
        serde_json::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// `CCLD_DVSN`: who initiated the trade.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub enum TradeSide {
    /// `1`: buyer-initiated (traded at the ask).
    Buy,
    /// `5`: seller-initiated (traded at the bid).
    Sell,
    /// `3`: pre-market.
    PreMarket,
    Other(u8),
}

/// One `H0STCNT0` record: a trade on KRX.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Trade {
    pub ticker: String,
    /// KST.
    pub time: NaiveTime,
    pub price: i64,
    /// Versus the previous close, signed.
    pub change: i64,
    /// `PRDY_VRSS_SIGN`: 1 upper limit, 2 up, 3 unchanged, 4 lower limit, 5 down.
    pub change_sign: u8,
    pub change_pct: f64,
    pub open: i64,
    pub high: i64,
    pub low: i64,
    /// This trade's quantity.
    pub volume: i64,
    pub acc_volume: i64,
    /// Accumulated traded value, won.
    pub acc_value: i64,
    pub ask1: i64,
    pub bid1: i64,
    /// `CTTR`: buy volume / sell volume × 100.
    pub strength: f64,
    pub side: TradeSide,
    pub business_date: NaiveDate,
    pub halted: bool,
    /// `NEW_MKOP_CLS_CODE`, e.g. `20` regular session.
    pub session_code: String,
    /// Static-VI reference price; `None` when KIS leaves it empty.
    pub vi_reference: Option<i64>,
}

/// The trades of an `H0STCNT0` frame, read by position.
///
/// # Errors
/// Another TR or an encrypted frame; a record with fewer than 46 fields; a needed field that is
/// not a number, time or date (named with its record, counted from 1).
pub fn parse_trades(frame: &DataFrame<'_>) -> Result<Vec<Trade>, FrameError> {
    if frame.tr_id != H0STCNT0 {
        return Err(FrameError::WrongTr { expected: H0STCNT0, got: frame.tr_id.to_owned() });
    }
    if frame.encrypted {
        return Err(FrameError::Encrypted { tr_id: frame.tr_id.to_owned() });
    }
    frame.records.iter().enumerate().map(|(i, rec)| parse_trade(rec, i + 1)).collect()
}

fn parse_trade(rec: &[&str], record: usize) -> Result<Trade, FrameError> {
    if rec.len() < H0STCNT0_FIELDS.len() {
        return Err(FrameError::ShortRecord {
            tr_id: H0STCNT0.to_owned(),
            record,
            fields: rec.len(),
            needed: H0STCNT0_FIELDS.len(),
        });
    }
    let f = Fields { rec, record };
    let ticker = rec[0].trim();
    if ticker.is_empty() {
        return Err(f.bad(0, "a stock code"));
    }
    Ok(Trade {
        ticker: ticker.to_owned(),
        time: f.time(1)?,
        price: f.int(2)?,
        change_sign: f.small(3)?,
        change: f.int(4)?,
        change_pct: f.float(5)?,
        open: f.int(7)?,
        high: f.int(8)?,
        low: f.int(9)?,
        ask1: f.int(10)?,
        bid1: f.int(11)?,
        volume: f.int(12)?,
        acc_volume: f.int(13)?,
        acc_value: f.int(14)?,
        strength: f.float(18)?,
        side: match f.small(21)? {
            1 => TradeSide::Buy,
            5 => TradeSide::Sell,
            3 => TradeSide::PreMarket,
            n => TradeSide::Other(n),
        },
        business_date: f.date(33)?,
        session_code: rec[34].trim().to_owned(),
        halted: rec[35].trim() == "Y",
        vi_reference: f.opt_int(45)?,
    })
}

struct Fields<'r, 'a> {
    rec: &'r [&'a str],
    record: usize,
}

impl Fields<'_, '_> {
    fn bad(&self, i: usize, expected: &'static str) -> FrameError {
        FrameError::Field {
            tr_id: H0STCNT0.to_owned(),
            record: self.record,
            field: H0STCNT0_FIELDS[i],
            value: self.rec[i].to_owned(),
            expected,
        }
    }

    fn opt_int(&self, i: usize) -> Result<Option<i64>, FrameError> {
        let s = self.rec[i].trim();
        if s.is_empty() {
            return Ok(None);
        }
        s.parse().map(Some).map_err(|_| self.bad(i, "an integer"))
    }

    fn int(&self, i: usize) -> Result<i64, FrameError> {
        Ok(self.opt_int(i)?.unwrap_or(0))
    }

    fn small(&self, i: usize) -> Result<u8, FrameError> {
        let s = self.rec[i].trim();
        if s.is_empty() {
            return Ok(0);
        }
        s.parse().map_err(|_| self.bad(i, "a code digit"))
    }

    fn float(&self, i: usize) -> Result<f64, FrameError> {
        let s = self.rec[i].trim();
        if s.is_empty() {
            return Ok(0.0);
        }
        match s.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(v),
            _ => Err(self.bad(i, "a decimal number")),
        }
    }

    fn time(&self, i: usize) -> Result<NaiveTime, FrameError> {
        NaiveTime::parse_from_str(self.rec[i].trim(), "%H%M%S").map_err(|_| self.bad(i, "a time HHMMSS"))
    }

    fn date(&self, i: usize) -> Result<NaiveDate, FrameError> {
        NaiveDate::parse_from_str(self.rec[i].trim(), "%Y%m%d").map_err(|_| self.bad(i, "a date YYYYMMDD"))
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// A copy of `shared/kis/fixtures/h0stcnt0.txt`, so the test runs where `shared/` is absent.
    const FIXTURE: &str = "0|H0STCNT0|001|005930^093512^58700^5^-400^-0.68^58846.31^59100^59300^58400^58800^58700^120^2354312^138542573800^4521^5230^709^98.45^1183241^1164932^5^0.41^17.78^090011^5^-400^090215^5^-600^092748^2^300^20250613^20^N^15321^48210^812345^1023456^0.04^3512345^67.03^0^^59100";

    fn data(text: &str) -> DataFrame<'_> {
        match parse_frame(text).unwrap() {
            Frame::Data(d) => d,
            Frame::Control(c) => panic!("expected a data frame, got {c:?}"),
        }
    }

    fn control(text: &str) -> Control {
        match parse_frame(text).unwrap() {
            Frame::Control(c) => c,
            Frame::Data(d) => panic!("expected a control message, got {d:?}"),
        }
    }

    fn payload_of(frame: &str) -> &str {
        frame.splitn(4, '|').nth(3).unwrap()
    }

    fn assert_fixture_trade(t: &Trade) {
        assert_eq!(t.ticker, "005930");
        assert_eq!(t.time, NaiveTime::from_hms_opt(9, 35, 12).unwrap());
        assert_eq!((t.price, t.change, t.change_sign), (58_700, -400, 5));
        assert!((t.change_pct + 0.68).abs() < 1e-9);
        assert_eq!((t.open, t.high, t.low), (59_100, 59_300, 58_400));
        assert_eq!((t.ask1, t.bid1), (58_800, 58_700));
        assert_eq!((t.volume, t.acc_volume, t.acc_value), (120, 2_354_312, 138_542_573_800));
        assert!((t.strength - 98.45).abs() < 1e-9);
        assert_eq!(t.side, TradeSide::Sell);
        assert_eq!(t.business_date, NaiveDate::from_ymd_opt(2025, 6, 13).unwrap());
        assert!(!t.halted);
        assert_eq!(t.session_code, "20");
        assert_eq!(t.vi_reference, Some(59_100));
    }

    #[test]
    fn the_fixture_frame_parses_field_by_field() {
        let frame = data(FIXTURE);
        assert!(!frame.encrypted);
        assert_eq!((frame.tr_id, frame.count, frame.records.len()), (H0STCNT0, 1, 1));
        assert_eq!(frame.records[0].len(), 46);
        let trades = parse_trades(&frame).unwrap();
        assert_eq!(trades.len(), 1);
        assert_fixture_trade(&trades[0]);
    }

    #[test]
    fn the_shared_fixture_file_parses_when_present() {
        let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared/kis/fixtures/h0stcnt0.txt");
        let Ok(text) = std::fs::read_to_string(&path) else { return };
        let trades = parse_trades(&data(&text)).unwrap();
        assert_eq!(trades.len(), 1);
        assert_fixture_trade(&trades[0]);
    }

    #[test]
    fn extra_trailing_fields_are_ignored() {
        let text = format!("{FIXTURE}^NEWFIELD");
        let frame = data(&text);
        assert_eq!(frame.records[0].len(), 47);
        assert_fixture_trade(&parse_trades(&frame).unwrap()[0]);
    }

    #[test]
    fn two_concatenated_records_are_cut_evenly() {
        let second = payload_of(FIXTURE).replacen("005930", "000660", 1).replacen("^58700^5^", "^58800^2^", 1);
        let text = format!("0|H0STCNT0|002|{}^{second}", payload_of(FIXTURE));
        let frame = data(&text);
        assert_eq!((frame.count, frame.records.len()), (2, 2));
        let trades = parse_trades(&frame).unwrap();
        assert_fixture_trade(&trades[0]);
        assert_eq!((trades[1].ticker.as_str(), trades[1].price, trades[1].change_sign), ("000660", 58_800, 2));
    }

    #[test]
    fn empty_optional_numbers_are_lenient() {
        let mut fields: Vec<&str> = payload_of(FIXTURE).split('^').collect();
        fields[12] = " ";
        fields[18] = "";
        fields[45] = "";
        fields[35] = "Y";
        fields[21] = "3";
        let text = format!("0|H0STCNT0|001|{}", fields.join("^"));
        let t = &parse_trades(&data(&text)).unwrap()[0];
        assert_eq!((t.volume, t.strength, t.vi_reference), (0, 0.0, None));
        assert!(t.halted);
        assert_eq!(t.side, TradeSide::PreMarket);
    }

    #[test]
    fn pingpong_and_acks_are_control_messages() {
        let ping = control(r#"{"header":{"tr_id":"PINGPONG","datetime":"20250613093512"}}"#);
        assert!(ping.is_pingpong);
        assert_eq!(ping.rt_cd, None);

        let ack = control(
            r#"{"header":{"tr_id":"H0STCNT0","tr_key":"005930","encrypt":"N"},
                "body":{"rt_cd":"0","msg_cd":"OPSP0000","msg1":"SUBSCRIBE SUCCESS  ","extra":1,
                        "output":{"iv":"0123456789abcdef","key":"0123456789abcdef0123456789abcdef"}}}"#,
        );
        assert!(!ack.is_pingpong);
        assert!(ack.is_success());
        assert_eq!(ack.tr_id, "H0STCNT0");
        assert_eq!(ack.tr_key.as_deref(), Some("005930"));
        assert_eq!(ack.encrypt.as_deref(), Some("N"));
        assert_eq!(ack.msg_cd.as_deref(), Some("OPSP0000"));
        assert_eq!(ack.msg1.as_deref(), Some("SUBSCRIBE SUCCESS"));
        assert_eq!(ack.iv.as_deref(), Some("0123456789abcdef"));
        assert_eq!(ack.key.map(|k| k.len()), Some(32));

        let refused = control(r#"{"header":{"tr_id":"H0STCNT0"},"body":{"rt_cd":1,"msg_cd":"OPSP0008"}}"#);
        assert!(!refused.is_success());
        assert_eq!(refused.rt_cd.as_deref(), Some("1"));
    }

    #[test]
    fn an_encrypted_frame_keeps_its_payload_whole() {
        let frame = data("1|H0STCNI9|001|c29tZQ==^not^split");
        assert!(frame.encrypted);
        assert_eq!(frame.payload, "c29tZQ==^not^split");
        assert!(frame.records.is_empty());
        assert!(matches!(parse_trades(&frame), Err(FrameError::WrongTr { .. })));
    }

    #[test]
    fn malformed_frames_are_errors_that_say_what_is_wrong() {
        let msg = |text: &str| match parse_frame(text) {
            Err(e) => e.to_string(),
            Ok(Frame::Data(d)) => parse_trades(&d).unwrap_err().to_string(),
            Ok(other) => panic!("{text:?} parsed as {other:?}"),
        };
        let payload = payload_of(FIXTURE);

        assert!(msg("").contains("empty"));
        assert!(msg("x|H0STCNT0|001|a").contains("'x'"), "{}", msg("x|H0STCNT0|001|a"));
        assert!(msg("0|H0STCNT0|001").contains("3 |-separated parts"));
        assert!(msg("00|H0STCNT0|001|a").contains("flag \"00\""));
        for count in ["000", "abc", "", "-01", "+01"] {
            let m = msg(&format!("0|H0STCNT0|{count}|{payload}"));
            assert!(m.contains("count") && m.contains(&format!("{count:?}")), "{m}");
        }
        let m = msg(&format!("0|H0STCNT0|002|{payload}^x"));
        assert!(m.contains("47 fields") && m.contains("2 equal records"), "{m}");

        let m = msg(&format!("0|H0STCNT0|002|{}", ["x"; 24].join("^")));
        assert_eq!(m, "H0STCNT0 record 1 has 12 fields, needs at least 46");
        let bad_second = payload.replacen("^58700^", "^abc^", 1);
        let m = msg(&format!("0|H0STCNT0|002|{payload}^{bad_second}"));
        assert_eq!(m, "H0STCNT0 record 2 field STCK_PRPR: \"abc\" is not an integer");

        let m = msg(&format!("0|H0STCNT0|001|{}", payload.replacen("^58700^", "^58,700^", 1)));
        assert!(m.contains("record 1") && m.contains("STCK_PRPR") && m.contains("58,700"), "{m}");
        let m = msg(&format!("0|H0STCNT0|001|{}", payload.replacen("^093512^", "^0935^", 1)));
        assert!(m.contains("STCK_CNTG_HOUR"), "{m}");
        let m = msg(&format!("0|H0STCNT0|001|{}", payload.replacen("^20250613^", "^2025-06-13^", 1)));
        assert!(m.contains("BSOP_DATE"), "{m}");
        let m = msg(&format!("0|H0STCNT0|001|{}", payload.replacen("^98.45^", "^NaN^", 1)));
        assert!(m.contains("CTTR"), "{m}");

        assert!(msg("{not json").contains("JSON"));
        assert!(msg("[1]").contains("'['"));
        assert!(msg("0|H0STASP0|001|a").contains("expected a H0STCNT0 frame"));
    }
}
