//! Investment scenarios: parsed from TOML (or JSON), validated as a whole, then bound to data.
//!
//! Parsing never stops at the first mistake: every problem is collected with its field path
//! (`strategy.slow`, `universe.tickers[2]`) so a user fixes a file in one pass. The format is
//! documented in `docs/scenarios.md`.

use crate::engine::{EngineConfig, FillTiming, TaxBasis};
use crate::strategy::{
    BuyAndHold, MomentumRotation, Rebalance, RebalanceFrequency, RsiReversion, Sizing, SmaCross, Strategy,
};
use chrono::NaiveDate;
use haechi_core::{Market, MarketStore, Rate, Ticker, Won};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;
use std::fmt;

/// A validated scenario.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scenario {
    pub name: String,
    pub description: Option<String>,
    pub capital: Won,
    pub period: Period,
    pub universe: Universe,
    /// An index in the data's `index/` folder (`KS11`) or a ticker.
    pub benchmark: Option<String>,
    pub strategy: StrategySpec,
    pub sizing: Option<Sizing>,
    pub execution: Execution,
    pub risk: Risk,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct Period {
    pub start: NaiveDate,
    pub end: NaiveDate,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Universe {
    Tickers(Vec<Ticker>),
    Markets(Vec<Market>),
    All,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum StrategySpec {
    BuyAndHold,
    Rebalance {
        weights: Vec<(Ticker, f64)>,
        frequency: RebalanceFrequency,
    },
    SmaCross {
        fast: usize,
        slow: usize,
    },
    MomentumRotation {
        lookback: usize,
        skip: usize,
        top_n: usize,
        frequency: RebalanceFrequency,
    },
    RsiReversion {
        period: usize,
        oversold: f64,
        overbought: f64,
    },
    /// Orders placed by hand: a paper account's report. Not a scenario file's choice (the
    /// parser offers the five strategies above).
    Manual,
}

impl StrategySpec {
    #[must_use]
    pub fn name(&self) -> &'static str {
        match self {
            StrategySpec::BuyAndHold => "buy_and_hold",
            StrategySpec::Rebalance { .. } => "rebalance",
            StrategySpec::SmaCross { .. } => "sma_cross",
            StrategySpec::MomentumRotation { .. } => "momentum_rotation",
            StrategySpec::RsiReversion { .. } => "rsi_reversion",
            StrategySpec::Manual => "manual",
        }
    }

    fn uses_sizing(&self) -> bool {
        matches!(self, StrategySpec::BuyAndHold | StrategySpec::SmaCross { .. } | StrategySpec::RsiReversion { .. })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Execution {
    pub fill: FillTiming,
    pub slippage_bps: u32,
    pub participation: f64,
    /// Share of a locked-limit session's volume open to orders on the locked side.
    #[serde(default = "default_locked_limit_share")]
    pub locked_limit_share: f64,
    pub commission_rate: f64,
    pub tax_basis: TaxBasis,
    pub liquidate_at_end: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Risk {
    pub max_order_value: Option<Won>,
    pub max_position_weight: Option<f64>,
    pub cash_reserve: f64,
}

/// One thing wrong with a scenario, at a field path (or `file:line` for syntax errors).
///
/// `code` and `params` say the same as `message` in a form a client can word in its own
/// language: the portal's Korean comes from them. Every code is in [`PROBLEM_CODES`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Problem {
    pub path: String,
    pub code: &'static str,
    pub params: Vec<(&'static str, String)>,
    /// The English sentence.
    pub message: String,
}

impl Problem {
    fn new(path: impl Into<String>, code: &'static str, params: Vec<(&'static str, String)>) -> Problem {
        let template = PROBLEM_CODES.iter().find(|(c, _)| *c == code).map_or(code, |(_, t)| *t);
        let message = fill(template, &params, |name, value| {
            if WORD_PARAMS.contains(&name) {
                WORDS.iter().find(|(w, _)| *w == value).map_or(value, |(_, en)| *en).to_owned()
            } else {
                value.to_owned()
            }
        });
        Problem { path: path.into(), code, params, message }
    }
}

/// `{name}` placeholders in `template` replaced by `param(name, value)`.
fn fill(template: &str, params: &[(&'static str, String)], param: impl Fn(&str, &str) -> String) -> String {
    let mut out = template.to_owned();
    for (name, value) in params {
        out = out.replace(&format!("{{{name}}}"), &param(name, value));
    }
    out
}

/// Most tickers a universe may list: more than every listed KRX share and ETF together.
pub const MAX_TICKERS: usize = 5_000;
/// Longest description, in characters.
pub const MAX_DESCRIPTION: usize = 2_000;

/// Every problem code with its English template. A client wording problems itself needs a
/// sentence for each, with the same `{placeholders}`.
pub const PROBLEM_CODES: &[(&str, &str)] = &[
    ("syntax", "not valid {format}: {detail}"),
    ("required", "is required"),
    ("unknown_field", "is not a known field"),
    ("wrong_type", "must be {expected}, found {found}"),
    ("between", "must be between {min} and {max}, found {value}"),
    ("above_at_most", "must be above {min} and at most {max}, found {value}"),
    ("bad_date", "must be a date YYYY-MM-DD, found {value}"),
    ("one_of", "must be one of {options}, found {value}"),
    ("length", "must be {min} to {max} characters"),
    ("end_before_start", "{end} is before period.start {start}"),
    ("universe_required", "is required (tickers, markets or all = true)"),
    ("universe_one_kind", "give exactly one of tickers, markets or all = true"),
    ("listed_twice", "{ticker} is listed twice"),
    ("ticker_length", "ticker {value} must be exactly 6 characters (a KRX short code such as 005930)"),
    ("ticker_characters", "ticker {value} may contain only digits and upper-case letters"),
    ("unknown_market", "unknown market {value}: expected KOSPI, KOSDAQ, KONEX or ETF"),
    ("no_tickers", "must list at least one ticker"),
    ("too_many_tickers", "lists {count} tickers; at most {max} may be listed"),
    ("weights_above_one", "weights add up to {total}; they must not exceed 1"),
    ("no_weights", "must give at least one ticker = weight"),
    ("must_exceed", "must be greater than {other} ({limit}), found {value}"),
    ("sizing_unused", "is not used by {strategy}, which sizes positions by its target weights"),
    ("not_in_data", "{ticker} is not in the market data"),
    ("no_market_instruments", "no instrument in the data trades on these markets"),
    ("no_sessions", "no trading session between {start} and {end}; the data covers {first} to {last}"),
    ("no_data", "no trading session between {start} and {end}; the data has no sessions"),
    ("unknown_benchmark", "\"{name}\" is neither an index file (index/{name}.csv) nor a ticker in the data"),
];

/// Parameters whose value is one of [`WORDS`] rather than text from the input.
pub const WORD_PARAMS: &[&str] = &["expected", "found"];

/// The kinds of value a message names (`wrong_type`'s `expected` and `found`), in English.
pub const WORDS: &[(&str, &str)] = &[
    ("null", "null"),
    ("boolean", "a boolean"),
    ("integer", "an integer"),
    ("number", "a number"),
    ("string", "a string"),
    ("array", "an array"),
    ("table", "a table"),
    ("whole_number", "a whole number"),
    ("true_or_false", "true or false"),
    ("date", "a date YYYY-MM-DD"),
    ("ticker", "a ticker string"),
    ("market", "a market name"),
    ("ticker_list", "an array of tickers"),
    ("market_list", "a non-empty array of markets"),
];

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

/// Every problem found, in the order the fields appear in the format.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ScenarioError {
    pub problems: Vec<Problem>,
}

impl fmt::Display for ScenarioError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.problems.len();
        writeln!(f, "the scenario has {n} problem{}:", if n == 1 { "" } else { "s" })?;
        for p in &self.problems {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

/// File format, picked by extension (`.json` is JSON, anything else TOML).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    Toml,
    Json,
}

impl Scenario {
    /// Parses and validates a scenario. `origin` names the source in syntax errors.
    ///
    /// # Errors
    /// [`ScenarioError`] listing every problem found.
    pub fn parse(text: &str, format: Format, origin: &str) -> Result<Scenario, ScenarioError> {
        Document::parse(text, format, origin)?.scenario(&[])
    }

    /// [`Scenario::parse`] with numeric fields set first (a sweep's grid point): each path
    /// (`strategy.fast`, `execution.slippage_bps`) is created if absent and replaced if
    /// present, then the whole document is validated as usual, so a path the format does not
    /// know comes back as `unknown_field` and a non-numeric field as its usual type problem.
    ///
    /// # Errors
    /// [`ScenarioError`] listing every problem found.
    pub fn parse_with(
        text: &str,
        format: Format,
        origin: &str,
        overrides: &[(String, Number)],
    ) -> Result<Scenario, ScenarioError> {
        Document::parse(text, format, origin)?.scenario(overrides)
    }

    /// Tickers the scenario names explicitly (universe and rebalance weights), for loading
    /// only what is needed. `None` means the whole data directory.
    #[must_use]
    pub fn required_tickers(&self) -> Option<Vec<Ticker>> {
        let mut set: BTreeSet<Ticker> = BTreeSet::new();
        match &self.universe {
            Universe::Tickers(t) => set.extend(t.iter().copied()),
            Universe::Markets(_) | Universe::All => return None,
        }
        if let StrategySpec::Rebalance { weights, .. } = &self.strategy {
            set.extend(weights.iter().map(|(t, _)| *t));
        }
        if let Some(b) = &self.benchmark
            && let Ok(t) = Ticker::parse(b)
        {
            set.insert(t);
        }
        Some(set.into_iter().collect())
    }

    /// Resolves the scenario against loaded data: universe slots, session range, benchmark.
    ///
    /// # Errors
    /// [`ScenarioError`] naming each field that the data cannot satisfy.
    pub fn bind(&self, store: &MarketStore) -> Result<Bound, ScenarioError> {
        let mut errs = Vec::new();
        let mut problem = |path: String, code, params| errs.push(Problem::new(path, code, params));
        let mut universe = Vec::new();
        match &self.universe {
            Universe::Tickers(tickers) => {
                for (i, t) in tickers.iter().enumerate() {
                    match store.slot_of(*t) {
                        Some(s) => universe.push(s),
                        None => {
                            problem(format!("universe.tickers[{i}]"), "not_in_data", vec![("ticker", t.to_string())])
                        }
                    }
                }
            }
            Universe::Markets(markets) => {
                universe.extend((0..store.n_instruments()).filter(|s| markets.contains(&store.instrument(*s).market)));
                if universe.is_empty() {
                    problem("universe.markets".into(), "no_market_instruments", Vec::new());
                }
            }
            Universe::All => universe.extend(0..store.n_instruments()),
        }
        let mut weights = Vec::new();
        if let StrategySpec::Rebalance { weights: w, .. } = &self.strategy {
            for (t, weight) in w {
                match store.slot_of(*t) {
                    Some(s) => {
                        weights.push((s, *weight));
                        if !universe.contains(&s) {
                            universe.push(s);
                        }
                    }
                    None => problem(format!("strategy.weights.{t}"), "not_in_data", vec![("ticker", t.to_string())]),
                }
            }
        }
        let start = store.session_at_or_after(self.period.start);
        let end_excl = store.session_at_or_after(self.period.end.succ_opt().unwrap_or(self.period.end));
        if start >= end_excl {
            let asked = [("start", self.period.start.to_string()), ("end", self.period.end.to_string())];
            match (store.dates().first(), store.dates().last()) {
                (Some(a), Some(b)) => problem(
                    "period".into(),
                    "no_sessions",
                    asked.into_iter().chain([("first", a.to_string()), ("last", b.to_string())]).collect(),
                ),
                _ => problem("period".into(), "no_data", asked.to_vec()),
            }
        }
        let benchmark = match &self.benchmark {
            None => None,
            Some(name) => {
                if let Some(ix) = store.index(name) {
                    Some(BenchmarkSeries { name: ix.name.clone(), values: ix.close.clone() })
                } else if let Some(slot) = Ticker::parse(name).ok().and_then(|t| store.slot_of(t)) {
                    let values =
                        store.closes(slot).iter().map(|c| if *c == 0 { f64::NAN } else { f64::from(*c) }).collect();
                    Some(BenchmarkSeries { name: name.clone(), values })
                } else {
                    problem("benchmark".into(), "unknown_benchmark", vec![("name", name.clone())]);
                    None
                }
            }
        };
        if !errs.is_empty() {
            return Err(ScenarioError { problems: errs });
        }
        let config = EngineConfig {
            capital: self.capital,
            start,
            end: end_excl - 1,
            fill: self.execution.fill,
            slippage_bps: self.execution.slippage_bps,
            participation: self.execution.participation,
            locked_limit_share: self.execution.locked_limit_share,
            commission: Rate::from_fraction(self.execution.commission_rate)
                .unwrap_or(haechi_core::krx::DEFAULT_COMMISSION),
            tax_basis: self.execution.tax_basis,
            max_order_value: self.risk.max_order_value,
            max_position_weight: self.risk.max_position_weight,
            cash_reserve: self.risk.cash_reserve,
            liquidate_at_end: self.execution.liquidate_at_end,
        };
        Ok(Bound { universe, weights, config, benchmark })
    }

    /// A fresh strategy instance for a bound run.
    #[must_use]
    pub fn strategy(&self, bound: &Bound) -> Box<dyn Strategy> {
        let sizing = self.sizing;
        let default_sizing = Sizing::PercentOfEquity { percent: 10.0 };
        match &self.strategy {
            StrategySpec::BuyAndHold => Box::new(BuyAndHold::new(sizing)),
            StrategySpec::Rebalance { frequency, .. } => Box::new(Rebalance::new(bound.weights.clone(), *frequency)),
            StrategySpec::SmaCross { fast, slow } => {
                Box::new(SmaCross::new(*fast, *slow, sizing.unwrap_or(default_sizing)))
            }
            StrategySpec::MomentumRotation { lookback, skip, top_n, frequency } => {
                Box::new(MomentumRotation::new(*lookback, *skip, *top_n, *frequency))
            }
            StrategySpec::RsiReversion { period, oversold, overbought } => {
                Box::new(RsiReversion::new(*period, *oversold, *overbought, sizing.unwrap_or(default_sizing)))
            }
            StrategySpec::Manual => Box::new(crate::strategy::Manual),
        }
    }
}

/// A number a sweep puts at a field path.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Number {
    Int(i64),
    Float(f64),
}

impl fmt::Display for Number {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Number::Int(i) => write!(f, "{i}"),
            Number::Float(x) => write!(f, "{x}"),
        }
    }
}

/// A scenario document parsed once and validated many times with different overrides.
#[derive(Debug, Clone)]
pub struct Document {
    root: Node,
}

impl Document {
    /// Parses the syntax only; [`Document::scenario`] validates.
    ///
    /// # Errors
    /// [`ScenarioError`] with the syntax problem.
    pub fn parse(text: &str, format: Format, origin: &str) -> Result<Document, ScenarioError> {
        let root = match format {
            Format::Toml => match text.parse::<toml::Table>() {
                Ok(t) => Node::from_toml(&toml::Value::Table(t)),
                Err(e) => return Err(syntax_error(origin, text, e.span().map(|s| s.start), e.message())),
            },
            Format::Json => match serde_json::from_str::<serde_json::Value>(text) {
                Ok(v) => Node::from_json(&v),
                Err(e) => {
                    let path = format!("{origin}:{}:{}", e.line(), e.column());
                    let params = vec![("format", "JSON".to_owned()), ("detail", e.to_string())];
                    return Err(ScenarioError { problems: vec![Problem::new(path, "syntax", params)] });
                }
            },
        };
        Ok(Document { root })
    }

    /// Validates the document with `overrides` applied.
    ///
    /// # Errors
    /// [`ScenarioError`] listing every problem found.
    pub fn scenario(&self, overrides: &[(String, Number)]) -> Result<Scenario, ScenarioError> {
        let mut errs = Vec::new();
        let root = if overrides.is_empty() {
            None
        } else {
            let mut root = self.root.clone();
            for (path, value) in overrides {
                let node = match value {
                    Number::Int(i) => Node::Int(*i),
                    Number::Float(f) => Node::Float(*f),
                };
                set_path(&mut root, path, node, &mut errs);
            }
            Some(root)
        };
        if !errs.is_empty() {
            return Err(ScenarioError { problems: errs });
        }
        let scenario = validate(root.as_ref().unwrap_or(&self.root), &mut errs);
        match scenario {
            Some(s) if errs.is_empty() => Ok(s),
            _ => Err(ScenarioError { problems: errs }),
        }
    }
}

/// Puts `value` at a dotted path, creating tables on the way; a step through a value that is
/// not a table is a `wrong_type` problem at that step.
fn set_path(root: &mut Node, path: &str, value: Node, errs: &mut Vec<Problem>) {
    let keys: Vec<&str> = path.split('.').collect();
    let mut node = root;
    for (depth, key) in keys.iter().enumerate() {
        let here = keys[..depth].join(".");
        let Node::Table(entries) = node else {
            let found = node.kind().to_owned();
            push(errs, &here, "wrong_type", vec![("expected", "table".to_owned()), ("found", found)]);
            return;
        };
        let last = depth + 1 == keys.len();
        let at = match entries.iter().position(|(k, _)| k == key) {
            Some(i) => i,
            None => {
                entries.push(((*key).to_owned(), Node::Table(Vec::new())));
                entries.len() - 1
            }
        };
        if last {
            entries[at].1 = value;
            return;
        }
        node = &mut entries[at].1;
    }
}

/// A scenario resolved against a store.
#[derive(Debug, Clone)]
pub struct Bound {
    pub universe: Vec<usize>,
    pub weights: Vec<(usize, f64)>,
    pub config: EngineConfig,
    pub benchmark: Option<BenchmarkSeries>,
}

/// Benchmark values aligned to the store's sessions (`NaN` where missing).
#[derive(Debug, Clone)]
pub struct BenchmarkSeries {
    pub name: String,
    pub values: Vec<f64>,
}

fn syntax_error(origin: &str, text: &str, offset: Option<usize>, message: &str) -> ScenarioError {
    let path = match offset {
        Some(off) => {
            let before = &text[..off.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            format!("{origin}:{line}:{col}")
        }
        None => origin.to_owned(),
    };
    let params = vec![("format", "TOML".to_owned()), ("detail", message.trim_end().to_owned())];
    ScenarioError { problems: vec![Problem::new(path, "syntax", params)] }
}

/// The parsed document, independent of TOML or JSON, keeping key order.
#[derive(Debug, Clone, PartialEq)]
enum Node {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(String),
    Arr(Vec<Node>),
    Table(Vec<(String, Node)>),
}

impl Node {
    fn from_toml(v: &toml::Value) -> Node {
        match v {
            toml::Value::String(s) => Node::Str(s.clone()),
            toml::Value::Integer(i) => Node::Int(*i),
            toml::Value::Float(f) => Node::Float(*f),
            toml::Value::Boolean(b) => Node::Bool(*b),
            toml::Value::Datetime(d) => Node::Str(d.to_string()),
            toml::Value::Array(a) => Node::Arr(a.iter().map(Node::from_toml).collect()),
            toml::Value::Table(t) => Node::Table(t.iter().map(|(k, v)| (k.clone(), Node::from_toml(v))).collect()),
        }
    }

    fn from_json(v: &serde_json::Value) -> Node {
        use serde_json::Value as J;
        match v {
            J::Null => Node::Null,
            J::Bool(b) => Node::Bool(*b),
            J::Number(n) => n.as_i64().map_or_else(|| Node::Float(n.as_f64().unwrap_or(f64::NAN)), Node::Int),
            J::String(s) => Node::Str(s.clone()),
            J::Array(a) => Node::Arr(a.iter().map(Node::from_json).collect()),
            J::Object(o) => Node::Table(o.iter().map(|(k, v)| (k.clone(), Node::from_json(v))).collect()),
        }
    }

    /// What the value is, as one of [`WORDS`].
    fn kind(&self) -> &'static str {
        match self {
            Node::Null => "null",
            Node::Bool(_) => "boolean",
            Node::Int(_) => "integer",
            Node::Float(_) => "number",
            Node::Str(_) => "string",
            Node::Arr(_) => "array",
            Node::Table(_) => "table",
        }
    }
}

/// Reads one table, remembering which keys were used so the rest can be reported as unknown.
struct Table<'a> {
    path: String,
    entries: &'a [(String, Node)],
    used: Vec<bool>,
}

