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

/// The non-null, non-NaN values, in no particular order.
pub fn present_values(values: &Float64Array) -> Vec<f64> {
    values.iter().flatten().filter(|v| !v.is_nan()).collect()
}

/// The q-quantile with linear interpolation; `None` when there are no values.
///
/// Selects the two order statistics it needs instead of sorting (linear time, not n log n);
/// the values are reordered but stay the same values, so several quantiles can be taken in turn.
pub fn quantile(values: &mut [f64], q: f64) -> Option<f64> {
    if values.is_empty() {
        return None;
    }
    let position = q.clamp(0.0, 1.0) * (values.len() - 1) as f64;
    let below = position.floor() as usize;
    let fraction = position - below as f64;
    let (_, low, above) = values.select_nth_unstable_by(below, f64::total_cmp);
    let low = *low;
    if fraction == 0.0 {
        return Some(low);
    }
    // The next order statistic is the smallest of the values after the selected one.
    let high = above.iter().copied().min_by(f64::total_cmp).unwrap_or(low);
    Some(low + (high - low) * fraction)
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
        let mut values = [4.0, 10.0, 1.0, 3.0, 2.0];
        assert_eq!(quantile(&mut values, 0.25), Some(2.0));
        assert_eq!(quantile(&mut values, 0.5), Some(3.0));
        assert!((quantile(&mut values, 0.9).unwrap() - 7.6).abs() < 1e-12);
        assert_eq!(quantile(&mut values, 0.0), Some(1.0));
        assert_eq!(quantile(&mut values, 1.0), Some(10.0));
        assert_eq!(quantile(&mut [], 0.5), None);
        assert_eq!(quantile(&mut [7.0], 0.3), Some(7.0));
    }

    #[test]
    fn selected_quantiles_equal_those_of_the_sorted_values() {
        // Many ties and a spread of values, taken in turn on the same (reordered) values.
        let mut values: Vec<f64> = (0..10_001u64)
            .map(|i| ((i * 7_919) % 1_009) as f64 / 10.0 - 20.0)
            .collect();
        let mut sorted = values.clone();
        sorted.sort_by(f64::total_cmp);
        let by_sorting = |q: f64| {
            let position = q * (sorted.len() - 1) as f64;
            let (below, above) = (position.floor() as usize, position.ceil() as usize);
            sorted[below] + (sorted[above] - sorted[below]) * (position - below as f64)
        };
        for q in [0.0, 0.01, 0.25, 0.333, 0.5, 0.75, 0.99, 0.999_9, 1.0] {
            assert_eq!(quantile(&mut values, q), Some(by_sorting(q)), "q = {q}");
        }
    }

    #[test]
    fn population_standard_deviation() {
        // numpy.std([2, 4, 4, 4, 5, 5, 7, 9]) = 2.0
        let values = Float64Array::from(vec![2.0, 4.0, 4.0, 4.0, 5.0, 5.0, 7.0, 9.0]);
        assert_eq!(mean_std(&values), Some((5.0, 2.0)));
    }
}
