//! Reading clean's input: the whole upstream dataset as one batch, text as plain Utf8.
//!
//! One batch lets every operation work on whole columns without copying. Its price is Arrow's
//! limit on one Utf8 column (i32 offsets: 2 GiB of text), so the size is checked from the
//! Parquet metadata before anything is read, and a column over it is refused by name with a way
//! out, where Arrow would stop with an offset overflow that names nothing.

use std::fs::File;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::compute::{cast, concat_batches};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::arrow::record_batch::{RecordBatch, RecordBatchReader};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use datafusion::parquet::basic::Type as PhysicalType;
use datafusion::parquet::file::metadata::ParquetMetaData;

use crate::steps::StepError;

/// The most text one Utf8 column holds.
const TEXT_LIMIT: u64 = i32::MAX as u64;

/// The dataset of step `step` at `path`, as one batch with strings as plain Utf8.
pub fn read_all(path: &Path, step: &str) -> Result<RecordBatch, StepError> {
    read_all_within(path, step, TEXT_LIMIT)
}

fn read_all_within(path: &Path, step: &str, limit: u64) -> Result<RecordBatch, StepError> {
    let file = File::open(path)
        .map_err(|e| StepError::new(format!("cannot open {}: {e}", path.display())))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file)
        .map_err(|e| StepError::permanent(format!("cannot read {}: {e}", path.display())))?;
    if let Some((column, bytes)) = text_over(builder.metadata(), limit) {
        return Err(StepError::permanent(format!(
            "column `{column}` of step `{step}`'s dataset holds about {bytes} bytes of text, and \
             clean holds each column in one piece of at most {limit} bytes (2 GiB); drop the \
             columns clean does not need with a transform.sql step between them, or clean the \
             rows in parts (transform.sql steps with a WHERE, one clean step each)"
        )));
    }
    // One batch of every row, read straight into place rather than read in parts and copied.
    let rows = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
    let reader = builder
        .with_batch_size(rows.max(1))
        .build()
        .map_err(|e| StepError::permanent(format!("cannot read {}: {e}", path.display())))?;
    let schema = reader.schema();
    let batches: Vec<RecordBatch> = reader.collect::<Result<_, _>>()?;
    let batch = concat_batches(&schema, &batches)?;
    plain_strings(batch)
}

/// The first text column whose values add up to more than `limit` bytes, with its size.
///
/// The decoded size is in the metadata when the writer kept size statistics; otherwise the
/// column's uncompressed size stands in for it (close for segflow's own datasets, which write
/// text without dictionaries).
fn text_over(metadata: &ParquetMetaData, limit: u64) -> Option<(String, u64)> {
    let columns = metadata.file_metadata().schema_descr().num_columns();
    (0..columns).find_map(|i| {
        let mut bytes: u64 = 0;
        for group in metadata.row_groups() {
            let chunk = group.column(i);
            if chunk.column_type() != PhysicalType::BYTE_ARRAY {
                return None;
            }
            let size = chunk
                .unencoded_byte_array_data_bytes()
                .unwrap_or_else(|| chunk.uncompressed_size());
            bytes = bytes.saturating_add(u64::try_from(size).unwrap_or(0));
        }
        (bytes > limit).then(|| {
            let column = metadata.file_metadata().schema_descr().column(i);
            (column.path().string(), bytes)
        })
    })
}

