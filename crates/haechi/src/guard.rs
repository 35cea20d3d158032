//! `haechi guard`: playbooks outside the server — check one, or evaluate it over history
//! with and without it ("what the plan changed").

use anyhow::{Context as _, Result, bail};
use chrono::NaiveDate;
use clap::{Args, Subcommand};
use haechi_guard::evaluate::{self, Evaluation, Options};
use haechi_guard::market::{IndexDay, MarketSeries};
use haechi_guard::playbook::{self, Playbook};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub(crate) enum GuardCommand {
    /// Validate a playbook and list every problem with its path.
    Check {
        /// A playbook file (TOML), or a built-in one: market-default, security-default.
        #[arg(long)]
        playbook: String,
    },
    /// Hold an index (or a portfolio) through history with and without a playbook, and write
    /// both daily equity curves and the figures per crisis window.
    Evaluate(EvaluateArgs),
}

#[derive(Debug, Args)]
pub(crate) struct EvaluateArgs {
    /// Data directory in the layout of `data/krx`: `index/KS11.csv`, and `stocks/TICKER.csv`
    /// for `--portfolio`.
    #[arg(long)]
    data: PathBuf,
    /// A playbook file (TOML), or a built-in one: market-default, security-default.
    #[arg(long, default_value = "market-default")]
    playbook: String,
    /// The index whose signals the rules read (and that is held without `--portfolio`).
    #[arg(long, default_value = "KS11")]
    index: String,
    /// Hold these names instead of the index, rebalanced daily to the weights:
    /// `005930=0.4,000660=0.3,035420=0.3` (weights are normalised to sum to 1).
    #[arg(long)]
    portfolio: Option<String>,
    /// First day (YYYY-MM-DD); the rules warm up on the history before it.
    #[arg(long)]
    from: Option<NaiveDate>,
    /// Last day (YYYY-MM-DD).
    #[arg(long)]
    to: Option<NaiveDate>,
    /// Cost per unit of exposure changed (0.001 = 0.1%: fees and slippage).
    #[arg(long, default_value_t = 0.001)]
    cost: f64,
    /// Write the whole result (figures, rule changes, daily curves) as JSON here.
    #[arg(long)]
    out: PathBuf,
    /// Also write the daily curves as CSV (`date,with,without,exposure,hedge`).
    #[arg(long)]
    csv: Option<PathBuf>,
}

fn load_playbook(spec: &str) -> Result<Playbook> {
    let text = match playbook::builtin(spec) {
        Some(text) => text.to_owned(),
        None => std::fs::read_to_string(spec).with_context(|| {
            format!("reading the playbook {spec} (not a file, nor a built-in: {})", playbook::BUILTIN.join(", "))
        })?,
    };
    Playbook::from_toml(&text).map_err(|p| {
        let lines: Vec<String> = p.0.iter().map(|p| format!("  {p}")).collect();
        crate::cli::invalid(format!("{spec}: {} problem(s)\n{}", p.0.len(), lines.join("\n")))
    })
}

pub(crate) fn guard_cmd(cmd: &GuardCommand) -> Result<()> {
    match cmd {
        GuardCommand::Check { playbook } => {
            let pb = load_playbook(playbook)?;
            println!(
                "{playbook}: valid — \"{}\", {} rule(s), mode {}, reads {}",
                pb.name,
                pb.rules.len(),
                pb.mode.as_str(),
                pb.signals().iter().map(ToString::to_string).collect::<Vec<_>>().join(", ")
            );
            Ok(())
        }
        GuardCommand::Evaluate(args) => evaluate_cmd(args),
    }
}

fn read_series(path: &Path, what: &str) -> Result<MarketSeries> {
    let text = std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    Ok(MarketSeries::parse_csv(what, &text)?)
}

