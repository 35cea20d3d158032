//! Mirroring paper orders to the fake KIS's mock account (모의투자) through the queue's
//! `paper.mirror` and `paper.reconcile` jobs: orders and cancels reach KIS once, KIS's
//! refusals are kept by name, and reconciliation flags exactly the orders whose fills differ.
//! SQLite by default; MariaDB when `HAECHI_TEST_MYSQL_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

mod common;

use chrono::NaiveDate;
use common::meta;
use haechi_app::paper::{self, OrderRequest, Placed, PrintIn};
use haechi_app::{App, AppError, AppSettings, Principal};
use haechi_core::{Price, Ticker};
use haechi_data::synth::SynthConfig;
use haechi_db::MirrorOrderRow;
use haechi_jobs::mirror::{Mirror, Reconciler};
use haechi_kis::fake::{FakeKis, FakeKisConfig};
use haechi_kis::{Credentials, KisClient, KisConfig, KisEnv};
use std::sync::Arc;
use std::time::Duration;

fn buy(ticker: Ticker, price: i64, quantity: i64) -> OrderRequest {
    OrderRequest {
        ticker: ticker.as_str().into(),
        side: "buy".into(),
        kind: "limit".into(),
        price: Some(price),
        quantity,
        confirm: true,
        client_order_id: None,
    }
}

fn accepted(p: Placed) -> haechi_db::PaperOrderRow {
    match p {
        Placed::Accepted(o) => o,
        other => panic!("not accepted: {other:?}"),
    }
}

