//! `haechi serve`, `haechi migrate`, `haechi config check` and `haechi user create`: the
//! platform commands, wired from validated settings.

use crate::config::{self, LogFormat, Settings};
use anyhow::{Context as _, Result, bail};
use haechi_app::accounts::{self, Registration};
use haechi_app::{App, AppError, AppSettings, Services};
use haechi_db::Db;
use haechi_jobs::{MarketCache, Queue, QueueConfig, RunEvents, Runner, RunnerOptions, WorkerOptions};
use haechi_objects::{ObjectStoreConfig, Objects};
use haechi_web::WebSettings;
use std::io::BufRead as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

/// Loads settings from defaults, the optional file, `HAECHI_*` and `HAECHI_*_FILE`.
pub fn load_settings(file: Option<&Path>) -> Result<Settings> {
    let env = config::Sources::process_env().map_err(|e| anyhow::anyhow!("configuration:\n{e}"))?;
    config::load(&config::Sources { file, env: &env }).map_err(|e| anyhow::anyhow!("configuration:\n{e}"))
}

pub(crate) fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_env("HAECHI_LOG")
        .unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn,apalis_core=warn"));
    // Colour only on a terminal: log files and journald (fail2ban reads them) get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

pub(crate) fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

pub(crate) async fn open_db(settings: &Settings) -> Result<Db> {
    let db = Db::connect(&settings.database_url)
        .await
        .with_context(|| format!("connecting to {}", haechi_db::redact_url(&settings.database_url)))?;
    db.migrate().await.context("running migrations")?;
    Ok(db)
}

fn web_settings(s: &Settings) -> WebSettings {
    WebSettings { cookie_secure: s.cookie_secure, body_limit_bytes: s.body_limit_bytes, trusted_proxy: s.trusted_proxy }
}

fn app_settings(s: &Settings) -> AppSettings {
    AppSettings {
        session_idle: Duration::from_secs(u64::from(s.session_idle_minutes) * 60),
        session_absolute: Duration::from_secs(u64::from(s.session_absolute_hours) * 3600),
        login_max_failures: s.login_max_failures,
        login_lock: Duration::from_secs(u64::from(s.login_lock_minutes) * 60),
    }
}

/// Everything a serving or working process holds: the database, object storage, the job
/// queue, the in-process run notices and the market store cache.
#[derive(Debug, Clone)]
pub(crate) struct Platform {
    pub db: Db,
    pub objects: Objects,
    pub queue: Queue,
    pub events: RunEvents,
    pub market: MarketCache,
}

fn object_config(s: &Settings) -> ObjectStoreConfig {
    ObjectStoreConfig {
        url: s.object_store_url(),
        s3_endpoint: s.s3_endpoint.clone(),
        s3_region: s.s3_region.clone(),
        s3_access_key: s.s3_access_key.as_ref().map(|k| k.expose().to_owned()),
        s3_secret_key: s.s3_secret_key.as_ref().map(|k| k.expose().to_owned()),
        s3_path_style: s.s3_path_style,
        s3_allow_http: s.s3_allow_http,
    }
}

pub(crate) fn queue_config(s: &Settings) -> QueueConfig {
    match &s.redis_url {
        Some(url) => QueueConfig::Redis { url: url.expose().to_owned(), namespace: s.queue_name.clone() },
        None => QueueConfig::Sqlite { path: s.data_dir.join("queue.db") },
    }
}

/// The database and object storage, for commands that need no queue (the ETL).
pub(crate) struct Stores {
    pub db: Db,
    pub objects: Objects,
}

pub(crate) async fn open_stores(settings: &Settings) -> Result<Stores> {
    let db = open_db(settings).await?;
    let objects = Objects::open(&object_config(settings)).context("opening object storage")?;
    objects.check().await.with_context(|| format!("object storage {} is not reachable", objects.describe()))?;
    Ok(Stores { db, objects })
}

pub(crate) async fn open_platform(settings: &Settings) -> Result<Platform> {
    let Stores { db, objects } = open_stores(settings).await?;
    let queue = Queue::connect(&queue_config(settings)).await.context("connecting to the job queue")?;
    Ok(Platform { db, objects, queue, events: haechi_jobs::run_events(), market: MarketCache::default() })
}

