//! `drop_missing` (rows with a missing value are rejected: the reason names the column) and
//! `fill` (missing values replaced by a constant or a statistic of the column).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, StringArray};
use datafusion::arrow::compute::kernels::zip::zip;
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::row::{RowConverter, SortField};
use indexmap::IndexMap;
use serde_json::{Value, json};

use super::config::{Columns, FillRule, FillStrategy};
use super::stats::{as_floats, present_values, quantile};
use super::table::{Table, missing_mask};
use crate::data::{as_text, cast_checked, describe_type};
use crate::steps::StepError;

pub fn drop_missing(table: &mut Table, columns: &Columns) -> Result<(), StepError> {
    let names: Vec<String> = match columns {
        Columns::All(_) => table
            .schema()
            .fields()
            .iter()
            .map(|f| f.name().clone())
            .collect(),
        Columns::Named(names) => names.clone(),
    };
    let mut reasons: Vec<Option<String>> = vec![None; table.rows()];
    for name in &names {
        let missing = missing_mask(&table.column(name)?)?;
        for (row, is_missing) in missing.into_iter().enumerate() {
            if is_missing && reasons[row].is_none() {
                reasons[row] = Some(format!("missing `{name}`"));
            }
        }
    }
    table.reject(reasons)
}

pub fn fill(table: &mut Table, rules: &IndexMap<String, FillRule>) -> Result<(), StepError> {
    for (name, rule) in rules {
        let column = table.column(name)?;
        let missing = missing_mask(&column)?;
        let count = missing.iter().filter(|m| **m).count();
        // Blank text counts as missing: make it null so the fill reaches it.
        let column = match as_text(&column)? {
            Some(text) => Arc::new(
                text.iter()
                    .map(|v| v.filter(|s| !s.trim().is_empty()))
                    .collect::<StringArray>(),
            ) as ArrayRef,
            None => column,
        };
        let value = match rule {
            FillRule::Constant(value) => constant(&column, value, name)?,
            FillRule::Strategy { strategy } => match statistic(&column, *strategy, name)? {
                Some(value) => value,
                None => {
                    table.detail(
                        name,
                        json!({ "filled": 0, "note": "no values to compute it from" }),
                    );
                    continue;
                }
            },
        };
        let mask = BooleanArray::from(missing);
        let filled = zip(
            &mask,
            &datafusion::arrow::array::Scalar::new(value),
            &column,
        )?;
        table.replace(name, filled)?;
        table.count_changed(count);
        table.detail(name, json!({ "filled": count }));
    }
    Ok(())
}

/// A constant as a one-value array of the column's type.
fn constant(column: &ArrayRef, value: &Value, name: &str) -> Result<ArrayRef, StepError> {
    let text = match value {
        Value::String(s) => s.clone(),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        _ => {
            return Err(StepError::permanent(format!(
                "fill: the value for `{name}` must be text, a number or true/false"
            )));
        }
    };
    let single: ArrayRef = Arc::new(StringArray::from(vec![text]));
    let checked = cast_checked(&single, column.data_type())?;
    if checked.failures() > 0 {
        return Err(StepError::permanent(format!(
            "fill: the value for `{name}` does not fit the column, which is {}",
            describe_type(column.data_type())
        )));
    }
    Ok(checked.array)
}

fn statistic(
    column: &ArrayRef,
    strategy: FillStrategy,
    name: &str,
) -> Result<Option<ArrayRef>, StepError> {
    if strategy == FillStrategy::Mode {
        return mode(column);
    }
    let floats = as_floats(column, "fill", name)?;
    let value = match strategy {
        FillStrategy::Median => quantile(&mut present_values(&floats), 0.5),
        FillStrategy::Mean => super::stats::mean_std(&floats).map(|(mean, _)| mean),
        FillStrategy::Mode => unreachable!("handled above"),
    };
    let Some(value) = value else {
        return Ok(None);
    };
    let value = if column.data_type().is_integer() {
        value.round()
    } else {
        value
    };
    let single: ArrayRef = Arc::new(datafusion::arrow::array::Float64Array::from(vec![value]));
    Ok(Some(datafusion::arrow::compute::cast(
        &single,
        column.data_type(),
    )?))
}

/// The most frequent non-null value; ties go to the value seen first.
fn mode(column: &ArrayRef) -> Result<Option<ArrayRef>, StepError> {
    if column.data_type() == &DataType::Null {
        return Ok(None);
    }
    let converter = RowConverter::new(vec![SortField::new(column.data_type().clone())])?;
    let rows = converter.convert_columns(std::slice::from_ref(column))?;
    let mut counts: std::collections::HashMap<&[u8], (usize, usize)> =
        std::collections::HashMap::new();
    for row in 0..column.len() {
        if column.is_null(row) {
            continue;
        }
        counts.entry(rows.row(row).data()).or_insert((0, row)).0 += 1;
    }
    let best = counts
        .values()
        .max_by(|a, b| a.0.cmp(&b.0).then(b.1.cmp(&a.1)))
        .map(|(_, first)| *first);
    Ok(best.map(|row| column.slice(row, 1)))
}
