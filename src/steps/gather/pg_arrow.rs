//! PostgreSQL values into Arrow columns, and YAML values into bound query parameters.
//!
//! Types: bool → Boolean; int2/int4/int8 → Int16/Int32/Int64; float4/float8 → Float32/Float64;
//! numeric(p, s) → Decimal128(p, s), plain numeric → Decimal128(38, 10) (rounded half away
//! from zero to 10 decimals); text/varchar/char/name → Utf8; date → Date32; timestamp →
//! Timestamp(µs); timestamptz → Timestamp(µs, UTC). Other types are refused with a hint to cast
//! them in the query.

use std::error::Error;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use datafusion::arrow::array::{
    ArrayBuilder, ArrayRef, BooleanBuilder, Date32Builder, Decimal128Builder, Float32Builder,
    Float64Builder, Int16Builder, Int32Builder, Int64Builder, StringBuilder,
    TimestampMicrosecondBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, TimeUnit};
use serde_json::Value;
use tokio_postgres::Row;
use tokio_postgres::types::{FromSql, IsNull, ToSql, Type, to_sql_checked};

type BoxError = Box<dyn Error + Sync + Send>;

const EPOCH: NaiveDate = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");

/// One result column being built.
pub enum PgColumn {
    Bool(BooleanBuilder),
    Int16(Int16Builder),
    Int32(Int32Builder),
    Int64(Int64Builder),
    Float32(Float32Builder),
    Float64(Float64Builder),
    Numeric(Decimal128Builder, u8, i8),
    Text(StringBuilder),
    Date(Date32Builder),
    Timestamp(TimestampMicrosecondBuilder),
    TimestampTz(TimestampMicrosecondBuilder),
}

/// The Arrow field for a result column, or why it cannot be read.
pub fn column_for(name: &str, ty: &Type, type_modifier: i32) -> Result<(Field, PgColumn), String> {
    let column = match *ty {
        Type::BOOL => PgColumn::Bool(BooleanBuilder::new()),
        Type::INT2 => PgColumn::Int16(Int16Builder::new()),
        Type::INT4 => PgColumn::Int32(Int32Builder::new()),
        Type::INT8 => PgColumn::Int64(Int64Builder::new()),
        Type::FLOAT4 => PgColumn::Float32(Float32Builder::new()),
        Type::FLOAT8 => PgColumn::Float64(Float64Builder::new()),
        Type::NUMERIC => {
            let (precision, scale) = numeric_precision(type_modifier);
            let builder = Decimal128Builder::new()
                .with_precision_and_scale(precision, scale)
                .map_err(|e| e.to_string())?;
            PgColumn::Numeric(builder, precision, scale)
        }
        Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME => {
            PgColumn::Text(StringBuilder::new())
        }
        Type::DATE => PgColumn::Date(Date32Builder::new()),
        Type::TIMESTAMP => PgColumn::Timestamp(TimestampMicrosecondBuilder::new()),
        Type::TIMESTAMPTZ => {
            PgColumn::TimestampTz(TimestampMicrosecondBuilder::new().with_timezone("UTC"))
        }
        ref other => {
            return Err(format!(
                "column `{name}` is of PostgreSQL type {other}, which gather.sql does not read; \
                 cast it in the query, e.g. `{name}::text`"
            ));
        }
    };
    let data_type = match &column {
        PgColumn::Bool(_) => DataType::Boolean,
        PgColumn::Int16(_) => DataType::Int16,
        PgColumn::Int32(_) => DataType::Int32,
        PgColumn::Int64(_) => DataType::Int64,
        PgColumn::Float32(_) => DataType::Float32,
        PgColumn::Float64(_) => DataType::Float64,
        PgColumn::Numeric(_, p, s) => DataType::Decimal128(*p, *s),
        PgColumn::Text(_) => DataType::Utf8,
        PgColumn::Date(_) => DataType::Date32,
        PgColumn::Timestamp(_) => DataType::Timestamp(TimeUnit::Microsecond, None),
        PgColumn::TimestampTz(_) => DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into())),
    };
    Ok((Field::new(name, data_type, true), column))
}

/// Precision and scale from a numeric column's type modifier (`-1` when unconstrained).
fn numeric_precision(type_modifier: i32) -> (u8, i8) {
    if type_modifier < 4 {
        return (38, 10);
    }
    let packed = type_modifier - 4;
    let precision = ((packed >> 16) & 0xffff) as u8;
    let scale = (packed & 0xffff) as i8;
    (precision.clamp(1, 38), scale.max(0))
}

