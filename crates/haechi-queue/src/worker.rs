use std::future::Future;
use std::pin::pin;
use std::sync::Arc;
use std::time::{Duration, Instant};

use apalis::prelude::{
    AbortError, BackendExt, BoxDynError, Event, TaskId, WorkerBuilder, WorkerBuilderExt, WorkerContext, WorkerError,
};
use apalis_redis::RedisStorage;
use apalis_sqlite::SqliteStorage;
use futures::{Stream, StreamExt};
use tokio::sync::watch;

use crate::backend::Inner;
use crate::metrics_names::{JOB_DURATION, QUEUE_DEPTH, outcome};
use crate::{AttemptInfo, HandlerError, JobError, Queue, RunHandler, RunJob, WorkerOptions};

/// Pause before replacing an apalis worker that died on a backend error (e.g. Redis restart),
/// so a persistent outage does not spin.
const RESTART_DELAY: Duration = Duration::from_secs(1);
const DEPTH_EVERY: Duration = Duration::from_secs(1);

/// Runs one apalis worker with `opts.concurrency` slots until `shutdown` resolves, then stops
/// fetching and returns once the jobs in flight have finished.
///
/// A job waiting for its retry backoff when shutdown comes is handed back to the queue rather
/// than waited for.
pub async fn run_workers<H: RunHandler>(
    queue: &Queue,
    opts: WorkerOptions,
    handler: Arc<H>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), JobError> {
    validate(&opts)?;
    let (tx, rx) = watch::channel(false);
    let signal = tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let depth = tokio::spawn(report_depth(queue.clone()));

    let exec = Arc::new(Exec { queue: queue.clone(), handler, opts: opts.clone(), shutdown: rx.clone() });
    let (heartbeat, missed) = heartbeat_for(opts.orphan_after);
    let mut generation = 0u64;
    let mut result = Ok(());
    while !*rx.borrow() {
        generation += 1;
        // A fresh id per process and per restart: both backends refuse to register a worker id
        // whose last heartbeat is recent, which a restarted process would otherwise hit.
        let ctx = WorkerContext::new(&format!("{}-{}-{}", opts.name, std::process::id(), generation));
        let exec_for_svc = exec.clone();
        let service = move |job: RunJob, id: TaskId| {
            let exec = exec_for_svc.clone();
            async move { exec.run(job, id.to_string()).await }
        };
        // Batch size 1: apalis' `Persisted` only heartbeats while its prefetch buffer is
        // empty, so prefetched-but-waiting jobs would stall heartbeats and be declared
        // orphaned; a buffer also lets one process hoard jobs that idle peers could run.
        let ended = match &queue.inner {
            Inner::Sqlite { pool } => {
                let cfg = Inner::sqlite_config().batch_size(1).heartbeat_interval(heartbeat).missed_heartbeats(missed);
                let backend =
                    SqliteStorage::<RunJob>::new(pool).with_config(cfg).poll_with_interval(opts.poll_interval);
                let worker =
                    WorkerBuilder::new(ctx.clone()).backend(backend).concurrency(opts.concurrency).build(service);
                drive(boxed(worker.stream()), &ctx, rx.clone()).await
            }
            Inner::Redis { conn, namespace } => {
                let cfg = Inner::redis_config(namespace)
                    .batch_size(1)
                    .heartbeat_interval(heartbeat)
                    .missed_heartbeats(missed);
                let backend =
                    RedisStorage::<RunJob>::new(conn.clone()).with_config(cfg).poll_with_interval(opts.poll_interval);
                let worker =
                    WorkerBuilder::new(ctx.clone()).backend(backend).concurrency(opts.concurrency).build(service);
                drive(boxed(worker.stream()), &ctx, rx.clone()).await
            }
        };
        if *rx.borrow() {
            if let Err(e) = ended {
                result = Err(JobError::Worker(e));
            }
            break;
        }
        match ended {
            Ok(()) => tracing::warn!(worker = ctx.name(), "worker stopped on its own; restarting"),
            Err(e) => tracing::warn!(worker = ctx.name(), error = %e, "worker died; restarting"),
        }
        let mut rx2 = rx.clone();
        tokio::select! {
            _ = tokio::time::sleep(RESTART_DELAY) => {}
            _ = shutdown_requested(&mut rx2) => {}
        }
    }
    depth.abort();
    signal.abort();
    result
}

