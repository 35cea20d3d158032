use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub owner_id: i64,
    pub scenario_id: i64,
    /// The scenario version the run computes: pinned at creation, so it can be reproduced.
    pub scenario_version: i32,
    /// The market data version (`data_versions.id`) current at creation.
    pub data_version: i64,
    /// `queued`, `running`, `succeeded`, `failed` or `cancelled`.
    pub state: String,
    /// 0.0 to 1.0.
    pub progress: f64,
    /// What the worker is doing (`queued`, `loading`, `simulating`, `reporting`, `done`).
    pub stage: String,
    /// Why a run failed or was cancelled.
    pub error: Option<String>,
    pub attempts: i32,
    /// The attempt that owns the run while it is running; only it may finish the run.
    pub lease: Option<String>,
    pub cancel_requested: bool,
    pub queued_at: i64,
    pub started_at: Option<i64>,
    pub finished_at: Option<i64>,
    pub updated_at: i64,
    pub total_return: Option<f64>,
    pub cagr: Option<f64>,
    pub volatility: Option<f64>,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub max_drawdown: Option<f64>,
    pub benchmark_return: Option<f64>,
    pub final_equity: Option<i64>,
    pub trade_count: Option<i32>,
    /// Object-store prefix of the report (`reports/{user}/{run}/`).
    pub report_key: Option<String>,
    /// The queue job executing the run (the id of the run whose start created that job):
    /// jobs are interchangeable tickets, and a redelivered job takes back the run it held.
    pub ticket: Option<i64>,
    /// Bytes the report files take in object storage (for the stored-bytes quota).
    pub report_bytes: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
