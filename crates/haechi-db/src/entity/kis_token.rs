use sea_orm::entity::prelude::*;

/// The shared KIS access token of one app key (by fingerprint, never the key itself).
#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "kis_tokens")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub key: String,
    pub access_token: Option<String>,
    pub expires_at: Option<i64>,
    pub last_issue_at: Option<i64>,
    pub lease_holder: Option<String>,
    pub lease_until: i64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
