//! Command-line interface.

use anyhow::{Context as _, Result};
use chrono::NaiveDate;
use clap::{Args, Parser, Subcommand};
use haechi_core::Market;
use haechi_data::csv::{LoadOptions, load_dir};
use haechi_data::synth::{self, SynthConfig};
use haechi_sim::report::{self, Report, ReportContext};
use haechi_sim::scenario::{Format, Scenario};
use haechi_sim::{engine, html};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "haechi", version, about = "해치 Haechi: practise investing under real KRX rules")]
struct Cli {
    /// Configuration file (TOML). Environment variables `HAECHI_*` override it.
    #[arg(long, global = true, env = "HAECHI_CONFIG")]
    config: Option<PathBuf>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Everything on embedded defaults: a synthetic market, a demo user, example scenarios
    /// with finished runs, then the server on 127.0.0.1:8080.
    Demo(DemoArgs),
    /// Market data tools.
    Data {
        #[command(subcommand)]
        command: DataCommand,
    },
    /// Run one scenario file over a market data directory and report.
    Simulate(SimulateArgs),
    /// Run a scenario at every point of a grid over its numeric fields, on every core, and
    /// write one row of metrics per point (with in-/out-of-sample halves and the deflated
    /// Sharpe ratio of the best).
    Sweep(crate::sweep::SweepArgs),
    /// Threat-response playbooks: check one, or evaluate one over history with and without it
    /// (both daily equity curves and the figures per crisis window).
    Guard {
        #[command(subcommand)]
        command: crate::guard::GuardCommand,
    },
    /// Market data collection from the KIS Open API (or `haechi kis-fake`), and CSV import.
    Etl {
        #[command(subcommand)]
        command: EtlCommand,
    },
    /// A fake KIS Open API server over a synthetic market, for demos and trying the ETL.
    KisFake(crate::etl::FakeArgs),
    /// Serve the REST API (and, later, the portal), with in-process workers on the embedded queue.
    Serve,
    /// Run the paper-trading matcher: with KIS keys, on KIS's `H0STCNT0` trade feed (or
    /// `haechi kis-fake`'s replayed sessions) for the tickers with open orders or holdings;
    /// without, a replay of the loaded daily data (one session every `paper_replay_secs`, 600
    /// when unset).
    Market,
    /// Run jobs from the queue (Redis in production) until SIGTERM: simulation runs, and the
    /// daily KIS collection when KIS is configured.
    Worker(WorkerArgs),
    /// Apply database migrations and exit.
    Migrate,
    /// Configuration tools.
    Config {
        #[command(subcommand)]
        command: ConfigCommand,
    },
    /// User administration.
    User {
        #[command(subcommand)]
        command: UserCommand,
    },
}

#[derive(Debug, Subcommand)]
enum EtlCommand {
    /// Stock information (name, market, sector) into `instruments` (KIS real environment).
    Instruments {
        #[command(flatten)]
        tickers: crate::etl::TickerArgs,
    },
    /// Daily bars: only the days not yet collected; safe to rerun or to resume after a crash.
    Bars {
        #[command(flatten)]
        tickers: crate::etl::TickerArgs,
        /// First day (YYYY-MM-DD).
        #[arg(long)]
        from: NaiveDate,
        /// Last day (default: the last closed session).
        #[arg(long)]
        to: Option<NaiveDate>,
        /// Tickers fetched at once; the rate limit sets the pace.
        #[arg(long, default_value_t = 8)]
        concurrency: usize,
    },
    /// Annual and quarterly statements and ratios into `financials` (KIS real environment).
    Financials {
        #[command(flatten)]
        tickers: crate::etl::TickerArgs,
    },
    /// Import a CSV folder (the layout `data synth` writes) as a new data version, with a
    /// data-quality report.
    ImportCsv { dir: PathBuf },
    /// The last 20 ETL runs.
    Runs,
}

#[derive(Debug, Subcommand)]
enum ConfigCommand {
    /// Print the effective settings, secrets masked, with where each value came from.
    Check,
    /// Print every key, its variable, default and meaning (the table in docs/configuration.md).
    Keys,
}

