use std::future::Future;
use std::pin::pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use apalis::prelude::{
    AbortError, BoxDynError, Event, PollSnapshot, PollStrategy, PollWith, TaskId, WorkerBuilder, WorkerBuilderExt,
    WorkerContext, WorkerError,
};
use apalis_redis::RedisStorage;
use apalis_sqlite::SqliteStorage;
use futures::{Stream, StreamExt};
use tokio::sync::watch;
use tracing::Instrument as _;

use crate::backend::Inner;
use crate::job::Entry;
use crate::metrics_names::{JOB_DURATION, QUEUE_DEPTH, outcome};
use crate::{
    AttemptInfo, Envelope, HandlerError, JobContext, JobError, JobId, Queue, Registry, STALE_WORKER_AFTER,
    WorkerOptions,
};

/// Pause before replacing an apalis worker that died on a backend error (e.g. Redis restart),
/// so a persistent outage does not spin.
const RESTART_DELAY: Duration = Duration::from_secs(1);
const DEPTH_EVERY: Duration = Duration::from_secs(1);

/// The backend id of a new worker: `{name}-{queue}-{pid}-{process start, unix ms}-{counter}`.
///
/// Both backends refuse to register an id whose last heartbeat is recent, and a worker that
/// stopped a moment ago is still recent. The counter keeps apart the workers of one process
/// (several queues, a worker replaced after a backend error, the demo's workers that seed its
/// example runs and then the ones that serve); the pid and start time keep apart processes,
/// including a restart that gets the same pid.
#[must_use]
pub fn worker_id(name: &str, queue: &str) -> String {
    static STARTED_MS: OnceLock<u128> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let started = *STARTED_MS.get_or_init(|| SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis()));
    let n = COUNTER.fetch_add(1, Ordering::Relaxed) + 1;
    format!("{name}-{queue}-{}-{started}-{n}", std::process::id())
}

/// Serves the queues of `opts.queues` (all queues of the registry's kinds when empty), each
/// with one apalis worker of `opts.concurrency` slots, until `shutdown` resolves; then stops
/// fetching and returns once the jobs in flight have finished.
///
/// `handlers` is a [`Registry`], or a single handler (`Arc<H>`). A job waiting for its retry
/// backoff when shutdown comes is handed back to the queue rather than waited for.
///
/// # Errors
/// Invalid options, a queue no registered kind uses, or a worker that failed while stopping.
pub async fn run_workers(
    queue: &Queue,
    opts: WorkerOptions,
    handlers: impl Into<Registry>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), JobError> {
    validate(&opts)?;
    let registry = Arc::new(handlers.into());
    let served = select_queues(&registry, &opts.queues)?;
    let (tx, rx) = watch::channel(false);
    let signal = tokio::spawn(async move {
        shutdown.await;
        let _ = tx.send(true);
    });
    let depth = tokio::spawn(report_depth(queue.clone(), served.clone()));
    for name in &served {
        match queue.inner.prune_workers(name, STALE_WORKER_AFTER).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(queue = %name, pruned = n, "removed stale worker registrations"),
            // Harmless: the next start tries again.
            Err(e) => tracing::info!(queue = %name, error = %e, "stale worker registrations not pruned"),
        }
    }
    let loops = served.iter().map(|name| {
        let exec = Arc::new(Exec {
            queue: queue.clone(),
            name: name.clone(),
            registry: registry.clone(),
            opts: opts.clone(),
            shutdown: rx.clone(),
        });
        serve_queue(exec)
    });
    let results = futures::future::join_all(loops).await;
    depth.abort();
    signal.abort();
    results.into_iter().collect()
}

fn select_queues(registry: &Registry, wanted: &[String]) -> Result<Vec<String>, JobError> {
    let known = registry.queues();
    if known.is_empty() {
        return Err(JobError::InvalidOptions("no job kinds are registered".into()));
    }
    if wanted.is_empty() {
        return Ok(known.iter().map(|q| (*q).to_owned()).collect());
    }
    let mut out: Vec<String> = Vec::new();
    for q in wanted {
        if !known.contains(&q.as_str()) {
            return Err(JobError::InvalidOptions(format!(
                "queue {q:?} has no job kinds in this process (it has: {})",
                known.join(", ")
            )));
        }
        if !out.contains(q) {
            out.push(q.clone());
        }
    }
    Ok(out)
}

