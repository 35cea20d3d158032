use std::time::Duration;

use apalis::prelude::{TaskBuilder, TaskId};
use apalis_redis::{ConnectionManager, RedisStorage};
use apalis_sqlite::{SqliteConnectOptions, SqlitePool, SqlitePoolOptions, SqliteStorage};
use sqlx::sqlite::{SqliteJournalMode, SqliteSynchronous};

use crate::{Envelope, JobError, JobId, QueueConfig, QueueStats, SQLITE_PREFIX};

const REDIS_CONNECT_TIMEOUT: Duration = Duration::from_secs(3);
const REDIS_RESPONSE_TIMEOUT: Duration = Duration::from_secs(5);
/// Several processes may open a fresh queue file at once; sqlx's SQLite migrator has no
/// cross-process lock, so a loser of that race retries after the winner committed.
const SETUP_TRIES: u32 = 5;
/// Field we keep in the per-task metadata to count attempts ourselves (see `start_attempt`).
pub(crate) const ATTEMPTS_FIELD: &str = "haechi_attempts";
/// Backend-side retry cap written into each task. Our own retry loop decides when to give up;
/// this only has to stay above anything a released (shutdown) job can reach, because SQLite
/// stops re-fetching a `Failed` job once `attempts >= max_attempts`.
const BACKEND_MAX_ATTEMPTS: usize = 10_000;

#[derive(Clone, Debug)]
pub(crate) enum Inner {
    Sqlite { pool: SqlitePool },
    Redis { conn: ConnectionManager, namespace: String },
}

impl Inner {
    pub(crate) async fn connect(cfg: &QueueConfig) -> Result<Inner, JobError> {
        match cfg {
            QueueConfig::Sqlite { path } => {
                let opts = SqliteConnectOptions::new()
                    .filename(path)
                    .create_if_missing(true)
                    .journal_mode(SqliteJournalMode::Wal)
                    // WAL + NORMAL is durable against process crashes, which is what matters
                    // for SIGKILLed workers; only an OS crash may lose the last commits.
                    .synchronous(SqliteSynchronous::Normal)
                    // Workers in other processes write every poll; wait for the lock instead
                    // of failing with SQLITE_BUSY (which would kill the apalis worker).
                    .busy_timeout(Duration::from_secs(10));
                let pool = SqlitePoolOptions::new().max_connections(8).connect_with(opts).await?;
                let mut tries = 0;
                loop {
                    tries += 1;
                    match SqliteStorage::setup(&pool).await {
                        Ok(()) => break,
                        Err(e) if tries < SETUP_TRIES => {
                            tracing::warn!(error = %e, "sqlite queue setup failed, retrying");
                            tokio::time::sleep(Duration::from_millis(200)).await;
                        }
                        Err(e) => return Err(e.into()),
                    }
                }
                Ok(Inner::Sqlite { pool })
            }
            QueueConfig::Redis { url, namespace } => {
                let timeout_err = || JobError::RedisTimeout { url: url.clone(), secs: REDIS_CONNECT_TIMEOUT.as_secs() };
                let client = redis::Client::open(url.as_str())?;
                let config = redis::aio::ConnectionManagerConfig::new()
                    .set_connection_timeout(Some(REDIS_CONNECT_TIMEOUT))
                    .set_response_timeout(Some(REDIS_RESPONSE_TIMEOUT))
                    .set_number_of_retries(2);
                // The manager retries the initial connection; bound the whole thing so an
                // unreachable Redis is an error, not a hang.
                let mut conn =
                    tokio::time::timeout(REDIS_CONNECT_TIMEOUT, ConnectionManager::new_with_config(client, config))
                        .await
                        .map_err(|_| timeout_err())??;
                let _: String = tokio::time::timeout(REDIS_CONNECT_TIMEOUT, redis::cmd("PING").query_async(&mut conn))
                    .await
                    .map_err(|_| timeout_err())??;
                Ok(Inner::Redis { conn, namespace: namespace.clone() })
            }
        }
    }

