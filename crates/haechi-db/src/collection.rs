//! Market data collection state: the shared KIS token, per-ticker bar coverage, financials, ETL
//! runs with checkpoints, and once-a-day schedule claims. Every "only one may" decision is a
//! conditional `UPDATE` or a primary-key `INSERT`, so it holds across processes on SQLite and
//! MySQL alike.

use std::collections::HashMap;

use sea_orm::sea_query::{Expr, OnConflict};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, QueryFilter, QueryOrder, TransactionTrait,
};

use crate::entity::{bar_coverage, etl_run, financial, instrument, kis_token, schedule_claim};
use crate::market::{BarRow, upsert_bar_chunk};
use crate::{Db, DbError, now_ms};

pub type KisTokenRow = kis_token::Model;
pub type FinancialRow = financial::Model;
pub type EtlRun = etl_run::Model;

/// ETL run states.
pub mod etl_state {
    pub const RUNNING: &str = "running";
    pub const SUCCEEDED: &str = "succeeded";
    pub const FAILED: &str = "failed";
}

/// How an ETL run started.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EtlStart {
    New(EtlRun),
    /// A run with the same parameters whose owner stopped heartbeating: taken over with its
    /// checkpoint.
    Resumed(EtlRun),
}

impl EtlStart {
    #[must_use]
    pub fn run(&self) -> &EtlRun {
        match self {
            EtlStart::New(r) | EtlStart::Resumed(r) => r,
        }
    }
}