fn worker_options(settings: &Settings, concurrency: u32) -> WorkerOptions {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    WorkerOptions {
        name: format!("haechi-{host}-{}", std::process::id()),
        concurrency: concurrency.max(1) as usize,
        max_attempts: settings.job_max_attempts,
        timeout: Duration::from_secs(u64::from(settings.job_timeout_secs)),
        orphan_after: Duration::from_secs(u64::from(settings.job_orphan_secs)),
        ..WorkerOptions::default()
    }
}

fn runner(p: &Platform, settings: &Settings) -> Runner {
    Runner::new(
        p.db.clone(),
        p.objects.clone(),
        p.market.clone(),
        p.events.clone(),
        RunnerOptions {
            session_delay: Duration::from_micros(u64::from(settings.run_session_delay_us)),
            ..RunnerOptions::default()
        },
    )
}

/// Starts `n` in-process workers; they stop (finishing what they hold) when `stop` fires.
pub(crate) fn spawn_workers(
    p: &Platform,
    settings: &Settings,
    n: u32,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    if n == 0 {
        return None;
    }
    let (queue, opts, handler) = (p.queue.clone(), worker_options(settings, n), Arc::new(runner(p, settings)));
    Some(tokio::spawn(async move {
        let mut stop = stop;
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = haechi_jobs::run_workers(&queue, opts, handler, shutdown).await {
            tracing::error!(error = %e, "in-process workers stopped");
        }
    }))
}

/// The use cases over this process's platform: what the HTTP edge, the CLI and the demo call.
pub(crate) fn app(p: &Platform, settings: &Settings) -> App {
    let services =
        Services { db: p.db.clone(), queue: p.queue.clone(), objects: p.objects.clone(), events: p.events.clone() };
    App::new(services, app_settings(settings))
}

/// Serves HTTP on `listener` with `workers` in-process workers until a shutdown signal.
pub(crate) async fn serve_platform(
    p: Platform,
    settings: &Settings,
    listener: tokio::net::TcpListener,
    workers: u32,
    kis: Option<haechi_kis::KisConfig>,
) -> Result<()> {
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let daily = crate::etl::spawn_daily(settings, &p, kis, stop_rx.clone()).await?;
    let worker_task = spawn_workers(&p, settings, workers, stop_rx);
    let gauge = tokio::spawn(queue_gauge(p.queue.clone()));
    let app = haechi_web::build(app(&p, settings), web_settings(settings));
    haechi_web::serve(listener, app, shutdown_signal()).await.context("serving")?;
    gauge.abort();
    let _ = stop_tx.send(true);
    if let Some(t) = worker_task {
        let _ = t.await;
    }
    crate::etl::stop_daily(daily).await;
    tracing::info!("shut down cleanly");
    p.db.close().await.context("closing the database")?;
    Ok(())
}

