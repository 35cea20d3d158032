#![allow(dead_code)]

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use haechi_queue::{Job, Queue, QueueConfig, QueueStats, Registry, WorkerOptions, run_workers};
use serde::{Deserialize, Serialize};
use tokio::sync::watch;

/// The job the tests push: an id to tell executions apart.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TestJob {
    pub id: i64,
}

impl Job for TestJob {
    const KIND: &'static str = "test";
    const QUEUE: &'static str = "test";
}

/// One backend under test; deletes its Redis keys on drop of `cleanup()`.
pub struct Backend {
    pub label: &'static str,
    pub cfg: QueueConfig,
    pub _dir: Option<tempfile::TempDir>,
}

impl Backend {
    pub fn spec(&self) -> String {
        match &self.cfg {
            QueueConfig::Sqlite { path } => format!("sqlite:{}", path.display()),
            QueueConfig::Redis { url, namespace } => format!("redis:{url}|{namespace}"),
        }
    }

    pub async fn cleanup(&self) {
        if let QueueConfig::Redis { url, namespace } = &self.cfg {
            let client = redis::Client::open(url.as_str()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let keys: Vec<String> =
                redis::cmd("KEYS").arg(format!("{namespace}:*")).query_async(&mut conn).await.unwrap();
            for k in keys {
                let _: () = redis::cmd("DEL").arg(k).query_async(&mut conn).await.unwrap();
            }
            // apalis-redis registers every queue in this global index.
            let queues: Vec<String> = redis::cmd("ZRANGE")
                .arg("core:apalis:queues:list")
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .unwrap();
            for q in queues.into_iter().filter(|q| q.starts_with(&format!("{namespace}:"))) {
                let _: () =
                    redis::cmd("ZREM").arg("core:apalis:queues:list").arg(q).query_async(&mut conn).await.unwrap();
            }
        }
    }
}

fn unique(test: &str) -> String {
    let nanos = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_nanos();
    format!("haechi-test:{test}:{}:{nanos}", std::process::id())
}

/// SQLite always; Redis when HAECHI_TEST_REDIS_URL is set.
pub fn backends(test: &str) -> Vec<Backend> {
    let dir = tempfile::tempdir().unwrap();
    let path: PathBuf = dir.path().join("queue.sqlite");
    let mut v = vec![Backend { label: "sqlite", cfg: QueueConfig::Sqlite { path }, _dir: Some(dir) }];
    match std::env::var("HAECHI_TEST_REDIS_URL") {
        Ok(url) if !url.is_empty() => {
            v.push(Backend { label: "redis", cfg: QueueConfig::Redis { url, namespace: unique(test) }, _dir: None })
        }
        _ => eprintln!("HAECHI_TEST_REDIS_URL not set: skipping the Redis backend"),
    }
    v
}

pub fn opts(name: &str) -> WorkerOptions {
    WorkerOptions {
        name: name.into(),
        queues: Vec::new(),
        concurrency: 2,
        max_attempts: 3,
        backoff_base: Duration::from_millis(100),
        backoff_max: Duration::from_secs(2),
        timeout: Duration::from_secs(10),
        poll_interval: Duration::from_millis(20),
        orphan_after: Duration::from_secs(3),
    }
}

/// Workers running in this process; `stop` triggers graceful shutdown and waits for it.
pub struct Running {
    tx: watch::Sender<bool>,
    handles: Vec<tokio::task::JoinHandle<Result<(), haechi_queue::JobError>>>,
}

impl Running {
    pub fn start(queue: &Queue, handlers: impl Into<Registry>, workers: Vec<WorkerOptions>) -> Running {
        let registry: Registry = handlers.into();
        let (tx, rx) = watch::channel(false);
        let handles = workers
            .into_iter()
            .map(|o| {
                let q = queue.clone();
                let h = registry.clone();
                let mut rx = rx.clone();
                tokio::spawn(async move {
                    let sd = async move {
                        let _ = rx.wait_for(|v| *v).await;
                    };
                    run_workers(&q, o, h, sd).await
                })
            })
            .collect();
        Running { tx, handles }
    }

    pub async fn stop(self) {
        self.tx.send(true).unwrap();
        for h in self.handles {
            tokio::time::timeout(Duration::from_secs(30), h).await.expect("graceful stop").unwrap().unwrap();
        }
    }
}

pub async fn wait_until<F, Fut>(what: &str, limit: Duration, mut f: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let t0 = Instant::now();
    while !f().await {
        assert!(t0.elapsed() < limit, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

pub async fn stats(q: &Queue) -> QueueStats {
    q.stats(TestJob::QUEUE).await.unwrap()
}

/// The worker ids registered on `queue`, as the backend holds them.
pub async fn registered_workers(b: &Backend, queue: &str) -> Vec<String> {
    match &b.cfg {
        QueueConfig::Sqlite { path } => {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display())).await.unwrap();
            let ids: Vec<String> = sqlx::query_scalar("SELECT id FROM Workers WHERE worker_type = ?1 ORDER BY id")
                .bind(format!("haechi.{queue}"))
                .fetch_all(&pool)
                .await
                .unwrap();
            pool.close().await;
            ids
        }
        QueueConfig::Redis { url, namespace } => {
            let client = redis::Client::open(url.as_str()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            redis::cmd("ZRANGE")
                .arg(format!("{namespace}:{queue}:workers"))
                .arg(0)
                .arg(-1)
                .query_async(&mut conn)
                .await
                .unwrap()
        }
    }
}
