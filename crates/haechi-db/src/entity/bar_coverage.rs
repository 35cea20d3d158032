use sea_orm::entity::prelude::*;

/// The contiguous range of days (`yyyymmdd`) whose bars have been fetched and stored for a
/// ticker: everything KIS had in it is in `daily_bars`.
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "bar_coverage")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub ticker: String,
    pub first_day: i32,
    pub last_day: i32,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
