//! A run started once the real `haechi demo` (and then `haechi serve` on the same folder) is
//! serving must finish. It once stayed `queued` forever: the serving workers took the worker id
//! of the demo's seeding workers, still registered, and died (`WORKER_ALREADY_EXISTS`). A clean
//! start logs no WARN or ERROR.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// A `haechi` process whose output is collected line by line; killed when dropped.
struct Haechi {
    child: Child,
    stdout: Arc<Mutex<Vec<String>>>,
    stderr: Arc<Mutex<Vec<String>>>,
    base: String,
}

impl Drop for Haechi {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn collect(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<Vec<String>>> {
    let lines = Arc::new(Mutex::new(Vec::new()));
    let sink = lines.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            sink.lock().unwrap().push(line);
        }
    });
    lines
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `haechi demo --dir DIR` or `haechi serve` over DIR, on a free port, logging at the default
/// level (INFO) so that any WARN or ERROR shows.
fn start(args: &[&str], dir: &Path) -> Haechi {
    start_with(args, dir, &[])
}

fn start_with(args: &[&str], dir: &Path, envs: &[(&str, &str)]) -> Haechi {
    let port = free_port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_haechi"))
        .args(args)
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HAECHI_ADDR", format!("127.0.0.1:{port}"))
        .env("HAECHI_DATA_DIR", dir)
        .envs(envs.iter().copied())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = collect(child.stdout.take().unwrap());
    let stderr = collect(child.stderr.take().unwrap());
    Haechi { child, stdout, stderr, base: format!("http://127.0.0.1:{port}") }
}

impl Haechi {
    fn output(&self) -> String {
        format!(
            "stdout:\n{}\nstderr:\n{}",
            self.stdout.lock().unwrap().join("\n"),
            self.stderr.lock().unwrap().join("\n")
        )
    }

    /// Waits until the server answers (the demo first prepares its market and example runs).
    async fn wait_serving(&mut self) {
        let http = reqwest::Client::new();
        let deadline = Instant::now() + Duration::from_secs(240);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                panic!("haechi exited with {status} before serving\n{}", self.output());
            }
            if let Ok(r) = http.get(format!("{}/healthz", self.base)).send().await
                && r.status() == 200
            {
                return;
            }
            assert!(Instant::now() < deadline, "not serving after 240 s\n{}", self.output());
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The password the demo printed once.
    fn printed_password(&self) -> String {
        let out = self.stdout.lock().unwrap();
        let line = out.iter().find(|l| l.contains("Password:")).unwrap_or_else(|| panic!("no password in {out:?}"));
        line.split_whitespace().skip_while(|w| *w != "Password:").nth(1).unwrap().to_owned()
    }

    fn assert_clean_log(&self) {
        let err = self.stderr.lock().unwrap();
        let bad: Vec<&String> = err.iter().filter(|l| l.contains(" WARN ") || l.contains(" ERROR ")).collect();
        assert!(bad.is_empty(), "a clean start logged warnings or errors:\n{}", self.output());
        // Proof that the log is read at all, at a level where a WARN would show.
        assert!(err.iter().any(|l| l.contains(" INFO ")), "no INFO line was captured:\n{}", self.output());
    }

    /// SIGTERM, then a graceful exit.
    fn stop(mut self) {
        let pid = self.child.id().to_string();
        assert!(Command::new("kill").args(["-TERM", &pid]).status().unwrap().success());
        let deadline = Instant::now() + Duration::from_secs(60);
        let status = loop {
            if let Some(s) = self.child.try_wait().unwrap() {
                break s;
            }
            assert!(Instant::now() < deadline, "no exit 60 s after SIGTERM\n{}", self.output());
            std::thread::sleep(Duration::from_millis(100));
        };
        assert!(status.success(), "exit status {status} after SIGTERM\n{}", self.output());
    }
}

/// A client signed in as the demo user, and its CSRF token.
async fn demo_client(base: &str, password: &str) -> (reqwest::Client, String) {
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let login = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "demo@haechi.local", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(login.status(), 200, "the demo password signs in");
    let csrf = login.json::<Value>().await.unwrap()["csrf_token"].as_str().unwrap().to_owned();
    (client, csrf)
}

