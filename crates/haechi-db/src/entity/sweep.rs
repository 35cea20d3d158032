use sea_orm::entity::prelude::*;

/// A parameter sweep of one scenario version: a grid over its numeric fields, run in chunks
/// on the queue; the points are in `sweep_points`.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sweeps")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub owner_id: i64,
    pub scenario_id: i64,
    pub scenario_version: i32,
    /// The market data version current at creation.
    pub data_version: i64,
    /// The axes as given (`["strategy.fast=5..50:5", …]`), JSON.
    pub grid: String,
    /// Share of each run's sessions that is in-sample.
    pub in_sample: f64,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    pub points_total: i32,
    pub points_done: i32,
    pub error: Option<String>,
    /// The best point and its deflated Sharpe ratio, JSON, once every point is done.
    pub best: Option<String>,
    pub created_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
