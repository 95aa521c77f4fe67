//! `standardize`: z-score ((x − mean) / population standard deviation, as scikit-learn's
//! StandardScaler) or min-max ((x − min) / (max − min)). The result is a float column; a column
//! with a single value becomes all zeros.

use std::sync::Arc;

use datafusion::arrow::array::{Array, Float64Array};
use indexmap::IndexMap;
use serde_json::json;

use super::config::Scaling;
use super::stats::{as_floats, mean_std};
use super::table::Table;
use crate::steps::StepError;

pub fn apply(table: &mut Table, rules: &IndexMap<String, Scaling>) -> Result<(), StepError> {
    for (name, scaling) in rules {
        let floats = as_floats(&table.column(name)?, "standardize", name)?;
        let (offset, scale) = match scaling {
            Scaling::Zscore => match mean_std(&floats) {
                Some((mean, std)) => (mean, std),
                None => (0.0, 1.0),
            },
            Scaling::Minmax => {
                let values = floats.iter().flatten().filter(|v| !v.is_nan());
                let (min, max) = values.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                    (lo.min(v), hi.max(v))
                });
                if min.is_finite() {
                    (min, max - min)
                } else {
                    (0.0, 1.0)
                }
            }
        };
        let result: Float64Array = floats
            .iter()
            .map(|v| {
                v.map(|v| {
                    if scale > 0.0 {
                        (v - offset) / scale
                    } else {
                        0.0
                    }
                })
            })
            .collect();
        let changed = result.len() - result.null_count();
        table.replace(name, Arc::new(result))?;
        table.count_changed(changed);
        let (a, b) = match scaling {
            Scaling::Zscore => ("mean", "std"),
            Scaling::Minmax => ("min", "range"),
        };
        table.detail(name, json!({ a: offset, b: scale }));
    }
    Ok(())
}