    /// The SQLite `job_type` of `queue`.
    pub(crate) fn sqlite_queue(queue: &str) -> String {
        format!("{SQLITE_PREFIX}{queue}")
    }

    pub(crate) fn sqlite_config(queue: &str) -> apalis_sqlite::Config {
        apalis_sqlite::Config::default().queue(Self::sqlite_queue(queue))
    }

    /// Every queue gets its own key space under the configured namespace.
    pub(crate) fn redis_queue(namespace: &str, queue: &str) -> String {
        format!("{namespace}:{queue}")
    }

    pub(crate) fn redis_config(namespace: &str, queue: &str) -> apalis_redis::Config {
        apalis_redis::Config::default().queue(Self::redis_queue(namespace, queue))
    }

    pub(crate) async fn enqueue(&self, queue: &str, envelope: &Envelope) -> Result<JobId, JobError> {
        let payload = serde_json::to_vec(envelope).map_err(|e| JobError::Enqueue(e.to_string()))?;
        // Our own id, so the caller can log it next to what it enqueued for. A ULID, as
        // apalis would pick: apalis-sqlite refuses to read back any other form.
        let ulid = ulid::Ulid::generate();
        let id = ulid.to_string();
        let task =
            TaskBuilder::new(payload).task_id(TaskId::from_ulid(ulid)).max_attempts(BACKEND_MAX_ATTEMPTS).build();
        // Storages are cloned per call: pushing needs `&mut`, and a clone only copies the
        // pool/connection handle.
        match self {
            Inner::Sqlite { pool } => {
                let mut storage = SqliteStorage::<Envelope>::new(pool).with_config(Self::sqlite_config(queue));
                push_compact(&mut storage, task).await?;
            }
            Inner::Redis { conn, namespace } => {
                let mut storage =
                    RedisStorage::<Envelope>::new(conn.clone()).with_config(Self::redis_config(namespace, queue));
                push_compact(&mut storage, task).await?;
            }
        }
        Ok(JobId(id))
    }

    pub(crate) async fn stats(&self, queue: &str) -> Result<QueueStats, JobError> {
        match self {
            Inner::Sqlite { pool } => {
                let rows: Vec<(String, i64)> =
                    sqlx::query_as("SELECT status, COUNT(*) FROM Jobs WHERE job_type = ?1 GROUP BY status")
                        .bind(Self::sqlite_queue(queue))
                        .fetch_all(pool)
                        .await?;
                let mut s = QueueStats::default();
                for (status, n) in rows {
                    let n = u64::try_from(n).unwrap_or(0);
                    match status.as_str() {
                        // `Failed` here is only a released (retryable) job: terminal failures
                        // are acked as `Killed`.
                        "Pending" | "Failed" => s.pending += n,
                        "Queued" | "Running" => s.running += n,
                        "Done" => s.done += n,
                        _ => s.failed += n,
                    }
                }
                Ok(s)
            }
            Inner::Redis { conn, namespace } => {
                // apalis-redis' own stats.lua is unusable here: it ZCARDs the done/dead keys,
                // which are plain sets (WRONGTYPE), and counts workers instead of their
                // inflight sets. So count the keys directly.
                let cfg = Self::redis_config(namespace, queue);
                let mut conn = conn.clone();
                let workers: Vec<String> =
                    redis::cmd("ZRANGE").arg(cfg.workers_set()).arg(0).arg(-1).query_async(&mut conn).await?;
                let mut pipe = redis::pipe();
                pipe.cmd("LLEN")
                    .arg(cfg.active_jobs_list())
                    .cmd("ZCARD")
                    .arg(cfg.scheduled_jobs_set())
                    .cmd("SCARD")
                    .arg(cfg.done_jobs_set())
                    .cmd("SCARD")
                    .arg(cfg.dead_jobs_set());
                for w in &workers {
                    pipe.cmd("SCARD").arg(format!("{}:{}", cfg.inflight_jobs_set(), w));
                }
                let counts: Vec<u64> = pipe.query_async(&mut conn).await?;
                let get = |i: usize| counts.get(i).copied().unwrap_or(0);
                Ok(QueueStats {
                    pending: get(0) + get(1),
                    running: counts.iter().skip(4).sum(),
                    done: get(2),
                    failed: get(3),
                })
            }
        }
    }

