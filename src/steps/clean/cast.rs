//! `cast`: converts columns to another type. A value that does not convert rejects its row with
//! a reason; it never becomes a silent null.

use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime};
use datafusion::arrow::array::{Array, ArrayRef, Date32Array, TimestampMicrosecondArray};
use datafusion::arrow::datatypes::DataType;
use indexmap::IndexMap;

use super::config::CastRule;
use super::table::Table;
use crate::data::parallel::{join_blocks, map_slices};
use crate::data::{ColumnType, as_text, cast_checked, expectation};
use crate::steps::StepError;

pub fn apply(table: &mut Table, rules: &IndexMap<String, CastRule>) -> Result<(), StepError> {
    let mut reasons: Vec<Option<String>> = vec![None; table.rows()];
    for (name, rule) in rules {
        let column = table.column(name)?;
        let target = rule.target();
        let blocks = map_slices(&column, |block| cast_block(&block, rule, name));
        let mut arrays = Vec::with_capacity(blocks.len());
        let mut failed = Vec::with_capacity(column.len());
        for block in blocks {
            let (array, block_failed) = block?;
            arrays.push(array);
            failed.extend(block_failed);
        }
        let array = join_blocks(&arrays)?;
        for (row, failed) in failed.into_iter().enumerate() {
            if failed && reasons[row].is_none() {
                reasons[row] = Some(match rule.format() {
                    Some(format) => {
                        format!("cast `{name}` to {target}: does not match the format {format}")
                    }
                    None => format!(
                        "cast `{name}` to {target}: expected {}",
                        expectation(&target.data_type())
                    ),
                });
            }
        }
        table.replace(name, array)?;
    }
    table.reject(reasons)
}

/// One block of rows cast, and per row whether its value failed to convert.
fn cast_block(
    block: &ArrayRef,
    rule: &CastRule,
    name: &str,
) -> Result<(ArrayRef, Vec<bool>), StepError> {
    let target = rule.target();
    match rule.format() {
        Some(format) => with_format(block, target, format, name),
        None => {
            let checked = cast_checked(block, &target.data_type())?;
            let failed = checked.failed.iter().map(|f| f == Some(true)).collect();
            Ok((checked.array, failed))
        }
    }
}

/// Dates and timestamps read with a chrono format.
fn with_format(
    column: &ArrayRef,
    target: ColumnType,
    format: &str,
    name: &str,
) -> Result<(ArrayRef, Vec<bool>), StepError> {
    let text = match as_text(column)? {
        Some(text) => text,
        None => as_text(&datafusion::arrow::compute::cast(column, &DataType::Utf8)?)?
            .expect("cast to Utf8 gives text"),
    };
    let mut failed = vec![false; text.len()];
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date");
    let array: ArrayRef = match target {
        ColumnType::Date => {
            let values: Date32Array = text
                .iter()
                .enumerate()
                .map(|(row, value)| {
                    let value = value?.trim();
                    if value.is_empty() {
                        return None;
                    }
                    let parsed = NaiveDate::parse_from_str(value, format).ok();
                    failed[row] = parsed.is_none();
                    parsed.map(|d| (d - epoch).num_days() as i32)
                })
                .collect();
            Arc::new(values)
        }
        ColumnType::Timestamp => {
            let values: TimestampMicrosecondArray = text
                .iter()
                .enumerate()
                .map(|(row, value)| {
                    let value = value?.trim();
                    if value.is_empty() {
                        return None;
                    }
                    let parsed = DateTime::parse_from_str(value, format)
                        .map(|t| t.naive_utc())
                        .or_else(|_| NaiveDateTime::parse_from_str(value, format))
                        .ok();
                    failed[row] = parsed.is_none();
                    parsed.map(|t| t.and_utc().timestamp_micros())
                })
                .collect();
            Arc::new(values)
        }
        other => {
            return Err(StepError::permanent(format!(
                "cast: `format` applies to dates and timestamps only, not to `{name}: {other}`"
            )));
        }
    };
    Ok((array, failed))
}
