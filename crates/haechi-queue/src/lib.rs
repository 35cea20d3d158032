//! Background execution of simulation runs on top of apalis 1.0.
//!
//! Two backends, chosen at run time:
//! - SQLite (`apalis-sqlite`): one queue file on local disk, shared by any number of worker
//!   processes on the same machine.
//! - Redis (`apalis-redis`): any number of worker processes on any machine.
//!
//! Retries, backoff and timeouts are done here, inside one apalis execution, instead of by
//! apalis: the two backends disagree on retry semantics (SQLite re-fetches a failed task at
//! once, Redis re-schedules it after `attempt` seconds with a hard-coded cap of 25), and
//! neither offers exponential backoff. apalis only sees the final outcome: `Ok` (Done) or an
//! `AbortError` (Killed, never retried by the backend).

mod backend;
mod error;
mod metrics_names;
mod worker;

use std::future::Future;
use std::path::PathBuf;
use std::time::Duration;

use serde::{Deserialize, Serialize};

pub use error::JobError;
pub use worker::run_workers;

/// Name of the queue (SQLite `job_type`) that runs are pushed to.
pub const SQLITE_QUEUE: &str = "haechi.runs";

/// One simulation run to execute.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct RunJob {
    pub run_id: i64,
}

/// Where the queue lives.
#[derive(Debug, Clone)]
pub enum QueueConfig {
    Sqlite { path: PathBuf },
    Redis { url: String, namespace: String },
}

/// A connected queue; cheap to clone.
#[derive(Clone, Debug)]
pub struct Queue {
    pub(crate) inner: backend::Inner,
}

/// Counts as far as the backend tells.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct QueueStats {
    /// Waiting to be picked up (includes scheduled and released-for-retry jobs).
    pub pending: u64,
    /// Held by a worker (fetched or running).
    pub running: u64,
    pub done: u64,
    /// Terminal failures (permanent error, attempts exhausted).
    pub failed: u64,
}

impl Queue {
    /// Connects, creating/migrating the SQLite tables or checking that Redis answers.
    pub async fn connect(cfg: &QueueConfig) -> Result<Queue, JobError> {
        Ok(Queue { inner: backend::Inner::connect(cfg).await? })
    }

    pub async fn enqueue(&self, job: RunJob) -> Result<(), JobError> {
        self.inner.enqueue(job).await
    }

    pub async fn stats(&self) -> Result<QueueStats, JobError> {
        self.inner.stats().await
    }
}

/// Settings of one worker process (one apalis worker with `concurrency` slots).
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Prefix of the backend worker id; the pid and a counter are appended so that restarted
    /// or parallel processes never collide (both backends refuse a name seen recently).
    pub name: String,
    pub concurrency: usize,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Per attempt.
    pub timeout: Duration,
    /// How often an idle worker asks the backend for work; bounds enqueue-to-start latency.
    pub poll_interval: Duration,
    /// How long before a job held by a dead worker is taken up again. Both backends keep
    /// heartbeats with a one-second resolution, so expect this plus up to ~2 s.
    pub orphan_after: Duration,
}

impl Default for WorkerOptions {
    fn default() -> Self {
        WorkerOptions {
            name: "haechi-worker".to_owned(),
            concurrency: 2,
            max_attempts: 3,
            backoff_base: Duration::from_secs(1),
            backoff_max: Duration::from_secs(60),
            timeout: Duration::from_secs(600),
            poll_interval: Duration::from_millis(25),
            orphan_after: Duration::from_secs(30),
        }
    }
}

impl WorkerOptions {
    /// Delay after failed attempt `n` (1-based): `base * 2^(n-1)`, capped at `backoff_max`.
    pub fn backoff_for(&self, n: u32) -> Duration {
        let factor = 2u32.checked_pow(n.saturating_sub(1)).unwrap_or(u32::MAX);
        self.backoff_base.checked_mul(factor).map_or(self.backoff_max, |d| d.min(self.backoff_max))
    }
}

/// Why an attempt failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HandlerError {
    Retryable(String),
    Permanent(String),
}

impl std::fmt::Display for HandlerError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            HandlerError::Retryable(m) => write!(f, "retryable: {m}"),
            HandlerError::Permanent(m) => write!(f, "permanent: {m}"),
        }
    }
}

impl std::error::Error for HandlerError {}

/// Which attempt this is, so the handler can record the run as failed on the last one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AttemptInfo {
    /// 1-based; counts attempts cut short by a crashed worker too.
    pub attempt: u32,
    pub max_attempts: u32,
}

impl AttemptInfo {
    pub fn is_last(&self) -> bool {
        self.attempt >= self.max_attempts
    }
}

/// Executes one run. Implementations are called concurrently, each attempt on its own tokio
/// task (so a panic or a hog does not stall the worker's heartbeats).
pub trait RunHandler: Send + Sync + 'static {
    fn handle(&self, job: RunJob, ctx: AttemptInfo) -> impl Future<Output = Result<(), HandlerError>> + Send;

    /// Called instead of `handle` when a job comes back after its attempts were already used
    /// up by crashed workers (e.g. a run that kills its worker every time), so the run can be
    /// marked failed. `ctx.attempt` is the number of attempts recorded.
    fn exhausted(&self, job: RunJob, ctx: AttemptInfo) -> impl Future<Output = ()> + Send {
        let _ = (job, ctx);
        async {}
    }
}
