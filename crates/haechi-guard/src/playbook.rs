//! Playbooks, the seed's "security scenarios": a TOML document of rules, each a set of
//! conditions over signals and the actions to take while they hold. Validation reports every
//! problem at once, each with its path; evaluation is a small state machine per rule.

use std::fmt;

use crate::signal::{Facts, Signal};

/// KODEX 인버스: the 1× inverse KOSPI 200 ETF, the only hedge a playbook may buy.
pub const INVERSE_ETF: &str = "114800";
/// Leveraged inverse products need a course and a deposit since 2020-09-07; named so the
/// error says why rather than "unknown ticker".
const LEVERAGED_INVERSE: &[(&str, &str)] = &[
    ("252670", "KODEX 200선물인버스2X"),
    ("252710", "TIGER 200선물인버스2X"),
    ("233740", "KODEX 코스닥150레버리지"),
    ("251340", "KODEX 코스닥150선물인버스"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Decisions become proposed plans the user approves or rejects.
    Advise,
    /// Decisions are carried out at once (and audited, as approvals are).
    Auto,
}

impl Mode {
    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Advise => "advise",
            Mode::Auto => "auto",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
pub enum Op {
    #[serde(rename = "<")]
    Lt,
    #[serde(rename = "<=")]
    Le,
    #[serde(rename = ">")]
    Gt,
    #[serde(rename = ">=")]
    Ge,
}

impl Op {
    fn as_str(self) -> &'static str {
        match self {
            Op::Lt => "<",
            Op::Le => "<=",
            Op::Gt => ">",
            Op::Ge => ">=",
        }
    }
}

/// `signal op value`, e.g. `market.trend_120 < -0.02`.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Condition {
    pub signal: Signal,
    pub op: Op,
    pub value: f64,
}

impl Condition {
    /// False when the signal is unknown at this instant.
    pub fn holds(&self, facts: &Facts) -> bool {
        facts.get(self.signal).is_some_and(|v| match self.op {
            Op::Lt => v < self.value,
            Op::Le => v <= self.value,
            Op::Gt => v > self.value,
            Op::Ge => v >= self.value,
        })
    }
}

impl fmt::Display for Condition {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {} {}", self.signal, self.op.as_str(), self.value)
    }
}

fn parse_condition(text: &str) -> Result<Condition, String> {
    let text = text.trim();
    // Two-character operators first, so "<=" is not read as "<" and "=…".
    for (sym, op) in [("<=", Op::Le), (">=", Op::Ge), ("<", Op::Lt), (">", Op::Gt)] {
        if let Some((lhs, rhs)) = text.split_once(sym) {
            let signal: Signal = lhs.trim().parse().map_err(|e| format!("{e}"))?;
            let rhs = rhs.trim();
            let value: f64 =
                rhs.parse().ok().filter(|v: &f64| v.is_finite()).ok_or_else(|| format!("\"{rhs}\" is not a number"))?;
            return Ok(Condition { signal, op, value });
        }
    }
    Err(format!("\"{text}\" is not a condition: write `signal < number` (or <=, >, >=)"))
}

/// What a rule does while it is active.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
#[serde(tag = "do", rename_all = "snake_case")]
pub enum Action {
    /// Tell the user (an event and a notice); nothing else.
    Alert,
    /// Hold at most this fraction of equity in stocks (0–1).
    ReduceExposure { to: f64 },
    /// Hold at least this fraction of equity in cash (0–1).
    RaiseCash { to: f64 },
    /// A trailing stop this far (a fraction) under each holding's high since the rule fired.
    TightenStop { stop: f64 },
    /// Buy the 1× inverse ETF for this fraction of equity.
    Hedge { ratio: f64, ticker: String },
    /// Refuse new buy orders; sells and cancels still go through.
    HaltBuys,
    /// Every session of the account ends: the next sign-in needs the password and, when
    /// enrolled, the second factor again.
    RequireStepUp,
    /// Revoke every API token of the account.
    RevokeTokens,
    /// Lock the account: sign-ins and orders refused until an administrator unlocks it.
    LockAccount,
}

