use sea_orm::entity::prelude::*;

/// One trading day of the exchange's calendar (KRX), so the engine's sessions do not depend on
/// which names happen to have bars.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "market_sessions")]
pub struct Model {
    /// `yyyymmdd`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub day: i32,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