    /// Counts one more attempt of `task_id` in the backend and returns the new count.
    ///
    /// Neither backend's own counter fits: apalis' attempt counter can only be bumped once per
    /// execution (`Attempt::increment` is crate-private) while we retry inside one execution,
    /// and a crash does not count on Redis at all. Persisting our own counter before each
    /// attempt makes a crash-looping run use up its attempts too.
    pub(crate) async fn start_attempt(&self, queue: &str, task_id: &str) -> Result<u32, JobError> {
        match self {
            Inner::Sqlite { pool } => {
                // Stored as a string: apalis decodes `metadata` into a string map and would
                // drop the whole map on a number.
                let n: Option<String> = sqlx::query_scalar(
                    "UPDATE Jobs SET metadata = json_set(COALESCE(metadata, '{}'), '$.haechi_attempts', \
                     CAST(COALESCE(CAST(json_extract(metadata, '$.haechi_attempts') AS INTEGER), 0) + 1 AS TEXT)) \
                     WHERE id = ?1 RETURNING json_extract(metadata, '$.haechi_attempts')",
                )
                .bind(task_id)
                .fetch_optional(pool)
                .await?;
                Ok(n.and_then(|s| s.parse().ok()).unwrap_or(1))
            }
            Inner::Redis { conn, namespace } => {
                let cfg = Self::redis_config(namespace, queue);
                let mut conn = conn.clone();
                let key = format!("{}:{}", cfg.job_meta_hash(), task_id);
                let n: i64 = redis::cmd("HINCRBY").arg(key).arg(ATTEMPTS_FIELD).arg(1).query_async(&mut conn).await?;
                Ok(u32::try_from(n).unwrap_or(u32::MAX))
            }
        }
    }

