//! A plugin kind's `with`, checked against the JSON Schema in its plugin.yaml. Each problem
//! becomes a `FieldError` with its path in `with`, so `segflow validate` points at the line.

use jsonschema::error::ValidationErrorKind;
use jsonschema::{ValidationError, Validator};
use serde_json::Value;

use crate::spec::deserialize::FieldError;
use crate::spec::suggest;
use crate::spec::yaml_path::YamlPath;

/// A compiled schema, with its source kept for property names and for `segflow schema`.
#[derive(Debug)]
pub struct ConfigSchema {
    pub schema: Value,
    validator: Validator,
}

impl ConfigSchema {
    /// Compiles a schema; the error says why it is not a usable JSON Schema.
    pub fn compile(schema: Value) -> Result<Self, String> {
        if !schema.is_object() && !schema.is_boolean() {
            return Err("a JSON Schema is a mapping (or true/false)".into());
        }
        let validator = jsonschema::validator_for(&schema).map_err(|e| {
            let at = e.instance_path().to_string();
            if at.is_empty() {
                e.to_string()
            } else {
                format!("{e} (at {at})")
            }
        })?;
        Ok(ConfigSchema { schema, validator })
    }

    /// Every problem of `with`; those at or under a `dynamic` path (values of expressions, only
    /// known when the run evaluates them) are left for the run to find.
    pub fn check(&self, with: &Value, dynamic: &[YamlPath]) -> Vec<FieldError> {
        let mut errors = Vec::new();
        for error in self.validator.iter_errors(with) {
            self.describe(&error, &mut errors);
        }
        errors.retain(|e| !dynamic.iter().any(|d| e.path.starts_with(d)));
        errors.dedup();
        errors
    }

    fn describe(&self, error: &ValidationError<'_>, out: &mut Vec<FieldError>) {
        let path = yaml_path(error);
        match error.kind() {
            ValidationErrorKind::AdditionalProperties { unexpected }
            | ValidationErrorKind::UnevaluatedProperties { unexpected } => {
                let known = self.known_properties(error);
                for name in unexpected {
                    out.push(FieldError {
                        path: path.key(name.clone()),
                        message: format!("unknown key `{name}`"),
                        hint: suggest::hint(name, known.iter().map(String::as_str)).or_else(|| {
                            (!known.is_empty())
                                .then(|| format!("the keys are: {}", known.join(", ")))
                        }),
                        at_key: true,
                    });
                }
            }
            ValidationErrorKind::Required { property } => {
                let name = property
                    .as_str()
                    .map_or(property.to_string(), str::to_string);
                out.push(FieldError {
                    path,
                    message: format!("missing required key `{name}`"),
                    hint: Some(format!("add `{name}:` here")),
                    at_key: false,
                });
            }
            _ => out.push(FieldError {
                path,
                message: error.to_string(),
                hint: self.description_at(error),
                at_key: false,
            }),
        }
    }

    /// The property names of the schema node that rejected extra keys, for a did-you-mean.
    fn known_properties(&self, error: &ValidationError<'_>) -> Vec<String> {
        let schema_path = error.schema_path().as_str();
        let parent = schema_path
            .rsplit_once('/')
            .map_or("", |(parent, _)| parent);
        self.schema
            .pointer(&format!("{parent}/properties"))
            .and_then(Value::as_object)
            .map(|properties| properties.keys().cloned().collect())
            .unwrap_or_default()
    }

    /// The `description` of the property that failed, as a reminder of what it expects.
    fn description_at(&self, error: &ValidationError<'_>) -> Option<String> {
        let schema_path = error.schema_path().as_str();
        let (parent, _) = schema_path.rsplit_once('/')?;
        self.schema
            .pointer(parent)?
            .get("description")?
            .as_str()
            .map(|d| format!("expected: {d}"))
    }
}

fn yaml_path(error: &ValidationError<'_>) -> YamlPath {
    use jsonschema::paths::LocationSegment;
    let mut path = YamlPath::root();
    for segment in error.instance_path().iter() {
        path = match segment {
            LocationSegment::Property(name) => path.key(name.to_string()),
            LocationSegment::Index(index) => path.index(index),
        };
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn schema() -> ConfigSchema {
        ConfigSchema::compile(json!({
            "type": "object",
            "additionalProperties": false,
            "required": ["column"],
            "properties": {
                "column": { "type": "string" },
                "threshold": { "type": "number", "minimum": 0, "maximum": 1, "description": "a share between 0 and 1" },
                "weights": { "type": "array", "items": { "type": "number" } }
            }
        }))
        .expect("a valid schema")
    }

    #[test]
    fn reports_each_problem_with_its_path() {
        let errors = schema().check(
            &json!({ "threshold": 2, "weights": [1, "x"], "colum": "a" }),
            &[],
        );
        let found: Vec<(String, &str)> = errors
            .iter()
            .map(|e| (e.path.to_string(), e.message.as_str()))
            .collect();
        assert!(
            found.contains(&("threshold".into(), "2 is greater than the maximum of 1")),
            "{found:?}"
        );
        assert!(
            found
                .iter()
                .any(|(p, m)| p == "weights[1]" && m.contains("not of type")),
            "{found:?}"
        );
        let unknown = errors.iter().find(|e| e.path.to_string() == "colum");
        let unknown = unknown.expect("the unknown key is reported");
        assert!(unknown.at_key);
        assert_eq!(unknown.hint.as_deref(), Some("did you mean `column`?"));
        let missing = errors.iter().find(|e| e.message.contains("missing"));
        assert_eq!(
            missing.map(|e| (e.path.to_string(), e.message.as_str())),
            Some((String::new(), "missing required key `column`"))
        );
        let threshold = errors.iter().find(|e| e.path.to_string() == "threshold");
        assert_eq!(
            threshold.and_then(|e| e.hint.as_deref()),
            Some("expected: a share between 0 and 1")
        );
    }

    #[test]
    fn leaves_expression_values_to_the_run() {
        let errors = schema().check(
            &json!({ "column": "a", "threshold": "${{ params.t }}" }),
            &[YamlPath::root().key("threshold")],
        );
        assert!(errors.is_empty(), "{errors:?}");
    }

    #[test]
    fn rejects_a_schema_that_is_not_one() {
        let error = ConfigSchema::compile(json!({ "type": "banana" })).unwrap_err();
        assert!(error.contains("banana"), "{error}");
        assert!(ConfigSchema::compile(json!("object")).is_err());
    }
}
