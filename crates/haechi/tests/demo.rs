//! `haechi demo` end to end: on a fresh folder it migrates, loads a synthetic market, creates
//! the demo user (password printed once), three example scenarios with a finished run each,
//! and serves; the demo user then lists scenarios and fetches a report over the API. Run
//! again, it reuses the folder; `--reset` starts over and refuses folders it did not create.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use serde_json::{Value, json};
use std::io::{BufRead as _, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

struct Demo {
    child: Child,
    lines: mpsc::Receiver<String>,
    printed: Vec<String>,
}

impl Drop for Demo {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn command(dir: &Path, extra: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_haechi"));
    cmd.arg("demo").arg("--dir").arg(dir).args(extra);
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HAECHI_ADDR", "127.0.0.1:0")
        .env("HAECHI_LOG", "warn");
    cmd
}

/// Starts the demo and reads its output up to the line that says it is serving.
fn start(dir: &Path, extra: &[&str]) -> Demo {
    let mut child = command(dir, extra).stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
    let out = child.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut demo = Demo { child, lines: rx, printed: Vec::new() };
    let deadline = Instant::now() + Duration::from_secs(240);
    loop {
        let line = demo
            .lines
            .recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .unwrap_or_else(|_| panic!("the demo did not come up; it printed:\n{}", demo.printed.join("\n")));
        let serving = line.contains("Ctrl-C");
        demo.printed.push(line);
        if serving {
            return demo;
        }
    }
}

fn field(printed: &[String], label: &str) -> String {
    let line = printed.iter().find(|l| l.contains(label)).unwrap_or_else(|| panic!("no {label} in {printed:?}"));
    line.split_whitespace()
        .find(|w| w.starts_with("http://") || w.contains('@') || w.matches('-').count() == 3)
        .map_or_else(|| panic!("no value in {line:?}"), |w| w.trim_end_matches('/').to_owned())
}

async fn check_api(base: &str, password: &str) {
    let client = reqwest::Client::builder().cookie_store(true).build().unwrap();
    let r = client
        .post(format!("{base}/api/v1/auth/login"))
        .json(&json!({"email": "demo@haechi.local", "password": password}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "the printed password logs in");
    let scenarios: Value = client.get(format!("{base}/api/v1/scenarios")).send().await.unwrap().json().await.unwrap();
    assert_eq!(scenarios["total"], 3, "{scenarios}");
    let runs: Value =
        client.get(format!("{base}/api/v1/runs?state=succeeded")).send().await.unwrap().json().await.unwrap();
    assert_eq!(runs["total"], 3, "one finished run per example: {runs}");
    let id = runs["items"][0]["id"].as_i64().unwrap();
    let report: Value =
        client.get(format!("{base}/api/v1/runs/{id}/report")).send().await.unwrap().json().await.unwrap();
    assert_eq!(report["schema_version"], 1);
    assert!(report["equity_curve"].as_array().unwrap().len() > 1000, "a multi-year run");
    assert_eq!(report["data"]["synthetic"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_prepares_everything_serves_and_reuses_its_folder() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("demo-data");

    let demo = start(&dir, &[]);
    let base = field(&demo.printed, "Address");
    let password = field(&demo.printed, "Password");
    assert!(demo.printed.iter().any(|l| l.contains("demo@haechi.local")));
    check_api(&base, &password).await;
    // Without KIS keys the demo runs its fake KIS: it issues tokens and serves the demo market.
    let kis = field(&demo.printed, "fake KIS at");
    let http = reqwest::Client::new();
    let token: Value = http
        .post(format!("{kis}/oauth2/tokenP"))
        .json(&json!({"grant_type": "client_credentials", "appkey": "k", "appsecret": "s"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let bearer = token["access_token"].as_str().unwrap();
    let quote: Value = http
        .get(format!(
            "{kis}/uapi/domestic-stock/v1/quotations/inquire-price?FID_COND_MRKT_DIV_CODE=J&FID_INPUT_ISCD=100010"
        ))
        .header("authorization", format!("Bearer {bearer}"))
        .header("appkey", "k")
        .header("appsecret", "s")
        .header("tr_id", "FHKST01010100")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(quote["rt_cd"], "0", "{quote}");
    assert_ne!(quote["output"]["stck_prpr"], "0", "{quote}");
    let creds = std::fs::read_to_string(dir.join("demo-credentials.txt")).unwrap();
    assert!(creds.contains(&password));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(dir.join("demo-credentials.txt")).unwrap().permissions().mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    drop(demo);

    // Again: same folder, same user and runs, no new password.
    let again = start(&dir, &[]);
    assert!(!again.printed.iter().any(|l| l.contains(&password)), "the password is shown once");
    assert!(again.printed.iter().any(|l| l.contains("demo-credentials.txt")));
    check_api(&field(&again.printed, "Address"), &password).await;
    drop(again);

    // --reset starts over with a new password.
    let reset = start(&dir, &["--reset"]);
    let new_password = field(&reset.printed, "Password");
    assert_ne!(new_password, password);
    check_api(&field(&reset.printed, "Address"), &new_password).await;
    drop(reset);

    // It never deletes a folder it did not create.
    let foreign = tmp.path().join("precious");
    std::fs::create_dir_all(&foreign).unwrap();
    std::fs::write(foreign.join("thesis.txt"), "keep me").unwrap();
    let out = command(&foreign, &["--reset", "--no-serve"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("will not delete"));
    assert!(foreign.join("thesis.txt").exists());
}
