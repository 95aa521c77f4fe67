//! The `with` block of `clean`: operations applied in the order they are written, either as
//! keys of `with` (`dedupe: …`, `cast: …`) or as an `operations:` list (when one operation is
//! needed twice).

use std::borrow::Cow;
use std::fmt;

use indexmap::IndexMap;
use schemars::{JsonSchema, Schema, SchemaGenerator};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_json::Value;

use crate::data::ColumnType;
use crate::spec::yaml_path::YamlPath;

#[derive(Debug)]
pub struct CleanConfig {
    /// Which upstream step's dataset to clean (needed only when the step has several `needs`).
    pub input: Option<String>,
    pub operations: Vec<Placed>,
}

/// An operation and where it is written in `with` (for validate-time errors).
#[derive(Debug, Clone)]
pub struct Placed {
    pub path: YamlPath,
    pub operation: Operation,
}

/// One cleaning operation.
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Operation {
    /// Keep one row per key.
    Dedupe(Dedupe),
    /// Reject rows where any of these columns is null or blank text.
    DropMissing(Columns),
    /// Replace nulls (and blank text) per column: a constant, or `{ strategy: median | mean | mode }`.
    Fill(IndexMap<String, FillRule>),
    /// Convert columns to a type; rows whose value does not convert are rejected with a reason.
    Cast(IndexMap<String, CastRule>),
    /// Strip leading and trailing whitespace from text columns.
    Trim(Columns),
    /// Lowercase text columns.
    Lowercase(Columns),
    /// Normalise (trim, lowercase) and check an email column; invalid addresses are rejected.
    Email(EmailRule),
    /// Keep only rows where this SQL condition is true, e.g. `amount > 0 AND country = 'DE'`.
    Filter(String),
    /// Winsorize numeric columns: values beyond the bounds are set to the bounds.
    Clip(IndexMap<String, ClipRule>),
    /// Rescale numeric columns (the result is a float column).
    Standardize(IndexMap<String, Scaling>),
}

impl Operation {
    pub fn name(&self) -> &'static str {
        match self {
            Operation::Dedupe(_) => "dedupe",
            Operation::DropMissing(_) => "drop_missing",
            Operation::Fill(_) => "fill",
            Operation::Cast(_) => "cast",
            Operation::Trim(_) => "trim",
            Operation::Lowercase(_) => "lowercase",
            Operation::Email(_) => "email",
            Operation::Filter(_) => "filter",
            Operation::Clip(_) => "clip",
            Operation::Standardize(_) => "standardize",
        }
    }
}

const OPERATION_KEYS: &[&str] = &[
    "dedupe",
    "drop_missing",
    "fill",
    "cast",
    "trim",
    "lowercase",
    "email",
    "filter",
    "clip",
    "standardize",
    "operations",
    "input",
];

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Dedupe {
    /// The columns that identify a row (default: all columns).
    #[serde(default)]
    pub key: Option<Vec<String>>,
    /// Which row of a group to keep (default `first`).
    #[serde(default)]
    pub keep: Keep,
    /// The column that decides first and last (the smallest value is first); without it, the
    /// dataset's row order decides.
    #[serde(default)]
    pub order_by: Option<String>,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Keep {
    #[default]
    First,
    Last,
}

/// A list of columns, or `all` (every column the operation applies to).
#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Columns {
    All(AllColumns),
    Named(Vec<String>),
}

