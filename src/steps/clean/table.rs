//! The table `clean` works on: the current rows, where each came from in the input (so rejected
//! rows can be shown as they arrived), and what each operation did.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use datafusion::arrow::array::{
    Array, ArrayRef, BooleanArray, BooleanBufferBuilder, StringArray, UInt64Array,
};
use datafusion::arrow::buffer::BooleanBuffer;
use datafusion::arrow::compute::{filter, take};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchOptions};
use serde_json::{Map, Value, json};

use crate::data::{as_text, describe_type};
use crate::spec::suggest;
use crate::steps::StepError;

pub struct Table {
    schema: SchemaRef,
    columns: Vec<LazyColumn>,
    /// The masks each dropping operation applied, oldest first: mask `g` takes the rows of
    /// generation `g` to those of generation `g + 1`.
    masks: Vec<BooleanBuffer>,
    /// Masks that take a generation's rows straight to the current ones, made when needed.
    composed: HashMap<usize, BooleanArray>,
    /// The input row each current row came from (one entry per current row, so also how many
    /// rows there are).
    positions: UInt64Array,
    rejections: Vec<Rejection>,
    current: Option<OperationStats>,
    /// When the current operation began.
    began: Instant,
}

/// A column as it was at some generation of the table: rows are only taken out of it when an
/// operation reads it, so a column no operation touches is filtered once, at the end, however
/// many operations dropped rows.
struct LazyColumn {
    array: ArrayRef,
    generation: usize,
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
    /// How long it took: logged, never in the outputs (they stay the same run to run).
    pub took: Duration,
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
            schema: batch.schema(),
            columns: batch
                .columns()
                .iter()
                .map(|array| LazyColumn {
                    array: array.clone(),
                    generation: 0,
                })
                .collect(),
            masks: Vec::new(),
            composed: HashMap::new(),
            positions,
            rejections: Vec::new(),
            current: None,
            began: Instant::now(),
        }
    }

    pub fn rows(&self) -> usize {
        self.positions.len()
    }

    pub fn schema(&self) -> SchemaRef {
        self.schema.clone()
    }

    /// Every column with the current rows.
    pub fn batch(&mut self) -> Result<RecordBatch, StepError> {
        let columns = (0..self.columns.len())
            .map(|index| self.current_column(index))
            .collect::<Result<Vec<_>, _>>()?;
        let options = RecordBatchOptions::new().with_row_count(Some(self.rows()));
        Ok(RecordBatch::try_new_with_options(
            self.schema.clone(),
            columns,
            &options,
        )?)
    }

    pub fn into_batch(mut self) -> Result<RecordBatch, StepError> {
        self.batch()
    }

    /// Column `index` with the current rows: the rows dropped since it was last read are taken
    /// out now, all at once.
    fn current_column(&mut self, index: usize) -> Result<ArrayRef, StepError> {
        let now = self.masks.len();
        let generation = self.columns[index].generation;
        if generation < now {
            let mask = self.composed_mask(generation);
            let column = &mut self.columns[index];
            column.array = filter(column.array.as_ref(), &mask)?;
            column.generation = now;
        }
        Ok(self.columns[index].array.clone())
    }

    /// The mask from generation `from`'s rows to the current ones.
    fn composed_mask(&mut self, from: usize) -> BooleanArray {
        if let Some(mask) = self.composed.get(&from) {
            return mask.clone();
        }
        let mut mask = self.masks[from].clone();
        for next in &self.masks[from + 1..] {
            mask = compose(&mask, next);
        }
        let mask = BooleanArray::new(mask, None);
        self.composed.insert(from, mask.clone());
        mask
    }

    pub fn begin(&mut self, operation: &'static str) {
        self.began = Instant::now();
        self.current = Some(OperationStats {
            operation,
            rows_in: self.rows(),
            rows_out: self.rows(),
            rejected: 0,
            dropped: 0,
            changed: 0,
            details: Map::new(),
            took: Duration::ZERO,
        });
    }

    pub fn end(&mut self) -> OperationStats {
        let mut stats = self.current.take().expect("begin() comes before end()");
        stats.rows_out = self.rows();
        stats.took = self.began.elapsed();
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
        self.schema.index_of(column).map_err(|_| {
            let names: Vec<String> = self
                .schema
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

    /// A column with the current rows.
    pub fn column(&mut self, column: &str) -> Result<ArrayRef, StepError> {
        let index = self.index_of(column)?;
        self.current_column(index)
    }

    /// A text column as Utf8, or an error saying it is not text.
    pub fn text_column(&mut self, column: &str) -> Result<StringArray, StepError> {
        let array = self.column(column)?;
        as_text(&array)?.ok_or_else(|| {
            StepError::permanent(format!(
                "{}: column `{column}` is {}, not text",
                self.operation(),
                describe_type(array.data_type())
            ))
        })
    }

    /// The names of all text columns.
    pub fn text_columns(&self) -> Vec<String> {
        self.schema
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

    /// Replaces a column (its type may change) with one of the current rows.
    pub fn replace(&mut self, column: &str, array: ArrayRef) -> Result<(), StepError> {
        let index = self.index_of(column)?;
        self.check_rows(&format!("column `{column}`"), array.len())?;
        let mut fields: Vec<Field> = self
            .schema
            .fields()
            .iter()
            .map(|f| f.as_ref().clone())
            .collect();
        fields[index] = Field::new(column, array.data_type().clone(), true);
        self.schema = Arc::new(Schema::new(fields));
        self.columns[index] = LazyColumn {
            array,
            generation: self.masks.len(),
        };
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

    /// An operation's per-row result must have one entry per current row.
    fn check_rows(&self, what: &str, rows: usize) -> Result<(), StepError> {
        let current = self.rows();
        if rows == current {
            return Ok(());
        }
        Err(StepError::permanent(format!(
            "{}: {what} came out with {rows} rows instead of {current}",
            self.operation(),
        )))
    }

    fn keep(&mut self, keep: &BooleanArray) -> Result<(), StepError> {
        // A null in the mask counts as false.
        let keep = if keep.null_count() > 0 {
            datafusion::arrow::compute::prep_null_mask_filter(keep)
        } else {
            keep.clone()
        };
        self.check_rows("the mask of rows to keep", keep.len())?;
        let kept = keep.true_count();
        if kept == self.rows() {
            return Ok(());
        }
        // The columns are filtered when next read; only the positions are kept current.
        self.masks.push(keep.values().clone());
        self.composed.clear();
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

/// `first` then `then`: `then` has one bit per row `first` keeps, and a row is kept when both
/// keep it.
fn compose(first: &BooleanBuffer, then: &BooleanBuffer) -> BooleanBuffer {
    debug_assert_eq!(first.count_set_bits(), then.len());
    let mut both = BooleanBufferBuilder::new(first.len());
    both.append_n(first.len(), false);
    for (kept, row) in first.set_indices().enumerate() {
        if then.value(kept) {
            both.set_bit(row, true);
        }
    }
    both.finish()
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

#[cfg(test)]
mod tests {
    use datafusion::arrow::array::{Int64Array, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Schema};

    use super::*;

    fn ids(array: &ArrayRef) -> Vec<i64> {
        array
            .as_any()
            .downcast_ref::<Int64Array>()
            .unwrap()
            .values()
            .to_vec()
    }

    fn table(rows: i64) -> Table {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("copy", DataType::Int64, true),
        ]));
        let batch = RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows)),
                Arc::new(StringArray::from_iter_values(
                    (0..rows).map(|i| format!("n{i}")),
                )),
                Arc::new(Int64Array::from_iter_values(0..rows)),
            ],
        )
        .unwrap();
        Table::new(batch)
    }

    #[test]
    fn compose_keeps_a_row_when_both_masks_keep_it() {
        let first = BooleanBuffer::from(vec![true, false, true, true, false]);
        let then = BooleanBuffer::from(vec![false, true, true]);
        let both: Vec<bool> = compose(&first, &then).iter().collect();
        assert_eq!(both, [false, false, true, true, false]);
    }

    #[test]
    fn columns_read_late_and_replaced_midway_get_the_same_rows_as_eager_filtering() {
        let mut table = table(20);
        table.begin("test");
        // Reject the multiples of 3, then replace `name` with the current rows, then drop the
        // odd ids, then drop ids above 13: `copy` is read only at the end.
        let current = ids(&table.column("id").unwrap());
        table
            .reject(
                current
                    .iter()
                    .map(|i| (i % 3 == 0).then(|| "three".to_string()))
                    .collect(),
            )
            .unwrap();
        let names = table.text_column("name").unwrap();
        let upper: StringArray = names.iter().map(|n| n.map(str::to_uppercase)).collect();
        table.replace("name", Arc::new(upper)).unwrap();
        let even: BooleanArray = ids(&table.column("id").unwrap())
            .iter()
            .map(|i| Some(i % 2 == 0))
            .collect();
        table.drop_unless(&even).unwrap();
        let small: BooleanArray = ids(&table.column("id").unwrap())
            .iter()
            .map(|i| if *i == 8 { None } else { Some(*i <= 13) })
            .collect();
        table.drop_unless(&small).unwrap();
        let stats = table.end();
        assert_eq!((stats.rejected, stats.dropped, stats.rows_out), (7, 10, 3));

        let expected = [2, 4, 10];
        assert_eq!(table.rows(), 3);
        assert_eq!(table.positions.values().to_vec(), [2, 4, 10]);
        let batch = table.batch().unwrap();
        assert_eq!(ids(batch.column(0)), expected);
        assert_eq!(ids(batch.column(2)), expected);
        let names: Vec<&str> = batch
            .column(1)
            .as_any()
            .downcast_ref::<StringArray>()
            .unwrap()
            .iter()
            .map(Option::unwrap)
            .collect();
        assert_eq!(names, ["N2", "N4", "N10"]);
        let rejected: Vec<u64> = table.rejections.iter().map(|r| r.position).collect();
        assert_eq!(rejected, [0, 3, 6, 9, 12, 15, 18]);
    }

    #[test]
    fn a_replacement_of_the_wrong_length_is_an_error_not_a_panic() {
        let mut table = table(4);
        table.begin("test");
        let error = table
            .replace("copy", Arc::new(Int64Array::from(vec![1, 2])))
            .unwrap_err();
        assert!(error.to_string().contains("2 rows instead of 4"), "{error}");
    }
}
