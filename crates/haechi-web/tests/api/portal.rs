//! The portal's pages over HTTP (the browser E2E tests come with the rest of the portal):
//! sign-in with CSRF and the TOTP step, the dashboard, sign-out, language, escaping, assets.

use crate::helpers::{PASSWORD, spawn_app};
use reqwest::{Client, StatusCode, redirect};
use serde_json::{Value, json};

fn client() -> Client {
    Client::builder().cookie_store(true).redirect(redirect::Policy::none()).build().unwrap()
}

/// The value of the hidden input `name` in `html`.
fn hidden(html: &str, name: &str) -> String {
    let at = html.find(&format!("name=\"{name}\" value=\"")).unwrap_or_else(|| panic!("no {name} in {html}"));
    let rest = &html[at + name.len() + 15..];
    rest[..rest.find('"').unwrap()].to_owned()
}

async fn register(base: &str, email: &str, name: &str) {
    let r = Client::new()
        .post(format!("{base}/api/v1/auth/register"))
        .json(&json!({"email": email, "display_name": name, "password": PASSWORD}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::ACCEPTED);
}

async fn sign_in(c: &Client, base: &str, email: &str, code: Option<&str>) -> reqwest::Response {
    let page = c.get(format!("{base}/login")).send().await.unwrap().text().await.unwrap();
    let mut form =
        vec![("email", email.to_owned()), ("password", PASSWORD.to_owned()), ("_form", hidden(&page, "_form"))];
    if let Some(code) = code {
        form.push(("totp_code", code.to_owned()));
    }
    c.post(format!("{base}/login")).form(&form).send().await.unwrap()
}

#[tokio::test]
async fn sign_in_dashboard_and_sign_out_with_csrf_checked() {
    let app = spawn_app().await;
    register(&app.base, "portal@example.com", "민지 <b>").await;
    let c = client();
    let anon = c.get(app.url("/")).send().await.unwrap();
    assert_eq!((anon.status().as_u16(), anon.headers()["location"].to_str().unwrap()), (303, "/login"));

    let login = c.get(app.url("/login")).send().await.unwrap();
    assert_eq!(login.status(), 200);
    assert!(login.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let csp = login.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(csp.contains("default-src 'self'") && !csp.contains("unsafe-inline"), "{csp}");
    let html = login.text().await.unwrap();
    assert!(html.contains("<html lang=\"ko\">") && html.contains("로그인"), "Korean by default");
    assert!(html.contains("<label for=\"email\">") && html.contains("id=\"email\""), "labelled inputs");
    assert!(!html.contains("<script>"), "no inline script");

    let r = sign_in(&c, &app.base, "portal@example.com", None).await;
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/"));
    let dash = c.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(dash.contains("님, 안녕하세요") && !dash.contains("민지 <b>"), "escaped: {dash}");
    assert!(dash.contains("최근 실행") && dash.contains("아직 실행한 시나리오가 없습니다"));
    let csrf = hidden(&dash, "_csrf");

    // The session cookie alone cannot sign out (or do anything unsafe): the form's token counts.
    let forged = c.post(app.url("/logout")).form(&[("_csrf", "forged")]).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    assert_eq!(c.get(app.url("/")).send().await.unwrap().status(), 200, "still signed in");
    let out = c.post(app.url("/logout")).form(&[("_csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!((out.status().as_u16(), out.headers()["location"].to_str().unwrap()), (303, "/login"));
    assert_eq!(c.get(app.url("/")).send().await.unwrap().status(), 303, "signed out");
}

#[tokio::test]
async fn a_sign_in_without_the_form_token_is_refused_and_bad_passwords_say_so() {
    let app = spawn_app().await;
    register(&app.base, "csrf@example.com", "csrf").await;
    // A cross-site form post carries no form token (the cookie is SameSite=Strict).
    let r = client()
        .post(app.url("/login"))
        .form(&[("email", "csrf@example.com"), ("password", PASSWORD), ("_form", "guess")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    assert!(r.headers().get_all("set-cookie").iter().all(|c| !c.to_str().unwrap().starts_with("haechi_session=")));
    assert!(r.text().await.unwrap().contains("양식이 만료되었습니다"));

    let c = client();
    let page = c.get(app.url("/login?lang=en")).send().await.unwrap().text().await.unwrap();
    let r = c
        .post(app.url("/login"))
        .form(&[("email", "csrf@example.com"), ("password", "wrong password!"), ("_form", &hidden(&page, "_form"))])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    let html = r.text().await.unwrap();
    assert!(html.contains("The email or password is wrong.") && html.contains("role=\"alert\""), "{html}");
    assert!(html.contains("value=\"csrf@example.com\""), "the email is kept");
}

#[tokio::test]
async fn the_totp_step_asks_for_a_code_and_accepts_a_good_one() {
    let app = spawn_app().await;
    let (b, _) = app.user("mfa@example.com").await;
    let enrol: Value = b.post("/api/v1/me/mfa/totp", json!({})).await.json().await.unwrap();
    let secret = enrol["secret"].as_str().unwrap().to_owned();
    let now = crate::helpers::away_from_step_boundary().await;
    let code_at = |t: u64| haechi_app::auth::totp::code_at(&secret, t).unwrap();
    let r = b.post("/api/v1/me/mfa/totp/confirm", json!({"code": code_at(now)})).await;
    assert_eq!(r.status(), 200);

    let c = client();
    let r = sign_in(&c, &app.base, "mfa@example.com", None).await;
    assert_eq!(r.status(), 401);
    let html = r.text().await.unwrap();
    assert!(html.contains("2단계 인증이 켜져 있습니다") && html.contains("name=\"totp_code\""), "{html}");
    let r = sign_in(&c, &app.base, "mfa@example.com", Some("000000")).await;
    assert_eq!(r.status(), 401);
    assert!(r.text().await.unwrap().contains("인증 코드가 맞지 않거나"));
    let r = sign_in(&c, &app.base, "mfa@example.com", Some(&code_at(now + 30))).await;
    assert_eq!(r.status(), 303);
    assert_eq!(c.get(app.url("/")).send().await.unwrap().status(), 200);
}

#[tokio::test]
async fn language_is_switchable_and_remembered_and_assets_are_served() {
    let app = spawn_app().await;
    let c = client();
    let r = c.get(app.url("/login?lang=en")).send().await.unwrap();
    assert!(r.headers().get_all("set-cookie").iter().any(|v| v.to_str().unwrap().starts_with("haechi_lang=en")));
    assert!(r.text().await.unwrap().contains("<html lang=\"en\">"));
    let again = c.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    assert!(again.contains("Sign in") && again.contains("href=\"?lang=ko\""), "remembered");
    for (path, kind) in [("/assets/portal.css", "text/css"), ("/assets/portal.js", "text/javascript")] {
        let r = c.get(app.url(path)).send().await.unwrap();
        assert_eq!(r.status(), 200);
        assert!(r.headers()["content-type"].to_str().unwrap().starts_with(kind));
    }
    assert_eq!(c.get(app.url("/assets/../Cargo.toml")).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn registration_shows_the_apis_validation_next_to_each_field_then_signs_in() {
    let app = spawn_app().await;
    let c = client();
    let page = c.get(app.url("/register")).send().await.unwrap().text().await.unwrap();
    let token = hidden(&page, "_form");
    let r = c
        .post(app.url("/register"))
        .form(&[("email", "not-an-email"), ("display_name", ""), ("password", "short"), ("_form", &token)])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    let html = r.text().await.unwrap();
    for (id, text) in [
        ("email-error", "올바른 이메일 주소를 입력하세요."),
        ("display_name-error", "이름은 1~100자로 입력하세요."),
        ("password-error", "비밀번호는 12자 이상이어야"),
    ] {
        assert!(html.contains(&format!("id=\"{id}\">{text}")), "{id} in {html}");
    }
    assert!(html.contains("aria-invalid=\"true\"") && html.contains("value=\"not-an-email\""));

    let ok = [("email", "new@example.com"), ("display_name", "새 사용자"), ("password", PASSWORD), ("_form", &token)];
    let r = c.post(app.url("/register")).form(&ok).send().await.unwrap();
    assert_eq!((r.status().as_u16(), r.headers()["location"].to_str().unwrap()), (303, "/login?registered=1"));
    let notice = c.get(app.url("/login?registered=1")).send().await.unwrap().text().await.unwrap();
    assert!(notice.contains("가입 요청을 받았습니다"));
    // A taken address answers exactly like a new one (issue 13, attack 9): same redirect.
    let again = c.post(app.url("/register")).form(&ok).send().await.unwrap();
    assert_eq!((again.status().as_u16(), again.headers()["location"].to_str().unwrap()), (303, "/login?registered=1"));
    assert_eq!(sign_in(&c, &app.base, "new@example.com", None).await.status(), 303);
}

#[tokio::test]
async fn the_report_page_draws_charts_explains_metrics_and_pages_trades() {
    let app = crate::helpers::spawn_sim_app(12, haechi_jobs::RunnerOptions::default()).await;
    let (b, _) = app.user("report@example.com").await;
    let id = crate::runs::scenario(&b, crate::scenarios::sma_spec("report")).await;
    let run = crate::runs::start(&b, id).await;
    let run_id = run["id"].as_i64().unwrap();
    assert_eq!(crate::runs::wait_final(&b, run_id).await["state"], "succeeded");

    let c = client();
    assert_eq!(sign_in(&c, &app.base, "report@example.com", None).await.status(), 303);
    let dash = c.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(dash.contains(&format!("href=\"/runs/{run_id}\"")), "the dashboard links the report: {dash}");
    let r = c.get(app.url(&format!("/runs/{run_id}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert!(html.contains("<polyline class=\"equity\""), "equity line");
    assert!(html.contains("<polyline class=\"bench\""), "benchmark line");
    assert!(html.contains("<polygon class=\"drawdown\""), "drawdown area");
    assert!(html.contains("<rect class=\"hover\"") && html.contains("data-equity="), "hover targets");
    assert!(
        html.contains("<table class=\"heat\">") && html.contains("<th scope=\"row\">2020</th>"),
        "monthly heat map"
    );
    for name in ["최대 낙폭 (MDD)", "샤프 지수", "직전 최고점에서 가장 크게 떨어진 비율입니다"]
    {
        assert!(html.contains(name), "{name}");
    }
    assert!(!html.contains("style=\""), "no inline style: the CSP forbids it");

    let csv = c.get(app.url(&format!("/runs/{run_id}/trades.csv"))).send().await.unwrap();
    assert!(csv.headers()["content-disposition"].to_str().unwrap().contains("trades.csv"));
    let csv = csv.text().await.unwrap();
    assert!(csv.starts_with("\u{feff}ticker,entry_date,exit_date"), "{csv}");

    // Positions at the end and the orders, as the report has them.
    let report: Value = b.get(&format!("/api/v1/runs/{run_id}/report")).await.json().await.unwrap();
    let positions = report["positions"].as_array().unwrap();
    let section = &html[html.find("id=\"positions\"").unwrap()..html.find("id=\"orders\"").unwrap()];
    if positions.is_empty() {
        assert!(section.contains("기간 말에 보유한 종목이 없습니다"), "{section}");
    } else {
        assert_eq!(section.matches("<tr><td>").count(), positions.len(), "{section}");
        for p in positions {
            assert!(section.contains(&format!("<td>{}</td>", p["ticker"].as_str().unwrap())), "{p}");
        }
    }
    let placed = report["summary"]["orders"]["placed"].as_u64().unwrap();
    assert!(placed > 0);
    assert!(html.contains(&format!("<dt>접수된 주문</dt><dd>{placed}</dd>")), "order count shown");
    let orders = c.get(app.url(&format!("/runs/{run_id}/orders.csv"))).send().await.unwrap();
    assert!(orders.headers()["content-disposition"].to_str().unwrap().contains("orders.csv"));
    let orders = orders.text().await.unwrap();
    assert!(orders.starts_with("\u{feff}placed_on,executes_on,ticker,side"), "{orders}");
    assert_eq!(orders.lines().count() as u64, placed + 1, "a line per order");
    assert_eq!(c.get(app.url(&format!("/runs/{run_id}/secrets.txt"))).send().await.unwrap().status(), 404);

    // Someone else's run is not there at all.
    register(&app.base, "other@example.com", "other").await;
    let other = client();
    assert_eq!(sign_in(&other, &app.base, "other@example.com", None).await.status(), 303);
    assert_eq!(other.get(app.url(&format!("/runs/{run_id}"))).send().await.unwrap().status(), 404);
    assert_eq!(other.get(app.url(&format!("/runs/{run_id}/trades.csv"))).send().await.unwrap().status(), 404);
    assert_eq!(other.get(app.url(&format!("/runs/{run_id}/orders.csv"))).send().await.unwrap().status(), 404);
}

/// A report of another schema version is never drawn as if it were this one. Deterministic: the
/// run is polled to its end (the worker stores `report.json` before it finishes the run), the
/// document is replaced before anything views it, and cached reports are keyed by this server's
/// own store, so no other test's report at the same key can answer.
#[tokio::test]
async fn a_report_of_another_schema_version_shows_an_error_page_not_a_wrong_report() {
    use haechi_sim::report::{Report, SCHEMA_VERSION};
    let app = crate::helpers::spawn_sim_app(12, haechi_jobs::RunnerOptions::default()).await;
    let (b, owner) = app.user("schema@example.com").await;
    let id = crate::runs::scenario(&b, crate::scenarios::sma_spec("schema")).await;
    let run_id = crate::runs::start(&b, id).await["id"].as_i64().unwrap();
    let done = crate::runs::wait_final(&b, run_id).await;
    assert_eq!(done["state"], "succeeded", "{done}");

    // What the worker stored is the one report type, read back exactly.
    let key = format!("reports/{owner}/{run_id}/report.json");
    let stored = app.objects.get(&key).await.unwrap();
    let report = Report::from_json(&stored).unwrap();
    assert_eq!(report.to_json().unwrap(), stored.to_vec(), "the worker's JSON reads back to the same bytes");
    assert_eq!(serde_json::json!(report.summary.final_equity), done["figures"]["final_equity"]);

    let mut doc: Value = serde_json::from_slice(&stored).unwrap();
    let future = SCHEMA_VERSION + 1;
    doc["schema_version"] = json!(future);
    app.objects.put(&key, serde_json::to_vec(&doc).unwrap().into()).await.unwrap();

    let c = client();
    assert_eq!(sign_in(&c, &app.base, "schema@example.com", None).await.status(), 303);
    let r = c.get(app.url(&format!("/runs/{run_id}"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "a page, not a problem document");
    let html = r.text().await.unwrap();
    assert!(html.contains("보고서를 표시할 수 없습니다"), "{html}");
    assert!(
        html.contains(&format!("보고서 형식 {future}판")) && html.contains(&format!("{SCHEMA_VERSION}판을 읽으므로")),
        "{html}"
    );
    assert!(html.contains("<p role=\"alert\">"), "announced: {html}");
    assert!(!html.contains("<svg") && !html.contains("<table"), "no report is drawn: {html}");
    let en = c.get(app.url(&format!("/runs/{run_id}?lang=en"))).send().await.unwrap();
    assert_eq!(en.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let en = en.text().await.unwrap();
    assert!(
        en.contains(&format!("report format version {future}, and this server reads version {SCHEMA_VERSION}")),
        "{en}"
    );

    // A comparison including the run says the same rather than draw it.
    let other = crate::runs::start(&b, id).await["id"].as_i64().unwrap();
    assert_eq!(crate::runs::wait_final(&b, other).await["state"], "succeeded");
    let r = c.get(app.url(&format!("/runs/compare?ids={other}&ids={run_id}&lang=ko"))).send().await.unwrap();
    assert_eq!(r.status(), StatusCode::INTERNAL_SERVER_ERROR);
    assert!(r.text().await.unwrap().contains(&format!("보고서 형식 {future}판")));

    // A refusal is not remembered: the stored report, put back, is read and drawn.
    app.objects.put(&key, stored).await.unwrap();
    let r = c.get(app.url(&format!("/runs/{run_id}"))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.text().await.unwrap().contains("<polyline class=\"equity\""));
}

#[tokio::test]
async fn mfa_is_enrolled_from_the_security_page_and_then_asked_at_sign_in() {
    let app = spawn_app().await;
    register(&app.base, "enrol@example.com", "enrol").await;
    let c = client();
    assert_eq!(sign_in(&c, &app.base, "enrol@example.com", None).await.status(), 303);
    let page = c.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "_csrf");
    // The form's token is required, as on every unsafe request.
    assert_eq!(c.post(app.url("/account/mfa")).form(&[("_csrf", "nope")]).send().await.unwrap().status(), 403);
    let enrol = c.post(app.url("/account/mfa")).form(&[("_csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(enrol.status(), 200);
    let html = enrol.text().await.unwrap();
    assert!(html.contains("<svg") && !html.contains("<?xml"), "the QR code is inline SVG");
    let secret = {
        let at = html.find("id=\"totp-secret\">").unwrap() + 17;
        html[at..at + html[at..].find('<').unwrap()].to_owned()
    };
    let bad = c
        .post(app.url("/account/mfa/confirm"))
        .form(&[("_csrf", csrf.as_str()), ("code", "000000")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains(&secret), "the same secret is shown again");
    let now = crate::helpers::away_from_step_boundary().await;
    let code = haechi_app::auth::totp::code_at(&secret, now).unwrap();
    let ok = c
        .post(app.url("/account/mfa/confirm"))
        .form(&[("_csrf", csrf.as_str()), ("code", code.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let html = ok.text().await.unwrap();
    assert_eq!(html.matches("<li><code>").count(), 10, "ten recovery codes, shown once");
    let again = c.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(again.contains("남은 복구 코드: 10개") && !again.contains("<li><code>"));

    let fresh = client();
    assert_eq!(sign_in(&fresh, &app.base, "enrol@example.com", None).await.status(), 401, "now a code is needed");
    let code = haechi_app::auth::totp::code_at(&secret, now + 30).unwrap();
    assert_eq!(sign_in(&fresh, &app.base, "enrol@example.com", Some(&code)).await.status(), 303);
}

#[tokio::test]
async fn admins_and_auditors_read_the_logs_with_filters_and_investors_do_not() {
    let app = spawn_app().await;
    let (_admin_b, admin_id) = app.user("admin@example.com").await;
    app.promote(admin_id, "admin").await;
    let (_inv_b, _) = app.user("investor@example.com").await;
    // Something to find: a failed sign-in (401) in the access log, and its audit entry.
    let c = client();
    let page = c.get(app.url("/login")).send().await.unwrap().text().await.unwrap();
    let _ = c
        .post(app.url("/login"))
        .form(&[
            ("email", "investor@example.com"),
            ("password", "wrong password!!"),
            ("_form", &hidden(&page, "_form")),
        ])
        .send()
        .await
        .unwrap();

    let admin = client();
    assert_eq!(sign_in(&admin, &app.base, "admin@example.com", None).await.status(), 303);
    let dash = admin.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(dash.contains("href=\"/admin/logs\""), "admins see the admin link");
    let access = admin.get(app.url("/admin/logs?log=access&status=401")).send().await.unwrap();
    assert_eq!(access.status(), 200);
    let html = access.text().await.unwrap();
    assert!(html.contains("<td>/login</td>") && html.contains("<td class=\"num\">401</td>"), "{html}");
    assert!(!html.contains("<td class=\"num\">200</td>"), "the status filter applies");
    let audit =
        admin.get(app.url("/admin/logs?log=audit&kind=login_failure")).send().await.unwrap().text().await.unwrap();
    assert!(audit.contains("<td>login_failure</td>") && !audit.contains("<td>login_success</td>"), "{audit}");

    let investor = client();
    assert_eq!(sign_in(&investor, &app.base, "investor@example.com", None).await.status(), 303);
    let dash = investor.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(!dash.contains("href=\"/admin/logs\""), "investors do not");
    assert_eq!(investor.get(app.url("/admin/logs")).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn a_scenario_is_written_checked_saved_and_run_from_the_portal() {
    let app = crate::helpers::spawn_sim_app(12, haechi_jobs::RunnerOptions::default()).await;
    register(&app.base, "editor@example.com", "editor").await;
    let c = client();
    assert_eq!(sign_in(&c, &app.base, "editor@example.com", None).await.status(), 303);
    let page = c.get(app.url("/scenarios/new")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("[strategy]"), "an example to start from");
    let csrf = hidden(&page, "_csrf");
    let toml = |fast: u32| {
        format!(
            "name = \"포털\"\ncapital = 10_000_000\n[period]\nstart = 2019-06-03\nend = 2021-12-30\n[universe]\ntickers = [\"100010\", \"100020\"]\n[strategy]\ntype = \"sma_cross\"\nfast = {fast}\nslow = 20\n"
        )
    };
    let bad = c
        .post(app.url("/scenarios/new"))
        .form(&[("_csrf", csrf.as_str()), ("toml", toml(30).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let html = bad.text().await.unwrap();
    assert!(html.contains("id=\"scenario-errors\"") && html.contains("<code>strategy"), "{html}");
    assert!(html.contains("fast = 30"), "the text is kept for fixing");
    let ok = c
        .post(app.url("/scenarios/new"))
        .form(&[("_csrf", csrf.as_str()), ("toml", toml(5).as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    let at = ok.headers()["location"].to_str().unwrap().to_owned();
    assert!(at.starts_with("/scenarios/") && at.ends_with("?created=1"), "{at}");
    let scenario_page = c.get(app.url(&at)).send().await.unwrap().text().await.unwrap();
    assert!(scenario_page.contains("포털") && scenario_page.contains("sma_cross"));
    let id: i64 = at.trim_start_matches("/scenarios/").trim_end_matches("?created=1").parse().unwrap();
    let run = c.post(app.url(&format!("/scenarios/{id}/run"))).form(&[("_csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(run.status(), 303);
    assert!(run.headers()["location"].to_str().unwrap().starts_with("/runs/"));
    // Without the form's token nothing runs.
    assert_eq!(
        c.post(app.url(&format!("/scenarios/{id}/run"))).form(&[("_csrf", "x")]).send().await.unwrap().status(),
        403
    );
}

#[tokio::test]
async fn two_to_five_finished_runs_compare_side_by_side() {
    let app = crate::helpers::spawn_sim_app(12, haechi_jobs::RunnerOptions::default()).await;
    let (b, _) = app.user("compare@example.com").await;
    let id = crate::runs::scenario(&b, crate::scenarios::sma_spec("compare")).await;
    let mut runs = Vec::new();
    for _ in 0..2 {
        let r = crate::runs::start(&b, id).await["id"].as_i64().unwrap();
        assert_eq!(crate::runs::wait_final(&b, r).await["state"], "succeeded");
        runs.push(r);
    }
    let c = client();
    assert_eq!(sign_in(&c, &app.base, "compare@example.com", None).await.status(), 303);
    let dash = c.get(app.url("/")).send().await.unwrap().text().await.unwrap();
    assert!(dash.contains(&format!("name=\"ids\" value=\"{}\"", runs[0])), "runs can be picked on the dashboard");
    let r = c.get(app.url(&format!("/runs/compare?ids={}&ids={}", runs[0], runs[1]))).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let html = r.text().await.unwrap();
    assert_eq!(html.matches("<polyline class=\"series s").count(), 2, "one line per run");
    assert!(html.contains(&format!("<a href=\"/runs/{}\">#{}</a>", runs[1], runs[1])));
    assert!(html.contains("최대 낙폭 (MDD)"));
    let one = c.get(app.url(&format!("/runs/compare?ids={}", runs[0]))).send().await.unwrap();
    assert_eq!(one.status(), 422);
    // Another user's run cannot be slipped into a comparison.
    register(&app.base, "stranger@example.com", "stranger").await;
    let s = client();
    assert_eq!(sign_in(&s, &app.base, "stranger@example.com", None).await.status(), 303);
    let r = s.get(app.url(&format!("/runs/compare?ids={}&ids={}", runs[0], runs[1]))).send().await.unwrap();
    assert_eq!(r.status(), 404);
}

#[tokio::test]
async fn admins_change_roles_and_disable_accounts_but_not_their_own() {
    let app = spawn_app().await;
    let (_a, admin_id) = app.user("boss@example.com").await;
    app.promote(admin_id, "admin").await;
    let (_u, user_id) = app.user("member@example.com").await;
    let c = client();
    assert_eq!(sign_in(&c, &app.base, "boss@example.com", None).await.status(), 303);
    let page = c.get(app.url("/admin/users")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("member@example.com") && page.contains("<option value=\"analyst\""));
    let csrf = hidden(&page, "_csrf");
    let r = c
        .post(app.url(&format!("/admin/users/{user_id}")))
        .form(&[("_csrf", csrf.as_str()), ("role", "analyst")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert_eq!(app.test_db.db.user_by_id(user_id).await.unwrap().unwrap().role, "analyst");
    let r = c
        .post(app.url(&format!("/admin/users/{user_id}")))
        .form(&[("_csrf", csrf.as_str()), ("disabled", "true")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(app.test_db.db.user_by_id(user_id).await.unwrap().unwrap().disabled);
    assert!(app.audit_events().await.iter().any(|e| e == "role_changed"));
    let own = c
        .post(app.url(&format!("/admin/users/{admin_id}")))
        .form(&[("_csrf", csrf.as_str()), ("role", "investor")])
        .send()
        .await
        .unwrap();
    assert_eq!(own.status(), 422);
    assert!(own.text().await.unwrap().contains("자기 자신의 역할을 낮추거나"));
    assert_eq!(app.test_db.db.user_by_id(admin_id).await.unwrap().unwrap().role, "admin");

    register(&app.base, "plain@example.com", "plain").await;
    let plain = client();
    assert_eq!(sign_in(&plain, &app.base, "plain@example.com", None).await.status(), 303);
    assert_eq!(plain.get(app.url("/admin/users")).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn the_security_page_lists_and_ends_sessions_and_revokes_tokens() {
    let app = spawn_app().await;
    let (b, _) = app.user("devices@example.com").await; // one session through the API
    let r = b.post("/api/v1/me/tokens", json!({"name": "phone", "scopes": ["read"], "password": PASSWORD})).await;
    assert_eq!(r.status(), StatusCode::CREATED);
    let c = client();
    assert_eq!(sign_in(&c, &app.base, "devices@example.com", None).await.status(), 303);
    let page = c.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("지금 이 기기"));
    assert_eq!(
        page.matches("<span class=\"state\">지금 이 기기</span>").count(),
        1,
        "this session is marked, not endable"
    );
    assert!(page.matches("/end\"").count() >= 1, "the API's session can be ended");
    assert!(page.contains("phone"));
    let csrf = hidden(&page, "_csrf");
    let links = |html: &str, prefix: &str| -> Vec<String> {
        html.match_indices(prefix).map(|(at, _)| html[at..at + html[at..].find('"').unwrap()].to_owned()).collect()
    };
    for end in links(&page, "/account/sessions/") {
        assert_eq!(c.post(app.url(&end)).form(&[("_csrf", csrf.as_str())]).send().await.unwrap().status(), 303);
    }
    assert_eq!(b.get("/api/v1/me").await.status(), 401, "the API session ended");
    let revoke = links(&page, "/account/tokens/").remove(0);
    assert_eq!(c.post(app.url(&revoke)).form(&[("_csrf", csrf.as_str())]).send().await.unwrap().status(), 303);
    let after = c.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(after.contains("폐기됨") && !after.contains("/end\""));
    // Someone else's session is not found.
    register(&app.base, "thief@example.com", "thief").await;
    let thief = client();
    assert_eq!(sign_in(&thief, &app.base, "thief@example.com", None).await.status(), 303);
    let tpage = thief.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    let tcsrf = hidden(&tpage, "_csrf");
    let victim = c.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(victim.contains("지금 이 기기"));
    assert_eq!(thief.post(app.url(&revoke)).form(&[("_csrf", tcsrf.as_str())]).send().await.unwrap().status(), 404);
}

#[tokio::test]
async fn the_scenario_list_searches_and_filters_with_the_apis_query() {
    let app = spawn_app().await;
    let (b, _) = app.user("lister@example.com").await;
    for (name, strategy) in [("성장주 모멘텀", "momentum"), ("배당 리밸런싱", "rebalance"), ("골든크로스 100%", "sma")]
    {
        let spec = match strategy {
            "momentum" => {
                json!({"name": name, "capital": 10_000_000, "period": {"start": "2019-06-03", "end": "2021-12-30"},
                "universe": {"all": true}, "strategy": {"type": "momentum_rotation", "lookback": 60, "top_n": 3, "frequency": "monthly"}})
            }
            "rebalance" => {
                json!({"name": name, "capital": 10_000_000, "period": {"start": "2019-06-03", "end": "2021-12-30"},
                "universe": {"tickers": ["100010", "100020"]}, "strategy": {"type": "rebalance", "frequency": "quarterly", "weights": {"100010": 0.5, "100020": 0.4}}})
            }
            _ => crate::scenarios::sma_spec(name),
        };
        let r = b.post("/api/v1/scenarios", json!({"spec": spec})).await;
        assert_eq!(r.status(), StatusCode::CREATED, "{}", r.text().await.unwrap());
    }
    let c = client();
    assert_eq!(sign_in(&c, &app.base, "lister@example.com", None).await.status(), 303);
    let all = c.get(app.url("/scenarios")).send().await.unwrap().text().await.unwrap();
    assert_eq!(all.matches("<tr><td><a href=\"/scenarios/").count(), 3);
    let found = c.get(app.url("/scenarios?q=%EB%AA%A8%EB%A9%98%ED%85%80")).send().await.unwrap().text().await.unwrap();
    assert_eq!(found.matches("<tr><td><a href=\"/scenarios/").count(), 1, "search 모멘텀");
    assert!(found.contains("성장주 모멘텀"));
    let literal = c.get(app.url("/scenarios?q=100%25")).send().await.unwrap().text().await.unwrap();
    assert_eq!(literal.matches("<tr><td><a href=\"/scenarios/").count(), 1, "% is a literal, not a wildcard");
    let by_strategy = c.get(app.url("/scenarios?strategy=rebalance")).send().await.unwrap().text().await.unwrap();
    assert_eq!(by_strategy.matches("<tr><td><a href=\"/scenarios/").count(), 1);
    assert!(by_strategy.contains("<option value=\"rebalance\" selected>"));
    let shared = c.get(app.url("/scenarios?scope=shared")).send().await.unwrap().text().await.unwrap();
    assert!(shared.contains("조건에 맞는 시나리오가 없습니다."));
}

#[tokio::test]
async fn scenarios_are_edited_into_versions_diffed_and_restored() {
    let app = spawn_app().await;
    register(&app.base, "versions@example.com", "versions").await;
    let c = client();
    assert_eq!(sign_in(&c, &app.base, "versions@example.com", None).await.status(), 303);
    let page = c.get(app.url("/scenarios/new")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "_csrf");
    let toml = |fast: u32| {
        format!(
            "name = \"버전\"\ncapital = 10_000_000\n[period]\nstart = 2019-06-03\nend = 2021-12-30\n[universe]\ntickers = [\"100010\"]\n[strategy]\ntype = \"sma_cross\"\nfast = {fast}\nslow = 20\n"
        )
    };
    let r = c
        .post(app.url("/scenarios/new"))
        .form(&[("_csrf", csrf.as_str()), ("toml", toml(5).as_str())])
        .send()
        .await
        .unwrap();
    let at = r.headers()["location"].to_str().unwrap().trim_end_matches("?created=1").to_owned();
    let edit = format!("{at}/edit");
    let r = c
        .post(app.url(&edit))
        .form(&[
            ("_csrf", csrf.as_str()),
            ("toml", toml(10).as_str()),
            ("message", "빠른 선 10"),
            ("base_version", "1"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let page = c.get(app.url(&format!("{at}?diff=1"))).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("빠른 선 10") && page.contains("<td>2</td>"), "version 2 in the history");
    assert!(
        page.contains("<code>strategy.fast</code>")
            && page.contains("<code>5</code>")
            && page.contains("<code>10</code>"),
        "{page}"
    );
    // A save based on an old version is refused, not silently overwriting version 2.
    let stale = c
        .post(app.url(&edit))
        .form(&[("_csrf", csrf.as_str()), ("toml", toml(7).as_str()), ("base_version", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(stale.status(), 409);
    assert!(stale.text().await.unwrap().contains("더 새 버전이 저장되었습니다"));
    let invalid = c
        .post(app.url(&edit))
        .form(&[("_csrf", csrf.as_str()), ("toml", toml(30).as_str()), ("base_version", "2")])
        .send()
        .await
        .unwrap();
    assert_eq!(invalid.status(), 422);
    let restore =
        c.post(app.url(&format!("{at}/versions/1/restore"))).form(&[("_csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(restore.status(), 303);
    let page = c.get(app.url(&at)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("restored version 1") && page.contains("fast = 5"), "version 3 is version 1 again");
}

#[tokio::test]
async fn owners_share_scenarios_read_only_and_unknown_emails_are_named() {
    let app = spawn_app().await;
    register(&app.base, "sharer@example.com", "sharer").await;
    register(&app.base, "reader@example.com", "reader").await;
    let c = client();
    assert_eq!(sign_in(&c, &app.base, "sharer@example.com", None).await.status(), 303);
    let page = c.get(app.url("/scenarios/new")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "_csrf");
    let toml = "name = \"공유\"\ncapital = 10_000_000\n[period]\nstart = 2019-06-03\nend = 2021-12-30\n[universe]\ntickers = [\"100010\"]\n[strategy]\ntype = \"sma_cross\"\nfast = 5\nslow = 20\n";
    let r = c.post(app.url("/scenarios/new")).form(&[("_csrf", csrf.as_str()), ("toml", toml)]).send().await.unwrap();
    let at = r.headers()["location"].to_str().unwrap().trim_end_matches("?created=1").to_owned();
    let bad = c
        .post(app.url(&format!("{at}/shares")))
        .form(&[("_csrf", csrf.as_str()), ("emails", "reader@example.com\nnobody@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    assert!(bad.text().await.unwrap().contains("nobody@example.com"), "the unknown email is named");
    let ok = c
        .post(app.url(&format!("{at}/shares")))
        .form(&[("_csrf", csrf.as_str()), ("emails", "reader@example.com")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 303);
    let reader = client();
    assert_eq!(sign_in(&reader, &app.base, "reader@example.com", None).await.status(), 303);
    let list = reader.get(app.url("/scenarios?scope=shared")).send().await.unwrap().text().await.unwrap();
    assert!(list.contains("공유") && list.contains("공유받음"));
    let view = reader.get(app.url(&at)).send().await.unwrap().text().await.unwrap();
    assert!(
        view.contains("읽기만 할 수 있습니다")
            && !view.contains("id=\"save-version\"")
            && !view.contains("id=\"run-scenario\"")
    );
    let rcsrf = hidden(&view, "_csrf");
    let r = reader
        .post(app.url(&format!("{at}/edit")))
        .form(&[("_csrf", rcsrf.as_str()), ("toml", toml), ("base_version", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403, "readers cannot save");
}

#[tokio::test]
async fn admins_set_the_two_factor_policy_per_role() {
    let app = spawn_app().await;
    let (_a, admin_id) = app.user("policy@example.com").await;
    app.promote(admin_id, "admin").await;
    let c = client();
    assert_eq!(sign_in(&c, &app.base, "policy@example.com", None).await.status(), 303);
    let page = c.get(app.url("/admin/users")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "_csrf");
    let r = c
        .post(app.url("/admin/policies"))
        .form(&[("_csrf", csrf.as_str()), ("require_mfa", "analyst"), ("require_mfa", "auditor")])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    assert!(app.test_db.db.role_requires_mfa("analyst").await.unwrap());
    assert!(app.test_db.db.role_requires_mfa("auditor").await.unwrap());
    assert!(!app.test_db.db.role_requires_mfa("investor").await.unwrap());
    assert!(app.audit_events().await.iter().any(|e| e == "role_policy_changed"));
    let page = c.get(app.url("/admin/users?policy=1")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("정책을 저장했습니다.") && page.contains("value=\"analyst\" checked"));
    assert_eq!(c.post(app.url("/admin/policies")).form(&[("_csrf", "forged")]).send().await.unwrap().status(), 403);
}

#[tokio::test]
async fn api_tokens_are_created_from_the_security_page_after_the_password() {
    let app = spawn_app().await;
    register(&app.base, "minter@example.com", "minter").await;
    let c = client();
    assert_eq!(sign_in(&c, &app.base, "minter@example.com", None).await.status(), 303);
    let page = c.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "_csrf");
    let wrong = c
        .post(app.url("/account/tokens"))
        .form(&[("_csrf", csrf.as_str()), ("name", "phone"), ("scope", "read"), ("password", "not my password!")])
        .send()
        .await
        .unwrap();
    assert_eq!(wrong.status(), 422);
    assert!(wrong.text().await.unwrap().contains("비밀번호나 인증 코드가 맞지 않습니다."));
    let none = c
        .post(app.url("/account/tokens"))
        .form(&[("_csrf", csrf.as_str()), ("name", "phone"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(none.status(), 422, "at least one scope");
    let ok = c
        .post(app.url("/account/tokens"))
        .form(&[("_csrf", csrf.as_str()), ("name", "phone"), ("scope", "read"), ("days", "30"), ("password", PASSWORD)])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let html = ok.text().await.unwrap();
    let at = html.find("id=\"new-token\">").unwrap() + 15;
    let token = &html[at..at + html[at..].find('<').unwrap()];
    let me = crate::helpers::bearer(token).get(app.url("/api/v1/me")).send().await.unwrap();
    assert_eq!(me.status(), 200, "the new token works");
    let again = c.get(app.url("/account")).send().await.unwrap().text().await.unwrap();
    assert!(!again.contains(token), "shown once");
}

/// The `value` of the input with id `id`.
fn input_value(html: &str, id: &str) -> String {
    let at = html.find(&format!("id=\"{id}\"")).unwrap_or_else(|| panic!("no #{id}"));
    let tag = &html[at..at + html[at..].find('>').unwrap()];
    tag.split("value=\"").nth(1).map_or_else(String::new, |v| v[..v.find('"').unwrap()].to_owned())
}

#[tokio::test]
// Long on purpose: the form walked field by field, as a person fills it in.
async fn the_scenario_form_has_a_field_per_setting_and_shows_korean_problems_at_each() {
    let app = spawn_app().await;
    register(&app.base, "form@example.com", "form").await;
    let c = client();
    assert_eq!(sign_in(&c, &app.base, "form@example.com", None).await.status(), 303);
    let page = c.get(app.url("/scenarios/new")).send().await.unwrap().text().await.unwrap();
    // The example fills the form; every setting has its input.
    assert_eq!(input_value(&page, "f-capital"), "100,000,000");
    assert_eq!(input_value(&page, "f-sma_cross-fast"), "20");
    assert_eq!(input_value(&page, "f-period-start"), "2016-01-04");
    for id in [
        "f-name",
        "f-description",
        "f-benchmark",
        "f-period-end",
        "f-universe-kind",
        "f-universe-tickers",
        "f-universe-markets",
        "f-strategy-type",
        "f-rebalance-weights",
        "f-rebalance-frequency",
        "f-momentum_rotation-lookback",
        "f-momentum_rotation-skip",
        "f-momentum_rotation-top_n",
        "f-momentum_rotation-frequency",
        "f-rsi_reversion-period",
        "f-rsi_reversion-oversold",
        "f-rsi_reversion-overbought",
        "f-sizing-type",
        "f-sizing-value",
        "f-execution-fill",
        "f-execution-tax_basis",
        "f-execution-slippage_bps",
        "f-execution-participation",
        "f-execution-commission_rate",
        "f-execution-liquidate_at_end",
        "f-risk-max_order_value",
        "f-risk-max_position_weight",
        "f-risk-cash_reserve",
    ] {
        assert!(page.contains(&format!("id=\"{id}\"")), "no input #{id}");
    }
    assert!(page.contains("<label for=\"f-capital\">투자 원금 (원)"), "labelled in Korean");
    let csrf = hidden(&page, "_csrf");
    let form = |fast: &str, capital: &str, cash: &str| {
        vec![
            ("_csrf", csrf.clone()),
            ("editor", "form".to_owned()),
            ("name", "폼으로 만든 시나리오".to_owned()),
            ("capital", capital.to_owned()),
            ("benchmark", "KS11".to_owned()),
            ("period.start", "2019-06-03".to_owned()),
            ("period.end", "2021-12-30".to_owned()),
            ("universe.kind", "tickers".to_owned()),
            ("universe.tickers", "100010, 100020".to_owned()),
            ("strategy.type", "sma_cross".to_owned()),
            ("sma_cross.fast", fast.to_owned()),
            ("sma_cross.slow", "20".to_owned()),
            // Another strategy's field: ignored.
            ("rsi_reversion.period", "1".to_owned()),
            ("sizing.type", "percent_of_equity".to_owned()),
            ("sizing.value", "9.5".to_owned()),
            ("execution.fill", "close".to_owned()),
            ("execution.liquidate_at_end", "true".to_owned()),
            ("risk.cash_reserve", cash.to_owned()),
        ]
    };
    let bad = c.post(app.url("/scenarios/new")).form(&form("30", "50,000", "0.9")).send().await.unwrap();
    assert_eq!(bad.status(), 422);
    let html = bad.text().await.unwrap();
    // Each problem next to its input, in Korean, and the input marked invalid.
    let slow = &html[html.find("data-field=\"sma_cross.slow\"").unwrap()..];
    let slow = &slow[..slow.find("</div>").unwrap()];
    assert!(slow.contains("aria-invalid=\"true\""), "{slow}");
    assert!(slow.contains("단기 이동평균 값(30)보다 커야 합니다. (입력: 20)"), "{slow}");
    let capital = &html[html.find("data-field=\"capital\"").unwrap()..];
    assert!(
        capital[..capital.find("</div>").unwrap()]
            .contains("100000 이상 10000000000000 이하여야 합니다. (입력: 50000)")
    );
    assert!(html.contains("0 이상 0.5 이하여야 합니다. (입력: 0.9)"), "cash reserve");
    assert!(!html.contains("must be"), "no English on the Korean page");
    assert!(html.contains("href=\"#f-sma_cross-slow\""), "the summary links to the field");
    // What was typed is kept, and the TOML view shows the same document.
    assert_eq!(input_value(&html, "f-sma_cross-fast"), "30");
    assert_eq!(input_value(&html, "f-capital"), "50,000");
    assert!(html.contains("fast = 30"), "the TOML view shows the form's document");
    // English pages show the API's English message.
    let en = c.post(app.url("/scenarios/new?lang=en")).form(&form("30", "50,000", "0.9")).send().await.unwrap();
    assert!(en.text().await.unwrap().contains("must be greater than strategy.fast (30), found 20"));
    // Nothing was stored.
    let listed: Value = c.get(app.url("/api/v1/scenarios")).send().await.unwrap().json().await.unwrap();
    assert_eq!(listed["total"], 0, "{listed}");

    let ok = c.post(app.url("/scenarios/new")).form(&form("5", "10,000,000", "0.05")).send().await.unwrap();
    assert_eq!(ok.status(), 303);
    let at = ok.headers()["location"].to_str().unwrap().to_owned();
    let id: i64 = at.trim_start_matches("/scenarios/").trim_end_matches("?created=1").parse().unwrap();
    let stored: Value = c.get(app.url(&format!("/api/v1/scenarios/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(
        stored["spec"],
        json!({
            "name": "폼으로 만든 시나리오",
            "capital": 10_000_000,
            "benchmark": "KS11",
            "period": {"start": "2019-06-03", "end": "2021-12-30"},
            "universe": {"tickers": ["100010", "100020"]},
            "strategy": {"type": "sma_cross", "fast": 5, "slow": 20},
            "sizing": {"type": "percent_of_equity", "percent": 9.5},
            "execution": {"fill": "close", "liquidate_at_end": true},
            "risk": {"cash_reserve": 0.05}
        }),
        "the form's document, nothing more"
    );

    // Editing through the form makes version 2; the page shows the stored values.
    let page = c.get(app.url(&at)).send().await.unwrap().text().await.unwrap();
    assert_eq!(input_value(&page, "f-sma_cross-fast"), "5");
    assert!(page.contains("value=\"percent_of_equity\" selected"), "the sizing choice is selected");
    let mut edit = form("10", "10,000,000", "");
    edit.push(("base_version", "1".to_owned()));
    edit.push(("message", "빠른 선 10일".to_owned()));
    let saved = c.post(app.url(&format!("/scenarios/{id}/edit"))).form(&edit).send().await.unwrap();
    assert_eq!(saved.status(), 303);
    let stored: Value = c.get(app.url(&format!("/api/v1/scenarios/{id}"))).send().await.unwrap().json().await.unwrap();
    assert_eq!(stored["current_version"], 2);
    assert_eq!(stored["spec"]["strategy"]["fast"], 10);
    assert!(stored["spec"].get("risk").is_none(), "an emptied field is removed: {stored}");
    // A second save from the same (now stale) page is refused, not lost silently.
    let stale = c.post(app.url(&format!("/scenarios/{id}/edit"))).form(&edit).send().await.unwrap();
    assert_eq!(stale.status(), 409);
}

/// Whatever goes wrong on a portal page, the browser gets an HTML page in its language with
/// the request id, never a JSON problem document; the API keeps answering problems.
#[tokio::test]
async fn errors_are_pages_in_the_browsers_language_never_json() {
    let app = spawn_app().await;
    register(&app.base, "pages@example.com", "pages").await;
    let c = client();
    assert_eq!(sign_in(&c, &app.base, "pages@example.com", None).await.status(), 303);
    let is_page = |r: &reqwest::Response| {
        r.headers()["content-type"].to_str().unwrap().starts_with("text/html")
            && r.headers().get("x-request-id").is_some()
    };
    // A run that does not exist (or is someone else's), in Korean and then in English.
    let r = c.get(app.url("/runs/999999")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(is_page(&r));
    let id = r.headers()["x-request-id"].to_str().unwrap().to_owned();
    let html = r.text().await.unwrap();
    assert!(html.contains("찾을 수 없습니다") && html.contains(&id) && !html.contains("/problems/"), "{html}");
    let r = c.get(app.url("/runs/999999?lang=en")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert!(r.text().await.unwrap().contains("Not found"));
    // An unsafe form post without the session's CSRF token.
    let r = c.post(app.url("/account/mfa")).form(&[("_csrf", "forged")]).send().await.unwrap();
    assert_eq!(r.status(), 403);
    assert!(is_page(&r));
    assert!(r.text().await.unwrap().contains("The form expired"), "language remembered from ?lang=en");
    // A method the route does not take, and a path parameter that is not a number.
    let r = c.delete(app.url("/scenarios")).send().await.unwrap();
    assert_eq!(r.status(), 405);
    assert!(is_page(&r));
    let r = c.get(app.url("/runs/abc")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(is_page(&r));
    // The API is not the portal: there a problem document stays a problem document.
    let r = c.get(app.url("/api/v1/runs/999999")).send().await.unwrap();
    assert_eq!(r.status(), 404);
    assert_eq!(r.headers()["content-type"], "application/problem+json");
}

/// A member of a role that requires two-factor authentication, not yet enrolled, reaches the
/// security page to enrol, and nothing else: other pages answer with a 403 page.
#[tokio::test]
async fn a_role_that_requires_mfa_leaves_unenrolled_members_the_security_page() {
    let app = spawn_app().await;
    let (admin, admin_id) = app.user("root@example.com").await;
    app.promote(admin_id, "admin").await;
    let r =
        admin.send(reqwest::Method::PUT, "/api/v1/admin/roles/investor/mfa", Some(json!({"require_mfa": true}))).await;
    assert_eq!(r.status(), 200, "{}", r.text().await.unwrap());
    register(&app.base, "new@example.com", "new").await;
    let c = client();
    assert_eq!(sign_in(&c, &app.base, "new@example.com", None).await.status(), 303);
    let account = c.get(app.url("/account")).send().await.unwrap();
    assert_eq!(account.status(), 200, "the security page stays open to enrol");
    let csrf = hidden(&account.text().await.unwrap(), "_csrf");
    let enrol = c.post(app.url("/account/mfa")).form(&[("_csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(enrol.status(), 200, "and enrolment starts there");
    let other = c.get(app.url("/scenarios")).send().await.unwrap();
    assert_eq!(other.status(), 403);
    assert!(other.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
}

#[tokio::test]
async fn a_sweep_is_started_from_the_scenario_page_shown_as_a_heat_map_and_a_point_opens_as_a_report() {
    let app = crate::helpers::spawn_sim_app(12, haechi_jobs::RunnerOptions::default()).await;
    register(&app.base, "sweep@example.com", "sweeper").await;
    let c = client();
    assert_eq!(sign_in(&c, &app.base, "sweep@example.com", None).await.status(), 303);
    let page = c.get(app.url("/scenarios/new")).send().await.unwrap().text().await.unwrap();
    let csrf = hidden(&page, "_csrf");
    let toml = "name = \"스윕\"\ncapital = 10_000_000\n[period]\nstart = 2019-06-03\nend = 2021-12-30\n[universe]\ntickers = [\"100010\", \"100020\", \"100030\"]\n[strategy]\ntype = \"sma_cross\"\nfast = 5\nslow = 20\n";
    let ok = c.post(app.url("/scenarios/new")).form(&[("_csrf", csrf.as_str()), ("toml", toml)]).send().await.unwrap();
    assert_eq!(ok.status(), 303);
    let at = ok.headers()["location"].to_str().unwrap().to_owned();
    let id: i64 = at.trim_start_matches("/scenarios/").trim_end_matches("?created=1").parse().unwrap();
    let scenario_page = c.get(app.url(&format!("/scenarios/{id}"))).send().await.unwrap().text().await.unwrap();
    assert!(
        scenario_page.contains("id=\"sweep-grid\"") && scenario_page.contains("strategy.fast=5..50:5"),
        "a grid to start from"
    );

    // A bad grid comes back on the scenario page with every problem, the text kept.
    let bad = c
        .post(app.url(&format!("/scenarios/{id}/sweep")))
        .form(&[("_csrf", csrf.as_str()), ("grid", "strategy.fastt=1..3\nstrategy.slow=9..1"), ("in_sample", "0.7")])
        .send()
        .await
        .unwrap();
    assert_eq!(bad.status(), 422);
    let html = bad.text().await.unwrap();
    assert!(html.contains("grid[1]") && html.contains("is empty"), "{html}");
    assert!(html.contains("strategy.fastt=1..3"), "the grid is kept for fixing");

    let started = c
        .post(app.url(&format!("/scenarios/{id}/sweep")))
        .form(&[("_csrf", csrf.as_str()), ("grid", "strategy.fast=3..9:3\nstrategy.slow=20,30"), ("in_sample", "0.7")])
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 303);
    let sweep_at = started.headers()["location"].to_str().unwrap().to_owned();
    assert!(sweep_at.starts_with("/sweeps/"), "{sweep_at}");
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let html = loop {
        let html = c.get(app.url(&sweep_at)).send().await.unwrap().text().await.unwrap();
        if html.contains("id=\"dsr\"") {
            break html;
        }
        assert!(std::time::Instant::now() < deadline, "the sweep did not finish: {html}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    assert!(html.contains("6/6"), "every point done");
    assert!(html.contains("id=\"sweep-heat\""), "a heat map");
    assert_eq!(html.matches("<th scope=\"row\">").count(), 2, "one row per strategy.slow value");
    assert!(html.contains("<th scope=\"col\" class=\"num\">9</th>"), "one column per strategy.fast value");
    assert!(html.contains("수축 샤프 비율"), "the deflated Sharpe ratio, explained in Korean");
    // Another metric on the heat map.
    let by_return = c.get(app.url(&format!("{sweep_at}?metric=total_return&x=1&y=0"))).send().await.unwrap();
    assert_eq!(by_return.status(), 200);
    let html2 = by_return.text().await.unwrap();
    assert_eq!(html2.matches("<th scope=\"row\">").count(), 3, "rows are strategy.fast now");

    // One parameter: one line of cells.
    let one = c
        .post(app.url(&format!("/scenarios/{id}/sweep")))
        .form(&[("_csrf", csrf.as_str()), ("grid", "execution.slippage_bps=0..20:5"), ("in_sample", "")])
        .send()
        .await
        .unwrap();
    assert_eq!(one.status(), 303);
    let one_at = one.headers()["location"].to_str().unwrap().to_owned();
    let html1 = loop {
        let html = c.get(app.url(&one_at)).send().await.unwrap().text().await.unwrap();
        if html.contains("id=\"dsr\"") {
            break html;
        }
        assert!(std::time::Instant::now() < deadline, "the one-axis sweep did not finish");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    };
    let heat = &html1[html1.find("id=\"sweep-heat\"").unwrap()..];
    let heat = &heat[..heat.find("</table>").unwrap()];
    assert_eq!(heat.matches("<th scope=\"row\">").count(), 1, "{heat}");
    assert_eq!(heat.matches("<td class=\"num h-").count(), 5, "a cell per slippage value: {heat}");

    // A point opens as a full report: a run of a new scenario holding its values.
    let sid: i64 = sweep_at.trim_start_matches("/sweeps/").parse().unwrap();
    let open =
        c.post(app.url(&format!("/sweeps/{sid}/points/4/run"))).form(&[("_csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(open.status(), 303);
    assert!(open.headers()["location"].to_str().unwrap().starts_with("/runs/"));
    // Without the token nothing runs; another user cannot see the sweep.
    let forged = c.post(app.url(&format!("/sweeps/{sid}/points/4/run"))).form(&[("_csrf", "x")]).send().await.unwrap();
    assert_eq!(forged.status(), 403);
    register(&app.base, "peek@example.com", "peek").await;
    let other = client();
    assert_eq!(sign_in(&other, &app.base, "peek@example.com", None).await.status(), 303);
    assert_eq!(other.get(app.url(&sweep_at)).send().await.unwrap().status(), 404);
}
