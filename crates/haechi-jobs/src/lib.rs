//! Background work for Haechi: the [`runner`] that executes a simulation run taken from the
//! queue (`haechi-queue`), and the [`market`] bridge that builds the engine's columnar store
//! from market data in SQL, cached per data version.

pub mod etl;
pub mod market;
pub mod quality;
pub mod runner;
pub mod schedule;

pub use haechi_queue::{
    AttemptInfo, HandlerError, JobError, Queue, QueueConfig, QueueStats, RunHandler, RunJob, WorkerOptions, run_workers,
};
pub use market::{LoadedMarket, MarketCache, MarketError};
pub use runner::{RunEvents, RunNotice, Runner, RunnerOptions, report_prefix, run_events};
