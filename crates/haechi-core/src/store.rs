//! The columnar in-memory market store the engine runs on.
//!
//! One dense column per field, instrument-major: instrument `i`'s bars for every session are
//! contiguous, so a strategy reading one ticker's closes walks memory in order. Prices are
//! `u32` won (KRX's highest-priced stocks trade in the low millions) and volume `u64`:
//! 24 bytes per (instrument, session) cell. A session where an instrument has no bar stores
//! zeros; `open == 0` means "no bar".

use crate::calendar::TradingCalendar;
use crate::market::{Market, Ticker};
use crate::money::Price;
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::HashMap;

/// Static facts about one listed instrument.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Instrument {
    pub ticker: Ticker,
    pub name: String,
    pub market: Market,
    pub sector: String,
}

/// A benchmark index (KOSPI = `KS11`, KOSDAQ = `KQ11`, …), aligned to the store's sessions.
/// `NaN` marks a session without a value.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct IndexSeries {
    pub name: String,
    pub close: Vec<f64>,
}

/// Raw values of one bar as stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct RawBar {
    pub open: u32,
    pub high: u32,
    pub low: u32,
    pub close: u32,
    pub volume: u64,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error("session dates must be strictly increasing")]
    DatesNotIncreasing,
    #[error("ticker {0} appears twice")]
    DuplicateTicker(Ticker),
    #[error("index {0} has {1} values for {2} sessions")]
    IndexLength(String, usize, usize),
    #[error("session {0} is not a trading day of the exchange calendar")]
    NotInCalendar(NaiveDate),
}

/// Where a store's trading calendar came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, serde::Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CalendarSource {
    /// The exchange's own list of trading days (`calendar.csv`, the database's sessions).
    Exchange,
    /// The union of the loaded bars' dates: a day every loaded name was halted is missing,
    /// so settlement dates and day orders can be wrong. Reports warn about it.
    BarUnion,
}

/// Builds a [`MarketStore`] one instrument at a time.
#[derive(Debug)]
pub struct StoreBuilder {
    store: MarketStore,
}

impl StoreBuilder {
    /// # Errors
    /// [`StoreError::DatesNotIncreasing`] unless `sessions` is strictly increasing.
    pub fn new(sessions: Vec<NaiveDate>) -> Result<StoreBuilder, StoreError> {
        if sessions.windows(2).any(|w| w[0] >= w[1]) {
            return Err(StoreError::DatesNotIncreasing);
        }
        Ok(StoreBuilder {
            store: MarketStore {
                dates: sessions,
                instruments: Vec::new(),
                by_ticker: HashMap::new(),
                open: Vec::new(),
                high: Vec::new(),
                low: Vec::new(),
                close: Vec::new(),
                volume: Vec::new(),
                indices: Vec::new(),
                calendar: TradingCalendar::default(),
                calendar_source: CalendarSource::BarUnion,
            },
        })
    }

    /// Uses the exchange's trading days for settlement and checks that every session is one
    /// of them. Without it the calendar is the sessions themselves ([`CalendarSource::BarUnion`]).
    ///
    /// # Errors
    /// [`StoreError::NotInCalendar`] for a session the exchange did not trade, inside the
    /// calendar's range (sessions outside it are allowed: a calendar file can be older than the
    /// data, and settlement then counts weekdays).
    pub fn exchange_calendar(&mut self, calendar: TradingCalendar) -> Result<(), StoreError> {
        let days = calendar.sessions();
        if let (Some(first), Some(last)) = (days.first(), days.last()) {
            for d in &self.store.dates {
                if (first..=last).contains(&d) && days.binary_search(d).is_err() {
                    return Err(StoreError::NotInCalendar(*d));
                }
            }
        }
        self.store.calendar = calendar;
        self.store.calendar_source = CalendarSource::Exchange;
        Ok(())
    }

    /// Reserves room for `n` instruments, avoiding reallocation of the columns.
    pub fn reserve(&mut self, n: usize) {
        let cells = n * self.store.dates.len();
        let s = &mut self.store;
        s.open.reserve(cells);
        s.high.reserve(cells);
        s.low.reserve(cells);
        s.close.reserve(cells);
        s.volume.reserve(cells);
    }

