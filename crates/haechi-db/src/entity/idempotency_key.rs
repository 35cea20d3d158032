use sea_orm::entity::prelude::*;

/// An `Idempotency-Key` a user sent, and the answer to replay.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "idempotency_keys")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub user_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    /// SHA-256 of the request (method, path, body), hex.
    pub body_hash: String,
    /// The answer's HTTP status; 0 while the first request is in flight.
    pub status: i32,
    pub response: Option<String>,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