impl Action {
    pub fn name(&self) -> &'static str {
        match self {
            Action::Alert => "alert",
            Action::ReduceExposure { .. } => "reduce_exposure",
            Action::RaiseCash { .. } => "raise_cash",
            Action::TightenStop { .. } => "tighten_stop",
            Action::Hedge { .. } => "hedge",
            Action::HaltBuys => "halt_buys",
            Action::RequireStepUp => "require_step_up",
            Action::RevokeTokens => "revoke_tokens",
            Action::LockAccount => "lock_account",
        }
    }

    const NAMES: &'static str = "alert, reduce_exposure, raise_cash, tighten_stop, hedge, \
                                 halt_buys, require_step_up, revoke_tokens, lock_account";
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Rule {
    pub id: String,
    pub title: String,
    /// All must hold for the rule to fire.
    pub when: Vec<Condition>,
    /// When given, a fired rule stays active until all of these hold (hysteresis); when
    /// empty, it is active exactly while `when` holds.
    pub until: Vec<Condition>,
    pub actions: Vec<Action>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Playbook {
    pub name: String,
    pub description: String,
    pub mode: Mode,
    pub rules: Vec<Rule>,
}

/// One thing wrong with a document, where it is.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Problem {
    /// A path into the document: `rules[1].when[0]`, `mode`.
    pub path: String,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.message)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the playbook has {} problem(s): {}", .0.len(), .0.iter().map(ToString::to_string).collect::<Vec<_>>().join("; "))]
pub struct Problems(pub Vec<Problem>);

struct Checker {
    problems: Vec<Problem>,
}

impl Checker {
    fn push(&mut self, path: impl Into<String>, message: impl Into<String>) {
        self.problems.push(Problem { path: path.into(), message: message.into() });
    }

    fn string(&mut self, t: &toml::Table, key: &str, path: &str, required: bool) -> String {
        match t.get(key) {
            Some(toml::Value::String(s)) if !s.trim().is_empty() => s.trim().to_owned(),
            Some(toml::Value::String(_)) | None if !required => String::new(),
            Some(toml::Value::String(_)) | None => {
                self.push(path, "is required");
                String::new()
            }
            Some(other) => {
                self.push(path, format!("must be text, not {}", other.type_str()));
                String::new()
            }
        }
    }

    fn fraction(&mut self, t: &toml::Table, key: &str, path: &str, max: f64) -> f64 {
        let v = match t.get(key) {
            Some(toml::Value::Float(f)) => *f,
            Some(toml::Value::Integer(i)) => *i as f64,
            Some(other) => {
                self.push(path, format!("must be a number, not {}", other.type_str()));
                return 0.0;
            }
            None => {
                self.push(path, "is required");
                return 0.0;
            }
        };
        if !(0.0..=max).contains(&v) {
            self.push(path, format!("{v} is outside 0..={max}"));
        }
        v
    }

    fn unknown_keys(&mut self, t: &toml::Table, known: &[&str], at: &str) {
        for k in t.keys().filter(|k| !known.contains(&k.as_str())) {
            let path = if at.is_empty() { k.clone() } else { format!("{at}.{k}") };
            self.push(path, format!("unknown key (known: {})", known.join(", ")));
        }
    }