    /// Deletes the registrations of `queue`'s workers that have not heartbeaten for
    /// `older_than` and hold no job; returns how many went. Workers that still hold a job are
    /// left to apalis' orphan recovery, which needs their registration.
    pub(crate) async fn prune_workers(&self, queue: &str, older_than: Duration) -> Result<u64, JobError> {
        let secs = i64::try_from(older_than.as_secs()).unwrap_or(i64::MAX);
        match self {
            Inner::Sqlite { pool } => {
                let mut tx = pool.begin().await?;
                // Finished jobs keep `lock_by` pointing at the worker that ran them, and the
                // foreign key would forbid deleting that worker; nothing reads it once a job is
                // no longer held.
                sqlx::query(
                    "UPDATE Jobs SET lock_by = NULL WHERE status NOT IN ('Queued', 'Running') AND lock_by IN \
                     (SELECT id FROM Workers WHERE worker_type = ?1 AND last_seen < strftime('%s', 'now') - ?2)",
                )
                .bind(Self::sqlite_queue(queue))
                .bind(secs)
                .execute(&mut *tx)
                .await?;
                let gone = sqlx::query(
                    "DELETE FROM Workers WHERE worker_type = ?1 AND last_seen < strftime('%s', 'now') - ?2 \
                     AND NOT EXISTS (SELECT 1 FROM Jobs WHERE Jobs.lock_by = Workers.id)",
                )
                .bind(Self::sqlite_queue(queue))
                .bind(secs)
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(gone)
            }
            Inner::Redis { conn, namespace } => {
                let cfg = Self::redis_config(namespace, queue);
                let mut conn = conn.clone();
                let now = std::time::SystemTime::now()
                    .duration_since(std::time::UNIX_EPOCH)
                    .map_or(0, |d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX));
                let stale: Vec<String> = redis::cmd("ZRANGEBYSCORE")
                    .arg(cfg.workers_set())
                    .arg("-inf")
                    .arg(now.saturating_sub(secs))
                    .query_async(&mut conn)
                    .await?;
                let mut gone = 0;
                for w in stale {
                    if redis_deregister(&mut conn, &cfg, &Self::redis_queue(namespace, queue), &w).await? {
                        gone += 1;
                    }
                }
                // apalis drops expired workers from the set itself (when it recovers their
                // jobs) but leaves their metadata hashes behind.
                let prefix = format!("{}:workers:metadata:", Self::redis_queue(namespace, queue));
                let mut cursor = 0u64;
                loop {
                    let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                        .arg(cursor)
                        .arg("MATCH")
                        .arg(format!("{prefix}*"))
                        .arg("COUNT")
                        .arg(200)
                        .query_async(&mut conn)
                        .await?;
                    for key in keys {
                        let worker = key.trim_start_matches(&prefix);
                        let seen: Option<f64> =
                            redis::cmd("ZSCORE").arg(cfg.workers_set()).arg(worker).query_async(&mut conn).await?;
                        if seen.is_none() {
                            let _: () = redis::cmd("DEL").arg(&key).query_async(&mut conn).await?;
                        }
                    }
                    if next == 0 {
                        break;
                    }
                    cursor = next;
                }
                Ok(gone)
            }
        }
    }

    /// Removes a stopped worker's registration unless it still holds a job (then orphan
    /// recovery hands the job on and needs the registration to do so). Returns whether it went.
    pub(crate) async fn deregister(&self, queue: &str, worker: &str) -> Result<bool, JobError> {
        match self {
            Inner::Sqlite { pool } => {
                let mut tx = pool.begin().await?;
                sqlx::query(
                    "UPDATE Jobs SET lock_by = NULL WHERE lock_by = ?1 AND status NOT IN ('Queued', 'Running')",
                )
                .bind(worker)
                .execute(&mut *tx)
                .await?;
                let gone = sqlx::query(
                    "DELETE FROM Workers WHERE id = ?1 AND worker_type = ?2 \
                     AND NOT EXISTS (SELECT 1 FROM Jobs WHERE Jobs.lock_by = ?1)",
                )
                .bind(worker)
                .bind(Self::sqlite_queue(queue))
                .execute(&mut *tx)
                .await?
                .rows_affected();
                tx.commit().await?;
                Ok(gone > 0)
            }
            Inner::Redis { conn, namespace } => {
                let cfg = Self::redis_config(namespace, queue);
                redis_deregister(&mut conn.clone(), &cfg, &Self::redis_queue(namespace, queue), worker).await
            }
        }
    }
}

async fn push_compact<S>(storage: &mut S, task: apalis::prelude::Task<Vec<u8>>) -> Result<(), JobError>
where
    S: futures::Sink<apalis::prelude::Task<Vec<u8>>> + Unpin,
    S::Error: std::fmt::Display,
{
    use futures::SinkExt;
    // Pushing the already-encoded task keeps `max_attempts`; `TaskSink::push` would build a
    // task with the backend default (25).
    storage.send(task).await.map_err(|e| JobError::Enqueue(e.to_string()))
}

/// Drops `worker` from the workers set, and its metadata, when its in-flight set is empty.
async fn redis_deregister(
    conn: &mut ConnectionManager,
    cfg: &apalis_redis::Config,
    queue_key: &str,
    worker: &str,
) -> Result<bool, JobError> {
    // One script, so a worker cannot take a job between the check and the removal.
    let script = redis::Script::new(
        r"if redis.call('SCARD', KEYS[2]) > 0 then return 0 end
          redis.call('DEL', KEYS[3])
          return redis.call('ZREM', KEYS[1], ARGV[1])",
    );
    let removed: i64 = script
        .key(cfg.workers_set())
        .key(format!("{}:{worker}", cfg.inflight_jobs_set()))
        // As apalis' `Config::worker_metadata_key`, which wants a whole `WorkerContext`.
        .key(format!("{queue_key}:workers:metadata:{worker}"))
        .arg(worker)
        .invoke_async(conn)
        .await?;
    Ok(removed > 0)
}
