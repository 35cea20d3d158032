use sea_orm::entity::prelude::*;

/// A paper order's twin at KIS: what was sent, and what reconciliation found.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "paper_mirror_orders")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub order_id: i64,
    pub account_id: i64,
    /// The paper order's session (yyyymmdd).
    pub session: i32,
    /// `pending`, `sending`, `sent`, `failed`, `unknown`, `skipped`, `matched` or `differs`.
    pub state: String,
    /// `KRX_FWDG_ORD_ORGNO`.
    pub branch: Option<String>,
    /// KIS's `ODNO`.
    pub broker_order_no: Option<String>,
    /// The paper order was cancelled and the cancel went to KIS too.
    pub cancel_sent: bool,
    /// What KIS filled, as of the last reconciliation.
    pub kis_filled: Option<i64>,
    /// KIS's average fill price.
    pub kis_price: Option<i64>,
    /// KIS's refusal, or the difference reconciliation found.
    pub detail: Option<String>,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
