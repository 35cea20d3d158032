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
use sea_orm::sea_query::{Expr, ExprTrait, Func};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, Condition, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder,
    QuerySelect,
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
    /// Bytes the report files take.
    pub report_bytes: i64,
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

    /// Claims a run for the queue job `ticket`: the run that job already holds, if it holds
    /// one (a retry, or a redelivery after its worker died), else the fairest queued run
    /// ([`fair_pick`]: the user with the fewest runs running, then whose last run started
    /// longest ago, then the oldest run). Every start
    /// pushes one job, so there is always a job for every queued run; which run a job executes
    /// is decided here, when a worker is free, not when the job was pushed. One user's backlog
    /// therefore never holds another user's run back by more than one run's duration.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn claim_next_run(&self, ticket: i64, lease: &str) -> Result<Claim, DbError> {
        let held = run::Entity::find()
            .filter(run::Column::Ticket.eq(ticket))
            .filter(run::Column::State.eq(state::RUNNING))
            .one(self.connection())
            .await?;
        if let Some(held) = held {
            return self.claim_run(held.id, lease).await;
        }
        // Losing a race means another worker claimed a run, so the loop always makes progress;
        // the bound only guards against a bug turning it into a spin.
        for _ in 0..1000 {
            let waiting: Vec<(i64, i64)> = run::Entity::find()
                .select_only()
                .column(run::Column::OwnerId)
                .column_as(Expr::expr(Func::min(Expr::col(run::Column::Id))), "first")
                .filter(run::Column::State.eq(state::QUEUED))
                .filter(run::Column::CancelRequested.eq(false))
                .group_by(run::Column::OwnerId)
                .into_tuple()
                .all(self.connection())
                .await?;
            if waiting.is_empty() {
                return Ok(Claim::Finished);
            }
            let running: Vec<(i64, i64)> = run::Entity::find()
                .select_only()
                .column(run::Column::OwnerId)
                .column_as(Expr::expr(Func::count(Expr::col(run::Column::Id))), "n")
                .filter(run::Column::State.eq(state::RUNNING))
                .group_by(run::Column::OwnerId)
                .into_tuple()
                .all(self.connection())
                .await?;
            let owners: Vec<i64> = waiting.iter().map(|(o, _)| *o).collect();
            let last_start: Vec<(i64, Option<i64>)> = run::Entity::find()
                .select_only()
                .column(run::Column::OwnerId)
                .column_as(Expr::expr(Func::max(Expr::col(run::Column::StartedAt))), "last")
                .filter(run::Column::OwnerId.is_in(owners))
                .group_by(run::Column::OwnerId)
                .into_tuple()
                .all(self.connection())
                .await?;
            let Some(id) = fair_pick(&waiting, &running, &last_start) else { return Ok(Claim::Finished) };
            let now = now_ms();
            let res = run::Entity::update_many()
                .col_expr(run::Column::State, Expr::value(state::RUNNING))
                .col_expr(run::Column::Stage, Expr::value("loading"))
                .col_expr(run::Column::Progress, Expr::value(0.0))
                .col_expr(run::Column::Lease, Expr::value(lease))
                .col_expr(run::Column::Ticket, Expr::value(ticket))
                .col_expr(run::Column::Attempts, Expr::col(run::Column::Attempts).add(1))
                .col_expr(run::Column::StartedAt, Expr::value(now))
                .col_expr(run::Column::UpdatedAt, Expr::value(now))
                .filter(run::Column::Id.eq(id))
                .filter(run::Column::State.eq(state::QUEUED))
                .filter(run::Column::CancelRequested.eq(false))
                .exec(self.connection())
                .await?;
            if res.rows_affected == 1 {
                return match self.run_by_id(id).await? {
                    Some(r) if r.lease.as_deref() == Some(lease) => Ok(Claim::Claimed(Box::new(r))),
                    _ => Ok(Claim::Finished),
                };
            }
        }
        Err(DbError::Db(sea_orm::DbErr::Custom("no queued run could be claimed after 1000 tries".into())))
    }

    /// Ends, as `final_state`, the run the queue job `ticket` holds, if it holds one; else its
    /// own run (the one whose start pushed it) if that is still queued, so a job that gave up
    /// before claiming anything takes one queued run with it rather than leaving it waiting
    /// for a job that will never come. Returns the run it ended.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn end_ticket(
        &self,
        ticket: i64,
        final_state: &'static str,
        reason: &str,
    ) -> Result<Option<i64>, DbError> {
        let held = run::Entity::find()
            .filter(run::Column::Ticket.eq(ticket))
            .filter(run::Column::State.eq(state::RUNNING))
            .one(self.connection())
            .await?;
        if let Some(r) = held {
            return Ok(self.end_run(r.id, None, final_state, reason).await?.then_some(r.id));
        }
        let res = ending(ticket, final_state, reason)
            .filter(run::Column::State.eq(state::QUEUED))
            .exec(self.connection())
            .await?;
        Ok((res.rows_affected == 1).then_some(ticket))
    }

    /// How many runs are queued and not cancelled (to check every one has a job).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn count_waiting_runs(&self) -> Result<u64, DbError> {
        Ok(run::Entity::find()
            .filter(run::Column::State.eq(state::QUEUED))
            .filter(run::Column::CancelRequested.eq(false))
            .count(self.connection())
            .await?)
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
            .col_expr(run::Column::ReportBytes, Expr::value(s.report_bytes))
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
        let mut q = ending(id, final_state, reason);
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

    /// Deletes a finished run (its report objects are the caller's to remove). Returns whether
    /// a finished run was deleted: a queued or running one is not.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn delete_finished_run(&self, id: i64) -> Result<bool, DbError> {
        let res = run::Entity::delete_many()
            .filter(run::Column::Id.eq(id))
            .filter(run::Column::State.is_in([state::SUCCEEDED, state::FAILED, state::CANCELLED]))
            .exec(self.connection())
            .await?;
        Ok(res.rows_affected == 1)
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

