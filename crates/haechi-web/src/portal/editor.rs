//! The scenario form: one field per setting, read from and written to the stored JSON scenario,
//! so the form, the TOML view and the API share one document and one validation.
//!
//! The form knows the scenario's shape, not its rules: what it sends goes through
//! [`haechi_app::spec::validate_json`], and the problems come back at the fields they name.

use serde_json::{Map, Value, json};
use std::collections::BTreeMap;

use super::i18n::Tr;
use super::msg;
use haechi_app::FieldProblem;

const STRATEGIES: [&str; 5] = ["buy_and_hold", "rebalance", "sma_cross", "momentum_rotation", "rsi_reversion"];
/// Strategies that size their buys with `[sizing]`; the others size by target weights.
const SIZED: [&str; 3] = ["buy_and_hold", "sma_cross", "rsi_reversion"];
const FREQUENCIES: [&str; 3] = ["weekly", "monthly", "quarterly"];
const MARKETS: [&str; 4] = ["KOSPI", "KOSDAQ", "KONEX", "ETF"];
/// Each sizing type and the key holding its amount.
const SIZINGS: [(&str, &str); 4] = [
    ("fixed_shares", "shares"),
    ("fixed_amount", "amount"),
    ("percent_of_equity", "percent"),
    ("target_weight", "weight"),
];
/// Strategy parameters: (strategy, key, label).
const STRATEGY_FIELDS: [(&str, &str, &str); 9] = [
    ("sma_cross", "fast", msg("form.sma_fast")),
    ("sma_cross", "slow", msg("form.sma_slow")),
    ("momentum_rotation", "lookback", msg("form.lookback")),
    ("momentum_rotation", "skip", msg("form.skip")),
    ("momentum_rotation", "top_n", msg("form.top_n")),
    ("rsi_reversion", "period", msg("form.rsi_period")),
    ("rsi_reversion", "oversold", msg("form.oversold")),
    ("rsi_reversion", "overbought", msg("form.overbought")),
    ("momentum_rotation", "frequency", msg("form.frequency")),
];
const EXECUTION_NUMBERS: [(&str, &str, &str); 4] = [
    ("slippage_bps", msg("form.slippage"), "5"),
    ("participation", msg("form.participation"), "0.1"),
    ("locked_limit_share", msg("form.locked_limit_share"), "0.05"),
    ("commission_rate", msg("form.commission"), "0.00015"),
];
const RISK_NUMBERS: [(&str, &str, &str); 3] = [
    ("max_order_value", msg("form.max_order_value"), ""),
    ("max_position_weight", msg("form.max_position_weight"), ""),
    ("cash_reserve", msg("form.cash_reserve"), "0.01"),
];

/// The form's values by input name (`name`, `sma_cross.fast`, `universe.markets` many times).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FormValues(BTreeMap<String, Vec<String>>);

impl FormValues {
    /// What the browser posted.
    #[must_use]
    pub fn from_pairs(pairs: &[(String, String)]) -> FormValues {
        let mut map: BTreeMap<String, Vec<String>> = BTreeMap::new();
        for (k, v) in pairs {
            map.entry(k.clone()).or_default().push(v.clone());
        }
        FormValues(map)
    }

    fn one(&self, name: &str) -> &str {
        self.0.get(name).and_then(|v| v.first()).map_or("", |s| s.trim())
    }

    fn all(&self, name: &str) -> &[String] {
        self.0.get(name).map_or(&[], Vec::as_slice)
    }

    fn set(&mut self, name: &str, value: impl Into<String>) {
        self.0.insert(name.to_owned(), vec![value.into()]);
    }

