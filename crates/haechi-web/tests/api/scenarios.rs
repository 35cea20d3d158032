//! Scenario CRUD, versions, diff, restore, validation, import/export, sharing and authorisation.

use crate::helpers::{bearer, problem, spawn_app};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

pub fn sma_spec(name: &str) -> Value {
    json!({
        "name": name,
        "description": "5/20 moving-average cross",
        "capital": 10_000_000,
        "benchmark": "KS11",
        "period": {"start": "2019-06-03", "end": "2021-12-30"},
        "universe": {"tickers": ["100010", "100020", "100030"]},
        "strategy": {"type": "sma_cross", "fast": 5, "slow": 20},
        "execution": {"fill": "next_open", "slippage_bps": 5}
    })
}

async fn create(b: &crate::helpers::Browser, spec: Value) -> Value {
    let r = b.post("/api/v1/scenarios", json!({"spec": spec, "message": "first"})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert!(r.headers()["location"].to_str().unwrap().starts_with("/api/v1/scenarios/"));
    r.json().await.unwrap()
}

#[tokio::test]
async fn crud_versions_diff_restore_and_bin() {
    let app = spawn_app().await;
    let (a, _) = app.user("owner@example.com").await;
    let s = create(&a, sma_spec("SMA 교차")).await;
    let id = s["id"].as_i64().unwrap();
    assert_eq!(s["current_version"], 1);
    assert_eq!(s["access"], "owner");
    assert_eq!(s["strategy"], "sma_cross");
    assert_eq!(s["spec"]["strategy"]["slow"], 20);

    // Edit twice: each save is a new immutable version.
    let mut spec = sma_spec("SMA 교차 v2");
    spec["strategy"]["slow"] = json!(30);
    let r =
        a.put(&format!("/api/v1/scenarios/{id}"), json!({"spec": spec, "message": "slower", "base_version": 1})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let v2: Value = r.json().await.unwrap();
    assert_eq!((v2["current_version"].as_i64(), v2["name"].as_str()), (Some(2), Some("SMA 교차 v2")));
    // A stale base version is a conflict, not a silent overwrite.
    let r = a.put(&format!("/api/v1/scenarios/{id}"), json!({"spec": sma_spec("lost"), "base_version": 1})).await;
    assert_eq!(problem(r).await.0, StatusCode::CONFLICT);
    let mut spec3 = spec.clone();
    spec3["universe"]["tickers"] = json!(["100010", "100020", "100030", "100040"]);
    let r = a.put(&format!("/api/v1/scenarios/{id}"), json!({"spec": spec3})).await;
    assert_eq!(r.status(), StatusCode::OK);

    let versions = a.get_json(&format!("/api/v1/scenarios/{id}/versions")).await;
    let nums: Vec<i64> = versions.as_array().unwrap().iter().map(|v| v["version"].as_i64().unwrap()).collect();
    assert_eq!(nums, vec![3, 2, 1]);
    assert_eq!(versions[1]["message"], "slower");
    let v1 = a.get_json(&format!("/api/v1/scenarios/{id}/versions/1")).await;
    assert_eq!(v1["spec"]["strategy"]["slow"], 20, "old versions are immutable");

    let d = a.get_json(&format!("/api/v1/scenarios/{id}/diff?from=1&to=3")).await;
    let changes: Vec<(String, String)> = d["changes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["path"].as_str().unwrap().to_owned(), c["op"].as_str().unwrap().to_owned()))
        .collect();
    assert_eq!(
        changes,
        vec![
            ("name".to_owned(), "changed".to_owned()),
            ("strategy.slow".to_owned(), "changed".to_owned()),
            ("universe.tickers[3]".to_owned(), "added".to_owned()),
        ]
    );
    assert_eq!(d["changes"][1]["before"], 20);
    assert_eq!(d["changes"][1]["after"], 30);

    // Restore version 1 as version 4.
    let r = a.post(&format!("/api/v1/scenarios/{id}/versions/1/restore"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    let restored: Value = r.json().await.unwrap();
    assert_eq!(restored["current_version"], 4);
    assert_eq!(restored["spec"], v1["spec"]);
    assert_eq!(a.get_json(&format!("/api/v1/scenarios/{id}/diff?from=1&to=4")).await["changes"], json!([]));
    assert_eq!(a.get_json(&format!("/api/v1/scenarios/{id}/versions")).await[0]["message"], "restored version 1");

    // Duplicate, then list with search and paging.
    let r = a.post(&format!("/api/v1/scenarios/{id}/duplicate"), json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let dup: Value = r.json().await.unwrap();
    assert_ne!(dup["id"], id);
    assert_eq!(dup["current_version"], 1);
    assert!(dup["name"].as_str().unwrap().contains("사본 copy"));
    create(&a, sma_spec("다른 전략 Other")).await;
    let list = a.get_json("/api/v1/scenarios?q=sma&per_page=1").await;
    assert_eq!(list["total"], 2, "{list}");
    assert_eq!(list["items"].as_array().unwrap().len(), 1);
    assert_eq!(a.get_json("/api/v1/scenarios?q=%25").await["total"], 0, "LIKE wildcards are literal");
    assert_eq!(a.get_json("/api/v1/scenarios?strategy=sma_cross").await["total"], 3);

    // Soft delete: gone from lists and reads, back with undelete, versions intact.
    assert_eq!(a.delete(&format!("/api/v1/scenarios/{id}")).await.status(), StatusCode::NO_CONTENT);
    assert_eq!(a.get(&format!("/api/v1/scenarios/{id}")).await.status(), StatusCode::NOT_FOUND);
    assert_eq!(a.get_json("/api/v1/scenarios").await["total"], 2);
    let bin = a.get_json("/api/v1/scenarios?deleted=true").await;
    assert_eq!(bin["items"][0]["id"], id);
    let r = a.post(&format!("/api/v1/scenarios/{id}/undelete"), json!({})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(a.get_json(&format!("/api/v1/scenarios/{id}/versions")).await.as_array().unwrap().len(), 4);
    let events = app.audit_events().await;
    for e in ["scenario_created", "scenario_updated", "scenario_restored", "scenario_deleted", "scenario_undeleted"] {
        assert!(events.iter().any(|x| x == e), "{e} in {events:?}");
    }
}

#[tokio::test]
async fn validation_reports_every_problem_with_field_paths_and_stores_nothing() {
    let app = spawn_app().await;
    let (a, _) = app.user("v@example.com").await;
    let mut bad = sma_spec("bad");
    bad["capital"] = json!(-1);
    bad["strategy"]["slow"] = json!(2);
    bad["universe"]["tickers"][1] = json!("12");
    bad["period"]["end"] = json!("2018-01-01");
    bad["execution"]["fill"] = json!("someday");
    let r = a.post("/api/v1/scenarios", json!({"spec": bad, "message": "x".repeat(501)})).await;
    let (status, body) = problem(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    for f in ["spec.capital", "spec.universe.tickers[1]", "spec.execution.fill", "message"] {
        assert!(fields.contains(&f), "{f} missing from {fields:?}");
    }
    assert!(fields.iter().any(|f| f.starts_with("spec.strategy")), "{fields:?}");
    assert!(fields.iter().any(|f| f.starts_with("spec.period")), "{fields:?}");
    // Scenario problems carry a code and the values quoted, for clients that word them.
    let capital = body["errors"].as_array().unwrap().iter().find(|e| e["field"] == "spec.capital").unwrap();
    assert_eq!(capital["code"], "between");
    assert_eq!(capital["params"], json!({"min": "100000", "max": "10000000000000", "value": "-1"}));
    let message = body["errors"].as_array().unwrap().iter().find(|e| e["field"] == "message").unwrap();
    assert!(message.get("code").is_none() && message.get("params").is_none(), "{message}");
    assert_eq!(a.get_json("/api/v1/scenarios").await["total"], 0);

    // A bad update leaves the stored versions alone.
    let s = create(&a, sma_spec("good")).await;
    let id = s["id"].as_i64().unwrap();
    let (status, _) = problem(a.put(&format!("/api/v1/scenarios/{id}"), json!({"spec": {"name": ""}})).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(a.get_json(&format!("/api/v1/scenarios/{id}")).await["current_version"], 1);
    let (status, body) = problem(a.post("/api/v1/scenarios", json!({"spec": [1, 2]})).await).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("spec")));
}

#[tokio::test]
async fn toml_import_and_export_round_trip() {
    let app = spawn_app().await;
    let (a, _) = app.user("toml@example.com").await;
    let toml = include_str!("../../../../examples/sma_cross.toml");
    let send = |body: String| {
        a.client
            .post(format!("{}/api/v1/scenarios/import", a.base))
            .header("content-type", "application/toml")
            .header("x-csrf-token", a.csrf.clone().unwrap())
            .body(body)
            .send()
    };
    let r = send(toml.to_owned()).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let s: Value = r.json().await.unwrap();
    let id = s["id"].as_i64().unwrap();
    let r = a.get(&format!("/api/v1/scenarios/{id}/export")).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("application/toml"));
    assert!(r.headers()["content-disposition"].to_str().unwrap().contains(&format!("scenario-{id}-v1.toml")));
    let exported = r.text().await.unwrap();
    assert!(exported.contains("[strategy]"), "{exported}");
    // Importing the export gives the same document.
    let r = send(exported).await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let again: Value = r.json().await.unwrap();
    assert_eq!(again["spec"], s["spec"]);
    // Syntax errors name line and column.
    let r = send("name = \"x\"\ncapital = = 1\n".into()).await.unwrap();
    let (status, body) = problem(r).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert!(body["errors"][0]["field"].as_str().unwrap().starts_with("scenario.toml:2:"), "{body}");
}

#[tokio::test]
async fn scenarios_are_private_until_shared_read_only() {
    let app = spawn_app().await;
    let (a, _) = app.user("alice@example.com").await;
    let (b, _) = app.user("bob@example.com").await;
    let (c, c_id) = app.user("carol@example.com").await;
    app.promote(c_id, "analyst").await;
    let mut c = c;
    c.login("carol@example.com", crate::helpers::PASSWORD, None).await;
    let (d, d_id) = app.user("dave@example.com").await;
    app.promote(d_id, "auditor").await;
    let mut d = d;
    d.login("dave@example.com", crate::helpers::PASSWORD, None).await;

    let s = create(&a, sma_spec("private")).await;
    let id = s["id"].as_i64().unwrap();
    // Strangers: 404 everywhere, never 403 (ids reveal nothing).
    for (m, path) in [
        (Method::GET, format!("/api/v1/scenarios/{id}")),
        (Method::PUT, format!("/api/v1/scenarios/{id}")),
        (Method::DELETE, format!("/api/v1/scenarios/{id}")),
        (Method::GET, format!("/api/v1/scenarios/{id}/versions")),
        (Method::GET, format!("/api/v1/scenarios/{id}/export")),
        (Method::GET, format!("/api/v1/scenarios/{id}/shares")),
        (Method::POST, format!("/api/v1/scenarios/{id}/duplicate")),
        (Method::POST, format!("/api/v1/scenarios/{id}/runs")),
        (Method::GET, format!("/api/v1/scenarios/{id}/runs")),
    ] {
        let body = (m == Method::PUT).then(|| json!({"spec": sma_spec("x")}));
        let r = b.send(m.clone(), &path, body).await;
        assert_eq!(r.status(), StatusCode::NOT_FOUND, "{m} {path}");
    }
    assert_eq!(b.get_json("/api/v1/scenarios").await["total"], 0);

    // Share with Bob by email; unknown emails are named by index and change nothing.
    let r = a
        .put(&format!("/api/v1/scenarios/{id}/shares"), json!({"emails": ["bob@example.com", "nobody@example.com"]}))
        .await;
    let (status, body) = problem(r).await;
    assert_eq!((status, body["errors"][0]["field"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("emails[1]")));
    assert_eq!(b.get(&format!("/api/v1/scenarios/{id}")).await.status(), StatusCode::NOT_FOUND);
    let r = a.put(&format!("/api/v1/scenarios/{id}/shares"), json!({"emails": ["BOB@example.com"]})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["emails"], json!(["bob@example.com"]));

    let got = b.get_json(&format!("/api/v1/scenarios/{id}")).await;
    assert_eq!(got["access"], "reader");
    assert_eq!(b.get_json("/api/v1/scenarios?scope=shared").await["total"], 1);
    assert_eq!(b.get_json("/api/v1/scenarios?scope=owned").await["total"], 0);
    // Read-only: changes are forbidden; a copy of his own is fine.
    let r = b.put(&format!("/api/v1/scenarios/{id}"), json!({"spec": sma_spec("mine now")})).await;
    assert_eq!(problem(r).await.0, StatusCode::FORBIDDEN);
    assert_eq!(problem(b.delete(&format!("/api/v1/scenarios/{id}")).await).await.0, StatusCode::FORBIDDEN);
    assert_eq!(
        problem(b.post(&format!("/api/v1/scenarios/{id}/runs"), json!({})).await).await.0,
        StatusCode::FORBIDDEN
    );
    let r = b.post(&format!("/api/v1/scenarios/{id}/duplicate"), json!({})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    assert_eq!(r.json::<Value>().await.unwrap()["access"], "owner");

    // Shared with all analysts: Carol (analyst) reads it, Bob still by name, Dave (auditor) has no access at all.
    assert_eq!(c.get(&format!("/api/v1/scenarios/{id}")).await.status(), StatusCode::NOT_FOUND);
    let r = a.put(&format!("/api/v1/scenarios/{id}/shares"), json!({"emails": [], "analysts": true})).await;
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(c.get_json(&format!("/api/v1/scenarios/{id}")).await["access"], "reader");
    assert_eq!(b.get(&format!("/api/v1/scenarios/{id}")).await.status(), StatusCode::NOT_FOUND, "share removed");
    assert_eq!(problem(d.get("/api/v1/scenarios").await).await.0, StatusCode::FORBIDDEN);
    // Deleted scenarios vanish for readers too.
    a.delete(&format!("/api/v1/scenarios/{id}")).await;
    assert_eq!(c.get(&format!("/api/v1/scenarios/{id}")).await.status(), StatusCode::NOT_FOUND);
}

#[tokio::test]
async fn api_tokens_need_the_trade_scope_to_change_scenarios() {
    let app = spawn_app().await;
    let (a, _) = app.user("tok@example.com").await;
    let mut tokens = Vec::new();
    for scopes in [json!(["read"]), json!(["read", "trade"])] {
        let r = a
            .post("/api/v1/me/tokens", json!({"name": "t", "scopes": scopes, "password": crate::helpers::PASSWORD}))
            .await;
        assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
        tokens.push(r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned());
    }
    let read = bearer(&tokens[0]);
    let trade = bearer(&tokens[1]);
    let url = app.url("/api/v1/scenarios");
    assert_eq!(read.get(&url).send().await.unwrap().status(), StatusCode::OK);
    let body = json!({"spec": sma_spec("via token")});
    assert_eq!(read.post(&url).json(&body).send().await.unwrap().status(), StatusCode::FORBIDDEN);
    assert_eq!(trade.post(&url).json(&body).send().await.unwrap().status(), StatusCode::CREATED);
}

/// Scenarios too large to be real (issue 13, attack 3) are refused early, naming the field,
/// and the duplicate check is linear: 5,000 distinct tickers are fine, one more is not.
#[tokio::test]
async fn oversized_scenarios_are_refused_with_the_limit_named() {
    let app = spawn_app().await;
    let (b, _) = app.user("big@example.com").await;
    let tickers = |n: usize| (0..n).map(|i| format!("{:06}", 100_000 + i)).collect::<Vec<_>>();
    let with_tickers = |n: usize| {
        let mut s = sma_spec("big");
        s["universe"]["tickers"] = json!(tickers(n));
        s
    };
    // 100,000 tickers: the document itself is over the size limit.
    let (status, body) = problem(b.post("/api/v1/scenarios", json!({"spec": with_tickers(100_000)})).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "spec", "{body}");
    // Within the size limit, the ticker count is.
    let (status, body) = problem(b.post("/api/v1/scenarios", json!({"spec": with_tickers(5_001)})).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "spec.universe.tickers");
    assert_eq!(body["errors"][0]["code"], "too_many_tickers");
    assert_eq!(body["errors"][0]["params"]["max"], "5000");
    // A duplicate at the end of a long list is still found, by position.
    let mut dup = tickers(4_999);
    dup.push(dup[17].clone());
    let mut s = sma_spec("dup");
    s["universe"]["tickers"] = json!(dup);
    let (_, body) = problem(b.post("/api/v1/scenarios", json!({"spec": s})).await).await;
    assert_eq!(body["errors"][0]["field"], "spec.universe.tickers[4999]");
    assert_eq!(body["errors"][0]["code"], "listed_twice");
    // Descriptions are bounded too.
    let mut s = sma_spec("wordy");
    s["description"] = json!("설명".repeat(1_001));
    let (status, body) = problem(b.post("/api/v1/scenarios", json!({"spec": s})).await).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(body["errors"][0]["field"], "spec.description");
    // Nothing was stored.
    let list: Value = b.get_json("/api/v1/scenarios").await;
    assert_eq!(list["total"], 0);
}
