use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "data_versions")]
pub struct Model {
    /// The market data version: every load that changes bars adds one row.
    #[sea_orm(primary_key)]
    pub id: i64,
    /// `synthetic`, `csv`, `kis`.
    pub source: String,
    pub synthetic: bool,
    pub note: String,
    /// Rows written by that load.
    pub rows: i64,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