impl<'a> Table<'a> {
    fn new(path: &str, node: &'a Node, errs: &mut Vec<Problem>) -> Option<Table<'a>> {
        match node {
            Node::Table(entries) => Some(Table { path: path.to_owned(), entries, used: vec![false; entries.len()] }),
            other => {
                push(errs, path, "wrong_type", wrong("table", other));
                None
            }
        }
    }

    fn field(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_owned() } else { format!("{}.{key}", self.path) }
    }

    fn get(&mut self, key: &str) -> Option<&'a Node> {
        let i = self.entries.iter().position(|(k, _)| k == key)?;
        self.used[i] = true;
        Some(&self.entries[i].1).filter(|n| !matches!(n, Node::Null))
    }

    fn required(&mut self, key: &str, errs: &mut Vec<Problem>) -> Option<&'a Node> {
        let v = self.get(key);
        if v.is_none() {
            push(errs, &self.field(key), "required", Vec::new());
        }
        v
    }

    fn string(&mut self, key: &str, errs: &mut Vec<Problem>) -> Option<String> {
        let v = self.get(key)?;
        match v {
            Node::Str(s) => Some(s.clone()),
            other => {
                push(errs, &self.field(key), "wrong_type", wrong("string", other));
                None
            }
        }
    }

    fn int(&mut self, key: &str, range: std::ops::RangeInclusive<i64>, errs: &mut Vec<Problem>) -> Option<i64> {
        let v = self.get(key)?;
        let path = self.field(key);
        match v {
            Node::Int(i) if range.contains(i) => Some(*i),
            Node::Int(i) => {
                let bounds = [("min", range.start().to_string()), ("max", range.end().to_string())];
                push(errs, &path, "between", bounds.into_iter().chain([("value", i.to_string())]).collect());
                None
            }
            Node::Float(f) if f.fract() == 0.0 && range.contains(&(*f as i64)) => Some(*f as i64),
            other => {
                push(errs, &path, "wrong_type", wrong("whole_number", other));
                None
            }
        }
    }

    fn float(&mut self, key: &str, limits: Limits, errs: &mut Vec<Problem>) -> Option<f64> {
        let v = self.get(key)?;
        let path = self.field(key);
        let f = match v {
            Node::Int(i) => *i as f64,
            Node::Float(f) => *f,
            other => {
                push(errs, &path, "wrong_type", wrong("number", other));
                return None;
            }
        };
        let (code, min, max, ok) = match limits {
            Limits::Between(min, max) => ("between", min, max, (min..=max).contains(&f)),
            Limits::AboveAtMost(min, max) => ("above_at_most", min, max, f > min && f <= max),
        };
        if f.is_finite() && ok {
            Some(f)
        } else {
            push(errs, &path, code, vec![("min", min.to_string()), ("max", max.to_string()), ("value", f.to_string())]);
            None
        }
    }

    fn boolean(&mut self, key: &str, errs: &mut Vec<Problem>) -> Option<bool> {
        match self.get(key)? {
            Node::Bool(b) => Some(*b),
            other => {
                push(errs, &self.field(key), "wrong_type", wrong("true_or_false", other));
                None
            }
        }
    }

    fn date(&mut self, key: &str, errs: &mut Vec<Problem>) -> Option<NaiveDate> {
        let node = self.required(key, errs)?;
        let path = self.field(key);
        match node {
            Node::Str(s) => match NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d") {
                Ok(d) => Some(d),
                Err(_) => {
                    push(errs, &path, "bad_date", vec![("value", format!("{s:?}"))]);
                    None
                }
            },
            other => {
                push(errs, &path, "wrong_type", wrong("date", other));
                None
            }
        }
    }

    fn choice<T: Copy>(&mut self, key: &str, options: &[(&str, T)], errs: &mut Vec<Problem>) -> Option<T> {
        let s = self.string(key, errs)?;
        let found = options.iter().find(|(name, _)| *name == s).map(|(_, v)| *v);
        if found.is_none() {
            let names: Vec<&str> = options.iter().map(|(n, _)| *n).collect();
            let params = vec![("options", names.join(", ")), ("value", format!("{s:?}"))];
            push(errs, &self.field(key), "one_of", params);
        }
        found
    }

    fn sub(&mut self, key: &str, errs: &mut Vec<Problem>) -> Option<Table<'a>> {
        let node = self.get(key)?;
        let path = self.field(key);
        Table::new(&path, node, errs)
    }

    /// Reports keys nobody asked for: usually a typo.
    fn finish(self, errs: &mut Vec<Problem>) {
        for ((k, _), used) in self.entries.iter().zip(&self.used) {
            if !used {
                push(errs, &self.field(k), "unknown_field", Vec::new());
            }
        }
    }
}

