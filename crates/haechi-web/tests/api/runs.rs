//! The run life cycle over HTTP with real in-process workers: queued → running → succeeded
//! with a report in object storage; failure with a reason; cancel; compare; live events;
//! authorisation.

use crate::helpers::{Browser, load_market, problem, spawn_app, spawn_sim_app};
use crate::scenarios::sma_spec;
use futures_util::StreamExt as _;
use haechi_jobs::RunnerOptions;
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub async fn scenario(b: &Browser, spec: Value) -> i64 {
    let r = b.post("/api/v1/scenarios", json!({"spec": spec})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

pub async fn start(b: &Browser, scenario_id: i64) -> Value {
    let r = b.post(&format!("/api/v1/scenarios/{scenario_id}/runs"), json!({})).await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{}", r.text().await.unwrap());
    r.json().await.unwrap()
}

/// Polls until the run reaches a final state.
pub async fn wait_final(b: &Browser, run_id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let run = b.get_json(&format!("/api/v1/runs/{run_id}")).await;
        if ["succeeded", "failed", "cancelled"].contains(&run["state"].as_str().unwrap()) {
            return run;
        }
        assert!(Instant::now() < deadline, "run {run_id} stuck: {run}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_run_goes_from_queued_to_succeeded_with_one_report_in_object_storage() {
    let app = spawn_sim_app(12, RunnerOptions::default()).await;
    let (a, a_id) = app.user("runner@example.com").await;
    let sid = scenario(&a, sma_spec("run me")).await;
    let queued = start(&a, sid).await;
    assert_eq!(queued["state"], "queued");
    assert_eq!(queued["scenario_version"], 1);
    assert!(queued["data_version"].as_i64().unwrap() >= 1);
    let run_id = queued["id"].as_i64().unwrap();

    let done = wait_final(&a, run_id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["progress"], 1.0);
    assert_eq!(done["attempts"], 1);
    let f = &done["figures"];
    assert!(f["total_return"].is_f64() && f["max_drawdown"].as_f64().unwrap() <= 0.0, "{f}");
    assert!(f["final_equity"].as_i64().unwrap() > 0);

    // The report, from object storage, matches the figures kept in SQL.
    let report = a.get_json(&format!("/api/v1/runs/{run_id}/report")).await;
    assert_eq!(report["schema_version"], 1);
    assert_eq!(report["summary"]["final_equity"], f["final_equity"]);
    assert_eq!(report["summary"]["total_return"], f["total_return"]);
    let r = a.get(&format!("/api/v1/runs/{run_id}/report?format=html&download=true")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains("attachment"));
    let csp = r.headers()["content-security-policy"].to_str().unwrap();
    assert!(
        csp.contains("sandbox") && csp.contains("style-src 'unsafe-inline'") && !csp.contains("script-src"),
        "{csp}"
    );
    assert!(r.text().await.unwrap().contains("<svg"));
    let keys: Vec<String> =
        app.objects.list(&format!("reports/{a_id}/{run_id}/")).await.unwrap().into_iter().map(|o| o.key).collect();
    assert_eq!(
        keys,
        vec![format!("reports/{a_id}/{run_id}/report.html"), format!("reports/{a_id}/{run_id}/report.json")]
    );

    // Listing and filtering.
    let second = start(&a, sid).await["id"].as_i64().unwrap();
    wait_final(&a, second).await;
    let list = a.get_json("/api/v1/runs?state=succeeded").await;
    assert_eq!(list["total"], 2);
    assert_eq!(list["items"][0]["id"], second, "newest first");
    assert_eq!(a.get_json(&format!("/api/v1/scenarios/{sid}/runs")).await["total"], 2);
    assert_eq!(a.get_json("/api/v1/runs?state=failed").await["total"], 0);
    assert_eq!(problem(a.get("/api/v1/runs?state=bogus").await).await.0, StatusCode::UNPROCESSABLE_ENTITY);

    // Another user sees nothing of it.
    let (b, _) = app.user("other@example.com").await;
    for path in [format!("/api/v1/runs/{run_id}"), format!("/api/v1/runs/{run_id}/report")] {
        assert_eq!(b.get(&path).await.status(), StatusCode::NOT_FOUND, "{path}");
    }
    assert_eq!(
        problem(b.post(&format!("/api/v1/runs/{run_id}/cancel"), json!({})).await).await.0,
        StatusCode::NOT_FOUND
    );
    assert_eq!(b.get_json("/api/v1/runs").await["total"], 0);
    assert_eq!(problem(b.get(&format!("/api/v1/runs/compare?ids={run_id}")).await).await.0, StatusCode::NOT_FOUND);
    // A finished run cannot be cancelled.
    assert_eq!(
        problem(a.post(&format!("/api/v1/runs/{run_id}/cancel"), json!({})).await).await.0,
        StatusCode::CONFLICT
    );

    // The run counters are process-wide: any server in this test process renders them.
    let web = haechi_web::WebSettings { metrics_token: Some("prometheus-scrape-token".into()), ..Default::default() };
    let scrape = crate::helpers::spawn_app_with(crate::helpers::Config { web, ..Default::default() }).await;
    let m = reqwest::Client::new()
        .get(scrape.url("/metrics"))
        .bearer_auth("prometheus-scrape-token")
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    for name in ["haechi_runs_total", "haechi_run_wait_seconds_bucket", "haechi_run_duration_seconds_bucket"] {
        assert!(m.contains(name), "{name} missing from /metrics");
    }
}

#[tokio::test]
async fn compare_up_to_five_runs_side_by_side() {
    let app = spawn_sim_app(12, RunnerOptions::default()).await;
    let (a, _) = app.user("cmp@example.com").await;
    let s1 = scenario(&a, sma_spec("fast")).await;
    let mut slow = sma_spec("slow");
    slow["strategy"] = json!({"type": "buy_and_hold"});
    let s2 = scenario(&a, slow).await;
    let r1 = start(&a, s1).await["id"].as_i64().unwrap();
    let r2 = start(&a, s2).await["id"].as_i64().unwrap();
    wait_final(&a, r1).await;
    wait_final(&a, r2).await;
    let cmp = a.get_json(&format!("/api/v1/runs/compare?ids={r1},{r2}")).await;
    let rows = cmp.as_array().unwrap();
    assert_eq!(rows.len(), 2);
    assert_eq!((rows[0]["id"].as_i64(), rows[0]["scenario_name"].as_str()), (Some(r1), Some("fast")));
    assert_eq!((rows[1]["id"].as_i64(), rows[1]["scenario_name"].as_str()), (Some(r2), Some("slow")));
    assert_ne!(rows[0]["figures"]["total_return"], rows[1]["figures"]["total_return"]);
    let (status, body) = problem(a.get("/api/v1/runs/compare?ids=1,2,3,4,5,6").await).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("ids")));
    let (status, body) = problem(a.get("/api/v1/runs/compare?ids=1,x").await).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("ids[1]")));
}