    /// The stored scenario as form values; what the form cannot show stays in the TOML view.
    #[must_use]
    pub fn from_spec(spec: &Value) -> FormValues {
        let mut f = FormValues::default();
        let text = |v: &Value| match v {
            Value::String(s) => s.clone(),
            Value::Null => String::new(),
            other => other.to_string(),
        };
        for key in ["schema", "name", "description", "benchmark"] {
            if let Some(v) = spec.get(key) {
                f.set(key, text(v));
            }
        }
        // Won amounts with separators, as people read them; `to_spec` takes them back.
        let amount = |v: &Value| v.as_i64().map_or_else(|| text(v), super::report::won);
        if let Some(v) = spec.get("capital") {
            f.set("capital", amount(v));
        }
        for key in ["start", "end"] {
            if let Some(v) = spec.pointer(&format!("/period/{key}")) {
                f.set(&format!("period.{key}"), text(v));
            }
        }
        let universe = spec.get("universe");
        let kind = match universe {
            None => "none",
            Some(u) if u.get("tickers").is_some() => "tickers",
            Some(u) if u.get("markets").is_some() => "markets",
            Some(_) => "all",
        };
        f.set("universe.kind", kind);
        if let Some(Value::Array(list)) = universe.and_then(|u| u.get("tickers")) {
            f.set("universe.tickers", list.iter().map(text).collect::<Vec<_>>().join(", "));
        }
        if let Some(Value::Array(list)) = universe.and_then(|u| u.get("markets")) {
            f.0.insert("universe.markets".into(), list.iter().map(|m| text(m).to_uppercase()).collect());
        }
        if let Some(s) = spec.get("strategy") {
            let kind = s.get("type").map(text).unwrap_or_default();
            if let Value::Object(o) = s {
                for (k, v) in o {
                    match (k.as_str(), v) {
                        ("type", _) => {}
                        ("weights", Value::Object(w)) => {
                            let lines: Vec<String> = w.iter().map(|(t, v)| format!("{t} = {}", text(v))).collect();
                            f.set("rebalance.weights", lines.join("\n"));
                        }
                        _ => f.set(&format!("{kind}.{k}"), text(v)),
                    }
                }
            }
            f.set("strategy.type", kind);
        }
        if let Some(s) = spec.get("sizing") {
            let kind = s.get("type").map(text).unwrap_or_default();
            if let Some((_, key)) = SIZINGS.iter().find(|(k, _)| *k == kind)
                && let Some(v) = s.get(*key)
            {
                f.set("sizing.value", if *key == "amount" { amount(v) } else { text(v) });
            }
            f.set("sizing.type", kind);
        }
        for table in ["execution", "risk"] {
            if let Some(Value::Object(o)) = spec.get(table) {
                for (k, v) in o {
                    let shown = if k == "max_order_value" { amount(v) } else { text(v) };
                    f.set(&format!("{table}.{k}"), shown);
                }
            }
        }
        f
    }