/// The update that ends run `id` as `final_state` with `reason`; callers add which states (and
/// lease) it may end from.
fn ending(id: i64, final_state: &'static str, reason: &str) -> sea_orm::UpdateMany<run::Entity> {
    let now = now_ms();
    run::Entity::update_many()
        .col_expr(run::Column::State, Expr::value(final_state))
        .col_expr(run::Column::Stage, Expr::value(final_state))
        .col_expr(run::Column::Error, Expr::value(reason))
        .col_expr(run::Column::FinishedAt, Expr::value(now))
        .col_expr(run::Column::UpdatedAt, Expr::value(now))
        .filter(run::Column::Id.eq(id))
}

/// The run to start next, from `waiting` (per user with queued runs: the user and their oldest
/// queued run): the user with the fewest runs `running` (per user: how many); among equals the
/// one whose last run started longest ago (`last_start`: per user, the latest `started_at`,
/// never first) — round robin, so a backlog takes turns with everyone else instead of running
/// to its end — then the oldest queued run. `None` when nothing waits.
#[must_use]
pub fn fair_pick(waiting: &[(i64, i64)], running: &[(i64, i64)], last_start: &[(i64, Option<i64>)]) -> Option<i64> {
    let busy = |owner: i64| running.iter().find(|(o, _)| *o == owner).map_or(0, |(_, n)| *n);
    let last = |owner: i64| last_start.iter().find(|(o, _)| *o == owner).and_then(|(_, t)| *t).unwrap_or(i64::MIN);
    waiting.iter().min_by_key(|(owner, first)| (busy(*owner), last(*owner), *first)).map(|(_, first)| *first)
}

#[cfg(test)]
mod tests {
    use super::fair_pick;

    #[test]
    fn nothing_waiting_picks_nothing() {
        assert_eq!(fair_pick(&[], &[(1, 2)], &[]), None);
    }

    #[test]
    fn the_user_with_fewer_runs_running_goes_first_even_if_queued_later() {
        // User 1 queued runs 10.. and has two running; user 2 queued run 50 and runs nothing.
        assert_eq!(fair_pick(&[(1, 10), (2, 50)], &[(1, 2)], &[(1, Some(900))]), Some(50));
        // Once user 2 runs one too, user 1 (still ahead by one) waits behind nobody new.
        assert_eq!(fair_pick(&[(1, 10), (2, 51)], &[(1, 2), (2, 1)], &[]), Some(51));
        assert_eq!(fair_pick(&[(1, 10), (2, 52)], &[(1, 2), (2, 2)], &[]), Some(10));
    }

    #[test]
    fn with_nothing_running_users_take_turns() {
        // One worker: user 1's run just finished (started at 500); user 2 never ran. User 2's
        // run goes next although user 1's backlog is older.
        assert_eq!(fair_pick(&[(1, 10), (2, 50)], &[], &[(1, Some(500))]), Some(50));
        // Then user 1, whose last start is now the older one.
        assert_eq!(fair_pick(&[(1, 10), (2, 51)], &[], &[(1, Some(500)), (2, Some(600))]), Some(10));
    }

    #[test]
    fn among_equals_the_oldest_queued_run_goes_first() {
        assert_eq!(fair_pick(&[(3, 7), (1, 9), (2, 8)], &[], &[]), Some(7));
        let same = [(3, Some(5)), (2, Some(5)), (1, Some(5))];
        assert_eq!(fair_pick(&[(3, 7), (1, 9), (2, 8)], &[(3, 1), (2, 1), (1, 1)], &same), Some(7));
    }

    #[test]
    fn a_lone_user_takes_every_free_worker() {
        assert_eq!(fair_pick(&[(1, 10)], &[(1, 5)], &[(1, Some(1))]), Some(10));
    }
}