#[tokio::test]
async fn a_run_that_does_not_fit_the_data_fails_with_the_reason() {
    let app = spawn_sim_app(6, RunnerOptions::default()).await;
    let (a, _) = app.user("fail@example.com").await;
    let mut spec = sma_spec("missing ticker");
    spec["universe"]["tickers"] = json!(["100010", "999990"]);
    let sid = scenario(&a, spec).await;
    let run = start(&a, sid).await;
    let done = wait_final(&a, run["id"].as_i64().unwrap()).await;
    assert_eq!(done["state"], "failed");
    let reason = done["error"].as_str().unwrap();
    assert!(reason.contains("universe.tickers[1]") && reason.contains("999990"), "{reason}");
    assert!(done.get("report").is_none());
    assert_eq!(problem(a.get(&format!("/api/v1/runs/{}/report", done["id"])).await).await.0, StatusCode::CONFLICT);
}

#[tokio::test]
async fn a_running_run_can_be_cancelled() {
    // 2 ms per session: the ~640-session run takes over a second, long enough to cancel.
    let app =
        spawn_sim_app(6, RunnerOptions { session_delay: Duration::from_millis(2), ..RunnerOptions::default() }).await;
    let (a, a_id) = app.user("cancel@example.com").await;
    let sid = scenario(&a, sma_spec("long")).await;
    let run_id = start(&a, sid).await["id"].as_i64().unwrap();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let run = a.get_json(&format!("/api/v1/runs/{run_id}")).await;
        if run["state"] == "running" && run["progress"].as_f64().unwrap() > 0.05 {
            break;
        }
        assert!(Instant::now() < deadline, "never saw it running: {run}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let r = a.post(&format!("/api/v1/runs/{run_id}/cancel"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["cancel_requested"], true);
    let done = wait_final(&a, run_id).await;
    assert_eq!(done["state"], "cancelled", "{done}");
    assert!(done["progress"].as_f64().unwrap() < 1.0);
    assert!(
        app.objects.list(&format!("reports/{a_id}/{run_id}/")).await.unwrap().is_empty(),
        "no report for a cancelled run"
    );
}

#[tokio::test]
async fn live_events_follow_the_owners_runs() {
    let app =
        spawn_sim_app(6, RunnerOptions { session_delay: Duration::from_micros(300), ..RunnerOptions::default() }).await;
    let (a, _) = app.user("sse@example.com").await;
    let (b, _) = app.user("sse-other@example.com").await;
    let sid = scenario(&a, sma_spec("watched")).await;
    let b_sid = scenario(&b, sma_spec("not yours")).await;
    let stream = a.client.get(format!("{}/api/v1/runs/events", a.base)).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    assert!(stream.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let b_run = start(&b, b_sid).await["id"].as_i64().unwrap();
    let run_id = start(&a, sid).await["id"].as_i64().unwrap();
    let mut body = stream.bytes_stream();
    let mut buf = String::new();
    let mut states = Vec::new();
    let mut progress = Vec::new();
    let deadline = Instant::now() + Duration::from_secs(60);
    while !states.contains(&"succeeded".to_owned()) {
        assert!(Instant::now() < deadline, "no final event; saw {states:?}");
        let chunk = tokio::time::timeout(Duration::from_secs(30), body.next()).await.unwrap().unwrap().unwrap();
        buf.push_str(std::str::from_utf8(&chunk).unwrap());
        while let Some(end) = buf.find("\n\n") {
            let event: String = buf.drain(..end + 2).collect();
            let Some(data) = event.lines().find_map(|l| l.strip_prefix("data:")) else { continue };
            let run: Value = serde_json::from_str(data.trim()).unwrap();
            assert_ne!(run["id"], b_run, "another user's run leaked into the stream");
            if run["id"] == run_id {
                states.push(run["state"].as_str().unwrap().to_owned());
                progress.push(run["progress"].as_f64().unwrap());
            }
        }
    }
    assert!(states.contains(&"running".to_owned()), "{states:?}");
    assert!(progress.windows(2).all(|w| w[0] <= w[1]), "progress went backwards: {progress:?}");
    assert_eq!(progress.last(), Some(&1.0));
}

#[tokio::test]
async fn runs_need_market_data() {
    let app = spawn_app().await;
    let (a, _) = app.user("nodata@example.com").await;
    let sid = scenario(&a, sma_spec("no data")).await;
    let (status, body) = problem(a.post(&format!("/api/v1/scenarios/{sid}/runs"), json!({})).await).await;
    assert_eq!(status, StatusCode::CONFLICT);
    assert!(body["detail"].as_str().unwrap().contains("market data"));
    let (status, body) = problem(a.post(&format!("/api/v1/scenarios/{sid}/runs"), json!({"version": 9})).await).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("version")));
}