    /// The scenario document the form describes. Empty fields are left out so the
    /// validator's defaults apply; text where a number belongs is passed on as text, for
    /// the validator to name.
    #[must_use]
    // Stays whole: one line per form field, mirroring `groups`, so the two are checked side by side.
    pub fn to_spec(&self) -> Value {
        let mut spec = Map::new();
        if !self.one("schema").is_empty() {
            spec.insert("schema".into(), number(self.one("schema")));
        }
        for key in ["name", "description", "benchmark"] {
            if !self.one(key).is_empty() {
                spec.insert(key.into(), Value::String(self.one(key).to_owned()));
            }
        }
        if !self.one("capital").is_empty() {
            spec.insert("capital".into(), whole(self.one("capital")));
        }
        let mut period = Map::new();
        for key in ["start", "end"] {
            let v = self.one(&format!("period.{key}"));
            if !v.is_empty() {
                period.insert(key.into(), Value::String(v.to_owned()));
            }
        }
        if !period.is_empty() {
            spec.insert("period".into(), Value::Object(period));
        }
        let tickers: Vec<Value> = self
            .one("universe.tickers")
            .split(|c: char| c == ',' || c.is_whitespace())
            .filter(|t| !t.is_empty())
            .map(|t| Value::String(t.to_owned()))
            .collect();
        let markets: Vec<Value> = self.all("universe.markets").iter().map(|m| Value::String(m.clone())).collect();
        match self.one("universe.kind") {
            "tickers" => {
                spec.insert("universe".into(), json!({ "tickers": tickers }));
            }
            "markets" => {
                spec.insert("universe".into(), json!({ "markets": markets }));
            }
            "all" => {
                spec.insert("universe".into(), json!({ "all": true }));
            }
            _ => {}
        }
        let kind = self.one("strategy.type");
        if !kind.is_empty() {
            let mut s = Map::new();
            s.insert("type".into(), Value::String(kind.to_owned()));
            for (strategy, key, _) in STRATEGY_FIELDS {
                let v = self.one(&format!("{strategy}.{key}"));
                if strategy == kind && !v.is_empty() {
                    s.insert(key.into(), if key == "frequency" { Value::String(v.to_owned()) } else { number(v) });
                }
            }
            if kind == "rebalance" {
                let f = self.one("rebalance.frequency");
                if !f.is_empty() {
                    s.insert("frequency".into(), Value::String(f.to_owned()));
                }
                let mut weights = Map::new();
                for line in self.one("rebalance.weights").lines() {
                    let line = line.trim();
                    if line.is_empty() {
                        continue;
                    }
                    let (ticker, weight) = line
                        .split_once(['=', ':'])
                        .or_else(|| line.split_once(char::is_whitespace))
                        .unwrap_or((line, ""));
                    weights.insert(ticker.trim().to_owned(), number(weight.trim()));
                }
                s.insert("weights".into(), Value::Object(weights));
            }
            spec.insert("strategy".into(), Value::Object(s));
        }
        // Like another strategy's fields, sizing is ignored for strategies that size by weight:
        // the form hides it for them.
        let sizing = if kind.is_empty() || SIZED.contains(&kind) { self.one("sizing.type") } else { "" };
        if let Some((_, key)) = SIZINGS.iter().find(|(k, _)| *k == sizing) {
            let mut s = Map::new();
            s.insert("type".into(), Value::String(sizing.to_owned()));
            let v = self.one("sizing.value");
            if !v.is_empty() {
                s.insert((*key).into(), if *key == "shares" || *key == "amount" { whole(v) } else { number(v) });
            }
            spec.insert("sizing".into(), Value::Object(s));
        }
        let mut execution = Map::new();
        for key in ["fill", "tax_basis"] {
            let v = self.one(&format!("execution.{key}"));
            if !v.is_empty() {
                execution.insert(key.into(), Value::String(v.to_owned()));
            }
        }
        for (key, _, _) in EXECUTION_NUMBERS {
            let v = self.one(&format!("execution.{key}"));
            if !v.is_empty() {
                execution.insert(key.into(), number(v));
            }
        }
        if self.one("execution.liquidate_at_end") == "true" {
            execution.insert("liquidate_at_end".into(), Value::Bool(true));
        }
        if !execution.is_empty() {
            spec.insert("execution".into(), Value::Object(execution));
        }
        let mut risk = Map::new();
        for (key, _, _) in RISK_NUMBERS {
            let v = self.one(&format!("risk.{key}"));
            if !v.is_empty() {
                risk.insert(key.into(), if key == "max_order_value" { whole(v) } else { number(v) });
            }
        }
        if !risk.is_empty() {
            spec.insert("risk".into(), Value::Object(risk));
        }
        Value::Object(spec)
    }
}

/// A number as JSON (integer when it is one), or the text itself for the validator to refuse.
fn number(s: &str) -> Value {
    if let Ok(i) = s.parse::<i64>() {
        return Value::from(i);
    }
    match s.parse::<f64>().ok().and_then(serde_json::Number::from_f64) {
        Some(n) => Value::Number(n),
        None => Value::String(s.to_owned()),
    }
}

/// Won amounts as people write them: `100,000,000` and `100_000_000` are one hundred million.
fn whole(s: &str) -> Value {
    let digits: String = s.chars().filter(|c| !matches!(c, ',' | '_' | ' ')).collect();
    number(&digits)
}

/// The input a validation problem belongs to, given the strategy the form chose.
#[must_use]
pub fn input_for(path: &str, strategy: &str) -> String {
    let path = path.strip_prefix("spec.").unwrap_or(path);
    let top = path.split(['.', '[']).next().unwrap_or(path);
    match top {
        "universe" if path.starts_with("universe.tickers") => "universe.tickers".into(),
        "universe" if path.starts_with("universe.markets") => "universe.markets".into(),
        "universe" => "universe.kind".into(),
        "strategy" if path.starts_with("strategy.weights") => "rebalance.weights".into(),
        "strategy" => match path.strip_prefix("strategy.") {
            Some("type") | None => "strategy.type".into(),
            Some(key) if strategy == "rebalance" && key == "frequency" => "rebalance.frequency".into(),
            Some(key) => format!("{strategy}.{key}"),
        },
        "sizing" if path == "sizing.type" => "sizing.type".into(),
        "sizing" => "sizing.value".into(),
        "period" if path == "period" => "period.start".into(),
        _ => path.to_owned(),
    }
}