fn push(errs: &mut Vec<Problem>, path: &str, code: &'static str, params: Vec<(&'static str, String)>) {
    errs.push(Problem::new(path, code, params));
}

/// Parameters of a `wrong_type` problem.
fn wrong(expected: &'static str, found: &Node) -> Vec<(&'static str, String)> {
    vec![("expected", expected.to_owned()), ("found", found.kind().to_owned())]
}

/// Parameters of a `must_exceed` problem.
fn exceed(other: &str, limit: impl ToString, value: impl ToString) -> Vec<(&'static str, String)> {
    vec![("other", other.to_owned()), ("limit", limit.to_string()), ("value", value.to_string())]
}

/// The range a number must fall in.
#[derive(Debug, Clone, Copy)]
enum Limits {
    /// Both ends included.
    Between(f64, f64),
    /// Above the first, at most the second.
    AboveAtMost(f64, f64),
}

fn ticker_problem(errs: &mut Vec<Problem>, path: &str, e: &haechi_core::TickerError) {
    let (code, value) = match e {
        haechi_core::TickerError::Length(v) => ("ticker_length", v),
        haechi_core::TickerError::Character(v) => ("ticker_characters", v),
    };
    push(errs, path, code, vec![("value", format!("{value:?}"))]);
}

const FREQUENCIES: &[(&str, RebalanceFrequency)] = &[
    ("weekly", RebalanceFrequency::Weekly),
    ("monthly", RebalanceFrequency::Monthly),
    ("quarterly", RebalanceFrequency::Quarterly),
];

