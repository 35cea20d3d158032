//! The risk API over HTTP: failed sign-ins against an account become its threat event, which
//! only its owner reads and acknowledges; the portal page shows it.

use crate::helpers::{problem, spawn_app};
use reqwest::StatusCode;
use serde_json::{Value, json};

#[tokio::test]
async fn failed_sign_ins_become_an_event_only_the_owner_sees_and_acknowledges() {
    let app = spawn_app().await;
    let (owner, _) = app.user("owner@example.com").await;
    let (other, _) = app.user("other@example.com").await;
    // Signed out: 401 as a problem document.
    let (status, _) = problem(app.browser().get("/api/v1/me/risk").await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    // Five wrong passwords (the fifth reaches the lockout's limit): a burst, from one address.
    for _ in 0..5 {
        let mut b = app.browser();
        let r = b.login("owner@example.com", "not the password at all", None).await;
        assert!(r.status().is_client_error());
    }
    // The scans of failed sign-ins run in the background.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    let risk: Value = loop {
        let risk: Value = owner.get_json("/api/v1/me/risk").await;
        // The event is stored first, the score when the scan ends.
        if risk["score"] != 0 || std::time::Instant::now() > deadline {
            break risk;
        }
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    };
    let events = risk["events"].as_array().unwrap();
    assert_eq!(events.len(), 1, "{risk}");
    assert_eq!(events[0]["kind"], "failed_signin_burst");
    assert_eq!(events[0]["severity"], "warning");
    assert_eq!(events[0]["source"], "security");
    assert_eq!(events[0]["evidence"]["security.failed_signins_1h"], 5.0);
    assert_eq!(risk["components"]["security"], 30);
    assert_eq!(risk["score"], 30);
    let id = events[0]["id"].as_i64().unwrap();
    // Another user neither sees nor acknowledges it.
    let theirs: Value = other.get_json("/api/v1/me/risk").await;
    assert!(theirs["events"].as_array().unwrap().is_empty());
    let (status, body) =
        problem(other.post(&format!("/api/v1/me/risk/events/{id}/acknowledge"), json!({})).await).await;
    assert_eq!(status, StatusCode::NOT_FOUND, "{body}");
    // The portal page shows it, in Korean.
    let page = owner.get("/risk").await.text().await.unwrap();
    assert!(page.contains("로그인 실패 급증"), "{page}");
    let r = owner.post(&format!("/api/v1/me/risk/events/{id}/acknowledge"), json!({})).await;
    assert_eq!(r.status(), StatusCode::NO_CONTENT);
    let risk: Value = owner.get_json("/api/v1/me/risk").await;
    assert!(risk["events"][0]["acknowledged_at"].is_i64());
    assert!(app.audit_events().await.iter().any(|e| e == "threat_event_acknowledged"));
}