#[derive(Debug, Subcommand)]
enum UserCommand {
    /// Create a user. The password is read from HAECHI_NEW_USER_PASSWORD or standard input.
    Create {
        #[arg(long)]
        email: String,
        #[arg(long, default_value = "investor")]
        role: String,
        #[arg(long)]
        display_name: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
enum DataCommand {
    /// Write a deterministic synthetic KRX market (CSV per ticker, instruments, indices).
    Synth(SynthArgs),
    /// Load market data into the database (a new data version): a synthetic market, or a
    /// CSV folder in the layout `data synth` writes.
    Load(LoadArgs),
    /// Import real KRX data in the layout of `shared/data/krx` (stocks, reference, calendar,
    /// indices) into a market folder, and with `--load` into the database.
    ImportKrx(ImportKrxArgs),
}

#[derive(Debug, Args)]
struct ImportKrxArgs {
    /// The shared data folder (holds stocks/, reference/, calendar/, index/).
    #[arg(long)]
    from: PathBuf,
    /// Market folder to write (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Also load the folder into the database as a new data version.
    #[arg(long)]
    load: bool,
}

#[derive(Debug, Args)]
struct LoadArgs {
    /// A CSV folder to import instead of generating a synthetic market.
    #[arg(long, conflicts_with_all = ["seed", "tickers", "from", "to"])]
    csv: Option<PathBuf>,
    #[command(flatten)]
    market: MarketArgs,
}

#[derive(Debug, Args)]
struct WorkerArgs {
    /// Jobs executed at once by this process, per queue.
    #[arg(long, default_value_t = 2)]
    concurrency: u32,
    /// Comma-separated queues to serve: `runs` (simulation runs), `etl` (the daily KIS
    /// collection; needs KIS settings). Default: all this process can handle.
    #[arg(long, value_delimiter = ',')]
    queues: Vec<String>,
    /// Serve Prometheus metrics on this address (`/metrics`).
    #[arg(long)]
    metrics_addr: Option<std::net::SocketAddr>,
}

/// What synthetic market to generate.
#[derive(Debug, Args)]
pub(crate) struct MarketArgs {
    /// Random seed: the same seed always gives the same market.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Number of tickers.
    #[arg(long, default_value_t = 200)]
    tickers: usize,
    /// First calendar day (YYYY-MM-DD).
    #[arg(long, default_value = "2015-01-01")]
    from: NaiveDate,
    /// Last calendar day (YYYY-MM-DD).
    #[arg(long, default_value = "2024-12-31")]
    to: NaiveDate,
}

impl MarketArgs {
    pub(crate) fn config(&self) -> SynthConfig {
        SynthConfig { seed: self.seed, tickers: self.tickers, from: self.from, to: self.to }
    }
}

#[derive(Debug, Args)]
struct SynthArgs {
    #[command(flatten)]
    market: MarketArgs,
    /// Output directory (created if missing).
    #[arg(long)]
    out: PathBuf,
}

#[derive(Debug, Args)]
struct SimulateArgs {
    /// Scenario file: TOML, or JSON when it ends in .json.
    #[arg(long)]
    scenario: PathBuf,
    /// Market data directory: TICKER.csv files, optional instruments.csv and index/.
    #[arg(long)]
    data: PathBuf,
    /// Benchmark index directory, when not DATA/index.
    #[arg(long)]
    index_dir: Option<PathBuf>,
    /// Market assumed for tickers missing from instruments.csv (without it they are an error:
    /// KOSPI and KOSDAQ differ in ticks and taxes).
    #[arg(long)]
    default_market: Option<Market>,
    /// Trading-day file (a `date` column), when not DATA/calendar.csv.
    #[arg(long)]
    calendar: Option<PathBuf>,
    /// Write the JSON report here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the self-contained HTML report here.
    #[arg(long)]
    html: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long)]
    quiet: bool,
}

#[derive(Debug, Args)]
struct DemoArgs {
    /// Data folder (default: the `data_dir` setting, `./haechi-data`).
    #[arg(long)]
    dir: Option<PathBuf>,
    /// Delete the demo's data folder first and start over.
    #[arg(long)]
    reset: bool,
    /// Prepare everything, print the credentials, and exit without serving.
    #[arg(long)]
    no_serve: bool,
}

/// Exit status for invalid input (scenario, data, arguments), as clap uses for usage errors.
const INVALID_INPUT: u8 = 2;

