//! Scenario parsing and validation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

use haechi_sim::engine::FillTiming;
use haechi_sim::scenario::{Format, PROBLEM_CODES, Problem, Scenario, StrategySpec, Universe, WORD_PARAMS, WORDS};

const GOOD: &str = r#"
name = "모멘텀 로테이션"
capital = 100_000_000
benchmark = "KS11"

[period]
start = 2019-01-02
end = "2023-12-28"

[universe]
markets = ["KOSPI", "kosdaq"]

[strategy]
type = "momentum_rotation"
lookback = 120
top_n = 20

[execution]
fill = "close"
slippage_bps = 10
"#;

#[test]
fn a_valid_scenario_parses_with_defaults_filled_in() {
    let s = Scenario::parse(GOOD, Format::Toml, "good.toml").unwrap();
    assert_eq!(s.capital.get(), 100_000_000);
    assert_eq!(s.period.start.to_string(), "2019-01-02");
    assert!(matches!(s.universe, Universe::Markets(ref m) if m.len() == 2));
    assert_eq!(
        s.strategy,
        StrategySpec::MomentumRotation {
            lookback: 120,
            skip: 20,
            top_n: 20,
            frequency: haechi_sim::strategy::RebalanceFrequency::Monthly
        }
    );
    assert_eq!(s.execution.fill, FillTiming::Close);
    assert_eq!(s.execution.slippage_bps, 10);
    assert!((s.execution.participation - 0.1).abs() < 1e-12);
    assert!((s.execution.commission_rate - 0.00015).abs() < 1e-12);
}

#[test]
fn json_is_accepted_too() {
    let json = r#"{"name": "rebal", "capital": 50000000,
        "period": {"start": "2020-01-02", "end": "2020-12-30"},
        "strategy": {"type": "rebalance", "frequency": "quarterly", "weights": {"005930": 0.6, "000660": 0.4}}}"#;
    let s = Scenario::parse(json, Format::Json, "r.json").unwrap();
    match &s.strategy {
        StrategySpec::Rebalance { weights, .. } => assert_eq!(weights.len(), 2),
        other => panic!("{other:?}"),
    }
    assert_eq!(s.required_tickers().unwrap().len(), 2);
}

#[test]
fn a_scenario_with_several_mistakes_reports_all_of_them() {
    let bad = r#"
name = ""
capital = -5
benchmark = 3

[period]
start = "2023-13-01"

[universe]
tickers = ["005930", "5930", "005930", 7]

[strategy]
type = "sma_cross"
fast = 50
slow = 20
colour = "blue"

[sizing]
type = "percent_of_equity"
percent = 250

[execution]
fill = "tomorrow"
participation = 0

[risk]
max_position_weight = 2
"#;
    let err = Scenario::parse(bad, Format::Toml, "bad.toml").unwrap_err();
    let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
    for expected in [
        "name",
        "capital",
        "benchmark",
        "period.start",
        "period.end",
        "universe.tickers[1]",
        "universe.tickers[2]",
        "universe.tickers[3]",
        "strategy.slow",
        "strategy.colour",
        "sizing.percent",
        "execution.fill",
        "execution.participation",
        "risk.max_position_weight",
    ] {
        assert!(paths.contains(&expected), "missing {expected} in {paths:?}");
    }
    for p in &err.problems {
        assert_coded(p);
    }
    let capital = err.problems.iter().find(|p| p.path == "capital").unwrap();
    assert_eq!(capital.code, "between");
    assert_eq!(capital.params[0], ("min", "100000".to_owned()));
    assert_eq!(capital.params[2], ("value", "-5".to_owned()));
    let tickers = err.problems.iter().find(|p| p.path == "universe.tickers[3]").unwrap();
    assert_eq!(tickers.code, "wrong_type");
    assert_eq!(tickers.message, "must be a ticker string, found an integer");
    let text = err.to_string();
    assert!(text.contains("capital: must be between 100000 and"), "{text}");
    assert!(text.contains("execution.fill: must be one of next_open, close, found \"tomorrow\""), "{text}");
    assert!(text.contains("universe.tickers[2]: 005930 is listed twice"), "{text}");
}

#[test]
fn missing_sections_are_named() {
    let err = Scenario::parse("name = \"x\"", Format::Toml, "x.toml").unwrap_err();
    let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["capital", "period", "strategy", "universe"]);
}

#[test]
fn syntax_errors_point_at_file_line_and_column() {
    let err = Scenario::parse("name = \"x\"\ncapital = = 5\n", Format::Toml, "s.toml").unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert!(err.problems[0].path.starts_with("s.toml:2:"), "{:?}", err.problems);
    let err = Scenario::parse("{\n \"name\": }", Format::Json, "s.json").unwrap_err();
    assert!(err.problems[0].path.starts_with("s.json:2:"), "{:?}", err.problems);
}