    fn conditions(&mut self, t: &toml::Table, key: &str, at: &str) -> Vec<Condition> {
        let path = format!("{at}.{key}");
        let items: Vec<&toml::Value> = match t.get(key) {
            None => return Vec::new(),
            Some(toml::Value::Array(a)) => a.iter().collect(),
            Some(v @ toml::Value::String(_)) => vec![v],
            Some(other) => {
                self.push(path, format!("must be a list of conditions, not {}", other.type_str()));
                return Vec::new();
            }
        };
        let mut out = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let p = format!("{path}[{i}]");
            match item {
                toml::Value::String(s) => match parse_condition(s) {
                    Ok(c) => out.push(c),
                    Err(e) => self.push(p, e),
                },
                other => self.push(p, format!("must be text, not {}", other.type_str())),
            }
        }
        out
    }

    fn action(&mut self, v: &toml::Value, path: &str) -> Option<Action> {
        let Some(t) = v.as_table() else {
            self.push(path, "must be a table like { do = \"alert\" }");
            return None;
        };
        let Some(name) = t.get("do").and_then(toml::Value::as_str) else {
            self.push(format!("{path}.do"), format!("is required: one of {}", Action::NAMES));
            return None;
        };
        let field = |k: &str| format!("{path}.{k}");
        let (action, keys): (Action, &[&str]) = match name {
            "alert" => (Action::Alert, &["do"]),
            "halt_buys" => (Action::HaltBuys, &["do"]),
            "require_step_up" => (Action::RequireStepUp, &["do"]),
            "revoke_tokens" => (Action::RevokeTokens, &["do"]),
            "lock_account" => (Action::LockAccount, &["do"]),
            "reduce_exposure" => {
                (Action::ReduceExposure { to: self.fraction(t, "to", &field("to"), 1.0) }, &["do", "to"])
            }
            "raise_cash" => (Action::RaiseCash { to: self.fraction(t, "to", &field("to"), 1.0) }, &["do", "to"]),
            "tighten_stop" => {
                let stop = self.fraction(t, "stop", &field("stop"), 0.5);
                if stop == 0.0 {
                    self.push(field("stop"), "must be above 0 (a stop at the high sells at once)");
                }
                (Action::TightenStop { stop }, &["do", "stop"])
            }
            "hedge" => {
                let ratio = self.fraction(t, "ratio", &field("ratio"), 1.0);
                let ticker = match t.get("ticker") {
                    None => INVERSE_ETF.to_owned(),
                    Some(toml::Value::String(s)) => s.trim().to_owned(),
                    Some(other) => {
                        self.push(field("ticker"), format!("must be text, not {}", other.type_str()));
                        INVERSE_ETF.to_owned()
                    }
                };
                if let Some((_, name)) = LEVERAGED_INVERSE.iter().find(|(t, _)| *t == ticker) {
                    self.push(
                        field("ticker"),
                        format!(
                            "{ticker} ({name}) is a leveraged product: since 2020-09-07 it needs a \
                             course and a deposit; hedge with {INVERSE_ETF} (KODEX 인버스)"
                        ),
                    );
                } else if ticker != INVERSE_ETF {
                    self.push(
                        field("ticker"),
                        format!("{ticker} is not a 1× inverse ETF; use {INVERSE_ETF} (KODEX 인버스)"),
                    );
                }
                (Action::Hedge { ratio, ticker }, &["do", "ratio", "ticker"])
            }
            other => {
                self.push(format!("{path}.do"), format!("unknown action \"{other}\" (known: {})", Action::NAMES));
                return None;
            }
        };
        self.unknown_keys(t, keys, path);
        Some(action)
    }
}

