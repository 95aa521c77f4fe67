//! Writing an in-memory dataset with each row group's columns encoded on every core.
//!
//! `ArrowWriter` encodes one column after another on the calling thread. A step that holds its
//! whole result in memory (clean, the segmentations) writes it at the end, often when nothing
//! else runs, so one core would sit idle. The columns of a row group are independent: each is
//! encoded by its own `ArrowColumnWriter`, the fields shared out to one thread per core, and the chunks are then
//! appended in column order. Row groups are cut at the same rows and each column writer gets
//! the same slices as `ArrowWriter` would give it, so the file is byte for byte the same.

use std::fs::File;

use datafusion::arrow::array::new_empty_array;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::arrow::arrow_writer::{
    ArrowColumnChunk, ArrowColumnWriter, ArrowRowGroupWriterFactory, compute_leaves,
};
use datafusion::parquet::errors::ParquetError;

use super::parallel::map_each;

/// Writes `batches` (all of `schema`) through `writer`, which must have nothing buffered, and
/// closes the file. Row groups are cut by rows; run datasets set no byte limit, whose cuts
/// would depend on the encoded sizes as they grow.
pub fn write_and_close(
    writer: ArrowWriter<File>,
    schema: &SchemaRef,
    batches: &[RecordBatch],
) -> Result<(), ParquetError> {
    let (mut file, factory) = writer.into_serialized_writer()?;
    let properties = file.properties().clone();
    if properties.max_row_group_bytes().is_some() {
        return Err(ParquetError::General(
            "row groups limited by bytes cannot be encoded column by column".into(),
        ));
    }
    let max_rows = properties.max_row_group_row_count().unwrap_or(usize::MAX);
    let leaves = leaves_per_field(schema)?;
    for (index, group) in row_groups(batches, max_rows).iter().enumerate() {
        let chunks = encode_row_group(&factory, index, schema, &leaves, group)?;
        let mut row_group = file.next_row_group()?;
        for chunk in chunks {
            chunk.append_to_row_group(&mut row_group)?;
        }
        row_group.close()?;
    }
    file.close()?;
    Ok(())
}

/// How many Parquet leaf columns each field is written as (one, unless it is nested).
fn leaves_per_field(schema: &SchemaRef) -> Result<Vec<usize>, ParquetError> {
    schema
        .fields()
        .iter()
        .map(|field| Ok(compute_leaves(field, &new_empty_array(field.data_type()))?.len()))
        .collect()
}

/// The batches cut into row groups of at most `max_rows` rows, as `ArrowWriter` cuts them: each
/// row group is the slices of the batches it covers, in order. Empty batches are skipped.
fn row_groups(batches: &[RecordBatch], max_rows: usize) -> Vec<Vec<RecordBatch>> {
    let mut groups = Vec::new();
    let mut current: Vec<RecordBatch> = Vec::new();
    let mut buffered = 0;
    for batch in batches {
        let mut offset = 0;
        while offset < batch.num_rows() {
            let take = (batch.num_rows() - offset).min(max_rows - buffered);
            current.push(batch.slice(offset, take));
            buffered += take;
            offset += take;
            if buffered == max_rows {
                groups.push(std::mem::take(&mut current));
                buffered = 0;
            }
        }
    }
    if !current.is_empty() {
        groups.push(current);
    }
    groups
}