/// A failure the user can fix, already formatted with every problem listed.
#[derive(Debug)]
struct InvalidInput(String);

impl std::fmt::Display for InvalidInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for InvalidInput {}

/// An error the user can fix, reported with exit status 2.
pub(crate) fn invalid(message: String) -> anyhow::Error {
    let mut m = message;
    if !m.ends_with('\n') {
        m.push('\n');
    }
    anyhow::Error::new(InvalidInput(m))
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Demo(args) => crate::demo::demo(
            cli.config.as_deref(),
            &crate::demo::DemoOptions { dir: args.dir, reset: args.reset, no_serve: args.no_serve },
        ),
        Command::Data { command: DataCommand::Synth(args) } => synth_cmd(&args),
        Command::Data { command: DataCommand::Load(args) } => {
            crate::demo::data_load(cli.config.as_deref(), args.csv.as_deref(), Some(args.market.config()))
        }
        Command::Worker(args) => {
            crate::server::worker(cli.config.as_deref(), args.concurrency, args.queues, args.metrics_addr)
        }
        Command::Simulate(args) => simulate_cmd(&args),
        Command::Sweep(args) => crate::sweep::sweep_cmd(&args),
        Command::Guard { command } => crate::guard::guard_cmd(&command),
        Command::Data { command: DataCommand::ImportKrx(args) } => import_krx_cmd(cli.config.as_deref(), &args),
        Command::Etl { command } => match command {
            EtlCommand::Instruments { tickers } => crate::etl::instruments(cli.config.as_deref(), &tickers),
            EtlCommand::Bars { tickers, from, to, concurrency } => {
                crate::etl::bars(cli.config.as_deref(), &tickers, from, to, concurrency)
            }
            EtlCommand::Financials { tickers } => crate::etl::financials(cli.config.as_deref(), &tickers),
            EtlCommand::ImportCsv { dir } => crate::etl::import_csv(cli.config.as_deref(), &dir),
            EtlCommand::Runs => crate::etl::runs(cli.config.as_deref()),
        },
        Command::KisFake(args) => crate::etl::kis_fake(&args),
        Command::Serve => crate::server::serve(cli.config.as_deref()),
        Command::Market => crate::server::market(cli.config.as_deref()),
        Command::Migrate => crate::server::migrate(cli.config.as_deref()),
        Command::Config { command: ConfigCommand::Check } => crate::server::config_check(cli.config.as_deref()),
        Command::Config { command: ConfigCommand::Keys } => {
            print!("{}", crate::config::docs_table());
            Ok(())
        }
        Command::User { command: UserCommand::Create { email, role, display_name } } => {
            crate::server::user_create(cli.config.as_deref(), &email, &role, display_name.as_deref())
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let mut err = std::io::stderr().lock();
            if let Some(invalid) = e.downcast_ref::<InvalidInput>() {
                let _ = write!(err, "error: {invalid}");
                ExitCode::from(INVALID_INPUT)
            } else {
                let _ = writeln!(err, "error: {e:#}");
                ExitCode::FAILURE
            }
        }
    }
}

fn import_krx_cmd(config: Option<&Path>, args: &ImportKrxArgs) -> Result<()> {
    let s = haechi_data::krx_import::import_krx(&args.from, &args.out).map_err(|e| invalid(e.to_string()))?;
    println!(
        "KRX 데이터 가져오기 완료 Imported real KRX data: {} tickers ({} KOSPI, {} KOSDAQ), {} rows, {} calendar days, indices {} → {}",
        s.tickers,
        s.kospi,
        s.kosdaq,
        s.rows,
        s.calendar_days,
        s.indices.join(", "),
        args.out.display()
    );
    for c in &s.cuts {
        println!(
            "  {} starts at {}: the close moved ×{:.3} that day, beyond any price limit (an unadjusted corporate action); {} earlier rows dropped",
            c.ticker, c.from, c.ratio, c.rows_dropped
        );
    }
    // Loading checks the folder the way every run will read it.
    let loaded = load_dir(&args.out, &LoadOptions::default())
        .map_err(|e| invalid(format!("the imported folder {} does not load:\n{e}", args.out.display())))?;
    println!(
        "  확인 Checked: {} instruments × {} sessions ({} to {}), {} rows clamped (adjusted low/high)",
        loaded.store.n_instruments(),
        loaded.store.n_days(),
        loaded.store.dates().first().map_or(String::new(), ToString::to_string),
        loaded.store.dates().last().map_or(String::new(), ToString::to_string),
        loaded.report.clamped_rows
    );
    if args.load {
        crate::demo::data_load(config, Some(&args.out), None)?;
    }
    Ok(())
}

