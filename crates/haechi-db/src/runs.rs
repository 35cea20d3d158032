//! Simulation runs: a small state machine kept honest by compare-and-set updates, so a run
//! retried after a worker died still finishes exactly once.
//!
//! ```text
//! queued ──claim──▶ running ──finish──▶ succeeded | failed
//!    │                 │
//!    └──cancel──▶ cancelled ◀──cancel requested, seen by the worker
//! ```

use crate::entity::run;
use crate::repo::Page;
use crate::{Db, DbError, now_ms};
use sea_orm::sea_query::{Expr, ExprTrait};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
};

pub type Run = run::Model;

/// Run states as stored.
pub mod state {
    pub const QUEUED: &str = "queued";
    pub const RUNNING: &str = "running";
    pub const SUCCEEDED: &str = "succeeded";
    pub const FAILED: &str = "failed";
    pub const CANCELLED: &str = "cancelled";
    pub const ALL: [&str; 5] = [QUEUED, RUNNING, SUCCEEDED, FAILED, CANCELLED];

    #[must_use]
    pub fn is_final(s: &str) -> bool {
        matches!(s, SUCCEEDED | FAILED | CANCELLED)
    }
}

#[derive(Debug, Clone)]
pub struct NewRun {
    pub owner_id: i64,
    pub scenario_id: i64,
    pub scenario_version: i32,
    pub data_version: i64,
}

/// Summary figures of a finished run, kept in SQL for lists and comparisons.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RunSummary {
    pub total_return: f64,
    pub cagr: Option<f64>,
    pub volatility: Option<f64>,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub max_drawdown: f64,
    pub benchmark_return: Option<f64>,
    pub final_equity: i64,
    pub trade_count: i32,
    pub report_key: String,
    /// The market data version the run actually computed on.
    pub data_version: i64,
}

#[derive(Debug, Clone, Default)]
pub struct RunQuery {
    /// Runs owned by this user …
    pub owner_id: Option<i64>,
    /// … or of this scenario.
    pub scenario_id: Option<i64>,
    pub state: Option<String>,
    pub page: u64,
    pub per_page: u64,
}

/// What claiming a run for an attempt found.
#[derive(Debug, Clone, PartialEq)]
pub enum Claim {
    /// This attempt owns the run now.
    Claimed(Box<Run>),
    /// Nothing to do: the run is finished or cancelled (or gone).
    Finished,
}

/// What a progress update learned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Heartbeat {
    Continue,
    /// The owner asked to cancel.
    CancelRequested,
    /// Another attempt took the run over, or it was finished: stop without writing.
    LeaseLost,
}

impl Db {
    /// # Errors
    /// The driver's error.
    pub async fn create_run(&self, new: NewRun) -> Result<Run, DbError> {
        let now = now_ms();
        Ok(run::ActiveModel {
            owner_id: Set(new.owner_id),
            scenario_id: Set(new.scenario_id),
            scenario_version: Set(new.scenario_version),
            data_version: Set(new.data_version),
            state: Set(state::QUEUED.to_owned()),
            progress: Set(0.0),
            stage: Set("queued".to_owned()),
            error: Set(None),
            attempts: Set(0),
            lease: Set(None),
            cancel_requested: Set(false),
            queued_at: Set(now),
            started_at: Set(None),
            finished_at: Set(None),
            updated_at: Set(now),
            ..Default::default()
        }
        .insert(self.connection())
        .await?)
    }

    /// # Errors
    /// The driver's error.
    pub async fn run_by_id(&self, id: i64) -> Result<Option<Run>, DbError> {
        Ok(run::Entity::find_by_id(id).one(self.connection()).await?)
    }

    /// # Errors
    /// The driver's error.
    pub async fn runs_by_ids(&self, ids: &[i64]) -> Result<Vec<Run>, DbError> {
        Ok(run::Entity::find().filter(run::Column::Id.is_in(ids.iter().copied())).all(self.connection()).await?)
    }

