//! `haechi etl` processes against the fake KIS server: two processes share one access token
//! through the database, and a collection killed with SIGKILL and started again loses nothing.
//!
//! MariaDB, Redis (the shared rate limiter) and S3 when their `HAECHI_TEST_*` variables are set;
//! SQLite, the in-process limiter and a folder otherwise. No test here reaches KIS's own hosts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use chrono::NaiveDate;
use haechi_db::testkit::TestDb;
use haechi_kis::KisEnv;
use haechi_kis::fake::{FakeKis, FakeKisConfig};

struct Kill(Vec<Child>);

impl Drop for Kill {
    fn drop(&mut self) {
        for c in &mut self.0 {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

async fn fake(tickers: usize) -> FakeKis {
    let market = haechi_data::synth::SynthConfig { seed: 5, tickers, from: d(2015, 1, 1), to: d(2024, 12, 31) };
    let mut cfg = FakeKisConfig::new(KisEnv::Real, market);
    cfg.rate_limit = 1_000;
    FakeKis::start(cfg, SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap()
}

struct Env {
    db: TestDb,
    dir: tempfile::TempDir,
    objects: Vec<(&'static str, String)>,
    _guard: haechi_objects::testkit::TestObjectsGuard,
}

async fn env() -> Env {
    let (_, guard) = haechi_objects::testkit::TestObjects::new().await;
    Env {
        db: TestDb::new().await.unwrap(),
        dir: tempfile::tempdir().unwrap(),
        objects: guard.child_env(),
        _guard: guard,
    }
}

fn etl(env: &Env, fake: &FakeKis, rate: u32, args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_haechi"));
    cmd.arg("etl")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HAECHI_DATABASE_URL", &env.db.url)
        .env("HAECHI_DATA_DIR", env.dir.path())
        .env("HAECHI_LOG", "warn")
        .env("HAECHI_KIS_APP_KEY", "PSPROCESSTEST")
        .env("HAECHI_KIS_APP_SECRET", "secret")
        .env("HAECHI_KIS_ENV", "real")
        .env("HAECHI_KIS_BASE_URL", fake.base_url())
        .env("HAECHI_KIS_RATE_PER_SEC", rate.to_string())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Ok(url) = std::env::var("HAECHI_TEST_REDIS_URL") {
        cmd.env("HAECHI_REDIS_URL", url).env("HAECHI_QUEUE_NAME", format!("kis-test-{}", std::process::id()));
    }
    for (k, v) in &env.objects {
        cmd.env(k, v);
    }
    cmd
}

fn expected_rows(fake: &FakeKis, tickers: &[String]) -> Vec<(String, i32, i64)> {
    let m = fake.market();
    let mut out = Vec::new();
    for t in tickers {
        let slot = m.slot_of(haechi_core::Ticker::parse(t).unwrap()).unwrap();
        for (i, date) in m.dates().iter().enumerate() {
            if let Some(b) = m.raw(slot, i) {
                out.push((t.clone(), haechi_jobs::market::day_number(*date), i64::from(b.close)));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_processes_share_one_token() {
    let env = env().await;
    let fake = fake(4).await;
    let t = fake.tickers();
    let a = etl(
        &env,
        &fake,
        200,
        &["bars", "--tickers", &format!("{},{}", t[0], t[1]), "--from", "2024-01-01", "--to", "2024-12-31"],
    )
    .spawn()
    .unwrap();
    let b = etl(
        &env,
        &fake,
        200,
        &["bars", "--tickers", &format!("{},{}", t[2], t[3]), "--from", "2024-01-01", "--to", "2024-12-31"],
    )
    .spawn()
    .unwrap();
    for child in [a, b] {
        let out = child.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    assert_eq!(fake.issuances(), 1, "one token issued for two processes");
    let keys: std::collections::HashSet<_> = fake.arrivals().iter().map(|a| a.app_key.clone()).collect();
    assert_eq!(keys.len(), 1);
    assert_eq!(
        env.db.db.count_bars().await.unwrap() as usize,
        expected_rows(&fake, &t).iter().filter(|r| r.1 >= 20240101).count()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collection_killed_mid_run_and_restarted_loses_nothing() {
    let env = env().await;
    let fake = fake(12).await;
    let tickers = fake.tickers();
    let list = tickers.join(",");
    let args = ["bars", "--tickers", list.as_str(), "--from", "2015-01-01", "--to", "2024-12-31", "--concurrency", "4"];
    let mut first =
        Kill(vec![etl(&env, &fake, 100, &args).stdout(Stdio::null()).stderr(Stdio::null()).spawn().unwrap()]);
    let started = Instant::now();
    while fake.arrivals().len() < 80 {
        assert!(started.elapsed() < Duration::from_secs(60), "collection did not get going");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    first.0[0].kill().unwrap(); // SIGKILL: no clean-up of any kind
    first.0[0].wait().unwrap();
    let before = fake.arrivals().len();
    let partial = env.db.db.count_bars().await.unwrap();
    assert!(partial > 0);

    let out = etl(&env, &fake, 100, &args).output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    assert!(stdout.contains("resumed"), "{stdout}");

    let mut stored: Vec<(String, i32, i64)> = env
        .db
        .db
        .bars_between(&tickers, 0, 99_999_999)
        .await
        .unwrap()
        .into_iter()
        .map(|b| (b.ticker, b.day, b.close))
        .collect();
    stored.sort();
    assert_eq!(stored, expected_rows(&fake, &tickers), "every bar exactly once");
    // The restart fetched only what was missing: at most a page per worker again.
    let pages: usize = tickers.iter().map(|t| expected_rows(&fake, std::slice::from_ref(t)).len().div_ceil(100)).sum();
    assert!(fake.arrivals().len() <= pages + 4, "{} requests for {pages} pages", fake.arrivals().len());
    assert!(fake.arrivals().len() > before);
    let runs = env.db.db.etl_runs(10).await.unwrap();
    assert_eq!(runs.len(), 1, "the killed run was resumed, not restarted");
    assert_eq!(runs[0].state, "succeeded");
}

#[test]
fn without_kis_keys_etl_explains_what_to_set() {
    let dir = tempfile::tempdir().unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_haechi"))
        .args(["etl", "bars", "--tickers", "005930", "--from", "2024-01-01"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HAECHI_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("HAECHI_KIS_APP_KEY") && err.contains("kis-fake"), "{err}");
}
