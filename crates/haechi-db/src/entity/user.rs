use sea_orm::entity::prelude::*;

#[derive(Clone, Debug, PartialEq, Eq, DeriveEntityModel)]
#[sea_orm(table_name = "users")]
pub struct Model {
    #[sea_orm(primary_key)]
    pub id: i64,
    /// Lower-cased, so uniqueness is case-insensitive on every backend.
    #[sea_orm(unique)]
    pub email: String,
    pub display_name: String,
    pub password_hash: String,
    pub role: String,
    pub disabled: bool,
    /// Base32 TOTP secret: set at enrolment, active once `mfa_enabled`.
    pub totp_secret: Option<String>,
    pub mfa_enabled: bool,
    /// Last accepted TOTP time step, so a code is accepted once.
    pub totp_last_step: Option<i64>,
    pub created_at: i64,
    pub password_changed_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
