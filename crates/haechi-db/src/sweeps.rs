//! Parameter sweeps: the sweep row, and one row per grid point inserted exactly once (the key
//! is (sweep, point); a redelivered chunk inserts nothing twice).

use crate::entity::{sweep, sweep_point};
use crate::repo::Page;
use crate::runs::state;
use crate::{Db, DbError, now_ms};
use sea_orm::sea_query::{Expr, NullOrdering, OnConflict, Order};
use sea_orm::{
    ActiveModelTrait, ActiveValue::Set, ColumnTrait, EntityTrait, PaginatorTrait, QueryFilter, QueryOrder, QuerySelect,
};

pub type Sweep = sweep::Model;
pub type SweepPoint = sweep_point::Model;

/// What a new sweep needs.
#[derive(Debug, Clone)]
pub struct NewSweep {
    pub owner_id: i64,
    pub scenario_id: i64,
    pub scenario_version: i32,
    pub data_version: i64,
    pub grid: String,
    pub in_sample: f64,
    pub points_total: i32,
}

/// The metrics a sweep's points can be sorted by (the columns of `sweep_points`).
pub const SWEEP_SORTS: &[&str] = &[
    "point",
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "annual_volatility",
    "final_equity",
    "trade_count",
    "win_rate",
    "turnover",
    "is_return",
    "is_sharpe",
    "oos_return",
    "oos_sharpe",
];

fn sort_column(name: &str) -> Option<sweep_point::Column> {
    use sweep_point::Column as C;
    Some(match name {
        "point" => C::Point,
        "total_return" => C::TotalReturn,
        "cagr" => C::Cagr,
        "sharpe" => C::Sharpe,
        "sortino" => C::Sortino,
        "max_drawdown" => C::MaxDrawdown,
        "annual_volatility" => C::AnnualVolatility,
        "final_equity" => C::FinalEquity,
        "trade_count" => C::TradeCount,
        "win_rate" => C::WinRate,
        "turnover" => C::Turnover,
        "is_return" => C::IsReturn,
        "is_sharpe" => C::IsSharpe,
        "oos_return" => C::OosReturn,
        "oos_sharpe" => C::OosSharpe,
        _ => return None,
    })
}

impl Db {
    /// # Errors
    /// The driver's error.
    pub async fn create_sweep(&self, new: NewSweep) -> Result<Sweep, DbError> {
        Ok(sweep::ActiveModel {
            owner_id: Set(new.owner_id),
            scenario_id: Set(new.scenario_id),
            scenario_version: Set(new.scenario_version),
            data_version: Set(new.data_version),
            grid: Set(new.grid),
            in_sample: Set(new.in_sample),
            state: Set(state::QUEUED.to_owned()),
            points_total: Set(new.points_total),
            points_done: Set(0),
            error: Set(None),
            best: Set(None),
            created_at: Set(now_ms()),
            started_at: Set(None),
            finished_at: Set(None),
            ..Default::default()
        }
        .insert(self.connection())
        .await?)
    }

    /// # Errors
    /// The driver's error.
    pub async fn sweep_by_id(&self, id: i64) -> Result<Option<Sweep>, DbError> {
        Ok(sweep::Entity::find_by_id(id).one(self.connection()).await?)
    }

