use sea_orm::entity::prelude::*;

/// Who runs a schedule on a given day: the primary key makes the first claim the only one.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "schedule_claims")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub name: String,
    /// `yyyymmdd` (KST).
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: i32,
    pub owner: String,
    /// `running`, `done` or `failed`.
    pub state: String,
    pub heartbeat_at: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
