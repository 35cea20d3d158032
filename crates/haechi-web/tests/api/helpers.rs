//! `spawn_app()`: the real server on port 0 over a fresh database (SQLite, or MariaDB when
//! `HAECHI_TEST_MYSQL_URL` is set), and a few client helpers.

use haechi_app::{App, AppSettings, ManualClock, Services};
use haechi_db::testkit::TestDb;
use haechi_jobs::{MarketCache, Queue, QueueConfig, Runner, RunnerOptions, WorkerOptions};
use haechi_objects::Objects;
use haechi_objects::testkit::{TestObjects, TestObjectsGuard};
use haechi_web::WebSettings;
use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

pub struct TestApp {
    pub base: String,
    pub test_db: TestDb,
    pub objects: Objects,
    _objects_guard: TestObjectsGuard,
    _queue_dir: tempfile::TempDir,
    stop_workers: tokio::sync::watch::Sender<bool>,
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<std::io::Result<()>>>,
}

impl Drop for TestApp {
    fn drop(&mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        let _ = self.stop_workers.send(true);
    }
}

/// The Redis server for queue tests, e.g. `redis://127.0.0.1:6379/`; unset: the SQLite queue.
pub const REDIS_ENV: &str = "HAECHI_TEST_REDIS_URL";

/// What a test server is configured with: the HTTP edge's settings, the use cases' settings,
/// and optionally a clock the test moves.
#[derive(Debug, Clone, Default)]
pub struct Config {
    pub web: WebSettings,
    pub app: AppSettings,
    pub clock: Option<ManualClock>,
}

pub async fn spawn_app() -> TestApp {
    spawn_app_with(Config::default()).await
}

pub async fn spawn_app_with(config: Config) -> TestApp {
    spawn_full(config, RunnerOptions::default(), 0).await
}

/// A test queue: a fresh SQLite file, or a unique namespace on `HAECHI_TEST_REDIS_URL`.
pub async fn test_queue(dir: &std::path::Path) -> Queue {
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let cfg = match std::env::var(REDIS_ENV) {
        Ok(url) if !url.trim().is_empty() => QueueConfig::Redis {
            url: url.trim().to_owned(),
            namespace: format!(
                "haechi-test-{}-{}-{}",
                std::process::id(),
                N.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
                unix_now()
            ),
        },
        _ => QueueConfig::Sqlite { path: dir.join("queue.db") },
    };
    Queue::connect(&cfg).await.expect("test queue (is HAECHI_TEST_REDIS_URL reachable?)")
}

/// The server with `workers` in-process workers running jobs with `runner` options.
pub async fn spawn_full(config: Config, runner: RunnerOptions, workers: usize) -> TestApp {
    let test_db = TestDb::new().await.expect("test database (is HAECHI_TEST_MYSQL_URL reachable?)");
    let (objects, objects_guard) = TestObjects::new().await;
    let queue_dir = tempfile::tempdir().unwrap();
    let queue = test_queue(queue_dir.path()).await;
    let events = haechi_jobs::run_events();
    let (stop_tx, mut stop_rx) = tokio::sync::watch::channel(false);
    if workers > 0 {
        let market = MarketCache::default();
        let mut handlers = haechi_jobs::Registry::new();
        handlers
            .register(Arc::new(Runner::new(
                test_db.db.clone(),
                objects.clone(),
                market.clone(),
                events.clone(),
                runner,
            )))
            .unwrap();
        handlers
            .register(Arc::new(haechi_jobs::SweepRunner::new(test_db.db.clone(), market, std::time::Duration::ZERO)))
            .unwrap();
        let opts =
            WorkerOptions { name: "test".into(), concurrency: workers, max_attempts: 2, ..WorkerOptions::default() };
        let q = queue.clone();
        tokio::spawn(async move {
            let _ = haechi_jobs::run_workers(&q, opts, handlers, async move {
                let _ = stop_rx.wait_for(|s| *s).await;
            })
            .await;
        });
    }
    let services =
        Services { db: test_db.db.clone(), queue, objects: objects.clone(), events, market: Default::default() };
    let app = match config.clock {
        Some(clock) => App::with_clock(services, config.app, Arc::new(clock)),
        None => App::new(services, config.app),
    };
    let app = haechi_web::build(app, config.web);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let server = tokio::spawn(haechi_web::serve(listener, app, async move {
        let _ = rx.await;
    }));
    TestApp {
        base: format!("http://{addr}"),
        test_db,
        objects,
        _objects_guard: objects_guard,
        _queue_dir: queue_dir,
        stop_workers: stop_tx,
        shutdown: Some(tx),
        server: Some(server),
    }
}

/// A server with two workers and a small synthetic market (`tickers` names, 2019–2021).
pub async fn spawn_sim_app(tickers: usize, runner: RunnerOptions) -> TestApp {
    let app = spawn_full(Config::default(), runner, 2).await;
    load_market(&app, tickers).await;
    app
}

