use sea_orm::entity::prelude::*;

/// One fiscal period's figures: amounts in 억원 as KIS reports them, ratios in percent.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "financials")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub ticker: String,
    /// `YYYYMM`.
    #[sea_orm(primary_key, auto_increment = false)]
    pub period: String,
    /// `Y` annual, `Q` quarterly (quarterly income figures are year-to-date, as KIS sends them).
    #[sea_orm(primary_key, auto_increment = false)]
    pub kind: String,
    pub revenue: f64,
    pub operating_profit: f64,
    pub net_income: f64,
    pub total_assets: f64,
    pub total_liabilities: f64,
    pub total_equity: f64,
    pub revenue_growth: f64,
    pub operating_profit_growth: f64,
    pub net_income_growth: f64,
    pub roe: f64,
    pub eps: f64,
    pub bps: f64,
    pub debt_ratio: f64,
    pub updated_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
