//! `${{ … }}` expressions inside pipeline strings, evaluated with minijinja.
//!
//! A string that is exactly one expression evaluates to a typed value (a number stays a number,
//! a boolean a boolean); a string with text around expressions evaluates to a string.

use std::sync::OnceLock;

use minijinja::{Environment, UndefinedBehavior};
use serde_json::Value;

use super::yaml_path::YamlPath;

/// The roots an expression may start from.
pub const ROOTS: [&str; 5] = ["params", "env", "secrets", "steps", "run"];

/// The fields of `run.*`.
pub const RUN_FIELDS: [&str; 7] = [
    "id",
    "pipeline",
    "started_at",
    "scheduled_for",
    "scheduled_date",
    "trigger",
    "attempt",
];

#[derive(Debug, Clone, PartialEq)]
pub enum Part<'a> {
    Text(&'a str),
    /// The expression between `${{` and `}}`, and its byte offset in the string.
    Expr(&'a str, usize),
}

#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExprError {
    #[error("`${{{{` at byte {0} is never closed with `}}}}`")]
    Unclosed(usize),
    #[error("expression `{expr}` is empty")]
    Empty { expr: String },
    #[error("expression `{expr}` does not parse: {reason}")]
    Syntax { expr: String, reason: String },
    #[error("expression `{expr}` failed: {reason}")]
    Eval { expr: String, reason: String },
}

/// Splits a string into its literal text and its expressions.
pub fn parts(text: &str) -> Result<Vec<Part<'_>>, ExprError> {
    let mut parts = Vec::new();
    let mut rest = 0;
    while let Some(found) = text[rest..].find("${{") {
        let start = rest + found;
        if start > rest {
            parts.push(Part::Text(&text[rest..start]));
        }
        let inner_start = start + 3;
        let Some(len) = text[inner_start..].find("}}") else {
            return Err(ExprError::Unclosed(start));
        };
        parts.push(Part::Expr(
            text[inner_start..inner_start + len].trim(),
            inner_start,
        ));
        rest = inner_start + len + 2;
    }
    if rest < text.len() {
        parts.push(Part::Text(&text[rest..]));
    }
    Ok(parts)
}

pub fn has_expression(text: &str) -> bool {
    text.contains("${{")
}

/// The expression when the whole string is one `${{ … }}`.
pub fn single_expression(text: &str) -> Option<&str> {
    match parts(text.trim()).ok()?.as_slice() {
        [Part::Expr(expr, _)] => Some(expr),
        _ => None,
    }
}

/// The shared expression environment: strict, so a misspelt name is an error, not an empty string.
pub fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        env.set_undefined_behavior(UndefinedBehavior::Strict);
        env
    })
}

/// Checks an expression's syntax and returns the dotted names it reads (`steps.a.outputs.n`).
pub fn references(expr: &str) -> Result<Vec<String>, ExprError> {
    if expr.is_empty() {
        return Err(ExprError::Empty {
            expr: expr.to_string(),
        });
    }
    let compiled = environment()
        .compile_expression(expr)
        .map_err(|e| ExprError::Syntax {
            expr: expr.to_string(),
            reason: short_reason(&e),
        })?;
    let mut names: Vec<String> = compiled.undeclared_variables(true).into_iter().collect();
    names.sort();
    Ok(names)
}

/// Evaluates one expression against a context.
pub fn eval(expr: &str, context: &minijinja::Value) -> Result<Value, ExprError> {
    let compiled = environment()
        .compile_expression(expr)
        .map_err(|e| ExprError::Syntax {
            expr: expr.to_string(),
            reason: short_reason(&e),
        })?;
    let value = compiled.eval(context).map_err(|e| ExprError::Eval {
        expr: expr.to_string(),
        reason: short_reason(&e),
    })?;
    if value.is_undefined() {
        return Err(ExprError::Eval {
            expr: expr.to_string(),
            reason: "the value is undefined".into(),
        });
    }
    serde_json::to_value(&value).map_err(|e| ExprError::Eval {
        expr: expr.to_string(),
        reason: e.to_string(),
    })
}

/// Evaluates a string: a lone expression keeps its type, anything else becomes a string.
pub fn render_str(text: &str, context: &minijinja::Value) -> Result<Value, ExprError> {
    if let Some(expr) = single_expression(text) {
        return eval(expr, context);
    }
    let mut out = String::new();
    for part in parts(text)? {
        match part {
            Part::Text(t) => out.push_str(t),
            Part::Expr(expr, _) => match eval(expr, context)? {
                Value::String(s) => out.push_str(&s),
                Value::Null => {}
                other => out.push_str(&other.to_string()),
            },
        }
    }
    Ok(Value::String(out))
}

/// Evaluates every expression inside a JSON value (the `with` block of a step).
pub fn render_value(value: &Value, context: &minijinja::Value) -> Result<Value, ExprError> {
    Ok(match value {
        Value::String(s) if has_expression(s) => render_str(s, context)?,
        Value::Array(items) => Value::Array(
            items
                .iter()
                .map(|v| render_value(v, context))
                .collect::<Result<_, _>>()?,
        ),
        Value::Object(map) => Value::Object(
            map.iter()
                .map(|(k, v)| Ok((k.clone(), render_value(v, context)?)))
                .collect::<Result<_, ExprError>>()?,
        ),
        other => other.clone(),
    })
}

/// Every string holding an expression inside a value, with its path.
pub fn expression_strings<'v>(
    value: &'v Value,
    path: &YamlPath,
    out: &mut Vec<(YamlPath, &'v str)>,
) {
    match value {
        Value::String(s) if has_expression(s) => out.push((path.clone(), s)),
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                expression_strings(item, &path.index(i), out);
            }
        }
        Value::Object(map) => {
            for (key, item) in map {
                expression_strings(item, &path.key(key.clone()), out);
            }
        }
        _ => {}
    }
}

/// minijinja's message without the template-location boilerplate.
fn short_reason(error: &minijinja::Error) -> String {
    let mut reason = error.kind().to_string();
    if let Some(detail) = error.detail() {
        reason = format!("{reason}: {detail}");
    }
    reason
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn splits_text_and_expressions() {
        let p = parts("data/${{ params.day }}.csv").unwrap();
        assert_eq!(
            p,
            vec![
                Part::Text("data/"),
                Part::Expr("params.day", 8),
                Part::Text(".csv")
            ]
        );
        assert_eq!(parts("a ${{ b"), Err(ExprError::Unclosed(2)));
    }

    #[test]
    fn lone_expressions_keep_their_type() {
        let ctx = minijinja::Value::from(minijinja::value::Serde(
            json!({ "params": { "holdout": 0.1, "on": true } }),
        ));
        assert_eq!(
            render_str("${{ params.holdout }}", &ctx).unwrap(),
            json!(0.1)
        );
        assert_eq!(render_str(" ${{ params.on }} ", &ctx).unwrap(), json!(true));
        assert_eq!(
            render_str("h=${{ params.holdout }}", &ctx).unwrap(),
            json!("h=0.1")
        );
        assert!(render_str("${{ params.nope }}", &ctx).is_err());
    }

    #[test]
    fn lists_references() {
        assert_eq!(
            references("steps.split.outputs.srm_ok and params.go").unwrap(),
            vec![
                "params.go".to_string(),
                "steps.split.outputs.srm_ok".to_string()
            ]
        );
        assert!(matches!(references("a +"), Err(ExprError::Syntax { .. })));
    }
}