impl PgColumn {
    /// Appends the row's value; the error says why it cannot be read.
    pub fn append(&mut self, row: &Row, index: usize) -> Result<(), String> {
        self.append_value(row, index)
            .map_err(|e| match std::error::Error::source(&e) {
                Some(source) => format!("{e}: {source}"),
                None => e.to_string(),
            })?
    }

    fn append_value(
        &mut self,
        row: &Row,
        index: usize,
    ) -> Result<Result<(), String>, tokio_postgres::Error> {
        match self {
            PgColumn::Bool(b) => b.append_option(row.try_get::<_, Option<bool>>(index)?),
            PgColumn::Int16(b) => b.append_option(row.try_get::<_, Option<i16>>(index)?),
            PgColumn::Int32(b) => b.append_option(row.try_get::<_, Option<i32>>(index)?),
            PgColumn::Int64(b) => b.append_option(row.try_get::<_, Option<i64>>(index)?),
            PgColumn::Float32(b) => b.append_option(row.try_get::<_, Option<f32>>(index)?),
            PgColumn::Float64(b) => b.append_option(row.try_get::<_, Option<f64>>(index)?),
            PgColumn::Numeric(b, precision, scale) => {
                match row.try_get::<_, Option<PgNumeric>>(index)? {
                    None => b.append_null(),
                    Some(n) => match n.scaled(*precision, *scale) {
                        Ok(v) => b.append_value(v),
                        Err(why) => return Ok(Err(why)),
                    },
                }
            }
            PgColumn::Text(b) => b.append_option(row.try_get::<_, Option<&str>>(index)?),
            PgColumn::Date(b) => b.append_option(
                row.try_get::<_, Option<NaiveDate>>(index)?
                    .map(|d| (d - EPOCH).num_days() as i32),
            ),
            PgColumn::Timestamp(b) => b.append_option(
                row.try_get::<_, Option<NaiveDateTime>>(index)?
                    .map(|t| t.and_utc().timestamp_micros()),
            ),
            PgColumn::TimestampTz(b) => b.append_option(
                row.try_get::<_, Option<DateTime<Utc>>>(index)?
                    .map(|t| t.timestamp_micros()),
            ),
        }
        Ok(Ok(()))
    }

    pub fn finish(&mut self) -> ArrayRef {
        match self {
            PgColumn::Bool(b) => Arc::new(b.finish()),
            PgColumn::Int16(b) => Arc::new(b.finish()),
            PgColumn::Int32(b) => Arc::new(b.finish()),
            PgColumn::Int64(b) => Arc::new(b.finish()),
            PgColumn::Float32(b) => Arc::new(b.finish()),
            PgColumn::Float64(b) => Arc::new(b.finish()),
            PgColumn::Numeric(b, _, _) => Arc::new(b.finish()),
            PgColumn::Text(b) => Arc::new(b.finish()),
            PgColumn::Date(b) => Arc::new(b.finish()),
            PgColumn::Timestamp(b) => Arc::new(b.finish()),
            PgColumn::TimestampTz(b) => Arc::new(b.finish()),
        }
    }

    pub fn len(&self) -> usize {
        match self {
            PgColumn::Bool(b) => b.len(),
            PgColumn::Int16(b) => b.len(),
            PgColumn::Int32(b) => b.len(),
            PgColumn::Int64(b) => b.len(),
            PgColumn::Float32(b) => b.len(),
            PgColumn::Float64(b) => b.len(),
            PgColumn::Numeric(b, _, _) => b.len(),
            PgColumn::Text(b) => b.len(),
            PgColumn::Date(b) => b.len(),
            PgColumn::Timestamp(b) => b.len(),
            PgColumn::TimestampTz(b) => b.len(),
        }
    }
}

/// A numeric value as its exact decimal digits (`NaN` and infinities have none).
#[derive(Debug, PartialEq)]
pub struct PgNumeric {
    negative: bool,
    integer: String,
    fraction: String,
    finite: bool,
}

