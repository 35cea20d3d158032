//! Parameter sweeps: every grid point equals the single run of its scenario, whatever the
//! threads and batches; a bad grid is refused with every problem listed before any work.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

use chrono::NaiveDate;
use haechi_data::synth::{SynthConfig, generate};
use haechi_sim::engine;
use haechi_sim::report::{self, ReportContext};
use haechi_sim::scenario::{Document, Format, Scenario};
use haechi_sim::sweep::{self, SweepOptions};

const BASE: &str = r#"
name = "sweep"
capital = 50_000_000
benchmark = "KS11"
period = { start = 2020-01-02, end = 2021-12-30 }
universe = { all = true }
strategy = { type = "sma_cross", fast = 10, slow = 40 }
sizing = { type = "percent_of_equity", percent = 5 }
execution = { slippage_bps = 5 }
"#;

fn axes(specs: &[&str]) -> Vec<sweep::Axis> {
    specs.iter().map(|s| sweep::parse_axis(s).unwrap()).collect()
}

#[test]
fn every_point_equals_its_single_run_whatever_the_threads() {
    let cfg = SynthConfig {
        seed: 7,
        tickers: 30,
        from: NaiveDate::from_ymd_opt(2019, 1, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2021, 12, 31).unwrap(),
    };
    let store = generate(&cfg).unwrap();
    let doc = Document::parse(BASE, Format::Toml, "base").unwrap();
    let plan = sweep::plan(
        &doc,
        axes(&["strategy.fast=5,10", "strategy.slow=30..60:30", "execution.slippage_bps=0,10"]),
        Vec::new(),
    )
    .unwrap();
    assert_eq!(plan.scenarios.len(), 8);
    let opts = SweepOptions { threads: 2, batch: 3, synthetic: true, ..SweepOptions::default() };
    let results = sweep::run(&store, &plan, opts).unwrap();
    assert_eq!(results.len(), 8);
    for (i, r) in results.iter().enumerate() {
        assert_eq!(r.index, i);
        // The single run, built independently from the scenario text and the point.
        let single = Scenario::parse_with(BASE, Format::Toml, "base", &r.params).unwrap();
        let bound = single.bind(&store).unwrap();
        let out = engine::run(&store, &bound.universe, single.strategy(&bound).as_mut(), &bound.config).unwrap();
        assert_eq!(sweep::digest(&out), r.fills_digest, "fills differ at {}", sweep::describe(&r.params));
        assert!(!out.fills.is_empty());
        let ctx = ReportContext {
            store: &store,
            start: bound.config.start,
            benchmark: bound.benchmark.as_ref(),
            synthetic: true,
            clamped_rows: 0,
            universe_size: bound.universe.len(),
        };
        let report = report::build(&single, out, ctx);
        assert_eq!(
            serde_json::to_value(&report.summary).unwrap(),
            serde_json::to_value(&r.summary).unwrap(),
            "metrics differ at {}",
            sweep::describe(&r.params)
        );
        // In- and out-of-sample halves split the run's sessions.
        assert_eq!(r.in_sample.sessions + r.out_of_sample.sessions, report.equity_curve.len());
    }
    // The points differ from each other (the grid did change the runs).
    let digests: std::collections::BTreeSet<&str> = results.iter().map(|r| r.fills_digest.as_str()).collect();
    assert_eq!(digests.len(), 8);
    // One thread, one run per batch: the same results.
    let serial = sweep::run(&store, &plan, SweepOptions { threads: 1, batch: 1, synthetic: true, ..opts }).unwrap();
    for (a, b) in results.iter().zip(&serial) {
        assert_eq!(a.fills_digest, b.fills_digest);
        assert_eq!(serde_json::to_value(&a.summary).unwrap(), serde_json::to_value(&b.summary).unwrap());
    }
    let csv = sweep::to_csv(&plan.axes, &results);
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 9);
    assert!(lines[0].starts_with("point,strategy.fast,strategy.slow,execution.slippage_bps,total_return,"));
    assert!(lines[1].starts_with("0,5,30,0,"));
}

#[test]
fn a_bad_grid_is_refused_with_every_problem_listed() {
    let doc = Document::parse(BASE, Format::Toml, "base").unwrap();
    let mut axis_errors = Vec::new();
    for bad in ["strategy.slow=90..60", "sizing.percent=abc"] {
        axis_errors.push(sweep::parse_axis(bad).unwrap_err());
    }
    let err = sweep::plan(&doc, axes(&["strategy.fastt=1..3", "strategy.type=1,2"]), axis_errors).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("grid strategy.slow: the range 90..60 is empty"), "{text}");
    assert!(text.contains("grid sizing.percent: \"abc\" is not a number"), "{text}");
    // Axis syntax errors stop before points are checked; the rest are reported per point.
    let err = sweep::plan(&doc, axes(&["strategy.fastt=1..3", "strategy.type=1,2", "name=7"]), Vec::new()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("grid strategy.fastt=1: strategy.fastt: is not a known field"), "{text}");
    assert!(text.contains("grid strategy.type=1: strategy.type: must be a string, found an integer"), "{text}");
    assert!(text.contains("grid name=7: name: must be a string, found an integer"), "{text}");
    // A rule between fields: only the points that break it, and where the first one is.
    let err = sweep::plan(&doc, axes(&["strategy.fast=20..50:10"]), Vec::new()).unwrap_err();
    let text = err.to_string();
    assert!(text.contains("(2 of 4 points, first at strategy.fast=40)"), "{text}");
    // Too many points, counted before anything is built.
    let err = sweep::plan(&doc, axes(&["strategy.fast=1..400", "strategy.slow=401..700"]), Vec::new()).unwrap_err();
    assert!(
        err.to_string().contains("the grid has 120000 points (400 × 300); a sweep may have at most 100000"),
        "{err}"
    );
    let err = sweep::plan(&doc, axes(&["strategy.fast=5", "strategy.fast=6"]), Vec::new()).unwrap_err();
    assert!(err.to_string().contains("grid strategy.fast: the field is given twice"), "{err}");
}
