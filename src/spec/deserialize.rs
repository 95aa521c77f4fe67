//! Typed deserialization that reports every problem of a document, not just the first.
//!
//! serde stops at the first error. To gather them all, the offending node is removed and the
//! document deserialized again, until it fits or nothing more can be removed.

use serde::de::DeserializeOwned;
use serde_json::Value;

use super::suggest;
use super::yaml_path::{Segment, YamlPath};

/// One problem found while deserializing, relative to the deserialized value.
#[derive(Debug, Clone, PartialEq)]
pub struct FieldError {
    pub path: YamlPath,
    pub message: String,
    pub hint: Option<String>,
    /// Point at the key (unknown keys) rather than the value.
    pub at_key: bool,
}

const MAX_ROUNDS: usize = 64;

/// Deserializes `value` as `T`, collecting every error. Errors at or under an `ignored` path are
/// dropped: those nodes hold expressions whose type is only known when the run evaluates them.
pub fn deserialize_all<T: DeserializeOwned>(
    value: &Value,
    ignored: &[YamlPath],
) -> Result<T, Vec<FieldError>> {
    let outcome = deserialize_lenient(value, ignored);
    match outcome.value {
        // A value read after dropping expression nodes is not the real config: report nothing,
        // and let the run check it once the expressions have values.
        Some(typed) if outcome.errors.is_empty() && !outcome.skipped_expressions => Ok(typed),
        _ => Err(outcome.errors),
    }
}

pub struct Lenient<T> {
    /// The value read once the offending nodes were taken out, when that worked.
    pub value: Option<T>,
    pub errors: Vec<FieldError>,
    /// Some nodes holding expressions did not fit and were taken out.
    pub skipped_expressions: bool,
}

/// Like `deserialize_all`, but also returns the value read once the offending nodes were taken
/// out (when that succeeds), so later checks can go on with what was right.
pub fn deserialize_lenient<T: DeserializeOwned>(value: &Value, ignored: &[YamlPath]) -> Lenient<T> {
    let mut value = value.clone();
    let mut errors: Vec<FieldError> = Vec::new();
    let mut skipped_expressions = false;
    let mut removed: Vec<YamlPath> = Vec::new();
    for _ in 0..MAX_ROUNDS {
        let error = match serde_path_to_error::deserialize::<_, T>(&value) {
            Ok(typed) => {
                return Lenient {
                    value: Some(typed),
                    errors,
                    skipped_expressions,
                };
            }
            Err(error) => error,
        };
        let field_error = describe(&error);
        let effective = field_error.effective_path();
        // A required key taken out for being wrong is not missing as well.
        if removed.contains(&effective) {
            break;
        }
        let removable = remove(&mut value, &field_error);
        if removable {
            removed.push(field_error.path.clone());
        }
        let ignore = ignored.iter().any(|p| effective.starts_with(p));
        if ignore {
            skipped_expressions = true;
        } else {
            if errors.contains(&field_error) {
                break;
            }
            errors.push(field_error);
        }
        if !removable {
            break;
        }
    }
    Lenient {
        value: None,
        errors,
        skipped_expressions,
    }
}

impl FieldError {
    /// The node the error is about: for a missing key, the key itself.
    fn effective_path(&self) -> YamlPath {
        match self
            .message
            .strip_prefix("missing required key `")
            .and_then(|r| r.split('`').next())
        {
            Some(name) => self.path.key(name),
            None => self.path.clone(),
        }
    }
}

