//! `haechi demo` and `haechi data load`: a working installation from nothing, and market
//! data into the database.
//!
//! The demo keeps everything in one folder (`haechi-data` by default): the SQLite database,
//! the queue, the object store and a `demo-credentials.txt` (mode 0600) with the generated
//! password. Run again, it reuses the folder; `--reset` starts over, but only deletes a
//! folder the demo created (it carries a `.haechi-demo` marker).

use crate::server::{self, Platform};
use anyhow::{Context as _, Result, bail};
use chrono::NaiveDate;
use haechi_app::accounts::{self, Registration};
use haechi_app::paging::Paging;
use haechi_app::runs::{self, RunFilter};
use haechi_app::scenarios::{self, ListQuery};
use haechi_app::{Account, App, Principal, RequestMeta, Role, RunId, RunState, ScenarioId};
use haechi_data::csv::{LoadOptions, load_dir};
use haechi_data::synth::{self, SynthConfig};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const MARKER: &str = ".haechi-demo";
const CREDENTIALS: &str = "demo-credentials.txt";
pub const DEMO_EMAIL: &str = "demo@haechi.local";

/// The three example scenarios the demo user starts with.
const DEMO_SCENARIOS: &[(&str, &str)] = &[
    ("buy_and_hold.toml", include_str!("../../../examples/buy_and_hold.toml")),
    ("sma_cross.toml", include_str!("../../../examples/sma_cross.toml")),
    ("momentum_rotation.toml", include_str!("../../../examples/momentum_rotation.toml")),
];

#[derive(Debug, Clone)]
pub struct DemoOptions {
    pub dir: Option<PathBuf>,
    pub reset: bool,
    /// Prepare everything, then exit instead of serving.
    pub no_serve: bool,
}

fn reset_dir(dir: &Path) -> Result<()> {
    if !dir.exists() {
        return Ok(());
    }
    let empty = std::fs::read_dir(dir).with_context(|| format!("reading {}", dir.display()))?.next().is_none();
    if !empty && !dir.join(MARKER).exists() {
        bail!("will not delete {}: it was not created by `haechi demo` (no {MARKER} marker)", dir.display());
    }
    std::fs::remove_dir_all(dir).with_context(|| format!("deleting {}", dir.display()))
}

/// A password a person can type: 4 groups of 4 from an alphabet without look-alikes.
fn generate_password() -> Result<String> {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyz23456789";
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).map_err(|e| anyhow::anyhow!("no randomness: {e}"))?;
    let chars: Vec<char> = bytes.iter().map(|b| ALPHABET[usize::from(*b) % ALPHABET.len()] as char).collect();
    Ok(chars.chunks(4).map(|c| c.iter().collect::<String>()).collect::<Vec<_>>().join("-"))
}

