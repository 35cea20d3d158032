#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
//! Collection from the fake KIS server into the database: backfill, idempotence, incremental
//! runs, resuming an interrupted run, raw archiving, the quality report, the daily schedule
//! owned by one process, and the daily collection executed as a `kis.daily` job. On MariaDB + S3 when `HAECHI_TEST_MYSQL_URL` / `HAECHI_TEST_S3_URL` are
//! set, SQLite and a folder otherwise.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use chrono::NaiveDate;
use haechi_data::synth::SynthConfig;
use haechi_db::testkit::TestDb;
use haechi_jobs::etl::{BarsParams, DbTokenStore, Etl, EtlOptions, NoProgress, ObjectArchive};
use haechi_jobs::schedule::{DailySchedule, run_daily};
use haechi_jobs::{KisDaily, KisDailyJob, Queue, QueueConfig, Registry, WorkerOptions, run_workers};
use haechi_kis::fake::{FakeKis, FakeKisConfig};
use haechi_kis::{Credentials, KisClient, KisConfig, KisEnv};
use haechi_objects::Objects;
use haechi_objects::testkit::TestObjects;

fn d(y: i32, m: u32, day: u32) -> NaiveDate {
    NaiveDate::from_ymd_opt(y, m, day).unwrap()
}

async fn fake(tickers: usize) -> FakeKis {
    let mut cfg =
        FakeKisConfig::new(KisEnv::Real, SynthConfig { seed: 11, tickers, from: d(2015, 1, 1), to: d(2024, 12, 31) });
    cfg.rate_limit = 10_000;
    FakeKis::start(cfg, SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap()
}

fn etl(fake: &FakeKis, db: &haechi_db::Db, objects: &Objects, stale: Duration) -> Etl {
    let mut cfg = KisConfig::new(KisEnv::Real, Credentials::new("PSETLTEST", "secret").unwrap());
    cfg.base_url = fake.base_url();
    cfg.rate_per_sec = 5_000.0;
    cfg.retry_base = Duration::from_millis(10);
    let client = KisClient::builder(cfg)
        .token_store(DbTokenStore::new(db.clone()))
        .archive(ObjectArchive::new(objects.clone()))
        .build()
        .unwrap();
    Etl::new(
        db.clone(),
        objects.clone(),
        client,
        EtlOptions { concurrency: 4, stale_after: stale, heartbeat: Duration::from_millis(200) },
    )
}

/// The bars the fake serves for `ticker` between two dates, as (day, close).
fn expected(fake: &FakeKis, ticker: &str, from: NaiveDate, to: NaiveDate) -> Vec<(i32, i64)> {
    let m = fake.market();
    let slot = m.slot_of(haechi_core::Ticker::parse(ticker).unwrap()).unwrap();
    (0..m.n_days())
        .filter(|i| m.dates()[*i] >= from && m.dates()[*i] <= to)
        .filter_map(|i| m.raw(slot, i).map(|b| (haechi_jobs::market::day_number(m.dates()[i]), i64::from(b.close))))
        .collect()
}

async fn stored(db: &haechi_db::Db, ticker: &str) -> Vec<(i32, i64)> {
    db.bars_between(&[ticker.to_owned()], 0, 99_999_999).await.unwrap().into_iter().map(|b| (b.day, b.close)).collect()
}

#[tokio::test]
async fn backfill_is_complete_idempotent_archived_and_checked() {
    let t = TestDb::new().await.unwrap();
    let (objects, _guard) = TestObjects::new().await;
    let fake = fake(4).await;
    let tickers = fake.tickers();
    let e = etl(&fake, &t.db, &objects, Duration::from_secs(60));
    let params = BarsParams { tickers: tickers.clone(), from: d(2015, 1, 1), to: d(2024, 12, 31) };
    let first = e.bars(&params, Arc::new(NoProgress)).await.unwrap();
    assert!(first.failed.is_empty(), "{:?}", first.failed);
    for tk in &tickers {
        assert_eq!(stored(&t.db, tk).await, expected(&fake, tk, params.from, params.to), "{tk}");
    }
    let bars = t.db.count_bars().await.unwrap();
    assert_eq!(first.rows_upserted as u64, bars);
    // Every answer archived unchanged, one object per request.
    let raw = objects.list("raw/kis/inquire-daily-itemchartprice/").await.unwrap();
    assert_eq!(raw.len() as i64, first.requests);
    let body = objects.get(&raw[0].key).await.unwrap();
    let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["rt_cd"], "0");
    // The quality report sits next to the data; synthetic bars are clean OHLC.
    let report: serde_json::Value =
        serde_json::from_slice(&objects.get(first.report_key.as_deref().unwrap()).await.unwrap()).unwrap();
    assert_eq!(report["tickers"], 4);
    assert_eq!(report["bars"].as_u64().unwrap(), bars);
    assert!(report["counts"].get("ohlc").is_none(), "{report}");

    // Twice: nothing fetched, nothing duplicated.
    let second = e.bars(&params, Arc::new(NoProgress)).await.unwrap();
    assert_eq!(second.requests, 0);
    assert_eq!(t.db.count_bars().await.unwrap(), bars);
    let report: serde_json::Value =
        serde_json::from_slice(&objects.get(second.report_key.as_deref().unwrap()).await.unwrap()).unwrap();
    assert_eq!(report["bars"], 0, "nothing fetched, nothing to check again");
    assert_eq!(fake.issuances(), 1, "one token for both runs, from the database");
}

