//! The portal in a real browser: `e2e/portal.mjs` (playwright-core driving Debian's headless
//! chromium) against a fresh `haechi serve`. Skipped when chromium or `e2e/node_modules` is
//! missing, unless `HAECHI_REQUIRE_E2E` is set (CI installs both with `.ci/e2e.sh`).
//! Screenshots land in `target/e2e-screenshots/`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The repository root and the browser, or `None` (the test skips) when chromium or
/// `e2e/node_modules` is missing and `HAECHI_REQUIRE_E2E` is not set.
fn browser() -> Option<(PathBuf, String)> {
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
    let chromium = std::env::var("HAECHI_CHROMIUM").unwrap_or_else(|_| "/usr/bin/chromium".into());
    let ready = root.join("e2e/node_modules/playwright-core").is_dir() && std::path::Path::new(&chromium).exists();
    if !ready {
        assert!(
            std::env::var_os("HAECHI_REQUIRE_E2E").is_none(),
            "browser tests required: install chromium and run `npm ci --prefix e2e` (see .ci/e2e.sh)"
        );
        eprintln!("skipping a browser test: no chromium at {chromium} or no e2e/node_modules");
        return None;
    }
    Some((root, chromium))
}

/// Runs `e2e/{script}` under node with `env`, saving its screenshots in `shots` (emptied first,
/// so a page renamed or removed leaves no old picture behind); fails with its output if it does.
fn run_script(root: &Path, chromium: &str, script: &str, shots: &str, env: &[(&str, String)]) -> PathBuf {
    let shots = root.join(shots);
    let _ = std::fs::remove_dir_all(&shots);
    let out = Command::new("node")
        .arg(root.join("e2e").join(script))
        .current_dir(root.join("e2e"))
        .envs(env.iter().map(|(k, v)| (*k, v.as_str())))
        .env("HAECHI_E2E_SHOTS", &shots)
        .env("HAECHI_CHROMIUM", chromium)
        .output()
        .expect("node (the e2e runner needs Node.js)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    eprintln!("{stdout}");
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    shots
}

#[test]
fn portal_in_headless_chromium() {
    let Some((root, chromium)) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    // A small market, so the browser can run a scenario and open its report.
    let load = Command::new(env!("CARGO_BIN_EXE_haechi"))
        .args(["data", "load", "--tickers", "12", "--from", "2019-01-01", "--to", "2021-12-31"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HAECHI_DATA_DIR", dir.path())
        .output()
        .unwrap();
    assert!(load.status.success(), "{}", String::from_utf8_lossy(&load.stderr));
    let admin = Command::new(env!("CARGO_BIN_EXE_haechi"))
        .args(["user", "create", "--email", "admin@e2e.local", "--role", "admin"])
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HAECHI_DATA_DIR", dir.path())
        .env("HAECHI_NEW_USER_PASSWORD", "correct horse battery staple e2e")
        .output()
        .unwrap();
    assert!(admin.status.success(), "{}", String::from_utf8_lossy(&admin.stderr));
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let base = format!("http://127.0.0.1:{port}");
    let _server = Server(
        Command::new(env!("CARGO_BIN_EXE_haechi"))
            .arg("serve")
            .env_clear()
            .env("PATH", std::env::var("PATH").unwrap_or_default())
            .env("HAECHI_DATA_DIR", dir.path())
            .env("HAECHI_ADDR", format!("127.0.0.1:{port}"))
            // Slow motion (3 ms a session, about 2 s a run) so the browser sees the progress.
            .env("HAECHI_RUN_SESSION_DELAY_US", "3000")
            .env("HAECHI_LOG", "warn")
            .stdout(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(started.elapsed() < Duration::from_secs(60), "haechi serve did not start");
        std::thread::sleep(Duration::from_millis(100));
    }
    let shots = run_script(&root, &chromium, "portal.mjs", "target/e2e-screenshots", &[("HAECHI_E2E_URL", base)]);
    assert!(std::fs::read_dir(&shots).unwrap().count() >= 17, "a screenshot per page in {}", shots.display());
}

/// The real `haechi demo` on a fresh folder, as a new user meets it: the browser signs in with
/// the password the demo printed, starts a new run of an example scenario in the portal and
/// sees it finish. Screenshots land in `target/e2e-screenshots-demo/`.
#[test]
fn the_real_demo_signs_in_with_its_printed_password_and_runs_a_scenario() {
    let Some((root, chromium)) = browser() else { return };
    let dir = tempfile::tempdir().unwrap();
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let mut child = Command::new(env!("CARGO_BIN_EXE_haechi"))
        .args(["demo", "--dir"])
        .arg(dir.path().join("demo"))
        .env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("HAECHI_ADDR", format!("127.0.0.1:{port}"))
        .env("HAECHI_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    // The demo prints its address, email and password once it is ready.
    let stdout = child.stdout.take().unwrap();
    let _server = Server(child);
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead as _;
        for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let (mut email, mut password) = (None, None);
    let deadline = Instant::now() + Duration::from_secs(300);
    while email.is_none() || password.is_none() {
        let left = deadline.saturating_duration_since(Instant::now());
        let line = rx.recv_timeout(left).expect("the demo printed its email and password");
        let value = |l: &str| l.split_once(':').map(|(_, v)| v.split_whitespace().next().unwrap_or("").to_owned());
        if line.contains("Email:") {
            email = value(&line);
        } else if line.contains("Password:") {
            password = value(&line);
        }
    }
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "the demo did not start serving");
        std::thread::sleep(Duration::from_millis(100));
    }
    let env = [
        ("HAECHI_E2E_URL", format!("http://127.0.0.1:{port}")),
        ("HAECHI_E2E_EMAIL", email.unwrap()),
        ("HAECHI_E2E_PASSWORD", password.unwrap()),
    ];
    run_script(&root, &chromium, "demo.mjs", "target/e2e-screenshots-demo", &env);
}
