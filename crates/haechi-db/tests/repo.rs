//! Repository behaviour, on SQLite by default and on MariaDB when `HAECHI_TEST_MYSQL_URL` is set.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

use haechi_db::entity::{login_throttle, session};
use haechi_db::testkit::TestDb;
use haechi_db::{DbError, LogQuery, NewAuditEntry, NewUser, now_ms};

fn new_user(email: &str) -> NewUser {
    NewUser {
        email: email.into(),
        display_name: "홍길동".into(),
        password_hash: "$argon2id$x".into(),
        role: "investor".into(),
    }
}

#[tokio::test]
async fn users_are_unique_by_email() {
    let t = TestDb::new().await.unwrap();
    let a = t.db.create_user(new_user("a@example.com")).await.unwrap();
    assert!(matches!(t.db.create_user(new_user("a@example.com")).await, Err(DbError::Conflict(_))));
    let found = t.db.user_by_email("a@example.com").await.unwrap().unwrap();
    assert_eq!(found.id, a.id);
    assert_eq!(found.display_name, "홍길동", "UTF-8 round-trips");
    assert!(t.db.set_role(a.id, "admin").await.unwrap());
    assert_eq!(t.db.user_by_id(a.id).await.unwrap().unwrap().role, "admin");
    assert!(!t.db.set_role(a.id + 1000, "admin").await.unwrap());
    assert_eq!(t.db.count_users().await.unwrap(), 1);
    let page = t.db.list_users(0, 10).await.unwrap();
    assert_eq!((page.total, page.items.len()), (1, 1));
}

#[tokio::test]
async fn totp_steps_and_recovery_codes_are_accepted_once() {
    let t = TestDb::new().await.unwrap();
    let u = t.db.create_user(new_user("m@example.com")).await.unwrap();
    t.db.set_totp_secret(u.id, Some("JBSWY3DPEHPK3PXP".into())).await.unwrap();
    t.db.enable_mfa(u.id, 100, vec!["h1".into(), "h2".into()]).await.unwrap();
    assert!(t.db.user_by_id(u.id).await.unwrap().unwrap().mfa_enabled);
    assert!(!t.db.consume_totp_step(u.id, 100).await.unwrap(), "the enrolment step is spent");
    assert!(t.db.consume_totp_step(u.id, 101).await.unwrap());
    assert!(!t.db.consume_totp_step(u.id, 101).await.unwrap(), "replay");
    assert!(!t.db.consume_totp_step(u.id, 99).await.unwrap(), "older step");
    assert!(t.db.consume_recovery_code(u.id, "h1").await.unwrap());
    assert!(!t.db.consume_recovery_code(u.id, "h1").await.unwrap());
    assert!(!t.db.consume_recovery_code(u.id, "nope").await.unwrap());
    assert_eq!(t.db.unused_recovery_codes(u.id).await.unwrap(), 1);
    t.db.disable_mfa(u.id).await.unwrap();
    let u2 = t.db.user_by_id(u.id).await.unwrap().unwrap();
    assert!(!u2.mfa_enabled && u2.totp_secret.is_none());
    assert_eq!(t.db.unused_recovery_codes(u.id).await.unwrap(), 0);
}

#[tokio::test]
async fn sessions_and_tokens_belong_to_their_user() {
    let t = TestDb::new().await.unwrap();
    let a = t.db.create_user(new_user("a@example.com")).await.unwrap();
    let b = t.db.create_user(new_user("b@example.com")).await.unwrap();
    let now = now_ms();
    for (hash, handle, user) in [("h-a1", "a1", a.id), ("h-a2", "a2", a.id), ("h-b1", "b1", b.id)] {
        t.db.create_session(session::Model {
            id_hash: hash.into(),
            handle: handle.into(),
            user_id: user,
            csrf_token: "c".into(),
            created_at: now,
            last_seen_at: now,
            expires_at: now + 60_000,
            ip: "127.0.0.1".into(),
            user_agent: "test".into(),
        })
        .await
        .unwrap();
    }
    assert_eq!(t.db.list_sessions(a.id).await.unwrap().len(), 2);
    assert!(!t.db.delete_session_by_handle(a.id, "b1").await.unwrap(), "A cannot end B's session");
    assert!(t.db.delete_session_by_handle(a.id, "a2").await.unwrap());
    assert_eq!(t.db.delete_other_sessions(a.id, Some("h-a1")).await.unwrap(), 0);
    assert!(t.db.session_by_hash("h-b1").await.unwrap().is_some());

    let tok =
        t.db.create_token(haechi_db::NewToken {
            user_id: b.id,
            name: "phone".into(),
            token_hash: "th".into(),
            prefix: "hae_ab".into(),
            scopes: "read".into(),
            created_at: now,
            expires_at: None,
        })
        .await
        .unwrap();
    assert!(!t.db.revoke_token(a.id, tok.id).await.unwrap(), "A cannot revoke B's token");
    assert!(t.db.revoke_token(b.id, tok.id).await.unwrap());
    assert!(!t.db.revoke_token(b.id, tok.id).await.unwrap(), "already revoked");
    assert!(t.db.token_by_hash("th").await.unwrap().unwrap().revoked_at.is_some());
}