/// A daily-rebalanced portfolio's level on the index's days where every name has a bar.
fn portfolio_series(data: &Path, spec: &str, market: &MarketSeries) -> Result<(Vec<IndexDay>, String)> {
    let mut weights = Vec::new();
    for (i, part) in spec.split(',').enumerate() {
        let Some((ticker, w)) = part.split_once('=') else {
            return Err(crate::cli::invalid(format!("--portfolio item {} (\"{part}\"): write TICKER=WEIGHT", i + 1)));
        };
        let w: f64 = w.trim().parse().ok().filter(|w: &f64| w.is_finite() && *w > 0.0).ok_or_else(|| {
            crate::cli::invalid(format!(
                "--portfolio item {} ({ticker}): weight \"{w}\" is not a positive number",
                i + 1
            ))
        })?;
        weights.push((ticker.trim().to_owned(), w));
    }
    let total: f64 = weights.iter().map(|(_, w)| w).sum();
    let mut names: Vec<(f64, BTreeMap<NaiveDate, IndexDay>)> = Vec::new();
    for (ticker, w) in &weights {
        let path = data.join("stocks").join(format!("{ticker}.csv"));
        let s = read_series(&path, ticker)?;
        names.push((w / total, s.days().iter().map(|d| (d.date, *d)).collect()));
    }
    // The span where every name is listed: from the latest first bar to the earliest last.
    let first = names.iter().filter_map(|(_, m)| m.keys().next()).max().copied();
    let last = names.iter().filter_map(|(_, m)| m.keys().next_back()).min().copied();
    let (Some(first), Some(last)) = (first, last) else {
        bail!("--portfolio: a name has no bars");
    };
    if first > last {
        bail!("--portfolio: the names were never listed at the same time");
    }
    let mut out: Vec<IndexDay> = Vec::new();
    let mut prev: Vec<f64> = Vec::new();
    for d in market.days().iter().filter(|d| d.date >= first && d.date <= last) {
        // A name without a bar inside the span was halted: flat for the day.
        let today: Vec<(f64, f64)> = names
            .iter()
            .enumerate()
            .map(|(k, (_, m))| match m.get(&d.date) {
                Some(b) => (if b.open > 0.0 { b.open } else { b.close }, b.close),
                None => (prev.get(k).copied().unwrap_or(f64::NAN), prev.get(k).copied().unwrap_or(f64::NAN)),
            })
            .collect();
        if today.iter().any(|(_, c)| c.is_nan()) {
            continue;
        }
        match out.last() {
            Some(last) => {
                let (mut r, mut gap) = (0.0, 0.0);
                for (((w, _), (open, close)), pc) in names.iter().zip(&today).zip(&prev) {
                    r += w * (close / pc - 1.0);
                    gap += w * (open / pc - 1.0);
                }
                out.push(IndexDay { date: d.date, open: last.close * (1.0 + gap), close: last.close * (1.0 + r) });
            }
            None => out.push(IndexDay { date: d.date, open: 100.0, close: 100.0 }),
        }
        prev = today.iter().map(|(_, c)| *c).collect();
    }
    let name = weights.iter().map(|(t, w)| format!("{t}={:.3}", w / total)).collect::<Vec<_>>().join(",");
    Ok((out, format!("portfolio {name}")))
}

fn evaluate_cmd(args: &EvaluateArgs) -> Result<()> {
    let pb = load_playbook(&args.playbook)?;
    if !(0.0..0.1).contains(&args.cost) {
        return Err(crate::cli::invalid(format!("--cost {} is outside 0..0.1 (0.001 is 0.1%)", args.cost)));
    }
    let index_path = args.data.join("index").join(format!("{}.csv", args.index));
    let market = read_series(&index_path, &args.index)?;
    let (asset, asset_name) = match &args.portfolio {
        Some(spec) => portfolio_series(&args.data, spec, &market)?,
        None => (market.days().to_vec(), args.index.clone()),
    };
    let opts = Options { from: args.from, to: args.to, cost: args.cost, ..Options::default() };
    let e = evaluate::evaluate(&market, &args.index, &asset, &asset_name, &pb, &opts)?;
    let json = serde_json::to_vec_pretty(&e)?;
    std::fs::write(&args.out, json).with_context(|| format!("writing {}", args.out.display()))?;
    if let Some(csv) = &args.csv {
        let mut s = String::from("date,with,without,exposure,hedge\n");
        for d in &e.days {
            s.push_str(&format!("{},{:.6},{:.6},{},{}\n", d.date, d.with, d.without, d.exposure, d.hedge));
        }
        std::fs::write(csv, s).with_context(|| format!("writing {}", csv.display()))?;
    }
    print_summary(&e);
    Ok(())
}

fn pct(v: f64) -> String {
    format!("{:+.1}%", v * 100.0)
}

fn print_summary(e: &Evaluation) {
    println!(
        "{} on {} (signals from {}), {} .. {}, cost {}% per unit of exposure changed",
        e.playbook,
        e.asset,
        e.signals_from,
        e.from,
        e.to,
        e.cost * 100.0
    );
    println!(
        "{:<26} {:>8} {:>8} {:>5} {:>8} {:>8} {:>7} {:>7} {:>7} {:>8} {:>8}",
        "window",
        "MDD w/o",
        "MDD with",
        "cut",
        "ret w/o",
        "ret with",
        "CAGR-pt",
        "actions",
        "whipsaw",
        "worst mo",
        "(w/o)"
    );
    for f in std::iter::once(&e.whole).chain(&e.windows) {
        // Annualising a few months says nothing: the CAGR cost is shown for a year or more.
        let long = (f.window.to - f.window.from).num_days() >= 360;
        println!(
            "{:<26} {:>8} {:>8} {:>5} {:>8} {:>8} {:>7} {:>7} {:>7} {:>8} {:>8}",
            f.window.name,
            pct(f.without.max_drawdown),
            pct(f.with.max_drawdown),
            f.drawdown_cut.map(|c| format!("{:.0}%", c * 100.0 + 0.0)).unwrap_or_default(),
            pct(f.without.total_return),
            pct(f.with.total_return),
            if long { format!("{:.2}", f.cagr_cost_points) } else { String::new() },
            f.actions,
            f.whipsaws,
            f.with.worst_month.map(pct).unwrap_or_default(),
            f.without.worst_month.map(pct).unwrap_or_default(),
        );
    }
    println!(
        "CAGR-pt: CAGR without minus with, in points (negative: the plan earned more). \
         Cash earns nothing; decisions at the close trade at the next open."
    );
}