/// One queue: an apalis worker, replaced under a fresh id whenever it dies on a backend
/// error, until shutdown.
async fn serve_queue(exec: Arc<Exec>) -> Result<(), JobError> {
    let (queue, opts, rx) = (&exec.queue, &exec.opts, exec.shutdown.clone());
    let (heartbeat, missed) = heartbeat_for(opts.orphan_after);
    let mut result = Ok(());
    while !*rx.borrow() {
        let ctx = WorkerContext::new(&worker_id(&opts.name, &exec.name));
        let exec_for_svc = exec.clone();
        let service = move |job: Envelope, id: TaskId| {
            let exec = exec_for_svc.clone();
            async move { exec.run(job, id.to_string()).await }
        };
        // Batch size 1: apalis' `Persisted` only heartbeats while its prefetch buffer is
        // empty, so prefetched-but-waiting jobs would stall heartbeats and be declared
        // orphaned; a buffer also lets one process hoard jobs that idle peers could run.
        let ended = match &queue.inner {
            Inner::Sqlite { pool } => {
                let cfg = Inner::sqlite_config(&exec.name)
                    .batch_size(1)
                    .heartbeat_interval(heartbeat)
                    .missed_heartbeats(missed);
                let backend = PollWith::new(
                    SqliteStorage::<Envelope>::new(pool).with_config(cfg),
                    Every::new(opts.poll_interval),
                );
                let worker =
                    WorkerBuilder::new(ctx.clone()).backend(backend).concurrency(opts.concurrency).build(service);
                drive(boxed(worker.stream()), &ctx, rx.clone()).await
            }
            Inner::Redis { conn, namespace } => {
                let cfg = Inner::redis_config(namespace, &exec.name)
                    .batch_size(1)
                    .heartbeat_interval(heartbeat)
                    .missed_heartbeats(missed);
                let backend = PollWith::new(
                    RedisStorage::<Envelope>::new(conn.clone()).with_config(cfg),
                    Every::new(opts.poll_interval),
                );
                let worker =
                    WorkerBuilder::new(ctx.clone()).backend(backend).concurrency(opts.concurrency).build(service);
                drive(boxed(worker.stream()), &ctx, rx.clone()).await
            }
        };
        match queue.inner.deregister(&exec.name, ctx.name()).await {
            Ok(gone) => tracing::debug!(worker = ctx.name(), deregistered = gone, "worker ended"),
            Err(e) => tracing::debug!(worker = ctx.name(), error = %e, "worker not deregistered; pruned later"),
        }
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

/// Wakes an idle worker every `poll_interval` to look for a job. apalis' own interval strategy
/// replaces its timer when it fires without polling the new one, so after a fetch that found
/// nothing no wake-up may be armed, and the worker slept until its next heartbeat (a third of
/// `job_orphan_secs`: up to 10 s by default, measured 3–9 s) before it saw a new job. This one
/// polls the fresh timer at once: whenever it is driven, the next tick is armed.
struct Every {
    every: Duration,
    sleep: std::pin::Pin<Box<tokio::time::Sleep>>,
}

impl Every {
    fn new(every: Duration) -> Every {
        Every { every, sleep: Box::pin(tokio::time::sleep(every)) }
    }
}

impl PollStrategy for Every {
    fn poll_drive(&mut self, cx: &mut std::task::Context<'_>, _: &PollSnapshot) -> std::task::Poll<Option<()>> {
        if self.sleep.as_mut().poll(cx).is_pending() {
            return std::task::Poll::Pending;
        }
        self.sleep.as_mut().reset(tokio::time::Instant::now() + self.every);
        // Registers the waker for the next tick before this one is reported.
        let _ = self.sleep.as_mut().poll(cx);
        std::task::Poll::Ready(Some(()))
    }
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

async fn report_depth(queue: Queue, served: Vec<String>) {
    let mut every = tokio::time::interval(DEPTH_EVERY);
    loop {
        every.tick().await;
        for name in &served {
            match queue.stats(name).await {
                Ok(s) => metrics::gauge!(QUEUE_DEPTH, "queue" => name.clone()).set(s.pending as f64),
                Err(e) => tracing::debug!(queue = %name, error = %e, "queue depth not updated"),
            }
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

/// Executes the jobs of one queue.
struct Exec {
    queue: Queue,
    /// The queue's name.
    name: String,
    registry: Arc<Registry>,
    opts: WorkerOptions,
    shutdown: watch::Receiver<bool>,
}

/// How one execution ended, for the single log line and metric it gets.
enum Ended {
    Succeeded,
    /// Terminal; the backend will not retry it.
    Failed(String),
    /// Handed back to the backend (shutdown during a retryable failure).
    Released(String),
}

impl Exec {
    /// One apalis execution of a job, under a span naming it.
    ///
    /// `Ok` acks the job as Done; an `AbortError` acks it as Killed, which neither backend
    /// retries; any other error hands it back to the backend for another execution.
    async fn run(&self, envelope: Envelope, task_id: String) -> Result<(), BoxDynError> {
        let span = tracing::info_span!("job", job_id = %task_id, kind = %envelope.kind, queue = %self.name);
        async move {
            let Some((kind, entry)) = self.registry.get(&envelope.kind) else {
                let msg = if envelope.kind.is_empty() {
                    format!("not a job envelope (no kind): {}", envelope.payload)
                } else {
                    format!(
                        "no handler for job kind {:?} in this worker (queue {} has: {})",
                        envelope.kind,
                        self.name,
                        self.registry.kinds_on(&self.name).join(", ")
                    )
                };
                tracing::error!(error = %msg, "job failed");
                outcome("unknown", "failed");
                return Err(AbortError::new(msg).into());
            };
            match self.attempts(kind, entry, envelope.payload, JobId(task_id)).await {
                Ended::Succeeded => {
                    outcome(kind, "succeeded");
                    Ok(())
                }
                Ended::Failed(msg) => {
                    tracing::error!(error = %msg, "job failed");
                    outcome(kind, "failed");
                    Err(AbortError::new(msg).into())
                }
                Ended::Released(msg) => {
                    tracing::info!(reason = %msg, "job handed back to the queue on shutdown");
                    Err(msg.into())
                }
            }
        }
        .instrument(span)
        .await
    }

    /// All attempts of the job, with backoff in between.
    async fn attempts(&self, kind: &'static str, entry: &Entry, payload: serde_json::Value, job_id: JobId) -> Ended {
        let max = self.opts.max_attempts;
        let timeout = entry.handler.timeout().unwrap_or(self.opts.timeout);
        let mut local = 0u32;
        loop {
            local += 1;
            let attempt = match self.queue.inner.start_attempt(&self.name, &job_id.0).await {
                Ok(n) => n.max(local),
                Err(e) => {
                    tracing::info!(error = %e, "attempt counter not updated; counting in memory");
                    local
                }
            };
            let ctx = |attempt| JobContext {
                job_id: job_id.clone(),
                attempt: AttemptInfo { attempt, max_attempts: max },
                stopping: self.shutdown.clone(),
            };
            if attempt > max {
                entry.handler.exhausted(payload.clone(), ctx(attempt - 1)).await;
                return Ended::Failed(format!(
                    "gave up: its {} attempts were used up by executions that never finished",
                    attempt - 1
                ));
            }
            let started = Instant::now();
            let res = self.attempt(entry, payload.clone(), ctx(attempt), timeout).await;
            metrics::histogram!(JOB_DURATION, "kind" => kind).record(started.elapsed().as_secs_f64());
            let msg = match res {
                Ok(()) => return Ended::Succeeded,
                Err(HandlerError::Permanent(m)) => return Ended::Failed(m),
                Err(HandlerError::Retryable(m)) if attempt >= max => {
                    return Ended::Failed(format!("attempt {attempt} of {max}: {m}"));
                }
                Err(HandlerError::Retryable(m)) if *self.shutdown.borrow() => {
                    return Ended::Released(format!("after attempt {attempt}: {m}"));
                }
                Err(HandlerError::Retryable(m)) => m,
            };
            outcome(kind, "retried");
            let delay = self.opts.backoff_for(attempt);
            tracing::warn!(attempt, ?delay, error = %msg, "job attempt failed; retrying");
            let mut rx = self.shutdown.clone();
            tokio::select! {
                _ = tokio::time::sleep(delay) => {}
                _ = shutdown_requested(&mut rx) => {
                    return Ended::Released(format!("after attempt {attempt}: {msg}"));
                }
            }
        }
    }

    async fn attempt(
        &self,
        entry: &Entry,
        payload: serde_json::Value,
        ctx: JobContext,
        timeout: Duration,
    ) -> Result<(), HandlerError> {
        // Own task: a CPU-heavy or panicking handler must not stall or kill the worker loop,
        // which also drives the heartbeats. It keeps the job's span.
        let mut task = tokio::spawn(entry.handler.handle(payload, ctx).instrument(tracing::Span::current()));
        match tokio::time::timeout(timeout, &mut task).await {
            Ok(Ok(res)) => res,
            Ok(Err(e)) => Err(HandlerError::Retryable(format!("handler panicked: {e}"))),
            Err(_) => {
                // Only takes effect at the handler's next await point; blocking code runs on.
                task.abort();
                Err(HandlerError::Retryable(format!("timed out after {timeout:?}")))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The lost wake-up behind 3–9 s waits for a job on an idle worker: after the poll timer
    /// fires, the next tick must be armed even if nothing drives the strategy again.
    #[tokio::test]
    async fn the_poll_timer_stays_armed_after_it_fires() {
        use futures::task::ArcWake;
        use std::sync::atomic::AtomicUsize;
        struct Count(AtomicUsize);
        impl ArcWake for Count {
            fn wake_by_ref(me: &Arc<Self>) {
                me.0.fetch_add(1, Ordering::SeqCst);
            }
        }
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let waker = futures::task::waker(count.clone());
        let mut cx = std::task::Context::from_waker(&waker);
        let snapshot = PollSnapshot::default();
        let mut every = super::Every::new(Duration::from_millis(10));
        assert!(every.poll_drive(&mut cx, &snapshot).is_pending());
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(count.0.load(Ordering::SeqCst) >= 1, "the first tick woke the worker");
        assert!(every.poll_drive(&mut cx, &snapshot).is_ready());
        let woken = count.0.load(Ordering::SeqCst);
        tokio::time::sleep(Duration::from_millis(60)).await;
        assert!(count.0.load(Ordering::SeqCst) > woken, "a tick after the one reported still wakes the worker");
    }

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

    #[test]
    fn worker_ids_never_repeat_in_a_process() {
        let a = worker_id("w", "runs");
        let b = worker_id("w", "runs");
        assert_ne!(a, b);
        let pid = std::process::id().to_string();
        assert!(a.starts_with(&format!("w-runs-{pid}-")), "{a}");
        assert_eq!(a.rsplit('-').nth(1), b.rsplit('-').nth(1), "same process start");
    }
}
