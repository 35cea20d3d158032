//! Scenario documents: validation with field paths, TOML import and export,
//! and the structural diff between two versions.

use crate::error::FieldProblem;
use haechi_sim::scenario::{Format, Scenario};
use serde::Serialize;
use serde_json::Value;

/// A validated scenario and its canonical JSON text (keys sorted), as stored.
#[derive(Debug, Clone)]
pub struct ValidSpec {
    pub scenario: Scenario,
    pub json: String,
}

/// Validates a scenario given as JSON. Field paths are prefixed with `prefix` (`spec`), so a
/// client can map each error to its input.
///
/// # Errors
/// Every problem found, at once.
pub fn validate_json(spec: &Value, prefix: &str) -> Result<ValidSpec, Vec<FieldProblem>> {
    if !spec.is_object() {
        return Err(vec![FieldProblem::new(prefix, "must be an object (the scenario)")]);
    }
    let json = spec.to_string();
    match Scenario::parse(&json, Format::Json, prefix) {
        Ok(scenario) => Ok(ValidSpec { scenario, json }),
        Err(e) => Err(e
            .problems
            .into_iter()
            .map(|p| {
                let field = if p.path.is_empty() || p.path == prefix {
                    prefix.to_owned()
                } else {
                    format!("{prefix}.{}", p.path)
                };
                FieldProblem::from_scenario(field, p)
            })
            .collect()),
    }
}

/// Validates a TOML scenario file and converts it to the stored JSON form. Syntax errors
/// carry `origin:line:column`.
///
/// # Errors
/// Every problem found, at once.
pub fn validate_toml(text: &str, origin: &str) -> Result<ValidSpec, Vec<FieldProblem>> {
    if let Err(e) = Scenario::parse(text, Format::Toml, origin) {
        return Err(e.problems.into_iter().map(|p| FieldProblem::from_scenario(p.path.clone(), p)).collect());
    }
    let table: toml::Table =
        text.parse().map_err(|e: toml::de::Error| vec![FieldProblem::new(origin, e.to_string())])?;
    validate_json(&toml_to_json(&toml::Value::Table(table)), "spec")
}

/// A TOML document as the JSON the scenario is stored as, whether or not it is a valid
/// scenario; `None` when it is not TOML at all.
#[must_use]
pub fn toml_document(text: &str) -> Option<Value> {
    text.parse::<toml::Table>().ok().map(|t| toml_to_json(&toml::Value::Table(t)))
}

fn toml_to_json(v: &toml::Value) -> Value {
    match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => serde_json::Number::from_f64(*f).map_or(Value::Null, Value::Number),
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(a) => Value::Array(a.iter().map(toml_to_json).collect()),
        toml::Value::Table(t) => Value::Object(t.iter().map(|(k, v)| (k.clone(), toml_to_json(v))).collect()),
    }
}

fn json_to_toml(v: &Value) -> Option<toml::Value> {
    Some(match v {
        Value::Null => return None,
        Value::Bool(b) => toml::Value::Boolean(*b),
        Value::Number(n) => match n.as_i64() {
            Some(i) => toml::Value::Integer(i),
            None => toml::Value::Float(n.as_f64()?),
        },
        // Dates go back to TOML dates, as a person would write them.
        Value::String(s) => match s.parse::<toml::value::Datetime>() {
            Ok(d) if s.len() == 10 => toml::Value::Datetime(d),
            _ => toml::Value::String(s.clone()),
        },
        Value::Array(a) => toml::Value::Array(a.iter().filter_map(json_to_toml).collect()),
        Value::Object(o) => {
            toml::Value::Table(o.iter().filter_map(|(k, v)| Some((k.clone(), json_to_toml(v)?))).collect())
        }
    })
}

/// The stored JSON scenario as a TOML file. Scalars come before tables so the file reads
/// like the examples.
#[must_use]
pub fn to_toml(spec: &Value) -> String {
    let Some(toml::Value::Table(t)) = json_to_toml(spec) else { return String::new() };
    let (scalars, tables): (Vec<_>, Vec<_>) = t.into_iter().partition(|(_, v)| !v.is_table());
    let mut ordered = toml::Table::new();
    for (k, v) in scalars.into_iter().chain(tables) {
        ordered.insert(k, v);
    }
    toml::to_string(&ordered).unwrap_or_default()
}

/// One difference between two scenario documents.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Change {
    /// Dotted path with indices: `strategy.slow`, `universe.tickers[2]`.
    pub path: String,
    /// `added`, `removed` or `changed`.
    pub op: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub before: Option<Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub after: Option<Value>,
}