/// Starts a new run of an example scenario over the API; returns its id.
async fn start_run(client: &reqwest::Client, csrf: &str, base: &str) -> i64 {
    let scenarios: Value = client.get(format!("{base}/api/v1/scenarios")).send().await.unwrap().json().await.unwrap();
    let scenario = scenarios["items"][0]["id"].as_i64().unwrap_or_else(|| panic!("no scenario: {scenarios}"));
    let started = client
        .post(format!("{base}/api/v1/scenarios/{scenario}/runs"))
        .header("x-csrf-token", csrf)
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    assert_eq!(started.status(), 202);
    started.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

/// Polls the run until it is in `want` (failing on any other final state).
async fn wait_state(client: &reqwest::Client, base: &str, run: i64, want: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let r: Value = client.get(format!("{base}/api/v1/runs/{run}")).send().await.unwrap().json().await.unwrap();
        let state = r["state"].as_str().unwrap();
        if state == want {
            return r;
        }
        assert!(matches!(state, "queued" | "running"), "run {run} ended {state}: {r}");
        assert!(Instant::now() < deadline, "run {run} not {want} after 120 s: {r}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Signs in as the demo user and starts a new run of an example scenario over the API; waits
/// for it to succeed.
async fn new_run_succeeds(base: &str, password: &str) {
    let (client, csrf) = demo_client(base, password).await;
    let run = start_run(&client, &csrf, base).await;
    let r = wait_state(&client, base, run, "succeeded").await;
    assert!(r["figures"]["final_equity"].is_number(), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_on_the_serving_demo_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let mut demo = start(&["demo", "--dir", dir.to_str().unwrap()], &dir);
    demo.wait_serving().await;
    new_run_succeeds(&demo.base, &demo.printed_password()).await;
    demo.assert_clean_log();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_started_on_serve_restarted_over_the_demo_folder_succeeds() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let mut demo = start(&["demo", "--dir", dir.to_str().unwrap()], &dir);
    demo.wait_serving().await;
    let password = demo.printed_password();
    demo.assert_clean_log();
    demo.stop();

    let mut serve = start(&["serve"], &dir);
    serve.wait_serving().await;
    new_run_succeeds(&serve.base, &password).await;
    serve.assert_clean_log();
    serve.stop();
}

/// SIGKILL of the demo while its own worker runs a job (issue 13, attack 11): the demo started
/// again over the same folder takes the run back and finishes it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_left_running_by_a_killed_demo_finishes_after_the_restart() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo");
    let dir_arg = dir.to_str().unwrap().to_owned();
    let mut demo = start(&["demo", "--dir", &dir_arg], &dir);
    demo.wait_serving().await;
    let password = demo.printed_password();
    demo.stop();
    // Slow motion (about 8 s a run), so the kill lands while the run is running.
    let mut slow = start_with(&["serve"], &dir, &[("HAECHI_RUN_SESSION_DELAY_US", "3000")]);
    slow.wait_serving().await;
    let (client, csrf) = demo_client(&slow.base, &password).await;
    let run = start_run(&client, &csrf, &slow.base).await;
    wait_state(&client, &slow.base, run, "running").await;
    let pid = slow.child.id().to_string();
    assert!(Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
    let _ = slow.child.wait();

    let mut again = start(&["demo", "--dir", &dir_arg], &dir);
    again.wait_serving().await;
    let (client, _) = demo_client(&again.base, &password).await;
    let r = wait_state(&client, &again.base, run, "succeeded").await;
    assert!(r["attempts"].as_i64().unwrap() >= 2, "the run was taken up again: {r}");
    // Taken back at start, not left to the queue's orphan timeout.
    let err = again.stderr.lock().unwrap().join("\n");
    assert!(err.contains("queued again") && err.contains(&format!("run_id={run}")), "{}", again.output());
}

/// The replayed market's matcher killed with SIGKILL mid-session (issue 15): restarted over the
/// same folder, it plays the session on from where it was, and the account ends the session
/// with exactly the fills of a demo whose matcher was never interrupted — none lost, none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_matcher_killed_mid_session_loses_and_doubles_no_fill() {
    let tmp = tempfile::tempdir().unwrap();
    // Sessions of 12 s, so the kill lands inside the first one.
    let fast = [("HAECHI_PAPER_REPLAY_SECS", "12")];
    let (a_dir, b_dir) = (tmp.path().join("killed"), tmp.path().join("reference"));
    let (a_arg, b_arg) = (a_dir.to_str().unwrap().to_owned(), b_dir.to_str().unwrap().to_owned());
    let mut a = start_with(&["demo", "--dir", &a_arg], &a_dir, &fast);
    let mut b = start_with(&["demo", "--dir", &b_arg], &b_dir, &fast);
    a.wait_serving().await;
    b.wait_serving().await;
    let (a_pw, b_pw) = (a.printed_password(), b.printed_password());
    let (client, _) = demo_client(&a.base, &a_pw).await;
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let m: Value = client.get(format!("{}/api/v1/market", a.base)).send().await.unwrap().json().await.unwrap();
        let progress = m["progress"].as_f64().unwrap_or(0.0);
        if m["mode"] == "replay" && progress > 0.3 && m["phase"] == "continuous" {
            break;
        }
        assert!(Instant::now() < deadline, "the replay never got going: {m}\n{}", a.output());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let pid = a.child.id().to_string();
    assert!(Command::new("kill").args(["-KILL", &pid]).status().unwrap().success());
    let _ = a.child.wait();
    let mut again = start_with(&["serve"], &a_dir, &fast);
    again.wait_serving().await;

    async fn closed_fills(base: &str, password: &str) -> Vec<(String, String, i64, i64, String)> {
        let (client, _) = demo_client(base, password).await;
        let deadline = Instant::now() + Duration::from_secs(90);
        loop {
            let equity: Value =
                client.get(format!("{base}/api/v1/accounts/1/equity")).send().await.unwrap().json().await.unwrap();
            if equity.as_array().is_some_and(|e| !e.is_empty()) {
                break;
            }
            assert!(Instant::now() < deadline, "the first replayed session never closed");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        let fills: Value = client
            .get(format!("{base}/api/v1/accounts/1/fills?per_page=200"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let orders: Value = client
            .get(format!("{base}/api/v1/accounts/1/orders?per_page=200"))
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        // Each order's filled quantity is the sum of its fills.
        for o in orders["items"].as_array().unwrap() {
            let sum: i64 = fills["items"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|f| f["order_id"] == o["id"])
                .map(|f| f["quantity"].as_i64().unwrap())
                .sum();
            assert_eq!(sum, o["filled"].as_i64().unwrap(), "order {o}");
        }
        let mut out: Vec<_> = fills["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|f| {
                (
                    f["ticker"].as_str().unwrap().to_owned(),
                    f["side"].as_str().unwrap().to_owned(),
                    f["quantity"].as_i64().unwrap(),
                    f["price"].as_i64().unwrap(),
                    f["trade_date"].as_str().unwrap().to_owned(),
                )
            })
            .collect();
        out.sort();
        out
    }
    let killed = closed_fills(&again.base, &a_pw).await;
    let reference = closed_fills(&b.base, &b_pw).await;
    assert!(!reference.is_empty(), "the demo's orders filled");
    assert_eq!(killed, reference, "{}", again.output());
    again.stop();
    b.stop();
}
