//! KRX trading hours, for deciding which session an order is for and whether it can match now.
//! Pure: the caller passes "now" (Unix milliseconds from an injected clock) and the calendar.
//!
//! The regular market (정규시장) runs in Korea Standard Time (UTC+9, no daylight saving):
//! continuous trading 09:00–15:20, then the closing call auction (장마감 동시호가) to 15:30,
//! where every order still open fills at the single closing price. An order placed outside
//! those hours, or on a day without a session, waits for the next session's open.

use chrono::{DateTime, Datelike, Days, NaiveDate, NaiveTime, Timelike, Weekday};
use haechi_core::calendar::TradingCalendar;
use serde::Serialize;

/// Korea Standard Time's offset from UTC.
pub const KST_OFFSET_SECS: i64 = 9 * 3600;
/// 09:00, the open.
pub const OPEN_MINUTE: u32 = 9 * 60;
/// 15:20, the end of continuous trading and the start of the closing call.
pub const CALL_MINUTE: u32 = 15 * 60 + 20;
/// 15:30, the close.
pub const CLOSE_MINUTE: u32 = 15 * 60 + 30;

/// Where a session day stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Phase {
    /// A session day before 09:00.
    BeforeOpen,
    /// 09:00–15:20: every print matches.
    Continuous,
    /// 15:20–15:30: orders collect and fill at the closing price.
    ClosingCall,
    /// A session day after 15:30.
    AfterClose,
    /// No session today (weekend or holiday).
    Closed,
}

impl Phase {
    /// The phase at a KST minute of a session day.
    #[must_use]
    pub fn at_minute(minute: u32) -> Phase {
        if minute < OPEN_MINUTE {
            Phase::BeforeOpen
        } else if minute < CALL_MINUTE {
            Phase::Continuous
        } else if minute < CLOSE_MINUTE {
            Phase::ClosingCall
        } else {
            Phase::AfterClose
        }
    }

    /// Whether the market is open (orders can fill now).
    #[must_use]
    pub fn is_open(self) -> bool {
        matches!(self, Phase::Continuous | Phase::ClosingCall)
    }

    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Phase::BeforeOpen => "before_open",
            Phase::Continuous => "continuous",
            Phase::ClosingCall => "closing_call",
            Phase::AfterClose => "after_close",
            Phase::Closed => "closed",
        }
    }

    #[must_use]
    pub fn parse(s: &str) -> Option<Phase> {
        [Phase::BeforeOpen, Phase::Continuous, Phase::ClosingCall, Phase::AfterClose, Phase::Closed]
            .into_iter()
            .find(|p| p.as_str() == s)
    }
}

/// Which days are sessions: the exchange calendar where it is known, weekdays after its end
/// (holidays after the data ends are unknown; the collector extends the calendar daily).
#[derive(Debug, Clone, Default)]
pub struct Sessions {
    calendar: TradingCalendar,
}

impl Sessions {
    #[must_use]
    pub fn new(calendar: TradingCalendar) -> Sessions {
        Sessions { calendar }
    }

    #[must_use]
    pub fn is_session(&self, day: NaiveDate) -> bool {
        let known = self.calendar.sessions();
        match known.last() {
            Some(last) if day <= *last && day >= known[0] => known.binary_search(&day).is_ok(),
            _ => !matches!(day.weekday(), Weekday::Sat | Weekday::Sun),
        }
    }

    /// The first session strictly after `day`.
    #[must_use]
    pub fn next_after(&self, day: NaiveDate) -> NaiveDate {
        let mut d = day;
        // Bounded: a calendar never has more than a few weeks without a session.
        for _ in 0..400 {
            d = d.checked_add_days(Days::new(1)).unwrap_or(d);
            if self.is_session(d) {
                return d;
            }
        }
        d
    }

    /// The `n`th session after `day` (T+n for settlement).
    #[must_use]
    pub fn add_sessions(&self, day: NaiveDate, n: usize) -> NaiveDate {
        (0..n).fold(day, |d, _| self.next_after(d))
    }