/// Keeps `haechi_queue_depth` current in processes that run no worker (which update it
/// themselves).
async fn queue_gauge(queue: Queue) {
    loop {
        if let Ok(s) = queue.stats().await {
            metrics::gauge!("haechi_queue_depth").set(s.pending as f64);
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
}

pub fn serve(file: Option<&Path>) -> Result<()> {
    let settings = load_settings(file)?;
    init_tracing(settings.log_format);
    runtime()?.block_on(async {
        let p = open_platform(&settings).await?;
        let listener =
            tokio::net::TcpListener::bind(settings.addr).await.with_context(|| format!("binding {}", settings.addr))?;
        tracing::info!(
            addr = %settings.addr,
            db = %haechi_db::redact_url(&settings.database_url),
            objects = %p.objects.describe(),
            queue = if settings.redis_url.is_some() { "redis" } else { "sqlite" },
            workers = settings.serve_workers(),
            "haechi serve listening; docs at /api/docs"
        );
        let workers = settings.serve_workers();
        serve_platform(p, &settings, listener, workers, crate::etl::kis_config(&settings)).await
    })
}

/// `haechi worker`: runs jobs until SIGTERM/Ctrl-C, then finishes the ones it holds. With
/// `metrics_addr`, serves `/metrics` there for Prometheus.
pub fn worker(file: Option<&Path>, concurrency: u32, metrics_addr: Option<std::net::SocketAddr>) -> Result<()> {
    let settings = load_settings(file)?;
    init_tracing(settings.log_format);
    runtime()?.block_on(async {
        let p = open_platform(&settings).await?;
        if let Some(addr) = metrics_addr {
            let handle = haechi_web::metrics_handle();
            let app = axum::Router::new().route("/metrics", axum::routing::get(move || async move { handle.render() }));
            let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("binding {addr}"))?;
            tokio::spawn(async move {
                let _ = axum::serve(listener, app).await;
            });
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let daily = crate::etl::spawn_daily(&settings, &p, crate::etl::kis_config(&settings), stop_rx).await?;
        let opts = worker_options(&settings, concurrency);
        tracing::info!(name = %opts.name, concurrency, queue = if settings.redis_url.is_some() { "redis" } else { "sqlite" }, "haechi worker started");
        haechi_jobs::run_workers(&p.queue, opts, Arc::new(runner(&p, &settings)), shutdown_signal())
            .await
            .context("running workers")?;
        let _ = stop_tx.send(true);
        crate::etl::stop_daily(daily).await;
        tracing::info!("worker stopped cleanly");
        p.db.close().await.context("closing the database")?;
        Ok(())
    })
}

pub(crate) async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { () = ctrl_c => {}, () = term => {} }
}

pub fn migrate(file: Option<&Path>) -> Result<()> {
    let settings = load_settings(file)?;
    runtime()?.block_on(async {
        let db = open_db(&settings).await?;
        println!("migrations applied to {}", haechi_db::redact_url(&settings.database_url));
        db.close().await.context("closing the database")
    })
}

pub fn config_check(file: Option<&Path>) -> Result<()> {
    let settings = load_settings(file)?;
    print!("{}", settings.render());
    match crate::etl::kis_config(&settings) {
        None => println!("kis: off (HAECHI_KIS_APP_KEY not set)"),
        Some(k) => println!(
            "kis: {} environment, app key {}, secret [redacted], base {}, {} requests/s, real orders {}",
            k.env,
            k.credentials.fingerprint(k.env),
            k.base_url,
            k.rate_per_sec,
            match (k.allow_real_orders, k.max_order_value) {
                (true, Some(cap)) => format!("allowed up to {cap} won each"),
                (true, None) => "refused (no HAECHI_KIS_MAX_ORDER_VALUE)".to_owned(),
                _ => "refused".to_owned(),
            }
        ),
    }
    Ok(())
}

/// Creates a user (the first admin, typically). The password comes from
/// `HAECHI_NEW_USER_PASSWORD` or the first line of standard input, never from an argument
/// (which `ps` would show).
pub fn user_create(file: Option<&Path>, email: &str, role: &str, display_name: Option<&str>) -> Result<()> {
    let settings = load_settings(file)?;
    let Some(role) = haechi_app::Role::parse(role) else {
        bail!("unknown role {role:?}: use admin, analyst, investor or auditor");
    };
    let password = match std::env::var("HAECHI_NEW_USER_PASSWORD") {
        Ok(p) if !p.is_empty() => p,
        _ => {
            let mut line = String::new();
            std::io::stdin().lock().read_line(&mut line).context("reading the password from standard input")?;
            line.trim_end_matches(['\r', '\n']).to_owned()
        }
    };
    let display_name =
        display_name.map_or_else(|| email.split('@').next().unwrap_or("admin").to_owned(), str::to_owned);
    runtime()?.block_on(async {
        let p = open_platform(&settings).await?;
        let new = Registration { email: email.to_owned(), display_name, password, role };
        let meta = haechi_app::RequestMeta::local("cli");
        let account = match accounts::register(&app(&p, &settings), &meta, new).await {
            Ok(a) => a,
            Err(AppError::Invalid(problems)) => {
                let list: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect();
                bail!("rejected: {}", list.join("; "));
            }
            Err(e) => return Err(anyhow::Error::new(e).context(format!("creating {email}"))),
        };
        println!("created user {} ({}) with role {}", account.id, account.email, role.as_str());
        p.db.close().await.context("closing the database")
    })
}