fn validate(root: &Node, errs: &mut Vec<Problem>) -> Option<Scenario> {
    let mut t = Table::new("", root, errs)?;
    let _schema = t.int("schema", 1..=1, errs);
    let name = t.required("name", errs).and_then(|_| t.string("name", errs));
    if let Some(n) = &name
        && (n.trim().is_empty() || n.chars().count() > 200)
    {
        push(errs, "name", "length", vec![("min", "1".into()), ("max", "200".into())]);
    }
    let description = t.string("description", errs);
    if let Some(d) = &description
        && d.chars().count() > MAX_DESCRIPTION
    {
        push(errs, "description", "length", vec![("min", "0".into()), ("max", MAX_DESCRIPTION.to_string())]);
    }
    let capital = t.required("capital", errs).and_then(|_| t.int("capital", 100_000..=10_000_000_000_000, errs));
    let period = t.required("period", errs).and_then(|_| t.sub("period", errs)).and_then(|mut p| {
        let start = p.date("start", errs);
        let end = p.date("end", errs);
        p.finish(errs);
        let (start, end) = (start?, end?);
        if start > end {
            push(errs, "period.end", "end_before_start", vec![("end", end.to_string()), ("start", start.to_string())]);
            return None;
        }
        Some(Period { start, end })
    });
    let benchmark = t.string("benchmark", errs);
    let strategy = t.required("strategy", errs).and_then(|_| t.sub("strategy", errs)).and_then(|s| strategy(s, errs));
    let universe = match t.sub("universe", errs) {
        Some(u) => universe(u, errs),
        None if matches!(strategy, Some(StrategySpec::Rebalance { .. })) => Some(Universe::Tickers(Vec::new())),
        None => {
            if t.get("universe").is_none() {
                push(errs, "universe", "universe_required", Vec::new());
            }
            None
        }
    };
    let sizing = t.sub("sizing", errs).and_then(|s| sizing(s, errs));
    if let (Some(_), Some(st)) = (&sizing, &strategy)
        && !st.uses_sizing()
    {
        push(errs, "sizing", "sizing_unused", vec![("strategy", st.name().to_owned())]);
    }
    let execution = match t.sub("execution", errs) {
        Some(e) => execution(e, errs),
        None => Some(default_execution()),
    };
    let risk = match t.sub("risk", errs) {
        Some(r) => risk(r, errs),
        None => Some(Risk { max_order_value: None, max_position_weight: None, cash_reserve: DEFAULT_CASH_RESERVE }),
    };
    t.finish(errs);
    Some(Scenario {
        name: name?,
        description,
        capital: Won(capital?),
        period: period?,
        universe: universe?,
        benchmark,
        strategy: strategy?,
        sizing,
        execution: execution?,
        risk: risk?,
    })
}

