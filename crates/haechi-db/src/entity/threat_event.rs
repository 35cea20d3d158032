use sea_orm::entity::prelude::*;

/// A threat event of one account (see `haechi_guard::threat`).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "threat_events")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub user_id: i64,
    /// `haechi_guard::ThreatKind::as_str`.
    pub kind: String,
    /// `info`, `warning` or `critical`.
    pub severity: String,
    /// What within the kind (a ticker, an address); "" for the whole account or market.
    pub subject: String,
    /// JSON object: signal name → value.
    #[sea_orm(column_type = "Text")]
    pub evidence: String,
    pub first_seen: i64,
    pub last_seen: i64,
    pub seen: i32,
    pub acknowledged_at: Option<i64>,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
