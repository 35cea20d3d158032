//! Background work for Haechi: the job kinds and their handlers on top of `haechi-queue`.
//!
//! - [`runner`]: the `run` kind on the `runs` queue executes a simulation run;
//! - [`schedule`]: the daily KIS collection, the `kis.daily` kind on the `etl` queue, and the
//!   once-a-day schedule that enqueues it;
//! - [`mirror`]: `paper.mirror` and `paper.reconcile` on the `paper` queue mirror paper orders
//!   to the KIS mock account and reconcile its fills;
//! - [`market`]: the engine's columnar store built from market data in SQL, cached per data
//!   version; [`etl`] and [`quality`]: collection from KIS and its data-quality checks.
//!
//! A new job kind is a type implementing [`Job`] (kind, queue, payload) and a handler
//! implementing [`JobHandler`], registered in the binary's [`Registry`]; `haechi-queue` does
//! not change.

pub mod etl;
pub mod market;
mod metrics_names;
pub mod mirror;
pub mod quality;
pub mod runner;
pub mod schedule;
pub mod sweeps;

/// The named queues. Workers serve all of them unless told otherwise (`--queues`).
pub mod queues {
    /// Simulation runs: short, latency matters.
    pub const RUNS: &str = "runs";
    /// Parameter sweeps' chunks: many jobs at once, so apart from `runs`, where a user's
    /// run would otherwise wait behind every queued chunk.
    pub const SWEEPS: &str = "sweeps";
    /// Market data collection: long, once a day.
    pub const ETL: &str = "etl";
    /// Paper orders mirrored to the KIS mock account: short, and not behind a collection.
    pub const PAPER: &str = "paper";
    /// Threat response: each paper account's scan after a session closes.
    pub const GUARD: &str = "guard";
    /// Every queue, in the order `haechi worker` lists them.
    pub const ALL: &[&str] = &[RUNS, SWEEPS, ETL, PAPER, GUARD];
}

pub use haechi_queue::{
    AttemptInfo, Envelope, HandlerError, Job, JobContext, JobError, JobHandler, JobId, Queue, QueueConfig, QueueStats,
    Registry, WorkerOptions, run_workers,
};
pub use market::{LoadedMarket, MarketCache, MarketError};
pub use runner::{RunEvents, RunJob, RunNotice, Runner, RunnerOptions, report_prefix, run_events};
pub use schedule::{KisDaily, KisDailyJob};
pub use sweeps::{SweepJob, SweepRunner};
