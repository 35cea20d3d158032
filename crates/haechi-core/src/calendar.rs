//! Trading sessions, for settlement dates.

use chrono::{Datelike, Days, NaiveDate, Weekday};

/// The sessions a market traded on, sorted. Beyond the last known session, weekdays are assumed
/// (holidays after the data ends are unknown).
#[derive(Debug, Clone, Default)]
pub struct TradingCalendar {
    sessions: Vec<NaiveDate>,
}

impl TradingCalendar {
    /// Builds a calendar from session dates in any order; duplicates are dropped.
    #[must_use]
    pub fn new(mut sessions: Vec<NaiveDate>) -> TradingCalendar {
        sessions.sort_unstable();
        sessions.dedup();
        TradingCalendar { sessions }
    }

    #[must_use]
    pub fn sessions(&self) -> &[NaiveDate] {
        &self.sessions
    }

    /// The session `n` sessions after `date` (T+n). `date` need not be a session itself:
    /// counting starts from the last session on or before it.
    #[must_use]
    pub fn add_sessions(&self, date: NaiveDate, n: usize) -> NaiveDate {
        let idx = match self.sessions.binary_search(&date) {
            Ok(i) => Some(i),
            Err(0) => None,
            Err(i) => Some(i - 1),
        };
        if let Some(i) = idx
            && let Some(d) = self.sessions.get(i + n)
        {
            return *d;
        }
        let (mut day, mut left) = match idx {
            Some(i) if i + 1 < self.sessions.len() => {
                // Partly inside the calendar: walk to its end, then on by weekdays.
                let last = self.sessions.len() - 1;
                (self.sessions[last], n - (last - i))
            }
            _ => (date, n),
        };
        while left > 0 {
            day = day.checked_add_days(Days::new(1)).unwrap_or(day);
            if !matches!(day.weekday(), Weekday::Sat | Weekday::Sun) {
                left -= 1;
            }
        }
        day
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(y: i32, m: u32, day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(y, m, day).unwrap()
    }

    #[test]
    fn settlement_skips_holidays_known_to_the_calendar() {
        // 2024-09-16..18 was 추석; a trade on Friday 09-13 settles Friday 09-20.
        let cal = TradingCalendar::new(vec![d(2024, 9, 12), d(2024, 9, 13), d(2024, 9, 19), d(2024, 9, 20)]);
        assert_eq!(cal.add_sessions(d(2024, 9, 13), 2), d(2024, 9, 20));
        assert_eq!(cal.add_sessions(d(2024, 9, 12), 2), d(2024, 9, 19));
    }

    #[test]
    fn settlement_past_the_calendar_uses_weekdays() {
        let cal = TradingCalendar::new(vec![d(2024, 12, 26), d(2024, 12, 27)]);
        // Friday 12-27 + 2 sessions → Tuesday 12-31 (weekday assumption past the data).
        assert_eq!(cal.add_sessions(d(2024, 12, 27), 2), d(2024, 12, 31));
        assert_eq!(cal.add_sessions(d(2024, 12, 26), 2), d(2024, 12, 30));
        assert_eq!(TradingCalendar::default().add_sessions(d(2024, 12, 27), 2), d(2024, 12, 31));
    }
}
