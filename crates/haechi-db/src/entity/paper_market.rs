use sea_orm::entity::prelude::*;

/// The matcher's view of the market (one row): the session and phase it is in.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "paper_market")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub id: i32,
    /// `live` (KIS stream, wall clock) or `replay` (a synthetic session on a virtual clock).
    pub mode: String,
    pub session: i32,
    pub phase: String,
    /// A replay's step within the session, and how many it has.
    pub step: i32,
    pub steps: i32,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