    /// Adds an instrument whose bars are `(session index, bar)` pairs; sessions not given
    /// have no bar. Returns its slot.
    ///
    /// # Errors
    /// [`StoreError::DuplicateTicker`] if the ticker was added before.
    pub fn add(
        &mut self,
        instrument: Instrument,
        bars: impl IntoIterator<Item = (usize, RawBar)>,
    ) -> Result<usize, StoreError> {
        let s = &mut self.store;
        if s.by_ticker.contains_key(&instrument.ticker) {
            return Err(StoreError::DuplicateTicker(instrument.ticker));
        }
        let n = s.dates.len();
        let slot = s.instruments.len();
        let base = s.open.len();
        s.open.resize(base + n, 0);
        s.high.resize(base + n, 0);
        s.low.resize(base + n, 0);
        s.close.resize(base + n, 0);
        s.volume.resize(base + n, 0);
        for (day, b) in bars {
            if day < n {
                let k = base + day;
                s.open[k] = b.open;
                s.high[k] = b.high;
                s.low[k] = b.low;
                s.close[k] = b.close;
                s.volume[k] = b.volume;
            }
        }
        s.by_ticker.insert(instrument.ticker, slot);
        s.instruments.push(instrument);
        Ok(slot)
    }

    /// Adds a benchmark index aligned to the sessions.
    ///
    /// # Errors
    /// [`StoreError::IndexLength`] if `close` does not have one value per session.
    pub fn add_index(&mut self, index: IndexSeries) -> Result<(), StoreError> {
        if index.close.len() != self.store.dates.len() {
            return Err(StoreError::IndexLength(index.name, index.close.len(), self.store.dates.len()));
        }
        self.store.indices.push(index);
        Ok(())
    }

    #[must_use]
    pub fn build(mut self) -> MarketStore {
        if self.store.calendar_source == CalendarSource::BarUnion {
            self.store.calendar = TradingCalendar::new(self.store.dates.clone());
        }
        self.store
    }
}

/// Daily bars for many instruments over one shared session calendar.
#[derive(Debug, Clone)]
pub struct MarketStore {
    dates: Vec<NaiveDate>,
    instruments: Vec<Instrument>,
    by_ticker: HashMap<Ticker, usize>,
    open: Vec<u32>,
    high: Vec<u32>,
    low: Vec<u32>,
    close: Vec<u32>,
    volume: Vec<u64>,
    indices: Vec<IndexSeries>,
    calendar: TradingCalendar,
    calendar_source: CalendarSource,
}

impl MarketStore {
    #[must_use]
    pub fn dates(&self) -> &[NaiveDate] {
        &self.dates
    }
    #[must_use]
    pub fn n_days(&self) -> usize {
        self.dates.len()
    }
    #[must_use]
    pub fn n_instruments(&self) -> usize {
        self.instruments.len()
    }
    #[must_use]
    pub fn instruments(&self) -> &[Instrument] {
        &self.instruments
    }
    #[must_use]
    pub fn instrument(&self, slot: usize) -> &Instrument {
        &self.instruments[slot]
    }
    #[must_use]
    pub fn slot_of(&self, ticker: Ticker) -> Option<usize> {
        self.by_ticker.get(&ticker).copied()
    }
    /// The trading calendar used for settlement (T+2).
    #[must_use]
    pub fn calendar(&self) -> &TradingCalendar {
        &self.calendar
    }
    #[must_use]
    pub fn calendar_source(&self) -> CalendarSource {
        self.calendar_source
    }
    #[must_use]
    pub fn index(&self, name: &str) -> Option<&IndexSeries> {
        self.indices.iter().find(|i| i.name.eq_ignore_ascii_case(name))
    }
    #[must_use]
    pub fn indices(&self) -> &[IndexSeries] {
        &self.indices
    }

    /// Session index of `date`, or of the first session after it.
    #[must_use]
    pub fn session_at_or_after(&self, date: NaiveDate) -> usize {
        self.dates.partition_point(|d| *d < date)
    }

    fn range(&self, slot: usize) -> std::ops::Range<usize> {
        let n = self.dates.len();
        slot * n..(slot + 1) * n
    }

    /// Every session's close for `slot` (0 where there is no bar). Callers that must not see
    /// the future slice it themselves; the engine hands strategies a bounded view.
    #[must_use]
    pub fn closes(&self, slot: usize) -> &[u32] {
        &self.close[self.range(slot)]
    }
    #[must_use]
    pub fn volumes(&self, slot: usize) -> &[u64] {
        &self.volume[self.range(slot)]
    }

    /// The bar of `slot` on session `day`, if it has one.
    #[inline]
    #[must_use]
    pub fn raw(&self, slot: usize, day: usize) -> Option<RawBar> {
        let k = slot * self.dates.len() + day;
        let open = *self.open.get(k)?;
        (open != 0).then(|| RawBar {
            open,
            high: self.high[k],
            low: self.low[k],
            close: self.close[k],
            volume: self.volume[k],
        })
    }

