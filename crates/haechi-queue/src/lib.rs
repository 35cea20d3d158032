//! Background jobs on top of apalis 1.0.
//!
//! A job is an [`Envelope`]: a `kind` string and a JSON payload, pushed onto a named queue
//! (`runs`, `etl`, …). Workers serve one or more queues and hand each job to the
//! [`JobHandler`] its kind is registered for in a [`Registry`]. This crate knows no job kind:
//! the crates that define jobs implement [`Job`] and [`JobHandler`] and register them.
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
mod job;
mod metrics_names;
mod worker;

use std::path::PathBuf;
use std::time::Duration;

pub use error::JobError;
pub use job::{Envelope, Job, JobContext, JobHandler, JobId, Registry};
pub use worker::{run_workers, worker_id};

/// Prefix of every queue's SQLite `job_type` (`haechi.runs`, `haechi.etl`, …).
pub const SQLITE_PREFIX: &str = "haechi.";

/// A worker registration with no heartbeat for this long, and holding no job, is deleted when
/// a worker starts: worker ids are unique per process start, so without this every restart
/// would leave rows behind.
pub const STALE_WORKER_AFTER: Duration = Duration::from_secs(300);

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

    /// Pushes a typed job onto its queue (`J::QUEUE`).
    ///
    /// # Errors
    /// The backend refused or could not be reached.
    pub async fn enqueue<J: Job>(&self, job: J) -> Result<JobId, JobError> {
        self.enqueue_envelope(J::QUEUE, Envelope::of(&job)?).await
    }

    /// Pushes an already-built envelope onto `queue`, for callers that hold no typed job.
    ///
    /// # Errors
    /// A malformed queue name, or the backend refused or could not be reached.
    pub async fn enqueue_envelope(&self, queue: &str, envelope: Envelope) -> Result<JobId, JobError> {
        job::check_queue_name(queue)?;
        let id = self.inner.enqueue(queue, &envelope).await?;
        tracing::debug!(job_id = %id, kind = %envelope.kind, queue, "job enqueued");
        Ok(id)
    }

    /// Counts of one queue.
    ///
    /// # Errors
    /// The backend could not be read.
    pub async fn stats(&self, queue: &str) -> Result<QueueStats, JobError> {
        self.inner.stats(queue).await
    }
}

/// Settings of one worker process: one apalis worker with `concurrency` slots per queue served.
#[derive(Debug, Clone)]
pub struct WorkerOptions {
    /// Prefix of the backend worker ids; see [`worker_id`] for what is appended so that no two
    /// workers, in this process or any other, ever share an id.
    pub name: String,
    /// Queues to serve; empty: every queue of the registry's kinds.
    pub queues: Vec<String>,
    /// Jobs executed at once, per queue.
    pub concurrency: usize,
    pub max_attempts: u32,
    pub backoff_base: Duration,
    pub backoff_max: Duration,
    /// Per attempt, unless the kind's handler sets its own ([`JobHandler::timeout`]).
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
            queues: Vec::new(),
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

/// Which attempt this is, so a handler can record its subject as failed on the last one.
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
