//! The report contract: what the engine's run is built into, written as JSON, reads back as the
//! same value (floats to the bit); a document of another schema version is refused, naming both
//! versions; and the standalone page embeds the shared charts without leaving its one file.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use chrono::NaiveDate;
use haechi_sim::report::{self, Report, ReportContext, ReportError, SCHEMA_VERSION};
use haechi_sim::scenario::{Format, Scenario};
use haechi_sim::{engine, html};

/// A real run on a small synthetic market: 30 names, 2015–2024, KS11 as the benchmark.
fn report_of(text: &str, format: Format) -> Report {
    let cfg = haechi_data::synth::SynthConfig {
        seed: 11,
        tickers: 30,
        from: NaiveDate::from_ymd_opt(2015, 1, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2024, 12, 31).unwrap(),
    };
    let store = haechi_data::synth::generate(&cfg).unwrap();
    let scenario = Scenario::parse(text, format, "contract").unwrap();
    let bound = scenario.bind(&store).unwrap();
    let mut strategy = scenario.strategy(&bound);
    let run = engine::run(&store, &bound.universe, strategy.as_mut(), &bound.config).unwrap();
    let ctx = ReportContext {
        store: &store,
        start: bound.config.start,
        benchmark: bound.benchmark.as_ref(),
        synthetic: true,
        clamped_rows: 3,
        universe_size: bound.universe.len(),
    };
    report::build(&scenario, run, ctx)
}

fn momentum() -> Report {
    report_of(include_str!("../../../examples/momentum_rotation.toml"), Format::Toml)
}

/// Limit-free signal trading with sizing, rejections from a cap, and positions left open.
fn sma() -> Report {
    let text = r#"{
        "name": "SMA \"교차\" <contract>", "description": "5/20", "capital": 10000000, "benchmark": "KS11",
        "period": {"start": "2019-06-03", "end": "2021-12-30"},
        "universe": {"tickers": ["100010", "100020", "100030", "100040"]},
        "strategy": {"type": "sma_cross", "fast": 5, "slow": 20},
        "sizing": {"type": "percent_of_equity", "percent": 30},
        "execution": {"fill": "next_open", "slippage_bps": 5, "participation": 0.05},
        "risk": {"max_order_value": 3500000, "max_position_weight": 0.35}
    }"#;
    report_of(text, Format::Json)
}

#[test]
fn a_report_from_the_engine_reads_back_as_the_same_value() {
    for report in [momentum(), sma()] {
        // The run must exercise what the document carries, or equality proves little.
        assert!(report.equity_curve.iter().filter(|p| p.benchmark.is_some()).count() > 100);
        let s = &report.summary;
        assert!(s.orders.filled > 0 && !report.trades.is_empty(), "{}: {:?}", report.scenario.name, s.orders);
        assert!(report.summary.returns.sharpe.is_some() && report.summary.returns.beta.is_some());

        let json = report.to_json().unwrap();
        let back = Report::from_json(&json).unwrap();
        assert_eq!(back, report, "{}", report.scenario.name);
        // Bit-exact floats: the same value writes the same bytes again.
        assert_eq!(back.to_json().unwrap(), json);
        let text = String::from_utf8(json).unwrap();
        assert_eq!(Report::from_json(text.as_str()).unwrap(), report, "from a &str too");
    }
}

#[test]
fn the_report_carries_its_rejections_and_open_positions() {
    let report = sma();
    let back = Report::from_json(report.to_json().unwrap()).unwrap();
    assert!(back.summary.orders.rejected > 0, "{:?}", back.summary.orders);
    assert_eq!(back.summary.orders.rejected_by_reason.values().sum::<usize>(), back.summary.orders.rejected);
    assert!(!back.positions.is_empty() && back.positions.iter().all(|p| !p.name.is_empty()));
}