/// Turns a serde error into a message for people, with a suggestion where serde listed choices.
fn describe(error: &serde_path_to_error::Error<serde_json::Error>) -> FieldError {
    let path = YamlPath::from_serde(error.path());
    let raw = error.inner().to_string();
    // serde_json appends " at line L column C", meaningless for an in-memory value.
    let raw = match raw.rfind(" at line ") {
        Some(i) => raw[..i].to_string(),
        None => raw,
    };
    let choices = backticked(raw.split_once(", expected").map_or("", |(_, rest)| rest));
    let choice_refs = || choices.iter().map(String::as_str);

    if let Some(name) = quoted_name(&raw, "unknown field `") {
        let path = if path.0.last() == Some(&Segment::Key(name.to_string())) {
            path
        } else {
            path.key(name)
        };
        return FieldError {
            path,
            message: format!("unknown key `{name}`"),
            hint: suggest::hint(name, choice_refs()),
            at_key: true,
        };
    }
    if let Some(name) = quoted_name(&raw, "unknown variant `") {
        return FieldError {
            path,
            message: format!("`{name}` is not allowed here"),
            hint: suggest::hint(name, choice_refs()),
            at_key: false,
        };
    }
    if let Some(name) = raw
        .strip_prefix("missing field `")
        .and_then(|r| r.split('`').next())
    {
        return FieldError {
            path,
            message: format!("missing required key `{name}`"),
            hint: Some(format!("add `{name}:` here")),
            at_key: false,
        };
    }
    if raw.starts_with("data did not match any variant of untagged enum Condition") {
        return FieldError {
            path,
            message: "`when` must be true, false or an expression".into(),
            hint: Some("write it like `when: \"${{ steps.split.outputs.srm_ok }}\"`".into()),
            at_key: false,
        };
    }
    if let Some((message, hint)) = plain_type_error(&raw) {
        return FieldError {
            path,
            message,
            hint: Some(hint),
            at_key: false,
        };
    }
    FieldError {
        path,
        message: raw,
        hint: None,
        at_key: false,
    }
}

/// serde's "invalid type: string \"four\", expected usize" in words a pipeline author uses,
/// with how to write the value instead.
fn plain_type_error(raw: &str) -> Option<(String, String)> {
    let rest = raw
        .strip_prefix("invalid type: ")
        .or_else(|| raw.strip_prefix("invalid value: "))?;
    let (found, expected) = rest.split_once(", expected ")?;
    let found = match found.split_once(' ') {
        Some(("string", text)) => format!("the text {text}"),
        Some(("integer", n)) => format!("the number {}", n.trim_matches('`')),
        Some(("floating", n)) => format!(
            "the number {}",
            n.trim_start_matches("point ").trim_matches('`')
        ),
        Some(("boolean", b)) => b.trim_matches('`').to_string(),
        Some(("unit", _)) => "nothing (null)".to_string(),
        _ => match found {
            "sequence" => "a list".to_string(),
            "map" => "a mapping".to_string(),
            "null" => "nothing (null)".to_string(),
            other => other.to_string(),
        },
    };
    let (wanted, hint) = match expected.trim() {
        "u8" | "u16" | "u32" | "u64" | "u128" | "usize" => (
            "a whole number, 0 or more",
            "write a number without quotes, like `4`",
        ),
        "i8" | "i16" | "i32" | "i64" | "i128" | "isize" => {
            ("a whole number", "write a number without quotes, like `4`")
        }
        "f32" | "f64" => ("a number", "write a number without quotes, like `0.5`"),
        "a boolean" => ("true or false", "write `true` or `false`, without quotes"),
        "a string" | "a borrowed string" | "a character" => {
            ("text", "put the value in quotes, like `\"value\"`")
        }
        "a sequence" => (
            "a list",
            "write a list, like `[a, b]`, or one item per `- ` line",
        ),
        other if other == "a map" || other.starts_with("struct ") => (
            "a mapping of keys to values",
            "write `key: value` pairs, like `{ key: value }`, or one key per indented line",
        ),
        _ => return None,
    };
    Some((
        format!("expected {wanted}, found {found}"),
        hint.to_string(),
    ))
}

/// The name serde quoted after `prefix` (`unknown field `x`, expected …`); the name itself may
/// hold backticks, so it runs to the last "`, " (or the end).
fn quoted_name<'a>(raw: &'a str, prefix: &str) -> Option<&'a str> {
    let rest = raw.strip_prefix(prefix)?;
    let end = rest
        .rfind("`, expected")
        .or_else(|| rest.rfind("`, there are no"))
        .or_else(|| rest.strip_suffix('`').map(str::len))?;
    Some(&rest[..end])
}