/// Utf8View and LargeUtf8 columns as Utf8, so every operation sees one string type.
fn plain_strings(batch: RecordBatch) -> Result<RecordBatch, StepError> {
    let schema = batch.schema();
    if !schema
        .fields()
        .iter()
        .any(|f| matches!(f.data_type(), DataType::Utf8View | DataType::LargeUtf8))
    {
        return Ok(batch);
    }
    let mut fields = Vec::new();
    let mut columns = Vec::new();
    for (field, column) in schema.fields().iter().zip(batch.columns()) {
        if matches!(field.data_type(), DataType::Utf8View | DataType::LargeUtf8) {
            fields.push(Field::new(field.name(), DataType::Utf8, true));
            columns.push(cast(column, &DataType::Utf8)?);
        } else {
            fields.push(field.as_ref().clone());
            columns.push(column.clone());
        }
    }
    Ok(RecordBatch::try_new(
        Arc::new(Schema::new(fields)),
        columns,
    )?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::DatasetWriter;
    use datafusion::arrow::array::{Array, Int64Array, StringArray, StringViewArray};
    use datafusion::parquet::arrow::ArrowWriter;

    /// 100 rows: id, country (Utf8, 2 bytes each) and notes (Utf8View, 40 bytes each, all equal
    /// so that a dictionary would shrink them to one value).
    fn sample() -> RecordBatch {
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("country", DataType::Utf8, true),
            Field::new("notes", DataType::Utf8View, true),
        ]));
        let ids = Int64Array::from_iter_values(0..100);
        let countries = StringArray::from_iter_values((0..100).map(|i| ["DE", "FR"][i % 2]));
        let notes = StringViewArray::from_iter_values((0..100).map(|_| "n".repeat(40)));
        RecordBatch::try_new(
            schema,
            vec![Arc::new(ids), Arc::new(countries), Arc::new(notes)],
        )
        .unwrap()
    }

    /// The sample written as a run dataset (no dictionaries, no text statistics).
    fn run_dataset(dir: &Path) -> std::path::PathBuf {
        let batch = sample();
        let mut writer = DatasetWriter::create(dir, "customers", "main", batch.schema()).unwrap();
        writer.write(&batch).unwrap();
        writer.finish().unwrap().path(dir)
    }

    #[test]
    fn a_text_column_over_the_limit_is_refused_by_name_before_reading() {
        let dir = tempfile::tempdir().unwrap();
        let path = run_dataset(dir.path());
        let err = read_all_within(&path, "customers", 1_000).unwrap_err();
        let message = err.to_string();
        assert!(
            message.contains("column `notes` of step `customers`'s dataset holds about"),
            "{message}"
        );
        assert!(message.contains("transform.sql"), "{message}");
        assert!(!err.retryable, "a size limit does not pass on a retry");
    }

    #[test]
    fn text_within_the_limit_is_read_whole_as_plain_utf8() {
        let dir = tempfile::tempdir().unwrap();
        let path = run_dataset(dir.path());
        let batch = read_all_within(&path, "customers", 10_000).unwrap();
        assert_eq!(batch.num_rows(), 100);
        let notes = batch.column_by_name("notes").unwrap();
        assert_eq!(notes.data_type(), &DataType::Utf8);
        let notes = notes.as_any().downcast_ref::<StringArray>().unwrap();
        assert_eq!(notes.value(99), "n".repeat(40));
        assert_eq!(notes.null_count(), 0);
    }

    #[test]
    fn dictionary_encoded_text_is_measured_decoded() {
        // Written by another tool's defaults: a dictionary holds `notes` as one 40-byte value,
        // but decoded it is 4,000 bytes, which is what one Utf8 column has to hold.
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("other.parquet");
        let batch = sample();
        let mut writer =
            ArrowWriter::try_new(File::create(&path).unwrap(), batch.schema(), None).unwrap();
        writer.write(&batch).unwrap();
        writer.close().unwrap();
        let chunk_size = ParquetRecordBatchReaderBuilder::try_new(File::open(&path).unwrap())
            .unwrap()
            .metadata()
            .row_group(0)
            .column(2)
            .uncompressed_size();
        assert!(chunk_size < 1_000, "the dictionary is small: {chunk_size}");
        let message = read_all_within(&path, "crm", 1_000)
            .unwrap_err()
            .to_string();
        assert!(
            message.contains("column `notes` of step `crm`'s dataset holds about 4000 bytes"),
            "{message}"
        );
    }
}
