//! Reading the columns the validate steps need out of Arrow batches, with errors that name the
//! column and the row, never the value (customer data stays out of messages).

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, Float64Array, StringArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Schema};

use crate::spec::suggest;
use crate::steps::StepError;

/// The index of `name` in `schema`, or an error naming the available columns.
pub fn find(schema: &Schema, name: &str, dataset: &str, option: &str) -> Result<usize, StepError> {
    schema.index_of(name).map_err(|_| {
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        let hint = suggest::hint(name, names.iter().copied())
            .map(|h| format!("; {h}"))
            .unwrap_or_default();
        StepError::permanent(format!(
            "{dataset} has no column `{name}` (named by `{option}`){hint}; its columns are: {}",
            names.join(", ")
        ))
    })
}

/// Whether a column can hold customer ids: integers or text.
pub fn is_id_type(data_type: &DataType) -> bool {
    match data_type {
        DataType::Dictionary(_, value) => is_id_type(value),
        t => {
            t.is_integer() || matches!(t, DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View)
        }
    }
}

/// Whether a column can be a segment label: text, integers or booleans.
pub fn is_label_type(data_type: &DataType) -> bool {
    is_id_type(data_type) || matches!(data_type, DataType::Boolean)
}

/// Whether a column can be a metric: numbers or booleans.
pub fn is_metric_type(data_type: &DataType) -> bool {
    match data_type {
        DataType::Dictionary(_, value) => is_metric_type(value),
        t => t.is_numeric() || matches!(t, DataType::Boolean),
    }
}

/// The column as text (integers written in decimal, as the hash sees them).
pub fn as_text(array: &ArrayRef) -> Result<StringArray, StepError> {
    let text = cast(array, &DataType::Utf8)?;
    Ok(text
        .as_any()
        .downcast_ref::<StringArray>()
        .expect("a cast to Utf8 gives a StringArray")
        .clone())
}

/// The column as 64-bit floats (booleans as 0 and 1).
pub fn as_f64(array: &ArrayRef) -> Result<Float64Array, StepError> {
    let array: ArrayRef = match array.data_type() {
        DataType::Boolean => cast(array, &DataType::UInt8)?,
        _ => Arc::clone(array),
    };
    let numbers = cast(&array, &DataType::Float64)?;
    Ok(numbers
        .as_any()
        .downcast_ref::<Float64Array>()
        .expect("a cast to Float64 gives a Float64Array")
        .clone())
}

/// Says which types a column may have, for errors.
pub fn type_error(
    dataset: &str,
    column: &str,
    found: &DataType,
    wanted: &str,
    fix: &str,
) -> StepError {
    StepError::permanent(format!(
        "column `{column}` of {dataset} is {found}; it must hold {wanted}{fix}"
    ))
}
