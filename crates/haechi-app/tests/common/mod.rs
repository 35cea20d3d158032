//! What the tests against the fake KIS share: a platform over the fake's own synthetic market,
//! and an investor to act as.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)]

use haechi_app::accounts::{self, Registration};
use haechi_app::{Account, App, Principal, RequestMeta, Role, Services};
use haechi_core::MarketStore;
use haechi_data::synth::SynthConfig;
use haechi_db::testkit::TestDb;
use haechi_objects::testkit::{TestObjects, TestObjectsGuard};

/// The database, object storage and SQLite queue of a test, with `synth` loaded as market data.
pub struct Platform {
    pub services: Services,
    pub store: MarketStore,
    _db: TestDb,
    _objects: TestObjectsGuard,
    _queue_dir: tempfile::TempDir,
}

pub async fn platform(synth: &SynthConfig) -> Platform {
    let db = TestDb::new().await.expect("test database (is HAECHI_TEST_MYSQL_URL reachable?)");
    let (objects, guard) = TestObjects::local();
    let queue_dir = tempfile::tempdir().unwrap();
    let queue = haechi_jobs::Queue::connect(&haechi_jobs::QueueConfig::Sqlite { path: queue_dir.path().join("q.db") })
        .await
        .unwrap();
    let store = haechi_data::synth::generate(synth).unwrap();
    haechi_jobs::market::load_store_into_db(&db.db, &store, "synthetic", true, "fake KIS test").await.unwrap();
    let services =
        Services { db: db.db.clone(), objects, queue, events: haechi_jobs::run_events(), market: Default::default() };
    Platform { services, store, _db: db, _objects: guard, _queue_dir: queue_dir }
}

pub fn meta() -> RequestMeta {
    RequestMeta { ip: "192.0.2.9".into(), request_id: "fake-kis".into(), user_agent: "test".into() }
}

/// A registered investor, signed in.
pub async fn investor(app: &App, email: &str) -> Principal {
    let new = Registration {
        email: email.into(),
        display_name: "투자자".into(),
        password: "correct horse battery staple".into(),
        role: Role::Investor,
    };
    let a = accounts::register(app, &meta(), new).await.unwrap();
    Principal::local(Account::from(&app.db().user_by_email(&a.email).await.unwrap().unwrap()))
}
