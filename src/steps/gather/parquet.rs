//! `gather.parquet`: reads one Parquet file or a glob of them into the step's main dataset,
//! optionally a subset of columns, with per-column type overrides.

use std::fs::File;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, BooleanArray};
use datafusion::arrow::compute::filter_record_batch;
use datafusion::arrow::datatypes::{Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ProjectionMask;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use tokio::sync::mpsc;

use super::bad_rows::{BadRow, BadRows, OnBadRows};
use super::files::{self, SourceFile};
use super::overrides::{apply_overrides, check_columns};
use super::row_json::row_as_json;
use crate::data::{ColumnType, MAIN_DATASET, cast_checked, expectation};
use crate::spec::deserialize::FieldError;
use crate::steps::streaming::{drain_producer, spawn_producer};
use crate::steps::{CheckContext, Kind, StepContext, StepError, StepOutput};

pub struct GatherParquet;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatherParquetConfig {
    /// The Parquet file, or a glob such as `exports/*.parquet` (read in name order), relative to
    /// the project folder.
    pub path: String,
    /// Only these columns, in this order (default: all).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Column types to convert to, e.g. `{ customer_id: string }`; a value that does not
    /// convert makes its row bad.
    #[serde(default)]
    pub types: IndexMap<String, ColumnType>,
    /// What to do with rows whose values do not convert (default `fail`).
    #[serde(default)]
    pub on_bad_rows: OnBadRows,
}

const BATCH_ROWS: usize = 8192;

#[async_trait]
impl Kind for GatherParquet {
    const NAME: &'static str = "gather.parquet";
    const DESCRIPTION: &'static str = "Reads Parquet files (a path or a glob) into a dataset.";
    const OUTPUTS: &'static [&'static str] = &["rows", "rejected", "files"];
    type Config = GatherParquetConfig;

    fn check(&self, config: &GatherParquetConfig, _ctx: &CheckContext<'_>) -> Vec<FieldError> {
        files::check_pattern(&config.path)
    }

    async fn run(
        &self,
        config: GatherParquetConfig,
        ctx: &StepContext,
    ) -> Result<StepOutput, StepError> {
        let sources = files::resolve(ctx, &config.path)?;
        let what = if sources.len() == 1 {
            format!("`{}`", sources[0].name)
        } else {
            format!("`{}`", config.path)
        };
        let file_schema = {
            let first = sources[0].clone();
            tokio::task::spawn_blocking(move || open(&first).map(|b| b.schema().clone()))
                .await
                .map_err(|e| StepError::permanent(format!("reading the schema stopped: {e}")))??
        };
        let selected = match &config.columns {
            Some(columns) => {
                check_columns(&file_schema, columns, "columns", &what)?;
                let fields: Vec<_> = columns
                    .iter()
                    .map(|c| {
                        file_schema
                            .field_with_name(c)
                            .expect("checked above")
                            .clone()
                    })
                    .collect();
                Schema::new(fields)
            }
            None => file_schema.as_ref().clone(),
        };
        let target = Arc::new(apply_overrides(&selected, &config.types, &what)?);
        let mut writer = ctx.dataset_writer(MAIN_DATASET, target.clone())?;
        let bad = BadRows::new(config.on_bad_rows);
        let producer = {
            let sources = sources.clone();
            let target = target.clone();
            spawn_producer(move |sender| read_files(&sources, target, bad, sender))
        };
        let bad = drain_producer(producer, &mut writer, &ctx.cancel).await?;
        let dataset = ctx.finish_dataset(writer)?;
        let rejected = bad.count();
        bad.finish(ctx)?;
        ctx.info(&format!(
            "read {} rows from {} file{}",
            dataset.rows,
            sources.len(),
            if sources.len() == 1 { "" } else { "s" }
        ));
        Ok(StepOutput::default()
            .with("rows", dataset.rows)
            .with("rejected", rejected)
            .with("files", sources.len()))
    }
}

fn open(source: &SourceFile) -> Result<ParquetRecordBatchReaderBuilder<File>, StepError> {
    let file = File::open(&source.path)
        .map_err(|e| StepError::new(format!("cannot open `{}`: {e}", source.name)))?;
    ParquetRecordBatchReaderBuilder::try_new(file).map_err(|e| {
        StepError::permanent(format!(
            "`{}` is not a readable Parquet file: {e}",
            source.name
        ))
    })
}

fn read_files(
    sources: &[SourceFile],
    target: SchemaRef,
    mut bad: BadRows,
    sender: mpsc::Sender<RecordBatch>,
) -> Result<BadRows, StepError> {
    for source in sources {
        let builder = open(source)?;
        let schema = builder.schema().clone();
        let what = format!("`{}`", source.name);
        let names: Vec<String> = target.fields().iter().map(|f| f.name().clone()).collect();
        check_columns(&schema, &names, "the first file's columns", &what)?;
        let indices: Vec<usize> = names
            .iter()
            .map(|n| schema.index_of(n).expect("checked above"))
            .collect();
        let mask = ProjectionMask::roots(builder.parquet_schema(), indices.iter().copied());
        let reader = builder
            .with_projection(mask)
            .with_batch_size(BATCH_ROWS)
            .build()
            .map_err(|e| StepError::permanent(format!("cannot read `{}`: {e}", source.name)))?;
        let mut row_base = 0u64;
        for batch in reader {
            let batch = batch
                .map_err(|e| StepError::permanent(format!("cannot read `{}`: {e}", source.name)))?;
            let rows = batch.num_rows();
            let converted = convert(&batch, &target, source, row_base, &mut bad)?;
            row_base += rows as u64;
            if converted.num_rows() > 0 && sender.blocking_send(converted).is_err() {
                return Ok(bad);
            }
        }
    }
    Ok(bad)
}

/// The batch in the target's column order and types; rows with values that do not convert go
/// to `bad`.
fn convert(
    batch: &RecordBatch,
    target: &SchemaRef,
    source: &SourceFile,
    row_base: u64,
    bad: &mut BadRows,
) -> Result<RecordBatch, StepError> {
    let mut reasons: Vec<Option<String>> = vec![None; batch.num_rows()];
    let mut columns: Vec<ArrayRef> = Vec::with_capacity(target.fields().len());
    for field in target.fields() {
        let column = batch
            .column_by_name(field.name())
            .expect("projected by name");
        let checked = cast_checked(column, field.data_type())?;
        for (row, failed) in checked.failed.iter().enumerate() {
            if failed == Some(true) && reasons[row].is_none() {
                reasons[row] = Some(format!(
                    "column `{}`: expected {}",
                    field.name(),
                    expectation(field.data_type())
                ));
            }
        }
        columns.push(checked.array);
    }
    let converted = RecordBatch::try_new(target.clone(), columns)?;
    if reasons.iter().all(Option::is_none) {
        return Ok(converted);
    }
    for (row, reason) in reasons.iter().enumerate() {
        if let Some(reason) = reason {
            bad.add(BadRow {
                file: source.name.clone(),
                line: row_base + row as u64 + 1,
                reason: reason.clone(),
                record: row_as_json(batch, row),
            })?;
        }
    }
    let keep: BooleanArray = reasons.iter().map(|r| Some(r.is_none())).collect();
    Ok(filter_record_batch(&converted, &keep)?)
}