#[tokio::test]
async fn audit_log_is_appended_and_filtered() {
    let t = TestDb::new().await.unwrap();
    for (event, user) in [("login_failure", None), ("login_success", Some(1)), ("logout", Some(1))] {
        t.db.audit(NewAuditEntry {
            user_id: user,
            event,
            ip: "127.0.0.1".into(),
            detail: serde_json::json!({"k": 1}),
            ..Default::default()
        })
        .await
        .unwrap();
    }
    let all = t.db.audit_entries(&LogQuery { per_page: 10, ..Default::default() }).await.unwrap();
    assert_eq!(all.total, 3);
    assert_eq!(all.items[0].event, "logout", "newest first");
    let mine = t.db.audit_entries(&LogQuery { user_id: Some(1), per_page: 1, ..Default::default() }).await.unwrap();
    assert_eq!((mine.total, mine.items.len()), (2, 1));
}

#[tokio::test]
async fn throttle_and_role_policy_upsert() {
    let t = TestDb::new().await.unwrap();
    let m = |f| login_throttle::Model { key: "ip:127.0.0.1".into(), failures: f, last_failure_at: 1, blocked_until: 2 };
    t.db.put_throttle(m(1)).await.unwrap();
    t.db.put_throttle(m(2)).await.unwrap();
    assert_eq!(t.db.throttle("ip:127.0.0.1").await.unwrap().unwrap().failures, 2);
    t.db.clear_throttle("ip:127.0.0.1").await.unwrap();
    assert!(t.db.throttle("ip:127.0.0.1").await.unwrap().is_none());
    assert!(!t.db.role_requires_mfa("admin").await.unwrap());
    t.db.set_role_requires_mfa("admin", true).await.unwrap();
    t.db.set_role_requires_mfa("admin", true).await.unwrap();
    assert!(t.db.role_requires_mfa("admin").await.unwrap());
    assert_eq!(t.db.role_policies().await.unwrap().len(), 1);
}

#[tokio::test]
async fn readiness_ping_works() {
    let t = TestDb::new().await.unwrap();
    t.db.ping().await.unwrap();
    t.db.migrate().await.unwrap(); // idempotent
}

async fn scenario_and_run(t: &TestDb) -> (i64, haechi_db::Run) {
    let u = t.db.create_user(new_user("runs@example.com")).await.unwrap();
    let (s, _) =
        t.db.create_scenario(
            u.id,
            haechi_db::NewVersion {
                name: "s".into(),
                description: None,
                strategy: "buy_and_hold".into(),
                spec: "{}".into(),
                author_id: u.id,
                message: String::new(),
            },
        )
        .await
        .unwrap();
    let run =
        t.db.create_run(haechi_db::NewRun { owner_id: u.id, scenario_id: s.id, scenario_version: 1, data_version: 1 })
            .await
            .unwrap();
    (u.id, run)
}

/// The exactly-once rule: a run taken over by a second attempt can only be finished by it.
#[tokio::test]
async fn a_superseded_attempt_can_neither_progress_nor_finish_a_run() {
    use haechi_db::{Claim, Heartbeat, RunSummary, state};
    let t = TestDb::new().await.unwrap();
    let (_, run) = scenario_and_run(&t).await;
    let Claim::Claimed(first) = t.db.claim_run(run.id, "lease-a").await.unwrap() else { panic!("not claimed") };
    assert_eq!((first.state.as_str(), first.attempts), (state::RUNNING, 1));
    assert_eq!(t.db.run_progress(run.id, "lease-a", 0.5, "simulating").await.unwrap(), Heartbeat::Continue);
    // The queue hands the job to another worker (the first one looked dead).
    let Claim::Claimed(second) = t.db.claim_run(run.id, "lease-b").await.unwrap() else { panic!("not taken over") };
    assert_eq!(second.attempts, 2);
    assert_eq!(t.db.run_progress(run.id, "lease-a", 0.9, "simulating").await.unwrap(), Heartbeat::LeaseLost);
    let summary = RunSummary { report_key: "reports/x/".into(), final_equity: 7, ..RunSummary::default() };
    assert!(!t.db.finish_run(run.id, "lease-a", summary.clone()).await.unwrap(), "the old attempt cannot finish");
    assert!(!t.db.end_run(run.id, Some("lease-a"), state::FAILED, "late").await.unwrap());
    assert!(t.db.finish_run(run.id, "lease-b", summary.clone()).await.unwrap());
    assert!(!t.db.finish_run(run.id, "lease-b", summary).await.unwrap(), "finishing twice changes nothing");
    let done = t.db.run_by_id(run.id).await.unwrap().unwrap();
    assert_eq!((done.state.as_str(), done.final_equity, done.progress), (state::SUCCEEDED, Some(7), 1.0));
    // A finished run is never claimed again.
    assert_eq!(t.db.claim_run(run.id, "lease-c").await.unwrap(), Claim::Finished);
}

