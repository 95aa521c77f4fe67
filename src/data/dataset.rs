//! One dataset: a Parquet file written atomically, and what is known of it (rows, columns).

use std::fs::File;
use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::{Compression, Encoding};
use datafusion::parquet::file::properties::{EnabledStatistics, WriterProperties};
use datafusion::parquet::schema::types::ColumnPath;
use futures::StreamExt;
use serde::{Deserialize, Serialize};

/// The dataset a step hands downstream by default; others have names of their own (`rejected`).
pub const MAIN_DATASET: &str = "main";

#[derive(Debug, thiserror::Error)]
pub enum DataError {
    #[error("cannot write dataset {path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("cannot write dataset {path}: {source}")]
    Parquet {
        path: PathBuf,
        source: datafusion::parquet::errors::ParquetError,
    },
    #[error(transparent)]
    DataFusion(#[from] datafusion::error::DataFusionError),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Column {
    pub name: String,
    pub data_type: String,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct DatasetRef {
    /// The step that wrote it.
    pub step: String,
    pub name: String,
    /// The Parquet file, relative to the run folder.
    pub file: PathBuf,
    pub rows: u64,
    pub columns: Vec<Column>,
}

impl DatasetRef {
    pub fn path(&self, run_dir: &Path) -> PathBuf {
        run_dir.join(&self.file)
    }

    /// The SQL name the dataset goes by downstream: the step id for the main dataset,
    /// `step.name` for the others.
    pub fn table_name(&self) -> String {
        if self.name == MAIN_DATASET {
            self.step.clone()
        } else {
            format!("{}.{}", self.step, self.name)
        }
    }
}

/// Writes record batches to `<run>/<step>/<name>.parquet` through a temporary file, so a reader
/// never sees half a dataset.
pub struct DatasetWriter {
    writer: ArrowWriter<File>,
    target: Target,
}

/// Where a dataset goes and what it holds so far.
struct Target {
    step: String,
    name: String,
    file: PathBuf,
    final_path: PathBuf,
    temp_path: PathBuf,
    schema: SchemaRef,
    rows: u64,
}

impl DatasetWriter {
    pub fn create(
        run_dir: &Path,
        step: &str,
        name: &str,
        schema: SchemaRef,
    ) -> Result<Self, DataError> {
        let file = PathBuf::from(step).join(format!("{name}.parquet"));
        let final_path = run_dir.join(&file);
        let temp_path = final_path.with_extension("parquet.tmp");
        let io_err = |source| DataError::Io {
            path: final_path.clone(),
            source,
        };
        std::fs::create_dir_all(final_path.parent().expect("dataset files sit in a folder"))
            .map_err(io_err)?;
        let out = File::create(&temp_path).map_err(io_err)?;
        let writer =
            ArrowWriter::try_new(out, schema.clone(), Some(run_dataset_properties(&schema)))
                .map_err(|source| DataError::Parquet {
                    path: final_path.clone(),
                    source,
                })?;
        Ok(DatasetWriter {
            writer,
            target: Target {
                step: step.to_string(),
                name: name.to_string(),
                file,
                final_path,
                temp_path,
                schema,
                rows: 0,
            },
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), DataError> {
        self.target.rows += batch.num_rows() as u64;
        self.writer
            .write(batch)
            .map_err(|source| self.target.parquet_error(source))
    }

    /// Writes every batch of a DataFusion stream.
    pub async fn write_stream(
        &mut self,
        mut stream: datafusion::physical_plan::SendableRecordBatchStream,
    ) -> Result<(), DataError> {
        while let Some(batch) = stream.next().await {
            self.write(&batch?)?;
        }
        Ok(())
    }

    pub fn finish(self) -> Result<DatasetRef, DataError> {
        let DatasetWriter { writer, target } = self;
        writer
            .close()
            .map_err(|source| target.parquet_error(source))?;
        target.publish()
    }

    /// Writes a whole in-memory dataset, each row group's columns encoded on every core, and
    /// finishes it. The file is the one `write` and `finish` would give, byte for byte.
    pub fn write_all_and_finish(self, batches: &[RecordBatch]) -> Result<DatasetRef, DataError> {
        let DatasetWriter { writer, mut target } = self;
        target.rows += batches.iter().map(|b| b.num_rows() as u64).sum::<u64>();
        super::column_encode::write_and_close(writer, &target.schema, batches)
            .map_err(|source| target.parquet_error(source))?;
        target.publish()
    }
}

impl Target {
    fn parquet_error(&self, source: datafusion::parquet::errors::ParquetError) -> DataError {
        DataError::Parquet {
            path: self.final_path.clone(),
            source,
        }
    }

    /// Gives the complete file its final name, so readers see it whole or not at all.
    fn publish(self) -> Result<DatasetRef, DataError> {
        std::fs::rename(&self.temp_path, &self.final_path).map_err(|source| DataError::Io {
            path: self.final_path.clone(),
            source,
        })?;
        Ok(DatasetRef {
            step: self.step,
            name: self.name,
            file: self.file,
            rows: self.rows,
            columns: columns_of(&self.schema),
        })
    }
}

/// How run datasets are encoded. They are written once and read back by the next step, so
/// what counts is the CPU to write and read them, then their size. No dictionaries (customer and
/// transaction ids overflow one anyway); whole numbers, dates and times delta-encoded, which
/// makes sequential ids and small counts nearly free without a compressor; floats plain and
/// uncompressed (LZ4 gains almost nothing on them); text as one run of bytes after its
/// delta-encoded lengths, uncompressed: LZ4 halved the benchmark's 10,000,000 customer ids but
/// was a tenth of the whole run's CPU, and the lengths alone save a third of plain encoding.
fn run_dataset_properties(schema: &SchemaRef) -> WriterProperties {
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::LZ4_RAW)
        .set_dictionary_enabled(false);
    for field in schema.fields() {
        let column = ColumnPath::from(field.name().as_str());
        let (encoding, compression) = match field.data_type() {
            t if t.is_integer()
                || matches!(
                    t,
                    DataType::Date32 | DataType::Date64 | DataType::Timestamp(_, _)
                ) =>
            {
                (Encoding::DELTA_BINARY_PACKED, Compression::UNCOMPRESSED)
            }
            DataType::Float32 | DataType::Float64 => (Encoding::PLAIN, Compression::UNCOMPRESSED),
            DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View => {
                // Min and max of text cost a comparison per value and prune nothing in
                // unsorted customer data.
                builder =
                    builder.set_column_statistics_enabled(column.clone(), EnabledStatistics::None);
                (Encoding::DELTA_LENGTH_BYTE_ARRAY, Compression::UNCOMPRESSED)
            }
            _ => continue,
        };
        builder = builder
            .set_column_encoding(column.clone(), encoding)
            .set_column_compression(column, compression);
    }
    builder.build()
}

pub fn columns_of(schema: &SchemaRef) -> Vec<Column> {
    schema
        .fields()
        .iter()
        .map(|f| Column {
            name: f.name().clone(),
            data_type: f.data_type().to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use datafusion::arrow::array::{
        ArrayRef, BooleanArray, Date32Array, Float64Array, Int8Array, Int64Array, StringArray,
        TimestampMicrosecondArray, UInt64Array,
    };
    use datafusion::arrow::datatypes::{Field, Schema};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    #[test]
    fn every_column_type_reads_back_as_written_whatever_its_encoding() {
        let columns: Vec<(&str, ArrayRef)> = vec![
            (
                "small",
                Arc::new(Int8Array::from(vec![Some(-128), None, Some(127), Some(0)])),
            ),
            (
                "id",
                Arc::new(Int64Array::from(vec![i64::MIN, i64::MAX, -1, i64::MIN])),
            ),
            (
                "count",
                Arc::new(UInt64Array::from(vec![u64::MAX, 0, u64::MAX, 1])),
            ),
            (
                "day",
                Arc::new(Date32Array::from(vec![
                    Some(-719_162),
                    Some(2_932_896),
                    None,
                    Some(0),
                ])),
            ),
            (
                "at",
                Arc::new(
                    TimestampMicrosecondArray::from(vec![Some(i64::MAX), None, Some(-1), Some(0)])
                        .with_timezone("Europe/Berlin"),
                ),
            ),
            (
                "amount",
                Arc::new(Float64Array::from(vec![f64::NAN, -0.0, f64::INFINITY, 1.5])),
            ),
            (
                "name",
                Arc::new(StringArray::from(vec![
                    Some("ann"),
                    None,
                    Some(""),
                    Some("é"),
                ])),
            ),
            (
                "vip",
                Arc::new(BooleanArray::from(vec![
                    Some(true),
                    None,
                    Some(false),
                    Some(true),
                ])),
            ),
        ];
        let schema = Arc::new(Schema::new(
            columns
                .iter()
                .map(|(name, array)| Field::new(*name, array.data_type().clone(), true))
                .collect::<Vec<_>>(),
        ));
        let batch = RecordBatch::try_new(
            schema.clone(),
            columns.into_iter().map(|(_, array)| array).collect(),
        )
        .unwrap();
        let run = tempfile::tempdir().unwrap();
        let mut writer =
            DatasetWriter::create(run.path(), "step", MAIN_DATASET, schema.clone()).unwrap();
        writer.write(&batch).unwrap();
        writer.write(&batch).unwrap();
        let dataset = writer.finish().unwrap();
        assert_eq!(dataset.rows, 8);

        let file = File::open(dataset.path(run.path())).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file).unwrap();
        assert_eq!(reader.schema(), &schema);
        let read: Vec<RecordBatch> = reader.build().unwrap().map(Result::unwrap).collect();
        let read = datafusion::arrow::compute::concat_batches(&schema, &read).unwrap();
        let twice = datafusion::arrow::compute::concat_batches(&schema, [&batch, &batch]).unwrap();
        // NaN is not equal to itself, so compare the bits of the floats and the rest as arrays.
        for (index, field) in schema.fields().iter().enumerate() {
            if field.name() == "amount" {
                let bits = |b: &RecordBatch| -> Vec<u64> {
                    b.column(index)
                        .as_any()
                        .downcast_ref::<Float64Array>()
                        .unwrap()
                        .values()
                        .iter()
                        .map(|v| v.to_bits())
                        .collect()
                };
                assert_eq!(bits(&read), bits(&twice));
            } else {
                assert_eq!(read.column(index), twice.column(index), "{}", field.name());
            }
        }
    }
}