    /// Newest first.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn list_runs(&self, q: &RunQuery) -> Result<Page<Run>, DbError> {
        let mut cond = Condition::all();
        if let Some(o) = q.owner_id {
            cond = cond.add(run::Column::OwnerId.eq(o));
        }
        if let Some(s) = q.scenario_id {
            cond = cond.add(run::Column::ScenarioId.eq(s));
        }
        if let Some(st) = &q.state {
            cond = cond.add(run::Column::State.eq(st.as_str()));
        }
        let pager = run::Entity::find()
            .filter(cond)
            .order_by_desc(run::Column::Id)
            .paginate(self.connection(), Ord::max(q.per_page, 1));
        Ok(Page { total: pager.num_items().await?, items: pager.fetch_page(q.page).await? })
    }

    /// The owner's runs changed at or after `since_ms`, oldest change first (for live updates).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn runs_changed_since(&self, owner_id: i64, since_ms: i64) -> Result<Vec<Run>, DbError> {
        Ok(run::Entity::find()
            .filter(run::Column::OwnerId.eq(owner_id))
            .filter(run::Column::UpdatedAt.gte(since_ms))
            .order_by_asc(run::Column::UpdatedAt)
            .order_by_asc(run::Column::Id)
            .all(self.connection())
            .await?)
    }

    /// Takes the run for one attempt identified by `lease`. A run still marked running under
    /// another lease is taken over: the queue only hands a job out again once the worker
    /// that held it stopped answering.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn claim_run(&self, id: i64, lease: &str) -> Result<Claim, DbError> {
        let now = now_ms();
        // A cancel requested while queued (or before a crash) ends the run here.
        run::Entity::update_many()
            .col_expr(run::Column::State, Expr::value(state::CANCELLED))
            .col_expr(run::Column::Stage, Expr::value("cancelled"))
            .col_expr(run::Column::FinishedAt, Expr::value(now))
            .col_expr(run::Column::UpdatedAt, Expr::value(now))
            .col_expr(run::Column::Lease, Expr::value(Option::<String>::None))
            .filter(run::Column::Id.eq(id))
            .filter(run::Column::State.is_in([state::QUEUED, state::RUNNING]))
            .filter(run::Column::CancelRequested.eq(true))
            .exec(self.connection())
            .await?;
        let res = run::Entity::update_many()
            .col_expr(run::Column::State, Expr::value(state::RUNNING))
            .col_expr(run::Column::Stage, Expr::value("loading"))
            .col_expr(run::Column::Progress, Expr::value(0.0))
            .col_expr(run::Column::Lease, Expr::value(lease))
            .col_expr(run::Column::Attempts, Expr::col(run::Column::Attempts).add(1))
            .col_expr(run::Column::StartedAt, Expr::value(now))
            .col_expr(run::Column::UpdatedAt, Expr::value(now))
            .filter(run::Column::Id.eq(id))
            .filter(run::Column::State.is_in([state::QUEUED, state::RUNNING]))
            .exec(self.connection())
            .await?;
        if res.rows_affected != 1 {
            return Ok(Claim::Finished);
        }
        match self.run_by_id(id).await? {
            Some(r) if r.lease.as_deref() == Some(lease) => Ok(Claim::Claimed(Box::new(r))),
            _ => Ok(Claim::Finished),
        }
    }

    /// Records progress for the attempt holding `lease` and tells it whether to go on.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn run_progress(&self, id: i64, lease: &str, progress: f64, stage: &str) -> Result<Heartbeat, DbError> {
        let res = run::Entity::update_many()
            .col_expr(run::Column::Progress, Expr::value(progress.clamp(0.0, 1.0)))
            .col_expr(run::Column::Stage, Expr::value(stage))
            .col_expr(run::Column::UpdatedAt, Expr::value(now_ms()))
            .filter(run::Column::Id.eq(id))
            .filter(run::Column::Lease.eq(lease))
            .filter(run::Column::State.eq(state::RUNNING))
            .exec(self.connection())
            .await?;
        if res.rows_affected != 1 {
            return Ok(Heartbeat::LeaseLost);
        }
        match self.run_by_id(id).await? {
            Some(r) if r.cancel_requested => Ok(Heartbeat::CancelRequested),
            Some(r) if r.lease.as_deref() == Some(lease) => Ok(Heartbeat::Continue),
            _ => Ok(Heartbeat::LeaseLost),
        }
    }

    /// Marks the run succeeded with its summary, if `lease` still holds it. Returns whether
    /// this call finished it (exactly one attempt can).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn finish_run(&self, id: i64, lease: &str, s: RunSummary) -> Result<bool, DbError> {
        let now = now_ms();
        let res = run::Entity::update_many()
            .col_expr(run::Column::State, Expr::value(state::SUCCEEDED))
            .col_expr(run::Column::Stage, Expr::value("done"))
            .col_expr(run::Column::Progress, Expr::value(1.0))
            .col_expr(run::Column::FinishedAt, Expr::value(now))
            .col_expr(run::Column::UpdatedAt, Expr::value(now))
            .col_expr(run::Column::TotalReturn, Expr::value(s.total_return))
            .col_expr(run::Column::Cagr, Expr::value(s.cagr))
            .col_expr(run::Column::Volatility, Expr::value(s.volatility))
            .col_expr(run::Column::Sharpe, Expr::value(s.sharpe))
            .col_expr(run::Column::Sortino, Expr::value(s.sortino))
            .col_expr(run::Column::MaxDrawdown, Expr::value(s.max_drawdown))
            .col_expr(run::Column::BenchmarkReturn, Expr::value(s.benchmark_return))
            .col_expr(run::Column::FinalEquity, Expr::value(s.final_equity))
            .col_expr(run::Column::TradeCount, Expr::value(s.trade_count))
            .col_expr(run::Column::ReportKey, Expr::value(s.report_key))
            .col_expr(run::Column::DataVersion, Expr::value(s.data_version))
            .filter(run::Column::Id.eq(id))
            .filter(run::Column::Lease.eq(lease))
            .filter(run::Column::State.eq(state::RUNNING))
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected == 1)
    }

    /// Ends the run as failed or cancelled (`final_state`), if `lease` still holds it, or
    /// with no lease, if it has not started.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn end_run(
        &self,
        id: i64,
        lease: Option<&str>,
        final_state: &'static str,
        reason: &str,
    ) -> Result<bool, DbError> {
        let now = now_ms();
        let mut q = run::Entity::update_many()
            .col_expr(run::Column::State, Expr::value(final_state))
            .col_expr(run::Column::Stage, Expr::value(final_state))
            .col_expr(run::Column::Error, Expr::value(reason))
            .col_expr(run::Column::FinishedAt, Expr::value(now))
            .col_expr(run::Column::UpdatedAt, Expr::value(now))
            .filter(run::Column::Id.eq(id));
        q = match lease {
            Some(l) => q.filter(run::Column::Lease.eq(l)).filter(run::Column::State.eq(state::RUNNING)),
            None => q.filter(run::Column::State.is_in([state::QUEUED, state::RUNNING])),
        };
        Ok(q.exec(self.connection()).await?.rows_affected == 1)
    }

    /// Asks to cancel: a queued run ends at once, a running one when its worker next checks.
    /// Returns the run as it is afterwards (`None` if it does not exist).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn request_cancel(&self, id: i64) -> Result<Option<Run>, DbError> {
        let now = now_ms();
        run::Entity::update_many()
            .col_expr(run::Column::State, Expr::value(state::CANCELLED))
            .col_expr(run::Column::Stage, Expr::value("cancelled"))
            .col_expr(run::Column::CancelRequested, Expr::value(true))
            .col_expr(run::Column::Error, Expr::value("cancelled by the owner"))
            .col_expr(run::Column::FinishedAt, Expr::value(now))
            .col_expr(run::Column::UpdatedAt, Expr::value(now))
            .filter(run::Column::Id.eq(id))
            .filter(run::Column::State.eq(state::QUEUED))
            .exec(self.connection())
            .await?;
        run::Entity::update_many()
            .col_expr(run::Column::CancelRequested, Expr::value(true))
            .col_expr(run::Column::UpdatedAt, Expr::value(now))
            .filter(run::Column::Id.eq(id))
            .filter(run::Column::State.eq(state::RUNNING))
            .exec(self.connection())
            .await?;
        self.run_by_id(id).await
    }

    /// Runs in the `running` state (to recover them after a crash of the only process).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn running_runs(&self) -> Result<Vec<Run>, DbError> {
        Ok(run::Entity::find().filter(run::Column::State.eq(state::RUNNING)).all(self.connection()).await?)
    }

    /// Counts a user's runs that are still queued or running (for the per-user quota).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn count_active_runs(&self, owner_id: i64) -> Result<u64, DbError> {
        Ok(run::Entity::find()
            .filter(run::Column::OwnerId.eq(owner_id))
            .filter(run::Column::State.is_in([state::QUEUED, state::RUNNING]))
            .count(self.connection())
            .await?)
    }

    /// Counts runs by state (for queue metrics and the dashboard).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn count_runs_in_state(&self, st: &str) -> Result<u64, DbError> {
        Ok(run::Entity::find().filter(run::Column::State.eq(st)).count(self.connection()).await?)
    }
}
