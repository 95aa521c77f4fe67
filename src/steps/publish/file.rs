//! `publish.file`: writes a dataset to a CSV, Parquet or NDJSON file in the project, through a
//! temporary file renamed into place, so a reader never sees half a file.
//!
//! The temporary file is named after the step and a random part, so two steps of one run
//! writing the same path never share it; it is synced before it is put in place, and the
//! folder after, so the new name survives a crash. With `overwrite: false` the file is put in
//! place by a hard link, which fails when the target exists — atomically, unlike a check
//! before a rename, which another writer can slip between.

use std::fs::{File, OpenOptions};
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
        // Fails early, before the rows are written; the hard link at the end is what decides.
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
        let (temp, file) = TempFile::create(&parent, &name, &ctx.step_id)?;
        let mut writer = FileWriter::new(format, file, schema)?;
        let mut rows = 0u64;
        while let Some(batch) = tokio::select! {
            _ = ctx.cancel.cancelled() => return Err(StepError::permanent("cancelled")),
            next = stream.next() => next,
        } {
            let batch = batch.map_err(|e| input::read_error(&dataset, &e))?;
            let batch = match &projection {
                Some(p) => batch.project(p)?,
                None => batch,
            };
            rows += batch.num_rows() as u64;
            writer.write(&batch)?;
        }
        writer.finish()?;
        temp.put_in_place(&path, config.overwrite)?;
        sync_folder(&parent)?;
        ctx.info(&format!("wrote {rows} rows to {}", config.path));
        Ok(StepOutput::default()
            .with("rows", rows)
            .with("path", path.to_string_lossy().into_owned()))
    }
}

/// A temporary file beside the target, removed unless it was renamed into place.
struct TempFile {
    path: PathBuf,
    /// Still to be removed.
    armed: bool,
}

impl TempFile {
    /// `.NAME.STEP-RANDOM.segflow-tmp` in `folder`, created new (never an existing file).
    fn create(folder: &Path, name: &str, step_id: &str) -> Result<(Self, File), StepError> {
        let step: String = step_id
            .chars()
            .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
            .collect();
        let path = folder.join(format!(
            ".{name}.{step}-{:016x}.segflow-tmp",
            rand::random::<u64>()
        ));
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| {
                StepError::permanent(format!(
                    "cannot create the temporary file {}: {e}; check that the folder is writable",
                    path.display()
                ))
            })?;
        Ok((TempFile { path, armed: true }, file))
    }

    /// Puts the finished file at `target`: a rename (replacing what is there), or with
    /// `overwrite: false` a hard link, which fails if `target` exists; the temporary name is
    /// removed either way.
    fn put_in_place(mut self, target: &Path, overwrite: bool) -> Result<(), StepError> {
        if overwrite {
            std::fs::rename(&self.path, target).map_err(|e| {
                StepError::permanent(format!(
                    "cannot move the file into {}: {e}",
                    target.display()
                ))
            })?;
            self.armed = false;
            return Ok(());
        }
        match std::fs::hard_link(&self.path, target) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(StepError::permanent(format!(
                    "{} exists (it appeared while this step was writing) and `overwrite` is false; remove it or set `overwrite: true`",
                    target.display()
                )))
            }
            Err(e) => Err(StepError::permanent(format!(
                "cannot create {}: {e}; `overwrite: false` puts the file in place with a hard link, which this file system may not support: set `overwrite: true` to rename it into place instead",
                target.display()
            ))),
        }
        // Dropping `self` removes the temporary name; the file stays under `target`.
    }
}

impl Drop for TempFile {
    fn drop(&mut self) {
        if self.armed {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Syncs a folder, so a file just renamed or linked into it is there after a crash.
fn sync_folder(folder: &Path) -> Result<(), StepError> {
    File::open(folder).and_then(|f| f.sync_all()).map_err(|e| {
        StepError::permanent(format!(
            "the file was written, but the folder {} could not be synced to disk: {e}",
            folder.display()
        ))
    })
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
