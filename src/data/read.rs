//! Reading a dataset a run wrote back: its rows in file order, all of them or the first few,
//! for `segflow data` and the HTTP API.

use std::path::{Path, PathBuf};

use datafusion::arrow::json::{ArrayWriter, WriterBuilder};
use datafusion::execution::SendableRecordBatchStream;
use datafusion::prelude::ParquetReadOptions;
use futures::StreamExt;
use serde_json::{Map, Value};

#[derive(Debug, thiserror::Error)]
pub enum ReadError {
    #[error("the dataset file {0} is gone (was the run folder cleaned up?)")]
    Gone(PathBuf),
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: datafusion::error::DataFusionError,
    },
    #[error("cannot turn the rows of {path} into JSON: {source}")]
    Json {
        path: PathBuf,
        source: datafusion::arrow::error::ArrowError,
    },
}

/// The rows of a dataset file, in the order they were written; only the first `limit` when given.
pub async fn read_dataset(
    path: &Path,
    limit: Option<usize>,
) -> Result<SendableRecordBatchStream, ReadError> {
    if !path.is_file() {
        return Err(ReadError::Gone(path.to_path_buf()));
    }
    let failed = |source| ReadError::Read {
        path: path.to_path_buf(),
        source,
    };
    let session = super::ordered_session();
    let mut frame = session
        .read_parquet(
            path.to_string_lossy().as_ref(),
            ParquetReadOptions::default(),
        )
        .await
        .map_err(failed)?;
    if let Some(n) = limit {
        frame = frame.limit(0, Some(n)).map_err(failed)?;
    }
    frame.execute_stream().await.map_err(failed)
}

/// The first `limit` rows of a dataset file as JSON objects, nulls kept as `null`.
pub async fn first_rows_json(
    path: &Path,
    limit: usize,
) -> Result<Vec<Map<String, Value>>, ReadError> {
    let mut stream = read_dataset(path, Some(limit)).await?;
    let as_json = |source| ReadError::Json {
        path: path.to_path_buf(),
        source,
    };
    let mut writer: ArrayWriter<Vec<u8>> = WriterBuilder::new()
        .with_explicit_nulls(true)
        .build(Vec::new());
    while let Some(batch) = stream.next().await {
        let batch = batch.map_err(|source| ReadError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        writer.write(&batch).map_err(as_json)?;
    }
    writer.finish().map_err(as_json)?;
    let bytes = writer.into_inner();
    if bytes.is_empty() {
        return Ok(Vec::new());
    }
    serde_json::from_slice(&bytes).map_err(|e| ReadError::Json {
        path: path.to_path_buf(),
        source: datafusion::arrow::error::ArrowError::JsonError(e.to_string()),
    })
}
