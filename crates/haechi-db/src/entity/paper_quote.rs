use sea_orm::entity::prelude::*;

/// The market's last print per ticker, as the matcher saw it.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "paper_quotes")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub ticker: String,
    pub session: i32,
    /// The previous session's close: the base of the session's price band.
    pub prev_close: i64,
    pub last: i64,
    /// Shares traded in the session so far.
    pub volume: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