/// One user cannot fill the queue for everyone (issue 13, attack 6): active runs and live
/// scenarios are counted per user, and the answer over the quota says which and how many.
#[tokio::test]
async fn per_user_quotas_on_active_runs_and_scenarios() {
    let settings = haechi_app::AppSettings { max_active_runs: 2, max_scenarios: 3, ..Default::default() };
    // No workers: runs stay queued, so they count as active.
    let config = crate::helpers::Config { app: settings, ..Default::default() };
    let app = crate::helpers::spawn_full(config, RunnerOptions::default(), 0).await;
    load_market(&app, 4).await;
    let (a, _) = app.user("greedy@example.com").await;
    let s = scenario(&a, sma_spec("one")).await;
    let first = start(&a, s).await["id"].as_i64().unwrap();
    start(&a, s).await;
    let (status, body) = problem(a.post(&format!("/api/v1/scenarios/{s}/runs"), json!({})).await).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["type"], "/problems/quota");
    assert!(body["detail"].as_str().unwrap().contains("at most 2 runs"), "{body}");
    // Someone else is not held up by it.
    let (b, _) = app.user("patient@example.com").await;
    let sb = scenario(&b, sma_spec("theirs")).await;
    start(&b, sb).await;
    // A finished (here: cancelled) run frees its place.
    assert_eq!(a.post(&format!("/api/v1/runs/{first}/cancel"), json!({})).await.status(), 200);
    start(&a, s).await;
    // Scenarios: three live ones at most; the bin does not count.
    scenario(&a, sma_spec("two")).await;
    let third = scenario(&a, sma_spec("three")).await;
    let (status, body) = problem(a.post("/api/v1/scenarios", json!({"spec": sma_spec("four")})).await).await;
    assert_eq!((status, body["type"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("/problems/quota")));
    assert_eq!(a.delete(&format!("/api/v1/scenarios/{third}")).await.status(), 204);
    scenario(&a, sma_spec("four")).await;
}

