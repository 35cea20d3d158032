//! HTTP integration tests over a real socket. Each test spawns its own server and database.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

mod helpers;
mod paper;
mod portal;
mod risk;
mod runs;
mod scenarios;

use haechi_app::{AppSettings, Clock as _, ManualClock};
use haechi_web::WebSettings;
use helpers::{Config, PASSWORD, bearer, problem, spawn_app, spawn_app_with};
use reqwest::{Method, StatusCode};
use serde_json::{Value, json};
use std::time::Duration;

#[tokio::test]
async fn health_readiness_metrics_and_headers() {
    let web = WebSettings { metrics_token: Some("prometheus-scrape-token".into()), ..WebSettings::default() };
    let app = spawn_app_with(Config { web, ..Config::default() }).await;
    let c = reqwest::Client::new();
    let r = c.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(r.status(), 200);
    for (h, v) in
        [("x-content-type-options", "nosniff"), ("x-frame-options", "DENY"), ("referrer-policy", "no-referrer")]
    {
        assert_eq!(r.headers()[h], v);
    }
    assert!(r.headers()["content-security-policy"].to_str().unwrap().contains("frame-ancestors 'none'"));
    assert!(r.headers().contains_key("x-request-id"));
    assert_eq!(c.get(app.url("/readyz")).send().await.unwrap().status(), 200);
    let no_follow = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let root = no_follow.get(app.url("/")).send().await.unwrap();
    assert_eq!((root.status().as_u16(), root.headers()["location"].to_str().unwrap()), (303, "/login"));
    // /metrics is for Prometheus, with its token: not for anyone who asks (issue 13, attack 8).
    assert_eq!(c.get(app.url("/metrics")).send().await.unwrap().status(), 401);
    let wrong = c.get(app.url("/metrics")).bearer_auth("prometheus-scrape-tokeX").send().await.unwrap();
    assert_eq!(wrong.status(), 401);
    let m =
        c.get(app.url("/metrics")).bearer_auth("prometheus-scrape-token").send().await.unwrap().text().await.unwrap();
    assert!(m.contains("haechi_http_requests_total"), "{m}");
    assert!(m.contains("haechi_http_request_duration_seconds_bucket"), "{m}");
    let (status, body) = problem(c.get(app.url("/api/v1/nope")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    assert_eq!(body["type"], "/problems/not-found");
    assert!(body["request_id"].as_str().is_some_and(|s| !s.is_empty()));
    // Outside the API, the same answer is a page for people, carrying the same request id.
    let r = c.get(app.url("/nope")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "text/html; charset=utf-8");
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let html = r.text().await.unwrap();
    assert!(html.contains("찾을 수 없습니다") && html.contains(&id), "{html}");
}

#[tokio::test]
async fn openapi_describes_every_route() {
    let app = spawn_app().await;
    let spec: Value = reqwest::get(app.url("/api/openapi.json")).await.unwrap().json().await.unwrap();
    assert!(spec["openapi"].as_str().unwrap().starts_with("3.1"));
    let paths = spec["paths"].as_object().unwrap();
    for p in [
        "/api/v1/auth/register",
        "/api/v1/auth/login",
        "/api/v1/auth/logout",
        "/api/v1/me",
        "/api/v1/me/tokens",
        "/api/v1/me/mfa/totp",
        "/api/v1/admin/users",
        "/api/v1/admin/audit",
        "/api/v1/scenarios",
        "/api/v1/scenarios/{id}",
        "/api/v1/scenarios/{id}/versions",
        "/api/v1/scenarios/{id}/runs",
        "/api/v1/runs/{id}",
        "/api/v1/runs/{id}/report",
        "/api/v1/runs/events",
        "/api/v1/accounts",
        "/api/v1/accounts/{id}",
        "/api/v1/accounts/{id}/orders",
        "/api/v1/accounts/{id}/positions",
        "/api/v1/accounts/{id}/fills",
        "/api/v1/accounts/{id}/equity",
        "/api/v1/accounts/{id}/performance",
        "/api/v1/accounts/{id}/events",
        "/api/v1/accounts/{id}/socket",
        "/api/v1/accounts/{id}/loss-halt/lift",
        "/api/v1/accounts/{id}/mirror",
        "/api/v1/accounts/{id}/mirror/reconcile",
        "/api/v1/orders/{id}",
        "/api/v1/market",
        "/healthz",
        "/readyz",
        "/metrics",
    ] {
        assert!(paths.contains_key(p), "{p} missing from the OpenAPI document");
    }
    let docs = reqwest::get(app.url("/api/docs/")).await.unwrap();
    assert_eq!(docs.status(), 200);
    assert!(docs.text().await.unwrap().contains("swagger"));
}

#[tokio::test]
async fn registration_validates_every_field_and_emails_are_unique_case_insensitively() {
    let app = spawn_app().await;
    let mut b = app.browser();
    let r = b
        .post("/api/v1/auth/register", json!({"email": "not-an-email", "display_name": "", "password": "short"}))
        .await;
    let (status, body) = problem(r).await;
    assert_eq!(status, 422);
    let fields: Vec<&str> = body["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["email", "display_name", "password"]);
    let r = b
        .post(
            "/api/v1/auth/register",
            json!({"email": "kim@example.com", "display_name": "김", "password": "kim@example.com-is-long"}),
        )
        .await;
    assert_eq!(problem(r).await.1["errors"][0]["message"], "must not contain your email");
    let ok = json!({"email": "Kim@Example.com", "display_name": "김", "password": PASSWORD});
    let first = b.post("/api/v1/auth/register", ok).await;
    assert_eq!(first.status(), 202);
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["email"], "kim@example.com");
    // Registration reveals no account's existence (issue 13, attack 9): a taken address gets
    // the same status and body as a new one, and the owner's account is untouched.
    let dup = json!({"email": "kim@EXAMPLE.com", "display_name": "다른 사람", "password": "another-long-password-9"});
    let again = b.post("/api/v1/auth/register", dup).await;
    assert_eq!(again.status(), 202);
    assert_eq!(again.json::<Value>().await.unwrap(), first);
    assert_eq!(b.login("kim@example.com", PASSWORD, None).await.status(), 200, "the owner's password still works");
    assert_eq!(b.login("kim@example.com", "another-long-password-9", None).await.status(), 401);
    let r = b.post("/api/v1/auth/register", json!({"email": "x@y.z"})).await;
    let (status, body) = problem(r).await;
    assert_eq!(status, 422);
    assert_eq!(body["errors"][0]["field"], "display_name", "{body}");
}

#[tokio::test]
async fn unknown_email_and_wrong_password_are_indistinguishable() {
    let app = spawn_app().await;
    let (_b, _) = app.user("lee@example.com").await;
    let c = reqwest::Client::new();
    let mut bodies = Vec::new();
    let mut times = Vec::new();
    for email in ["lee@example.com", "nobody@example.com"] {
        let started = std::time::Instant::now();
        let r = c
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": email, "password": "wrong password 123"}))
            .send()
            .await
            .unwrap();
        times.push(started.elapsed());
        let (status, mut body) = problem(r).await;
        assert_eq!(status, 401);
        body.as_object_mut().unwrap().remove("request_id");
        bodies.push(body);
    }
    assert_eq!(bodies[0], bodies[1]);
    // Both paths run argon2: neither answers in a fraction of the other's time.
    let (a, b) = (times[0].as_secs_f64(), times[1].as_secs_f64());
    assert!(a / b < 5.0 && b / a < 5.0, "timings differ too much: {times:?}");
}

#[tokio::test]
async fn full_flow_register_login_totp_token() {
    let app = spawn_app().await;
    let (mut b, id) = app.user("park@example.com").await;
    let me: Value = b.get("/api/v1/me").await.json().await.unwrap();
    assert_eq!(me["auth"], "session");
    assert_eq!(me["user"]["role"], "investor");

    // Enrol TOTP.
    let enrol: Value = b.post("/api/v1/me/mfa/totp", json!({})).await.json().await.unwrap();
    let secret = enrol["secret"].as_str().unwrap().to_owned();
    assert!(enrol["otpauth_uri"].as_str().unwrap().starts_with("otpauth://totp/"));
    assert!(enrol["qr_svg"].as_str().unwrap().contains("<svg"));
    let wrong = b.post("/api/v1/me/mfa/totp/confirm", json!({"code": "000000"})).await;
    assert_eq!(problem(wrong).await.0, 422);
    // Codes are valid for their 30-second step ±1; use steps s-1, s and s+1 in order.
    let now = helpers::away_from_step_boundary().await;
    let code_at = |t: u64| haechi_app::auth::totp::code_at(&secret, t).unwrap();
    let r: Value =
        b.post("/api/v1/me/mfa/totp/confirm", json!({"code": code_at(now - 30)})).await.json().await.unwrap();
    let recovery: Vec<String> =
        r["recovery_codes"].as_array().unwrap().iter().map(|c| c.as_str().unwrap().to_owned()).collect();
    assert_eq!(recovery.len(), 10);

    // Login now needs the code; the enrolment code cannot be replayed.
    assert_eq!(b.send(Method::POST, "/api/v1/auth/logout", None).await.status(), 204);
    assert_eq!(b.get("/api/v1/me").await.status(), 401);
    let (status, body) = problem(b.login("park@example.com", PASSWORD, None).await).await;
    assert_eq!((status, body["type"].as_str().unwrap()), (StatusCode::UNAUTHORIZED, "/problems/mfa-required"));
    assert_eq!(b.login("park@example.com", PASSWORD, Some(&code_at(now - 30))).await.status(), 401, "replayed step");
    assert_eq!(b.login("park@example.com", PASSWORD, Some(&code_at(now))).await.status(), 200);
    let mut other = app.browser();
    assert_eq!(other.login("park@example.com", PASSWORD, Some(&code_at(now))).await.status(), 401, "same code twice");

    // A recovery code works once.
    let rc = json!({"email": "park@example.com", "password": PASSWORD, "recovery_code": recovery[0]});
    let c = reqwest::Client::new();
    assert_eq!(c.post(app.url("/api/v1/auth/login")).json(&rc).send().await.unwrap().status(), 200);
    assert_eq!(c.post(app.url("/api/v1/auth/login")).json(&rc).send().await.unwrap().status(), 401);

    // A token needs re-authentication (password and a fresh code), is shown once, and works.
    let r = b.post("/api/v1/me/tokens", json!({"name": "phone", "scopes": ["read"], "password": PASSWORD})).await;
    assert_eq!(problem(r).await.1["errors"][0]["field"], "totp_code");
    let r = b
        .post(
            "/api/v1/me/tokens",
            json!({"name": "phone", "scopes": ["read"], "password": PASSWORD, "totp_code": code_at(now + 30)}),
        )
        .await;
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let token = created["token"].as_str().unwrap();
    assert!(token.starts_with("hae_"));
    let list: Value = b.get("/api/v1/me/tokens").await.json().await.unwrap();
    assert!(!list.to_string().contains(token), "the secret is never listed");
    let t = bearer(token);
    let me: Value = t.get(app.url("/api/v1/me")).send().await.unwrap().json().await.unwrap();
    assert_eq!((me["auth"].as_str(), me["user"]["id"].as_i64()), (Some("token"), Some(id)));
    // A read-only token cannot make changes.
    let r = t.post(app.url("/api/v1/me/mfa/totp")).json(&json!({})).send().await.unwrap();
    assert_eq!(problem(r).await.0, 403);
    // Revoked tokens stop working.
    let tid = created["id"].as_i64().unwrap();
    assert_eq!(b.delete(&format!("/api/v1/me/tokens/{tid}")).await.status(), 204);
    assert_eq!(t.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401);

    // Disabling MFA needs the password and a second factor (here a recovery code).
    let r = b.send(Method::DELETE, "/api/v1/me/mfa/totp", Some(json!({"password": "wrong password here"}))).await;
    assert_eq!(problem(r).await.0, 422);
    let r = b.send(Method::DELETE, "/api/v1/me/mfa/totp", Some(json!({"password": PASSWORD}))).await;
    assert_eq!(problem(r).await.1["errors"][0]["field"], "totp_code");
    let r = b
        .send(Method::DELETE, "/api/v1/me/mfa/totp", Some(json!({"password": PASSWORD, "recovery_code": recovery[1]})))
        .await;
    assert_eq!(r.status(), 204);
    let me: Value = b.get("/api/v1/me").await.json().await.unwrap();
    assert_eq!(me["user"]["mfa_enabled"], false);

    let events = app.audit_events().await;
    for e in [
        "user_registered",
        "login_success",
        "login_failure",
        "logout",
        "mfa_enabled",
        "recovery_code_used",
        "token_created",
        "token_revoked",
        "mfa_disabled",
    ] {
        assert!(events.iter().any(|x| x == e), "no audit entry {e}: {events:?}");
    }
}

#[tokio::test]
async fn repeated_failures_lock_the_account_with_retry_after() {
    let app = AppSettings { login_max_failures: 3, login_lock: Duration::from_secs(600), ..AppSettings::default() };
    let app = spawn_app_with(Config { app, ..Config::default() }).await;
    let (_b, _) = app.user("choi@example.com").await;
    let c = reqwest::Client::new();
    let attempt = |pw: &'static str| {
        let c = c.clone();
        let url = app.url("/api/v1/auth/login");
        async move { c.post(url).json(&json!({"email": "choi@example.com", "password": pw})).send().await.unwrap() }
    };
    assert_eq!(attempt("wrong password 1").await.status(), 401);
    assert_eq!(attempt("wrong password 2").await.status(), 401);
    assert_eq!(attempt("wrong password 3").await.status(), 401);
    // Locked: even the right password is refused, with Retry-After.
    let r = attempt(PASSWORD).await;
    assert_eq!(r.status(), 429);
    let retry: u64 = r.headers()["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((590..=600).contains(&retry), "retry-after {retry}");
    assert!(app.audit_events().await.iter().any(|e| e == "login_blocked"));
}

#[tokio::test]
async fn backoff_starts_at_the_third_failure() {
    let app = spawn_app().await;
    let c = reqwest::Client::new();
    let body = json!({"email": "ghost@example.com", "password": "wrong password 1"});
    for _ in 0..3 {
        assert_eq!(c.post(app.url("/api/v1/auth/login")).json(&body).send().await.unwrap().status(), 401);
    }
    let r = c.post(app.url("/api/v1/auth/login")).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "1");
}

#[tokio::test]
async fn cookie_requests_without_the_csrf_token_are_rejected() {
    let app = spawn_app().await;
    let (mut b, _) = app.user("jung@example.com").await;
    let saved = b.csrf.take();
    let (status, body) = problem(b.post("/api/v1/me/mfa/totp", json!({})).await).await;
    assert_eq!((status, body["type"].as_str().unwrap()), (StatusCode::FORBIDDEN, "/problems/csrf"));
    b.csrf = Some("wrong".into());
    assert_eq!(b.post("/api/v1/me/mfa/totp", json!({})).await.status(), 403);
    b.csrf = saved;
    assert_eq!(b.post("/api/v1/me/mfa/totp", json!({})).await.status(), 200);
    // Safe methods need no token.
    b.csrf = None;
    assert_eq!(b.get("/api/v1/me").await.status(), 200);
}

#[tokio::test]
async fn sessions_are_listed_and_revoked() {
    let app = spawn_app().await;
    let (a1, _) = app.user("han@example.com").await;
    let mut a2 = app.browser();
    assert_eq!(a2.login("han@example.com", PASSWORD, None).await.status(), 200);
    let list: Value = a1.get("/api/v1/me/sessions").await.json().await.unwrap();
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let other = list.iter().find(|s| s["current"] == false).unwrap()["id"].as_str().unwrap().to_owned();
    assert_eq!(a1.delete(&format!("/api/v1/me/sessions/{other}")).await.status(), 204);
    assert_eq!(a2.get("/api/v1/me").await.status(), 401);
    assert_eq!(a1.get("/api/v1/me").await.status(), 200);
    assert!(app.audit_events().await.iter().any(|e| e == "session_revoked"));
}

#[tokio::test]
async fn password_change_ends_other_sessions_and_renews_this_one() {
    let app = spawn_app().await;
    let (mut a1, _) = app.user("seo@example.com").await;
    let mut a2 = app.browser();
    assert_eq!(a2.login("seo@example.com", PASSWORD, None).await.status(), 200);
    let old_csrf = a1.csrf.clone();
    let r = a1
        .post("/api/v1/me/password", json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}))
        .await;
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    a1.csrf = v["csrf_token"].as_str().map(str::to_owned);
    assert_ne!(a1.csrf, old_csrf, "new session, new CSRF token");
    assert_eq!(a1.get("/api/v1/me").await.status(), 200);
    assert_eq!(a2.get("/api/v1/me").await.status(), 401);
    assert_eq!(a2.login("seo@example.com", PASSWORD, None).await.status(), 401);
    assert_eq!(a2.login("seo@example.com", "a brand new passphrase", None).await.status(), 200);
    assert!(app.audit_events().await.iter().any(|e| e == "password_changed"));
}