fn write_secret(path: &Path, text: &str) -> Result<()> {
    use std::io::Write as _;
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut opts, 0o600);
    let mut f = opts.open(path).with_context(|| format!("writing {}", path.display()))?;
    f.write_all(text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// Loads a store into the database as a new data version, printing what happened.
pub(crate) async fn load_store(
    p: &Platform,
    store: &haechi_core::MarketStore,
    source: &str,
    synthetic: bool,
    note: &str,
) -> Result<i64> {
    let t = Instant::now();
    let v = haechi_jobs::market::load_store_into_db(&p.db, store, source, synthetic, note)
        .await
        .context("writing market data to the database")?;
    println!(
        "시장 데이터 적재 Market data loaded: {} instruments, {} bars, data version {v} ({:.1} s)",
        store.n_instruments(),
        store.bar_count(),
        t.elapsed().as_secs_f64()
    );
    Ok(v)
}

fn demo_synth() -> SynthConfig {
    SynthConfig {
        seed: 42,
        tickers: 200,
        from: NaiveDate::from_ymd_opt(2015, 1, 1).unwrap_or_default(),
        to: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap_or_default(),
    }
}

pub fn demo(file: Option<&Path>, opts: &DemoOptions) -> Result<()> {
    let mut settings = server::load_settings(file)?;
    if let Some(dir) = &opts.dir {
        settings.set_data_dir(dir.clone());
    }
    crate::server::init_tracing(settings.log_format);
    let dir = settings.data_dir.clone();
    if opts.reset {
        reset_dir(&dir)?;
    }
    let fresh = !dir.exists() || std::fs::read_dir(&dir).map(|mut d| d.next().is_none()).unwrap_or(true);
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    if fresh {
        std::fs::write(dir.join(MARKER), "created by `haechi demo`; `haechi demo --reset` may delete this folder\n")
            .with_context(|| format!("writing {}", dir.join(MARKER).display()))?;
    }
    let started = Instant::now();
    server::runtime()?.block_on(async {
        // Without KIS keys the demo collects from its own fake KIS, started while it prepares.
        let kis_keys = crate::etl::kis_config(&settings);
        let fake = if kis_keys.is_none() {
            let mut cfg = haechi_kis::fake::FakeKisConfig::new(haechi_kis::KisEnv::Real, demo_synth());
            cfg.ws.tick_interval = std::time::Duration::from_secs(1);
            Some(tokio::spawn(haechi_kis::fake::FakeKis::start(cfg, std::net::SocketAddr::from(([127, 0, 0, 1], 0)))))
        } else {
            None
        };
        let p = server::open_platform(&settings).await?;
        if p.db.data_version().await?.is_none() {
            let cfg = demo_synth();
            let store = synth::generate(&cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
            load_store(&p, &store, "synthetic", true, "haechi demo: seed 42, 200 tickers, 2015–2024").await?;
        }
        let app = server::app(&p, &settings);
        let password = ensure_demo_user(&app, &dir).await?;
        // Workers run while the demo prepares its example runs, and keep running to serve.
        let listener = tokio::net::TcpListener::bind(settings.addr)
            .await
            .with_context(|| format!("binding {} (set HAECHI_ADDR to use another address)", settings.addr))?;
        let (stop_tx, stop_rx) = tokio::sync::watch::channel(false);
        let seed_workers = server::spawn_workers(&p, &settings, server::registry(&p, &settings, None).await?, 2, stop_rx);
        ensure_demo_runs(&app).await?;
        // Paper trading: a replayed market, one session every ten minutes, and an account
        // with orders for its next session, so fills arrive within the first minute.
        if settings.paper_replay_secs == 0 {
            settings.paper_replay_secs = 600;
        }
        ensure_demo_paper(&app).await?;
        let _ = stop_tx.send(true);
        if let Some(t) = seed_workers {
            let _ = t.await;
        }
        let fake = match fake {
            Some(task) => Some(task.await.context("starting the fake KIS server")?.map_err(|e| anyhow::anyhow!("fake KIS: {e}"))?),
            None => None,
        };
        let kis = match (&kis_keys, &fake) {
            (Some(k), _) => Some(k.clone()),
            (None, Some(f)) => {
                // The market is already loaded from the same synthetic data: the daily collection
                // only looks for days after it.
                let cfg = demo_synth();
                p.db.seed_bar_coverage(haechi_jobs::market::day_number(cfg.from), haechi_jobs::market::day_number(cfg.to)).await?;
                let mut k = haechi_kis::KisConfig::new(
                    haechi_kis::KisEnv::Real,
                    haechi_kis::Credentials::new("demo-fake-key", "demo-fake-secret").map_err(|e| anyhow::anyhow!("{e}"))?,
                );
                k.base_url = f.base_url();
                k.ws_url = f.ws_url();
                Some(k)
            }
            (None, None) => None,
        };
        let addr = listener.local_addr().context("reading the bound address")?;
        println!();
        println!("해치 Haechi 데모 demo — ready in {:.1} s", started.elapsed().as_secs_f64());
        println!("  주소 Address:      http://{addr}  (web portal; REST API under /api/v1)");
        println!("  API 문서 docs:     http://{addr}/api/docs");
        println!("  이메일 Email:      {DEMO_EMAIL}");
        match &password {
            Some(pw) => println!(
                "  비밀번호 Password: {pw}   (shown once; also in {}, mode 0600)",
                dir.join(CREDENTIALS).display()
            ),
            None => println!("  비밀번호 Password: see {}", dir.join(CREDENTIALS).display()),
        }
        println!("  데이터 Data folder: {} (`haechi demo --reset` starts over)", dir.display());
        match &fake {
            Some(f) => println!(
                "  KIS: 가짜 fake KIS at {} (no HAECHI_KIS_APP_KEY; try `HAECHI_KIS_BASE_URL={} HAECHI_KIS_APP_KEY=demo HAECHI_KIS_APP_SECRET=demo HAECHI_KIS_ENV=real haechi etl bars --market KOSPI --from 2024-01-01`)",
                f.base_url(),
                f.base_url()
            ),
            None => println!("  KIS: {} (daily collection after 16:30 KST)", kis.as_ref().map_or("off".into(), |k| k.base_url.clone())),
        }
        if opts.no_serve {
            return Ok(());
        }
        println!("  Ctrl-C 로 종료 to stop");
        let workers = settings.serve_workers().max(1);
        let served = server::serve_platform(p, &settings, listener, workers, kis).await;
        drop(fake);
        served
    })
}

/// The demo's mock account, with orders for the replay's next session: a market buy (fills
/// at the opening print), a limit buy near the last close (fills when the path dips to it) and
/// a limit buy at the lower limit (stays open: something to modify or cancel).
async fn ensure_demo_paper(app: &App) -> Result<()> {
    use haechi_app::paper::{self, OrderRequest};
    let Some(user) = app.db().user_by_email(DEMO_EMAIL).await? else { bail!("the demo user is missing") };
    let demo = Principal::local(Account::from(&user));
    let meta = RequestMeta::local("demo");
    let opts = haechi_app::market_replay::ReplayOptions::default();
    haechi_app::market_replay::prime(app, &opts).await?;
    let account = match paper::list(app, &demo).await?.into_iter().find(|a| a.account.state == "open") {
        Some(a) => a.account.id,
        None => paper::open(app, &meta, &demo, "데모 모의계좌 Demo account", 10_000_000).await?.id,
    };
    let open = paper::orders(app, &demo, account, haechi_db::OrderFilter::Open, Paging::new(Some(0), Some(1))?).await?;
    if open.total > 0 {
        return Ok(());
    }
    let m = app.market().current(app.db()).await?;
    let mut placed = 0;
    for inst in m.store.instruments().iter().take(3) {
        let info = paper::ticket_info(app, inst.ticker.as_str()).await?;
        let (Some(base), Some(lower)) = (info.base, info.lower) else { continue };
        let qty = (1_000_000 / base).max(1);
        let tick = info.tick.unwrap_or(1).max(1);
        let (kind, price) = match placed {
            0 => ("market", None),
            1 => ("limit", Some(base / tick * tick)),
            _ => ("limit", Some(lower)),
        };
        let req = OrderRequest {
            ticker: info.ticker.clone(),
            side: "buy".into(),
            kind: kind.into(),
            price,
            quantity: qty,
            confirm: true,
            client_order_id: None,
        };
        paper::place(app, &meta, &demo, account, req).await?;
        placed += 1;
    }
    Ok(())
}

/// Creates the demo user on first run (through the registration use case) and returns its new
/// password (`None` when it existed).
async fn ensure_demo_user(app: &App, dir: &Path) -> Result<Option<String>> {
    if app.db().user_by_email(DEMO_EMAIL).await?.is_some() {
        return Ok(None);
    }
    let password = generate_password()?;
    let new = Registration {
        email: DEMO_EMAIL.into(),
        display_name: "데모 Demo".into(),
        password: password.clone(),
        // The demo shows every part of the product, the admin pages included.
        role: Role::Admin,
    };
    accounts::register(app, &RequestMeta::local("demo"), new).await.context("creating the demo user")?;
    write_secret(&dir.join(CREDENTIALS), &format!("email = {DEMO_EMAIL}\npassword = {password}\n"))?;
    Ok(Some(password))
}

/// Gives the demo user the example scenarios, each with one finished run, through the same
/// use cases as the API (validation, version checks, audit, metrics).
async fn ensure_demo_runs(app: &App) -> Result<()> {
    let Some(user) = app.db().user_by_email(DEMO_EMAIL).await? else { bail!("the demo user is missing") };
    let demo = Principal::local(Account::from(&user));
    let meta = RequestMeta::local("demo");
    let existing = scenarios::list(app, &demo, ListQuery::default(), Paging::new(Some(0), Some(100))?).await?;
    let mut pending = Vec::new();
    for (file, text) in DEMO_SCENARIOS {
        let valid = haechi_app::spec::validate_toml(text, file).map_err(|errs| {
            let list: Vec<String> = errs.iter().map(|e| format!("{}: {}", e.field, e.message)).collect();
            anyhow::anyhow!("examples/{file}: {}", list.join("; "))
        })?;
        let scenario = match existing.items.iter().find(|(s, _)| s.name == valid.scenario.name) {
            Some((s, _)) => s.clone(),
            None => scenarios::create(app, &meta, &demo, valid, format!("예제 example {file}")).await?.scenario,
        };
        let done =
            RunFilter { state: Some(RunState::Succeeded.as_str().into()), scenario: Some(ScenarioId(scenario.id)) };
        if runs::list(app, &demo, done, Paging::new(Some(0), Some(1))?).await?.total > 0 {
            continue;
        }
        let run = runs::start(app, &meta, &demo, ScenarioId(scenario.id), None).await.context("queueing a demo run")?;
        pending.push((run.id, scenario.name.clone()));
    }
    let deadline = Instant::now() + Duration::from_secs(300);
    for (id, name) in pending {
        loop {
            let run = runs::get(app, &demo, RunId(id)).await.context("a demo run disappeared")?;
            if let Some(state) = runs::state_of(&run).filter(|s| s.is_final()) {
                let ret = run.total_return.map_or("-".to_owned(), |r| format!("{:+.2}%", r * 100.0));
                println!("  실행 Run {id} {name}: {state} (총수익률 return {ret})");
                if state != RunState::Succeeded {
                    bail!("demo run {id} ({name}) ended {state}: {}", run.error.unwrap_or_default());
                }
                break;
            }
            if Instant::now() > deadline {
                bail!("demo run {id} ({name}) did not finish in time (state {})", run.state);
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
    Ok(())
}

/// `haechi data load`: a synthetic market or a CSV folder into the database.
/// `haechi data load`: a CSV folder when `csv` is given, else the synthetic market `synth_cfg`.
pub fn data_load(file: Option<&Path>, csv: Option<&Path>, synth_cfg: Option<SynthConfig>) -> Result<()> {
    let settings = server::load_settings(file)?;
    server::runtime()?.block_on(async {
        let p = server::open_platform(&settings).await?;
        match csv {
            Some(dir) => {
                let loaded = load_dir(dir, &LoadOptions::default())
                    .map_err(|e| anyhow::anyhow!("market data in {}:\n{e}", dir.display()))?;
                let synthetic = dir.join("synthetic.json").exists();
                load_store(&p, &loaded.store, "csv", synthetic, &format!("CSV import from {}", dir.display())).await?;
            }
            None => {
                let synth_cfg = synth_cfg.unwrap_or_else(demo_synth);
                let store = synth::generate(&synth_cfg).map_err(|e| anyhow::anyhow!("{e}"))?;
                let note = format!(
                    "synthetic: seed {}, {} tickers, {} to {}",
                    synth_cfg.seed, synth_cfg.tickers, synth_cfg.from, synth_cfg.to
                );
                load_store(&p, &store, "synthetic", true, &note).await?;
            }
        }
        p.db.close().await.context("closing the database")
    })
}