#[test]
fn another_schema_version_is_refused_naming_the_version_found_and_expected() {
    let mut doc: serde_json::Value = serde_json::from_slice(&sma().to_json().unwrap()).unwrap();
    doc["schema_version"] = serde_json::json!(SCHEMA_VERSION + 1);
    let err = Report::from_json(serde_json::to_vec(&doc).unwrap()).unwrap_err();
    assert!(
        matches!(err, ReportError::SchemaVersion { found, expected } if found == u64::from(SCHEMA_VERSION) + 1 && expected == SCHEMA_VERSION),
        "{err:?}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&format!("version {}", SCHEMA_VERSION + 1))
            && message.contains(&format!("version {SCHEMA_VERSION}")),
        "{message}"
    );

    // Checked before the shape: a future document whose fields changed still says "version".
    let err = Report::from_json(r#"{"schema_version": 9, "summary": "changed"}"#).unwrap_err();
    assert!(matches!(err, ReportError::SchemaVersion { found: 9, .. }), "{err:?}");

    for not_a_report in [r#"{"summary": {}}"#, r#"{"schema_version": "1"}"#, "[]", "not json"] {
        let err = Report::from_json(not_a_report).unwrap_err();
        assert!(matches!(err, ReportError::Json(_)), "{not_a_report}: {err:?}");
    }
    doc["schema_version"] = serde_json::json!(SCHEMA_VERSION);
    doc.as_object_mut().unwrap().remove("equity_curve");
    assert!(matches!(Report::from_json(serde_json::to_vec(&doc).unwrap()), Err(ReportError::Json(_))));
}

#[test]
fn the_standalone_page_embeds_the_shared_charts_in_one_file() {
    let report = sma();
    let page = html::render(&report).unwrap();
    for part in [
        "<svg class=\"chart\"",
        "<polyline class=\"equity\"",
        "<polyline class=\"bench\"",
        "<polygon class=\"drawdown\"",
        "<rect class=\"hover\"",
        ".chart .equity {",
        ".chart .drawdown {",
    ] {
        assert!(page.contains(part), "{part}");
    }
    // Scenario text is escaped; nothing is fetched or run.
    assert!(page.contains("<h1>SMA &#34;교차&#34; &#60;contract&#62;</h1>"), "{page}");
    assert!(!page.contains("<contract>"));
    for outside in ["<script", "src=", "http://", "https://", "<link"] {
        assert!(!page.contains(outside), "{outside}");
    }
    let svg_start = page.find("<svg").unwrap();
    assert!(!page[svg_start..].contains("style=\""), "charts are styled by class, as the portal needs");
}

/// Data without the exchange's calendar: the report says so (JSON and page), and shows the
/// effective slippage; with the calendar, no warning.
#[test]
fn a_report_warns_about_a_calendar_made_of_bars_and_shows_effective_slippage() {
    let with_calendar = sma();
    assert_eq!(with_calendar.data.calendar, haechi_core::CalendarSource::Exchange);
    assert!(with_calendar.data.warnings.is_empty());
    let bps = with_calendar.summary.effective_slippage_bps.unwrap();
    assert!((0.0..=20.0).contains(&bps), "{bps}");
    assert!(html::render(&with_calendar).unwrap().contains("실효 슬리피지"));
    assert!(!html::render(&with_calendar).unwrap().contains("class=\"warn\""));

    // The same market rebuilt without its calendar.
    let cfg = haechi_data::synth::SynthConfig {
        seed: 11,
        tickers: 4,
        from: NaiveDate::from_ymd_opt(2019, 1, 1).unwrap(),
        to: NaiveDate::from_ymd_opt(2021, 12, 31).unwrap(),
    };
    let synth = haechi_data::synth::generate(&cfg).unwrap();
    let mut b = haechi_core::StoreBuilder::new(synth.dates().to_vec()).unwrap();
    for (slot, inst) in synth.instruments().iter().enumerate() {
        let bars = (0..synth.n_days()).filter_map(|d| synth.raw(slot, d).map(|bar| (d, bar)));
        b.add(inst.clone(), bars).unwrap();
    }
    let store = b.build();
    let scenario = Scenario::parse(
        r#"{"name": "no calendar", "capital": 10000000, "period": {"start": "2019-06-03", "end": "2021-12-30"},
            "universe": {"all": true}, "strategy": {"type": "sma_cross", "fast": 5, "slow": 20}}"#,
        Format::Json,
        "inline",
    )
    .unwrap();
    let bound = scenario.bind(&store).unwrap();
    let run = engine::run(&store, &bound.universe, scenario.strategy(&bound).as_mut(), &bound.config).unwrap();
    let ctx = ReportContext {
        store: &store,
        start: bound.config.start,
        benchmark: None,
        synthetic: true,
        clamped_rows: 0,
        universe_size: bound.universe.len(),
    };
    let report = report::build(&scenario, run, ctx);
    assert_eq!(report.data.calendar, haechi_core::CalendarSource::BarUnion);
    assert_eq!(report.data.warnings, [report::BAR_UNION_WARNING]);
    let json = serde_json::to_value(&report).unwrap();
    assert_eq!(json["data"]["calendar"], "bar_union");
    assert!(html::render(&report).unwrap().contains("class=\"warn\">주의 Note: no exchange calendar"));
}
