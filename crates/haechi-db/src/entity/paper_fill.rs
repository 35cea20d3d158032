use sea_orm::entity::prelude::*;

/// A fill of a mock account's order; `(order_id, print_key)` is unique.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "paper_fills")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub account_id: i64,
    pub order_id: i64,
    pub ticker: String,
    pub side: String,
    pub quantity: i64,
    pub price: i64,
    pub amount: i64,
    pub commission: i64,
    pub tax: i64,
    pub trade_date: i32,
    pub settlement_date: i32,
    /// Which print filled it (session, ticker, sequence): a replayed print fills nothing twice.
    pub print_key: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