impl Db {
    /// The stored token row of `key`, if any.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn kis_token(&self, key: &str) -> Result<Option<KisTokenRow>, DbError> {
        Ok(kis_token::Entity::find_by_id(key.to_owned()).one(self.connection()).await?)
    }

    /// Takes the issuing lease of `key` if it is free or expired.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn kis_token_try_lease(&self, key: &str, holder: &str, now: i64, until: i64) -> Result<bool, DbError> {
        // Make sure the row exists; a concurrent insert of the same key is harmless.
        kis_token::Entity::insert(kis_token::ActiveModel {
            key: Set(key.to_owned()),
            access_token: Set(None),
            expires_at: Set(None),
            last_issue_at: Set(None),
            lease_holder: Set(None),
            lease_until: Set(0),
            updated_at: Set(now),
        })
        .exec_without_returning(self.connection())
        .await
        .or_else(|e| if crate::repo::is_unique_violation(&e) { Ok(0) } else { Err(e) })?;
        let res = kis_token::Entity::update_many()
            .col_expr(kis_token::Column::LeaseHolder, Expr::value(holder))
            .col_expr(kis_token::Column::LeaseUntil, Expr::value(until))
            .col_expr(kis_token::Column::UpdatedAt, Expr::value(now))
            .filter(kis_token::Column::Key.eq(key))
            .filter(kis_token::Column::LeaseUntil.lte(now))
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Records an issuance (and its token, when KIS gave one) and frees `holder`'s lease.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn kis_token_finish(
        &self,
        key: &str,
        holder: &str,
        token: Option<(&str, i64)>,
        issued_at: i64,
    ) -> Result<(), DbError> {
        let mut q = kis_token::Entity::update_many()
            .col_expr(kis_token::Column::LastIssueAt, Expr::value(issued_at))
            .col_expr(kis_token::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(kis_token::Column::Key.eq(key));
        if let Some((t, exp)) = token {
            q = q
                .col_expr(kis_token::Column::AccessToken, Expr::value(t))
                .col_expr(kis_token::Column::ExpiresAt, Expr::value(exp));
        }
        q.exec(self.connection()).await?;
        self.kis_token_release(key, holder).await
    }

    /// Frees `holder`'s lease, if it still holds it.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn kis_token_release(&self, key: &str, holder: &str) -> Result<(), DbError> {
        kis_token::Entity::update_many()
            .col_expr(kis_token::Column::LeaseHolder, Expr::value(Option::<String>::None))
            .col_expr(kis_token::Column::LeaseUntil, Expr::value(0i64))
            .filter(kis_token::Column::Key.eq(key))
            .filter(kis_token::Column::LeaseHolder.eq(holder))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Bar coverage (first day, last day as `yyyymmdd`) by ticker.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn bar_coverage(&self) -> Result<HashMap<String, (i32, i32)>, DbError> {
        Ok(bar_coverage::Entity::find()
            .all(self.connection())
            .await?
            .into_iter()
            .map(|c| (c.ticker, (c.first_day, c.last_day)))
            .collect())
    }

    /// Stores one page of a ticker's bars and its new coverage in one transaction: after a crash
    /// either both are there or neither, so the coverage never claims bars that are missing.
    ///
    /// # Errors
    /// The driver's error; nothing is written then.
    pub async fn store_bar_page(&self, ticker: &str, rows: &[BarRow], coverage: (i32, i32)) -> Result<(), DbError> {
        let tx = self.connection().begin().await?;
        for chunk in rows.chunks(2_000) {
            upsert_bar_chunk(&tx, chunk).await?;
        }
        bar_coverage::Entity::insert(bar_coverage::ActiveModel {
            ticker: Set(ticker.to_owned()),
            first_day: Set(coverage.0),
            last_day: Set(coverage.1),
            updated_at: Set(now_ms()),
        })
        .on_conflict(
            OnConflict::column(bar_coverage::Column::Ticker)
                .update_columns([
                    bar_coverage::Column::FirstDay,
                    bar_coverage::Column::LastDay,
                    bar_coverage::Column::UpdatedAt,
                ])
                .to_owned(),
        )
        .exec_without_returning(&tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    /// Instruments, optionally of one market, by ticker.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn instruments(&self, market: Option<&str>) -> Result<Vec<instrument::Model>, DbError> {
        let mut q = instrument::Entity::find().order_by_asc(instrument::Column::Ticker);
        if let Some(m) = market {
            q = q.filter(instrument::Column::Market.eq(m));
        }
        Ok(q.all(self.connection()).await?)
    }

    /// Inserts or replaces financial rows.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn upsert_financials(&self, rows: &[FinancialRow]) -> Result<u64, DbError> {
        if rows.is_empty() {
            return Ok(0);
        }
        use financial::Column as C;
        financial::Entity::insert_many(rows.iter().cloned().map(financial::ActiveModel::from))
            .on_conflict(
                OnConflict::columns([C::Ticker, C::Period, C::Kind])
                    .update_columns([
                        C::Revenue,
                        C::OperatingProfit,
                        C::NetIncome,
                        C::TotalAssets,
                        C::TotalLiabilities,
                        C::TotalEquity,
                        C::RevenueGrowth,
                        C::OperatingProfitGrowth,
                        C::NetIncomeGrowth,
                        C::Roe,
                        C::Eps,
                        C::Bps,
                        C::DebtRatio,
                        C::UpdatedAt,
                    ])
                    .to_owned(),
            )
            .exec_without_returning(self.connection())
            .await?;
        Ok(rows.len() as u64)
    }

    /// Financial rows of `ticker`, newest period first.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn financials(&self, ticker: &str) -> Result<Vec<FinancialRow>, DbError> {
        Ok(financial::Entity::find()
            .filter(financial::Column::Ticker.eq(ticker))
            .order_by_desc(financial::Column::Period)
            .all(self.connection())
            .await?)
    }

    /// Starts an ETL run, or takes over the newest unfinished run of the same kind and parameters
    /// whose owner has not heartbeat for `stale_ms` (it crashed). A live one is left alone and
    /// reported as a conflict.
    ///
    /// # Errors
    /// [`DbError::Conflict`] when a live run with the same parameters exists; the driver's error.
    pub async fn start_etl_run(
        &self,
        kind: &str,
        params: &str,
        owner: &str,
        stale_ms: i64,
    ) -> Result<EtlStart, DbError> {
        let now = now_ms();
        let open = etl_run::Entity::find()
            .filter(etl_run::Column::Kind.eq(kind))
            .filter(etl_run::Column::State.eq(etl_state::RUNNING))
            .order_by_desc(etl_run::Column::Id)
            .all(self.connection())
            .await?;
        if let Some(run) = open.into_iter().find(|r| r.params == params) {
            if run.heartbeat_at > now - stale_ms {
                return Err(DbError::Conflict("a live ETL run with these parameters"));
            }
            // Compare-and-set on the old owner and heartbeat: two restarts cannot both take over.
            let res = etl_run::Entity::update_many()
                .col_expr(etl_run::Column::Owner, Expr::value(owner))
                .col_expr(etl_run::Column::HeartbeatAt, Expr::value(now))
                .filter(etl_run::Column::Id.eq(run.id))
                .filter(etl_run::Column::Owner.eq(run.owner.clone()))
                .filter(etl_run::Column::HeartbeatAt.eq(run.heartbeat_at))
                .exec(self.connection())
                .await?;
            if res.rows_affected == 1 {
                let taken = etl_run::Entity::find_by_id(run.id)
                    .one(self.connection())
                    .await?
                    .ok_or(DbError::NotFound("ETL run"))?;
                return Ok(EtlStart::Resumed(taken));
            }
            return Err(DbError::Conflict("a live ETL run with these parameters"));
        }
        let run = etl_run::ActiveModel {
            kind: Set(kind.to_owned()),
            params: Set(params.to_owned()),
            state: Set(etl_state::RUNNING.to_owned()),
            owner: Set(owner.to_owned()),
            heartbeat_at: Set(now),
            started_at: Set(now),
            finished_at: Set(None),
            requests: Set(0),
            rows_upserted: Set(0),
            findings: Set(0),
            checkpoint: Set(None),
            report_key: Set(None),
            error: Set(None),
            ..Default::default()
        }
        .insert(self.connection())
        .await?;
        Ok(EtlStart::New(run))
    }

    /// Saves progress of a run `owner` holds; false when another process took it over.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn etl_checkpoint(
        &self,
        id: i64,
        owner: &str,
        checkpoint: &str,
        requests: i64,
        rows: i64,
    ) -> Result<bool, DbError> {
        let res = etl_run::Entity::update_many()
            .col_expr(etl_run::Column::Checkpoint, Expr::value(checkpoint))
            .col_expr(etl_run::Column::Requests, Expr::value(requests))
            .col_expr(etl_run::Column::RowsUpserted, Expr::value(rows))
            .col_expr(etl_run::Column::HeartbeatAt, Expr::value(now_ms()))
            .filter(etl_run::Column::Id.eq(id))
            .filter(etl_run::Column::Owner.eq(owner))
            .filter(etl_run::Column::State.eq(etl_state::RUNNING))
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Ends a run `owner` holds.
    ///
    /// # Errors
    /// The driver's error.
    #[allow(clippy::too_many_arguments)]
    pub async fn finish_etl_run(
        &self,
        id: i64,
        owner: &str,
        state: &str,
        requests: i64,
        rows: i64,
        findings: i64,
        report_key: Option<&str>,
        error: Option<&str>,
    ) -> Result<bool, DbError> {
        let res = etl_run::Entity::update_many()
            .col_expr(etl_run::Column::State, Expr::value(state))
            .col_expr(etl_run::Column::FinishedAt, Expr::value(now_ms()))
            .col_expr(etl_run::Column::HeartbeatAt, Expr::value(now_ms()))
            .col_expr(etl_run::Column::Requests, Expr::value(requests))
            .col_expr(etl_run::Column::RowsUpserted, Expr::value(rows))
            .col_expr(etl_run::Column::Findings, Expr::value(findings))
            .col_expr(etl_run::Column::ReportKey, Expr::value(report_key.map(str::to_owned)))
            .col_expr(etl_run::Column::Error, Expr::value(error.map(str::to_owned)))
            .filter(etl_run::Column::Id.eq(id))
            .filter(etl_run::Column::Owner.eq(owner))
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// ETL runs, newest first.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn etl_runs(&self, limit: u64) -> Result<Vec<EtlRun>, DbError> {
        use sea_orm::QuerySelect;
        Ok(etl_run::Entity::find().order_by_desc(etl_run::Column::Id).limit(limit).all(self.connection()).await?)
    }

    /// Claims schedule `name` for `day`. True for exactly one caller per day, unless that caller
    /// stopped heartbeating for `stale_ms` without finishing, when the next caller takes over.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn claim_schedule(&self, name: &str, day: i32, owner: &str, stale_ms: i64) -> Result<bool, DbError> {
        let now = now_ms();
        let inserted = schedule_claim::Entity::insert(schedule_claim::ActiveModel {
            name: Set(name.to_owned()),
            day: Set(day),
            owner: Set(owner.to_owned()),
            state: Set("running".to_owned()),
            heartbeat_at: Set(now),
            started_at: Set(now),
            finished_at: Set(None),
        })
        .exec_without_returning(self.connection())
        .await
        .or_else(|e| if crate::repo::is_unique_violation(&e) { Ok(0) } else { Err(e) })?;
        if inserted == 1 {
            return Ok(true);
        }
        let res = schedule_claim::Entity::update_many()
            .col_expr(schedule_claim::Column::Owner, Expr::value(owner))
            .col_expr(schedule_claim::Column::HeartbeatAt, Expr::value(now))
            .filter(schedule_claim::Column::Name.eq(name))
            .filter(schedule_claim::Column::Day.eq(day))
            .filter(schedule_claim::Column::State.eq("running"))
            .filter(schedule_claim::Column::HeartbeatAt.lt(now - stale_ms))
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Keeps `owner`'s claim alive; false if it was taken over.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn schedule_heartbeat(&self, name: &str, day: i32, owner: &str) -> Result<bool, DbError> {
        let res = schedule_claim::Entity::update_many()
            .col_expr(schedule_claim::Column::HeartbeatAt, Expr::value(now_ms()))
            .filter(schedule_claim::Column::Name.eq(name))
            .filter(schedule_claim::Column::Day.eq(day))
            .filter(schedule_claim::Column::Owner.eq(owner))
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Marks the day's schedule `done` or `failed`.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn finish_schedule(&self, name: &str, day: i32, owner: &str, state: &str) -> Result<(), DbError> {
        schedule_claim::Entity::update_many()
            .col_expr(schedule_claim::Column::State, Expr::value(state))
            .col_expr(schedule_claim::Column::FinishedAt, Expr::value(now_ms()))
            .filter(schedule_claim::Column::Name.eq(name))
            .filter(schedule_claim::Column::Day.eq(day))
            .filter(schedule_claim::Column::Owner.eq(owner))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Every claim of schedule `name`, oldest day first.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn schedule_claims(&self, name: &str) -> Result<Vec<schedule_claim::Model>, DbError> {
        Ok(schedule_claim::Entity::find()
            .filter(schedule_claim::Column::Name.eq(name))
            .order_by_asc(schedule_claim::Column::Day)
            .all(self.connection())
            .await?)
    }
}