/// Polls the account's mirrored orders until `done` holds for them.
async fn wait_for(
    app: &App,
    p: &Principal,
    id: i64,
    what: &str,
    done: impl Fn(&[MirrorOrderRow]) -> bool,
) -> Vec<MirrorOrderRow> {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(30);
    loop {
        let rows = paper::mirror(app, p, id).await.unwrap().orders;
        if done(&rows) {
            return rows;
        }
        assert!(tokio::time::Instant::now() < deadline, "{what}: not in 30 s: {rows:#?}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn row(rows: &[MirrorOrderRow], order: i64) -> &MirrorOrderRow {
    rows.iter().find(|r| r.order_id == order).unwrap_or_else(|| panic!("order {order} not mirrored: {rows:#?}"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_and_cancels_reach_the_kis_mock_account_and_differences_are_flagged() {
    let synth = SynthConfig {
        seed: 7,
        tickers: 5,
        from: NaiveDate::from_ymd_opt(2024, 1, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
    };
    let mut cfg = FakeKisConfig::new(KisEnv::Mock, synth);
    cfg.rate_limit = 1_000;
    let fake = FakeKis::start(cfg, std::net::SocketAddr::from(([127, 0, 0, 1], 0))).await.unwrap();

    let platform = common::platform(&synth).await;
    let (services, store, queue) = (platform.services.clone(), &platform.store, platform.services.queue.clone());
    let app = App::new(services.clone(), AppSettings { kis_mirror: true, ..AppSettings::default() });

    // The `paper` queue's workers, with a client on the fake's mock environment.
    let mut kis = KisConfig::new(KisEnv::Mock, Credentials::new("PSMIRRORKEY", "secret-of-the-test").unwrap());
    kis.base_url = fake.base_url();
    kis.ws_url = fake.ws_url();
    kis.account = Some("50012345-01".parse().unwrap());
    kis.rate_per_sec = 500.0;
    let mirror = Mirror::new(services.db.clone(), KisClient::builder(kis).build().unwrap());
    let mut registry = haechi_jobs::Registry::new();
    registry.register(mirror.clone()).unwrap();
    registry.register(Arc::new(Reconciler(mirror))).unwrap();
    let opts = haechi_jobs::WorkerOptions {
        poll_interval: Duration::from_millis(20),
        backoff_base: Duration::from_millis(50),
        ..Default::default()
    };
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let workers = tokio::spawn({
        let queue = queue.clone();
        async move {
            haechi_jobs::run_workers(&queue, opts, registry, async move {
                let _ = stop_rx.await;
            })
            .await
        }
    });

    let p = common::investor(&app, "mirror@example.com").await;
    let acct = paper::open(&app, &meta(), &p, "미러 계좌", 1_000_000_000).await.unwrap().id;

    // Off where no KIS mock account is configured, by name.
    let plain = App::new(services, AppSettings::default());
    let err = paper::set_mirror(&plain, &meta(), &p, acct, true).await.unwrap_err();
    assert!(matches!(&err, AppError::Conflict(m) if m.contains("KIS mock account")), "{err:?}");
    paper::set_mirror(&app, &meta(), &p, acct, true).await.unwrap();

    let tickers: Vec<Ticker> = store.instruments().iter().map(|i| i.ticker).take(2).collect();
    let last = |t: Ticker| store.last_close(store.slot_of(t).unwrap(), store.n_days() - 1).unwrap().get();
    let (a_t, b_t) = (tickers[0], tickers[1]);
    // At the last close: KIS fills it at once.
    let filled_at_kis = accepted(paper::place(&app, &meta(), &p, acct, buy(a_t, last(a_t), 10)).await.unwrap());
    // At the lower limit: rests at KIS, and nothing prints there on paper.
    let b_low = lowest(&app, b_t).await;
    let resting = accepted(paper::place(&app, &meta(), &p, acct, buy(b_t, b_low, 5)).await.unwrap());
    // More than the KIS mock account's 100,000,000 won: KIS refuses, paper (1,000,000,000) takes it.
    let big = 100_000_000 / last(a_t) + 10;
    let refused_at_kis = accepted(paper::place(&app, &meta(), &p, acct, buy(a_t, last(a_t), big)).await.unwrap());
    let rows = wait_for(&app, &p, acct, "three orders sent", |r| {
        r.len() == 3 && r.iter().all(|r| matches!(r.state.as_str(), "sent" | "failed"))
    })
    .await;
    let a_row = row(&rows, filled_at_kis.id);
    assert_eq!(a_row.state, "sent");
    assert!(a_row.broker_order_no.as_deref().is_some_and(|n| !n.is_empty()), "{a_row:?}");
    let failed = row(&rows, refused_at_kis.id);
    assert_eq!(failed.state, "failed");
    assert!(failed.detail.as_deref().unwrap().contains("APBK0952"), "KIS's refusal by its code: {failed:?}");

    // A cancel goes to KIS too, once the order is there.
    let cancelled = accepted(paper::place(&app, &meta(), &p, acct, buy(b_t, b_low, 2)).await.unwrap());
    wait_for(&app, &p, acct, "the fourth order sent", |r| {
        r.iter().any(|r| r.order_id == cancelled.id && r.state == "sent")
    })
    .await;
    paper::cancel(&app, &meta(), &p, cancelled.id).await.unwrap();
    wait_for(&app, &p, acct, "the cancel sent", |r| r.iter().any(|r| r.order_id == cancelled.id && r.cancel_sent))
        .await;

    // Paper fills 4 of the 10 KIS filled at once; the resting and cancelled ones fill nowhere.
    let session = haechi_jobs::market::day_from_number(filled_at_kis.session).unwrap();
    let print = PrintIn {
        ticker: a_t,
        session,
        price: Price::new(last(a_t)).unwrap(),
        volume: 4,
        auction: false,
        key: "mirror-test:1".into(),
    };
    paper::apply_print(&app, &print).await.unwrap();
    paper::reconcile(&app, &p, acct, session).await.unwrap();
    let rows =
        wait_for(&app, &p, acct, "reconciled", |r| r.iter().all(|r| !matches!(r.state.as_str(), "sent" | "pending")))
            .await;
    let a_row = row(&rows, filled_at_kis.id);
    assert_eq!((a_row.state.as_str(), a_row.kis_filled), ("differs", Some(10)), "{a_row:?}");
    assert!(a_row.detail.as_deref().unwrap().contains("paper filled 4 of 10"), "{a_row:?}");
    assert_eq!(row(&rows, resting.id).state, "matched");
    assert_eq!((row(&rows, cancelled.id).state.as_str(), row(&rows, cancelled.id).kis_filled), ("matched", Some(0)));
    assert_eq!(row(&rows, refused_at_kis.id).state, "failed", "a refused order stays refused");
    let audit = app.db().audit_entries(&haechi_db::LogQuery { per_page: 1000, ..Default::default() }).await.unwrap();
    let events: Vec<&str> = audit.items.iter().map(|e| e.event.as_str()).collect();
    assert!(events.contains(&"paper_mirror_on") && events.contains(&"paper_mirror_differences"), "{events:?}");
    // Each order reached KIS once: four orders (one refused), one cancel.
    let today = (chrono::Utc::now() + chrono::Duration::hours(9)).date_naive();
    let mut kis = KisConfig::new(KisEnv::Mock, Credentials::new("PSMIRRORKEY", "secret-of-the-test").unwrap());
    kis.base_url = fake.base_url();
    kis.account = Some("50012345-01".parse().unwrap());
    let at_kis =
        KisClient::builder(kis).build().unwrap().daily_orders(today - chrono::Duration::days(1), today).await.unwrap();
    assert_eq!(at_kis.len(), 3, "{at_kis:#?}");

    let _ = stop_tx.send(());
    let _ = workers.await;
}

/// The ticket's lowest orderable price for `t` in the current session.
async fn lowest(app: &App, t: Ticker) -> i64 {
    paper::ticket_info(app, t.as_str()).await.unwrap().lower.unwrap()
}
