//! Typed parameter values: checking defaults and turning `-p name=value` into typed values.

use chrono::NaiveDate;
use indexmap::IndexMap;
use serde_json::Value;

use super::expr;
use super::model::{ParamSpec, ParamType};
use super::suggest;

/// Checks a value against a param's type and bounds, returning it in its canonical JSON form.
pub fn coerce(name: &str, spec: &ParamSpec, value: &Value) -> Result<Value, String> {
    let typed = match (spec.kind, value) {
        (ParamType::String, Value::String(_)) => value.clone(),
        (ParamType::String, Value::Number(n)) => Value::String(n.to_string()),
        (ParamType::Integer, Value::Number(n)) if n.as_i64().is_some() => value.clone(),
        (ParamType::Integer, Value::Number(n)) => match n.as_f64() {
            Some(f) if f.fract() == 0.0 && f.abs() < 9e15 => Value::from(f as i64),
            _ => return Err(format!("param `{name}` must be a whole number, got {n}")),
        },
        (ParamType::Integer, Value::String(s)) => s
            .trim()
            .parse::<i64>()
            .map(Value::from)
            .map_err(|_| format!("param `{name}` must be a whole number, got `{s}`"))?,
        (ParamType::Number, Value::Number(_)) => value.clone(),
        (ParamType::Number, Value::String(s)) => s
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|f| f.is_finite())
            .map(Value::from)
            .ok_or_else(|| format!("param `{name}` must be a number, got `{s}`"))?,
        (ParamType::Boolean, Value::Bool(_)) => value.clone(),
        (ParamType::Boolean, Value::String(s)) => match s.trim().to_lowercase().as_str() {
            "true" | "yes" | "1" | "on" => Value::Bool(true),
            "false" | "no" | "0" | "off" => Value::Bool(false),
            _ => return Err(format!("param `{name}` must be true or false, got `{s}`")),
        },
        (ParamType::Date, Value::String(s)) => {
            let date = NaiveDate::parse_from_str(s.trim(), "%Y-%m-%d").map_err(|_| {
                format!("param `{name}` must be a date written YYYY-MM-DD, got `{s}`")
            })?;
            Value::String(date.format("%Y-%m-%d").to_string())
        }
        (ParamType::Enum, Value::String(s)) => {
            let values = spec.values.as_deref().unwrap_or_default();
            if !values.iter().any(|v| v == s) {
                let hint = suggest::hint(s, values.iter().map(String::as_str))
                    .map(|h| format!("; {h}"))
                    .unwrap_or_default();
                return Err(format!("param `{name}` cannot be `{s}`{hint}"));
            }
            value.clone()
        }
        (kind, other) => {
            return Err(format!(
                "param `{name}` is of type {}, got {}",
                kind.name(),
                describe(other)
            ));
        }
    };
    check_bounds(name, spec, &typed)?;
    Ok(typed)
}

fn check_bounds(name: &str, spec: &ParamSpec, value: &Value) -> Result<(), String> {
    let Some(number) = value.as_f64() else {
        return Ok(());
    };
    if let Some(min) = spec.min
        && number < min
    {
        return Err(format!(
            "param `{name}` is {number}, below its minimum {min}"
        ));
    }
    if let Some(max) = spec.max
        && number > max
    {
        return Err(format!(
            "param `{name}` is {number}, above its maximum {max}"
        ));
    }
    Ok(())
}

fn describe(value: &Value) -> String {
    match value {
        Value::Null => "nothing".into(),
        Value::Bool(b) => format!("the boolean {b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => format!("the string `{s}`"),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a mapping".into(),
    }
}

/// Parses `name=value` as given on the command line.
pub fn parse_assignment(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.trim().is_empty() => {
            Ok((name.trim().to_string(), value.to_string()))
        }
        _ => Err(format!("`{text}` is not name=value")),
    }
}

/// The run's params: given values, then defaults (expressions evaluated against `run`).
/// Every problem is reported, not only the first.
pub fn resolve(
    specs: &IndexMap<String, ParamSpec>,
    given: &IndexMap<String, String>,
    context: &minijinja::Value,
) -> Result<IndexMap<String, Value>, Vec<String>> {
    let mut errors = Vec::new();
    for name in given.keys() {
        if !specs.contains_key(name) {
            let hint = suggest::hint(name, specs.keys().map(String::as_str))
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            errors.push(format!("the pipeline has no param `{name}`{hint}"));
        }
    }
    let mut resolved = IndexMap::new();
    for (name, spec) in specs {
        let raw = match (given.get(name), &spec.default) {
            (Some(text), _) => Value::String(text.clone()),
            (None, Some(Value::String(s))) if expr::has_expression(s) => {
                match expr::render_str(s, context) {
                    Ok(v) => v,
                    Err(e) => {
                        errors.push(format!("default of param `{name}`: {e}"));
                        continue;
                    }
                }
            }
            (None, Some(default)) => default.clone(),
            (None, None) => {
                errors.push(format!(
                    "param `{name}` has no default and was not given; pass -p {name}=VALUE"
                ));
                continue;
            }
        };
        match coerce(name, spec, &raw) {
            Ok(value) => {
                resolved.insert(name.clone(), value);
            }
            Err(e) => errors.push(e),
        }
    }
    if errors.is_empty() {
        Ok(resolved)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn spec(kind: ParamType) -> ParamSpec {
        ParamSpec {
            kind,
            default: None,
            min: Some(0.0),
            max: Some(0.5),
            values: Some(vec!["a".into(), "b".into()]),
            description: None,
        }
    }

    #[test]
    fn coerces_command_line_strings() {
        assert_eq!(
            coerce("h", &spec(ParamType::Number), &json!("0.2")),
            Ok(json!(0.2))
        );
        assert!(
            coerce("h", &spec(ParamType::Number), &json!("0.7"))
                .unwrap_err()
                .contains("above its maximum 0.5")
        );
        assert_eq!(
            coerce("d", &spec(ParamType::Date), &json!("2026-11-23")),
            Ok(json!("2026-11-23"))
        );
        assert!(coerce("d", &spec(ParamType::Date), &json!("23/11/2026")).is_err());
        assert!(
            coerce("e", &spec(ParamType::Enum), &json!("c"))
                .unwrap_err()
                .contains("expected one of `a`, `b`")
        );
        assert_eq!(
            coerce("b", &spec(ParamType::Boolean), &json!("yes")),
            Ok(json!(true))
        );
    }
}
