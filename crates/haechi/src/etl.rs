//! `haechi etl …` and `haechi kis-fake`: market data collection from KIS (or the fake), with a
//! progress bar, and the fake server for demos and manual testing.

use std::io::IsTerminal as _;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context as _, Result, anyhow, bail};
use chrono::NaiveDate;
use haechi_jobs::etl::{BarsParams, DbTokenStore, Etl, EtlOptions, EtlProgress, EtlSummary, ObjectArchive};
use haechi_kis::limiter::{LocalLimiter, RateLimiter, RedisLimiter};
use haechi_kis::{KisClient, KisConfig};

use crate::config::Settings;
use crate::server::{self, Platform, Stores};

/// The KIS client's settings from the `[kis]` keys; `None` when no app key is configured.
pub(crate) fn kis_config(settings: &Settings) -> Option<KisConfig> {
    settings.kis.client_config()
}

/// A client that shares its token through the database and its pace through Redis when
/// configured, archiving every answer in object storage.
pub(crate) async fn kis_client(settings: &Settings, p: &Stores, cfg: KisConfig) -> Result<KisClient> {
    let limiter: Arc<dyn RateLimiter> = match &settings.redis_url {
        Some(url) => RedisLimiter::connect(url.expose(), &cfg.credentials.fingerprint(cfg.env), cfg.rate_per_sec)
            .await
            .context("connecting the KIS rate limiter to Redis")?,
        None => LocalLimiter::new(cfg.rate_per_sec),
    };
    KisClient::builder(cfg)
        .token_store(DbTokenStore::new(p.db.clone()))
        .limiter(limiter)
        .archive(ObjectArchive::new(p.objects.clone()))
        .build()
        .map_err(|e| anyhow!("{e}"))
}

pub(crate) async fn open_etl(settings: &Settings, p: &Stores, concurrency: usize) -> Result<Etl> {
    let Some(cfg) = kis_config(settings) else {
        bail!(
            "KIS is not configured: set HAECHI_KIS_APP_KEY and HAECHI_KIS_APP_SECRET (and HAECHI_KIS_ENV=real for quotes and financials), or run `haechi kis-fake` and point HAECHI_KIS_BASE_URL at it"
        );
    };
    let client = kis_client(settings, p, cfg).await?;
    Ok(Etl::new(p.db.clone(), p.objects.clone(), client, EtlOptions { concurrency, ..EtlOptions::default() }))
}

/// Which tickers a command works on.
#[derive(Debug, Clone, clap::Args)]
pub(crate) struct TickerArgs {
    /// Comma-separated stock codes.
    #[arg(long, value_delimiter = ',', conflicts_with_all = ["market", "tickers_file"])]
    pub tickers: Vec<String>,
    /// A file with one stock code per line (`#` comments allowed).
    #[arg(long, conflicts_with = "market")]
    pub tickers_file: Option<PathBuf>,
    /// Every instrument of this market already in the database (KOSPI, KOSDAQ, …).
    #[arg(long)]
    pub market: Option<String>,
}

async fn resolve_tickers(p: &Stores, args: &TickerArgs, what: &str) -> Result<Vec<String>> {
    let mut list: Vec<String> = args.tickers.iter().map(|t| t.trim().to_owned()).filter(|t| !t.is_empty()).collect();
    if let Some(f) = &args.tickers_file {
        let text = std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?;
        for (i, line) in text.lines().enumerate() {
            let t = line.split('#').next().unwrap_or("").trim();
            if t.is_empty() {
                continue;
            }
            if haechi_core::Ticker::parse(t).is_err() {
                bail!("{}:{}: {t:?} is not a 6-character stock code", f.display(), i + 1);
            }
            list.push(t.to_owned());
        }
    }
    for t in &list {
        if haechi_core::Ticker::parse(t).is_err() {
            bail!("--tickers: {t:?} is not a 6-character stock code");
        }
    }
    if list.is_empty() {
        let market = args.market.as_deref().map(|m| m.trim().to_ascii_uppercase());
        list = p.db.instruments(market.as_deref()).await?.into_iter().map(|i| i.ticker).collect();
        if list.is_empty() {
            bail!(
                "no tickers for {what}: pass --tickers or --tickers-file (KIS has no listing endpoint), or load instruments first with `haechi etl instruments`"
            );
        }
    }
    list.sort();
    list.dedup();
    Ok(list)
}

