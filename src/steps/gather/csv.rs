//! `gather.csv`: reads one CSV file or a glob of them into the step's main dataset.
//!
//! Column types are guessed from the first rows (`infer_rows`) and can be set per column
//! (`types`). The fast reader decodes pieces of the files on every core and writes them in file
//! order (or, when the files hold quotes, streams them); when it meets a row that does not fit,
//! the careful reader reads them again row by row and applies `on_bad_rows`.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::prelude::{CsvReadOptions, SessionConfig, SessionContext};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;

use super::bad_rows::{BadRows, OnBadRows};
use super::csv_checked::read_checked;
use super::csv_infer::{CsvFormat, infer_schema, read_names};
use super::csv_pieces::copy_in_pieces;
use super::files::{self, SourceFile};
use super::overrides::{apply_overrides, unknown_type_columns};
use crate::data::{Column, ColumnType, MAIN_DATASET};
use crate::spec::deserialize::FieldError;
use crate::spec::yaml_path::YamlPath;
use crate::steps::streaming::{copy_stream, drain_producer, spawn_producer};
use crate::steps::{CheckContext, Kind, StepContext, StepError, StepOutput};

pub struct GatherCsv;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatherCsvConfig {
    /// The CSV file, or a glob such as `data/orders-*.csv` (files read in name order), relative
    /// to the project folder.
    pub path: String,
    /// Whether the first line names the columns (default true). Without a header the columns
    /// are `column_1`, `column_2`, …
    #[serde(default = "default_true")]
    pub header: bool,
    /// The field separator (default `,`), one ASCII character such as `;` or `\t`.
    #[serde(default = "default_delimiter")]
    pub delimiter: char,
    /// Column types that override the guessed ones, e.g. `{ customer_id: string, amount: float }`.
    #[serde(default)]
    pub types: IndexMap<String, ColumnType>,
    /// How many rows the column types are guessed from (default 10000).
    #[serde(default = "default_infer_rows")]
    #[schemars(range(min = 1))]
    pub infer_rows: usize,
    /// What to do with rows that cannot be read (default `fail`).
    #[serde(default)]
    pub on_bad_rows: OnBadRows,
}

fn default_true() -> bool {
    true
}

fn default_delimiter() -> char {
    ','
}

fn default_infer_rows() -> usize {
    10_000
}

impl GatherCsvConfig {
    /// The file format; the delimiter must have been checked to be ASCII.
    fn format(&self) -> CsvFormat {
        CsvFormat {
            header: self.header,
            delimiter: self.delimiter as u8,
        }
    }
}