    /// The owner's sweeps, newest first.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn list_sweeps(&self, owner_id: i64, limit: u64) -> Result<Vec<Sweep>, DbError> {
        Ok(sweep::Entity::find()
            .filter(sweep::Column::OwnerId.eq(owner_id))
            .order_by_desc(sweep::Column::Id)
            .limit(limit)
            .all(self.connection())
            .await?)
    }

    /// Sweeps of the owner still queued or running.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn count_active_sweeps(&self, owner_id: i64) -> Result<u64, DbError> {
        Ok(sweep::Entity::find()
            .filter(sweep::Column::OwnerId.eq(owner_id))
            .filter(sweep::Column::State.is_in([state::QUEUED, state::RUNNING]))
            .count(self.connection())
            .await?)
    }

    /// Marks a queued sweep running (the first chunk to start does it).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn start_sweep(&self, id: i64) -> Result<(), DbError> {
        sweep::Entity::update_many()
            .col_expr(sweep::Column::State, Expr::value(state::RUNNING))
            .col_expr(sweep::Column::StartedAt, Expr::value(now_ms()))
            .filter(sweep::Column::Id.eq(id))
            .filter(sweep::Column::State.eq(state::QUEUED))
            .exec(self.connection())
            .await?;
        Ok(())
    }

    /// Which of `first..=last` are stored already.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn stored_sweep_points(&self, sweep_id: i64, first: i32, last: i32) -> Result<Vec<i32>, DbError> {
        Ok(sweep_point::Entity::find()
            .select_only()
            .column(sweep_point::Column::Point)
            .filter(sweep_point::Column::SweepId.eq(sweep_id))
            .filter(sweep_point::Column::Point.between(first, last))
            .into_tuple::<i32>()
            .all(self.connection())
            .await?)
    }

    /// Stores points; a point stored before (by an earlier delivery of the same chunk) is
    /// left as it was. Returns how many points the sweep has now and updates `points_done`.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn insert_sweep_points(&self, sweep_id: i64, rows: Vec<SweepPoint>) -> Result<u64, DbError> {
        if !rows.is_empty() {
            let models = rows.into_iter().map(|r| {
                let mut m: sweep_point::ActiveModel = r.into();
                m.created_at = Set(now_ms());
                m
            });
            // Updating the key to itself keeps the first row: both SQLite and MySQL accept it.
            sweep_point::Entity::insert_many(models)
                .on_conflict(
                    OnConflict::columns([sweep_point::Column::SweepId, sweep_point::Column::Point])
                        .update_column(sweep_point::Column::SweepId)
                        .to_owned(),
                )
                .exec_without_returning(self.connection())
                .await?;
        }
        let done = sweep_point::Entity::find()
            .filter(sweep_point::Column::SweepId.eq(sweep_id))
            .count(self.connection())
            .await?;
        let done_i32 = i32::try_from(done).unwrap_or(i32::MAX);
        // Only ever up: two chunks finishing together count in either order, and the later
        // write of the smaller count must not win.
        sweep::Entity::update_many()
            .col_expr(sweep::Column::PointsDone, Expr::value(done_i32))
            .filter(sweep::Column::Id.eq(sweep_id))
            .filter(sweep::Column::PointsDone.lt(done_i32))
            .exec(self.connection())
            .await?;
        Ok(done)
    }

    /// Ends a sweep once (`succeeded` with its best point, or `failed`/`cancelled` with why);
    /// `false` when it had ended already.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn end_sweep(
        &self,
        id: i64,
        final_state: &str,
        best: Option<String>,
        error: Option<String>,
    ) -> Result<bool, DbError> {
        let r = sweep::Entity::update_many()
            .col_expr(sweep::Column::State, Expr::value(final_state))
            .col_expr(sweep::Column::Best, Expr::value(best))
            .col_expr(sweep::Column::Error, Expr::value(error))
            .col_expr(sweep::Column::FinishedAt, Expr::value(now_ms()))
            .filter(sweep::Column::Id.eq(id))
            .filter(sweep::Column::State.is_in([state::QUEUED, state::RUNNING]))
            .exec(self.connection())
            .await?;
        Ok(r.rows_affected == 1)
    }

    /// A page of a sweep's points sorted by a metric (see [`SWEEP_SORTS`]; undefined values
    /// last either way), then by point. `None` for an unknown sort.
    ///
    /// # Errors
    /// The driver's error.
    pub async fn sweep_points(
        &self,
        sweep_id: i64,
        sort: &str,
        descending: bool,
        offset: u64,
        limit: u64,
    ) -> Result<Option<Page<SweepPoint>>, DbError> {
        let Some(col) = sort_column(sort) else { return Ok(None) };
        let order = if descending { Order::Desc } else { Order::Asc };
        let base = sweep_point::Entity::find().filter(sweep_point::Column::SweepId.eq(sweep_id));
        let total = base.clone().count(self.connection()).await?;
        let items = base
            .order_by_with_nulls(col, order, NullOrdering::Last)
            .order_by_asc(sweep_point::Column::Point)
            .offset(offset)
            .limit(limit)
            .all(self.connection())
            .await?;
        Ok(Some(Page { items, total }))
    }

    /// Every point of a sweep in point order (for the heat map and the best point).
    ///
    /// # Errors
    /// The driver's error.
    pub async fn all_sweep_points(&self, sweep_id: i64) -> Result<Vec<SweepPoint>, DbError> {
        Ok(sweep_point::Entity::find()
            .filter(sweep_point::Column::SweepId.eq(sweep_id))
            .order_by_asc(sweep_point::Column::Point)
            .all(self.connection())
            .await?)
    }
}