/// One choice of a select, a radio group or a set of check boxes.
#[derive(Debug)]
pub struct Choice {
    pub value: String,
    pub label: String,
    pub selected: bool,
}

/// One input, ready to render.
#[derive(Debug)]
pub struct Field {
    pub name: String,
    /// The element id (`f-sma_cross-fast`).
    pub id: String,
    pub label: String,
    pub hint: String,
    /// `text`, `number`, `date`, `area`, `select`, `radio`, `checks` or `check`.
    pub kind: &'static str,
    pub value: String,
    pub placeholder: String,
    pub required: bool,
    /// `numeric` or `decimal` for phone keyboards; empty otherwise.
    pub inputmode: &'static str,
    pub choices: Vec<Choice>,
    /// The problems at this field, in the page's language.
    pub error: String,
    /// Ids of the hint and the error, for `aria-describedby`.
    pub described_by: String,
}

/// A fieldset.
#[derive(Debug)]
pub struct Group {
    pub id: String,
    pub legend: String,
    pub hint: String,
    /// The strategies the group applies to, space-separated (empty: all), so the script can
    /// hide what the chosen strategy does not use. Without the script every group shows.
    pub shown_for: String,
    pub fields: Vec<Field>,
}

/// Builds the form's fieldsets with the values and each field's problems.
#[must_use]
// Stays whole: it is the form's layout, one fieldset after another in reading order, and
// reads best as the page reads; each field is one short builder call.
pub fn groups(t: &Tr, f: &FormValues, problems: &[FieldProblem]) -> Vec<Group> {
    let strategy = f.one("strategy.type");
    let mut errors: BTreeMap<String, Vec<String>> = BTreeMap::new();
    for p in problems {
        errors.entry(input_for(&p.field, strategy)).or_default().push(worded(t, p, strategy));
    }
    let field = |name: &str, label: &str, kind: &'static str| Field {
        id: format!("f-{}", name.replace('.', "-")),
        label: t.get_dyn(label).to_owned(),
        hint: String::new(),
        kind,
        value: f.one(name).to_owned(),
        placeholder: String::new(),
        required: false,
        inputmode: "",
        choices: Vec::new(),
        error: errors.get(name).map(|e| e.join(" ")).unwrap_or_default(),
        described_by: String::new(),
        name: name.to_owned(),
    };
    let hinted = |mut fl: Field, hint: &str| {
        fl.hint = t.get_dyn(hint).to_owned();
        fl
    };
    let choices = |values: &[&str], selected: &[String], label: &dyn Fn(&str) -> String| {
        values
            .iter()
            .map(|v| Choice { value: (*v).to_owned(), label: label(v), selected: selected.iter().any(|s| s == v) })
            .collect::<Vec<_>>()
    };
    let select = |name: &str, label: &str, values: &[&str], blank: Option<&str>, key: &str| {
        let mut fl = field(name, label, "select");
        let current = vec![f.one(name).to_owned()];
        let mut list = Vec::new();
        if let Some(b) = blank {
            list.push(Choice { value: String::new(), label: t.get_dyn(b).to_owned(), selected: current[0].is_empty() });
        }
        list.extend(choices(values, &current, &|v| {
            t.lookup(&format!("{key}.{v}")).map_or_else(|| v.to_owned(), str::to_owned)
        }));
        fl.choices = list;
        fl
    };
    let numeric = |name: &str, label: &str, placeholder: &str, mode: &'static str| {
        let mut fl = field(name, label, "text");
        fl.placeholder = placeholder.to_owned();
        fl.inputmode = mode;
        fl
    };

    let required = |mut fl: Field| {
        fl.required = true;
        fl
    };
    let basics = vec![
        required(field("name", msg("form.name"), "text")),
        {
            let mut fl = field("description", msg("form.description"), "area");
            fl.placeholder = t.get("form.description_placeholder").to_owned();
            fl
        },
        required(hinted(numeric("capital", msg("form.capital"), "100,000,000", "numeric"), msg("form.capital_hint"))),
        hinted(field("benchmark", msg("form.benchmark"), "text"), msg("form.benchmark_hint")),
        required(field("period.start", msg("form.start"), "date")),
        required(field("period.end", msg("form.end"), "date")),
    ];

    let mut kind = field("universe.kind", msg("form.universe_kind"), "radio");
    kind.choices = choices(&["tickers", "markets", "all", "none"], &[f.one("universe.kind").to_owned()], &|v| {
        t.lookup(&format!("form.universe.{v}")).unwrap_or(v).to_owned()
    });
    let tickers = hinted(field("universe.tickers", msg("form.tickers"), "area"), msg("form.tickers_hint"));
    let mut markets = field("universe.markets", msg("form.markets"), "checks");
    markets.choices = choices(&MARKETS, f.all("universe.markets"), &|v| v.to_owned());

    let mut out = vec![
        Group {
            id: "g-basics".into(),
            legend: t.get("form.basics").to_owned(),
            hint: String::new(),
            shown_for: String::new(),
            fields: basics,
        },
        Group {
            id: "g-universe".into(),
            legend: t.get("form.universe").to_owned(),
            hint: String::new(),
            shown_for: String::new(),
            fields: vec![kind, tickers, markets],
        },
        Group {
            id: "g-strategy".into(),
            legend: t.get("form.strategy").to_owned(),
            hint: t.get("form.strategy_hint").to_owned(),
            shown_for: String::new(),
            fields: vec![required(select("strategy.type", msg("form.strategy_type"), &STRATEGIES, None, "strategy"))],
        },
    ];
    out.push(Group {
        id: "g-rebalance".into(),
        legend: t.get("strategy.rebalance").to_owned(),
        hint: String::new(),
        shown_for: "rebalance".into(),
        fields: vec![
            hinted(field("rebalance.weights", msg("form.weights"), "area"), msg("form.weights_hint")),
            select("rebalance.frequency", msg("form.frequency"), &FREQUENCIES, Some(msg("form.default")), "frequency"),
        ],
    });
    for s in ["sma_cross", "momentum_rotation", "rsi_reversion"] {
        let fields = STRATEGY_FIELDS
            .iter()
            .filter(|(owner, _, _)| *owner == s)
            .map(|(owner, key, label)| {
                let name = format!("{owner}.{key}");
                if *key == "frequency" {
                    select(&name, label, &FREQUENCIES, Some(msg("form.default")), "frequency")
                } else {
                    numeric(&name, label, default_of(owner, key), "decimal")
                }
            })
            .collect();
        out.push(Group {
            id: format!("g-{s}"),
            legend: t.get_dyn(&format!("strategy.{s}")).to_owned(),
            hint: String::new(),
            shown_for: s.into(),
            fields,
        });
    }
    let sizing_labels: Vec<&str> = SIZINGS.iter().map(|(k, _)| *k).collect();
    out.push(Group {
        id: "g-sizing".into(),
        legend: t.get("form.sizing").to_owned(),
        hint: t.get("form.sizing_hint").to_owned(),
        shown_for: SIZED.join(" "),
        fields: vec![
            select("sizing.type", msg("form.sizing_type"), &sizing_labels, Some(msg("form.sizing_default")), "sizing"),
            hinted(numeric("sizing.value", msg("form.sizing_value"), "", "decimal"), msg("form.sizing_value_hint")),
        ],
    });
    let mut execution = vec![
        select("execution.fill", msg("form.fill"), &["next_open", "close"], Some(msg("form.default")), "fill"),
        select(
            "execution.tax_basis",
            msg("form.tax_basis"),
            &["settlement", "trade"],
            Some(msg("form.default")),
            "tax_basis",
        ),
    ];
    for (key, label, placeholder) in EXECUTION_NUMBERS {
        execution.push(numeric(&format!("execution.{key}"), label, placeholder, "decimal"));
    }
    let mut liquidate = field("execution.liquidate_at_end", msg("form.liquidate"), "check");
    liquidate.value = if f.one("execution.liquidate_at_end") == "true" { "true".into() } else { String::new() };
    execution.push(liquidate);
    out.push(Group {
        id: "g-execution".into(),
        legend: t.get("form.execution").to_owned(),
        hint: t.get("form.defaults_hint").to_owned(),
        shown_for: String::new(),
        fields: execution,
    });
    out.push(Group {
        id: "g-risk".into(),
        legend: t.get("form.risk").to_owned(),
        hint: t.get("form.defaults_hint").to_owned(),
        shown_for: String::new(),
        fields: RISK_NUMBERS
            .iter()
            .map(|(key, label, placeholder)| {
                let mode = if *key == "max_order_value" { "numeric" } else { "decimal" };
                numeric(&format!("risk.{key}"), label, placeholder, mode)
            })
            .collect(),
    });
    for fl in out.iter_mut().flat_map(|g| g.fields.iter_mut()) {
        let mut ids = Vec::new();
        if !fl.hint.is_empty() {
            ids.push(format!("{}-hint", fl.id));
        }
        if !fl.error.is_empty() {
            ids.push(format!("{}-error", fl.id));
        }
        fl.described_by = ids.join(" ");
    }
    out
}