#[tokio::test]
async fn cancelling_ends_a_queued_run_at_once_and_a_running_one_at_its_next_heartbeat() {
    use haechi_db::{Claim, Heartbeat, state};
    let t = TestDb::new().await.unwrap();
    let (_, queued) = scenario_and_run(&t).await;
    let after = t.db.request_cancel(queued.id).await.unwrap().unwrap();
    assert_eq!((after.state.as_str(), after.cancel_requested), (state::CANCELLED, true));
    assert_eq!(t.db.claim_run(queued.id, "l").await.unwrap(), Claim::Finished, "a cancelled run never starts");

    let running =
        t.db.create_run(haechi_db::NewRun {
            owner_id: queued.owner_id,
            scenario_id: queued.scenario_id,
            scenario_version: 1,
            data_version: 1,
        })
        .await
        .unwrap();
    assert!(matches!(t.db.claim_run(running.id, "l").await.unwrap(), Claim::Claimed(_)));
    let after = t.db.request_cancel(running.id).await.unwrap().unwrap();
    assert_eq!((after.state.as_str(), after.cancel_requested), (state::RUNNING, true));
    assert_eq!(t.db.run_progress(running.id, "l", 0.3, "simulating").await.unwrap(), Heartbeat::CancelRequested);
    assert!(t.db.end_run(running.id, Some("l"), state::CANCELLED, "cancelled by the owner").await.unwrap());
    assert_eq!(t.db.count_runs_in_state(state::CANCELLED).await.unwrap(), 2);
}

async fn user_with_scenario(t: &TestDb, email: &str, spec: &str) -> (i64, i64) {
    let u = t.db.create_user(new_user(email)).await.unwrap();
    let version = haechi_db::NewVersion {
        name: "s".into(),
        description: None,
        strategy: "buy_and_hold".into(),
        spec: spec.into(),
        author_id: u.id,
        message: String::new(),
    };
    let (s, _) = t.db.create_scenario(u.id, version).await.unwrap();
    (u.id, s.id)
}

async fn queue_run(t: &TestDb, (owner_id, scenario_id): (i64, i64)) -> i64 {
    let new = haechi_db::NewRun { owner_id, scenario_id, scenario_version: 1, data_version: 1 };
    t.db.create_run(new).await.unwrap().id
}

/// Fair scheduling (issue 13, attack 6): a job executes the run of the user with the fewest
/// runs running, not the run it was pushed for, so one user's backlog does not hold another
/// user's run back; a redelivered job takes back the run it held.
#[tokio::test]
async fn queue_jobs_claim_the_fairest_run_and_take_back_their_own() {
    use haechi_db::{Claim, state};
    let t = TestDb::new().await.unwrap();
    let a = user_with_scenario(&t, "a@example.com", "{}").await;
    let b = user_with_scenario(&t, "b@example.com", "{}").await;
    let a_runs = [queue_run(&t, a).await, queue_run(&t, a).await, queue_run(&t, a).await];
    let b_run = queue_run(&t, b).await;
    let claim = |ticket: i64, lease: &'static str| {
        let db = t.db.clone();
        async move {
            match db.claim_next_run(ticket, lease).await.unwrap() {
                Claim::Claimed(r) => r.id,
                Claim::Finished => panic!("job {ticket} found nothing"),
            }
        }
    };
    // The first job (A's) takes A's oldest; A's second job finds B with nothing running.
    assert_eq!(claim(a_runs[0], "l1").await, a_runs[0]);
    assert_eq!(claim(a_runs[1], "l2").await, b_run, "B's run goes before A's backlog");
    assert_eq!(claim(a_runs[2], "l3").await, a_runs[1]);
    // A job redelivered after its worker died takes back the run it held, under a new lease.
    let Claim::Claimed(again) = t.db.claim_next_run(a_runs[1], "l2-retry").await.unwrap() else { panic!() };
    assert_eq!((again.id, again.attempts, again.lease.as_deref()), (b_run, 2, Some("l2-retry")));
    assert_eq!(t.db.run_by_id(b_run).await.unwrap().unwrap().ticket, Some(a_runs[1]));
    // B's own job still finds A's last run: there is a job for every queued run.
    assert_eq!(claim(b_run, "l4").await, a_runs[2]);
    assert_eq!(t.db.claim_next_run(999, "l5").await.unwrap(), Claim::Finished, "nothing left to run");
    assert_eq!(t.db.count_runs_in_state(state::RUNNING).await.unwrap(), 4);
    assert_eq!(t.db.count_waiting_runs().await.unwrap(), 0);
}