impl PgNumeric {
    /// The value × 10^scale, rounded half away from zero; an error when it is not finite or
    /// does not fit the precision (never a silent null).
    pub fn scaled(&self, precision: u8, scale: i8) -> Result<i128, String> {
        let too_big = || format!("a value does not fit Decimal128({precision}, {scale})");
        if !self.finite {
            return Err("a value is NaN or infinite, which Decimal128 cannot hold".into());
        }
        let scale = scale.max(0) as usize;
        let mut digits = self.integer.clone();
        let mut fraction = self.fraction.clone();
        while fraction.len() < scale {
            fraction.push('0');
        }
        digits.push_str(&fraction[..scale]);
        let digits = digits.trim_start_matches('0');
        let mut value: i128 = if digits.is_empty() {
            0
        } else {
            digits.parse().map_err(|_| too_big())?
        };
        if fraction.as_bytes().get(scale).is_some_and(|d| *d >= b'5') {
            value += 1;
        }
        if value >= 10i128.pow(precision as u32) {
            return Err(too_big());
        }
        Ok(if self.negative { -value } else { value })
    }
}

impl<'a> FromSql<'a> for PgNumeric {
    fn from_sql(_ty: &Type, raw: &'a [u8]) -> Result<Self, BoxError> {
        let word = |i: usize| -> Result<u16, BoxError> {
            raw.get(i..i + 2)
                .map(|b| u16::from_be_bytes([b[0], b[1]]))
                .ok_or_else(|| "a truncated numeric value".into())
        };
        let count = word(0)? as usize;
        let weight = word(2)? as i16 as i32;
        let sign = word(4)?;
        let dscale = word(6)? as usize;
        let digits: Vec<u16> = (0..count)
            .map(|i| word(8 + 2 * i))
            .collect::<Result<_, _>>()?;
        if sign == 0xC000 || sign == 0xD000 || sign == 0xF000 {
            return Ok(PgNumeric {
                negative: false,
                integer: String::new(),
                fraction: String::new(),
                finite: false,
            });
        }
        let digit = |i: i32| -> u16 {
            if i >= 0 && (i as usize) < digits.len() {
                digits[i as usize]
            } else {
                0
            }
        };
        let mut integer = String::new();
        for position in 0..=weight {
            let d = digit(position);
            if integer.is_empty() {
                if d != 0 {
                    integer.push_str(&d.to_string());
                }
            } else {
                integer.push_str(&format!("{d:04}"));
            }
        }
        if integer.is_empty() {
            integer.push('0');
        }
        let mut fraction = String::new();
        let mut position = weight + 1;
        while fraction.len() < dscale {
            fraction.push_str(&format!("{:04}", digit(position)));
            position += 1;
        }
        fraction.truncate(dscale);
        Ok(PgNumeric {
            negative: sign == 0x4000,
            integer,
            fraction,
            finite: true,
        })
    }

    fn accepts(ty: &Type) -> bool {
        *ty == Type::NUMERIC
    }
}

/// A YAML value bound as a query parameter of the type PostgreSQL expects.
#[derive(Debug)]
pub enum Param {
    Null,
    Bool(bool),
    Int16(i16),
    Int32(i32),
    Int64(i64),
    Float32(f32),
    Float64(f64),
    Text(String),
    Date(NaiveDate),
    Timestamp(NaiveDateTime),
    TimestampTz(DateTime<Utc>),
}

impl Param {
    /// Converts `value` for a parameter of type `ty`; the error says what was expected.
    pub fn for_type(value: &Value, ty: &Type) -> Result<Param, String> {
        if value.is_null() {
            return Ok(Param::Null);
        }
        let text = match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        };
        let wrong = || format!("expected {}", describe(ty));
        let param = match *ty {
            Type::BOOL => Param::Bool(value.as_bool().ok_or_else(wrong)?),
            Type::INT2 => Param::Int16(
                value
                    .as_i64()
                    .and_then(|v| i16::try_from(v).ok())
                    .ok_or_else(wrong)?,
            ),
            Type::INT4 => Param::Int32(
                value
                    .as_i64()
                    .and_then(|v| i32::try_from(v).ok())
                    .ok_or_else(wrong)?,
            ),
            Type::INT8 => Param::Int64(value.as_i64().ok_or_else(wrong)?),
            Type::FLOAT4 => Param::Float32(value.as_f64().ok_or_else(wrong)? as f32),
            Type::FLOAT8 => Param::Float64(value.as_f64().ok_or_else(wrong)?),
            Type::TEXT | Type::VARCHAR | Type::BPCHAR | Type::NAME | Type::UNKNOWN => {
                Param::Text(text.ok_or_else(wrong)?)
            }
            Type::DATE => Param::Date(
                text.and_then(|t| NaiveDate::parse_from_str(&t, "%Y-%m-%d").ok())
                    .ok_or_else(wrong)?,
            ),
            Type::TIMESTAMP => Param::Timestamp(
                text.and_then(|t| {
                    NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f")
                        .or_else(|_| NaiveDateTime::parse_from_str(&t, "%Y-%m-%d %H:%M:%S%.f"))
                        .ok()
                })
                .ok_or_else(wrong)?,
            ),
            Type::TIMESTAMPTZ => Param::TimestampTz(
                text.and_then(|t| DateTime::parse_from_rfc3339(&t).ok())
                    .map(|t| t.with_timezone(&Utc))
                    .ok_or_else(wrong)?,
            ),
            Type::NUMERIC => {
                return Err(
                    "numeric parameters are not bound directly; write `$N::float8` or `$N::text::numeric` in the query".into(),
                );
            }
            ref other => {
                return Err(format!(
                    "parameters of type {other} are not supported; cast it in the query, e.g. `$N::text`"
                ));
            }
        };
        Ok(param)
    }
}