/// A problem in the page's language. A problem that names another field (`must_exceed`'s
/// `other`: `strategy.fast`) names it by its label on the form, without the unit.
fn worded(t: &Tr, p: &FieldProblem, strategy: &str) -> String {
    let mut p = p.clone();
    if let Some(other) = p.params.get_mut("other") {
        let input = input_for(other, strategy);
        if let Some((_, _, label)) = STRATEGY_FIELDS.iter().find(|(s, k, _)| format!("{s}.{k}") == input) {
            let label = t.get_dyn(label);
            *other = label.split(" (").next().unwrap_or(label).to_owned();
        }
    }
    t.problem(&p)
}

/// The validator's default for a strategy parameter, shown as the field's placeholder.
fn default_of(strategy: &str, key: &str) -> &'static str {
    match (strategy, key) {
        ("sma_cross", "fast") => "20",
        ("sma_cross", "slow") => "60",
        ("momentum_rotation", "lookback") => "120",
        ("momentum_rotation", "skip" | "top_n") => "20",
        ("rsi_reversion", "oversold") => "30",
        ("rsi_reversion", "period") => "14",
        ("rsi_reversion", "overbought") => "70",
        _ => "",
    }
}

/// One problem for the list above the form: the path, the sentence, and the id of the input
/// it belongs to (the TOML view's when the form has no such input, e.g. an unknown key).
#[must_use]
pub fn summary(t: &Tr, f: &FormValues, groups: &[Group], problems: &[FieldProblem]) -> Vec<(String, String, String)> {
    let strategy = f.one("strategy.type");
    problems
        .iter()
        .map(|p| {
            let input = input_for(&p.field, strategy);
            let anchor = groups
                .iter()
                .flat_map(|g| &g.fields)
                .find(|fl| fl.name == input)
                .map_or_else(|| "toml".to_owned(), |fl| fl.id.clone());
            let path = p.field.strip_prefix("spec.").unwrap_or(&p.field).to_owned();
            (path, worded(t, p, strategy), anchor)
        })
        .collect()
}