    /// Where the market stands at `now_ms`, and the session an order placed then is for:
    /// today's while it is before or in trading hours, the next one after the close or on a
    /// day without a session.
    #[must_use]
    pub fn at(&self, now_ms: i64) -> MarketTime {
        let (day, minute) = kst(now_ms);
        if !self.is_session(day) {
            return MarketTime { day, minute, phase: Phase::Closed, order_session: self.next_after(day) };
        }
        let phase = Phase::at_minute(minute);
        let order_session = if phase == Phase::AfterClose { self.next_after(day) } else { day };
        MarketTime { day, minute, phase, order_session }
    }
}

/// The market's time as an order sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct MarketTime {
    /// Today in KST.
    pub day: NaiveDate,
    /// Minutes since KST midnight.
    pub minute: u32,
    pub phase: Phase,
    /// The session a new order is for.
    pub order_session: NaiveDate,
}

/// The KST date and minute of the day of a Unix millisecond instant.
#[must_use]
pub fn kst(now_ms: i64) -> (NaiveDate, u32) {
    let secs = now_ms.div_euclid(1000) + KST_OFFSET_SECS;
    let dt = DateTime::from_timestamp(secs, 0).unwrap_or_default().naive_utc();
    (dt.date(), dt.time().num_seconds_from_midnight() / 60)
}

/// Unix milliseconds of a KST date and time: for tests and the replay's virtual clock.
#[must_use]
pub fn kst_ms(day: NaiveDate, time: NaiveTime) -> i64 {
    (day.and_time(time).and_utc().timestamp() - KST_OFFSET_SECS) * 1000
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap_or_default()
    }
    fn t(h: u32, m: u32) -> NaiveTime {
        NaiveTime::from_hms_opt(h, m, 0).unwrap_or_default()
    }

    #[test]
    fn phases_follow_the_kst_clock() {
        // 2024-01-02 (Tue) and 01-03 are sessions; 01-01 is a holiday on the calendar.
        let s = Sessions::new(TradingCalendar::new(vec![d(2023, 12, 28), d(2024, 1, 2), d(2024, 1, 3)]));
        let at = |h, m| s.at(kst_ms(d(2024, 1, 2), t(h, m)));
        assert_eq!(at(8, 59).phase, Phase::BeforeOpen);
        assert_eq!(at(8, 59).order_session, d(2024, 1, 2));
        assert_eq!(at(9, 0).phase, Phase::Continuous);
        assert_eq!(at(15, 19).phase, Phase::Continuous);
        assert_eq!(at(15, 20).phase, Phase::ClosingCall);
        assert_eq!(at(15, 29).order_session, d(2024, 1, 2));
        assert_eq!(at(15, 30).phase, Phase::AfterClose);
        assert_eq!(at(15, 30).order_session, d(2024, 1, 3));
        // New Year's Day: closed, orders wait for the 2nd; the 29th is a known non-session.
        let ny = s.at(kst_ms(d(2024, 1, 1), t(10, 0)));
        assert_eq!((ny.phase, ny.order_session), (Phase::Closed, d(2024, 1, 2)));
        assert!(!s.is_session(d(2023, 12, 29)));
        // 00:30 UTC is 09:30 KST.
        assert_eq!(kst(kst_ms(d(2024, 1, 2), t(9, 30))), (d(2024, 1, 2), 570));
    }

    #[test]
    fn after_the_calendar_weekdays_are_sessions() {
        let s = Sessions::new(TradingCalendar::new(vec![d(2024, 1, 2)]));
        // 2026-12-05 is a Saturday: orders go to Monday the 7th.
        let sat = s.at(kst_ms(d(2026, 12, 5), t(11, 0)));
        assert_eq!((sat.phase, sat.order_session), (Phase::Closed, d(2026, 12, 7)));
        // Friday after the close: Monday.
        assert_eq!(s.at(kst_ms(d(2026, 12, 4), t(16, 0))).order_session, d(2026, 12, 7));
        assert_eq!(s.add_sessions(d(2026, 12, 3), 2), d(2026, 12, 7));
    }
}
