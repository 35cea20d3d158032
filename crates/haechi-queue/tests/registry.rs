//! Job kinds and named queues: a worker runs only the queues it is given, an unknown kind, a
//! malformed payload or a job that is no envelope at all fails at once without retries, workers can be stopped and started
//! again in one process (the demo does), they deregister when they stop, and stale
//! registrations are pruned when a worker starts.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Running, TestJob, backends, opts, registered_workers, stats, wait_until};
use haechi_queue::{Envelope, HandlerError, Job, JobContext, JobHandler, Queue, QueueConfig, Registry, run_workers};
use serde::{Deserialize, Serialize};

#[derive(Default)]
struct Count(AtomicUsize);

impl JobHandler for Count {
    type Job = TestJob;
    async fn handle(&self, _job: TestJob, _ctx: JobContext) -> Result<(), HandlerError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[derive(Debug, Serialize, Deserialize)]
struct OtherJob {
    n: u32,
}

impl Job for OtherJob {
    const KIND: &'static str = "other.job";
    const QUEUE: &'static str = "other";
}

#[derive(Default)]
struct CountOther(AtomicUsize);

impl JobHandler for CountOther {
    type Job = OtherJob;
    async fn handle(&self, _job: OtherJob, _ctx: JobContext) -> Result<(), HandlerError> {
        self.0.fetch_add(1, Ordering::SeqCst);
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_serve_only_their_queues() {
    for b in backends("queues") {
        let q = Queue::connect(&b.cfg).await.unwrap();
        let (test, other) = (Arc::new(Count::default()), Arc::new(CountOther::default()));
        let registry = Registry::new().with(test.clone()).unwrap().with(other.clone()).unwrap();
        assert_eq!(registry.queues(), ["other", "test"]);

        // The `test` job first: a worker that served `test` would meet it before the others.
        q.enqueue(TestJob { id: 1 }).await.unwrap();
        for n in 0..5 {
            q.enqueue(OtherJob { n }).await.unwrap();
        }
        let mut o = opts("only-other");
        o.queues = vec!["other".into()];
        let run = Running::start(&q, registry.clone(), vec![o]);
        wait_until("the other queue drained", Duration::from_secs(30), || async {
            q.stats("other").await.unwrap().done == 5
        })
        .await;
        run.stop().await;
        assert_eq!(other.0.load(Ordering::SeqCst), 5, "{}", b.label);
        assert_eq!(test.0.load(Ordering::SeqCst), 0, "{}: ran a queue it was not given", b.label);
        assert_eq!(stats(&q).await.pending, 1, "{}", b.label);

        // No queue list: every queue of the registry.
        let run = Running::start(&q, registry, vec![opts("all")]);
        wait_until("the test queue drained", Duration::from_secs(30), || async { stats(&q).await.done == 1 }).await;
        run.stop().await;
        assert_eq!(test.0.load(Ordering::SeqCst), 1, "{}", b.label);
        b.cleanup().await;
    }
}

#[tokio::test]
async fn a_queue_without_kinds_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let q = Queue::connect(&QueueConfig::Sqlite { path: dir.path().join("q.db") }).await.unwrap();
    let mut o = opts("x");
    o.queues = vec!["nope".into()];
    let err = run_workers(&q, o, Arc::new(Count::default()), async {}).await.unwrap_err();
    assert!(err.to_string().contains("queue \"nope\" has no job kinds in this process (it has: test)"), "{err}");
    let err = run_workers(&q, opts("x"), Registry::new(), async {}).await.unwrap_err();
    assert!(err.to_string().contains("no job kinds are registered"), "{err}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_kinds_and_bad_payloads_fail_at_once() {
    for b in backends("unknown") {
        let q = Queue::connect(&b.cfg).await.unwrap();
        let h = Arc::new(Count::default());
        let run = Running::start(&q, h.clone(), vec![opts("unknown")]);
        let unknown = Envelope { kind: "no.such.kind".into(), payload: serde_json::json!({}) };
        q.enqueue_envelope(TestJob::QUEUE, unknown).await.unwrap();
        let malformed = Envelope { kind: TestJob::KIND.into(), payload: serde_json::json!({"id": "not a number"}) };
        q.enqueue_envelope(TestJob::QUEUE, malformed).await.unwrap();
        q.enqueue(TestJob { id: 3 }).await.unwrap();
        let mut failures = 2;
        if let QueueConfig::Sqlite { path } = &b.cfg {
            // A job pushed before envelopes existed: bare JSON with no kind.
            let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display())).await.unwrap();
            sqlx::query(
                "INSERT INTO Jobs (job, id, job_type, status, max_attempts) VALUES (?1, ?2, 'haechi.test', 'Pending', 10000)",
            )
            .bind(br#"{"run_id":1}"#.to_vec())
            .bind(ulid::Ulid::generate().to_string())
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
            failures += 1;
        }
        wait_until("all terminal", Duration::from_secs(30), || async {
            let s = stats(&q).await;
            s.failed == failures && s.done == 1
        })
        .await;
        run.stop().await;
        assert_eq!(h.0.load(Ordering::SeqCst), 1, "{}: only the valid job reached the handler", b.label);
        b.cleanup().await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn workers_restart_in_one_process_and_deregister() {
    for b in backends("restart") {
        let q = Queue::connect(&b.cfg).await.unwrap();
        let h = Arc::new(Count::default());
        // Same options each time, as the demo's seeding and serving workers have: the second
        // set must not collide with the registration of the first.
        for round in 1..=3 {
            let run = Running::start(&q, h.clone(), vec![opts("same"), opts("same")]);
            q.enqueue(TestJob { id: round }).await.unwrap();
            wait_until("the job of this round", Duration::from_secs(30), || async {
                stats(&q).await.done == u64::try_from(round).unwrap()
            })
            .await;
            assert_eq!(registered_workers(&b, "test").await.len(), 2, "{}", b.label);
            run.stop().await;
            assert_eq!(registered_workers(&b, "test").await, Vec::<String>::new(), "{}: left registered", b.label);
        }
        assert_eq!(h.0.load(Ordering::SeqCst), 3, "{}", b.label);
        b.cleanup().await;
    }
}

/// Registers a worker that was last seen `ago` seconds back, holding `job` when given.
async fn fake_registration(b: &common::Backend, id: &str, ago: i64, job: Option<&str>) {
    match &b.cfg {
        QueueConfig::Sqlite { path } => {
            let pool = sqlx::SqlitePool::connect(&format!("sqlite:{}", path.display())).await.unwrap();
            sqlx::query(
                "INSERT INTO Workers (id, worker_type, storage_name, layers, last_seen, started_at) \
                 VALUES (?1, 'haechi.test', 'SqliteStorage', '', strftime('%s', 'now') - ?2, strftime('%s', 'now') - ?2)",
            )
            .bind(id)
            .bind(ago)
            .execute(&pool)
            .await
            .unwrap();
            // A finished job still names the worker that ran it.
            sqlx::query(
                "INSERT INTO Jobs (job, id, job_type, status, lock_by) VALUES (x'7b7d', ?1, 'haechi.test', ?2, ?3)",
            )
            .bind(format!("{id}-job"))
            .bind(if job.is_some() { "Running" } else { "Done" })
            .bind(id)
            .execute(&pool)
            .await
            .unwrap();
            pool.close().await;
        }
        QueueConfig::Redis { url, namespace } => {
            let client = redis::Client::open(url.as_str()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs() as i64;
            let _: () = redis::cmd("ZADD")
                .arg(format!("{namespace}:test:workers"))
                .arg(now - ago)
                .arg(id)
                .query_async(&mut conn)
                .await
                .unwrap();
            let _: () = redis::cmd("HSET")
                .arg(format!("{namespace}:test:workers:metadata:{id}"))
                .arg("backend_name")
                .arg("RedisStorage")
                .query_async(&mut conn)
                .await
                .unwrap();
            if let Some(job) = job {
                let _: () = redis::cmd("SADD")
                    .arg(format!("{namespace}:test:inflight:{id}"))
                    .arg(job)
                    .query_async(&mut conn)
                    .await
                    .unwrap();
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stale_registrations_are_pruned_at_start() {
    for b in backends("prune") {
        let q = Queue::connect(&b.cfg).await.unwrap();
        fake_registration(&b, "ghost", 600, None).await;
        fake_registration(&b, "recent", 0, None).await;
        if matches!(b.cfg, QueueConfig::Sqlite { .. }) {
            // Redis drops a worker holding jobs from its set when it recovers them, so only
            // SQLite keeps such a registration around to show it is left alone.
            fake_registration(&b, "holder", 600, Some("held")).await;
        }
        let run = Running::start(&q, Arc::new(Count::default()), vec![opts("pruner")]);
        wait_until("the ghost pruned", Duration::from_secs(30), || async {
            !registered_workers(&b, "test").await.contains(&"ghost".to_owned())
        })
        .await;
        let left = registered_workers(&b, "test").await;
        run.stop().await;
        assert!(left.contains(&"recent".to_owned()), "{}: a live registration was pruned: {left:?}", b.label);
        if matches!(b.cfg, QueueConfig::Sqlite { .. }) {
            assert!(left.contains(&"holder".to_owned()), "{}: a worker holding a job was pruned", b.label);
        }
        if let QueueConfig::Redis { url, namespace } = &b.cfg {
            let client = redis::Client::open(url.as_str()).unwrap();
            let mut conn = client.get_multiplexed_async_connection().await.unwrap();
            let meta: bool = redis::cmd("EXISTS")
                .arg(format!("{namespace}:test:workers:metadata:ghost"))
                .query_async(&mut conn)
                .await
                .unwrap();
            assert!(!meta, "the ghost's metadata is gone too");
        }
        b.cleanup().await;
    }
}