#[tokio::test]
async fn later_runs_fetch_only_the_missing_days_on_both_sides() {
    let t = TestDb::new().await.unwrap();
    let (objects, _guard) = TestObjects::new().await;
    let fake = fake(2).await;
    let tk = fake.tickers()[0].clone();
    let e = etl(&fake, &t.db, &objects, Duration::from_secs(60));
    e.bars(&BarsParams { tickers: vec![tk.clone()], from: d(2019, 1, 1), to: d(2020, 12, 31) }, Arc::new(NoProgress))
        .await
        .unwrap();
    let before = fake.arrivals().len();
    // Newer days (2021) and older ones (2018): ~250 sessions each, three pages each.
    let s = e
        .bars(&BarsParams { tickers: vec![tk.clone()], from: d(2018, 1, 1), to: d(2021, 12, 31) }, Arc::new(NoProgress))
        .await
        .unwrap();
    assert_eq!(fake.arrivals().len() - before, s.requests as usize);
    assert_eq!(s.requests, 6, "3 pages below + 3 above the covered range");
    assert_eq!(stored(&t.db, &tk).await, expected(&fake, &tk, d(2018, 1, 1), d(2021, 12, 31)));
}

#[tokio::test]
async fn an_interrupted_run_resumes_from_its_checkpoint_and_loses_nothing() {
    let t = TestDb::new().await.unwrap();
    let (objects, _guard) = TestObjects::new().await;
    let fake = fake(6).await;
    let tickers = fake.tickers();
    let params = BarsParams { tickers: tickers.clone(), from: d(2015, 1, 1), to: d(2024, 12, 31) };
    // Stop the first attempt mid-way, as a crash would (no clean-up runs).
    let first = etl(&fake, &t.db, &objects, Duration::from_millis(300));
    let mut first_run = Box::pin(first.bars(&params, Arc::new(NoProgress)));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        tokio::select! {
            r = &mut first_run => panic!("finished before the interruption: {:?}", r.map(|s| s.requests)),
            _ = tokio::time::sleep(Duration::from_millis(5)) => {}
        }
        if fake.arrivals().len() >= 40 || tokio::time::Instant::now() > deadline {
            break;
        }
    }
    drop(first_run);
    let partial = t.db.count_bars().await.unwrap();
    let requests_before = fake.arrivals().len();
    assert!(partial > 0);
    tokio::time::sleep(Duration::from_millis(400)).await; // the owner's heartbeat goes stale

    let second = etl(&fake, &t.db, &objects, Duration::from_millis(300));
    let s = second.bars(&params, Arc::new(NoProgress)).await.unwrap();
    assert!(s.resumed, "took over the interrupted run");
    for tk in &tickers {
        assert_eq!(stored(&t.db, tk).await, expected(&fake, tk, params.from, params.to), "{tk}");
    }
    // Pages stored before the crash were not fetched again (at most one in flight per worker).
    let full: usize = tickers.iter().map(|tk| expected(&fake, tk, params.from, params.to).len().div_ceil(100)).sum();
    let total = requests_before + s.requests as usize;
    assert!(total <= full + 4, "{total} requests for {full} pages");
    let runs = t.db.etl_runs(10).await.unwrap();
    assert_eq!(runs.len(), 1, "the same run, resumed");
    assert_eq!(runs[0].state, "succeeded");
}

