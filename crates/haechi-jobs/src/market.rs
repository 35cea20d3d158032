//! The bridge between market data in SQL and the engine's columnar store, and the cache that
//! keeps one built store per process until the data version changes.

use chrono::{Datelike, NaiveDate};
use haechi_core::{
    CalendarSource, IndexSeries, Instrument, Market, MarketStore, RawBar, StoreBuilder, Ticker, TradingCalendar,
};
use haechi_db::{BarRow, Db, DbError, IndexRow, InstrumentRow, MarketRows, now_ms};
use std::collections::{BTreeSet, HashMap};
use std::sync::Arc;
use tokio::sync::Mutex;

#[derive(Debug, thiserror::Error)]
pub enum MarketError {
    #[error("no market data loaded yet: run `haechi data load` (or `haechi demo`) first")]
    NoData,
    #[error("market data in the database is inconsistent: {0}")]
    Inconsistent(String),
    #[error(transparent)]
    Db(#[from] DbError),
}

/// `yyyymmdd` as stored.
#[must_use]
pub fn day_number(d: NaiveDate) -> i32 {
    d.year() * 10_000 + (d.month() as i32) * 100 + d.day() as i32
}

#[must_use]
pub fn day_from_number(n: i32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(n / 10_000, (n / 100 % 100) as u32, (n % 100) as u32)
}

/// A store's content as rows, for loading it into the database.
#[must_use]
pub fn rows_from_store(store: &MarketStore) -> MarketRows {
    let now = now_ms();
    let days: Vec<i32> = store.dates().iter().map(|d| day_number(*d)).collect();
    let mut rows = MarketRows::default();
    rows.bars.reserve(store.bar_count());
    for (slot, inst) in store.instruments().iter().enumerate() {
        rows.instruments.push(InstrumentRow {
            ticker: inst.ticker.to_string(),
            name: inst.name.clone(),
            market: inst.market.to_string(),
            sector: inst.sector.clone(),
            updated_at: now,
        });
        for (day, n) in days.iter().enumerate() {
            if let Some(b) = store.raw(slot, day).filter(|b| b.open != 0) {
                rows.bars.push(BarRow {
                    ticker: inst.ticker.to_string(),
                    day: *n,
                    open: i64::from(b.open),
                    high: i64::from(b.high),
                    low: i64::from(b.low),
                    close: i64::from(b.close),
                    volume: i64::try_from(b.volume).unwrap_or(i64::MAX),
                });
            }
        }
    }
    for ix in store.indices() {
        for (day, close) in days.iter().zip(&ix.close) {
            if close.is_finite() {
                rows.indices.push(IndexRow { name: ix.name.clone(), day: *day, close: *close });
            }
        }
    }
    if store.calendar_source() == CalendarSource::Exchange {
        rows.sessions = store.calendar().sessions().iter().map(|d| day_number(*d)).collect();
    }
    rows
}

fn price(v: i64, what: &str, ticker: &str, day: i32) -> Result<u32, MarketError> {
    u32::try_from(v).map_err(|_| MarketError::Inconsistent(format!("{ticker} {day}: {what} {v} is out of range")))
}

/// Builds the columnar store from rows (bars ordered by ticker, then day). With an exchange
/// calendar (`rows.sessions`), the sessions are its days from the first to the last bar, plus
/// any bar day it lacks (bars collected after the calendar was loaded extend it); without
/// one, the sorted union of every bar's day.
///
/// # Errors
/// [`MarketError::NoData`] without bars; [`MarketError::Inconsistent`] for rows the store
/// cannot hold (bad tickers, negative prices, bad days).
pub fn store_from_rows(rows: &MarketRows) -> Result<MarketStore, MarketError> {
    if rows.bars.is_empty() {
        return Err(MarketError::NoData);
    }
    let mut days: BTreeSet<i32> = rows.bars.iter().map(|b| b.day).collect();
    let exchange = !rows.sessions.is_empty();
    if let (true, Some(lo), Some(hi)) = (exchange, days.first().copied(), days.last().copied()) {
        days.extend(rows.sessions.iter().filter(|d| (lo..=hi).contains(*d)));
    }
    let mut sessions = Vec::with_capacity(days.len());
    for d in &days {
        sessions.push(day_from_number(*d).ok_or_else(|| MarketError::Inconsistent(format!("bad day {d}")))?);
    }
    let index_of: HashMap<i32, usize> = days.iter().enumerate().map(|(i, d)| (*d, i)).collect();
    let meta: HashMap<&str, &InstrumentRow> = rows.instruments.iter().map(|i| (i.ticker.as_str(), i)).collect();
    let n_tickers = rows.bars.chunk_by(|a, b| a.ticker == b.ticker).count();
    let calendar = exchange.then(|| {
        let mut all: BTreeSet<i32> = rows.sessions.iter().copied().collect();
        all.extend(days.iter());
        TradingCalendar::new(all.into_iter().filter_map(day_from_number).collect())
    });
    let mut builder = StoreBuilder::new(sessions).map_err(|e| MarketError::Inconsistent(e.to_string()))?;
    if let Some(calendar) = calendar {
        builder.exchange_calendar(calendar).map_err(|e| MarketError::Inconsistent(e.to_string()))?;
    }
    builder.reserve(n_tickers);
    for group in rows.bars.chunk_by(|a, b| a.ticker == b.ticker) {
        let code = group[0].ticker.as_str();
        let ticker = Ticker::parse(code).map_err(|e| MarketError::Inconsistent(format!("ticker {code:?}: {e}")))?;
        let (name, market, sector) = match meta.get(code) {
            Some(m) => (
                m.name.clone(),
                m.market.parse::<Market>().map_err(|_| {
                    MarketError::Inconsistent(format!("instrument {code}: unknown market {:?}", m.market))
                })?,
                m.sector.clone(),
            ),
            None => (code.to_owned(), Market::Kospi, String::new()),
        };
        let mut bars = Vec::with_capacity(group.len());
        for b in group {
            let Some(day) = index_of.get(&b.day) else { continue };
            bars.push((
                *day,
                RawBar {
                    open: price(b.open, "open", code, b.day)?,
                    high: price(b.high, "high", code, b.day)?,
                    low: price(b.low, "low", code, b.day)?,
                    close: price(b.close, "close", code, b.day)?,
                    volume: u64::try_from(b.volume).unwrap_or(0),
                },
            ));
        }
        builder
            .add(Instrument { ticker, name, market, sector }, bars)
            .map_err(|e| MarketError::Inconsistent(e.to_string()))?;
    }
    for group in rows.indices.chunk_by(|a, b| a.name == b.name) {
        let mut close = vec![f64::NAN; days.len()];
        for r in group {
            if let Some(i) = index_of.get(&r.day) {
                close[*i] = r.close;
            }
        }
        builder
            .add_index(IndexSeries { name: group[0].name.clone(), close })
            .map_err(|e| MarketError::Inconsistent(e.to_string()))?;
    }
    Ok(builder.build())
}

/// Writes a whole store into the database as one new data version.
///
/// # Errors
/// The driver's error; rows written before it stay (upserts are idempotent, so loading
/// again completes the job).
pub async fn load_store_into_db(
    db: &Db,
    store: &MarketStore,
    source: &str,
    synthetic: bool,
    note: &str,
) -> Result<i64, DbError> {
    let rows = rows_from_store(store);
    db.upsert_instruments(&rows.instruments).await?;
    let n = db.upsert_bars(&rows.bars).await?;
    db.upsert_index_closes(&rows.indices).await?;
    db.upsert_sessions(&rows.sessions).await?;
    let v = db.add_data_version(source, synthetic, note, i64::try_from(n).unwrap_or(i64::MAX)).await?;
    Ok(v.id)
}

/// A built store and the version it was built from.
#[derive(Debug, Clone)]
pub struct LoadedMarket {
    pub version: i64,
    pub synthetic: bool,
    pub store: Arc<MarketStore>,
}

/// One store per process, rebuilt when the data version moves; concurrent callers wait for
/// the one build in flight instead of each reading the whole table.
#[derive(Debug, Clone, Default)]
pub struct MarketCache {
    inner: Arc<Mutex<Option<LoadedMarket>>>,
    /// When the data version was last read, and the store then: order entry asks for the
    /// store several times a request, and a new version may take a second to be seen.
    checked: Arc<std::sync::Mutex<Option<(std::time::Instant, LoadedMarket)>>>,
}

/// How long a read of the data version stays good.
const VERSION_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl MarketCache {
    /// The store for the current data version.
    ///
    /// # Errors
    /// [`MarketError::NoData`] before any load; the database's error.
    pub async fn current(&self, db: &Db) -> Result<LoadedMarket, MarketError> {
        let m = self.fetch(db).await?;
        if let Ok(mut c) = self.checked.lock() {
            *c = Some((std::time::Instant::now(), m.clone()));
        }
        Ok(m)
    }

    /// The store as of at most a second ago: for order entry, which asks for it several times
    /// a request (a run or a sweep uses [`MarketCache::current`], which reads the version).
    ///
    /// # Errors
    /// As [`MarketCache::current`].
    pub async fn recent(&self, db: &Db) -> Result<LoadedMarket, MarketError> {
        if let Ok(c) = self.checked.lock()
            && let Some((at, m)) = c.as_ref()
            && at.elapsed() < VERSION_TTL
        {
            return Ok(m.clone());
        }
        let m = self.fetch(db).await?;
        if let Ok(mut c) = self.checked.lock() {
            *c = Some((std::time::Instant::now(), m.clone()));
        }
        Ok(m)
    }

    async fn fetch(&self, db: &Db) -> Result<LoadedMarket, MarketError> {
        let Some(v) = db.data_version().await? else { return Err(MarketError::NoData) };
        let mut slot = self.inner.lock().await;
        if let Some(m) = slot.as_ref().filter(|m| m.version == v.id) {
            return Ok(m.clone());
        }
        let started = std::time::Instant::now();
        let rows = db.load_market().await?;
        let store = tokio::task::spawn_blocking(move || store_from_rows(&rows))
            .await
            .map_err(|e| MarketError::Inconsistent(format!("store build panicked: {e}")))??;
        tracing::info!(
            version = v.id,
            instruments = store.n_instruments(),
            sessions = store.n_days(),
            ms = started.elapsed().as_millis() as u64,
            "market store built"
        );
        let m = LoadedMarket { version: v.id, synthetic: v.synthetic, store: Arc::new(store) };
        *slot = Some(m.clone());
        Ok(m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_numbers_round_trip() {
        let d = NaiveDate::from_ymd_opt(2024, 2, 29).unwrap_or_default();
        assert_eq!(day_number(d), 20240229);
        assert_eq!(day_from_number(20240229), Some(d));
        assert_eq!(day_from_number(20230229), None);
    }

    /// The exchange calendar goes into SQL with the bars and comes back: a day every loaded
    /// name was halted stays a session, and bars collected after the calendar's end extend it.
    #[test]
    fn the_exchange_calendar_survives_the_database_round_trip() {
        let d = |day: u32| NaiveDate::from_ymd_opt(2024, 1, day).unwrap_or_default();
        let mut b = StoreBuilder::new(vec![d(2), d(3), d(4)]).unwrap_or_else(|e| panic!("{e}"));
        b.exchange_calendar(TradingCalendar::new(vec![d(2), d(3), d(4), d(5)])).unwrap_or_else(|e| panic!("{e}"));
        let bar = RawBar { open: 100, high: 110, low: 90, close: 105, volume: 1 };
        let inst = Instrument {
            ticker: Ticker::parse("005930").unwrap_or_else(|e| panic!("{e}")),
            name: "x".into(),
            market: Market::Kosdaq,
            sector: String::new(),
        };
        b.add(inst, [(0, bar), (2, bar)]).unwrap_or_else(|e| panic!("{e}"));
        let mut rows = rows_from_store(&b.build());
        assert_eq!(rows.sessions, [20240102, 20240103, 20240104, 20240105]);
        let back = store_from_rows(&rows).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.dates(), &[d(2), d(3), d(4)]);
        assert_eq!(back.calendar_source(), CalendarSource::Exchange);
        assert_eq!(back.calendar().add_sessions(d(2), 2), d(4));
        assert_eq!(back.instrument(0).market, Market::Kosdaq);
        // A bar after the calendar's last day (collected later) is a session too.
        let mut late = rows.bars[0].clone();
        late.day = 20240108;
        rows.bars.push(late);
        let back = store_from_rows(&rows).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.dates(), &[d(2), d(3), d(4), d(5), d(8)]);
        // Without a calendar: the union of the bars, flagged.
        rows.sessions.clear();
        let back = store_from_rows(&rows).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(back.dates(), &[d(2), d(4), d(8)]);
        assert_eq!(back.calendar_source(), CalendarSource::BarUnion);
    }
}