#[tokio::test]
async fn a_user_never_reaches_another_users_resources() {
    let app = spawn_app().await;
    let (a, _) = app.user("a@example.com").await;
    let (b, _) = app.user("b@example.com").await;
    let r: Value = b
        .post("/api/v1/me/tokens", json!({"name": "b", "scopes": ["read"], "password": PASSWORD}))
        .await
        .json()
        .await
        .unwrap();
    let b_token = r["id"].as_i64().unwrap();
    let b_sessions: Value = b.get("/api/v1/me/sessions").await.json().await.unwrap();
    let b_session = b_sessions[0]["id"].as_str().unwrap().to_owned();
    assert_eq!(problem(a.delete(&format!("/api/v1/me/tokens/{b_token}")).await).await.0, 404);
    assert_eq!(problem(a.delete(&format!("/api/v1/me/sessions/{b_session}")).await).await.0, 404);
    let a_tokens: Value = a.get("/api/v1/me/tokens").await.json().await.unwrap();
    assert_eq!(a_tokens.as_array().unwrap().len(), 0);
    // B's things still work.
    assert_eq!(b.get("/api/v1/me").await.status(), 200);
}

const ADMIN_ROUTES: &[(&str, &str, Option<&str>)] = &[
    ("GET", "/api/v1/admin/users", None),
    ("PATCH", "/api/v1/admin/users/{victim}", Some(r#"{"disabled": false}"#)),
    ("GET", "/api/v1/admin/roles", None),
    ("PUT", "/api/v1/admin/roles/analyst/mfa", Some(r#"{"require_mfa": false}"#)),
    ("GET", "/api/v1/admin/audit", None),
    ("GET", "/api/v1/admin/access", None),
];

#[tokio::test]
async fn role_matrix_on_every_admin_route() {
    let app = spawn_app().await;
    let (_, victim) = app.user("victim@example.com").await;
    // Expected status per role for each route above, from docs/security.md.
    let expect: &[(&str, [u16; 6])] = &[
        ("investor", [403, 403, 403, 403, 403, 403]),
        ("analyst", [403, 403, 403, 403, 403, 403]),
        ("auditor", [403, 403, 403, 403, 200, 200]),
        ("admin", [200, 200, 200, 200, 200, 200]),
    ];
    for (role, statuses) in expect {
        let (mut b, id) = app.user(&format!("{role}@example.com")).await;
        app.promote(id, role).await;
        assert_eq!(b.login(&format!("{role}@example.com"), PASSWORD, None).await.status(), 200);
        for ((method, path, body), want) in ADMIN_ROUTES.iter().zip(statuses) {
            let path = path.replace("{victim}", &victim.to_string());
            let r = b.send(method.parse().unwrap(), &path, body.map(|s| serde_json::from_str(s).unwrap())).await;
            assert_eq!(r.status().as_u16(), *want, "{role} {method} {path}");
        }
    }
    // Without a session: 401 everywhere.
    let anon = app.browser();
    for (method, path, _) in ADMIN_ROUTES {
        let r = anon.send(method.parse().unwrap(), &path.replace("{victim}", "1"), None).await;
        assert_eq!(r.status(), 401, "{method} {path}");
    }
}

#[tokio::test]
async fn admins_change_roles_disable_users_and_require_mfa() {
    let app = spawn_app().await;
    let (mut admin, admin_id) = app.user("root@example.com").await;
    app.promote(admin_id, "admin").await;
    assert_eq!(admin.login("root@example.com", PASSWORD, None).await.status(), 200);
    let (u, uid) = app.user("user@example.com").await;
    let r = admin.send(Method::PATCH, &format!("/api/v1/admin/users/{uid}"), Some(json!({"role": "auditor"}))).await;
    assert_eq!(r.json::<Value>().await.unwrap()["role"], "auditor");
    assert_eq!(u.get("/api/v1/me").await.status(), 401, "a role change ends the user's sessions");
    let r = admin.send(Method::PATCH, &format!("/api/v1/admin/users/{uid}"), Some(json!({"disabled": true}))).await;
    assert_eq!(r.status(), 200);
    let mut u2 = app.browser();
    assert_eq!(u2.login("user@example.com", PASSWORD, None).await.status(), 401, "disabled");
    let r =
        admin.send(Method::PATCH, &format!("/api/v1/admin/users/{admin_id}"), Some(json!({"disabled": true}))).await;
    assert_eq!(problem(r).await.0, 422, "no self-lockout");
    // Require MFA for admins: this admin has none, so admin routes now refuse until enrolment.
    let r = admin.send(Method::PUT, "/api/v1/admin/roles/admin/mfa", Some(json!({"require_mfa": true}))).await;
    assert_eq!(r.status(), 200);
    let (status, body) = problem(admin.get("/api/v1/admin/users").await).await;
    assert_eq!(status, 403);
    assert!(body["detail"].as_str().unwrap().contains("two-factor"));
    assert_eq!(admin.get("/api/v1/me").await.status(), 200, "own account stays reachable to enrol");
    let events = app.audit_events().await;
    for e in ["role_changed", "user_disabled", "role_policy_changed"] {
        assert!(events.iter().any(|x| x == e), "{e}: {events:?}");
    }
}

#[tokio::test]
async fn access_log_records_requests_for_admins_and_auditors() {
    let app = spawn_app().await;
    let (mut admin, id) = app.user("ops@example.com").await;
    app.promote(id, "auditor").await;
    assert_eq!(admin.login("ops@example.com", PASSWORD, None).await.status(), 200);
    assert_eq!(admin.get("/api/v1/me").await.status(), 200);
    // The writer batches asynchronously; give it a moment.
    let mut found = Value::Null;
    for _ in 0..50 {
        let page: Value = admin.get("/api/v1/admin/access?kind=GET&per_page=50").await.json().await.unwrap();
        if page["items"].as_array().unwrap().iter().any(|e| e["route"] == "/api/v1/me" && e["user_id"] == id) {
            found = page;
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let entry = found["items"]
        .as_array()
        .expect("access entry for /api/v1/me")
        .iter()
        .find(|e| e["route"] == "/api/v1/me")
        .unwrap()
        .clone();
    assert_eq!(entry["status"], 200);
    assert_eq!(entry["method"], "GET");
    assert!(entry["request_id"].as_str().unwrap().len() >= 16);
    let page: Value = admin.get("/api/v1/admin/audit?kind=login_success&per_page=1").await.json().await.unwrap();
    assert_eq!(page["items"].as_array().unwrap().len(), 1);
    assert!(page["total"].as_u64().unwrap() >= 2);
}

#[tokio::test]
// Long on purpose: one request per kind of bad body, each with the answer it must get.
async fn oversized_and_malformed_bodies_get_problems_not_crashes() {
    let web = WebSettings { body_limit_bytes: 1024, ..WebSettings::default() };
    let app = spawn_app_with(Config { web, ..Config::default() }).await;
    let c = reqwest::Client::new();
    let big = "x".repeat(4096);
    let r = c
        .post(app.url("/api/v1/auth/register"))
        .json(&json!({"email": big, "display_name": "a", "password": "b"}))
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, 413);
    let r = c
        .post(app.url("/api/v1/auth/login"))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(problem(r).await.0, 400);
    let r = c.post(app.url("/api/v1/auth/login")).body("email=x").send().await.unwrap();
    assert_eq!(problem(r).await.0, 400);
}

#[tokio::test]
async fn huge_page_numbers_are_refused_not_crashed_on() {
    let app = spawn_app().await;
    let (mut admin, id) = app.user("pager@example.com").await;
    app.promote(id, "admin").await;
    assert_eq!(admin.login("pager@example.com", PASSWORD, None).await.status(), 200);
    for path in ["/api/v1/admin/users", "/api/v1/admin/audit", "/api/v1/admin/access"] {
        let (status, body) = problem(admin.get(&format!("{path}?page=9223372036854775808&per_page=0")).await).await;
        assert_eq!(status, 422, "{path}");
        assert_eq!(body["errors"][0]["field"], "page");
    }
}

#[tokio::test]
async fn idle_and_absolute_session_timeouts_end_sessions() {
    // The clock is the application's, moved by the test: no sleeping, no timing luck.
    let clock = ManualClock::at(haechi_db::now_ms());
    let app = AppSettings { session_idle: Duration::from_secs(30 * 60), ..AppSettings::default() };
    let app = spawn_app_with(Config { app, clock: Some(clock.clone()), ..Config::default() }).await;
    let (b, _) = app.user("idle@example.com").await;
    clock.advance_ms(29 * 60_000);
    assert_eq!(b.get("/api/v1/me").await.status(), 200, "used within the idle time");
    clock.advance_ms(29 * 60_000);
    assert_eq!(b.get("/api/v1/me").await.status(), 200, "each use restarts the idle time");
    clock.advance_ms(31 * 60_000);
    assert_eq!(b.get("/api/v1/me").await.status(), 401, "idle timeout");

    let clock = ManualClock::at(haechi_db::now_ms());
    let app = AppSettings { session_absolute: Duration::from_secs(3600), ..AppSettings::default() };
    let app = spawn_app_with(Config { app, clock: Some(clock.clone()), ..Config::default() }).await;
    let (b, _) = app.user("abs@example.com").await;
    for _ in 0..3 {
        clock.advance_ms(19 * 60_000);
        assert_eq!(b.get("/api/v1/me").await.status(), 200, "in use, within the absolute lifetime");
    }
    clock.advance_ms(4 * 60_000);
    assert_eq!(b.get("/api/v1/me").await.status(), 401, "absolute timeout");
}

#[tokio::test]
async fn login_sets_a_hardened_cookie_with_a_new_id_each_time() {
    let app = spawn_app().await;
    let (_b, _) = app.user("cookie@example.com").await;
    let c = reqwest::Client::new();
    let mut ids = Vec::new();
    for _ in 0..2 {
        let r = c
            .post(app.url("/api/v1/auth/login"))
            .json(&json!({"email": "cookie@example.com", "password": PASSWORD}))
            .send()
            .await
            .unwrap();
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_owned();
        for attr in ["HttpOnly", "SameSite=Lax", "Path=/"] {
            assert!(cookie.contains(attr), "{cookie}");
        }
        assert!(!cookie.contains("Secure"), "Secure only when configured");
        ids.push(cookie.split(';').next().unwrap().to_owned());
    }
    assert_ne!(ids[0], ids[1]);
    let secure = spawn_app_with(Config {
        web: WebSettings { cookie_secure: true, ..WebSettings::default() },
        ..Config::default()
    })
    .await;
    let (_b, _) = secure.user("s@example.com").await;
    let r = c
        .post(secure.url("/api/v1/auth/login"))
        .json(&json!({"email": "s@example.com", "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert!(r.headers()["set-cookie"].to_str().unwrap().contains("; Secure"));
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let app = spawn_app().await;
    let (_b, id) = app.user("exp@example.com").await;
    let secret = "hae_expired-token-for-the-test";
    let now = haechi_db::now_ms();
    app.test_db
        .db
        .create_token(haechi_db::NewToken {
            user_id: id,
            name: "old".into(),
            token_hash: haechi_app::auth::sha256_hex(secret),
            prefix: "hae_expire".into(),
            scopes: "read".into(),
            created_at: now - 10_000,
            expires_at: Some(now - 1),
        })
        .await
        .unwrap();
    let r = bearer(secret).get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(problem(r).await.0, 401);
}

#[tokio::test]
async fn shutdown_finishes_in_flight_requests_and_stops() {
    let app = spawn_app().await;
    let url = app.url("/readyz");
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 200);
    tokio::time::timeout(Duration::from_secs(10), app.shut_down()).await.expect("server stops").unwrap();
    assert!(reqwest::get(&url).await.is_err(), "no longer listening");
}

/// Makes an API token for the signed-in browser `b` with `scopes`; returns (id, secret).
async fn token_for(b: &helpers::Browser, scopes: &[&str]) -> (i64, String) {
    let r = b.post("/api/v1/me/tokens", json!({"name": "app", "scopes": scopes, "password": PASSWORD})).await;
    assert_eq!(r.status(), 201);
    let v: Value = r.json().await.unwrap();
    (v["id"].as_i64().unwrap(), v["token"].as_str().unwrap().to_owned())
}

/// A leaked `trade` token (issue 13, attack 4) can trade, but cannot take the account over:
/// no MFA enrolment with its own authenticator, no new tokens, no ending the owner's sessions,
/// no password change, not even a look at the sessions.
#[tokio::test]
async fn account_security_needs_the_person_not_a_token() {
    let app = spawn_app().await;
    let (b, _) = app.user("owner@example.com").await;
    let (tid, secret) = token_for(&b, &["trade"]).await;
    let t = bearer(&secret);
    let sessions: Value = b.get_json("/api/v1/me/sessions").await;
    let handle = sessions[0]["id"].as_str().unwrap().to_owned();
    let attempts = [
        (Method::POST, "/api/v1/me/mfa/totp".to_owned(), Some(json!({}))),
        (Method::POST, "/api/v1/me/mfa/totp/confirm".to_owned(), Some(json!({"code": "123456"}))),
        (Method::DELETE, "/api/v1/me/mfa/totp".to_owned(), Some(json!({"password": PASSWORD}))),
        (Method::GET, "/api/v1/me/sessions".to_owned(), None),
        (Method::DELETE, format!("/api/v1/me/sessions/{handle}"), None),
        (Method::GET, "/api/v1/me/tokens".to_owned(), None),
        (
            Method::POST,
            "/api/v1/me/tokens".to_owned(),
            Some(json!({"name": "x", "scopes": ["trade"], "password": PASSWORD})),
        ),
        (Method::DELETE, format!("/api/v1/me/tokens/{tid}"), None),
        (
            Method::POST,
            "/api/v1/me/password".to_owned(),
            Some(json!({"current_password": PASSWORD, "new_password": "another long passphrase"})),
        ),
    ];
    for (method, path, body) in attempts {
        let mut rb = t.request(method.clone(), app.url(&path));
        if let Some(body) = body {
            rb = rb.json(&body);
        }
        let (status, problem) = problem(rb.send().await.unwrap()).await;
        assert_eq!(status, 403, "{method} {path}: {problem}");
    }
    // The owner's session and the token itself are untouched.
    assert_eq!(b.get("/api/v1/me/sessions").await.status(), 200);
    assert_eq!(t.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);
    let me: Value = b.get_json("/api/v1/me").await;
    assert_eq!(me["user"]["mfa_enabled"], false);
}

/// Tokens made with an old password, or before the account was disabled, die with it
/// (issue 13, attack 7); enabling the account again does not bring them back.
#[tokio::test]
async fn tokens_are_revoked_by_a_password_change_and_by_disabling() {
    let app = spawn_app().await;
    let (b, _) = app.user("pw@example.com").await;
    let (_, secret) = token_for(&b, &["read"]).await;
    let t = bearer(&secret);
    assert_eq!(t.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);
    let r = b
        .post("/api/v1/me/password", json!({"current_password": PASSWORD, "new_password": "a brand new passphrase"}))
        .await;
    assert_eq!(r.status(), 200);
    assert_eq!(
        t.get(app.url("/api/v1/me")).send().await.unwrap().status(),
        401,
        "the token died with the old password"
    );

    let (admin, admin_id) = app.user("boss@example.com").await;
    app.promote(admin_id, "admin").await;
    let (u, uid) = app.user("staff@example.com").await;
    let (_, secret) = token_for(&u, &["trade"]).await;
    let t = bearer(&secret);
    assert_eq!(t.get(app.url("/api/v1/me")).send().await.unwrap().status(), 200);
    let path = format!("/api/v1/admin/users/{uid}");
    let patch = |disabled: bool| admin.send(Method::PATCH, &path, Some(json!({"disabled": disabled})));
    assert_eq!(patch(true).await.status(), 200);
    assert_eq!(t.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401);
    assert_eq!(patch(false).await.status(), 200);
    assert_eq!(t.get(app.url("/api/v1/me")).send().await.unwrap().status(), 401, "enabling again does not revive it");
    let tokens: Value = {
        let mut again = app.browser();
        assert_eq!(again.login("staff@example.com", PASSWORD, None).await.status(), 200);
        again.get_json("/api/v1/me/tokens").await
    };
    assert!(tokens[0]["revoked_at"].is_i64(), "{tokens}");
}

/// Without a configured token, `/metrics` is not served on the public address at all.
#[tokio::test]
async fn metrics_are_not_public_without_a_token() {
    let app = spawn_app().await;
    let r = reqwest::get(app.url("/metrics")).await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json", "a machine path keeps its problem document");
}

/// Forty wrong passwords sent at once (issue 13, attack 2): every attempt is counted before
/// its password is checked, so no more than the limit are ever verified, the rest are refused
/// unverified, and the account is locked for the right password too.
#[tokio::test]
async fn a_burst_of_parallel_guesses_verifies_no_more_than_the_limit() {
    let app = AppSettings { login_max_failures: 5, ..AppSettings::default() };
    let app = spawn_app_with(Config { app, ..Config::default() }).await;
    let _ = app.user("burst@example.com").await;
    let c = reqwest::Client::new();
    let url = app.url("/api/v1/auth/login");
    let guesses = (0..40).map(|i| {
        let (c, url) = (c.clone(), url.clone());
        async move {
            let body = json!({"email": "burst@example.com", "password": format!("wrong guess number {i}")});
            c.post(url).json(&body).send().await.unwrap().status()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let verified = statuses.iter().filter(|s| **s == 401).count();
    let refused = statuses.iter().filter(|s| **s == 429).count();
    assert_eq!(verified + refused, 40, "{statuses:?}");
    assert!(verified <= 5, "{verified} guesses were checked against a limit of 5");
    let checked = app.audit_events().await.iter().filter(|e| *e == "login_failure").count();
    assert!(checked <= 5, "{checked} failures audited");
    let right = c.post(url).json(&json!({"email": "burst@example.com", "password": PASSWORD})).send().await.unwrap();
    assert_eq!(right.status(), 429, "locked, even for the right password");
}

/// A stolen session is no password oracle (issue 13, attack 5): failed re-authentications
/// count like failed sign-ins, back off, and at the limit end the session.
#[tokio::test]
async fn failed_reauthentication_backs_off_and_ends_the_session() {
    let clock = ManualClock::at(haechi_db::now_ms());
    let app = AppSettings { login_max_failures: 5, ..AppSettings::default() };
    let app = spawn_app_with(Config { app, clock: Some(clock.clone()), ..Config::default() }).await;
    let (b, _) = app.user("stolen@example.com").await;
    let guess = |n: u32| {
        b.post(
            "/api/v1/me/tokens",
            json!({"name": "x", "scopes": ["read"], "password": format!("guess {n} of the password")}),
        )
    };
    for n in 1..=2 {
        assert_eq!(problem(guess(n).await).await.0, 422);
    }
    assert_eq!(problem(guess(3).await).await.0, 422);
    assert_eq!(problem(guess(4).await).await.0, 429, "the third failure makes the next guess wait");
    for n in 4..=4 {
        clock.advance_ms(5_000);
        assert_eq!(problem(guess(n).await).await.0, 422);
    }
    clock.advance_ms(10_000);
    assert_eq!(problem(guess(5).await).await.0, 401, "the fifth failure ends the session");
    assert_eq!(b.get("/api/v1/me").await.status(), 401);
    assert!(app.audit_events().await.contains(&"session_ended_reauth".to_owned()));
    // The account itself is not locked: its owner signs in again.
    let mut again = app.browser();
    assert_eq!(again.login("stolen@example.com", PASSWORD, None).await.status(), 200);
}

/// A registration flood from one address (issue 13, attack 1): the address gets its hourly
/// allowance and then 429s, the hashing pool bounds the argon2 work (and memory) in flight,
/// and nothing answers 500.
#[tokio::test]
async fn a_registration_flood_from_one_address_is_bounded() {
    let app = AppSettings { registrations_per_hour: 10, ..AppSettings::default() };
    let app = spawn_app_with(Config { app, ..Config::default() }).await;
    let c = reqwest::Client::new();
    let url = app.url("/api/v1/auth/register");
    let flood = (0..60).map(|i| {
        let (c, url) = (c.clone(), url.clone());
        async move {
            let body = json!({"email": format!("flood{i}@example.com"), "display_name": "flood", "password": PASSWORD});
            let r = c.post(url).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.headers().contains_key("retry-after"))
        }
    });
    let answers = futures_util::future::join_all(flood).await;
    let count = |code: u16| answers.iter().filter(|(s, _)| *s == code).count();
    assert_eq!(count(202) + count(503) + count(429), 60, "{answers:?}");
    assert_eq!(count(202) + count(503), 10, "ten registrations were let through to hashing: {answers:?}");
    assert!(count(202) >= 1);
    assert!(answers.iter().filter(|(s, _)| *s != 202).all(|(_, retry)| *retry), "refusals say when to retry");
    assert!(
        haechi_app::auth::password::peak_in_flight() <= 8,
        "argon2 in flight at once: {}",
        haechi_app::auth::password::peak_in_flight()
    );
    assert_eq!(reqwest::get(app.url("/healthz")).await.unwrap().status(), 200);
}

/// Forty honest sign-ins at once from one school address: the address's limit slows the
/// burst down (`429`, retry in a second) but does not lock the school out; right after, every
/// one of them signs in.
#[tokio::test]
async fn a_burst_of_honest_sign_ins_from_one_address_is_slowed_not_locked() {
    let app = AppSettings { login_max_failures: 2, registrations_per_hour: 100, ..AppSettings::default() };
    let app = spawn_app_with(Config { app, ..Config::default() }).await;
    let c = reqwest::Client::new();
    for i in 0..40 {
        let body = json!({"email": format!("pupil{i}@example.com"), "display_name": "pupil", "password": PASSWORD});
        assert_eq!(c.post(app.url("/api/v1/auth/register")).json(&body).send().await.unwrap().status(), 202);
    }
    let url = app.url("/api/v1/auth/login");
    let sign_in = |i: usize| {
        let (c, url) = (c.clone(), url.clone());
        async move {
            let body = json!({"email": format!("pupil{i}@example.com"), "password": PASSWORD});
            let r = c.post(url).json(&body).send().await.unwrap();
            (r.status().as_u16(), r.headers().get("retry-after").map(|v| v.to_str().unwrap().to_owned()))
        }
    };
    let answers = futures_util::future::join_all((0..40).map(sign_in)).await;
    assert!(answers.iter().all(|(s, _)| *s == 200 || *s == 429), "{answers:?}");
    assert!(answers.iter().filter(|(s, _)| *s == 429).all(|(_, r)| r.as_deref() == Some("1")), "{answers:?}");
    // No lock: each one that was told to wait gets in when it tries again (one at a time).
    for (i, (status, _)) in answers.iter().enumerate() {
        if *status == 429 {
            assert_eq!(sign_in(i).await.0, 200, "pupil{i}");
        }
    }
}

/// Sixty one-time codes at once with the right password (issue 13, attack 2, its second half):
/// codes are counted like passwords before they are checked, so no more than the limit are
/// tried, and then even the right code is refused.
#[tokio::test]
async fn a_burst_of_one_time_codes_checks_no_more_than_the_limit() {
    let clock = ManualClock::at(1_800_000_000_000);
    let app = AppSettings { login_max_failures: 5, ..AppSettings::default() };
    let app = spawn_app_with(Config { app, clock: Some(clock.clone()), ..Config::default() }).await;
    let (b, _) = app.user("codes@example.com").await;
    let enrol: Value = b.post("/api/v1/me/mfa/totp", json!({})).await.json().await.unwrap();
    let secret = enrol["secret"].as_str().unwrap().to_owned();
    let code_at = |ms: i64| haechi_app::auth::totp::code_at(&secret, u64::try_from(ms / 1000).unwrap()).unwrap();
    let r = b.post("/api/v1/me/mfa/totp/confirm", json!({"code": code_at(clock.now_ms())})).await;
    assert_eq!(r.status(), 200);
    let right = code_at(clock.now_ms() + 30_000);
    // Codes of the steps around now are all accepted (clock skew): guess none of them.
    let valid: Vec<String> = [-30_000, 0, 30_000, 60_000].iter().map(|d| code_at(clock.now_ms() + d)).collect();
    let wrong: Vec<String> =
        (0..100_000u32).map(|i| format!("{:06}", i * 7)).filter(|g| !valid.contains(g)).take(60).collect();
    let c = reqwest::Client::new();
    let url = app.url("/api/v1/auth/login");
    let guesses = wrong.into_iter().map(|guess| {
        let (c, url) = (c.clone(), url.clone());
        async move {
            let body = json!({"email": "codes@example.com", "password": PASSWORD, "totp_code": guess});
            c.post(url).json(&body).send().await.unwrap().status().as_u16()
        }
    });
    let statuses = futures_util::future::join_all(guesses).await;
    let checked = statuses.iter().filter(|s| **s == 401).count();
    assert_eq!(checked + statuses.iter().filter(|s| **s == 429).count(), 60, "{statuses:?}");
    assert!(checked <= 5, "{checked} codes were checked against a limit of 5");
    let body = json!({"email": "codes@example.com", "password": PASSWORD, "totp_code": right});
    assert_eq!(c.post(url).json(&body).send().await.unwrap().status(), 429, "locked, even for the right code");
}