impl Playbook {
    /// Parses and validates a document, reporting every problem.
    pub fn from_toml(text: &str) -> Result<Self, Problems> {
        let table: toml::Table = text.parse().map_err(|e: toml::de::Error| {
            let at = e
                .span()
                .map(|s| {
                    let line = text.get(..s.start).unwrap_or(text).matches('\n').count() + 1;
                    format!("line {line}")
                })
                .unwrap_or_else(|| "document".into());
            Problems(vec![Problem { path: at, message: e.message().to_owned() }])
        })?;
        let mut c = Checker { problems: Vec::new() };
        c.unknown_keys(&table, &["name", "description", "mode", "rules"], "");
        let name = c.string(&table, "name", "name", true);
        let description = c.string(&table, "description", "description", false);
        let mode = match table.get("mode").map(|m| m.as_str()) {
            None | Some(Some("advise")) => Mode::Advise,
            Some(Some("auto")) => Mode::Auto,
            Some(Some(other)) => {
                c.push("mode", format!("\"{other}\" is not advise or auto"));
                Mode::Advise
            }
            Some(None) => {
                c.push("mode", "must be \"advise\" or \"auto\"");
                Mode::Advise
            }
        };
        let mut rules = Vec::new();
        match table.get("rules") {
            Some(toml::Value::Array(items)) if !items.is_empty() => {
                for (i, item) in items.iter().enumerate() {
                    let at = format!("rules[{i}]");
                    let Some(t) = item.as_table() else {
                        c.push(at, "must be a table ([[rules]])");
                        continue;
                    };
                    c.unknown_keys(t, &["id", "title", "when", "until", "actions"], &at);
                    let id = c.string(t, "id", &format!("{at}.id"), true);
                    if !id.is_empty() && !id.chars().all(|ch| ch.is_ascii_alphanumeric() || ch == '-' || ch == '_') {
                        c.push(format!("{at}.id"), "use letters, digits, - and _ only");
                    }
                    if !id.is_empty() && rules.iter().any(|r: &Rule| r.id == id) {
                        c.push(format!("{at}.id"), format!("\"{id}\" is used by an earlier rule"));
                    }
                    let title = c.string(t, "title", &format!("{at}.title"), false);
                    let when = c.conditions(t, "when", &at);
                    let when_path = format!("{at}.when");
                    if when.is_empty() && !c.problems.iter().any(|p| p.path.starts_with(&when_path)) {
                        c.push(format!("{at}.when"), "is required: at least one condition");
                    }
                    let until = c.conditions(t, "until", &at);
                    let mut actions = Vec::new();
                    match t.get("actions") {
                        Some(toml::Value::Array(a)) if !a.is_empty() => {
                            for (k, v) in a.iter().enumerate() {
                                if let Some(act) = c.action(v, &format!("{at}.actions[{k}]")) {
                                    actions.push(act);
                                }
                            }
                        }
                        Some(toml::Value::Array(_)) | None => {
                            c.push(format!("{at}.actions"), "is required: at least one action")
                        }
                        Some(other) => c.push(
                            format!("{at}.actions"),
                            format!("must be a list of actions, not {}", other.type_str()),
                        ),
                    }
                    rules.push(Rule { id, title, when, until, actions });
                }
            }
            Some(toml::Value::Array(_)) | None => c.push("rules", "is required: at least one rule"),
            Some(other) => c.push("rules", format!("must be a list of rules ([[rules]]), not {}", other.type_str())),
        }
        if c.problems.is_empty() { Ok(Self { name, description, mode, rules }) } else { Err(Problems(c.problems)) }
    }

    /// Every signal the rules read, once each.
    pub fn signals(&self) -> Vec<Signal> {
        let mut s: Vec<Signal> =
            self.rules.iter().flat_map(|r| r.when.iter().chain(&r.until).map(|c| c.signal)).collect();
        s.sort();
        s.dedup();
        s
    }
}

/// A rule starting or ending, with the values that made it so.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Transition {
    pub rule: usize,
    pub rule_id: String,
    pub fired: bool,
    /// The conditions that decided, with each signal's value.
    pub evidence: Vec<(String, f64)>,
}

/// What the active rules ask of a portfolio, combined: the most defensive of each.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Posture {
    /// Most of equity to hold in stocks (1 = no limit).
    pub exposure: f64,
    /// Share of equity in the inverse ETF.
    pub hedge: f64,
    pub stop: Option<f64>,
    pub halt_buys: bool,
    pub step_up: bool,
    pub revoke_tokens: bool,
    pub lock: bool,
    pub alerts: Vec<String>,
}

/// A playbook being evaluated: which rules are active. Pure: the caller brings the facts of
/// each instant in time order.
#[derive(Debug, Clone)]
pub struct Evaluator {
    playbook: Playbook,
    active: Vec<bool>,
}

impl Evaluator {
    pub fn new(playbook: Playbook) -> Self {
        let active = vec![false; playbook.rules.len()];
        Self { playbook, active }
    }

    /// Restores which rules were active (from stored state), by id; unknown ids are ignored.
    pub fn with_active(mut self, ids: &[String]) -> Self {
        for (i, r) in self.playbook.rules.iter().enumerate() {
            self.active[i] = ids.contains(&r.id);
        }
        self
    }

