//! Server-side rendering of the portal's report page for a ten-year run: 200 synthetic tickers,
//! 2015–2024, the `momentum_rotation` example (2016-01-04 to 2024-12-30). Prints the time to
//! read the report JSON into the one `Report` type, schema check included (once per run: the
//! parsed report is cached), and the render time percentiles over 300 renders (charts,
//! metrics, heat map, a page of trades, the template).
//! Target: p95 < 50 ms. Run: `cargo bench --workspace --bench portal_render`.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::time::{Duration, Instant};

use chrono::NaiveDate;
use haechi_sim::scenario::{Format, Scenario};
use haechi_sim::{engine, report};
use haechi_web::portal::i18n::{Lang, Tr};
use haechi_web::portal::{NavUser, RunHeader, render_run_page, report as view};

fn main() {
    let cfg = haechi_data::synth::SynthConfig {
        seed: 42,
        tickers: 200,
        from: NaiveDate::from_ymd_opt(2015, 1, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
    };
    let store = haechi_data::synth::generate(&cfg).unwrap();
    let text = include_str!("../../../examples/momentum_rotation.toml");
    let scenario = Scenario::parse(text, Format::Toml, "momentum_rotation.toml").unwrap();
    let bound = scenario.bind(&store).unwrap();
    let mut strategy = scenario.strategy(&bound);
    let run = engine::run(&store, &bound.universe, strategy.as_mut(), &bound.config).unwrap();
    let ctx = report::ReportContext {
        store: &store,
        start: bound.config.start,
        benchmark: bound.benchmark.as_ref(),
        synthetic: true,
        clamped_rows: 0,
        universe_size: bound.universe.len(),
    };
    let built = report::build(&scenario, run, ctx);
    let json = serde_json::to_vec(&built).unwrap();

    let t0 = Instant::now();
    let parsed = view::parse("bench/report.json", &json).unwrap();
    let parse = t0.elapsed();
    println!(
        "report: {} sessions, {} closed trades, {} monthly returns, JSON {:.1} MB; parse {:.1} ms (once per run, then cached)",
        parsed.equity_curve.len(),
        parsed.trades.len(),
        parsed.monthly_returns.len(),
        json.len() as f64 / 1e6,
        parse.as_secs_f64() * 1e3
    );

    let header = RunHeader::run(1, "succeeded", 1.0);
    let mut times: Vec<Duration> = Vec::new();
    let mut bytes = 0;
    for i in 0..320 {
        let t = Tr::new(if i % 2 == 0 { Lang::Ko } else { Lang::En });
        let start = Instant::now();
        let html = render_run_page(
            t,
            Some(NavUser::new("bench@example.com")),
            "csrf",
            &header,
            Some(parsed.clone()),
            1 + i % 3,
        )
        .unwrap();
        let took = start.elapsed();
        bytes = html.len();
        if i >= 20 {
            times.push(took); // the first 20 warm caches and the allocator
        }
    }
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)].as_secs_f64() * 1e3;
    println!(
        "render report page ({} renders, {:.0} KB of HTML): p50 {:.2} ms, p95 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p95 < 50 ms)",
        times.len(),
        bytes as f64 / 1e3,
        at(0.50),
        at(0.95),
        at(0.99),
        times.last().unwrap().as_secs_f64() * 1e3
    );
}
