// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Running, TestJob, backends, opts, stats, wait_until};
use haechi_queue::{AttemptInfo, HandlerError, JobContext, JobHandler, Queue, QueueStats};

#[derive(Default)]
struct Counting {
    done: Mutex<HashMap<i64, u32>>,
}

impl JobHandler for Counting {
    type Job = TestJob;
    async fn handle(&self, job: TestJob, _ctx: JobContext) -> Result<(), HandlerError> {
        tokio::time::sleep(Duration::from_millis(50)).await;
        *self.done.lock().unwrap().entry(job.id).or_default() += 1;
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_job_runs_once() {
    for b in backends("once") {
        let q = Queue::connect(&b.cfg).await.unwrap();
        let h = Arc::new(Counting::default());
        let run = Running::start(&q, h.clone(), vec![opts("w1"), opts("w2")]);
        for i in 0..20 {
            q.enqueue(TestJob { id: i }).await.unwrap();
        }
        wait_until("20 completions", Duration::from_secs(30), || async {
            h.done.lock().unwrap().len() == 20 && stats(&q).await.done == 20
        })
        .await;
        // Give a duplicate a chance to show up before judging.
        tokio::time::sleep(Duration::from_millis(500)).await;
        run.stop().await;
        let done = h.done.lock().unwrap().clone();
        assert_eq!(done.len(), 20, "{}", b.label);
        assert!(done.values().all(|&n| n == 1), "{}: duplicates {done:?}", b.label);
        let s = stats(&q).await;
        assert_eq!(s, QueueStats { pending: 0, running: 0, done: 20, failed: 0 }, "{}", b.label);
        b.cleanup().await;
    }
}

/// Records every attempt; behaviour per run id:
/// 1: Retryable twice then Ok; 2: Permanent; 3: always Retryable;
/// 4: first attempt hangs past the timeout, then Ok.
#[derive(Default)]
struct Scripted {
    attempts: Mutex<HashMap<i64, Vec<(AttemptInfo, Instant)>>>,
}

impl JobHandler for Scripted {
    type Job = TestJob;
    async fn handle(&self, job: TestJob, ctx: JobContext) -> Result<(), HandlerError> {
        let n = {
            let mut a = self.attempts.lock().unwrap();
            let v = a.entry(job.id).or_default();
            v.push((ctx.attempt, Instant::now()));
            v.len()
        };
        match job.id {
            1 if n <= 2 => Err(HandlerError::Retryable(format!("flaky {n}"))),
            2 => Err(HandlerError::Permanent("bad input".into())),
            3 => Err(HandlerError::Retryable("always".into())),
            4 if n == 1 => {
                tokio::time::sleep(Duration::from_secs(5)).await;
                Ok(())
            }
            _ => Ok(()),
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retries_backoff_permanent_exhausted_timeout() {
    for b in backends("retry") {
        let q = Queue::connect(&b.cfg).await.unwrap();
        let h = Arc::new(Scripted::default());
        let mut o = opts("retry");
        o.timeout = Duration::from_millis(400);
        o.concurrency = 4;
        let run = Running::start(&q, h.clone(), vec![o]);
        for i in 1..=4 {
            q.enqueue(TestJob { id: i }).await.unwrap();
        }
        wait_until("all terminal", Duration::from_secs(30), || async {
            let s = stats(&q).await;
            s.done == 2 && s.failed == 2
        })
        .await;
        run.stop().await;
        let a = h.attempts.lock().unwrap().clone();
        let label = b.label;

        let one = &a[&1];
        assert_eq!(one.iter().map(|x| x.0.attempt).collect::<Vec<_>>(), vec![1, 2, 3], "{label}");
        let gap1 = one[1].1 - one[0].1;
        let gap2 = one[2].1 - one[1].1;
        eprintln!("{label}: retry gaps {gap1:?} {gap2:?}");
        assert!(gap1 >= Duration::from_millis(100) && gap1 < Duration::from_millis(600), "{label}: {gap1:?}");
        assert!(gap2 >= Duration::from_millis(200) && gap2 < Duration::from_millis(700), "{label}: {gap2:?}");

        assert_eq!(a[&2].len(), 1, "{label}: permanent is not retried");

        let three = &a[&3];
        assert_eq!(three.len(), 3, "{label}");
        assert!(!three[0].0.is_last() && !three[1].0.is_last() && three[2].0.is_last(), "{label}");

        let four = &a[&4];
        assert_eq!(four.len(), 2, "{label}: timeout retried once");
        assert_eq!(four[1].0.attempt, 2, "{label}");

        assert_eq!(stats(&q).await, QueueStats { pending: 0, running: 0, done: 2, failed: 2 }, "{label}");
        b.cleanup().await;
    }
}

struct Timestamps {
    tx: tokio::sync::mpsc::UnboundedSender<(i64, Instant)>,
}

impl JobHandler for Timestamps {
    type Job = TestJob;
    async fn handle(&self, job: TestJob, _ctx: JobContext) -> Result<(), HandlerError> {
        let _ = self.tx.send((job.id, Instant::now()));
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn enqueue_to_start_latency() {
    for b in backends("latency") {
        let q = Queue::connect(&b.cfg).await.unwrap();
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let run = Running::start(&q, Arc::new(Timestamps { tx }), vec![opts("lat")]);
        // Let the worker register and go idle.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let mut lat = Vec::new();
        for i in 0..200 {
            let t0 = Instant::now();
            q.enqueue(TestJob { id: i }).await.unwrap();
            let (id, started) = tokio::time::timeout(Duration::from_secs(10), rx.recv()).await.unwrap().unwrap();
            assert_eq!(id, i);
            lat.push(started - t0);
            // Let the worker go idle again (ack, next empty poll) like a real sparse load.
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        run.stop().await;
        lat.sort();
        let p = |q: f64| lat[((lat.len() as f64 * q) as usize).min(lat.len() - 1)];
        eprintln!(
            "LATENCY {}: p50 {:?} p90 {:?} p99 {:?} max {:?}",
            b.label,
            p(0.5),
            p(0.9),
            p(0.99),
            lat[lat.len() - 1]
        );
        assert!(p(0.5) < Duration::from_millis(50), "{}: p50 {:?}", b.label, p(0.5));
        b.cleanup().await;
    }
}

#[tokio::test]
async fn unreachable_redis_is_an_error_not_a_hang() {
    // A listener that accepts but never answers: the worst case for a client.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = silent.local_addr().unwrap();
    let t0 = Instant::now();
    let cfg = haechi_queue::QueueConfig::Redis { url: format!("redis://{addr}"), namespace: "x".into() };
    assert!(Queue::connect(&cfg).await.is_err());
    let refused = haechi_queue::QueueConfig::Redis { url: "redis://127.0.0.1:1".into(), namespace: "x".into() };
    assert!(Queue::connect(&refused).await.is_err());
    eprintln!("unreachable redis failed after {:?}", t0.elapsed());
    assert!(t0.elapsed() < Duration::from_secs(10));
}