/// Loads a small synthetic market (`tickers` names, 2019–2021) into the app's database.
pub async fn load_market(app: &TestApp, tickers: usize) {
    let cfg = haechi_data::synth::SynthConfig {
        seed: 7,
        tickers,
        from: chrono::NaiveDate::from_ymd_opt(2019, 1, 1).unwrap(),
        to: chrono::NaiveDate::from_ymd_opt(2021, 12, 31).unwrap(),
    };
    let store = haechi_data::synth::generate(&cfg).unwrap();
    haechi_jobs::market::load_store_into_db(&app.test_db.db, &store, "synthetic", true, "test").await.unwrap();
}

/// A browser-like client: keeps cookies, remembers the CSRF token from login.
pub struct Browser {
    pub client: Client,
    pub base: String,
    pub csrf: Option<String>,
}

pub const PASSWORD: &str = "correct horse battery staple";

impl TestApp {
    /// Signals shutdown and waits for the server to finish serving.
    pub async fn shut_down(mut self) -> std::io::Result<()> {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        match self.server.take() {
            Some(h) => h.await.unwrap_or_else(|e| Err(std::io::Error::other(e))),
            None => Ok(()),
        }
    }

    pub fn browser(&self) -> Browser {
        let client = Client::builder().cookie_store(true).timeout(Duration::from_secs(30)).build().unwrap();
        Browser { client, base: self.base.clone(), csrf: None }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// Registers and logs in a user; returns the logged-in browser and the user's id.
    pub async fn user(&self, email: &str) -> (Browser, i64) {
        let mut b = self.browser();
        let r = b
            .post("/api/v1/auth/register", json!({"email": email, "display_name": "테스터", "password": PASSWORD}))
            .await;
        assert_eq!(r.status(), StatusCode::ACCEPTED, "{}", r.text().await.unwrap());
        let r = b.login(email, PASSWORD, None).await;
        assert_eq!(r.status(), StatusCode::OK);
        let me: Value = b.get("/api/v1/me").await.json().await.unwrap();
        (b, me["user"]["id"].as_i64().unwrap())
    }

    /// Makes a registered user an admin straight in the database (as `haechi user create` does).
    pub async fn promote(&self, id: i64, role: &str) {
        self.test_db.db.set_role(id, role).await.unwrap();
    }

    pub async fn audit_events(&self) -> Vec<String> {
        let page =
            self.test_db.db.audit_entries(&haechi_db::LogQuery { per_page: 1000, ..Default::default() }).await.unwrap();
        page.items.into_iter().map(|e| e.event).collect()
    }
}

impl Browser {
    pub async fn get(&self, path: &str) -> Response {
        self.client.get(format!("{}{path}", self.base)).send().await.unwrap()
    }

    pub async fn send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Response {
        let mut rb = self.client.request(method, format!("{}{path}", self.base));
        if let Some(c) = &self.csrf {
            rb = rb.header("x-csrf-token", c);
        }
        if let Some(b) = body {
            rb = rb.json(&b);
        }
        rb.send().await.unwrap()
    }

    pub async fn post(&self, path: &str, body: Value) -> Response {
        self.send(reqwest::Method::POST, path, Some(body)).await
    }

    pub async fn put(&self, path: &str, body: Value) -> Response {
        self.send(reqwest::Method::PUT, path, Some(body)).await
    }

    /// GET and parse JSON, asserting 200.
    pub async fn get_json(&self, path: &str) -> Value {
        let r = self.get(path).await;
        let status = r.status();
        let text = r.text().await.unwrap();
        assert_eq!(status, StatusCode::OK, "GET {path}: {text}");
        serde_json::from_str(&text).unwrap()
    }

    pub async fn delete(&self, path: &str) -> Response {
        self.send(reqwest::Method::DELETE, path, None).await
    }

    pub async fn login(&mut self, email: &str, password: &str, code: Option<&str>) -> Response {
        let mut body = json!({"email": email, "password": password});
        if let Some(c) = code {
            body["totp_code"] = json!(c);
        }
        let r = self.client.post(format!("{}/api/v1/auth/login", self.base)).json(&body).send().await.unwrap();
        if r.status() == StatusCode::OK {
            let v: Value = r.json().await.unwrap();
            self.csrf = v["csrf_token"].as_str().map(str::to_owned);
            // Hand back an equivalent response for callers that only look at the status.
            return reqwest::Response::from(http_ok(v));
        }
        r
    }
}

fn http_ok(v: Value) -> http::Response<String> {
    http::Response::builder().status(200).body(v.to_string()).unwrap()
}

/// A bearer-token client.
pub fn bearer(token: &str) -> Client {
    let mut h = reqwest::header::HeaderMap::new();
    h.insert(reqwest::header::AUTHORIZATION, format!("Bearer {token}").parse().unwrap());
    Client::builder().default_headers(h).build().unwrap()
}

pub fn unix_now() -> u64 {
    std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs()
}

/// Waits, if needed, until the current 30-second TOTP step has at least 20 s left, so a test
/// that computes codes from "now" is not split across a step boundary. Returns "now".
pub async fn away_from_step_boundary() -> u64 {
    let left = 30 - unix_now() % 30;
    if left < 20 {
        tokio::time::sleep(Duration::from_secs(left)).await;
    }
    unix_now()
}

pub async fn problem(r: Response) -> (StatusCode, Value) {
    let status = r.status();
    let ct = r.headers().get("content-type").and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    assert_eq!(ct, "application/problem+json", "status {status}");
    (status, r.json().await.unwrap())
}
