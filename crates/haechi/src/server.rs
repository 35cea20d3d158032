//! `haechi serve`, `haechi migrate`, `haechi config check` and `haechi user create`: the
//! platform commands, wired from validated settings.

use crate::config::{self, LogFormat, Settings};
use anyhow::{Context as _, Result, bail};
use haechi_db::{Db, NewUser};
use haechi_web::WebSettings;
use std::io::BufRead as _;
use std::path::Path;
use std::time::Duration;

/// Loads settings from defaults, the optional file, `HAECHI_*` and `HAECHI_*_FILE`.
pub fn load_settings(file: Option<&Path>) -> Result<Settings> {
    let env = config::Sources::process_env().map_err(|e| anyhow::anyhow!("configuration:\n{e}"))?;
    config::load(&config::Sources { file, env: &env }).map_err(|e| anyhow::anyhow!("configuration:\n{e}"))
}

fn init_tracing(format: LogFormat) {
    use tracing_subscriber::EnvFilter;
    let filter =
        EnvFilter::try_from_env("HAECHI_LOG").unwrap_or_else(|_| EnvFilter::new("info,sqlx=warn,sea_orm=warn"));
    // Colour only on a terminal: log files and journald (fail2ban reads them) get plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    let builder = tracing_subscriber::fmt().with_env_filter(filter).with_ansi(ansi).with_writer(std::io::stderr);
    let _ = match format {
        LogFormat::Json => builder.json().try_init(),
        LogFormat::Text => builder.try_init(),
    };
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread().enable_all().build().context("starting the async runtime")
}

async fn open_db(settings: &Settings) -> Result<Db> {
    let db = Db::connect(&settings.database_url)
        .await
        .with_context(|| format!("connecting to {}", haechi_db::redact_url(&settings.database_url)))?;
    db.migrate().await.context("running migrations")?;
    Ok(db)
}

fn web_settings(s: &Settings) -> WebSettings {
    WebSettings {
        cookie_secure: s.cookie_secure,
        session_idle: Duration::from_secs(u64::from(s.session_idle_minutes) * 60),
        session_absolute: Duration::from_secs(u64::from(s.session_absolute_hours) * 3600),
        body_limit_bytes: s.body_limit_bytes,
        login_max_failures: s.login_max_failures,
        login_lock: Duration::from_secs(u64::from(s.login_lock_minutes) * 60),
        trusted_proxy: s.trusted_proxy,
    }
}

pub fn serve(file: Option<&Path>) -> Result<()> {
    let settings = load_settings(file)?;
    init_tracing(settings.log_format);
    runtime()?.block_on(async {
        let db = open_db(&settings).await?;
        let app = haechi_web::build(db.clone(), web_settings(&settings));
        let listener = tokio::net::TcpListener::bind(settings.addr).await.with_context(|| format!("binding {}", settings.addr))?;
        tracing::info!(addr = %settings.addr, db = %haechi_db::redact_url(&settings.database_url), "haechi serve listening; docs at /api/docs");
        haechi_web::serve(listener, app, shutdown_signal()).await.context("serving")?;
        tracing::info!("shut down cleanly");
        db.close().await.context("closing the database")?;
        Ok(())
    })
}

async fn shutdown_signal() {
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
    Ok(())
}

/// Creates a user (the first admin, typically). The password comes from
/// `HAECHI_NEW_USER_PASSWORD` or the first line of standard input, never from an argument
/// (which `ps` would show).
pub fn user_create(file: Option<&Path>, email: &str, role: &str, display_name: Option<&str>) -> Result<()> {
    let settings = load_settings(file)?;
    let Some(role) = haechi_web::rbac::Role::parse(role) else {
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
    let email = haechi_web::auth::normalise_email(email);
    let name = display_name.unwrap_or_else(|| email.split('@').next().unwrap_or("admin")).to_owned();
    let problems = haechi_web::auth::password::policy_problems(&password, &email, &name);
    if !problems.is_empty() {
        let list: Vec<String> = problems.iter().map(|p| format!("{}: {}", p.field, p.message)).collect();
        bail!("password rejected: {}", list.join("; "));
    }
    runtime()?.block_on(async {
        let db = open_db(&settings).await?;
        let hash = haechi_web::auth::password::hash(password).await.map_err(|e| anyhow::anyhow!("{e}"))?;
        let user = db
            .create_user(NewUser {
                email: email.clone(),
                display_name: name,
                password_hash: hash,
                role: role.as_str().into(),
            })
            .await
            .with_context(|| format!("creating {email}"))?;
        db.audit(haechi_db::NewAuditEntry {
            user_id: Some(user.id),
            event: "user_created_cli",
            ip: "local".into(),
            detail: serde_json::json!({"role": role.as_str()}),
            ..Default::default()
        })
        .await?;
        println!("created user {} ({}) with role {}", user.id, user.email, role.as_str());
        db.close().await.context("closing the database")
    })
}
