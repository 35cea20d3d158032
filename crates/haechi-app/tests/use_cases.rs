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

/// Waits (up to 10 s) for the background security scans of failed sign-ins to get there.
async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    while !check().await {
        assert!(std::time::Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn meta_from(ip: &str) -> RequestMeta {
    RequestMeta { ip: ip.into(), request_id: format!("drill-{ip}"), user_agent: "drill".into() }
}

/// The security drill: a credential-stuffing burst (20 failed sign-ins from 20 new addresses,
/// most of them refused by the lockout), then the right password from yet another address.
/// The detectors raise one event for the burst (repeats fold into it), the default security
/// playbook (auto) ends every session at the 10th failure and, on the success, locks the
/// account and revokes its tokens; every action is audited with its evidence.
#[tokio::test]
async fn a_credential_stuffing_drill_is_caught_scored_answered_and_audited() {
    let f = fixture(AppSettings::default()).await;
    register(&f.app, "drill@example.com").await;
    let owner = accounts::sign_in(&f.app, &meta(), attempt("drill@example.com", PASSWORD)).await.unwrap();
    let uid = f.app.db().user_by_email("drill@example.com").await.unwrap().unwrap().id;
    assert_eq!(f.app.db().list_sessions(uid).await.unwrap().len(), 1);
    f.clock.advance_ms(3_600_000);
    for i in 0..20 {
        let e = accounts::sign_in(
            &f.app,
            &meta_from(&format!("203.0.113.{i}")),
            attempt("drill@example.com", "hunter2hunter2"),
        )
        .await
        .unwrap_err();
        assert!(matches!(e, AppError::Unauthenticated(_) | AppError::RateLimited { .. }), "{e:?}");
        f.clock.advance_ms(1_000);
        if i == 8 {
            // Nine failures: below the step-up threshold, the owner's session lives.
            assert_eq!(f.app.db().list_sessions(uid).await.unwrap().len(), 1);
        }
    }
    // The 10th failure stepped up (in the background: a failed sign-in answers as fast for a
    // registered email as for an unknown one): every session ended.
    let db = f.app.db().clone();
    eventually("the step-up ended the sessions", || {
        let db = db.clone();
        async move { db.list_sessions(uid).await.unwrap().is_empty() }
    })
    .await;
    let _ = owner;
    let audit = |kind: &'static str| {
        let app = f.app.clone();
        async move {
            let q = haechi_db::LogQuery {
                user_id: Some(uid),
                kind: Some(kind.into()),
                page: 0,
                per_page: 100,
                ..Default::default()
            };
            app.db().audit_entries(&q).await.unwrap().items
        }
    };
    eventually("the step-up was audited", || {
        let audit = &audit;
        async move { audit("guard_action").await.len() >= 2 }
    })
    .await;
    let actions = audit("guard_action").await;
    let detail = |e: &haechi_db::AuditEntry| serde_json::from_str::<serde_json::Value>(&e.detail).unwrap();
    let step_up: Vec<_> = actions.iter().map(detail).filter(|d| d["action"] == "require_step_up").collect();
    assert_eq!(step_up.len(), 1, "{actions:?}");
    assert_eq!(step_up[0]["rule"], "credential-stuffing");
    assert_eq!(step_up[0]["evidence"][0][0], "security.failed_signins_1h >= 10");
    // The scan that fired read at least the 10th failure (a coalesced one may read more).
    assert!(step_up[0]["evidence"][0][1].as_f64().unwrap() >= 10.0, "{step_up:?}");

    // The lockout (5 failures, 15 minutes) ends; the stolen password works from a new address.
    f.clock.advance_ms(15 * 60_000);
    let e = accounts::sign_in(&f.app, &meta_from("198.51.100.77"), attempt("drill@example.com", PASSWORD))
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::Unauthenticated(AuthFailure::InvalidCredentials)), "{e:?}");
    let user = f.app.db().user_by_email("drill@example.com").await.unwrap().unwrap();
    assert!(user.disabled, "the playbook locks the account");
    assert!(f.app.db().list_sessions(uid).await.unwrap().is_empty());
    let actions: Vec<_> = audit("guard_action").await.iter().map(detail).collect();
    for action in ["lock_account", "revoke_tokens"] {
        let a = actions.iter().find(|d| d["action"] == action).unwrap_or_else(|| panic!("no {action}: {actions:?}"));
        assert_eq!(a["rule"], "stuffing-then-success");
        assert_eq!(a["mode"], "auto");
        assert_eq!(a["evidence"][0][0], "security.success_after_burst_1h >= 1");
    }

    // What the owner sees: one burst event (its repeats folded into it), a new address and a
    // new device, and a score of 100 (critical 60 + warning 30 + info 10, all security).
    let p = haechi_app::Principal::local(haechi_app::Account::from(&user));
    let risk = haechi_app::guard::risk(&f.app, &p).await.unwrap();
    assert_eq!(risk.score, 100);
    assert_eq!(risk.components["security"], 100);
    assert!(risk.events.iter().any(|e| e.kind == "new_device_signin"), "{:?}", risk.events);
    let burst: Vec<_> = risk.events.iter().filter(|e| e.kind == "failed_signin_burst").collect();
    assert_eq!(burst.len(), 1, "{:?}", risk.events);
    assert_eq!(burst[0].severity, "critical");
    // Scans of a flood coalesce (one running, one queued), so fewer sightings than attempts.
    assert!(burst[0].seen >= 2, "{burst:?}");
    assert!(risk.events.iter().any(|e| e.kind == "new_ip_signin"));
    assert_eq!(audit("threat_event").await.len(), risk.events.len());
    // Acknowledging is the owner's, once.
    haechi_app::guard::acknowledge(&f.app, &p, &meta(), burst[0].id).await.unwrap();
    assert!(matches!(haechi_app::guard::acknowledge(&f.app, &p, &meta(), burst[0].id).await, Err(AppError::NotFound)));

    // An administrator enables the account; the burst still counts, so another new-address
    // success within the hour locks it again: the rule starts afresh, it does not stay "on".
    register(&f.app, "admin@example.com").await;
    let admin_row = f.app.db().user_by_email("admin@example.com").await.unwrap().unwrap();
    f.app.db().set_role(admin_row.id, "admin").await.unwrap();
    let admin_row = f.app.db().user_by_id(admin_row.id).await.unwrap().unwrap();
    let admin = haechi_app::Principal::local(haechi_app::Account::from(&admin_row));
    let enable = haechi_app::admin::UserChange { role: None, disabled: Some(false) };
    haechi_app::admin::update_user(&f.app, &meta(), &admin, haechi_app::UserId(uid), enable).await.unwrap();
    f.clock.advance_ms(60_000);
    let e = accounts::sign_in(&f.app, &meta_from("198.51.100.78"), attempt("drill@example.com", PASSWORD))
        .await
        .unwrap_err();
    assert!(matches!(e, AppError::Unauthenticated(AuthFailure::InvalidCredentials)), "{e:?}");
    assert!(f.app.db().user_by_id(uid).await.unwrap().unwrap().disabled, "locked again");
}

