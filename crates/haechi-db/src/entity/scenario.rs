use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "scenarios")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub owner_id: i64,
    /// Copied from the current version's spec, for listing and search.
    pub name: String,
    pub description: Option<String>,
    /// The current version's strategy type, for filtering.
    pub strategy: String,
    pub current_version: i32,
    pub shared_with_analysts: bool,
    pub created_at: i64,
    pub updated_at: i64,
    /// Soft delete: the row and its versions stay until the owner undeletes it.
    pub deleted_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
