//! One dataset: a Parquet file written atomically, and what is known of it (rows, columns).

use std::fs::File;
use std::path::{Path, PathBuf};

use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
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
    step: String,
    name: String,
    file: PathBuf,
    final_path: PathBuf,
    temp_path: PathBuf,
    writer: ArrowWriter<File>,
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
        // Run datasets are written once and read back by the next step: LZ4 without
        // dictionaries took about a sixth less CPU than Snappy with them in the data benchmark
        // (customer and transaction ids overflow a dictionary anyway), for files 37% larger.
        let props = WriterProperties::builder()
            .set_compression(Compression::LZ4_RAW)
            .set_dictionary_enabled(false)
            .build();
        let writer = ArrowWriter::try_new(out, schema.clone(), Some(props)).map_err(|source| {
            DataError::Parquet {
                path: final_path.clone(),
                source,
            }
        })?;
        Ok(DatasetWriter {
            step: step.to_string(),
            name: name.to_string(),
            file,
            final_path,
            temp_path,
            writer,
            schema,
            rows: 0,
        })
    }

    pub fn write(&mut self, batch: &RecordBatch) -> Result<(), DataError> {
        self.rows += batch.num_rows() as u64;
        self.writer
            .write(batch)
            .map_err(|source| DataError::Parquet {
                path: self.final_path.clone(),
                source,
            })
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
        let path = self.final_path.clone();
        self.writer.close().map_err(|source| DataError::Parquet {
            path: path.clone(),
            source,
        })?;
        std::fs::rename(&self.temp_path, &path).map_err(|source| DataError::Io {
            path: path.clone(),
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