#[tokio::test]
async fn another_users_threat_event_cannot_be_acknowledged() {
    let f = fixture(AppSettings::default()).await;
    register(&f.app, "a@example.com").await;
    register(&f.app, "b@example.com").await;
    for i in 0..6 {
        let _ = accounts::sign_in(
            &f.app,
            &meta_from(&format!("203.0.113.{i}")),
            attempt("a@example.com", "wrong password!!"),
        )
        .await;
    }
    let a = f.app.db().user_by_email("a@example.com").await.unwrap().unwrap();
    let b = f.app.db().user_by_email("b@example.com").await.unwrap().unwrap();
    let pa = haechi_app::Principal::local(haechi_app::Account::from(&a));
    let pb = haechi_app::Principal::local(haechi_app::Account::from(&b));
    eventually("the burst became an event", || {
        let (app, pa) = (&f.app, &pa);
        async move { !haechi_app::guard::risk(app, pa).await.unwrap().events.is_empty() }
    })
    .await;
    let events = haechi_app::guard::risk(&f.app, &pa).await.unwrap().events;
    assert_eq!(events.len(), 1, "{events:?}");
    assert!(haechi_app::guard::risk(&f.app, &pb).await.unwrap().events.is_empty());
    assert!(matches!(
        haechi_app::guard::acknowledge(&f.app, &pb, &meta(), events[0].id).await,
        Err(AppError::NotFound)
    ));
    haechi_app::guard::acknowledge(&f.app, &pa, &meta(), events[0].id).await.unwrap();
}
