//! Column statistics for fill, clip and standardize: quantiles (linear interpolation, as
//! NumPy's and pandas' default), means and standard deviations over the non-null values.

use datafusion::arrow::array::{Array, ArrayRef, Float64Array};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::DataType;

use crate::data::describe_type;
use crate::steps::StepError;

pub fn is_numeric(data_type: &DataType) -> bool {
    data_type.is_numeric()
}

/// The column as floats, or an error when it is not numeric.
pub fn as_floats(
    array: &ArrayRef,
    operation: &str,
    column: &str,
) -> Result<Float64Array, StepError> {
    if !is_numeric(array.data_type()) {
        return Err(StepError::permanent(format!(
            "{operation}: column `{column}` is {}, not numeric; cast it first (`cast: {{ {column}: float }}`)",
            describe_type(array.data_type())
        )));
    }
    let floats = cast(array, &DataType::Float64)?;
    Ok(floats
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("cast to Float64")
        .clone())
}

/// The non-null, non-NaN values, sorted.
pub fn sorted_values(values: &Float64Array) -> Vec<f64> {
    let mut sorted: Vec<f64> = values.iter().flatten().filter(|v| !v.is_nan()).collect();
    sorted.sort_by(f64::total_cmp);
    sorted
}

/// The q-quantile of sorted values with linear interpolation; `None` when there are none.
pub fn quantile(sorted: &[f64], q: f64) -> Option<f64> {
    if sorted.is_empty() {
        return None;
    }
    let position = q.clamp(0.0, 1.0) * (sorted.len() - 1) as f64;
    let below = position.floor() as usize;
    let above = position.ceil() as usize;
    let fraction = position - below as f64;
    Some(sorted[below] + (sorted[above] - sorted[below]) * fraction)
}

/// Mean and population standard deviation of the non-null values.
pub fn mean_std(values: &Float64Array) -> Option<(f64, f64)> {
    let (mut n, mut mean, mut m2) = (0f64, 0f64, 0f64);
    // Welford: stable for large columns.
    for v in values.iter().flatten().filter(|v| !v.is_nan()) {
        n += 1.0;
        let delta = v - mean;
        mean += delta / n;
        m2 += delta * (v - mean);
    }
    (n > 0.0).then(|| (mean, (m2 / n).sqrt()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_interpolate_like_numpy() {
        // numpy.quantile([1, 2, 3, 4, 10], [0.25, 0.5, 0.9]) = [2.0, 3.0, 7.6]
        let sorted = [1.0, 2.0, 3.0, 4.0, 10.0];
        assert_eq!(quantile(&sorted, 0.25), Some(2.0));
        assert_eq!(quantile(&sorted, 0.5), Some(3.0));
        assert!((quantile(&sorted, 0.9).unwrap() - 7.6).abs() < 1e-12);
        assert_eq!(quantile(&[], 0.5), None);
    }

    #[test]
    fn population_standard_deviation() {
        // numpy.std([2, 4, 4, 4, 5, 5, 7, 9]) = 2.0
        let values = Float64Array::from(vec![2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(mean_std(&values), Some((5.0, 2.0)));
    }
}