#[tokio::test]
async fn the_daily_job_runs_once_however_many_processes_check() {
    let t = TestDb::new().await.unwrap();
    let ran = Arc::new(AtomicUsize::new(0));
    let sched = DailySchedule {
        name: format!("test-{}", uuid::Uuid::new_v4().simple()),
        at_kst: chrono::NaiveTime::MIN,
        check_every: Duration::from_millis(20),
        heartbeat: Duration::from_millis(50),
        stale_after: Duration::from_secs(60),
    };
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let mut loops = Vec::new();
    for _ in 0..4 {
        let (db, sched, ran, stop) = (t.db.clone(), sched.clone(), ran.clone(), stop_rx.clone());
        loops.push(tokio::spawn(async move {
            run_daily(
                db,
                sched,
                move |_day| {
                    let ran = ran.clone();
                    async move {
                        ran.fetch_add(1, Ordering::SeqCst);
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        Ok(())
                    }
                },
                stop,
            )
            .await
        }));
    }
    tokio::time::sleep(Duration::from_millis(600)).await;
    stop_tx.send(true).unwrap();
    let mut days = Vec::new();
    for l in loops {
        days.extend(l.await.unwrap());
    }
    let today = (haechi_kis::utc_now() + chrono::Duration::hours(9)).date_naive();
    let claims = t.db.schedule_claims(&sched.name).await.unwrap();
    if haechi_jobs::schedule::is_trading_day(today) {
        assert_eq!(ran.load(Ordering::SeqCst), 1, "four checkers, one run");
        assert_eq!(days, [today]);
        assert_eq!(claims.len(), 1);
        assert_eq!(claims[0].state, "done");
    } else {
        assert_eq!(ran.load(Ordering::SeqCst), 0, "no run on a non-trading day");
        assert!(claims.is_empty());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_daily_collection_is_a_job_a_worker_executes() {
    let t = TestDb::new().await.unwrap();
    let (objects, _guard) = TestObjects::new().await;
    let fake = fake(2).await;
    let tickers = fake.tickers();
    let e = Arc::new(etl(&fake, &t.db, &objects, Duration::from_secs(60)));
    e.instruments(&tickers, Arc::new(NoProgress)).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let queue = Queue::connect(&QueueConfig::Sqlite { path: dir.path().join("queue.db") }).await.unwrap();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    let opts = WorkerOptions { name: "etl-test".into(), ..WorkerOptions::default() };
    let registry = Registry::new().with(KisDaily::new(e)).unwrap();
    assert_eq!(registry.kinds(), [("kis.daily", "etl")]);
    let workers = tokio::spawn({
        let queue = queue.clone();
        async move {
            run_workers(&queue, opts, registry, async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            })
            .await
        }
    });
    queue.enqueue(KisDailyJob { day: d(2026, 12, 7) }).await.unwrap();
    let t0 = std::time::Instant::now();
    while queue.stats(haechi_jobs::queues::ETL).await.unwrap().done == 0 {
        assert!(t0.elapsed() < Duration::from_secs(60), "the kis.daily job did not finish");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop_tx.send(true).unwrap();
    workers.await.unwrap().unwrap();
    // Ten years back from the last closed session; the fake market ends in 2024.
    let to = haechi_jobs::etl::last_closed_day(haechi_kis::utc_now());
    let from = to.checked_sub_months(chrono::Months::new(120)).unwrap();
    for tk in &tickers {
        let want = expected(&fake, tk, from, to);
        assert!(!want.is_empty());
        assert_eq!(stored(&t.db, tk).await, want, "{tk}");
    }
}