#[tokio::test]
async fn a_job_that_gives_up_fails_the_run_it_holds_or_its_own_queued_run() {
    use haechi_db::{Claim, state};
    let t = TestDb::new().await.unwrap();
    let a = user_with_scenario(&t, "a@example.com", "{}").await;
    let (first, second) = (queue_run(&t, a).await, queue_run(&t, a).await);
    // Job `second` claimed `first` (the oldest) and its workers kept dying.
    assert!(matches!(t.db.claim_next_run(second, "l").await.unwrap(), Claim::Claimed(r) if r.id == first));
    assert_eq!(t.db.end_ticket(second, state::FAILED, "gave up").await.unwrap(), Some(first));
    assert_eq!(t.db.run_by_id(second).await.unwrap().unwrap().state, state::QUEUED, "the other run still waits");
    // Job `first` gave up before claiming anything: it takes its own queued run with it.
    assert_eq!(t.db.end_ticket(first, state::FAILED, "gave up").await.unwrap(), None, "`first` already ended");
    assert_eq!(t.db.end_ticket(second, state::FAILED, "gave up").await.unwrap(), Some(second));
    // A run another job is executing is never ended by a job that does not hold it.
    let third = queue_run(&t, a).await;
    let fourth = queue_run(&t, a).await;
    assert!(matches!(t.db.claim_next_run(fourth, "l2").await.unwrap(), Claim::Claimed(r) if r.id == third));
    assert_eq!(t.db.end_ticket(third, state::FAILED, "gave up").await.unwrap(), None);
    assert_eq!(t.db.run_by_id(third).await.unwrap().unwrap().state, state::RUNNING);
}

/// The stored-bytes quota counts every version (the bin included) and every report; purging a
/// binned scenario removes it with its versions, shares and runs.
#[tokio::test]
async fn stored_bytes_count_versions_and_reports_until_a_binned_scenario_is_purged() {
    use haechi_db::{Claim, RunSummary};
    let t = TestDb::new().await.unwrap();
    let spec = r#"{"name":"한글"}"#; // multi-byte: bytes, not characters
    let (owner, sid) = user_with_scenario(&t, "a@example.com", spec).await;
    let other = user_with_scenario(&t, "b@example.com", "{}").await;
    assert_eq!(t.db.stored_bytes(owner).await.unwrap(), spec.len() as u64);
    let v2 = haechi_db::NewVersion {
        name: "s".into(),
        description: None,
        strategy: "buy_and_hold".into(),
        spec: "x".repeat(1000),
        author_id: owner,
        message: String::new(),
    };
    t.db.add_scenario_version(sid, None, v2).await.unwrap();
    let run = queue_run(&t, (owner, sid)).await;
    let Claim::Claimed(_) = t.db.claim_next_run(run, "l").await.unwrap() else { panic!() };
    let summary =
        RunSummary { report_key: format!("reports/{owner}/{run}/"), report_bytes: 5000, ..Default::default() };
    assert!(t.db.finish_run(run, "l", summary).await.unwrap());
    let total = spec.len() as u64 + 1000 + 5000;
    assert_eq!(t.db.stored_bytes(owner).await.unwrap(), total);
    assert_eq!(t.db.stored_bytes(other.0).await.unwrap(), 2, "each user counts only their own");
    assert_eq!(t.db.purge_scenario(sid).await.unwrap(), None, "only a binned scenario is purged");
    assert!(t.db.set_scenario_deleted(sid, true).await.unwrap());
    assert_eq!(t.db.stored_bytes(owner).await.unwrap(), total, "the bin still takes space");
    assert_eq!(t.db.purge_scenario(sid).await.unwrap(), Some(vec![format!("reports/{owner}/{run}/")]));
    assert_eq!(t.db.stored_bytes(owner).await.unwrap(), 0);
    assert!(t.db.run_by_id(run).await.unwrap().is_none() && t.db.scenario_by_id(sid).await.unwrap().is_none());
    assert_eq!(t.db.stored_bytes(other.0).await.unwrap(), 2);
}
