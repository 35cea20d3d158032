//! `haechi serve`, `haechi migrate`, `haechi config check` and `haechi user create`: the
//! platform commands, wired from validated settings.

use crate::config::{self, LogFormat, Settings};
use anyhow::{Context as _, Result, bail};
use haechi_app::accounts::{self, Registration};
use haechi_app::{App, AppError, AppSettings, Services};
use haechi_db::Db;
use haechi_jobs::{
    KisDaily, MarketCache, Queue, QueueConfig, Registry, RunEvents, Runner, RunnerOptions, WorkerOptions,
};
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
    WebSettings {
        cookie_secure: s.cookie_secure,
        body_limit_bytes: s.body_limit_bytes,
        trusted_proxy: s.trusted_proxy,
        metrics_token: s.metrics_token.as_ref().map(|t| t.expose().to_owned()),
    }
}

fn app_settings(s: &Settings) -> AppSettings {
    AppSettings {
        session_idle: Duration::from_secs(u64::from(s.session_idle_minutes) * 60),
        session_absolute: Duration::from_secs(u64::from(s.session_absolute_hours) * 3600),
        login_max_failures: s.login_max_failures,
        login_lock: Duration::from_secs(u64::from(s.login_lock_minutes) * 60),
        registrations_per_hour: s.registrations_per_hour,
        max_active_runs: s.max_active_runs,
        max_scenarios: s.max_scenarios,
        max_stored_bytes: u64::from(s.max_stored_mib) * 1024 * 1024,
        // Mirroring is offered on KIS's mock environment only: real-money orders stay refused.
        kis_mirror: s.kis.env == haechi_kis::KisEnv::Mock && s.kis.account.is_some() && s.kis.client_config().is_some(),
        ..AppSettings::default()
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

/// Options of this process's workers; `queues` empty serves every queue the registry has.
fn worker_options(settings: &Settings, concurrency: u32, queues: Vec<String>) -> WorkerOptions {
    let host = std::env::var("HOSTNAME").unwrap_or_else(|_| "local".into());
    WorkerOptions {
        // The queue appends the queue, pid, process start and a counter (`worker_id`).
        name: format!("haechi-{host}"),
        queues,
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

/// The job kinds this process executes: runs, sweeps and guard scans always, the daily KIS collection when KIS is
/// configured (it needs the client), and mirroring to the KIS mock account on the mock
/// environment with an account.
pub(crate) async fn registry(
    p: &Platform,
    settings: &Settings,
    kis: Option<&haechi_kis::KisConfig>,
) -> Result<Registry> {
    let mut registry = Registry::new();
    registry.register(Arc::new(runner(p, settings)))?;
    let delay = Duration::from_micros(u64::from(settings.run_session_delay_us));
    registry.register(Arc::new(haechi_jobs::SweepRunner::new(p.db.clone(), p.market.clone(), delay)))?;
    registry.register(Arc::new(haechi_app::guard::PaperScanner(app(p, settings))))?;
    if let Some(kis) = kis {
        let stores = Stores { db: p.db.clone(), objects: p.objects.clone() };
        let client = crate::etl::kis_client(settings, &stores, kis.clone()).await?;
        if app_settings(settings).kis_mirror {
            let mirror = haechi_jobs::mirror::Mirror::new(p.db.clone(), client.clone());
            registry.register(mirror.clone())?;
            registry.register(Arc::new(haechi_jobs::mirror::Reconciler(mirror)))?;
        }
        let etl = haechi_jobs::etl::Etl::new(p.db.clone(), p.objects.clone(), client, Default::default());
        registry.register(KisDaily::new(Arc::new(etl)))?;
    }
    Ok(registry)
}

/// Starts in-process workers with `concurrency` slots per queue; they stop (finishing what
/// they hold) when `stop` fires.
pub(crate) fn spawn_workers(
    p: &Platform,
    settings: &Settings,
    registry: Registry,
    concurrency: u32,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    if concurrency == 0 {
        return None;
    }
    let (queue, opts) = (p.queue.clone(), worker_options(settings, concurrency, Vec::new()));
    Some(tokio::spawn(async move {
        let mut stop = stop;
        let shutdown = async move {
            let _ = stop.wait_for(|s| *s).await;
        };
        if let Err(e) = haechi_jobs::run_workers(&queue, opts, registry, shutdown).await {
            tracing::error!(error = %e, "in-process workers stopped");
        }
    }))
}

/// The use cases over this process's platform: what the HTTP edge, the CLI and the demo call.
pub(crate) fn app(p: &Platform, settings: &Settings) -> App {
    let services = Services {
        db: p.db.clone(),
        queue: p.queue.clone(),
        objects: p.objects.clone(),
        events: p.events.clone(),
        market: p.market.clone(),
    };
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
    let shutdown = shutdown_signal();
    let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
    let daily = crate::etl::spawn_daily(settings, &p, kis.is_some(), stop_rx.clone())?;
    // With the embedded queue this process is the only worker: a run still `running` was
    // left by a process that died holding it (SIGKILL, power loss), and nobody else will
    // take it back.
    if settings.redis_url.is_none() && workers > 0 {
        haechi_app::runs::recover_orphaned(&app(&p, settings)).await.context("recovering runs left running")?;
    }
    let worker_task = if workers > 0 {
        spawn_workers(&p, settings, registry(&p, settings, kis.as_ref()).await?, workers, stop_rx.clone())
    } else {
        None
    };
    let gauge = tokio::spawn(queue_gauge(p.queue.clone()));
    let replay = spawn_replay(&app(&p, settings), settings, stop_rx.clone());
    let checkpoints = spawn_checkpoints(&p.db, stop_rx.clone());
    let app = haechi_web::build(app(&p, settings), web_settings(settings));
    haechi_web::serve(listener, app, shutdown).await.context("serving")?;
    gauge.abort();
    let _ = stop_tx.send(true);
    if let Some(t) = replay {
        let _ = t.await;
    }
    let _ = checkpoints.await;
    if let Some(t) = worker_task {
        let _ = t.await;
    }
    crate::etl::stop_daily(daily).await;
    tracing::info!("shut down cleanly");
    p.db.close().await.context("closing the database")?;
    Ok(())
}

/// Checkpoints the SQLite log in the background (see `Db::checkpoint`) until `stop`.
fn spawn_checkpoints(db: &Db, mut stop: tokio::sync::watch::Receiver<bool>) -> tokio::task::JoinHandle<()> {
    let db = db.clone();
    tokio::spawn(async move {
        if db.backend() != haechi_db::Backend::Sqlite {
            return;
        }
        loop {
            tokio::select! {
                () = tokio::time::sleep(Duration::from_millis(250)) => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = db.checkpoint().await {
                tracing::warn!(error = %e, "WAL checkpoint failed");
            }
        }
    })
}

/// Starts the replayed paper-trading market when `paper_replay_secs` is set.
pub(crate) fn spawn_replay(
    app: &App,
    settings: &Settings,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Option<tokio::task::JoinHandle<()>> {
    if settings.paper_replay_secs == 0 {
        return None;
    }
    let opts = haechi_app::market_replay::ReplayOptions {
        session: Duration::from_secs(u64::from(settings.paper_replay_secs)),
        ..Default::default()
    };
    let app = app.clone();
    Some(tokio::spawn(async move {
        if let Err(e) = haechi_app::market_replay::run(app, opts, stop).await {
            tracing::error!(error = %e, "the paper market replay stopped");
        }
    }))
}

/// `haechi market`: the paper-trading matcher as its own process. With KIS configured it
/// matches on the `H0STCNT0` feed; without, it replays the loaded daily data
/// (`paper_replay_secs`, 600 when unset). Run one per deployment: two would each apply every
/// print (harmlessly, as prints are keyed, but for nothing).
pub fn market(file: Option<&Path>) -> Result<()> {
    let mut settings = load_settings(file)?;
    init_tracing(settings.log_format);
    if settings.paper_replay_secs == 0 {
        settings.paper_replay_secs = 600;
    }
    runtime()?.block_on(async {
        let shutdown = shutdown_signal();
        let p = open_platform(&settings).await?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let task = match crate::etl::kis_config(&settings) {
            Some(kis) => {
                let stores = Stores { db: p.db.clone(), objects: p.objects.clone() };
                let feed_cfg = haechi_kis::ws::FeedConfig::new(kis.ws_url.clone());
                // One WebSocket session (41 registrations) per app key.
                let mut sources: Vec<Arc<dyn haechi_kis::ws::ApprovalSource>> = Vec::new();
                for cfg in settings.kis.feed_configs() {
                    sources.push(Arc::new(crate::etl::kis_client(&settings, &stores, cfg).await?));
                }
                tracing::info!(ws = %kis.ws_url, app_keys = sources.len(), capacity = sources.len() * 41, "paper market: matching on the KIS trade feed");
                let feed = haechi_kis::ws::QuoteFeed::start(feed_cfg, sources);
                let (trades, rx) = haechi_app::market_feed::KisTrades::new(feed);
                let app = app(&p, &settings);
                Some(tokio::spawn(async move {
                    let opts = haechi_app::market_feed::FeedOptions::default();
                    if let Err(e) = haechi_app::market_feed::run(app, trades, rx, opts, stop_rx).await {
                        tracing::error!(error = %e, "the paper market feed stopped");
                    }
                }))
            }
            None => spawn_replay(&app(&p, &settings), &settings, stop_rx),
        };
        shutdown.await;
        let _ = stop_tx.send(true);
        if let Some(t) = task {
            let _ = t.await;
        }
        p.db.close().await.context("closing the database")?;
        Ok(())
    })
}

/// Keeps `haechi_queue_depth` current in processes that run no worker (which update it
/// themselves).
async fn queue_gauge(queue: Queue) {
    loop {
        for name in haechi_jobs::queues::ALL {
            if let Ok(s) = queue.stats(name).await {
                metrics::gauge!("haechi_queue_depth", "queue" => *name).set(s.pending as f64);
            }
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

/// `haechi worker`: runs jobs from `queues` (all when empty) until SIGTERM/Ctrl-C, then
/// finishes the ones it holds. With `metrics_addr`, serves `/metrics` there for Prometheus.
pub fn worker(
    file: Option<&Path>,
    concurrency: u32,
    queues: Vec<String>,
    metrics_addr: Option<std::net::SocketAddr>,
) -> Result<()> {
    for q in &queues {
        if !haechi_jobs::queues::ALL.contains(&q.as_str()) {
            return Err(crate::cli::invalid(format!(
                "--queues: unknown queue {q:?} (queues: {})",
                haechi_jobs::queues::ALL.join(", ")
            )));
        }
    }
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
        let kis = crate::etl::kis_config(&settings);
        if kis.is_none() && queues.iter().any(|q| q == haechi_jobs::queues::ETL) {
            bail!("the etl queue needs KIS settings (HAECHI_KIS_APP_KEY and HAECHI_KIS_APP_SECRET)");
        }
        if !app_settings(&settings).kis_mirror && queues.iter().any(|q| q == haechi_jobs::queues::PAPER) {
            bail!(
                "the paper queue needs a KIS mock account to mirror to (HAECHI_KIS_ENV=mock, HAECHI_KIS_ACCOUNT, HAECHI_KIS_APP_KEY and HAECHI_KIS_APP_SECRET)"
            );
        }
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let daily = crate::etl::spawn_daily(&settings, &p, kis.is_some(), stop_rx)?;
        let registry = registry(&p, &settings, kis.as_ref()).await?;
        let opts = worker_options(&settings, concurrency, queues);
        let serving = if opts.queues.is_empty() { registry.queues().join(",") } else { opts.queues.join(",") };
        tracing::info!(name = %opts.name, concurrency, queues = %serving, backend = if settings.redis_url.is_some() { "redis" } else { "sqlite" }, "haechi worker started");
        haechi_jobs::run_workers(&p.queue, opts, registry, shutdown_signal()).await.context("running workers")?;
        let _ = stop_tx.send(true);
        crate::etl::stop_daily(daily).await;
        tracing::info!("worker stopped cleanly");
        p.db.close().await.context("closing the database")?;
        Ok(())
    })
}

/// Resolves on SIGTERM or Ctrl-C. The handlers are installed when this is called, not when the
/// future is first polled: axum polls its shutdown future on a task of its own, and a SIGTERM
/// arriving before that task ran (a busy 2-core machine, a supervisor stopping a process that
/// has just come up) would otherwise take the default action and kill the process uncleanly.
pub(crate) fn shutdown_signal() -> impl std::future::Future<Output = ()> + Send + 'static {
    #[cfg(unix)]
    let (term, int) = {
        use tokio::signal::unix::{SignalKind, signal};
        (signal(SignalKind::terminate()).ok(), signal(SignalKind::interrupt()).ok())
    };
    #[cfg(not(unix))]
    let (term, int): (Option<()>, Option<()>) = (None, None);
    async move {
        #[cfg(unix)]
        {
            let wait = |s: Option<tokio::signal::unix::Signal>| async move {
                match s {
                    Some(mut s) => {
                        s.recv().await;
                    }
                    None => std::future::pending::<()>().await,
                }
            };
            tokio::select! { () = wait(term) => {}, () = wait(int) => {} }
        }
        #[cfg(not(unix))]
        {
            let _ = (term, int);
            let _ = tokio::signal::ctrl_c().await;
        }
    }
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
