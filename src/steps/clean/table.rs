//! The table `clean` works on: the current rows, where each came from in the input (so rejected
//! rows can be shown as they arrived), and what each operation did.

use std::sync::Arc;

use datafusion::arrow::array::{Array, ArrayRef, BooleanArray, StringArray, UInt64Array};
use datafusion::arrow::compute::{filter, filter_record_batch, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use serde_json::{Map, Value, json};

use crate::data::{as_text, describe_type};
use crate::spec::suggest;
use crate::steps::StepError;

pub struct Table {
    batch: RecordBatch,
    /// The input row each current row came from.
    positions: UInt64Array,
    rejections: Vec<Rejection>,
    current: Option<OperationStats>,
}

/// A row rejected for cause.
struct Rejection {
    position: u64,
    operation: &'static str,
    reason: String,
}

/// What one operation did, reported in the step's `operations` output.
#[derive(Debug, Clone)]
pub struct OperationStats {
    pub operation: &'static str,
    pub rows_in: usize,
    pub rows_out: usize,
    pub rejected: usize,
    pub dropped: usize,
    pub changed: usize,
    pub details: Map<String, Value>,
}

impl OperationStats {
    pub fn to_json(&self) -> Value {
        let mut value = json!({
            "operation": self.operation,
            "rows_in": self.rows_in,
            "rows_out": self.rows_out,
            "rejected": self.rejected,
            "dropped": self.dropped,
            "changed": self.changed,
        });
        if !self.details.is_empty() {
            value["details"] = Value::Object(self.details.clone());
        }
        value
    }
}

impl Table {
    pub fn new(batch: RecordBatch) -> Self {
        let positions = UInt64Array::from_iter_values(0..batch.num_rows() as u64);
        Table {
            batch,
            positions,
            rejections: Vec::new(),
            current: None,
        }
    }

    pub fn rows(&self) -> usize {
        self.batch.num_rows()
    }

    pub fn schema(&self) -> SchemaRef {
        self.batch.schema()
    }

    pub fn batch(&self) -> &RecordBatch {
        &self.batch
    }

    pub fn into_batch(self) -> RecordBatch {
        self.batch
    }

    pub fn begin(&mut self, operation: &'static str) {
        self.current = Some(OperationStats {
            operation,
            rows_in: self.rows(),
            rows_out: self.rows(),
            rejected: 0,
            dropped: 0,
            changed: 0,
            details: Map::new(),
        });
    }

    pub fn end(&mut self) -> OperationStats {
        let mut stats = self.current.take().expect("begin() comes before end()");
        stats.rows_out = self.rows();
        stats
    }

    fn stats(&mut self) -> &mut OperationStats {
        self.current
            .as_mut()
            .expect("operations run between begin() and end()")
    }

    fn operation(&self) -> &'static str {
        self.current.as_ref().map_or("clean", |s| s.operation)
    }

    pub fn count_changed(&mut self, values: usize) {
        self.stats().changed += values;
    }

    pub fn detail(&mut self, key: &str, value: Value) {
        self.stats().details.insert(key.to_string(), value);
    }

    /// The column's index, or an error naming the columns there are.
    pub fn index_of(&self, column: &str) -> Result<usize, StepError> {
        self.batch.schema().index_of(column).map_err(|_| {
            let names: Vec<String> = self
                .batch
                .schema()
                .fields()
                .iter()
                .map(|f| f.name().clone())
                .collect();
            let hint = suggest::closest(column, names.iter().map(String::as_str))
                .map(|c| format!("did you mean `{c}`? "))
                .unwrap_or_default();
            StepError::permanent(format!(
                "{}: there is no column `{column}`; {hint}the columns are: {}",
                self.operation(),
                names.join(", ")
            ))
        })
    }

    pub fn column(&self, column: &str) -> Result<&ArrayRef, StepError> {
        Ok(self.batch.column(self.index_of(column)?))
    }

    /// A text column as Utf8, or an error saying it is not text.
    pub fn text_column(&self, column: &str) -> Result<StringArray, StepError> {
        let array = self.column(column)?;
        as_text(array)?.ok_or_else(|| {
            StepError::permanent(format!(
                "{}: column `{column}` is {}, not text",
                self.operation(),
                describe_type(array.data_type())
            ))
        })
    }

    /// The names of all text columns.
    pub fn text_columns(&self) -> Vec<String> {
        self.batch
            .schema()
            .fields()
            .iter()
            .filter(|f| {
                matches!(
                    f.data_type(),
                    DataType::Utf8 | DataType::Utf8View | DataType::LargeUtf8
                )
            })
            .map(|f| f.name().clone())
            .collect()
    }

    /// Replaces a column (its type may change).
    pub fn replace(&mut self, column: &str, array: ArrayRef) -> Result<(), StepError> {
        let index = self.index_of(column)?;
        let schema = self.batch.schema();
        let mut fields: Vec<Field> = schema.fields().iter().map(|f| f.as_ref().clone()).collect();
        fields[index] = Field::new(column, array.data_type().clone(), true);
        let mut columns = self.batch.columns().to_vec();
        columns[index] = array;
        self.batch = RecordBatch::try_new(Arc::new(Schema::new(fields)), columns)?;
        Ok(())
    }

    /// Rejects the rows with a reason, keeping them out of the result.
    pub fn reject(&mut self, reasons: Vec<Option<String>>) -> Result<(), StepError> {
        let operation = self.operation();
        let mut count = 0;
        for (row, reason) in reasons.iter().enumerate() {
            if let Some(reason) = reason {
                self.rejections.push(Rejection {
                    position: self.positions.value(row),
                    operation,
                    reason: reason.clone(),
                });
                count += 1;
            }
        }
        if count == 0 {
            return Ok(());
        }
        self.stats().rejected += count;
        let keep: BooleanArray = reasons.iter().map(|r| Some(r.is_none())).collect();
        self.keep(&keep)
    }

    /// Drops the rows where `keep` is false (or null) without rejecting them.
    pub fn drop_unless(&mut self, keep: &BooleanArray) -> Result<(), StepError> {
        let before = self.rows();
        self.keep(keep)?;
        let dropped = before - self.rows();
        self.stats().dropped += dropped;
        Ok(())
    }

    fn keep(&mut self, keep: &BooleanArray) -> Result<(), StepError> {
        // A null in the mask counts as false.
        let keep = if keep.null_count() > 0 {
            datafusion::arrow::compute::prep_null_mask_filter(keep)
        } else {
            keep.clone()
        };
        self.batch = filter_record_batch(&self.batch, &keep)?;
        let positions = filter(&self.positions, &keep)?;
        self.positions = positions
            .as_any()
            .downcast_ref::<UInt64Array>()
            .expect("filtering keeps the type")
            .clone();
        Ok(())
    }

    pub fn rejected_count(&self) -> usize {
        self.rejections.len()
    }

    /// The rejected rows as they were in the input, with the operation and the reason, in
    /// input order.
    pub fn rejected(&self, input: &RecordBatch) -> Result<RecordBatch, StepError> {
        let mut order: Vec<&Rejection> = self.rejections.iter().collect();
        order.sort_by_key(|r| r.position);
        let indices = UInt64Array::from_iter_values(order.iter().map(|r| r.position));
        let mut columns: Vec<ArrayRef> = input
            .columns()
            .iter()
            .map(|c| take(c.as_ref(), &indices, None))
            .collect::<Result<_, _>>()?;
        columns.push(Arc::new(StringArray::from_iter_values(
            order.iter().map(|r| r.operation),
        )));
        columns.push(Arc::new(StringArray::from_iter_values(
            order.iter().map(|r| r.reason.as_str()),
        )));
        Ok(RecordBatch::try_new(
            rejected_schema(&input.schema()),
            columns,
        )?)
    }
}

/// The input's columns plus `operation` and `reason` (renamed with a leading `_` if the input
/// has columns of those names).
pub fn rejected_schema(input: &SchemaRef) -> SchemaRef {
    let mut fields: Vec<Field> = input
        .fields()
        .iter()
        .map(|f| f.as_ref().clone().with_nullable(true))
        .collect();
    for name in ["operation", "reason"] {
        let mut name = name.to_string();
        while input.field_with_name(&name).is_ok() {
            name.insert(0, '_');
        }
        fields.push(Field::new(name, DataType::Utf8, false));
    }
    Arc::new(Schema::new(fields))
}

/// Whether a value is missing: null, or text that is empty once trimmed.
pub fn missing_mask(array: &ArrayRef) -> Result<Vec<bool>, StepError> {
    if let Some(text) = as_text(array)? {
        return Ok(text
            .iter()
            .map(|v| v.is_none_or(|s| s.trim().is_empty()))
            .collect());
    }
    Ok((0..array.len()).map(|i| array.is_null(i)).collect())
}