#[derive(Debug, Clone, Copy, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum AllColumns {
    All,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum FillRule {
    /// A statistic of the column's other values.
    Strategy { strategy: FillStrategy },
    /// A constant, converted to the column's type.
    Constant(Value),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FillStrategy {
    /// The median (numeric columns; rounded for integer columns).
    Median,
    /// The mean (numeric columns; rounded for integer columns).
    Mean,
    /// The most frequent value (any column; ties go to the value seen first).
    Mode,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum CastRule {
    /// The type alone: `amount: float`.
    Type(ColumnType),
    /// A type with a format for dates and timestamps: `{ type: date, format: "%Y%m%d" }`.
    Detailed(CastDetailed),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CastDetailed {
    #[serde(rename = "type")]
    pub to: ColumnType,
    /// A chrono format (`%d/%m/%Y`, `%Y%m%d %H:%M`) for dates and timestamps.
    #[serde(default)]
    pub format: Option<String>,
}

impl CastRule {
    pub fn target(&self) -> ColumnType {
        match self {
            CastRule::Type(t) => *t,
            CastRule::Detailed(d) => d.to,
        }
    }

    pub fn format(&self) -> Option<&str> {
        match self {
            CastRule::Type(_) => None,
            CastRule::Detailed(d) => d.format.as_deref(),
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum EmailRule {
    /// The column's name.
    Column(String),
    Detailed(EmailDetailed),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EmailDetailed {
    pub column: String,
    /// What to do with an invalid address (default `reject`).
    #[serde(default)]
    pub on_invalid: OnInvalidEmail,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnInvalidEmail {
    /// Reject the row (it goes to the `rejected` dataset).
    #[default]
    Reject,
    /// Keep the row with a null email.
    Null,
}

impl EmailRule {
    pub fn column(&self) -> &str {
        match self {
            EmailRule::Column(c) => c,
            EmailRule::Detailed(d) => &d.column,
        }
    }

    pub fn on_invalid(&self) -> OnInvalidEmail {
        match self {
            EmailRule::Column(_) => OnInvalidEmail::Reject,
            EmailRule::Detailed(d) => d.on_invalid,
        }
    }
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "lowercase")]
pub enum ClipRule {
    /// Clip to these quantiles of the column, e.g. `[0.01, 0.99]`.
    Percentile([f64; 2]),
    /// Clip to `[Q1 − k·IQR, Q3 + k·IQR]`; k is usually 1.5.
    Iqr(f64),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Scaling {
    /// (x − mean) / standard deviation (population, as scikit-learn's StandardScaler).
    Zscore,
    /// (x − min) / (max − min), into [0, 1].
    Minmax,
}

impl<'de> Deserialize<'de> for CleanConfig {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_map(ConfigVisitor)
    }
}

struct ConfigVisitor;

impl<'de> Visitor<'de> for ConfigVisitor {
    type Value = CleanConfig;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of cleaning operations, applied in the order written")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<CleanConfig, A::Error> {
        let mut config = CleanConfig {
            input: None,
            operations: Vec::new(),
        };
        while let Some(key) = map.next_key::<String>()? {
            let operation = match key.as_str() {
                "input" => {
                    config.input = Some(map.next_value()?);
                    continue;
                }
                "operations" => {
                    let list: Vec<Operation> = map.next_value()?;
                    for (index, operation) in list.into_iter().enumerate() {
                        let path = YamlPath::root()
                            .key("operations")
                            .index(index)
                            .key(operation.name());
                        config.operations.push(Placed { path, operation });
                    }
                    continue;
                }
                "dedupe" => Operation::Dedupe(map.next_value()?),
                "drop_missing" => Operation::DropMissing(map.next_value()?),
                "fill" => Operation::Fill(map.next_value()?),
                "cast" => Operation::Cast(map.next_value()?),
                "trim" => Operation::Trim(map.next_value()?),
                "lowercase" => Operation::Lowercase(map.next_value()?),
                "email" => Operation::Email(map.next_value()?),
                "filter" => Operation::Filter(map.next_value()?),
                "clip" => Operation::Clip(map.next_value()?),
                "standardize" => Operation::Standardize(map.next_value()?),
                other => return Err(de::Error::unknown_field(other, OPERATION_KEYS)),
            };
            config.operations.push(Placed {
                path: YamlPath::root().key(key),
                operation,
            });
        }
        Ok(config)
    }
}

/// The shape `segflow schema` shows for `clean` (the real deserializer keeps the keys' order).
#[derive(JsonSchema)]
#[serde(deny_unknown_fields)]
#[allow(dead_code)]
struct CleanShape {
    /// Which upstream step's dataset to clean (needed only when the step has several `needs`).
    input: Option<String>,
    /// Keep one row per key.
    dedupe: Option<Dedupe>,
    /// Reject rows where any of these columns is null or blank text (`all` for every column).
    drop_missing: Option<Columns>,
    /// Replace nulls per column: a constant, or `{ strategy: median | mean | mode }`.
    fill: Option<IndexMap<String, FillRule>>,
    /// Convert columns to a type; rows whose value does not convert are rejected.
    cast: Option<IndexMap<String, CastRule>>,
    /// Strip whitespace from these text columns (`all` for every text column).
    trim: Option<Columns>,
    /// Lowercase these text columns (`all` for every text column).
    lowercase: Option<Columns>,
    /// Normalise and check an email column; invalid addresses are rejected (or set to null).
    email: Option<EmailRule>,
    /// Keep only rows where this SQL condition is true.
    filter: Option<String>,
    /// Winsorize numeric columns: `{ amount: { percentile: [0.01, 0.99] } }` or `{ iqr: 1.5 }`.
    clip: Option<IndexMap<String, ClipRule>>,
    /// Rescale numeric columns: `{ amount: zscore, age: minmax }`.
    standardize: Option<IndexMap<String, Scaling>>,
    /// The same operations as a list, for when one is needed more than once.
    operations: Option<Vec<Operation>>,
}

impl JsonSchema for CleanConfig {
    fn schema_name() -> Cow<'static, str> {
        "CleanConfig".into()
    }

    fn json_schema(generator: &mut SchemaGenerator) -> Schema {
        CleanShape::json_schema(generator)
    }
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;
    use crate::spec::deserialize::deserialize_all;

    #[test]
    fn operations_keep_the_order_they_are_written_in() {
        let with = json!({
            "trim": "all",
            "cast": { "amount": "float", "day": { "type": "date", "format": "%Y%m%d" } },
            "dedupe": { "key": ["id"], "keep": "last" },
            "operations": [ { "filter": "amount > 0" }, { "trim": ["name"] } ],
        });
        let config: CleanConfig = deserialize_all(&with, &[]).unwrap();
        let names: Vec<&str> = config
            .operations
            .iter()
            .map(|p| p.operation.name())
            .collect();
        assert_eq!(names, ["trim", "cast", "dedupe", "filter", "trim"]);
    }

    #[test]
    fn unknown_operations_are_named_with_a_suggestion() {
        let errors = deserialize_all::<CleanConfig>(&json!({ "dedup": {} }), &[]).unwrap_err();
        assert_eq!(errors[0].message, "unknown key `dedup`");
        assert_eq!(errors[0].hint.as_deref(), Some("did you mean `dedupe`?"));
        let errors = deserialize_all::<CleanConfig>(&json!({ "dedupe": { "kep": "first" } }), &[])
            .unwrap_err();
        assert_eq!(errors[0].path.to_string(), "dedupe.kep");
    }
}
