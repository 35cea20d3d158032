use sea_orm::entity::prelude::*;

/// Append-only: the repository offers no update or delete.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "audit_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: i64,
    /// The user the event is about (None for an unknown email).
    pub user_id: Option<i64>,
    /// Who acted, when not the user themself (an admin changing a role).
    pub actor_id: Option<i64>,
    pub event: String,
    pub ip: String,
    pub request_id: String,
    /// Event details as JSON; never secrets.
    #[sea_orm(column_type = "Text")]
    pub detail: String,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