impl Db {
    /// Bars of `tickers` between two `yyyymmdd` days, by ticker then day.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn bars_between(&self, tickers: &[String], from: i32, to: i32) -> Result<Vec<BarRow>, DbError> {
        use crate::entity::daily_bar;
        let mut out = Vec::new();
        // Bounded IN lists: SQLite and MySQL both cap bound parameters.
        for chunk in tickers.chunks(500) {
            out.extend(
                daily_bar::Entity::find()
                    .filter(daily_bar::Column::Ticker.is_in(chunk.iter().cloned()))
                    .filter(daily_bar::Column::Day.between(from, to))
                    .order_by_asc(daily_bar::Column::Ticker)
                    .order_by_asc(daily_bar::Column::Day)
                    .all(self.connection())
                    .await?,
            );
        }
        Ok(out)
    }

    /// Number of stored daily bars.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn count_bars(&self) -> Result<u64, DbError> {
        use sea_orm::PaginatorTrait;
        Ok(crate::entity::daily_bar::Entity::find().count(self.connection()).await?)
    }
}

impl Db {
    /// Marks `from..=to` (`yyyymmdd`) as collected for every instrument without coverage: for
    /// bars loaded by other means (the demo's synthetic market, a CSV import) so that collection
    /// only looks for days outside them.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn seed_bar_coverage(&self, from: i32, to: i32) -> Result<u64, DbError> {
        let have = self.bar_coverage().await?;
        let now = now_ms();
        let rows: Vec<bar_coverage::ActiveModel> = self
            .instruments(None)
            .await?
            .into_iter()
            .filter(|i| !have.contains_key(&i.ticker))
            .map(|i| bar_coverage::ActiveModel {
                ticker: Set(i.ticker),
                first_day: Set(from),
                last_day: Set(to),
                updated_at: Set(now),
            })
            .collect();
        let n = rows.len() as u64;
        for chunk in rows.chunks(2_000) {
            bar_coverage::Entity::insert_many(chunk.to_vec()).exec_without_returning(self.connection()).await?;
        }
        Ok(n)
    }
}
