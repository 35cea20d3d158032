use sea_orm::entity::prelude::*;

/// One grid point's result. The key (sweep, point) makes storing a point exactly-once: a chunk
/// redelivered after a worker died inserts nothing twice.
#[derive(Clone, Debug, PartialEq, DeriveEntityModel)]
#[sea_orm(table_name = "sweep_points")]
pub struct Model {
    #[sea_orm(primary_key, auto_increment = false)]
    pub sweep_id: i64,
    #[sea_orm(primary_key, auto_increment = false)]
    pub point: i32,
    /// `[["strategy.fast", 5], …]`, JSON.
    pub params: String,
    pub total_return: f64,
    pub cagr: Option<f64>,
    pub sharpe: Option<f64>,
    pub sortino: Option<f64>,
    pub max_drawdown: f64,
    pub annual_volatility: Option<f64>,
    pub final_equity: i64,
    pub trade_count: i32,
    pub win_rate: Option<f64>,
    pub turnover: f64,
    pub is_return: f64,
    pub is_sharpe: Option<f64>,
    pub oos_return: f64,
    pub oos_sharpe: Option<f64>,
    /// Per-session Sharpe ratio, skewness, kurtosis and number of returns (for the deflated
    /// Sharpe ratio of the best point).
    pub daily_sharpe: f64,
    pub skew: f64,
    pub kurtosis: f64,
    pub returns: i32,
    pub fills_digest: String,
    /// Which queue job stored it (for the exactly-once check).
    pub job: String,
    pub created_at: i64,
}

#[derive(Copy, Clone, Debug, EnumIter, DeriveRelation)]
pub enum Relation {}

impl ActiveModelBehavior for ActiveModel {}