/// Kept in cash when sizing to target weights, so that a gap up at the next open does not
/// leave the last buy of a rebalance short of cash.
pub const DEFAULT_CASH_RESERVE: f64 = 0.01;
pub const DEFAULT_SLIPPAGE_BPS: u32 = 5;
pub const DEFAULT_PARTICIPATION: f64 = 0.1;
/// A retail order joining the queue at a locked limit gets a small share of what trades there.
pub const DEFAULT_LOCKED_LIMIT_SHARE: f64 = 0.05;

fn default_locked_limit_share() -> f64 {
    DEFAULT_LOCKED_LIMIT_SHARE
}

fn default_execution() -> Execution {
    Execution {
        fill: FillTiming::NextOpen,
        slippage_bps: DEFAULT_SLIPPAGE_BPS,
        participation: DEFAULT_PARTICIPATION,
        locked_limit_share: DEFAULT_LOCKED_LIMIT_SHARE,
        commission_rate: haechi_core::krx::DEFAULT_COMMISSION.as_fraction(),
        tax_basis: TaxBasis::Settlement,
        liquidate_at_end: false,
    }
}

fn universe(mut u: Table<'_>, errs: &mut Vec<Problem>) -> Option<Universe> {
    let tickers = u.get("tickers");
    let markets = u.get("markets");
    let all = u.boolean("all", errs);
    let given = usize::from(tickers.is_some()) + usize::from(markets.is_some()) + usize::from(all == Some(true));
    let mut out = None;
    if given != 1 {
        push(errs, "universe", "universe_one_kind", Vec::new());
    }
    if let Some(node) = tickers {
        match node {
            // More than the whole exchange lists is a mistake or an attack; refused before any
            // per-item work.
            Node::Arr(items) if items.len() > MAX_TICKERS => push(
                errs,
                "universe.tickers",
                "too_many_tickers",
                vec![("count", items.len().to_string()), ("max", MAX_TICKERS.to_string())],
            ),
            Node::Arr(items) if !items.is_empty() => {
                let mut list = Vec::new();
                // A set, not `list.contains`: the duplicate check stays linear.
                let mut seen = std::collections::HashSet::with_capacity(items.len());
                for (i, item) in items.iter().enumerate() {
                    let path = format!("universe.tickers[{i}]");
                    match item {
                        Node::Str(s) => match Ticker::parse(s) {
                            Ok(t) if !seen.insert(t) => {
                                push(errs, &path, "listed_twice", vec![("ticker", t.to_string())])
                            }
                            Ok(t) => list.push(t),
                            Err(e) => ticker_problem(errs, &path, &e),
                        },
                        other => push(errs, &path, "wrong_type", wrong("ticker", other)),
                    }
                }
                out = Some(Universe::Tickers(list));
            }
            Node::Arr(_) => push(errs, "universe.tickers", "no_tickers", Vec::new()),
            other => push(errs, "universe.tickers", "wrong_type", wrong("ticker_list", other)),
        }
    }
    if let Some(node) = markets {
        match node {
            Node::Arr(items) if !items.is_empty() => {
                let mut list = Vec::new();
                for (i, item) in items.iter().enumerate() {
                    let path = format!("universe.markets[{i}]");
                    match item {
                        Node::Str(s) => match s.parse::<Market>() {
                            Ok(m) => list.push(m),
                            Err(e) => push(errs, &path, "unknown_market", vec![("value", format!("{:?}", e.0))]),
                        },
                        other => push(errs, &path, "wrong_type", wrong("market", other)),
                    }
                }
                out = Some(Universe::Markets(list));
            }
            other => push(errs, "universe.markets", "wrong_type", wrong("market_list", other)),
        }
    }
    if all == Some(true) {
        out = Some(Universe::All);
    }
    u.finish(errs);
    out
}

