use sea_orm::entity::prelude::*;

/// A mock account (모의계좌): its cash and the sums the matcher keeps current.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "paper_accounts")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub owner_id: i64,
    pub name: String,
    pub starting_cash: i64,
    pub cash: i64,
    /// Cash set aside for open buys.
    pub reserved: i64,
    /// Commission rate in parts per billion.
    pub commission_ppb: i64,
    /// The next order's number within the account.
    pub next_order: i64,
    pub commissions: i64,
    pub taxes: i64,
    /// `open` or `closed`.
    pub state: String,
    /// The owner's trading halt.
    pub halted: bool,
    /// The session (yyyymmdd) whose new buys the daily loss limit halted; negated, the session
    /// whose halt the owner lifted after signing in again.
    pub loss_halt_session: Option<i32>,
    /// The fail-safe limits, JSON.
    pub limits: String,
    /// Bumped by every write: the first statement of each transaction, so it takes the
    /// account's write lock before reading (SQLite) or locks its row (MySQL).
    pub version: i64,
    pub created_at: i64,
    pub updated_at: i64,
    pub closed_at: Option<i64>,
    /// New orders are also sent to the KIS mock account.
    pub mirror: bool,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
