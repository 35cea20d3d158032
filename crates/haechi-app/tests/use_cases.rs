//! The use cases called directly, as the CLI and the demo call them, with the clock moved by
//! the test: lockout that ends when its time is up, sessions that end when idle, and a
//! principal built from a session that carries no secret. SQLite by default; MariaDB when
//! `HAECHI_TEST_MYSQL_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

use haechi_app::accounts::{self, Registration, SignIn};
use haechi_app::identify::{Access, Credential, identify};
use haechi_app::{App, AppError, AppSettings, AuthFailure, ManualClock, RequestMeta, Role, Services};
use haechi_db::testkit::TestDb;
use haechi_objects::testkit::{TestObjects, TestObjectsGuard};
use std::sync::Arc;
use std::time::Duration;

const PASSWORD: &str = "correct horse battery staple";

struct Fixture {
    app: App,
    clock: ManualClock,
    _db: TestDb,
    _objects: TestObjectsGuard,
    _queue_dir: tempfile::TempDir,
}

async fn fixture(settings: AppSettings) -> Fixture {
    let db = TestDb::new().await.expect("test database (is HAECHI_TEST_MYSQL_URL reachable?)");
    let (objects, guard) = TestObjects::local();
    let queue_dir = tempfile::tempdir().unwrap();
    let queue = haechi_jobs::Queue::connect(&haechi_jobs::QueueConfig::Sqlite { path: queue_dir.path().join("q.db") })
        .await
        .unwrap();
    let clock = ManualClock::at(1_800_000_000_000);
    let services =
        Services { db: db.db.clone(), objects, queue, events: haechi_jobs::run_events(), market: Default::default() };
    let app = App::with_clock(services, settings, Arc::new(clock.clone()));
    Fixture { app, clock, _db: db, _objects: guard, _queue_dir: queue_dir }
}

fn meta() -> RequestMeta {
    RequestMeta { ip: "192.0.2.7".into(), request_id: "test".into(), user_agent: "test".into() }
}

async fn register(app: &App, email: &str) {
    let new = Registration {
        email: email.into(),
        display_name: "테스트".into(),
        password: PASSWORD.into(),
        role: Role::Investor,
    };
    accounts::register(app, &meta(), new).await.unwrap();
}

fn attempt<'a>(email: &'a str, password: &str) -> SignIn<'a> {
    SignIn { email, password: password.into(), ..SignIn::default() }
}

#[tokio::test]
async fn a_locked_account_opens_again_when_the_lock_time_has_passed() {
    let settings =
        AppSettings { login_max_failures: 3, login_lock: Duration::from_secs(600), ..AppSettings::default() };
    let f = fixture(settings).await;
    register(&f.app, "lock@example.com").await;
    for _ in 0..3 {
        let e = accounts::sign_in(&f.app, &meta(), attempt("lock@example.com", "wrong password!!")).await.unwrap_err();
        assert!(matches!(e, AppError::Unauthenticated(AuthFailure::InvalidCredentials)), "{e:?}");
    }
    // Locked: even the right password is refused, with the time left.
    let e = accounts::sign_in(&f.app, &meta(), attempt("lock@example.com", PASSWORD)).await.unwrap_err();
    let AppError::RateLimited { retry_after } = e else { panic!("not locked: {e:?}") };
    assert!(retry_after > Duration::from_secs(590) && retry_after <= Duration::from_secs(600), "{retry_after:?}");
    f.clock.advance_ms(599_000);
    assert!(matches!(
        accounts::sign_in(&f.app, &meta(), attempt("lock@example.com", PASSWORD)).await,
        Err(AppError::RateLimited { .. })
    ));
    f.clock.advance_ms(2_000);
    let started = accounts::sign_in(&f.app, &meta(), attempt("lock@example.com", PASSWORD)).await.unwrap();
    assert_eq!(started.account.email, "lock@example.com");
}

#[tokio::test]
async fn a_session_identifies_its_user_until_it_idles_out_and_needs_its_csrf_token() {
    let settings = AppSettings { session_idle: Duration::from_secs(60 * 30), ..AppSettings::default() };
    let f = fixture(settings).await;
    register(&f.app, "idle@example.com").await;
    let s = accounts::sign_in(&f.app, &meta(), attempt("idle@example.com", PASSWORD)).await.unwrap();
    let read = Access { safe: true, own_account: false };
    let cookie = Credential::Session { cookie: &s.secret, csrf_sent: None };
    let p = identify(&f.app, cookie, read).await.unwrap();
    assert_eq!(p.user.email, "idle@example.com");
    assert_eq!(p.csrf_token(), Some(s.csrf_token.as_str()));
    // An unsafe request needs the session's own CSRF token.
    let write = Access { safe: false, own_account: false };
    let forged = Credential::Session { cookie: &s.secret, csrf_sent: Some("forged") };
    assert!(matches!(identify(&f.app, forged, write).await, Err(AppError::Unauthenticated(AuthFailure::Csrf))));
    let good = Credential::Session { cookie: &s.secret, csrf_sent: Some(&s.csrf_token) };
    assert!(identify(&f.app, good, write).await.is_ok());
    f.clock.advance_ms(31 * 60_000);
    assert!(matches!(identify(&f.app, cookie, read).await, Err(AppError::Unauthenticated(AuthFailure::Missing))));
}