/// Every leaf-level difference from `a` to `b`, in path order.
#[must_use]
pub fn diff(a: &Value, b: &Value) -> Vec<Change> {
    let mut out = Vec::new();
    diff_into(a, b, String::new(), &mut out);
    out
}

fn join(path: &str, key: &str) -> String {
    if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") }
}

fn diff_into(a: &Value, b: &Value, path: String, out: &mut Vec<Change>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            let mut keys: Vec<&String> = x.keys().chain(y.keys()).collect();
            keys.sort();
            keys.dedup();
            for k in keys {
                let p = join(&path, k);
                match (x.get(k), y.get(k)) {
                    (Some(va), Some(vb)) => diff_into(va, vb, p, out),
                    (Some(va), None) => {
                        out.push(Change { path: p, op: "removed", before: Some(va.clone()), after: None })
                    }
                    (None, Some(vb)) => {
                        out.push(Change { path: p, op: "added", before: None, after: Some(vb.clone()) })
                    }
                    (None, None) => {}
                }
            }
        }
        (Value::Array(x), Value::Array(y)) => {
            for i in 0..x.len().max(y.len()) {
                let p = format!("{path}[{i}]");
                match (x.get(i), y.get(i)) {
                    (Some(va), Some(vb)) => diff_into(va, vb, p, out),
                    (Some(va), None) => {
                        out.push(Change { path: p, op: "removed", before: Some(va.clone()), after: None })
                    }
                    (None, Some(vb)) => {
                        out.push(Change { path: p, op: "added", before: None, after: Some(vb.clone()) })
                    }
                    (None, None) => {}
                }
            }
        }
        _ if a != b => out.push(Change { path, op: "changed", before: Some(a.clone()), after: Some(b.clone()) }),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;
    use serde_json::json;

    fn example() -> Value {
        json!({
            "name": "SMA", "capital": 10_000_000,
            "period": {"start": "2016-01-04", "end": "2020-12-30"},
            "universe": {"tickers": ["100010", "100020"]},
            "strategy": {"type": "sma_cross", "fast": 5, "slow": 20}
        })
    }

    #[test]
    fn every_problem_has_a_prefixed_path() {
        let mut bad = example();
        bad["strategy"]["slow"] = json!(2);
        bad["capital"] = json!(-5);
        bad["universe"]["tickers"][1] = json!("nope");
        let errs = validate_json(&bad, "spec").unwrap_err();
        let fields: Vec<&str> = errs.iter().map(|e| e.field.as_str()).collect();
        assert!(fields.contains(&"spec.capital"), "{fields:?}");
        assert!(fields.contains(&"spec.universe.tickers[1]"), "{fields:?}");
        assert!(fields.iter().any(|f| f.starts_with("spec.strategy")), "{fields:?}");
        assert!(validate_json(&json!([1]), "spec").is_err());
    }

    #[test]
    fn toml_round_trips_through_the_stored_form() {
        let v = validate_json(&example(), "spec").unwrap();
        let text = to_toml(&serde_json::from_str(&v.json).unwrap());
        assert!(text.contains("start = 2016-01-04"), "{text}");
        assert!(text.find("capital").unwrap() < text.find("[period]").unwrap(), "{text}");
        let back = validate_toml(&text, "x.toml").unwrap();
        assert_eq!(back.json, v.json);
        assert_eq!(back.scenario, v.scenario);
    }

    #[test]
    fn toml_syntax_errors_name_line_and_column() {
        let errs = validate_toml("name = \"a\"\ncapital = = 3\n", "s.toml").unwrap_err();
        assert!(errs[0].field.starts_with("s.toml:2:"), "{errs:?}");
    }

    #[test]
    fn diff_lists_leaf_changes() {
        let a = example();
        let mut b = example();
        b["strategy"]["slow"] = json!(30);
        b["universe"]["tickers"] = json!(["100010", "100020", "100030"]);
        b["description"] = json!("new");
        b.as_object_mut().unwrap().remove("name");
        let d = diff(&a, &b);
        let summary: Vec<(String, &str)> = d.iter().map(|c| (c.path.clone(), c.op)).collect();
        assert_eq!(
            summary,
            vec![
                ("description".into(), "added"),
                ("name".into(), "removed"),
                ("strategy.slow".into(), "changed"),
                ("universe.tickers[2]".into(), "added"),
            ]
        );
        assert_eq!(d[2].before, Some(json!(20)));
        assert!(diff(&a, &a).is_empty());
    }
}
