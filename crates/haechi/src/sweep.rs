//! `haechi sweep`: a scenario at every point of a grid, over a CSV market folder.

use crate::cli::invalid;
use anyhow::{Context as _, Result};
use clap::Args;
use haechi_core::Market;
use haechi_data::csv::{LoadOptions, load_dir};
use haechi_sim::scenario::{Document, Format};
use haechi_sim::sweep::{self, PointResult, SweepOptions};
use serde::Serialize;
use std::path::PathBuf;
use std::time::Instant;

#[derive(Debug, Args)]
pub(crate) struct SweepArgs {
    /// Scenario file: TOML, or JSON when it ends in .json.
    #[arg(long)]
    scenario: PathBuf,
    /// Market data directory: TICKER.csv files, instruments.csv, calendar.csv and index/.
    #[arg(long)]
    data: PathBuf,
    /// One axis of the grid, repeatable: FIELD=LO..HI:STEP (inclusive) or FIELD=A,B,C, e.g.
    /// `strategy.fast=5..50:5`, `sizing.percent=5,10,20`, `execution.slippage_bps=0..20:5`.
    #[arg(long = "grid", required = true)]
    grid: Vec<String>,
    /// Write one CSV row per grid point here.
    #[arg(long)]
    out: Option<PathBuf>,
    /// Write the whole result (grid, points, best point, deflated Sharpe ratio, timings) as JSON.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Share of the sessions that is in-sample; the rest is out-of-sample.
    #[arg(long, default_value_t = 0.7)]
    in_sample: f64,
    /// Threads (default: every core).
    #[arg(long, default_value_t = 0)]
    threads: usize,
    /// Benchmark index directory, when not DATA/index.
    #[arg(long)]
    index_dir: Option<PathBuf>,
    /// Market assumed for tickers missing from instruments.csv.
    #[arg(long)]
    default_market: Option<Market>,
    /// Trading-day file, when not DATA/calendar.csv.
    #[arg(long)]
    calendar: Option<PathBuf>,
    /// Print nothing but errors.
    #[arg(long)]
    quiet: bool,
}

#[derive(Serialize)]
struct Timings {
    load_s: f64,
    plan_s: f64,
    run_s: f64,
    points_per_s: f64,
    bar_steps_per_s: f64,
    threads: usize,
}

#[derive(Serialize)]
struct Best<'a> {
    by: &'static str,
    point: &'a PointResult,
    deflated_sharpe: Option<sweep::DeflatedSharpe>,
    /// Where the best in-sample point ranks out of sample (1 = also the best there).
    in_sample_best_oos_rank: Option<usize>,
}

#[derive(Serialize)]
struct SweepOutput<'a> {
    scenario: String,
    data: String,
    grid: &'a [sweep::Axis],
    in_sample: f64,
    points: &'a [PointResult],
    best: Option<Best<'a>>,
    timings: Timings,
}

pub(crate) fn sweep_cmd(args: &SweepArgs) -> Result<()> {
    if !(args.in_sample > 0.0 && args.in_sample < 1.0) {
        return Err(invalid(format!("--in-sample must be between 0 and 1 (exclusive), found {}", args.in_sample)));
    }
    let origin = args.scenario.display().to_string();
    let text =
        std::fs::read_to_string(&args.scenario).map_err(|e| invalid(format!("cannot read scenario {origin}: {e}")))?;
    let format = if args.scenario.extension().is_some_and(|e| e.eq_ignore_ascii_case("json")) {
        Format::Json
    } else {
        Format::Toml
    };
    let doc = Document::parse(&text, format, &origin).map_err(|e| invalid(format!("{origin}: {e}")))?;
    let mut axes = Vec::new();
    let mut axis_errors = Vec::new();
    for g in &args.grid {
        match sweep::parse_axis(g) {
            Ok(a) => axes.push(a),
            Err(e) => axis_errors.push(e),
        }
    }
    let started = Instant::now();
    let plan = sweep::plan(&doc, axes, axis_errors).map_err(|e| invalid(format!("{origin}: {e}")))?;
    let plan_s = started.elapsed().as_secs_f64();

    let started = Instant::now();
    let opts = LoadOptions {
        tickers: union_tickers(&plan.scenarios),
        index_dir: args.index_dir.clone(),
        default_market: args.default_market,
        calendar: args.calendar.clone(),
        ..LoadOptions::default()
    };
    let loaded =
        load_dir(&args.data, &opts).map_err(|e| invalid(format!("market data in {}:\n{e}", args.data.display())))?;
    let load_s = started.elapsed().as_secs_f64();

    let threads = match args.threads {
        0 => std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get),
        t => t,
    };
    let sweep_opts = SweepOptions {
        threads,
        in_sample: args.in_sample,
        synthetic: args.data.join("synthetic.json").exists(),
        clamped_rows: loaded.report.clamped_rows,
        ..SweepOptions::default()
    };
    let started = Instant::now();
    let results = sweep::run(&loaded.store, &plan, sweep_opts).map_err(|e| invalid(format!("{origin}: {e}")))?;
    let run_s = started.elapsed().as_secs_f64();
    let bar_steps: u64 = results.iter().map(|r| r.summary.bar_steps).sum();

    let best = best_point(&results);
    let out = SweepOutput {
        scenario: origin.clone(),
        data: args.data.display().to_string(),
        grid: &plan.axes,
        in_sample: args.in_sample,
        points: &results,
        best,
        timings: Timings {
            load_s,
            plan_s,
            run_s,
            points_per_s: results.len() as f64 / run_s.max(1e-9),
            bar_steps_per_s: bar_steps as f64 / run_s.max(1e-9),
            threads,
        },
    };
    if let Some(path) = &args.out {
        std::fs::write(path, sweep::to_csv(&plan.axes, &results))
            .with_context(|| format!("writing {}", path.display()))?;
    }
    if let Some(path) = &args.json {
        let mut bytes = serde_json::to_vec_pretty(&out).context("serialising the sweep")?;
        bytes.push(b'\n');
        std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    }
    if !args.quiet {
        print_summary(&out, &results);
    }
    Ok(())
}