fn validate(opts: &WorkerOptions) -> Result<(), JobError> {
    if opts.concurrency == 0 {
        return Err(JobError::InvalidOptions("concurrency must be at least 1".into()));
    }
    if opts.max_attempts == 0 {
        return Err(JobError::InvalidOptions("max_attempts must be at least 1".into()));
    }
    if opts.poll_interval.is_zero() {
        return Err(JobError::InvalidOptions("poll_interval must be positive".into()));
    }
    if opts.orphan_after < Duration::from_secs(2) {
        // Heartbeats are stored in whole seconds; anything shorter would declare live workers
        // dead (apalis-sqlite treats a 0 s threshold as "everyone is dead").
        return Err(JobError::InvalidOptions("orphan_after must be at least 2 s".into()));
    }
    Ok(())
}

/// Splits `orphan_after` into apalis' `heartbeat_interval * missed_heartbeats`; both backends
/// work in whole seconds.
fn heartbeat_for(orphan_after: Duration) -> (Duration, usize) {
    let total = orphan_after.as_secs().max(2);
    let beat = (total / 3).max(1);
    let missed = total.div_ceil(beat).max(2);
    (Duration::from_secs(beat), usize::try_from(missed).unwrap_or(usize::MAX))
}

type EventStream = std::pin::Pin<Box<dyn Stream<Item = Result<Event, WorkerError>> + Send>>;

/// Erases the worker's stream type. Without this the future of `run_workers` cannot be shown
/// to be `Send` by callers that `tokio::spawn` it (rustc reports "implementation of `From` is
/// not general enough" for apalis' `Into<BoxDynError>` bounds).
fn boxed<S>(s: S) -> EventStream
where
    S: Stream<Item = Result<Event, WorkerError>> + Send + 'static,
{
    Box::pin(s)
}

async fn report_depth(queue: Queue) {
    let mut every = tokio::time::interval(DEPTH_EVERY);
    loop {
        every.tick().await;
        match queue.stats().await {
            Ok(s) => metrics::gauge!(QUEUE_DEPTH).set(s.pending as f64),
            Err(e) => tracing::debug!(error = %e, "queue depth not updated"),
        }
    }
}

async fn shutdown_requested(rx: &mut watch::Receiver<bool>) {
    // The sender lives as long as run_workers; if it is gone no signal can come any more.
    if rx.wait_for(|stop| *stop).await.is_err() {
        std::future::pending::<()>().await;
    }
}

/// Consumes the worker's event stream; on shutdown asks it to stop and keeps consuming until
/// it has drained its in-flight jobs.
async fn drive<S>(stream: S, ctx: &WorkerContext, mut rx: watch::Receiver<bool>) -> Result<(), String>
where
    S: Stream<Item = Result<Event, WorkerError>>,
{
    let mut stream = pin!(stream);
    let mut stopping = false;
    let mut last_err = None;
    loop {
        tokio::select! {
            ev = stream.next() => match ev {
                None => break,
                Some(Ok(_)) => {}
                // A backend error ends the apalis worker (its state goes Dead) but the stream
                // still drains in-flight jobs, so keep consuming until it ends.
                Some(Err(e)) => {
                    tracing::warn!(worker = ctx.name(), error = %e, "worker error");
                    last_err = Some(e.to_string());
                }
            },
            _ = shutdown_requested(&mut rx), if !stopping => {}
        }
        if !stopping && *rx.borrow() {
            // `stop` fails with NotStarted until the stream has been polled once; it is simply
            // tried again on the next event.
            stopping = ctx.stop().is_ok();
        }
    }
    last_err.map_or(Ok(()), Err)
}

