//! Market data in SQL: instruments, daily bars, benchmark index closes, and the data version
//! every load bumps so workers know when their cached columnar store is stale.

use crate::entity::{daily_bar, data_version, index_close, instrument, market_session};
use crate::{Db, DbError, now_ms};
use sea_orm::sea_query::OnConflict;
use sea_orm::{ActiveValue::Set, ConnectionTrait, EntityTrait, QueryOrder, QuerySelect, TransactionTrait};

pub type InstrumentRow = instrument::Model;
pub type BarRow = daily_bar::Model;
pub type IndexRow = index_close::Model;
pub type DataVersion = data_version::Model;

/// Rows per multi-row `INSERT`: under SQLite's 32,766 bound parameters and MySQL's 65,535.
const CHUNK: usize = 2_000;

/// Everything needed to build a columnar store, bars ordered by ticker then day.
#[derive(Debug, Clone, Default)]
pub struct MarketRows {
    pub instruments: Vec<InstrumentRow>,
    pub bars: Vec<BarRow>,
    pub indices: Vec<IndexRow>,
    /// The exchange's trading days (`yyyymmdd`, ascending); empty when none was loaded.
    pub sessions: Vec<i32>,
}

impl Db {
    /// Inserts or replaces instruments.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn upsert_instruments(&self, rows: &[InstrumentRow]) -> Result<u64, DbError> {
        let tx = self.connection().begin().await?;
        for chunk in rows.chunks(CHUNK) {
            instrument::Entity::insert_many(chunk.iter().map(|r| instrument::ActiveModel {
                ticker: Set(r.ticker.clone()),
                name: Set(r.name.clone()),
                market: Set(r.market.clone()),
                sector: Set(r.sector.clone()),
                updated_at: Set(r.updated_at),
            }))
            .on_conflict(
                OnConflict::column(instrument::Column::Ticker)
                    .update_columns([
                        instrument::Column::Name,
                        instrument::Column::Market,
                        instrument::Column::Sector,
                        instrument::Column::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(&tx)
            .await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// Inserts or replaces daily bars (idempotent: the key is ticker and day).
    ///
    /// # Errors
    /// The driver's error; a failed call writes nothing.
    pub async fn upsert_bars(&self, rows: &[BarRow]) -> Result<u64, DbError> {
        let tx = self.connection().begin().await?;
        for chunk in rows.chunks(CHUNK) {
            upsert_bar_chunk(&tx, chunk).await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// Inserts or replaces benchmark index closes.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn upsert_index_closes(&self, rows: &[IndexRow]) -> Result<u64, DbError> {
        let tx = self.connection().begin().await?;
        for chunk in rows.chunks(CHUNK) {
            index_close::Entity::insert_many(chunk.iter().map(|r| index_close::ActiveModel {
                name: Set(r.name.clone()),
                day: Set(r.day),
                close: Set(r.close),
            }))
            .on_conflict(
                OnConflict::columns([index_close::Column::Name, index_close::Column::Day])
                    .update_column(index_close::Column::Close)
                    .to_owned(),
            )
            .exec_without_returning(&tx)
            .await?;
        }
        tx.commit().await?;
        Ok(rows.len() as u64)
    }

    /// Adds trading days to the exchange calendar (idempotent).
    ///
    /// # Errors
    /// The driver's error; a failed call writes nothing.
    pub async fn upsert_sessions(&self, days: &[i32]) -> Result<u64, DbError> {
        let tx = self.connection().begin().await?;
        for chunk in days.chunks(CHUNK) {
            market_session::Entity::insert_many(chunk.iter().map(|d| market_session::ActiveModel { day: Set(*d) }))
                // Updating the key to itself is a no-op both SQLite and MySQL accept.
                .on_conflict(
                    OnConflict::column(market_session::Column::Day)
                        .update_column(market_session::Column::Day)
                        .to_owned(),
                )
                .exec_without_returning(&tx)
                .await?;
        }
        tx.commit().await?;
        Ok(days.len() as u64)
    }

    /// Records a new market data version after a load.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn add_data_version(
        &self,
        source: &str,
        synthetic: bool,
        note: &str,
        rows: i64,
    ) -> Result<DataVersion, DbError> {
        use sea_orm::ActiveModelTrait;
        Ok(data_version::ActiveModel {
            source: Set(source.to_owned()),
            synthetic: Set(synthetic),
            note: Set(note.to_owned()),
            rows: Set(rows),
            created_at: Set(now_ms()),
            ..Default::default()
        }
        .insert(self.connection())
        .await?)
    }

    /// The current market data version, `None` before any load.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn data_version(&self) -> Result<Option<DataVersion>, DbError> {
        Ok(data_version::Entity::find().order_by_desc(data_version::Column::Id).limit(1).one(self.connection()).await?)
    }

    /// Reads the whole market (for building the columnar store).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn load_market(&self) -> Result<MarketRows, DbError> {
        let c = self.connection();
        let instruments = instrument::Entity::find().order_by_asc(instrument::Column::Ticker).all(c).await?;
        let bars = daily_bar::Entity::find()
            .order_by_asc(daily_bar::Column::Ticker)
            .order_by_asc(daily_bar::Column::Day)
            .all(c)
            .await?;
        let indices = index_close::Entity::find()
            .order_by_asc(index_close::Column::Name)
            .order_by_asc(index_close::Column::Day)
            .all(c)
            .await?;
        let sessions = market_session::Entity::find()
            .order_by_asc(market_session::Column::Day)
            .all(c)
            .await?
            .into_iter()
            .map(|s| s.day)
            .collect();
        Ok(MarketRows { instruments, bars, indices, sessions })
    }
}

pub(crate) async fn upsert_bar_chunk(c: &impl ConnectionTrait, chunk: &[BarRow]) -> Result<(), DbError> {
    daily_bar::Entity::insert_many(chunk.iter().map(|r| daily_bar::ActiveModel {
        ticker: Set(r.ticker.clone()),
        day: Set(r.day),
        open: Set(r.open),
        high: Set(r.high),
        low: Set(r.low),
        close: Set(r.close),
        volume: Set(r.volume),
    }))
    .on_conflict(
        OnConflict::columns([daily_bar::Column::Ticker, daily_bar::Column::Day])
            .update_columns([
                daily_bar::Column::Open,
                daily_bar::Column::High,
                daily_bar::Column::Low,
                daily_bar::Column::Close,
                daily_bar::Column::Volume,
            ])
            .to_owned(),
    )
    .exec_without_returning(c)
    .await?;
    Ok(())
}
