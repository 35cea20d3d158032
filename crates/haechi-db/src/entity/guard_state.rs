use sea_orm::entity::prelude::*;

/// An account's risk score and its playbooks' active rules, as of the last scan.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "guard_states")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    pub score: i32,
    /// JSON object: component → score.
    #[sea_orm(column_type = "Text")]
    pub components: String,
    /// JSON array of the active rule ids.
    #[sea_orm(column_type = "Text")]
    pub active_rules: String,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
