//! SeaORM entities. Times are Unix milliseconds (`i64`, UTC): one portable representation on
//! SQLite and MySQL, immune to MySQL's `TIMESTAMP` 2038 limit and session time zones.

pub mod access_log;
pub mod api_token;
pub mod audit_log;
pub mod bar_coverage;
pub mod daily_bar;
pub mod data_version;
pub mod etl_run;
pub mod financial;
pub mod idempotency_key;
pub mod index_close;
pub mod instrument;
pub mod kis_token;
pub mod login_throttle;
pub mod market_session;
pub mod paper_account;
pub mod paper_equity;
pub mod paper_fill;
pub mod paper_holding;
pub mod paper_market;
pub mod paper_mirror_order;
pub mod paper_order;
pub mod paper_quote;
pub mod recovery_code;
pub mod role_policy;
pub mod run;
pub mod scenario;
pub mod scenario_share;
pub mod scenario_version;
pub mod schedule_claim;
pub mod session;
pub mod site_flag;
pub mod sweep;
pub mod sweep_point;
pub mod user;