/// A progress bar on a terminal, periodic lines otherwise (logs, CI).
struct Bar {
    bar: indicatif::ProgressBar,
}

impl Bar {
    fn shared(label: &'static str) -> Arc<dyn EtlProgress> {
        let bar = if std::io::stderr().is_terminal() {
            let b = indicatif::ProgressBar::new(0);
            if let Ok(style) = indicatif::ProgressStyle::with_template(
                "{prefix} [{elapsed_precise}] {wide_bar} {pos}/{len} 종목 tickers · ETA {eta} · {msg}",
            ) {
                b.set_style(style);
            }
            b
        } else {
            indicatif::ProgressBar::hidden()
        };
        bar.set_prefix(label);
        Arc::new(Bar { bar })
    }
}

impl EtlProgress for Bar {
    fn start(&self, total: u64, already_done: u64) {
        self.bar.set_length(total);
        self.bar.set_position(already_done);
        if already_done > 0 {
            self.bar.println(format!("이어서 진행 resuming: {already_done} of {total} tickers already done"));
        }
    }
    fn ticker_done(&self, ticker: &str, rows: u64) {
        self.bar.inc(1);
        self.bar.set_message(format!("{ticker} +{rows}"));
        if self.bar.is_hidden() && self.bar.position().is_multiple_of(20) {
            eprintln!("{}/{} tickers", self.bar.position(), self.bar.length().unwrap_or(0));
        }
    }
    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

fn print_summary(what: &str, s: &EtlSummary) {
    let secs = if s.fetch_secs > 0.0 { s.fetch_secs } else { s.elapsed_secs };
    let rate = if secs > 0.0 { s.requests as f64 / secs } else { 0.0 };
    println!(
        "{what}: run {} — {} tickers{}, {} requests in {:.1} s ({rate:.1}/s), {} rows upserted, {} quality findings{}",
        s.run_id,
        s.tickers,
        if s.resumed { format!(" (resumed; {} already done)", s.skipped_done) } else { String::new() },
        s.requests,
        secs,
        s.rows_upserted,
        s.findings,
        s.report_key.as_ref().map_or(String::new(), |k| format!(", report {k}")),
    );
    for (t, e) in &s.failed {
        eprintln!("  {t}: {e}");
    }
}

pub(crate) fn bars(
    file: Option<&Path>,
    tickers: &TickerArgs,
    from: NaiveDate,
    to: Option<NaiveDate>,
    concurrency: usize,
) -> Result<()> {
    let settings = server::load_settings(file)?;
    server::init_tracing(settings.log_format);
    server::runtime()?.block_on(async {
        let p = server::open_stores(&settings).await?;
        let etl = open_etl(&settings, &p, concurrency).await?;
        let list = resolve_tickers(&p, tickers, "etl bars").await?;
        let to = to.unwrap_or_else(|| haechi_jobs::etl::last_closed_day(haechi_kis::utc_now()));
        let s = etl
            .bars(&BarsParams { tickers: list, from, to }, Bar::shared("일봉 bars"))
            .await
            .map_err(|e| anyhow!("{e}"))?;
        print_summary("일봉 수집 daily bars", &s);
        p.db.close().await.ok();
        if s.failed.is_empty() {
            Ok(())
        } else {
            bail!("{} tickers failed; run the same command again to retry them", s.failed.len())
        }
    })
}

pub(crate) fn instruments(file: Option<&Path>, tickers: &TickerArgs) -> Result<()> {
    let settings = server::load_settings(file)?;
    server::init_tracing(settings.log_format);
    server::runtime()?.block_on(async {
        let p = server::open_stores(&settings).await?;
        let etl = open_etl(&settings, &p, 1).await?;
        let list = resolve_tickers(&p, tickers, "etl instruments").await?;
        let s = etl.instruments(&list, Bar::shared("종목 instruments")).await.map_err(|e| anyhow!("{e}"))?;
        print_summary("종목 정보 instruments", &s);
        if s.failed.is_empty() { Ok(()) } else { bail!("{} tickers failed", s.failed.len()) }
    })
}

pub(crate) fn financials(file: Option<&Path>, tickers: &TickerArgs) -> Result<()> {
    let settings = server::load_settings(file)?;
    server::init_tracing(settings.log_format);
    server::runtime()?.block_on(async {
        let p = server::open_stores(&settings).await?;
        let etl = open_etl(&settings, &p, 1).await?;
        let list = resolve_tickers(&p, tickers, "etl financials").await?;
        let s = etl.financials(&list, Bar::shared("재무 financials")).await.map_err(|e| anyhow!("{e}"))?;
        print_summary("재무제표 financials", &s);
        if s.failed.is_empty() { Ok(()) } else { bail!("{} tickers failed", s.failed.len()) }
    })
}

/// `etl import-csv`: the CSV layout `data synth` writes, as a new data version with a quality
/// report, no KIS needed.
pub(crate) fn import_csv(file: Option<&Path>, dir: &Path) -> Result<()> {
    let settings = server::load_settings(file)?;
    server::init_tracing(settings.log_format);
    let loaded = haechi_data::csv::load_dir(dir, &haechi_data::csv::LoadOptions::default())
        .map_err(|e| crate::cli::invalid(format!("market data in {}:\n{e}", dir.display())))?;
    server::runtime()?.block_on(async {
        let p = server::open_platform(&settings).await?;
        let synthetic = dir.join("synthetic.json").exists();
        let version =
            crate::demo::load_store(&p, &loaded.store, "csv", synthetic, &format!("CSV import from {}", dir.display()))
                .await?;
        let rows = haechi_jobs::market::rows_from_store(&loaded.store);
        let markets =
            rows.instruments.iter().filter_map(|i| Some((i.ticker.clone(), i.market.parse().ok()?))).collect();
        let (from, to) = (
            loaded.store.dates().first().copied().unwrap_or_default(),
            loaded.store.dates().last().copied().unwrap_or_default(),
        );
        let report = haechi_jobs::quality::check(version, &rows.bars, &markets, from, to);
        let key = format!("etl/csv-{version}/quality.json");
        p.objects.put(&key, serde_json::to_vec_pretty(&report)?.into()).await.context("writing the quality report")?;
        println!("데이터 품질 data quality: {} findings {:?} → {key}", report.findings.len(), report.counts);
        Ok(())
    })
}

pub(crate) fn runs(file: Option<&Path>) -> Result<()> {
    let settings = server::load_settings(file)?;
    server::runtime()?.block_on(async {
        let db = server::open_db(&settings).await?;
        for r in db.etl_runs(20).await? {
            println!(
                "{:>5}  {:<12} {:<10} requests {:>6}  rows {:>8}  findings {:>5}  {}",
                r.id,
                r.kind,
                r.state,
                r.requests,
                r.rows_upserted,
                r.findings,
                r.error.or(r.report_key).unwrap_or_default()
            );
        }
        Ok(())
    })
}

/// Arguments of `haechi kis-fake`.
#[derive(Debug, clap::Args)]
pub(crate) struct FakeArgs {
    /// Port on 127.0.0.1 (0: any free port, printed).
    #[arg(long, default_value_t = 9443)]
    pub port: u16,
    /// Address to bind instead of 127.0.0.1.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: std::net::IpAddr,
    /// Which KIS environment to imitate: mock refuses real-only TRs, as KIS does.
    #[arg(long, default_value = "real")]
    pub env: haechi_kis::KisEnv,
    /// Requests per second per app key before `EGW00201` (default: KIS's own, 20 real / 2 mock).
    #[arg(long)]
    pub rate_limit: Option<u32>,
    /// Seconds between token issuances per app key (KIS: 60).
    #[arg(long, default_value_t = 60)]
    pub issue_interval_secs: u64,
    /// Stream the market's own days as intraday sessions on `H0STCNT0`, one every this many
    /// seconds (600: a session in ten minutes), for `haechi market` to match paper orders on.
    /// 0: a random walk from the last close, as before.
    #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(0..=86_400))]
    pub session_secs: u64,
    #[command(flatten)]
    pub market: crate::cli::MarketArgs,
}

pub(crate) fn kis_fake(args: &FakeArgs) -> Result<()> {
    server::init_tracing(crate::config::LogFormat::Text);
    server::runtime()?.block_on(async {
        let mut cfg = haechi_kis::fake::FakeKisConfig::new(args.env, args.market.config());
        if let Some(r) = args.rate_limit {
            cfg.rate_limit = r;
        }
        cfg.min_issue_interval = Duration::from_secs(args.issue_interval_secs);
        if args.session_secs > 0 {
            cfg.ws.replay = Some(haechi_kis::fake::SessionReplay {
                session: Duration::from_secs(args.session_secs),
                ..Default::default()
            });
        }
        let fake = haechi_kis::fake::FakeKis::start(cfg, SocketAddr::new(args.host, args.port))
            .await
            .map_err(|e| anyhow!("{e}"))?;
        println!("가짜 KIS fake KIS ({}) on {}", args.env, fake.base_url());
        println!("  HAECHI_KIS_BASE_URL={}", fake.base_url());
        println!("  HAECHI_KIS_WS_URL={}", fake.ws_url());
        println!(
            "  {} tickers, {} sessions; any app key and secret are accepted",
            fake.tickers().len(),
            fake.market().n_days()
        );
        if args.session_secs > 0 {
            println!(
                "  H0STCNT0: the last 250 days replayed as intraday sessions, one every {} s (`haechi market` matches on it)",
                args.session_secs
            );
        }
        // A line every 10 s while requests arrive: what the server saw, for benchmarks.
        let stats = tokio::spawn(async move {
            let mut last = 0;
            loop {
                tokio::time::sleep(Duration::from_secs(10)).await;
                let n = fake.requests();
                if n != last {
                    println!(
                        "fake KIS: {n} requests, {} answered EGW00201 (too fast), {} tokens issued",
                        fake.rate_limited(),
                        fake.issuances()
                    );
                    last = n;
                }
            }
        });
        server::shutdown_signal().await;
        stats.abort();
        Ok(())
    })
}

/// Starts the daily KIS schedule in this process when KIS is configured. Every `serve` and
/// `worker` process runs it; the schedule claim in the database makes exactly one of them
/// enqueue each trading day's `kis.daily` job, which a worker serving the `etl` queue executes.
/// `kis.daily_at` (`HH:MM`, KST) sets the time.
pub(crate) fn spawn_daily(
    settings: &Settings,
    p: &Platform,
    kis_configured: bool,
    stop: tokio::sync::watch::Receiver<bool>,
) -> Result<Option<tokio::task::JoinHandle<Vec<NaiveDate>>>> {
    if !kis_configured {
        return Ok(None);
    }
    let mut sched = haechi_jobs::schedule::DailySchedule::kis_daily();
    sched.at_kst = settings.kis.daily_at;
    tracing::info!(at_kst = %sched.at_kst, "daily KIS collection scheduled");
    let (db, queue) = (p.db.clone(), p.queue.clone());
    Ok(Some(tokio::spawn(haechi_jobs::schedule::enqueue_daily(db, queue, sched, stop))))
}

/// Lets the schedule loop exit. It only enqueues, so it stops at once unless caught in the
/// middle of a database call; a collection in progress belongs to a worker, not to it.
pub(crate) async fn stop_daily(task: Option<tokio::task::JoinHandle<Vec<NaiveDate>>>) {
    if let Some(mut t) = task
        && tokio::time::timeout(Duration::from_secs(2), &mut t).await.is_err()
    {
        t.abort();
    }
}
