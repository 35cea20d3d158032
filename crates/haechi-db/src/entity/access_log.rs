use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "access_log")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    pub at: i64,
    pub request_id: String,
    pub user_id: Option<i64>,
    pub ip: String,
    pub method: String,
    /// The matched route template (`/api/v1/me/tokens/{id}`), not the raw path.
    pub route: String,
    pub status: i32,
    pub latency_us: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