#[test]
fn sizing_is_refused_for_strategies_that_size_by_weight() {
    let text = r#"
name = "m"
capital = 10_000_000
period = { start = "2020-01-02", end = "2020-12-30" }
universe = { all = true }
strategy = { type = "momentum_rotation" }
sizing = { type = "fixed_shares", shares = 10 }
"#;
    let err = Scenario::parse(text, Format::Toml, "m.toml").unwrap_err();
    assert_eq!(err.problems.len(), 1);
    assert_eq!(err.problems[0].path, "sizing");
}

#[test]
fn rebalance_weights_must_not_exceed_one() {
    let text = r#"
name = "r"
capital = 10_000_000
period = { start = "2020-01-02", end = "2020-12-30" }
strategy = { type = "rebalance", weights = { "005930" = 0.7, "000660" = 0.5, "bad" = 0.1 } }
"#;
    let err = Scenario::parse(text, Format::Toml, "r.toml").unwrap_err();
    let paths: Vec<&str> = err.problems.iter().map(|p| p.path.as_str()).collect();
    assert_eq!(paths, ["strategy.weights.bad", "strategy.weights"]);
}

#[test]
fn universe_needs_exactly_one_selector() {
    let text = r#"
name = "u"
capital = 10_000_000
period = { start = "2020-01-02", end = "2020-12-30" }
universe = { all = true, markets = ["KOSPI"] }
strategy = { type = "buy_and_hold" }
"#;
    let err = Scenario::parse(text, Format::Toml, "u.toml").unwrap_err();
    assert_eq!(err.problems[0].path, "universe");
}

/// A problem's code is listed with its English template, every parameter fills one of the
/// template's placeholders (so a translation can use them all), and none is left unfilled.
fn assert_coded(p: &Problem) {
    let template = PROBLEM_CODES.iter().find(|(c, _)| *c == p.code).unwrap_or_else(|| panic!("{p:?}")).1;
    let mut placeholders: Vec<&str> = template.split('{').skip(1).filter_map(|s| s.split('}').next()).collect();
    placeholders.sort_unstable();
    placeholders.dedup();
    let mut names: Vec<&str> = p.params.iter().map(|(n, _)| *n).collect();
    names.sort_unstable();
    assert_eq!(names, placeholders, "{p:?}");
    assert!(!p.message.contains('{'), "{p:?}");
    for (name, value) in &p.params {
        if WORD_PARAMS.contains(name) {
            assert!(WORDS.iter().any(|(w, _)| w == value), "{value} is not a listed word: {p:?}");
        }
    }
}

#[test]
fn every_kind_of_problem_carries_its_code_and_parameters() {
    let cases = [
        "name = \"x\"\ncapital = = 5\n",
        "name = \"x\"\ncolour = 1\n",
        "name = 5\ncapital = \"lots\"\nperiod = 3\nstrategy = { type = \"magic\" }\nuniverse = { all = \"yes\" }",
        r#"name = "x"
capital = 10_000_000
period = { start = 2024-02-01, end = 2024-01-01 }
universe = { markets = ["NYSE", 1], tickers = [] }
strategy = { type = "rsi_reversion", oversold = 80, overbought = 150.5, period = 1.5 }
sizing = { type = "target_weight", weight = 0 }
execution = { fill = 1, commission_rate = 0.5, liquidate_at_end = "no" }
risk = { cash_reserve = 0.9 }
"#,
        r#"name = "x"
capital = 10_000_000
period = { start = 2024-01-02, end = 2024-03-01 }
strategy = { type = "rebalance", weights = { "005930" = 0.8, "000660" = 0.5, "00066a" = 0.1, "abc" = 0.1 } }
sizing = { type = "fixed_shares", shares = 1 }
"#,
        r#"name = "x"
capital = 10_000_000
period = { start = 2024-01-02, end = 2024-03-01 }
universe = { tickers = "005930" }
strategy = { type = "sma_cross", fast = 30, slow = 10 }
"#,
    ];
    let mut seen = std::collections::BTreeSet::new();
    for text in cases {
        let err = Scenario::parse(text, Format::Toml, "t.toml").unwrap_err();
        for p in &err.problems {
            assert_coded(p);
            seen.insert(p.code);
        }
    }
    let err = Scenario::parse("{\"name\": ", Format::Json, "t.json").unwrap_err();
    assert_coded(&err.problems[0]);
    seen.insert(err.problems[0].code);
    for code in [
        "syntax",
        "required",
        "unknown_field",
        "wrong_type",
        "between",
        "above_at_most",
        "one_of",
        "end_before_start",
        "universe_one_kind",
        "universe_required",
        "ticker_length",
        "ticker_characters",
        "unknown_market",
        "weights_above_one",
        "must_exceed",
        "sizing_unused",
    ] {
        assert!(seen.contains(code), "{code} not produced: {seen:?}");
    }
}
