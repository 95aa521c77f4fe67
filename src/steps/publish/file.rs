//! `publish.file`: writes a dataset to a CSV, Parquet or NDJSON file in the project, through a
//! temporary file renamed into place, so a reader never sees half a file.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use async_trait::async_trait;
use datafusion::arrow::csv::WriterBuilder as CsvWriterBuilder;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::ArrowWriter;
use datafusion::parquet::basic::Compression;
use datafusion::parquet::file::properties::WriterProperties;
use futures::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;

use super::input;
use crate::spec::deserialize::FieldError;
use crate::spec::yaml_path::YamlPath;
use crate::steps::{CheckContext, Kind, StepContext, StepError, StepOutput};

pub struct PublishFile;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum FileFormat {
    Csv,
    Parquet,
    Ndjson,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// The file to write, relative to the project folder (folders are created).
    pub path: String,
    /// csv, parquet or ndjson; default: from the file's extension.
    #[serde(default)]
    pub format: Option<FileFormat>,
    /// The dataset to write: `STEP` or `STEP.NAME`; default: the only upstream step's main dataset.
    #[serde(default)]
    pub dataset: Option<String>,
    /// A SQL condition; only matching rows are written.
    #[serde(default)]
    pub filter: Option<String>,
    /// The columns to write, in this order (default: all).
    #[serde(default)]
    pub columns: Option<Vec<String>>,
    /// Replace the file when it exists (default true); false fails instead.
    #[serde(default = "default_true")]
    pub overwrite: bool,
}

fn default_true() -> bool {
    true
}

fn format_of(config: &FileConfig) -> Result<FileFormat, String> {
    if let Some(format) = config.format {
        return Ok(format);
    }
    let extension = Path::new(&config.path)
        .extension()
        .map(|e| e.to_string_lossy().to_lowercase());
    match extension.as_deref() {
        Some("csv") => Ok(FileFormat::Csv),
        Some("parquet") => Ok(FileFormat::Parquet),
        Some("ndjson" | "jsonl") => Ok(FileFormat::Ndjson),
        _ => Err(format!(
            "cannot tell the format of `{}` from its extension; set `format: csv`, `parquet` or `ndjson`",
            config.path
        )),
    }
}

