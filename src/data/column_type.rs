//! The column types a user names in YAML (`types:` of the gatherers, `cast:` of clean), and
//! the Arrow types they stand for.

use std::fmt;

use datafusion::arrow::datatypes::{DataType, TimeUnit};
use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum ColumnType {
    /// Text (Arrow Utf8).
    #[serde(alias = "text", alias = "str", alias = "utf8")]
    String,
    /// 64-bit signed integer.
    #[serde(alias = "int", alias = "int64", alias = "bigint")]
    Integer,
    /// 64-bit floating point.
    #[serde(alias = "double", alias = "float64", alias = "number")]
    Float,
    /// true / false.
    #[serde(alias = "bool")]
    Boolean,
    /// A calendar date (`2026-03-01`).
    Date,
    /// A date and time, microsecond precision; values with an offset are converted to UTC.
    #[serde(alias = "datetime")]
    Timestamp,
}

impl ColumnType {
    pub fn data_type(self) -> DataType {
        match self {
            ColumnType::String => DataType::Utf8,
            ColumnType::Integer => DataType::Int64,
            ColumnType::Float => DataType::Float64,
            ColumnType::Boolean => DataType::Boolean,
            ColumnType::Date => DataType::Date32,
            ColumnType::Timestamp => DataType::Timestamp(TimeUnit::Microsecond, None),
        }
    }
}

impl fmt::Display for ColumnType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ColumnType::String => "string",
            ColumnType::Integer => "integer",
            ColumnType::Float => "float",
            ColumnType::Boolean => "boolean",
            ColumnType::Date => "date",
            ColumnType::Timestamp => "timestamp",
        })
    }
}

/// A short, user-facing name of an Arrow type.
pub fn describe_type(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "string".into(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => "integer".into(),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            "unsigned integer".into()
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 => "float".into(),
        DataType::Boolean => "boolean".into(),
        DataType::Date32 | DataType::Date64 => "date".into(),
        DataType::Timestamp(_, _) => "timestamp".into(),
        other => other.to_string(),
    }
}

/// What a value of the type looks like, for "expected …" reasons.
pub fn expectation(data_type: &DataType) -> String {
    match data_type {
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => "text".into(),
        DataType::Int8 | DataType::Int16 | DataType::Int32 | DataType::Int64 => "an integer".into(),
        DataType::UInt8 | DataType::UInt16 | DataType::UInt32 | DataType::UInt64 => {
            "a non-negative integer".into()
        }
        DataType::Float16 | DataType::Float32 | DataType::Float64 | DataType::Decimal128(_, _) => {
            "a number".into()
        }
        DataType::Boolean => "true or false".into(),
        DataType::Date32 | DataType::Date64 => "a date like 2026-03-01".into(),
        DataType::Timestamp(_, _) => "a timestamp like 2026-03-01T09:30:00".into(),
        other => format!("a value of type {other}"),
    }
}