    pub fn playbook(&self) -> &Playbook {
        &self.playbook
    }

    pub fn active_ids(&self) -> Vec<String> {
        self.playbook.rules.iter().zip(&self.active).filter(|(_, a)| **a).map(|(r, _)| r.id.clone()).collect()
    }

    pub fn step(&mut self, facts: &Facts) -> Vec<Transition> {
        let mut out = Vec::new();
        for (i, rule) in self.playbook.rules.iter().enumerate() {
            let all = |cs: &[Condition]| !cs.is_empty() && cs.iter().all(|c| c.holds(facts));
            let evidence = |cs: &[Condition]| {
                cs.iter().map(|c| (c.to_string(), facts.get(c.signal).unwrap_or(f64::NAN))).collect()
            };
            let was = self.active[i];
            let now = if was {
                if rule.until.is_empty() { all(&rule.when) } else { !all(&rule.until) }
            } else {
                all(&rule.when)
            };
            if now != was {
                self.active[i] = now;
                let decided = if now || rule.until.is_empty() { &rule.when } else { &rule.until };
                out.push(Transition { rule: i, rule_id: rule.id.clone(), fired: now, evidence: evidence(decided) });
            }
        }
        out
    }

    pub fn posture(&self) -> Posture {
        let mut p = Posture {
            exposure: 1.0,
            hedge: 0.0,
            stop: None,
            halt_buys: false,
            step_up: false,
            revoke_tokens: false,
            lock: false,
            alerts: Vec::new(),
        };
        for (rule, _) in self.playbook.rules.iter().zip(&self.active).filter(|(_, a)| **a) {
            for a in &rule.actions {
                match a {
                    Action::Alert => p.alerts.push(rule.id.clone()),
                    Action::ReduceExposure { to } => p.exposure = p.exposure.min(*to),
                    Action::RaiseCash { to } => p.exposure = p.exposure.min(1.0 - to),
                    Action::TightenStop { stop } => p.stop = Some(p.stop.map_or(*stop, |s: f64| s.min(*stop))),
                    Action::Hedge { ratio, .. } => p.hedge = p.hedge.max(*ratio),
                    Action::HaltBuys => p.halt_buys = true,
                    Action::RequireStepUp => p.step_up = true,
                    Action::RevokeTokens => p.revoke_tokens = true,
                    Action::LockAccount => p.lock = true,
                }
            }
        }
        // Stocks and the hedge together never exceed equity.
        p.hedge = p.hedge.min(1.0 - p.exposure).max(0.0);
        p
    }
}

/// The playbooks that ship with Haechi (`haechi guard evaluate --playbook market-default`).
pub fn builtin(name: &str) -> Option<&'static str> {
    match name {
        "market-default" => Some(include_str!("../playbooks/market-default.toml")),
        "security-default" => Some(include_str!("../playbooks/security-default.toml")),
        _ => None,
    }
}