/// Fair scheduling (issue 13, attack 6): with one worker busy on A's backlog, B's run, queued
/// last, starts as soon as the worker is free rather than behind all of A's runs (first in,
/// first out started it fifth).
#[tokio::test]
async fn another_users_run_does_not_wait_behind_a_backlog() {
    let slow = RunnerOptions { session_delay: Duration::from_millis(1), ..RunnerOptions::default() };
    let app = crate::helpers::spawn_full(crate::helpers::Config::default(), slow, 1).await;
    load_market(&app, 4).await;
    let (a, _) = app.user("backlog@example.com").await;
    let (b, _) = app.user("latecomer@example.com").await;
    let sa = crate::runs::scenario(&a, sma_spec("backlog")).await;
    let sb = crate::runs::scenario(&b, sma_spec("latecomer")).await;
    let mut a_runs = Vec::new();
    for _ in 0..4 {
        a_runs.push(start(&a, sa).await["id"].as_i64().unwrap());
    }
    let b_run = start(&b, sb).await["id"].as_i64().unwrap();
    let b_started = wait_final(&b, b_run).await["started_at"].as_i64().unwrap();
    let mut before_b = 0;
    for id in a_runs {
        let run = wait_final(&a, id).await;
        assert_eq!(run["state"], "succeeded", "{run}");
        before_b += usize::from(run["started_at"].as_i64().unwrap() < b_started);
    }
    // A's first run held the worker when B queued (at most its second too, had the first been
    // quicker than B's start request); never the whole backlog.
    assert!(before_b <= 2, "{before_b} of A's 4 runs started before B's");
}