#[async_trait]
impl Kind for GatherCsv {
    const NAME: &'static str = "gather.csv";
    const DESCRIPTION: &'static str = "Reads CSV files (a path or a glob) into a dataset; bad rows fail, are skipped or quarantined.";
    const OUTPUTS: &'static [&'static str] = &["rows", "rejected", "files"];
    type Config = GatherCsvConfig;

    fn check(&self, config: &GatherCsvConfig, ctx: &CheckContext<'_>) -> Vec<FieldError> {
        let mut errors = files::check_pattern(&config.path);
        // When the file is there, a column in `types` that its header lacks is caught now.
        if config.delimiter.is_ascii()
            && let Some(source) = files::first_match(ctx.base_dir, &config.path)
            && let Ok(schema) = infer_schema(&source, config.format(), 100)
        {
            errors.extend(unknown_type_columns(
                &schema,
                &config.types,
                &format!("`{}`", source.name),
            ));
        }
        if !config.delimiter.is_ascii() || config.delimiter == '"' || config.delimiter == '\n' {
            errors.push(FieldError {
                path: YamlPath::root().key("delimiter"),
                message:
                    "the delimiter must be one ASCII character other than a quote or a newline"
                        .into(),
                hint: Some("for tabs write `delimiter: \"\\t\"`".into()),
                at_key: false,
            });
        }
        errors
    }

    /// The header and the first rows give the columns before the run (with `types` applied),
    /// so `segflow validate` can check downstream steps against them.
    fn output_columns(
        &self,
        config: &GatherCsvConfig,
        ctx: &CheckContext<'_>,
    ) -> Option<Vec<Column>> {
        if !config.delimiter.is_ascii() {
            return None;
        }
        let source = files::first_match(ctx.base_dir, &config.path)?;
        let format = config.format();
        let schema = infer_schema(&source, format, config.infer_rows.min(1000)).ok()?;
        let schema = apply_overrides(&schema, &config.types, &source.name).ok()?;
        Some(crate::data::columns_of(&Arc::new(schema)))
    }

    async fn run(
        &self,
        config: GatherCsvConfig,
        ctx: &StepContext,
    ) -> Result<StepOutput, StepError> {
        if !config.delimiter.is_ascii() {
            return Err(StepError::permanent(
                "the delimiter must be a single ASCII character",
            ));
        }
        let format = config.format();
        let sources = files::resolve(ctx, &config.path)?;
        let schema = {
            let sources = sources.clone();
            let rows = config.infer_rows;
            tokio::task::spawn_blocking(move || schema_of(&sources, format, rows))
                .await
                .map_err(|e| StepError::permanent(format!("schema inference stopped: {e}")))??
        };
        let what = if sources.len() == 1 {
            format!("`{}`", sources[0].name)
        } else {
            format!("`{}`", config.path)
        };
        let schema = Arc::new(apply_overrides(&schema, &config.types, &what)?);

        let mut writer = ctx.dataset_writer(MAIN_DATASET, schema.clone())?;
        let fast = match copy_in_pieces(&sources, &schema, format, &mut writer, &ctx.cancel).await {
            Ok(true) => Ok(()),
            Ok(false) => {
                // A quote: values may span lines, so the files are read in one stream.
                writer = ctx.dataset_writer(MAIN_DATASET, schema.clone())?;
                match stream_read(&sources, &schema, format).await {
                    Ok(stream) => copy_stream(stream, &mut writer, &ctx.cancel).await,
                    Err(e) => Err(e),
                }
            }
            Err(e) => Err(e),
        };
        let bad = match fast {
            Ok(()) => BadRows::new(config.on_bad_rows),
            Err(_) if ctx.cancel.is_cancelled() => return Err(crate::steps::streaming::cancelled()),
            Err(_) => {
                ctx.info("a row did not fit the columns; reading again row by row");
                drop(writer);
                writer = ctx.dataset_writer(MAIN_DATASET, schema.clone())?;
                let bad = BadRows::new(config.on_bad_rows);
                let producer = {
                    let sources = sources.clone();
                    let schema = schema.clone();
                    spawn_producer(move |sender| {
                        read_checked(&sources, schema, format, bad, sender)
                    })
                };
                drain_producer(producer, &mut writer, &ctx.cancel)
                    .await
                    .map_err(|e| with_type_hint(e, &schema, &config))?
            }
        };
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

/// A value that did not fit a guessed type: say so, and how to choose the type.
fn with_type_hint(
    mut error: StepError,
    schema: &datafusion::arrow::datatypes::Schema,
    config: &GatherCsvConfig,
) -> StepError {
    let guessed = schema.fields().iter().find(|f| {
        !config.types.contains_key(f.name())
            && error
                .message
                .contains(&format!("column `{}`: expected", f.name()))
    });
    if let Some(field) = guessed {
        error.message.push_str(&format!(
            " (the type of `{0}` was guessed from the first {1} rows; set `types: {{ {0}: string }}` or another type to choose it)",
            field.name(),
            config.infer_rows
        ));
    }
    error
}

/// The first file's schema; every other file must have the same header.
fn schema_of(
    sources: &[SourceFile],
    format: CsvFormat,
    rows: usize,
) -> Result<datafusion::arrow::datatypes::Schema, StepError> {
    let schema = infer_schema(&sources[0], format, rows)?;
    if format.header {
        for other in &sources[1..] {
            let names = read_names(other, format)?;
            let expected: Vec<&String> = schema.fields().iter().map(|f| f.name()).collect();
            if names.iter().collect::<Vec<_>>() != expected {
                return Err(StepError::permanent(format!(
                    "`{}` has the columns {} but `{}` has {}; files read together must share one header",
                    other.name,
                    names.join(", "),
                    sources[0].name,
                    expected
                        .iter()
                        .map(|s| s.as_str())
                        .collect::<Vec<_>>()
                        .join(", ")
                )));
            }
        }
    }
    Ok(schema)
}

/// DataFusion's CSV reader over the files in order, one partition so rows keep the files' order.
async fn stream_read(
    sources: &[SourceFile],
    schema: &datafusion::arrow::datatypes::Schema,
    format: CsvFormat,
) -> Result<datafusion::physical_plan::SendableRecordBatchStream, StepError> {
    let session = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    let paths: Vec<String> = sources
        .iter()
        .map(|s| s.path.to_string_lossy().into_owned())
        .collect();
    let options = CsvReadOptions::new()
        .has_header(format.header)
        .delimiter(format.delimiter)
        .schema(schema)
        .file_extension("");
    let frame = session.read_csv(paths, options).await?;
    Ok(frame.execute_stream().await?)
}