pub const BUILTIN: &[&str] = &["market-default", "security-default"];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn builtin_playbooks_are_valid() {
        for name in BUILTIN {
            let text = builtin(name).unwrap();
            Playbook::from_toml(text).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }

    #[test]
    fn validation_lists_every_problem_with_its_path() {
        let text = r#"
name = ""
mode = "yolo"
colour = "red"

[[rules]]
id = "a b"
when = ["market.trend_120 < x", "market.nope > 1", "market.trend_1 < 0", "score 50"]
actions = [{ do = "reduce_exposure", to = 1.5 }, { do = "hedge", ratio = 0.3, ticker = "252670" }, { do = "sell_everything" }]

[[rules]]
id = "a b"
when = "score > 50"
actions = []
"#;
        let Problems(p) = Playbook::from_toml(text).unwrap_err();
        let got: Vec<String> = p.iter().map(ToString::to_string).collect();
        let expect = [
            "colour: unknown key",
            "name: is required",
            "mode: \"yolo\" is not advise or auto",
            "rules[0].id: use letters, digits, - and _ only",
            "rules[0].when[0]: \"x\" is not a number",
            "rules[0].when[1]: unknown signal \"market.nope\"",
            "rules[0].when[2]: signal \"market.trend_1\": window 1 is outside 2..=504",
            "rules[0].when[3]: \"score 50\" is not a condition",
            "rules[0].actions[0].to: 1.5 is outside 0..=1",
            "rules[0].actions[1].ticker: 252670 (KODEX 200선물인버스2X) is a leveraged product",
            "rules[0].actions[2].do: unknown action \"sell_everything\"",
            "rules[1].id: use letters",
            "rules[1].id: \"a b\" is used by an earlier rule",
            "rules[1].actions: is required: at least one action",
        ];
        for e in expect {
            assert!(got.iter().any(|g| g.starts_with(e)), "missing {e:?} in {got:#?}");
        }
        assert_eq!(got.len(), expect.len(), "{got:#?}");
    }

    #[test]
    fn a_rule_with_no_condition_is_refused_not_silently_dead() {
        let Problems(p) =
            Playbook::from_toml("name = \"x\"\n[[rules]]\nid = \"r\"\nwhen = []\nactions = [{ do = \"alert\" }]\n")
                .unwrap_err();
        assert_eq!(p.len(), 1);
        assert_eq!(p[0].to_string(), "rules[0].when: is required: at least one condition");
    }

    #[test]
    fn syntax_errors_name_the_line() {
        let Problems(p) = Playbook::from_toml("name = \"x\"\nrules = [\n").unwrap_err();
        assert_eq!(p.len(), 1);
        assert!(p[0].path.starts_with("line "), "{p:?}");
    }

    fn trend_playbook() -> Playbook {
        Playbook::from_toml(
            r#"
name = "t"
[[rules]]
id = "trend"
when = ["market.trend_120 < -0.02"]
until = ["market.trend_120 > 0"]
actions = [{ do = "reduce_exposure", to = 0.3 }, { do = "hedge", ratio = 0.9 }]
[[rules]]
id = "crash"
when = ["market.day_return <= -0.08"]
actions = [{ do = "halt_buys" }]
"#,
        )
        .unwrap()
    }

    #[test]
    fn hysteresis_holds_a_rule_until_its_release_and_without_one_only_while_true() {
        let mut e = Evaluator::new(trend_playbook());
        let facts = |trend: f64, day: f64| {
            let mut f = Facts::new();
            f.set(Signal::MarketTrend(120), trend);
            f.set(Signal::MarketDayReturn, day);
            f
        };
        assert!(e.step(&facts(-0.01, 0.0)).is_empty());
        let t = e.step(&facts(-0.03, -0.09));
        assert_eq!(t.len(), 2);
        assert!(t[0].fired && t[0].rule_id == "trend");
        assert_eq!(t[0].evidence, vec![("market.trend_120 < -0.02".into(), -0.03)]);
        let p = e.posture();
        assert_eq!(p.exposure, 0.3);
        // The hedge is capped so stocks and hedge stay within equity.
        assert!((p.hedge - 0.7).abs() < 1e-12);
        assert!(p.halt_buys);
        // Back above −2% but under the average: the trend rule holds, the crash rule ends.
        let t = e.step(&facts(-0.01, 0.01));
        assert_eq!(t.len(), 1);
        assert!(!t[0].fired && t[0].rule_id == "crash");
        assert_eq!(e.active_ids(), vec!["trend".to_string()]);
        let t = e.step(&facts(0.001, 0.0));
        assert_eq!(t[0].evidence, vec![("market.trend_120 > 0".into(), 0.001)]);
        assert_eq!(e.posture().exposure, 1.0);
        // Missing facts (not enough history) fire nothing.
        assert!(e.step(&Facts::new()).is_empty());
        // State restores by id.
        let e = Evaluator::new(trend_playbook()).with_active(&["trend".into(), "gone".into()]);
        assert_eq!(e.posture().exposure, 0.3);
    }
}