/// Every ticker any point needs, or `None` (the whole folder) if one needs all.
fn union_tickers(scenarios: &[haechi_sim::scenario::Scenario]) -> Option<Vec<haechi_core::Ticker>> {
    let mut all = std::collections::BTreeSet::new();
    for s in scenarios {
        all.extend(s.required_tickers()?);
    }
    Some(all.into_iter().collect())
}

fn best_point(results: &[PointResult]) -> Option<Best<'_>> {
    let sharpe = |r: &PointResult| r.summary.returns.sharpe.unwrap_or(f64::NEG_INFINITY);
    // Ties go to the first point in grid order, as on the server.
    let best = results.iter().max_by(|a, b| sharpe(a).total_cmp(&sharpe(b)).then(b.index.cmp(&a.index)))?;
    let trials: Vec<f64> = results.iter().map(|r| r.moments.sharpe).collect();
    let is = |r: &PointResult| r.in_sample.sharpe.unwrap_or(f64::NEG_INFINITY);
    let oos = |r: &PointResult| r.out_of_sample.sharpe.unwrap_or(f64::NEG_INFINITY);
    let is_best = results.iter().max_by(|a, b| is(a).total_cmp(&is(b)))?;
    let rank = 1 + results.iter().filter(|r| oos(r) > oos(is_best)).count();
    Some(Best {
        by: "sharpe",
        point: best,
        deflated_sharpe: sweep::deflated_sharpe(best.moments, &trials),
        in_sample_best_oos_rank: Some(rank),
    })
}

fn print_summary(out: &SweepOutput<'_>, results: &[PointResult]) {
    let t = &out.timings;
    println!(
        "스윕 완료 Sweep done: {} points in {:.2} s on {} threads ({:.0} points/s, {:.1} M bar-steps/s); data loaded in {:.2} s",
        results.len(),
        t.run_s,
        t.threads,
        t.points_per_s,
        t.bar_steps_per_s / 1e6,
        t.load_s
    );
    if let Some(best) = &out.best {
        let p = best.point;
        let pct = |v: f64| format!("{:+.2}%", v * 100.0);
        println!(
            "  최고 Best by Sharpe: {} — Sharpe {:.2}, return {}, max drawdown {}, in-sample Sharpe {}, out-of-sample Sharpe {}",
            sweep::describe(&p.params),
            p.summary.returns.sharpe.unwrap_or(f64::NAN),
            pct(p.summary.returns.total_return),
            pct(p.summary.returns.max_drawdown),
            p.in_sample.sharpe.map_or("-".into(), |v| format!("{v:.2}")),
            p.out_of_sample.sharpe.map_or("-".into(), |v| format!("{v:.2}")),
        );
        if let Some(d) = &best.deflated_sharpe {
            println!(
                "  과최적화 Overfitting: deflated Sharpe ratio {:.3} (probability the best's true Sharpe is above zero after {} trials; luck alone would reach {:.3}/session)",
                d.probability, d.trials, d.expected_max_sharpe
            );
        }
        if let Some(rank) = best.in_sample_best_oos_rank {
            println!("  The best in-sample point ranks {rank} of {} out of sample.", results.len());
        }
    }
}