#[async_trait]
impl Kind for PublishFile {
    const NAME: &'static str = "publish.file";
    const DESCRIPTION: &'static str = "Writes a dataset to a CSV, Parquet or NDJSON file (atomically: temporary file, then rename).";
    const OUTPUTS: &'static [&'static str] = &["rows", "path"];
    type Config = FileConfig;

    fn check(&self, config: &FileConfig, ctx: &CheckContext<'_>) -> Vec<FieldError> {
        let dynamic = |key: &str| {
            ctx.dynamic
                .iter()
                .any(|d| d.starts_with(&YamlPath::root().key(key)))
        };
        let error = |key: &str, message: String| FieldError {
            path: YamlPath::root().key(key),
            message,
            hint: None,
            at_key: false,
        };
        let mut errors = Vec::new();
        if config.path.trim().is_empty() {
            errors.push(error(
                "path",
                "`path` is empty; name the file to write".into(),
            ));
        } else if !dynamic("path")
            && let Err(message) = format_of(config)
        {
            errors.push(error("path", message));
        }
        if let Some(filter) = &config.filter
            && !dynamic("filter")
            && let Some(message) = input::check_filter(filter)
        {
            errors.push(error("filter", message));
        }
        if let Some(dataset) = &config.dataset
            && !dynamic("dataset")
            && let Some(message) = input::check_dataset(dataset, ctx.needs)
        {
            errors.push(error("dataset", message));
        }
        if ctx.needs.is_empty() {
            errors.push(error(
                "dataset",
                "publish.file writes an upstream dataset: add the step that makes it to `needs`"
                    .into(),
            ));
        }
        errors
    }

    async fn run(&self, config: FileConfig, ctx: &StepContext) -> Result<StepOutput, StepError> {
        let format = format_of(&config).map_err(StepError::permanent)?;
        let path = ctx.resolve_path(&config.path);
        if !config.overwrite && path.exists() {
            return Err(StepError::permanent(format!(
                "{} exists and `overwrite` is false; remove it or set `overwrite: true`",
                path.display()
            )));
        }
        let dataset = input::pick(ctx, config.dataset.as_deref())?;
        let (schema, mut stream) = input::read(ctx, &dataset, config.filter.as_deref()).await?;
        let projection: Option<Vec<usize>> = config
            .columns
            .as_ref()
            .map(|columns| {
                columns
                    .iter()
                    .map(|c| {
                        schema.index_of(c).map_err(|_| {
                            let known: Vec<&str> =
                                schema.fields().iter().map(|f| f.name().as_str()).collect();
                            StepError::permanent(format!(
                                "`columns` names `{c}`, which dataset {} does not have (its columns: {})",
                                dataset.table_name(),
                                known.join(", ")
                            ))
                        })
                    })
                    .collect::<Result<_, _>>()
            })
            .transpose()?;
        let schema: SchemaRef = match &projection {
            Some(p) => std::sync::Arc::new(schema.project(p)?),
            None => schema,
        };
        let parent = path
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_else(|| PathBuf::from("."));
        std::fs::create_dir_all(&parent).map_err(|e| {
            StepError::permanent(format!(
                "cannot create the folder {}: {e}",
                parent.display()
            ))
        })?;
        let name = path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "output".into());
        let temp = TempFile(parent.join(format!(".{name}.segflow-{}.tmp", std::process::id())));
        let file = File::create(&temp.0)
            .map_err(|e| StepError::permanent(format!("cannot write {}: {e}", temp.0.display())))?;
        let mut writer = FileWriter::new(format, file, schema)?;
        let mut rows = 0u64;
        while let Some(batch) = tokio::select! {
            _ = ctx.cancel.cancelled() => return Err(StepError::permanent("cancelled")),
            next = stream.next() => next,
        } {
            let batch = batch?;
            let batch = match &projection {
                Some(p) => batch.project(p)?,
                None => batch,
            };
            rows += batch.num_rows() as u64;
            writer.write(&batch)?;
        }
        writer.finish()?;
        std::fs::rename(&temp.0, &path).map_err(|e| {
            StepError::permanent(format!("cannot move the file into {}: {e}", path.display()))
        })?;
        ctx.info(&format!("wrote {rows} rows to {}", config.path));
        Ok(StepOutput::default()
            .with("rows", rows)
            .with("path", path.to_string_lossy().into_owned()))
    }
}

/// A temporary file removed unless it was renamed into place.
struct TempFile(PathBuf);

impl Drop for TempFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

enum FileWriter {
    Csv(datafusion::arrow::csv::Writer<BufWriter<File>>),
    Ndjson(LineDelimitedWriter<BufWriter<File>>),
    Parquet(ArrowWriter<File>),
}

impl FileWriter {
    fn new(format: FileFormat, file: File, schema: SchemaRef) -> Result<Self, StepError> {
        Ok(match format {
            FileFormat::Csv => FileWriter::Csv(
                CsvWriterBuilder::new()
                    .with_header(true)
                    .build(BufWriter::new(file)),
            ),
            FileFormat::Ndjson => {
                FileWriter::Ndjson(LineDelimitedWriter::new(BufWriter::new(file)))
            }
            FileFormat::Parquet => {
                let props = WriterProperties::builder()
                    .set_compression(Compression::SNAPPY)
                    .build();
                FileWriter::Parquet(ArrowWriter::try_new(file, schema, Some(props))?)
            }
        })
    }

    fn write(&mut self, batch: &RecordBatch) -> Result<(), StepError> {
        match self {
            FileWriter::Csv(w) => w.write(batch)?,
            FileWriter::Ndjson(w) => w.write(batch)?,
            FileWriter::Parquet(w) => w.write(batch)?,
        }
        Ok(())
    }

    /// Flushes and syncs the file to disk, so the rename publishes a complete file.
    fn finish(self) -> Result<(), StepError> {
        let file = match self {
            FileWriter::Csv(w) => w.into_inner().into_inner().map_err(|e| e.into_error())?,
            FileWriter::Ndjson(mut w) => {
                w.finish()?;
                w.into_inner().into_inner().map_err(|e| e.into_error())?
            }
            FileWriter::Parquet(w) => w.into_inner()?,
        };
        let mut file = file;
        file.flush()?;
        file.sync_all()?;
        Ok(())
    }
}
