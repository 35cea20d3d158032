use sea_orm::entity::prelude::*;

/// An order of a mock account.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "paper_orders")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    /// The order's number within its account.
    pub seq: i64,
    pub ticker: String,
    pub market: String,
    /// `buy` or `sell`.
    pub side: String,
    /// `market` or `limit`.
    pub kind: String,
    pub limit_price: Option<i64>,
    pub quantity: i64,
    pub filled: i64,
    /// The session it is for (yyyymmdd).
    pub session: i32,
    /// `accepted`, `partially_filled`, `filled`, `cancelled`, `expired` or `rejected`.
    pub state: String,
    /// Why it was rejected (a stable code).
    pub reason: Option<String>,
    /// Cash still set aside for it.
    pub reserved: i64,
    pub client_order_id: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
