//! Two `haechi worker` processes share 20 runs; one is killed with SIGKILL in the middle of a
//! run. Every run must still end `succeeded`, each with exactly one report. And `--queues`
//! refuses what this process cannot serve.
//!
//! Runs on whatever the environment names: MariaDB (`HAECHI_TEST_MYSQL_URL`), Redis
//! (`HAECHI_TEST_REDIS_URL`) and S3 (`HAECHI_TEST_S3_URL`) in CI; otherwise a SQLite database,
//! the SQLite queue file and a local folder, shared by the processes on this machine.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use haechi_db::testkit::TestDb;
use haechi_db::{NewRun, NewUser, NewVersion, state};
use haechi_jobs::{Queue, QueueConfig, RunJob};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const RUNS: usize = 20;

struct Workers(Vec<Child>);

impl Drop for Workers {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// Long on purpose: one story (start, kill mid-run, recover, check every row and object) that
// only means something told in order.
async fn killed_worker_mid_run_loses_nothing_and_duplicates_nothing() {
    let test_db = TestDb::new().await.expect("test database");
    let db = test_db.db.clone();
    let dir = tempfile::tempdir().unwrap();
    let (objects, objects_guard) = haechi_objects::testkit::TestObjects::new().await;

    let redis = std::env::var("HAECHI_TEST_REDIS_URL").ok().filter(|u| !u.trim().is_empty());
    let namespace = format!("haechi-workers-{}-{}", std::process::id(), haechi_db::now_ms());
    let queue_cfg = match &redis {
        Some(url) => QueueConfig::Redis { url: url.clone(), namespace: namespace.clone() },
        None => QueueConfig::Sqlite { path: dir.path().join("queue.db") },
    };
    let queue = Queue::connect(&queue_cfg).await.expect("queue");

    // Market, user, scenario and 20 queued runs.
    let cfg = haechi_data::synth::SynthConfig {
        seed: 11,
        tickers: 10,
        from: chrono::NaiveDate::from_ymd_opt(2019, 1, 1).unwrap(),
        to: chrono::NaiveDate::from_ymd_opt(2021, 12, 31).unwrap(),
    };
    let store = haechi_data::synth::generate(&cfg).unwrap();
    let data_version = haechi_jobs::market::load_store_into_db(&db, &store, "synthetic", true, "test").await.unwrap();
    let user = db
        .create_user(NewUser {
            email: "w@example.com".into(),
            display_name: "w".into(),
            password_hash: "x".into(),
            role: "investor".into(),
        })
        .await
        .unwrap();
    let spec = serde_json::json!({
        "name": "workers", "capital": 10_000_000,
        "period": {"start": "2019-03-04", "end": "2021-12-30"},
        "universe": {"all": true},
        "strategy": {"type": "sma_cross", "fast": 5, "slow": 20}
    })
    .to_string();
    let (scenario, _) = db
        .create_scenario(
            user.id,
            NewVersion {
                name: "workers".into(),
                description: None,
                strategy: "sma_cross".into(),
                spec,
                author_id: user.id,
                message: String::new(),
            },
        )
        .await
        .unwrap();
    let mut ids = Vec::new();
    for _ in 0..RUNS {
        let run = db
            .create_run(NewRun { owner_id: user.id, scenario_id: scenario.id, scenario_version: 1, data_version })
            .await
            .unwrap();
        queue.enqueue(RunJob { run_id: run.id }).await.unwrap();
        ids.push(run.id);
    }

    // Two worker processes; ~0.7 s per run so a kill lands mid-run.
    let spawn = |name: &str, queues: &[&str]| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_haechi"));
        cmd.arg("worker")
            .arg("--concurrency")
            .arg("2")
            .args(queues)
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HAECHI_DATABASE_URL", &test_db.url)
            .env("HAECHI_DATA_DIR", dir.path())
            .env("HAECHI_RUN_SESSION_DELAY_US", "1000")
            .env("HAECHI_JOB_ORPHAN_SECS", "3")
            .env("HAECHI_LOG", "warn")
            .env("HOSTNAME", name)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(url) = &redis {
            cmd.env("HAECHI_REDIS_URL", url).env("HAECHI_QUEUE_NAME", &namespace);
        }
        for (k, v) in objects_guard.child_env() {
            cmd.env(k, v);
        }
        cmd.spawn().expect("spawn haechi worker")
    };
    // The survivor names its queue explicitly; the victim serves every queue by default.
    let mut workers = Workers(vec![spawn("a", &[]), spawn("b", &["--queues", "runs"])]);

