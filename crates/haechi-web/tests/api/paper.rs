//! Paper trading over HTTP: the `trade` scope, `Idempotency-Key` (replay, another body, in
//! flight), refusals as problem documents, ownership as 404s, the live stream, and the portal's
//! pages answering HTML.

use crate::helpers::{PASSWORD, bearer, load_market, problem, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::time::Duration;

async fn token(b: &crate::helpers::Browser, scopes: &[&str]) -> String {
    let r = b.post("/api/v1/me/tokens", json!({"name": "t", "scopes": scopes, "password": PASSWORD})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    r.json::<Value>().await.unwrap()["token"].as_str().unwrap().to_owned()
}

#[tokio::test]
async fn orders_need_the_trade_scope_and_an_idempotency_key_replays_the_first_answer() {
    let app = spawn_app().await;
    load_market(&app, 3).await;
    let (b, user_id) = app.user("trader@example.com").await;
    let trade = bearer(&token(&b, &["read", "trade"]).await);
    let read = bearer(&token(&b, &["read"]).await);
    let r = trade
        .post(app.url("/api/v1/accounts"))
        .json(&json!({"name": "연습", "cash": 10_000_000}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let ticket: Value = read.get(app.url("/api/v1/market/tickers/100010")).send().await.unwrap().json().await.unwrap();
    let lower = ticket["lower"].as_i64().unwrap();
    let body = json!({"ticker": "100010", "side": "buy", "type": "limit", "price": lower, "quantity": 1});
    let orders = app.url(&format!("/api/v1/accounts/{id}/orders"));
    // A read-only token may look, not trade.
    let r = read.post(&orders).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::FORBIDDEN);
    assert_eq!(read.get(&orders).send().await.unwrap().status(), StatusCode::OK);

    let first = trade.post(&orders).header("idempotency-key", "order-1").json(&body).send().await.unwrap();
    assert_eq!(first.status(), StatusCode::CREATED);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let first: Value = first.json().await.unwrap();
    assert_eq!(first["state"], "accepted");
    // The retry gets the same order back, not a second one.
    let again = trade.post(&orders).header("idempotency-key", "order-1").json(&body).send().await.unwrap();
    assert_eq!(again.status(), StatusCode::CREATED);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.json::<Value>().await.unwrap()["id"], first["id"]);
    // The same key with another body is refused by name.
    let other = json!({"ticker": "100010", "side": "buy", "type": "limit", "price": lower, "quantity": 2});
    let (status, p) =
        problem(trade.post(&orders).header("idempotency-key", "order-1").json(&other).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    assert_eq!(p["errors"][0]["field"], "Idempotency-Key");
    // A key whose first request is still being processed: 409.
    let fingerprint = format!("POST /api/v1/accounts/{id}/orders\n{}", serde_json::to_string(&other).unwrap());
    let hash = haechi_app::auth::sha256_hex(&fingerprint);
    app.test_db.db.claim_idempotency_key(user_id, "order-2", &hash).await.unwrap();
    let (status, _) =
        problem(trade.post(&orders).header("idempotency-key", "order-2").json(&other).send().await.unwrap()).await;
    assert_eq!(status, StatusCode::CONFLICT);
    let listed: Value = read.get(&orders).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["total"], 1, "one order for three requests with its key");

    // A refusal is a problem document with the stable reason and the stored rejected order.
    let below = json!({"ticker": "100010", "side": "buy", "type": "limit", "price": lower - 1, "quantity": 1});
    let (status, p) = problem(trade.post(&orders).json(&below).send().await.unwrap()).await;
    assert_eq!((status, p["type"].as_str().unwrap()), (StatusCode::UNPROCESSABLE_ENTITY, "/problems/order-rejected"));
    // One won below the lower limit: outside the band (and off the grid, unless the tick is 1).
    assert!(["outside_price_limit", "off_tick"].contains(&p["reason"].as_str().unwrap()), "{p}");
    assert!(p["reason_ko"].as_str().unwrap().contains("가격"), "{p}");
    assert_eq!(p["order"]["state"], "rejected");
    // The same order again at once needs a confirmation; confirmed, it is placed.
    let (status, p) = problem(trade.post(&orders).json(&body).send().await.unwrap()).await;
    assert_eq!((status, p["reason"].as_str().unwrap()), (StatusCode::UNPROCESSABLE_ENTITY, "confirm_duplicate"));
    assert_eq!(p["errors"][0]["field"], "confirm");
    let mut confirmed = body.clone();
    confirmed["confirm"] = json!(true);
    let r = trade.post(&orders).json(&confirmed).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let second: Value = r.json().await.unwrap();
    // Bad input names the field.
    let (status, p) = problem(
        trade
            .post(&orders)
            .json(&json!({"ticker": "ABC", "side": "buy", "type": "limit", "price": 1000, "quantity": 0}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY);
    let fields: Vec<&str> = p["errors"].as_array().unwrap().iter().map(|e| e["field"].as_str().unwrap()).collect();
    assert_eq!(fields, ["ticker", "quantity"]);

    // Another user sees none of it.
    let (b2, _) = app.user("other@example.com").await;
    let stranger = bearer(&token(&b2, &["read", "trade"]).await);
    for path in [
        format!("/api/v1/accounts/{id}"),
        format!("/api/v1/accounts/{id}/orders"),
        format!("/api/v1/orders/{}", first["id"]),
    ] {
        assert_eq!(stranger.get(app.url(&path)).send().await.unwrap().status(), StatusCode::NOT_FOUND, "{path}");
    }
    let r = stranger.delete(app.url(&format!("/api/v1/orders/{}", second["id"]))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    // The owner cancels; the reservation is freed.
    let r = trade.delete(app.url(&format!("/api/v1/orders/{}", second["id"]))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::OK);
    assert_eq!(r.json::<Value>().await.unwrap()["state"], "cancelled");
    let acct: Value = read.get(app.url(&format!("/api/v1/accounts/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(acct["reserved"], first["reserved"]);
    assert_eq!(acct["available"].as_i64().unwrap(), 10_000_000 - first["reserved"].as_i64().unwrap());

    // Performance, by the run report's definitions: nothing closed yet, nothing earned.
    let perf: Value =
        read.get(app.url(&format!("/api/v1/accounts/{id}/performance"))).send().await.unwrap().json().await.unwrap();
    assert_eq!((perf["sessions"].as_i64(), perf["total_return"].as_f64()), (Some(0), Some(0.0)));

    // The live stream opens with the account.
    let mut stream = read.get(app.url(&format!("/api/v1/accounts/{id}/events"))).send().await.unwrap();
    assert_eq!(stream.status(), StatusCode::OK);
    let chunk = tokio::time::timeout(Duration::from_secs(10), stream.chunk()).await.unwrap().unwrap().unwrap();
    let text = String::from_utf8_lossy(&chunk);
    assert!(text.starts_with("event: account"), "{text}");
    assert!(text.contains(&format!("\"id\":{id}")), "{text}");

    // Every order and refusal is audited.
    let events = app.audit_events().await;
    assert!(events.iter().filter(|e| *e == "paper_order_placed").count() >= 2);
    assert!(events.iter().any(|e| e == "paper_order_rejected"));
    assert!(events.iter().any(|e| e == "paper_order_cancelled"));

    // The portal's pages are pages.
    let r = b.get(&format!("/accounts/{id}")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(
        html.contains("id=\"order-form\"") && html.contains("100010"),
        "the account page has its ticket and orders"
    );
    let r = b2.get(&format!("/accounts/{id}")).await;
    assert_eq!(r.status(), StatusCode::NOT_FOUND);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    // The account's report is the run report's page, under the account's name; the owner's only.
    let r = b.get(&format!("/accounts/{id}/report")).await;
    assert_eq!(r.status(), StatusCode::OK);
    let html = r.text().await.unwrap();
    assert!(html.contains("<h1>연습 · 성과 보고서</h1>") && html.contains("id=\"positions\""), "{html}");
    assert!(html.contains("id=\"report-note\"") && !html.contains("id=\"orders\""), "orders stay on the account page");
    assert_eq!(b2.get(&format!("/accounts/{id}/report")).await.status(), StatusCode::NOT_FOUND);
    let csv = b.get(&format!("/accounts/{id}/report/trades.csv")).await;
    assert_eq!(csv.status(), StatusCode::OK);
    assert!(csv.text().await.unwrap().contains("ticker,entry_date,exit_date"));
}

/// The WebSocket for app clients: the account at once and again after an order changes it;
/// refused from another site's page, to a stranger, and without a handshake — each by name.
#[tokio::test]
async fn the_account_socket_pushes_changes_and_refuses_other_sites_and_strangers() {
    use tokio_tungstenite::tungstenite::client::IntoClientRequest as _;
    let app = spawn_app().await;
    load_market(&app, 3).await;
    let (b, _) = app.user("socket@example.com").await;
    let (read_token, trade) = (token(&b, &["read"]).await, bearer(&token(&b, &["read", "trade"]).await));
    let r = trade.post(app.url("/api/v1/accounts")).json(&json!({"name": "소켓", "cash": 10_000_000})).send().await;
    let id = r.unwrap().json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let path = format!("/api/v1/accounts/{id}/socket");
    let ws_url = app.url(&path).replacen("http://", "ws://", 1);
    let request = |origin: Option<&str>| {
        let mut req = ws_url.as_str().into_client_request().unwrap();
        req.headers_mut().insert("authorization", format!("Bearer {read_token}").parse().unwrap());
        if let Some(o) = origin {
            req.headers_mut().insert("origin", o.parse().unwrap());
        }
        req
    };

    let host = app.url("").trim_start_matches("http://").trim_end_matches('/').to_owned();
    let (mut socket, _) = tokio_tungstenite::connect_async(request(Some(&format!("http://{host}")))).await.unwrap();
    let first = next_json(&mut socket).await;
    assert_eq!((first["event"].as_str(), first["data"]["id"].as_i64()), (Some("account"), Some(id)), "{first}");
    let ticket: Value = trade.get(app.url("/api/v1/market/tickers/100010")).send().await.unwrap().json().await.unwrap();
    let body = json!({"ticker": "100010", "side": "buy", "type": "limit", "price": ticket["lower"], "quantity": 3});
    let r = trade.post(app.url(&format!("/api/v1/accounts/{id}/orders"))).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED);
    let changed = next_json(&mut socket).await;
    assert!(changed["data"]["version"].as_i64() > first["data"]["version"].as_i64(), "{changed}");
    assert!(changed["data"]["reserved"].as_i64().unwrap() > 0, "the order's reservation shows: {changed}");

    // Another site's page cannot open it with the user's cookies.
    let err = tokio_tungstenite::connect_async(request(Some("https://evil.example"))).await.unwrap_err();
    assert!(matches!(&err, tokio_tungstenite::tungstenite::Error::Http(r) if r.status() == 403), "{err:?}");
    // A stranger gets the 404 any other account path gives.
    let (b2, _) = app.user("socket-stranger@example.com").await;
    let stranger = token(&b2, &["read"]).await;
    let mut req = ws_url.as_str().into_client_request().unwrap();
    req.headers_mut().insert("authorization", format!("Bearer {stranger}").parse().unwrap());
    let err = tokio_tungstenite::connect_async(req).await.unwrap_err();
    assert!(matches!(&err, tokio_tungstenite::tungstenite::Error::Http(r) if r.status() == 404), "{err:?}");
    // A plain GET is told what is missing, as a problem document.
    let (status, p) = problem(bearer(&read_token).get(app.url(&path)).send().await.unwrap()).await;
    assert_eq!((status, p["type"].as_str()), (StatusCode::UPGRADE_REQUIRED, Some("/problems/upgrade-required")), "{p}");
}

/// The next message of a WebSocket, as JSON.
async fn next_json<S>(socket: &mut S) -> Value
where
    S: futures_util::Stream<
            Item = Result<tokio_tungstenite::tungstenite::Message, tokio_tungstenite::tungstenite::Error>,
        > + Unpin,
{
    use futures_util::StreamExt as _;
    let msg = tokio::time::timeout(Duration::from_secs(10), socket.next()).await.unwrap().unwrap().unwrap();
    serde_json::from_str(msg.to_text().unwrap()).unwrap()
}

/// The portal's fail-safe controls: the loss halt lifts only with the password (a wrong one is
/// said on the page), and an administrator — no one else — halts the whole site from the
/// users page, which every order then meets.
#[tokio::test]
async fn the_portal_lifts_a_loss_halt_with_the_password_and_admins_halt_the_site() {
    let app = spawn_app().await;
    load_market(&app, 3).await;
    let (b, _) = app.user("halts@example.com").await;
    let trade = bearer(&token(&b, &["read", "trade"]).await);
    let r = trade.post(app.url("/api/v1/accounts")).json(&json!({"name": "정지", "cash": 10_000_000})).send().await;
    let id = r.unwrap().json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    let csrf = b.csrf.clone().unwrap();
    let lift = |password: &'static str| {
        b.client
            .post(app.url(&format!("/accounts/{id}/loss-halt")))
            .form(&[("_csrf", csrf.as_str()), ("password", password), ("totp_code", "")])
            .send()
    };
    let wrong = lift("not the password").await.unwrap();
    assert_eq!(wrong.status(), StatusCode::OK);
    assert!(wrong.text().await.unwrap().contains("비밀번호 또는 일회용 코드가 올바르지 않습니다"));
    let right = lift(PASSWORD).await.unwrap();
    assert!(right.text().await.unwrap().contains("일일 손실 한도 정지를 이번 거래일 동안 해제했습니다"));
    assert_eq!(app.audit_events().await.iter().filter(|e| *e == "paper_loss_halt_lifted").count(), 1);

    // Not an administrator: refused.
    let halt = |c: &reqwest::Client, csrf: String, halted: &'static str| {
        c.post(app.url("/admin/trading-halt")).form(&[("_csrf", csrf), ("halted", halted.to_owned())]).send()
    };
    assert_eq!(halt(&b.client, csrf.clone(), "1").await.unwrap().status(), StatusCode::FORBIDDEN);
    let (mut admin, admin_id) = app.user("halt-admin@example.com").await;
    app.promote(admin_id, "admin").await;
    assert_eq!(admin.login("halt-admin@example.com", PASSWORD, None).await.status(), StatusCode::OK);
    let page = halt(&admin.client, admin.csrf.clone().unwrap(), "1").await.unwrap().text().await.unwrap();
    assert!(page.contains("모든 모의계좌의 새 주문이 정지되어 있습니다"), "the users page says so");
    let ticket: Value = trade.get(app.url("/api/v1/market/tickers/100010")).send().await.unwrap().json().await.unwrap();
    let body = json!({"ticker": "100010", "side": "buy", "type": "limit", "price": ticket["lower"], "quantity": 1});
    let (status, p) =
        problem(trade.post(app.url(&format!("/api/v1/accounts/{id}/orders"))).json(&body).send().await.unwrap()).await;
    assert_eq!((status, p["reason"].as_str()), (StatusCode::UNPROCESSABLE_ENTITY, Some("site_halted")), "{p}");
    let page = halt(&admin.client, admin.csrf.clone().unwrap(), "0").await.unwrap().text().await.unwrap();
    assert!(page.contains("모의투자 주문을 받고 있습니다"));
    let r = trade.post(app.url(&format!("/api/v1/accounts/{id}/orders"))).json(&body).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::CREATED, "resumed: orders are taken again");
}
