//! Scenario parsing and validation.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)] // test code may fail loudly

use haechi_sim::engine::FillTiming;
use haechi_sim::scenario::{Format, Scenario, StrategySpec, Universe};

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
