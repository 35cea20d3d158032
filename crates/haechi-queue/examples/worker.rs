//! Worker process used by the crash test.
//!
//! Env: `HAECHI_QUEUE` = `sqlite:<path>` or `redis:<url>|<namespace>`, `HAECHI_LOG` = file to
//! append `start|done <job id> <pid> <attempt> <unix_ms>` lines to, `HAECHI_SLEEP_MS` (300),
//! `HAECHI_ORPHAN_SECS` (3), `HAECHI_CONCURRENCY` (2). Stops gracefully on SIGINT/SIGTERM.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use haechi_queue::{HandlerError, Job, JobContext, JobHandler, Queue, QueueConfig, WorkerOptions, run_workers};
use serde::{Deserialize, Serialize};

/// The crash test's job (the same kind and queue as its `TestJob`).
#[derive(Debug, Serialize, Deserialize)]
struct TestJob {
    id: i64,
}

impl Job for TestJob {
    const KIND: &'static str = "test";
    const QUEUE: &'static str = "test";
}

struct LogHandler {
    log: PathBuf,
    sleep: Duration,
}

impl LogHandler {
    fn line(&self, what: &str, job: &TestJob, ctx: &JobContext) -> Result<(), HandlerError> {
        let ms = SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis()).unwrap_or(0);
        let line = format!("{what} {} {} {} {ms}\n", job.id, std::process::id(), ctx.attempt.attempt);
        // O_APPEND plus one write per line keeps lines of concurrent processes whole.
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .and_then(|mut f| f.write_all(line.as_bytes()))
            .map_err(|e| HandlerError::Retryable(e.to_string()))
    }
}

impl JobHandler for LogHandler {
    type Job = TestJob;
    async fn handle(&self, job: TestJob, ctx: JobContext) -> Result<(), HandlerError> {
        self.line("start", &job, &ctx)?;
        tokio::time::sleep(self.sleep).await;
        self.line("done", &job, &ctx)
    }
}

fn env_or<T: std::str::FromStr>(key: &str, default: T) -> T {
    std::env::var(key).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let queue_spec = std::env::var("HAECHI_QUEUE")?;
    let cfg = match queue_spec.split_once(':') {
        Some(("sqlite", path)) => QueueConfig::Sqlite { path: path.into() },
        Some(("redis", rest)) => {
            let (url, namespace) = rest.split_once('|').ok_or("redis spec is redis:<url>|<namespace>")?;
            QueueConfig::Redis { url: url.to_owned(), namespace: namespace.to_owned() }
        }
        _ => return Err("HAECHI_QUEUE must be sqlite:<path> or redis:<url>|<namespace>".into()),
    };
    let handler = Arc::new(LogHandler {
        log: std::env::var("HAECHI_LOG")?.into(),
        sleep: Duration::from_millis(env_or("HAECHI_SLEEP_MS", 300)),
    });
    let queue = Queue::connect(&cfg).await?;
    let opts = WorkerOptions {
        name: "crash-test".into(),
        queues: Vec::new(),
        concurrency: env_or("HAECHI_CONCURRENCY", 2),
        max_attempts: 5,
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_secs(2),
        timeout: Duration::from_secs(30),
        poll_interval: Duration::from_millis(25),
        orphan_after: Duration::from_secs(env_or("HAECHI_ORPHAN_SECS", 3)),
    };
    let shutdown = async {
        let mut term = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(s) => s,
            Err(_) => return,
        };
        tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        }
    };
    run_workers(&queue, opts, handler, shutdown).await?;
    Ok(())
}
