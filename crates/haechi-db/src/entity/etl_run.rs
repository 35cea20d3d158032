use sea_orm::entity::prelude::*;

/// One ETL run: what it was asked, how far it got (the checkpoint a crashed run resumes from),
/// and what it found.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "etl_runs")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub kind: String,
    /// The run's parameters as JSON; a resumed run must match them.
    pub params: String,
    /// `running`, `succeeded` or `failed`.
    pub state: String,
    pub owner: String,
    pub heartbeat_at: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub requests: i64,
    pub rows_upserted: i64,
    pub findings: i64,
    /// JSON: the tickers done so far.
    pub checkpoint: Option<String>,
    pub report_key: Option<String>,
    pub error: Option<String>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
