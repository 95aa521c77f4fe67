//! `clip`: winsorizes numeric columns. Bounds are quantiles (`percentile: [0.01, 0.99]`) or
//! Tukey's fences (`iqr: 1.5` → [Q1 − 1.5·IQR, Q3 + 1.5·IQR]); values beyond them are set to the
//! bound, so no row is lost. Integer columns keep integer bounds (rounded inwards).

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array};
use datafusion::arrow::compute::cast;
use indexmap::IndexMap;
use serde_json::json;

use super::config::ClipRule;
use super::stats::{as_floats, present_values, quantile};
use super::table::Table;
use crate::steps::StepError;

pub fn apply(table: &mut Table, rules: &IndexMap<String, ClipRule>) -> Result<(), StepError> {
    for (name, rule) in rules {
        let column = table.column(name)?;
        let floats = as_floats(&column, "clip", name)?;
        let mut values = present_values(&floats);
        let bounds = match rule {
            ClipRule::Percentile([low, high]) => {
                quantile(&mut values, *low).zip(quantile(&mut values, *high))
            }
            ClipRule::Iqr(k) => quantile(&mut values, 0.25)
                .zip(quantile(&mut values, 0.75))
                .map(|(q1, q3)| {
                    let iqr = q3 - q1;
                    (q1 - k * iqr, q3 + k * iqr)
                }),
        };
        let Some((mut lower, mut upper)) = bounds else {
            table.detail(name, json!({ "clipped": 0, "note": "no values" }));
            continue;
        };
        if column.data_type().is_integer() {
            lower = lower.ceil();
            upper = upper.floor();
        }
        let mut clipped = 0;
        let result: Float64Array = floats
            .iter()
            .map(|v| {
                v.map(|v| {
                    if v < lower {
                        clipped += 1;
                        lower
                    } else if v > upper {
                        clipped += 1;
                        upper
                    } else {
                        v
                    }
                })
            })
            .collect();
        let result: ArrayRef = cast(&(Arc::new(result) as ArrayRef), column.data_type())?;
        table.replace(name, result)?;
        table.count_changed(clipped);
        table.detail(
            name,
            json!({ "lower": lower, "upper": upper, "clipped": clipped }),
        );
    }
    Ok(())
}
