//! Casting a column without losing anything silently: every value that does not convert is
//! reported by row, so callers can reject the row with a reason instead of storing a null.

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, StringArray};
use datafusion::arrow::compute::kernels::cast::{CastOptions, cast_with_options};
use datafusion::arrow::datatypes::DataType;
use datafusion::arrow::error::ArrowError;

/// The cast column, and for each row whether its value failed to convert (a non-null value
/// that became null).
pub struct Checked {
    pub array: ArrayRef,
    pub failed: BooleanArray,
}

impl Checked {
    pub fn failures(&self) -> usize {
        self.failed.true_count()
    }
}

pub fn cast_checked(array: &ArrayRef, to: &DataType) -> Result<Checked, ArrowError> {
    if array.data_type() == to {
        return Ok(Checked {
            array: array.clone(),
            failed: BooleanArray::from(vec![false; array.len()]),
        });
    }
    // Text is trimmed first: " 42 " is a number that came with spaces, not a bad value.
    let source = match as_text(array)? {
        Some(text) if to != &DataType::Utf8 => {
            let trimmed: StringArray = text.iter().map(|v| v.map(str::trim)).collect();
            std::sync::Arc::new(trimmed) as ArrayRef
        }
        _ => array.clone(),
    };
    let options = CastOptions {
        safe: true,
        ..CastOptions::default()
    };
    let cast = cast_with_options(&source, to, &options)?;
    let failed: BooleanArray = (0..array.len())
        .map(|i| Some(array.is_valid(i) && cast.is_null(i) && !is_blank(&source, i)))
        .collect();
    // Blank text converts to null (a missing value, for drop_missing or fill to handle).
    Ok(Checked {
        array: cast,
        failed,
    })
}

/// A text column as plain Utf8 (DataFusion reads Parquet strings as Utf8View), or `None` when
/// the column is not text.
pub fn as_text(array: &ArrayRef) -> Result<Option<StringArray>, ArrowError> {
    match array.data_type() {
        DataType::Utf8 => Ok(array.as_any().downcast_ref::<StringArray>().cloned()),
        DataType::Utf8View | DataType::LargeUtf8 => {
            let cast = datafusion::arrow::compute::cast(array, &DataType::Utf8)?;
            Ok(cast.as_any().downcast_ref::<StringArray>().cloned())
        }
        _ => Ok(None),
    }
}

fn is_blank(array: &ArrayRef, row: usize) -> bool {
    array
        .as_any()
        .downcast_ref::<StringArray>()
        .is_some_and(|text| text.is_valid(row) && text.value(row).is_empty())
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, Int64Array};

    use super::*;

    #[test]
    fn reports_each_value_that_does_not_convert() {
        let text: ArrayRef = Arc::new(StringArray::from(vec![
            Some(" 12 "),
            Some("abc"),
            None,
            Some(""),
            Some("7"),
        ]));
        let checked = cast_checked(&text, &DataType::Int64).unwrap();
        let values = checked.array.as_any().downcast_ref::<Int64Array>().unwrap();
        assert_eq!(
            values.iter().collect::<Vec<_>>(),
            [Some(12), None, None, None, Some(7)]
        );
        assert_eq!(
            checked.failed.iter().collect::<Vec<_>>(),
            [
                Some(false),
                Some(true),
                Some(false),
                Some(false),
                Some(false)
            ]
        );
    }

    #[test]
    fn numbers_widen_without_failures() {
        let ints: ArrayRef = Arc::new(Int64Array::from(vec![1, 2]));
        let checked = cast_checked(&ints, &DataType::Float64).unwrap();
        assert_eq!(checked.failures(), 0);
        let floats = checked
            .array
            .as_any()
            .downcast_ref::<Float64Array>()
            .unwrap();
        assert_eq!(floats.value(1), 2.0);
    }
}
