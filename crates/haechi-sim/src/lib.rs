//! Haechi's simulation engine: a deterministic, day-by-day backtester that trades under real
//! KRX rules (tick sizes, ±30% limits, sell tax by date, T+2 settlement) over a columnar
//! market store, with strategies, performance metrics and reports.
//!
//! Pure: no network, no database, no clock. Data comes in as a [`haechi_core::MarketStore`].
//!
//! ```
//! use haechi_core::{Instrument, Market, RawBar, StoreBuilder, Ticker, Won};
//! use haechi_sim::engine::{self, EngineConfig, FillTiming, TaxBasis};
//! use haechi_sim::strategy::BuyAndHold;
//! use chrono::NaiveDate;
//!
//! let days: Vec<NaiveDate> = (2..=5).map(|d| NaiveDate::from_ymd_opt(2024, 1, d).unwrap()).collect();
//! let mut b = StoreBuilder::new(days).unwrap();
//! let bar = |p| RawBar { open: p, high: p, low: p, close: p, volume: 1_000_000 };
//! let ticker = Ticker::parse("005930").unwrap();
//! let inst = Instrument { ticker, name: "삼성전자".into(), market: Market::Kospi, sector: "전기전자".into() };
//! b.add(inst, [(0, bar(70_000)), (1, bar(71_000)), (2, bar(72_000)), (3, bar(73_000))]).unwrap();
//! let store = b.build();
//! let config = EngineConfig {
//!     capital: Won(10_000_000), start: 0, end: 3, fill: FillTiming::NextOpen, slippage_bps: 0,
//!     participation: 0.1, locked_limit_share: 0.05, commission: haechi_core::krx::DEFAULT_COMMISSION,
//!     tax_basis: TaxBasis::Settlement, max_order_value: None, max_position_weight: None,
//!     cash_reserve: 0.05, liquidate_at_end: false,
//! };
//! let out = engine::run(&store, &[0], &mut BuyAndHold::new(None), &config).unwrap();
//! assert_eq!(out.fills[0].price.get(), 71_000); // decided at day 0's close, filled at day 1's open
//! ```

pub mod chart;
pub mod engine;
pub mod html;
pub mod metrics;
pub mod report;
pub mod scenario;
pub mod strategy;
pub mod sweep;
pub mod trades;