fn synth_cmd(args: &SynthArgs) -> Result<()> {
    let cfg = args.market.config();
    let store = synth::generate(&cfg).map_err(|e| InvalidInput(format!("{e}\n")))?;
    synth::write_dir(&store, &cfg, &args.out).with_context(|| format!("writing {}", args.out.display()))?;
    println!(
        "합성 시장 생성 완료 Synthetic market written: {} tickers × {} sessions ({} to {}) → {}",
        store.n_instruments(),
        store.n_days(),
        store.dates().first().map_or(String::new(), ToString::to_string),
        store.dates().last().map_or(String::new(), ToString::to_string),
        args.out.display()
    );
    Ok(())
}

fn simulate_cmd(args: &SimulateArgs) -> Result<()> {
    let origin = args.scenario.display().to_string();
    let text = std::fs::read_to_string(&args.scenario)
        .map_err(|e| InvalidInput(format!("cannot read scenario {origin}: {e}\n")))?;
    let format = if args.scenario.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
        Format::Json
    } else {
        Format::Toml
    };
    let scenario = Scenario::parse(&text, format, &origin).map_err(|e| InvalidInput(format!("{origin}: {e}")))?;
    let opts = LoadOptions {
        tickers: scenario.required_tickers(),
        index_dir: args.index_dir.clone(),
        default_market: args.default_market,
        calendar: args.calendar.clone(),
        ..LoadOptions::default()
    };
    let report = run_scenario(&scenario, &origin, &args.data, &opts)?;
    write_outputs(&report, args.out.as_deref(), args.html.as_deref())?;
    if !args.quiet {
        print!("{}", report::summary_text(&report));
        for (label, path) in [("JSON", &args.out), ("HTML", &args.html)] {
            if let Some(p) = path {
                println!("{label} 보고서 report: {}", p.display());
            }
        }
    }
    Ok(())
}

/// Loads the data a scenario needs, runs it and builds the report.
fn run_scenario(scenario: &Scenario, origin: &str, data: &Path, opts: &LoadOptions) -> Result<Report> {
    let loaded = load_dir(data, opts).map_err(|e| InvalidInput(format!("market data in {}:\n{e}", data.display())))?;
    let store = &loaded.store;
    let bound = scenario.bind(store).map_err(|e| InvalidInput(format!("{origin}: {e}")))?;
    let mut strategy = scenario.strategy(&bound);
    let run = engine::run(store, &bound.universe, strategy.as_mut(), &bound.config)
        .map_err(|e| InvalidInput(format!("{origin}: {e}\n")))?;
    let ctx = ReportContext {
        store,
        start: bound.config.start,
        benchmark: bound.benchmark.as_ref(),
        synthetic: is_synthetic(data),
        clamped_rows: loaded.report.clamped_rows,
        universe_size: bound.universe.len(),
    };
    Ok(report::build(scenario, run, ctx))
}

fn write_outputs(report: &Report, json: Option<&Path>, html_path: Option<&Path>) -> Result<()> {
    if let Some(path) = json {
        let mut bytes = serde_json::to_vec_pretty(report).context("serialising the report")?;
        bytes.push(b'\n');
        write_file(path, &bytes)?;
    }
    if let Some(path) = html_path {
        let page = html::render(report).context("rendering the HTML report")?;
        write_file(path, page.as_bytes())?;
    }
    Ok(())
}

fn write_file(path: &Path, bytes: &[u8]) -> Result<()> {
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}

/// Whether a data directory carries the synthetic-data marker written by `data synth`.
fn is_synthetic(dir: &Path) -> bool {
    std::fs::read_to_string(dir.join("synthetic.json"))
        .ok()
        .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
        .and_then(|v| v.get("synthetic").and_then(serde_json::Value::as_bool))
        .unwrap_or(false)
}