    /// The close of `slot` on `day` as a price, if it has a bar.
    #[inline]
    #[must_use]
    pub fn close(&self, slot: usize, day: usize) -> Option<Price> {
        let k = slot * self.dates.len() + day;
        self.close.get(k).and_then(|c| Price::new(i64::from(*c)))
    }

    /// The most recent close at or before `day` (a halted stock keeps its last price).
    #[must_use]
    pub fn last_close(&self, slot: usize, day: usize) -> Option<Price> {
        let col = self.closes(slot);
        let end = (day + 1).min(col.len());
        col[..end].iter().rev().find(|c| **c != 0).and_then(|c| Price::new(i64::from(*c)))
    }

    /// Number of (instrument, session) cells that hold a bar.
    #[must_use]
    pub fn bar_count(&self) -> usize {
        self.open.iter().filter(|o| **o != 0).count()
    }

    /// Heap bytes held by the store (columns, instruments, index series), for memory budgets.
    #[must_use]
    pub fn heap_bytes(&self) -> usize {
        let cols = self.open.capacity() * 4
            + self.high.capacity() * 4
            + self.low.capacity() * 4
            + self.close.capacity() * 4
            + self.volume.capacity() * 8;
        let inst: usize = self
            .instruments
            .iter()
            .map(|i| std::mem::size_of::<Instrument>() + i.name.capacity() + i.sector.capacity())
            .sum();
        let map = self.by_ticker.capacity() * (std::mem::size_of::<(Ticker, usize)>() + 1);
        let idx: usize = self.indices.iter().map(|i| i.close.capacity() * 8 + i.name.capacity()).sum();
        cols + inst + map + idx + self.dates.capacity() * std::mem::size_of::<NaiveDate>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(day: u32) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 1, day).unwrap()
    }
    fn inst(code: &str) -> Instrument {
        Instrument {
            ticker: Ticker::parse(code).unwrap(),
            name: code.into(),
            market: Market::Kospi,
            sector: "x".into(),
        }
    }
    fn bar(c: u32) -> RawBar {
        RawBar { open: c, high: c, low: c, close: c, volume: 10 }
    }

    #[test]
    fn store_keeps_gaps_and_last_close() {
        let mut b = StoreBuilder::new(vec![d(2), d(3), d(4)]).unwrap();
        let a = b.add(inst("000010"), [(0, bar(100)), (2, bar(120))]).unwrap();
        let z = b.add(inst("000020"), [(1, bar(7))]).unwrap();
        assert!(matches!(b.add(inst("000010"), []), Err(StoreError::DuplicateTicker(_))));
        let s = b.build();
        assert_eq!(s.raw(a, 1), None);
        assert_eq!(s.raw(a, 2).unwrap().close, 120);
        assert_eq!(s.last_close(a, 1), Price::new(100));
        assert_eq!(s.last_close(z, 0), None);
        assert_eq!(s.closes(z), &[0, 7, 0]);
        assert_eq!(s.slot_of(Ticker::parse("000020").unwrap()), Some(z));
        assert_eq!(s.bar_count(), 3);
        assert_eq!(s.session_at_or_after(d(1)), 0);
        assert_eq!(s.session_at_or_after(d(3)), 1);
        assert_eq!(s.session_at_or_after(d(9)), 3);
    }

    #[test]
    fn an_exchange_calendar_must_contain_every_session_it_covers() {
        let mut b = StoreBuilder::new(vec![d(2), d(3), d(5)]).unwrap();
        assert_eq!(
            b.exchange_calendar(TradingCalendar::new(vec![d(2), d(4), d(5)])),
            Err(StoreError::NotInCalendar(d(3)))
        );
        // Sessions past the calendar's end are allowed.
        let mut b = StoreBuilder::new(vec![d(2), d(3), d(5)]).unwrap();
        b.exchange_calendar(TradingCalendar::new(vec![d(2), d(3)])).unwrap();
        let s = b.build();
        assert_eq!(s.calendar_source(), CalendarSource::Exchange);
        assert_eq!(s.calendar().sessions(), &[d(2), d(3)]);
        let s = StoreBuilder::new(vec![d(2), d(3)]).unwrap().build();
        assert_eq!((s.calendar_source(), s.calendar().sessions()), (CalendarSource::BarUnion, &[d(2), d(3)][..]));
    }

    #[test]
    fn builder_rejects_unsorted_sessions() {
        assert!(matches!(StoreBuilder::new(vec![d(3), d(2)]), Err(StoreError::DatesNotIncreasing)));
    }
}
