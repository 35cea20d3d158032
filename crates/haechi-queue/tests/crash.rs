//! Two worker processes (examples/worker.rs); one is SIGKILLed in the middle of a job; every
//! job must still end with a "done" line.

// Test helpers outside #[test] fns are not covered by clippy.toml's allow-*-in-tests.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::{TestJob, backends, wait_until};
use haechi_queue::Queue;

const JOBS: i64 = 20;

#[derive(Debug, Clone)]
struct Line {
    kind: String,
    job: i64,
    pid: u32,
    attempt: u32,
    ms: u128,
}

fn read_log(path: &Path) -> Vec<Line> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            let f: Vec<&str> = l.split_whitespace().collect();
            assert_eq!(f.len(), 5, "torn line {l:?}");
            Line {
                kind: f[0].into(),
                job: f[1].parse().unwrap(),
                pid: f[2].parse().unwrap(),
                attempt: f[3].parse().unwrap(),
                ms: f[4].parse().unwrap(),
            }
        })
        .collect()
}

fn worker_bin() -> PathBuf {
    // tests run from target/debug/deps; cargo test builds examples into target/debug/examples.
    let exe = std::env::current_exe().unwrap();
    let bin = exe.parent().unwrap().parent().unwrap().join("examples").join("worker");
    assert!(bin.exists(), "{} missing: run `cargo build --examples` first", bin.display());
    bin
}

/// Kills the worker when dropped, so a failing assertion leaves no stray process behind.
struct Proc(Child);

impl Drop for Proc {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn spawn_worker(spec: &str, log: &Path) -> Proc {
    let child = Command::new(worker_bin())
        .env("HAECHI_QUEUE", spec)
        .env("HAECHI_LOG", log)
        .env("HAECHI_SLEEP_MS", "300")
        .env("HAECHI_ORPHAN_SECS", "3")
        .env("HAECHI_CONCURRENCY", "2")
        .spawn()
        .unwrap();
    Proc(child)
}

fn now_ms() -> u128 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_millis()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_mid_job_is_recovered() {
    for b in backends("crash") {
        let label = b.label;
        let logdir = tempfile::tempdir().unwrap();
        let log = logdir.path().join("jobs.log");
        // Connect first so the SQLite file and tables exist before the workers open it.
        let q = Queue::connect(&b.cfg).await.unwrap();
        let mut victim = spawn_worker(&b.spec(), &log);
        let survivor = spawn_worker(&b.spec(), &log);
        let victim_pid = victim.0.id();
        tokio::time::sleep(Duration::from_millis(800)).await;
        for i in 0..JOBS {
            q.enqueue(TestJob { id: i }).await.unwrap();
        }

        // Kill the victim once it has run a couple of jobs and is inside one right now.
        let mut killed_at = 0u128;
        let mut interrupted: Vec<i64> = Vec::new();
        let t0 = Instant::now();
        while killed_at == 0 {
            assert!(t0.elapsed() < Duration::from_secs(20), "{label}: victim never got a job");
            let lines = read_log(&log);
            let mut open: HashMap<i64, u32> = HashMap::new();
            let mut finished = 0;
            for l in lines.iter().filter(|l| l.pid == victim_pid) {
                match l.kind.as_str() {
                    "start" => *open.entry(l.job).or_default() += 1,
                    _ => {
                        finished += 1;
                        open.remove(&l.job);
                    }
                }
            }
            if finished >= 2 && !open.is_empty() {
                victim.0.kill().unwrap(); // SIGKILL
                killed_at = now_ms();
                victim.0.wait().unwrap();
                // Re-read: a job may have finished between the read and the kill.
                let lines = read_log(&log);
                let done: Vec<i64> =
                    lines.iter().filter(|l| l.pid == victim_pid && l.kind == "done").map(|l| l.job).collect();
                interrupted = open.keys().copied().filter(|j| !done.contains(j)).collect();
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        eprintln!("{label}: killed {victim_pid} while running jobs {interrupted:?}");

        wait_until("every job done", Duration::from_secs(40), || async {
            let lines = read_log(&log);
            (0..JOBS).all(|j| lines.iter().any(|l| l.kind == "done" && l.job == j))
        })
        .await;
        drop(survivor);

        let lines = read_log(&log);
        let mut starts: BTreeMap<i64, Vec<&Line>> = BTreeMap::new();
        for l in lines.iter().filter(|l| l.kind == "start") {
            starts.entry(l.job).or_default().push(l);
        }
        for j in 0..JOBS {
            assert!(lines.iter().any(|l| l.kind == "done" && l.job == j), "{label}: job {j} never done");
        }
        assert!(!interrupted.is_empty(), "{label}: kill did not interrupt a job");
        for j in &interrupted {
            let s = &starts[j];
            let restart = s.iter().find(|l| l.pid != victim_pid).expect("restarted elsewhere");
            eprintln!(
                "RECOVERY {label}: job {j} restarted by {} {} ms after SIGKILL (attempt {})",
                restart.pid,
                restart.ms - killed_at,
                restart.attempt
            );
            assert_eq!(restart.attempt, 2, "{label}: the killed attempt counts");
            assert!(restart.ms - killed_at < 8000, "{label}: recovery too slow");
        }
        let dup: Vec<_> = starts.iter().filter(|(_, v)| v.len() > 1).map(|(j, v)| (*j, v.len())).collect();
        eprintln!("{label}: jobs started more than once: {dup:?}");
        b.cleanup().await;
    }
}
