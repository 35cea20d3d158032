use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "scenario_versions")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub scenario_id: i64,
    pub version: i32,
    /// The scenario as JSON (the engine's scenario format), exactly as validated.
    pub spec: String,
    pub author_id: i64,
    pub message: String,
    pub created_at: i64,
    /// Bytes of `spec` (for the stored-bytes quota).
    pub size_bytes: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