    // Kill worker a once runs are in flight and a couple have finished.
    let started = Instant::now();
    loop {
        let runs = db.runs_by_ids(&ids).await.unwrap();
        let done = runs.iter().filter(|r| r.state == state::SUCCEEDED).count();
        let running = runs.iter().filter(|r| r.state == state::RUNNING).count();
        if done >= 2 && running >= 3 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "workers made no progress");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    workers.0[0].kill().unwrap(); // SIGKILL
    workers.0[0].wait().unwrap();
    let killed_at = Instant::now();

    loop {
        let runs = db.runs_by_ids(&ids).await.unwrap();
        if runs.iter().all(|r| state::is_final(&r.state)) {
            break;
        }
        assert!(
            killed_at.elapsed() < Duration::from_secs(180),
            "runs left unfinished after the kill: {:?}",
            runs.iter().filter(|r| !state::is_final(&r.state)).map(|r| (r.id, r.state.clone())).collect::<Vec<_>>()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    eprintln!("all {RUNS} runs final {:.1} s after the kill", killed_at.elapsed().as_secs_f64());

    let runs = db.runs_by_ids(&ids).await.unwrap();
    assert_eq!(runs.len(), RUNS);
    for r in &runs {
        assert_eq!(r.state, state::SUCCEEDED, "run {} ended {} ({:?})", r.id, r.state, r.error);
        let keys: Vec<String> =
            objects.list(&format!("reports/{}/{}/", user.id, r.id)).await.unwrap().into_iter().map(|o| o.key).collect();
        assert_eq!(keys.len(), 2, "run {}: {keys:?}", r.id);
        assert!(r.final_equity.is_some() && r.report_key.is_some());
    }
    let all_reports = objects.list(&format!("reports/{}/", user.id)).await.unwrap();
    assert_eq!(all_reports.len(), 2 * RUNS, "exactly one report (json + html) per run");
    assert!(runs.iter().any(|r| r.attempts >= 2), "the kill interrupted no run: nothing was tested");

    // The survivor stops cleanly on SIGTERM.
    let pid = workers.0[1].id().to_string();
    assert!(Command::new("kill").arg("-TERM").arg(&pid).status().unwrap().success());
    let status = workers.0[1].wait().unwrap();
    assert!(status.success(), "worker exited with {status}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
// Long on purpose, like the test above: one story told in order.
async fn killed_worker_mid_sweep_loses_no_point_and_stores_none_twice() {
    const POINTS: i64 = 48;
    let test_db = TestDb::new().await.expect("test database");
    let db = test_db.db.clone();
    let dir = tempfile::tempdir().unwrap();
    let redis = std::env::var("HAECHI_TEST_REDIS_URL").ok().filter(|u| !u.trim().is_empty());
    let namespace = format!("haechi-sweep-{}-{}", std::process::id(), haechi_db::now_ms());
    let queue_cfg = match &redis {
        Some(url) => QueueConfig::Redis { url: url.clone(), namespace: namespace.clone() },
        None => QueueConfig::Sqlite { path: dir.path().join("queue.db") },
    };
    let queue = Queue::connect(&queue_cfg).await.expect("queue");
    let cfg = haechi_data::synth::SynthConfig {
        seed: 11,
        tickers: 6,
        from: chrono::NaiveDate::from_ymd_opt(2020, 1, 1).unwrap(),
        to: chrono::NaiveDate::from_ymd_opt(2021, 12, 31).unwrap(),
    };
    let store = haechi_data::synth::generate(&cfg).unwrap();
    let data_version = haechi_jobs::market::load_store_into_db(&db, &store, "synthetic", true, "test").await.unwrap();
    let user = db
        .create_user(NewUser {
            email: "s@example.com".into(),
            display_name: "s".into(),
            password_hash: "x".into(),
            role: "investor".into(),
        })
        .await
        .unwrap();
    let spec = serde_json::json!({
        "name": "sweep", "capital": 10_000_000,
        "period": {"start": "2020-03-02", "end": "2021-12-30"},
        "universe": {"all": true},
        "strategy": {"type": "sma_cross", "fast": 5, "slow": 20}
    })
    .to_string();
    let version = NewVersion {
        name: "sweep".into(),
        description: None,
        strategy: "sma_cross".into(),
        spec,
        author_id: user.id,
        message: String::new(),
    };
    let (scenario, _) = db.create_scenario(user.id, version).await.unwrap();
    // 6 × 8 = 48 points in 6 chunks of 8.
    let grid = vec!["strategy.fast=2..12:2".to_owned(), "strategy.slow=20..55:5".to_owned()];
    let sw = db
        .create_sweep(haechi_db::NewSweep {
            owner_id: user.id,
            scenario_id: scenario.id,
            scenario_version: 1,
            data_version,
            grid: serde_json::to_string(&grid).unwrap(),
            in_sample: 0.7,
            points_total: POINTS as i32,
        })
        .await
        .unwrap();
    for job in haechi_jobs::sweeps::chunks(sw.id, POINTS as u32) {
        queue.enqueue(job).await.unwrap();
    }

    // ~1 s per chunk (500 sessions × 2 ms), so a kill lands mid-chunk.
    let spawn = |name: &str| {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_haechi"));
        cmd.args(["worker", "--concurrency", "2", "--queues", "sweeps"])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HAECHI_DATABASE_URL", &test_db.url)
            .env("HAECHI_DATA_DIR", dir.path())
            .env("HAECHI_RUN_SESSION_DELAY_US", "2000")
            .env("HAECHI_JOB_ORPHAN_SECS", "3")
            .env("HAECHI_LOG", "warn")
            .env("HOSTNAME", name)
            .stdout(Stdio::null())
            .stderr(Stdio::inherit());
        if let Some(url) = &redis {
            cmd.env("HAECHI_REDIS_URL", url).env("HAECHI_QUEUE_NAME", &namespace);
        }
        cmd.spawn().expect("spawn haechi worker")
    };
    // Worker a alone first, so that when the sweep starts running a holds two chunks (its two
    // slots); then b joins, and a is killed a moment later, in the middle of both.
    let mut workers = Workers(vec![spawn("a")]);
    let started = Instant::now();
    loop {
        let s = db.sweep_by_id(sw.id).await.unwrap().unwrap();
        if s.state == state::RUNNING {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(120), "worker a took no chunk: {s:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    workers.0.push(spawn("b"));
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(db.sweep_by_id(sw.id).await.unwrap().unwrap().points_done, 0, "a chunk ended before the kill");
    workers.0[0].kill().unwrap();
    workers.0[0].wait().unwrap();
    let killed_at = Instant::now();
    let done = loop {
        let s = db.sweep_by_id(sw.id).await.unwrap().unwrap();
        if state::is_final(&s.state) {
            break s;
        }
        assert!(killed_at.elapsed() < Duration::from_secs(180), "sweep unfinished after the kill: {s:?}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    eprintln!("sweep final {:.1} s after the kill", killed_at.elapsed().as_secs_f64());
    assert_eq!(done.state, state::SUCCEEDED, "{:?}", done.error);
    assert_eq!(i64::from(done.points_done), POINTS);
    let points = db.all_sweep_points(sw.id).await.unwrap();
    let ids: Vec<i64> = points.iter().map(|p| i64::from(p.point)).collect();
    assert_eq!(ids, (0..POINTS).collect::<Vec<_>>(), "every point, once");
    assert!(points.iter().any(|p| p.job.ends_with("#2")), "the kill interrupted no chunk: nothing was tested");
    assert!(done.best.is_some());
}

/// A sweep created on one market data version is not finished on another: the chunk fails the
/// sweep, saying why, rather than mix points computed on different data.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_sweep_whose_market_data_changed_fails_saying_so() {
    let test_db = TestDb::new().await.expect("test database");
    let db = test_db.db.clone();
    let dir = tempfile::tempdir().unwrap();
    let redis = std::env::var("HAECHI_TEST_REDIS_URL").ok().filter(|u| !u.trim().is_empty());
    let namespace = format!("haechi-sweep-data-{}-{}", std::process::id(), haechi_db::now_ms());
    let queue_cfg = match &redis {
        Some(url) => QueueConfig::Redis { url: url.clone(), namespace: namespace.clone() },
        None => QueueConfig::Sqlite { path: dir.path().join("queue.db") },
    };
    let queue = Queue::connect(&queue_cfg).await.expect("queue");
    let cfg = haechi_data::synth::SynthConfig {
        seed: 3,
        tickers: 3,
        from: chrono::NaiveDate::from_ymd_opt(2021, 1, 1).unwrap(),
        to: chrono::NaiveDate::from_ymd_opt(2021, 12, 31).unwrap(),
    };
    let store = haechi_data::synth::generate(&cfg).unwrap();
    let first = haechi_jobs::market::load_store_into_db(&db, &store, "synthetic", true, "v1").await.unwrap();
    let second = haechi_jobs::market::load_store_into_db(&db, &store, "synthetic", true, "v2").await.unwrap();
    assert_ne!(first, second);
    let user = db
        .create_user(NewUser {
            email: "d@example.com".into(),
            display_name: "d".into(),
            password_hash: "x".into(),
            role: "investor".into(),
        })
        .await
        .unwrap();
    let spec = serde_json::json!({
        "name": "data", "capital": 10_000_000,
        "period": {"start": "2021-03-02", "end": "2021-12-30"},
        "universe": {"all": true},
        "strategy": {"type": "sma_cross", "fast": 5, "slow": 20}
    })
    .to_string();
    let version = NewVersion {
        name: "data".into(),
        description: None,
        strategy: "sma_cross".into(),
        spec,
        author_id: user.id,
        message: String::new(),
    };
    let (scenario, _) = db.create_scenario(user.id, version).await.unwrap();
    let sw = db
        .create_sweep(haechi_db::NewSweep {
            owner_id: user.id,
            scenario_id: scenario.id,
            scenario_version: 1,
            data_version: first,
            grid: serde_json::to_string(&["strategy.fast=3,5"]).unwrap(),
            in_sample: 0.7,
            points_total: 2,
        })
        .await
        .unwrap();
    for job in haechi_jobs::sweeps::chunks(sw.id, 2) {
        queue.enqueue(job).await.unwrap();
    }
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_haechi"));
    cmd.args(["worker", "--queues", "sweeps"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HAECHI_DATABASE_URL", &test_db.url)
        .env("HAECHI_DATA_DIR", dir.path())
        .env("HAECHI_LOG", "warn")
        .stdout(Stdio::null())
        .stderr(Stdio::inherit());
    if let Some(url) = &redis {
        cmd.env("HAECHI_REDIS_URL", url).env("HAECHI_QUEUE_NAME", &namespace);
    }
    let _workers = Workers(vec![cmd.spawn().expect("spawn haechi worker")]);
    let started = Instant::now();
    let done = loop {
        let s = db.sweep_by_id(sw.id).await.unwrap().unwrap();
        if state::is_final(&s.state) {
            break s;
        }
        assert!(started.elapsed() < Duration::from_secs(60), "the sweep did not end: {s:?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(done.state, state::FAILED);
    let why = done.error.unwrap_or_default();
    assert!(why.contains(&format!("the market data changed during the sweep (version {first} to {second})")), "{why}");
    assert!(db.all_sweep_points(sw.id).await.unwrap().is_empty(), "no point computed on the other data");
}

#[test]
fn worker_refuses_unknown_queues_and_kis_queues_without_kis() {
    let dir = tempfile::tempdir().unwrap();
    let run = |queues: &str| {
        Command::new(env!("CARGO_BIN_EXE_haechi"))
            .args(["worker", "--queues", queues])
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HAECHI_DATA_DIR", dir.path())
            .env("HAECHI_LOG", "warn")
            .output()
            .unwrap()
    };
    let out = run("runs,nope");
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("--queues: unknown queue \"nope\" (queues: runs, sweeps, etl, paper, guard)"), "{err}");

    let out = run("etl");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the etl queue needs KIS settings"), "{err}");

    let out = run("paper");
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("the paper queue needs a KIS mock account"), "{err}");
}