fn strategy(mut s: Table<'_>, errs: &mut Vec<Problem>) -> Option<StrategySpec> {
    const TYPES: &[(&str, u8)] =
        &[("buy_and_hold", 0), ("rebalance", 1), ("sma_cross", 2), ("momentum_rotation", 3), ("rsi_reversion", 4)];
    let kind = s.required("type", errs).and_then(|_| s.choice("type", TYPES, errs));
    let Some(kind) = kind else {
        // Without a known type the other keys cannot be judged; don't report them as unknown.
        return None;
    };
    let spec = match kind {
        0 => Some(StrategySpec::BuyAndHold),
        1 => {
            let frequency = s.choice("frequency", FREQUENCIES, errs).unwrap_or(RebalanceFrequency::Monthly);
            let weights = s.required("weights", errs).and_then(|_| s.sub("weights", errs)).and_then(|mut w| {
                let mut out = Vec::new();
                let keys: Vec<String> = w.entries.iter().map(|(k, _)| k.clone()).collect();
                for key in keys {
                    let path = w.field(&key);
                    let weight = w.float(&key, Limits::AboveAtMost(0.0, 1.0), errs);
                    match Ticker::parse(&key) {
                        Ok(t) => {
                            if let Some(weight) = weight {
                                out.push((t, weight));
                            }
                        }
                        Err(e) => ticker_problem(errs, &path, &e),
                    }
                }
                w.finish(errs);
                let total: f64 = out.iter().map(|(_, w)| w).sum();
                if total > 1.0 + 1e-9 {
                    push(errs, "strategy.weights", "weights_above_one", vec![("total", format!("{total:.4}"))]);
                }
                if out.is_empty() {
                    push(errs, "strategy.weights", "no_weights", Vec::new());
                    return None;
                }
                out.sort_by_key(|(t, _)| *t);
                Some(out)
            });
            weights.map(|weights| StrategySpec::Rebalance { weights, frequency })
        }
        2 => {
            let fast = s.int("fast", 1..=500, errs).unwrap_or(20) as usize;
            let slow = s.int("slow", 2..=1000, errs).unwrap_or(60) as usize;
            if fast >= slow {
                push(errs, "strategy.slow", "must_exceed", exceed("strategy.fast", fast, slow));
            }
            Some(StrategySpec::SmaCross { fast, slow })
        }
        3 => {
            let lookback = s.int("lookback", 1..=1000, errs).unwrap_or(120) as usize;
            let skip = s.int("skip", 0..=250, errs).unwrap_or(20) as usize;
            let top_n = s.int("top_n", 1..=1000, errs).unwrap_or(20) as usize;
            let frequency = s.choice("frequency", FREQUENCIES, errs).unwrap_or(RebalanceFrequency::Monthly);
            Some(StrategySpec::MomentumRotation { lookback, skip, top_n, frequency })
        }
        _ => {
            let period = s.int("period", 2..=250, errs).unwrap_or(14) as usize;
            let oversold = s.float("oversold", Limits::Between(0.0, 100.0), errs).unwrap_or(30.0);
            let overbought = s.float("overbought", Limits::Between(0.0, 100.0), errs).unwrap_or(70.0);
            if oversold >= overbought {
                push(errs, "strategy.overbought", "must_exceed", exceed("strategy.oversold", oversold, overbought));
            }
            Some(StrategySpec::RsiReversion { period, oversold, overbought })
        }
    };
    s.finish(errs);
    spec
}