fn backticked(text: &str) -> Vec<String> {
    text.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Removes the node an error points at so the next round can find the next error.
fn remove(value: &mut Value, error: &FieldError) -> bool {
    if error.message.starts_with("missing required key") {
        return false;
    }
    let Some((last, parent_path)) = error.path.0.split_last() else {
        return false;
    };
    let Some(parent) = navigate(value, parent_path) else {
        return false;
    };
    match (parent, last) {
        (Value::Object(map), Segment::Key(key)) => map.shift_remove(key).is_some(),
        // Removing a list item would shift the positions of the next errors; drop the list.
        (Value::Array(_), Segment::Index(_)) => match parent_path.split_last() {
            Some((list_key, grand_path)) => match (navigate(value, grand_path), list_key) {
                (Some(Value::Object(map)), Segment::Key(key)) => map.shift_remove(key).is_some(),
                _ => false,
            },
            None => false,
        },
        _ => false,
    }
}

fn navigate<'v>(value: &'v mut Value, path: &[Segment]) -> Option<&'v mut Value> {
    let mut current = value;
    for segment in path {
        current = match (current, segment) {
            (Value::Object(map), Segment::Key(key)) => map.get_mut(key)?,
            (Value::Array(items), Segment::Index(i)) => items.get_mut(*i)?,
            _ => return None,
        };
    }
    Some(current)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde::Deserialize;
    use serde_json::json;

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Config {
        id: String,
        #[serde(default)]
        needs: Vec<String>,
        #[serde(default)]
        count: u32,
        #[serde(default)]
        inner: Option<Inner>,
    }

    #[derive(Debug, Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Inner {
        size: u32,
    }

    #[test]
    fn reports_every_error_with_its_path() {
        let value =
            json!({ "id": "a", "neds": ["b"], "count": "x", "inner": { "size": 1, "colour": 2 } });
        let errors = deserialize_all::<Config>(&value, &[]).unwrap_err();
        let paths: Vec<String> = errors.iter().map(|e| e.path.to_string()).collect();
        assert_eq!(paths, ["neds", "count", "inner.colour"]);
        assert_eq!(errors[0].hint.as_deref(), Some("did you mean `needs`?"));
        assert_eq!(
            errors[1].message,
            "expected a whole number, 0 or more, found the text \"x\""
        );
        assert_eq!(
            errors[1].hint.as_deref(),
            Some("write a number without quotes, like `4`")
        );
    }

    #[test]
    fn type_errors_are_told_in_plain_words() {
        let value = json!({ "id": ["a"], "needs": "b", "inner": { "size": -3 } });
        let errors = deserialize_all::<Config>(&value, &[]).unwrap_err();
        let messages: Vec<&str> = errors.iter().map(|e| e.message.as_str()).collect();
        assert_eq!(
            messages,
            [
                "expected text, found a list",
                "expected a list, found the text \"b\"",
                "expected a whole number, 0 or more, found the number -3",
            ]
        );
        assert!(errors.iter().all(|e| e.hint.is_some()));
    }

    #[test]
    fn ignores_errors_under_expression_paths() {
        let value = json!({ "id": "a", "count": "${{ params.n }}" });
        let errors =
            deserialize_all::<Config>(&value, &[YamlPath::root().key("count")]).unwrap_err();
        assert!(errors.is_empty());
        // A required key holding an expression is not reported missing once it is set aside.
        let value = json!({ "id": 5 });
        let errors = deserialize_all::<Config>(&value, &[YamlPath::root().key("id")]).unwrap_err();
        assert!(errors.is_empty());
    }

    #[test]
    fn reports_missing_keys() {
        let errors = deserialize_all::<Config>(&json!({ "needs": [] }), &[]).unwrap_err();
        assert_eq!(errors[0].message, "missing required key `id`");
    }
}