/// The `schema` field, which the form carries unchanged in a hidden input.
#[must_use]
pub fn schema(f: &FormValues) -> String {
    f.one("schema").to_owned()
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
    use super::*;

    /// Every example scenario survives the trip through the form unchanged.
    #[test]
    fn examples_round_trip_through_the_form() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../examples");
        let mut seen = 0;
        for e in std::fs::read_dir(dir).unwrap() {
            let path = e.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            let valid = if path.extension().is_some_and(|x| x == "json") {
                haechi_app::spec::validate_json(&serde_json::from_str(&text).unwrap(), "spec").unwrap()
            } else {
                haechi_app::spec::validate_toml(&text, "x.toml").unwrap()
            };
            let stored: Value = serde_json::from_str(&valid.json).unwrap();
            let back = FormValues::from_spec(&stored).to_spec();
            assert_eq!(back, stored, "{}", path.display());
            seen += 1;
        }
        assert!(seen >= 5);
    }

    #[test]
    fn fields_of_other_strategies_are_ignored_and_amounts_take_separators() {
        let pairs: Vec<(String, String)> = [
            ("name", "x"),
            ("capital", "100,000,000"),
            ("strategy.type", "sma_cross"),
            ("sma_cross.fast", "5"),
            ("rsi_reversion.period", "9"),
            ("universe.kind", "markets"),
            ("universe.markets", "KOSPI"),
            ("universe.markets", "KOSDAQ"),
            ("universe.tickers", "005930"),
            ("sizing.type", "percent_of_equity"),
            ("sizing.value", "9.5"),
            ("risk.max_order_value", "5_000_000"),
            ("execution.participation", "abc"),
        ]
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
        let spec = FormValues::from_pairs(&pairs).to_spec();
        assert_eq!(spec["capital"], 100_000_000);
        assert_eq!(spec["strategy"], json!({"type": "sma_cross", "fast": 5}));
        assert_eq!(spec["universe"], json!({"markets": ["KOSPI", "KOSDAQ"]}));
        assert_eq!(spec["sizing"], json!({"type": "percent_of_equity", "percent": 9.5}));
        assert_eq!(spec["risk"], json!({"max_order_value": 5_000_000}));
        assert_eq!(spec["execution"]["participation"], "abc", "passed on for the validator to name");
    }

    #[test]
    fn rebalance_weights_are_read_one_per_line() {
        let pairs = vec![
            ("strategy.type".to_owned(), "rebalance".to_owned()),
            ("rebalance.weights".to_owned(), "005930 = 0.6\r\n000660: 0.3\n\n069500 0.1\n".to_owned()),
        ];
        let mut pairs = pairs;
        pairs.push(("sizing.type".to_owned(), "fixed_shares".to_owned()));
        pairs.push(("sizing.value".to_owned(), "10".to_owned()));
        let spec = FormValues::from_pairs(&pairs).to_spec();
        assert!(spec.get("sizing").is_none(), "rebalance sizes by its weights; the hidden sizing is ignored");
        assert_eq!(spec["strategy"]["weights"], json!({"005930": 0.6, "000660": 0.3, "069500": 0.1}));
    }

    /// Labels looked up at run time (`strategy.{type}`, `frequency.{f}`) exist in both
    /// languages: a missing one would show its raw key.
    #[test]
    fn every_label_and_choice_is_worded() {
        use super::super::i18n::Lang;
        let looks_like_key =
            |s: &str| s.contains('.') && s.bytes().all(|b| b.is_ascii_lowercase() || b == b'.' || b == b'_');
        let example = haechi_app::spec::toml_document(super::super::scenarios::EXAMPLE_SCENARIO).unwrap();
        for lang in [Lang::Ko, Lang::En] {
            let t = Tr::new(lang);
            let gs = groups(&t, &FormValues::from_spec(&example), &[]);
            assert!(gs.iter().map(|g| g.fields.len()).sum::<usize>() >= 25);
            for g in &gs {
                assert!(!looks_like_key(&g.legend) && !looks_like_key(&g.hint), "{g:?}");
                for f in &g.fields {
                    assert!(!looks_like_key(&f.label) && !looks_like_key(&f.hint), "{f:?}");
                    for c in &f.choices {
                        assert!(!c.label.is_empty() && !looks_like_key(&c.label), "{c:?} in {}", f.name);
                    }
                }
            }
        }
    }

    #[test]
    fn problems_land_on_the_inputs_they_name() {
        assert_eq!(input_for("spec.strategy.slow", "sma_cross"), "sma_cross.slow");
        assert_eq!(input_for("strategy.frequency", "rebalance"), "rebalance.frequency");
        assert_eq!(input_for("strategy.weights.bad", "rebalance"), "rebalance.weights");
        assert_eq!(input_for("universe.tickers[2]", ""), "universe.tickers");
        assert_eq!(input_for("universe", ""), "universe.kind");
        assert_eq!(input_for("sizing.percent", ""), "sizing.value");
        assert_eq!(input_for("period", ""), "period.start");
        assert_eq!(input_for("risk.cash_reserve", ""), "risk.cash_reserve");
    }
}