fn sizing(mut s: Table<'_>, errs: &mut Vec<Problem>) -> Option<Sizing> {
    const TYPES: &[(&str, u8)] =
        &[("fixed_shares", 0), ("fixed_amount", 1), ("percent_of_equity", 2), ("target_weight", 3)];
    let kind = s.required("type", errs).and_then(|_| s.choice("type", TYPES, errs))?;
    let out = match kind {
        0 => s
            .required("shares", errs)
            .and_then(|_| s.int("shares", 1..=1_000_000_000, errs))
            .map(|n| Sizing::FixedShares { shares: n as u64 }),
        1 => s
            .required("amount", errs)
            .and_then(|_| s.int("amount", 1..=10_000_000_000_000, errs))
            .map(|a| Sizing::FixedAmount { amount: Won(a) }),
        2 => s
            .required("percent", errs)
            .and_then(|_| s.float("percent", Limits::AboveAtMost(0.0, 100.0), errs))
            .map(|percent| Sizing::PercentOfEquity { percent }),
        _ => s
            .required("weight", errs)
            .and_then(|_| s.float("weight", Limits::AboveAtMost(0.0, 1.0), errs))
            .map(|weight| Sizing::TargetWeight { weight }),
    };
    s.finish(errs);
    out
}

fn execution(mut e: Table<'_>, errs: &mut Vec<Problem>) -> Option<Execution> {
    let d = default_execution();
    let fill = e.choice("fill", &[("next_open", FillTiming::NextOpen), ("close", FillTiming::Close)], errs);
    let slippage = e.int("slippage_bps", 0..=1_000, errs);
    let participation = e.float("participation", Limits::AboveAtMost(0.0, 1.0), errs);
    let locked = e.float("locked_limit_share", Limits::Between(0.0, 1.0), errs);
    let commission = e.float("commission_rate", Limits::Between(0.0, 0.01), errs);
    let tax_basis = e.choice("tax_basis", &[("settlement", TaxBasis::Settlement), ("trade", TaxBasis::Trade)], errs);
    let liquidate = e.boolean("liquidate_at_end", errs);
    e.finish(errs);
    Some(Execution {
        fill: fill.unwrap_or(d.fill),
        slippage_bps: slippage.map_or(d.slippage_bps, |v| v as u32),
        participation: participation.unwrap_or(d.participation),
        locked_limit_share: locked.unwrap_or(d.locked_limit_share),
        commission_rate: commission.unwrap_or(d.commission_rate),
        tax_basis: tax_basis.unwrap_or(d.tax_basis),
        liquidate_at_end: liquidate.unwrap_or(d.liquidate_at_end),
    })
}

fn risk(mut r: Table<'_>, errs: &mut Vec<Problem>) -> Option<Risk> {
    let max_order_value = r.int("max_order_value", 1..=10_000_000_000_000, errs).map(Won);
    let max_position_weight = r.float("max_position_weight", Limits::AboveAtMost(0.0, 1.0), errs);
    let cash_reserve = r.float("cash_reserve", Limits::Between(0.0, 0.5), errs);
    r.finish(errs);
    Some(Risk { max_order_value, max_position_weight, cash_reserve: cash_reserve.unwrap_or(DEFAULT_CASH_RESERVE) })
}