fn describe(ty: &Type) -> &'static str {
    match *ty {
        Type::BOOL => "true or false",
        Type::INT2 | Type::INT4 | Type::INT8 => "an integer in range",
        Type::FLOAT4 | Type::FLOAT8 => "a number",
        Type::DATE => "a date like 2026-03-01",
        Type::TIMESTAMP => "a timestamp like 2026-03-01T09:30:00",
        Type::TIMESTAMPTZ => "a timestamp with offset like 2026-03-01T09:30:00Z",
        _ => "text",
    }
}

impl ToSql for Param {
    fn to_sql(&self, ty: &Type, out: &mut bytes::BytesMut) -> Result<IsNull, BoxError> {
        match self {
            Param::Null => Ok(IsNull::Yes),
            Param::Bool(v) => v.to_sql(ty, out),
            Param::Int16(v) => v.to_sql(ty, out),
            Param::Int32(v) => v.to_sql(ty, out),
            Param::Int64(v) => v.to_sql(ty, out),
            Param::Float32(v) => v.to_sql(ty, out),
            Param::Float64(v) => v.to_sql(ty, out),
            Param::Text(v) => v.to_sql(ty, out),
            Param::Date(v) => v.to_sql(ty, out),
            Param::Timestamp(v) => v.to_sql(ty, out),
            Param::TimestampTz(v) => v.to_sql(ty, out),
        }
    }

    /// Each parameter was converted for the statement's own types.
    fn accepts(_ty: &Type) -> bool {
        true
    }

    to_sql_checked!();
}

#[cfg(test)]
mod tests {
    use super::*;

    fn numeric(words: &[u16]) -> PgNumeric {
        let raw: Vec<u8> = words.iter().flat_map(|w| w.to_be_bytes()).collect();
        PgNumeric::from_sql(&Type::NUMERIC, &raw).unwrap()
    }

    #[test]
    fn numeric_digits_become_scaled_integers() {
        // 12345.678: digits [1, 2345, 6780], weight 1, positive, dscale 3.
        let n = numeric(&[3, 1, 0, 3, 1, 2345, 6780]);
        assert_eq!(n.scaled(10, 3), Ok(12_345_678));
        assert_eq!(n.scaled(10, 2), Ok(1_234_568));
        assert!(n.scaled(4, 0).is_err());
        // -0.05: digits [500], weight -1, negative, dscale 2.
        let n = numeric(&[1, (-1i16) as u16, 0x4000, 2, 500]);
        assert_eq!(n.scaled(38, 10), Ok(-500_000_000));
        // NaN has no Decimal128 value: an error, not a null.
        assert!(numeric(&[0, 0, 0xC000, 0]).scaled(38, 10).is_err());
        // 10^30 at scale 10 needs 41 digits, more than Decimal128 holds.
        let huge = numeric(&[1, 7, 0, 0, 100]);
        assert_eq!(
            huge.scaled(38, 10),
            Err("a value does not fit Decimal128(38, 10)".into())
        );
    }

    #[test]
    fn precision_and_scale_come_from_the_type_modifier() {
        assert_eq!(numeric_precision(-1), (38, 10));
        assert_eq!(numeric_precision(((10 << 16) | 2) + 4), (10, 2));
    }
}