struct Exec<H> {
    queue: Queue,
    handler: Arc<H>,
    opts: WorkerOptions,
    shutdown: watch::Receiver<bool>,
}

impl<H: RunHandler> Exec<H> {
    /// One apalis execution: all attempts of the job, with backoff in between.
    ///
    /// `Ok` acks the job as Done; an `AbortError` acks it as Killed, which neither backend
    /// retries; any other error hands it back to the backend for another execution.
    async fn run(&self, job: RunJob, task_id: String) -> Result<(), BoxDynError> {
        let max = self.opts.max_attempts;
        let mut local = 0u32;
        loop {
            local += 1;
            let attempt = match self.queue.inner.start_attempt(&task_id).await {
                Ok(n) => n.max(local),
                Err(e) => {
                    tracing::warn!(run_id = job.run_id, error = %e, "attempt counter not updated");
                    local
                }
            };
            if attempt > max {
                let info = AttemptInfo { attempt: attempt - 1, max_attempts: max };
                self.handler.exhausted(job.clone(), info).await;
                outcome("failed");
                return Err(AbortError::new("attempts used up by interrupted executions").into());
            }
            let info = AttemptInfo { attempt, max_attempts: max };
            let started = Instant::now();
            let res = self.attempt(job.clone(), info).await;
            metrics::histogram!(JOB_DURATION).record(started.elapsed().as_secs_f64());
            let msg = match res {
                Ok(()) => {
                    outcome("succeeded");
                    return Ok(());
                }
                Err(HandlerError::Permanent(m)) => {
                    outcome("failed");
                    return Err(AbortError::new(m).into());
                }
                Err(HandlerError::Retryable(m)) if attempt >= max => {
                    outcome("failed");
                    return Err(AbortError::new(m).into());
                }
                Err(HandlerError::Retryable(m)) => m,
            };
            outcome("retried");
            let delay = self.opts.backoff_for(attempt);
            tracing::info!(run_id = job.run_id, attempt, ?delay, error = %msg, "run attempt failed, retrying");
            let mut rx = self.shutdown.clone();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown_requested(&mut rx) => {
                    return Err(format!("released on shutdown after attempt {attempt}: {msg}").into());
                }
            }
        }
    }

    async fn attempt(&self, job: RunJob, info: AttemptInfo) -> Result<(), HandlerError> {
        let handler = self.handler.clone();
        // Own task: a CPU-heavy or panicking handler must not stall or kill the worker loop,
        // which also drives the heartbeats.
        let mut task = tokio::spawn(async move { handler.handle(job, info).await });
        match tokio::time::timeout(self.opts.timeout, &mut task).await {
            Ok(Ok(res)) => res,
            Ok(Err(e)) => Err(HandlerError::Retryable(format!("handler panicked: {e}"))),
            Err(_) => {
                // Only takes effect at the handler's next await point; blocking code runs on.
                task.abort();
                Err(HandlerError::Retryable(format!("timed out after {:?}", self.opts.timeout)))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heartbeat_split() {
        assert_eq!(heartbeat_for(Duration::from_secs(3)), (Duration::from_secs(1), 3));
        assert_eq!(heartbeat_for(Duration::from_secs(30)), (Duration::from_secs(10), 3));
        assert_eq!(heartbeat_for(Duration::from_secs(5)), (Duration::from_secs(1), 5));
    }

    #[test]
    fn backoff() {
        let o = WorkerOptions {
            backoff_base: Duration::from_millis(100),
            backoff_max: Duration::from_millis(350),
            ..WorkerOptions::default()
        };
        assert_eq!(o.backoff_for(1), Duration::from_millis(100));
        assert_eq!(o.backoff_for(2), Duration::from_millis(200));
        assert_eq!(o.backoff_for(3), Duration::from_millis(350));
        assert_eq!(o.backoff_for(60), Duration::from_millis(350));
    }
}