/// One row group's column chunks, in column order, the fields encoded on every core.
fn encode_row_group(
    factory: &ArrowRowGroupWriterFactory,
    index: usize,
    schema: &SchemaRef,
    leaves: &[usize],
    slices: &[RecordBatch],
) -> Result<Vec<ArrowColumnChunk>, ParquetError> {
    // Each field with its writers (one per leaf column).
    let mut writers = factory.create_column_writers(index)?.into_iter();
    let fields: Vec<Vec<ArrowColumnWriter>> = leaves
        .iter()
        .map(|n| writers.by_ref().take(*n).collect())
        .collect();
    let encoded = map_each(fields, |field, mut writers| {
        let arrow_field = schema.field(field);
        for slice in slices {
            let leaves = compute_leaves(arrow_field, slice.column(field))?;
            for (writer, leaf) in writers.iter_mut().zip(&leaves) {
                writer.write(leaf)?;
            }
        }
        writers
            .into_iter()
            .map(ArrowColumnWriter::close)
            .collect::<Result<Vec<_>, ParquetError>>()
    });
    let mut chunks = Vec::new();
    for field in encoded {
        chunks.extend(field?);
    }
    Ok(chunks)
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, Float64Array, Int64Array, ListArray, StringArray, StructArray,
    };
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};
    use datafusion::parquet::basic::Encoding;
    use datafusion::parquet::file::properties::WriterProperties;

    use super::*;
    use crate::data::{DatasetWriter, MAIN_DATASET};

    /// `rows` rows of flat and nested columns, with nulls.
    fn batch(first: i64, rows: i64) -> RecordBatch {
        let ids: Vec<i64> = (first..first + rows).collect();
        let id: ArrayRef = Arc::new(Int64Array::from(ids.clone()));
        let name: ArrayRef = Arc::new(StringArray::from_iter(
            ids.iter().map(|i| (i % 5 != 0).then(|| format!("n{i}"))),
        ));
        let amount: ArrayRef = Arc::new(Float64Array::from_iter(
            ids.iter().map(|i| (i % 7 != 0).then(|| *i as f64 / 3.0)),
        ));
        let tags: ArrayRef = Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(
            ids.iter()
                .map(|i| (i % 3 != 0).then(|| (0..i % 4).map(Some).collect::<Vec<_>>())),
        ));
        let place: ArrayRef = Arc::new(StructArray::from(vec![
            (
                Arc::new(Field::new("zip", DataType::Int64, true)),
                id.clone(),
            ),
            (
                Arc::new(Field::new("city", DataType::Utf8, true)),
                name.clone(),
            ),
        ]));
        RecordBatch::try_from_iter(vec![
            ("id", id),
            ("name", name),
            ("amount", amount),
            ("tags", tags),
            ("place", place),
        ])
        .unwrap()
    }

    fn file_bytes(
        batches: &[RecordBatch],
        properties: &WriterProperties,
        parallel: bool,
    ) -> Vec<u8> {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("d.parquet");
        let schema = batches[0].schema();
        let mut writer = ArrowWriter::try_new(
            File::create(&path).unwrap(),
            schema.clone(),
            Some(properties.clone()),
        )
        .unwrap();
        if parallel {
            write_and_close(writer, &schema, batches).unwrap();
        } else {
            for batch in batches {
                writer.write(batch).unwrap();
            }
            writer.close().unwrap();
        }
        std::fs::read(path).unwrap()
    }

    #[test]
    fn columns_encoded_in_parallel_give_the_file_the_serial_writer_gives() {
        // Row groups of 1,000 rows cut through batches of 700, 1,300, 0, 2,000 and 1 rows, and
        // pages of 128 rows, so that slices and page breaks both fall inside batches.
        let batches = vec![
            batch(0, 700),
            batch(700, 1300),
            batch(2000, 0),
            batch(2000, 2000),
            batch(4000, 1),
        ];
        let properties = WriterProperties::builder()
            .set_max_row_group_row_count(Some(1000))
            .set_data_page_row_count_limit(128)
            .set_write_batch_size(64)
            .set_dictionary_enabled(false)
            .set_column_encoding("id".into(), Encoding::DELTA_BINARY_PACKED)
            .build();
        let serial = file_bytes(&batches, &properties, false);
        let parallel = file_bytes(&batches, &properties, true);
        assert_eq!(row_groups(&batches, 1000).len(), 5);
        assert!(serial == parallel, "the two files differ");
    }

    #[test]
    fn a_dataset_written_whole_is_the_one_written_batch_by_batch() {
        let batches = vec![batch(0, 3000), batch(3000, 5)];
        let schema = batches[0].schema();
        let run = tempfile::tempdir().unwrap();
        let mut serial =
            DatasetWriter::create(run.path(), "serial", MAIN_DATASET, schema.clone()).unwrap();
        for b in &batches {
            serial.write(b).unwrap();
        }
        let serial = serial.finish().unwrap();
        let whole = DatasetWriter::create(run.path(), "whole", MAIN_DATASET, schema.clone())
            .unwrap()
            .write_all_and_finish(&batches)
            .unwrap();
        assert_eq!(whole.rows, 3005);
        assert_eq!(whole.columns, serial.columns);
        let bytes = |d: &crate::data::DatasetRef| std::fs::read(d.path(run.path())).unwrap();
        assert!(bytes(&whole) == bytes(&serial), "the two files differ");
        // Nothing is left under a temporary name.
        assert!(!run.path().join("whole/main.parquet.tmp").exists());
    }

    #[test]
    fn an_empty_dataset_is_a_file_with_no_row_group() {
        let schema = Arc::new(Schema::new(vec![Field::new("id", DataType::Int64, true)]));
        let run = tempfile::tempdir().unwrap();
        let dataset = DatasetWriter::create(run.path(), "s", MAIN_DATASET, schema)
            .unwrap()
            .write_all_and_finish(&[])
            .unwrap();
        assert_eq!(dataset.rows, 0);
        let file = File::open(dataset.path(run.path())).unwrap();
        let reader =
            datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(
                file,
            )
            .unwrap();
        assert_eq!(reader.metadata().num_row_groups(), 0);
    }
}