/// The stored-bytes quota (issue 13, attack 6): versions count (the bin included) until a
/// binned scenario is deleted for good; a full account cannot start runs (their reports would
/// add to it); purging is the owner's alone.
#[tokio::test]
async fn a_stored_bytes_quota_refuses_new_versions_until_the_bin_is_purged() {
    let settings = haechi_app::AppSettings { max_stored_bytes: 4096, ..Default::default() };
    let app = crate::helpers::spawn_full(
        crate::helpers::Config { app: settings, ..Default::default() },
        RunnerOptions::default(),
        0,
    )
    .await;
    load_market(&app, 4).await;
    let (a, _) = app.user("hoarder@example.com").await;
    let (other, _) = app.user("other@example.com").await;
    let mut ids = Vec::new();
    let body = loop {
        let r = a.post("/api/v1/scenarios", json!({"spec": sma_spec(&format!("s{}", ids.len()))})).await;
        if r.status() == StatusCode::CREATED {
            ids.push(r.json::<Value>().await.unwrap()["id"].as_i64().unwrap());
            assert!(ids.len() < 20, "the quota never answered");
            continue;
        }
        let (status, body) = problem(r).await;
        assert_eq!((status, body["type"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("/problems/quota")), "{body}");
        break body;
    };
    assert!(ids.len() >= 2, "{body}");
    assert!(body["detail"].as_str().unwrap().contains("MiB"), "{body}");
    let first = ids[0];
    // Saving a version is refused too; the bin still counts.
    let save = a.put(&format!("/api/v1/scenarios/{first}"), json!({"spec": sma_spec("edited")})).await;
    assert_eq!(problem(save).await.0, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(
        a.post(&format!("/api/v1/scenarios/{first}/purge"), json!({})).await.status(),
        StatusCode::CONFLICT,
        "not in the bin"
    );
    assert_eq!(a.delete(&format!("/api/v1/scenarios/{first}")).await.status(), 204);
    let r = a.post("/api/v1/scenarios", json!({"spec": sma_spec("again")})).await;
    assert_eq!(r.status(), StatusCode::TOO_MANY_REQUESTS, "the bin still takes space");
    assert_eq!(
        other.post(&format!("/api/v1/scenarios/{first}/purge"), json!({})).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(a.post(&format!("/api/v1/scenarios/{first}/purge"), json!({})).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(a.get(&format!("/api/v1/scenarios/{first}")).await.status(), StatusCode::NOT_FOUND);
    let r = a.post("/api/v1/scenarios", json!({"spec": sma_spec("again")})).await;
    assert_eq!(r.status(), StatusCode::CREATED, "purging freed the space");
    // Full to the byte (as stored reports would make it): no new run.
    use sea_orm::ConnectionTrait as _;
    app.test_db.db.connection().execute_unprepared("UPDATE scenario_versions SET size_bytes = 4096").await.unwrap();
    let (status, body) = problem(a.post(&format!("/api/v1/scenarios/{}/runs", ids[1]), json!({})).await).await;
    assert_eq!((status, body["type"].as_str()), (StatusCode::TOO_MANY_REQUESTS, Some("/problems/quota")), "{body}");
}

/// Deleting a finished run removes its row and its report (freeing the stored-bytes quota);
/// an active run must be cancelled first; nobody else can delete it.
#[tokio::test]
async fn a_finished_run_is_deleted_with_its_report() {
    let slow = RunnerOptions { session_delay: Duration::from_millis(1), ..RunnerOptions::default() };
    let app = spawn_sim_app(4, slow).await;
    let (a, owner) = app.user("deleter@example.com").await;
    let (other, _) = app.user("stranger@example.com").await;
    let sid = crate::runs::scenario(&a, sma_spec("to delete")).await;
    let id = start(&a, sid).await["id"].as_i64().unwrap();
    let (status, body) = problem(a.delete(&format!("/api/v1/runs/{id}")).await).await;
    assert_eq!(status, StatusCode::CONFLICT, "an active run is not deleted: {body}");
    assert_eq!(wait_final(&a, id).await["state"], "succeeded");
    let key = format!("reports/{owner}/{id}/report.json");
    assert!(app.objects.exists(&key).await.unwrap());
    assert_eq!(other.delete(&format!("/api/v1/runs/{id}")).await.status(), StatusCode::NOT_FOUND);
    let before = app.test_db.db.stored_bytes(owner).await.unwrap();
    assert_eq!(a.delete(&format!("/api/v1/runs/{id}")).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(a.get(&format!("/api/v1/runs/{id}")).await.status(), StatusCode::NOT_FOUND);
    assert!(!app.objects.exists(&key).await.unwrap(), "the report went with the run");
    let after = app.test_db.db.stored_bytes(owner).await.unwrap();
    assert!(after + 10_000 < before, "the report's bytes were freed: {before} → {after}");
}

/// Polls a sweep until it ends.
async fn wait_sweep(b: &Browser, id: i64) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let sw = b.get_json(&format!("/api/v1/sweeps/{id}?per_page=200")).await;
        if ["succeeded", "failed", "cancelled"].contains(&sw["state"].as_str().unwrap()) {
            return sw;
        }
        assert!(Instant::now() < deadline, "sweep {id} stuck: {}", sw["state"]);
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_sweep_runs_every_point_once_on_the_workers_and_sorts_by_any_metric() {
    let app = spawn_sim_app(12, RunnerOptions::default()).await;
    let (a, _) = app.user("sweeper@example.com").await;
    let sid = scenario(&a, sma_spec("sweep me")).await;

    // Every problem at once, before anything is queued.
    let r = a
        .post(
            &format!("/api/v1/scenarios/{sid}/sweeps"),
            json!({"grid": ["strategy.slow=90..60", "strategy.fastt=1..3", "strategy.fast=1,x"]}),
        )
        .await;
    let (status, body) = problem(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["grid[0]", "grid[2]"], "{body}");
    let r = a.post(&format!("/api/v1/scenarios/{sid}/sweeps"), json!({"grid": ["strategy.fastt=1..3"]})).await;
    let (status, body) = problem(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"][0]["message"].as_str().unwrap().contains("strategy.fastt: is not a known field"), "{body}");

    let r = a
        .post(
            &format!("/api/v1/scenarios/{sid}/sweeps"),
            json!({"grid": ["strategy.fast=5..20:5", "strategy.slow=[40, 60, 80]"], "in_sample": 0.6}),
        )
        .await;
    assert_eq!(r.status(), StatusCode::ACCEPTED, "{}", r.text().await.unwrap());
    let sw: Value = r.json().await.unwrap();
    assert_eq!((sw["state"].as_str(), sw["points_total"].as_i64()), (Some("queued"), Some(12)));
    let id = sw["id"].as_i64().unwrap();
    let done = wait_sweep(&a, id).await;
    assert_eq!(done["state"], "succeeded", "{done}");
    assert_eq!(done["points_done"], 12);
    let points = done["points"]["items"].as_array().unwrap();
    assert_eq!(points.len(), 12);
    let ids: Vec<i64> = points.iter().map(|p| p["point"].as_i64().unwrap()).collect();
    assert_eq!(ids, (0..12).collect::<Vec<_>>(), "each point once, in grid order");
    assert_eq!(points[4]["params"], json!([["strategy.fast", 10], ["strategy.slow", 60]]));

    // Sorted by a metric, best first; the best point is the one the sweep names.
    let by_sharpe = a.get_json(&format!("/api/v1/sweeps/{id}?sort=sharpe&per_page=5")).await;
    let top: Vec<f64> =
        by_sharpe["points"]["items"].as_array().unwrap().iter().map(|p| p["sharpe"].as_f64().unwrap()).collect();
    assert_eq!(top.len(), 5);
    assert!(top.windows(2).all(|w| w[0] >= w[1]), "{top:?}");
    assert_eq!(by_sharpe["best"]["point"], by_sharpe["points"]["items"][0]["point"]);
    let p = by_sharpe["best"]["deflated_sharpe"]["probability"].as_f64().unwrap();
    assert!((0.0..=1.0).contains(&p));
    let asc = a.get_json(&format!("/api/v1/sweeps/{id}?sort=max_drawdown&order=asc&per_page=200")).await;
    let dd: Vec<f64> =
        asc["points"]["items"].as_array().unwrap().iter().map(|p| p["max_drawdown"].as_f64().unwrap()).collect();
    assert!(dd.windows(2).all(|w| w[0] <= w[1]), "{dd:?}");
    let (status, _) = problem(a.get(&format!("/api/v1/sweeps/{id}?sort=luck")).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);

    // A point equals the run of the scenario with its values.
    let mut spec = sma_spec("point 4");
    spec["strategy"]["fast"] = json!(10);
    spec["strategy"]["slow"] = json!(60);
    let single = scenario(&a, spec).await;
    let run = wait_final(&a, start(&a, single).await["id"].as_i64().unwrap()).await;
    assert_eq!(run["figures"]["final_equity"], points[4]["final_equity"], "{run}");
    assert_eq!(run["figures"]["sharpe"], points[4]["sharpe"]);

    // Another user sees nothing of it.
    let (b, _) = app.user("other@example.com").await;
    assert_eq!(b.get(&format!("/api/v1/sweeps/{id}")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(
        b.post(&format!("/api/v1/scenarios/{sid}/sweeps"), json!({"grid": ["strategy.fast=5,10"]})).await.status(),
        StatusCode::NOT_FOUND
    );
}
