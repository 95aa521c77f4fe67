//! `gather.json`: reads newline-delimited JSON (one object per line) from a file or a glob into
//! the step's main dataset. Column types come from the first lines (`infer_rows`) and can be
//! set per column (`types`); lines that are not JSON objects, or whose values do not fit their
//! column, follow `on_bad_rows`.

use std::fs::File;
use std::io::{BufRead, BufReader};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::ReaderBuilder;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::{JsonReadOptions, SessionConfig, SessionContext};
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};
use tokio::sync::mpsc;

use super::bad_rows::{BadRow, BadRows, OnBadRows};
use super::files::{self, SourceFile};
use super::overrides::apply_overrides;
use crate::data::{ColumnType, MAIN_DATASET, expectation};
use crate::spec::deserialize::FieldError;
use crate::steps::streaming::{cancelled, copy_stream, drain_producer, spawn_producer};
use crate::steps::{CheckContext, Kind, StepContext, StepError, StepOutput};

pub struct GatherJson;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatherJsonConfig {
    /// The NDJSON file (one JSON object per line), or a glob such as `events/*.ndjson` (read in
    /// name order), relative to the project folder.
    pub path: String,
    /// Column types that override the guessed ones, e.g. `{ signed_up: date }`.
    #[serde(default)]
    pub types: IndexMap<String, ColumnType>,
    /// How many lines the columns and their types are guessed from (default 10000).
    #[serde(default = "default_infer_rows")]
    #[schemars(range(min = 1))]
    pub infer_rows: usize,
    /// What to do with lines that cannot be read (default `fail`).
    #[serde(default)]
    pub on_bad_rows: OnBadRows,
}

fn default_infer_rows() -> usize {
    10_000
}

const BATCH_ROWS: usize = 8192;

#[async_trait]
impl Kind for GatherJson {
    const NAME: &'static str = "gather.json";
    const DESCRIPTION: &'static str =
        "Reads newline-delimited JSON files (a path or a glob) into a dataset.";
    const OUTPUTS: &'static [&'static str] = &["rows", "rejected", "files"];
    type Config = GatherJsonConfig;

    fn check(&self, config: &GatherJsonConfig, _ctx: &CheckContext<'_>) -> Vec<FieldError> {
        files::check_pattern(&config.path)
    }

    async fn run(
        &self,
        config: GatherJsonConfig,
        ctx: &StepContext,
    ) -> Result<StepOutput, StepError> {
        let sources = files::resolve(ctx, &config.path)?;
        let what = if sources.len() == 1 {
            format!("`{}`", sources[0].name)
        } else {
            format!("`{}`", config.path)
        };
        let inferred = {
            let sources = sources.clone();
            let rows = config.infer_rows;
            tokio::task::spawn_blocking(move || infer_schema(&sources, rows))
                .await
                .map_err(|e| StepError::permanent(format!("schema inference stopped: {e}")))??
        };
        let schema = Arc::new(apply_overrides(&inferred, &config.types, &what)?);

        let mut writer = ctx.dataset_writer(MAIN_DATASET, schema.clone())?;
        let fast = match fast_read(&sources, &schema).await {
            Ok(stream) => copy_stream(stream, &mut writer, &ctx.cancel).await,
            Err(e) => Err(e),
        };
        let bad = match fast {
            Ok(()) => BadRows::new(config.on_bad_rows),
            Err(_) if ctx.cancel.is_cancelled() => return Err(cancelled()),
            Err(_) => {
                ctx.info("a line did not fit the columns; reading again line by line");
                drop(writer);
                writer = ctx.dataset_writer(MAIN_DATASET, schema.clone())?;
                let bad = BadRows::new(config.on_bad_rows);
                let producer = {
                    let sources = sources.clone();
                    let schema = schema.clone();
                    spawn_producer(move |sender| read_checked(&sources, schema, bad, sender))
                };
                drain_producer(producer, &mut writer, &ctx.cancel).await?
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

/// Columns in the order their keys first appear, with types Arrow infers from the first lines.
fn infer_schema(sources: &[SourceFile], rows: usize) -> Result<Schema, StepError> {
    let mut objects: Vec<Value> = Vec::new();
    let mut order: IndexMap<String, ()> = IndexMap::new();
    'files: for source in sources {
        let reader = BufReader::new(open(source)?);
        for line in reader.split(b'\n') {
            if objects.len() >= rows {
                break 'files;
            }
            let line =
                line.map_err(|e| StepError::new(format!("cannot read `{}`: {e}", source.name)))?;
            if let Ok(Value::Object(map)) = serde_json::from_slice::<Value>(&line) {
                for key in map.keys() {
                    order.entry(key.clone()).or_insert(());
                }
                objects.push(Value::Object(map));
            }
        }
    }
    if objects.is_empty() {
        return Err(StepError::permanent(format!(
            "`{}` has no JSON object in its first {rows} lines; gather.json reads one object per line (NDJSON)",
            sources[0].name
        )));
    }
    let inferred = datafusion::arrow::json::reader::infer_json_schema_from_iterator(
        objects.iter().map(Ok::<_, ArrowError>),
    )?;
    let fields: Vec<Field> = order
        .keys()
        .filter_map(|name| inferred.field_with_name(name).ok())
        .map(|f| f.clone().with_nullable(true))
        .collect();
    Ok(Schema::new(fields))
}

fn open(source: &SourceFile) -> Result<File, StepError> {
    File::open(&source.path)
        .map_err(|e| StepError::new(format!("cannot open `{}`: {e}", source.name)))
}

/// DataFusion's NDJSON reader over the files in order (one partition keeps the order).
async fn fast_read(
    sources: &[SourceFile],
    schema: &Schema,
) -> Result<datafusion::physical_plan::SendableRecordBatchStream, StepError> {
    let session = SessionContext::new_with_config(SessionConfig::new().with_target_partitions(1));
    let paths: Vec<String> = sources
        .iter()
        .map(|s| s.path.to_string_lossy().into_owned())
        .collect();
    let options = JsonReadOptions::default().schema(schema).file_extension("");
    let frame = session.read_json(paths, options).await?;
    Ok(frame.execute_stream().await?)
}

/// Line by line: good objects become batches, the rest goes to `bad`.
fn read_checked(
    sources: &[SourceFile],
    schema: SchemaRef,
    mut bad: BadRows,
    sender: mpsc::Sender<RecordBatch>,
) -> Result<BadRows, StepError> {
    for source in sources {
        let reader = BufReader::new(open(source)?);
        let mut pending: Vec<(Map<String, Value>, u64, String)> = Vec::with_capacity(BATCH_ROWS);
        for (index, line) in reader.split(b'\n').enumerate() {
            let line =
                line.map_err(|e| StepError::new(format!("cannot read `{}`: {e}", source.name)))?;
            let number = index as u64 + 1;
            if line.iter().all(u8::is_ascii_whitespace) {
                continue;
            }
            let raw = || String::from_utf8_lossy(&line).trim_end().to_string();
            match serde_json::from_slice::<Value>(&line) {
                Ok(Value::Object(map)) => pending.push((map, number, raw())),
                Ok(_) => bad.add(BadRow {
                    file: source.name.clone(),
                    line: number,
                    reason: "not a JSON object".into(),
                    record: raw(),
                })?,
                Err(e) => bad.add(BadRow {
                    file: source.name.clone(),
                    line: number,
                    reason: format!(
                        "not valid JSON ({})",
                        e.to_string().replace(" at line 1", " at")
                    ),
                    record: raw(),
                })?,
            }
            if pending.len() == BATCH_ROWS
                && !flush(&mut pending, &schema, source, &mut bad, &sender)?
            {
                return Ok(bad);
            }
        }
        if !flush(&mut pending, &schema, source, &mut bad, &sender)? {
            return Ok(bad);
        }
    }
    Ok(bad)
}

fn decode(
    schema: &SchemaRef,
    rows: &[&Map<String, Value>],
) -> Result<Option<RecordBatch>, ArrowError> {
    let mut decoder = ReaderBuilder::new(schema.clone())
        .with_coerce_primitive(true)
        .with_batch_size(rows.len().max(1))
        .build_decoder()?;
    decoder.serialize(rows)?;
    decoder.flush()
}

/// Decodes the pending objects; when some do not fit, finds them one by one. `false` when the
/// consumer stopped listening.
fn flush(
    pending: &mut Vec<(Map<String, Value>, u64, String)>,
    schema: &SchemaRef,
    source: &SourceFile,
    bad: &mut BadRows,
    sender: &mpsc::Sender<RecordBatch>,
) -> Result<bool, StepError> {
    if pending.is_empty() {
        return Ok(true);
    }
    let all: Vec<&Map<String, Value>> = pending.iter().map(|(m, _, _)| m).collect();
    let batch = match decode(schema, &all) {
        Ok(batch) => batch,
        Err(_) => {
            let mut good = Vec::with_capacity(pending.len());
            for (map, line, raw) in pending.iter() {
                if decode(schema, &[map]).is_ok() {
                    good.push(map);
                    continue;
                }
                bad.add(BadRow {
                    file: source.name.clone(),
                    line: *line,
                    reason: misfit(schema, map),
                    record: raw.clone(),
                })?;
            }
            decode(schema, &good)?
        }
    };
    pending.clear();
    Ok(match batch {
        Some(batch) if batch.num_rows() > 0 => sender.blocking_send(batch).is_ok(),
        _ => true,
    })
}

/// Which field of an object does not fit its column, without quoting the value.
fn misfit(schema: &SchemaRef, map: &Map<String, Value>) -> String {
    for field in schema.fields() {
        let Some(value) = map.get(field.name()) else {
            continue;
        };
        let single = Arc::new(Schema::new(vec![field.as_ref().clone()]));
        let mut object = Map::new();
        object.insert(field.name().clone(), value.clone());
        if decode(&single, &[&object]).is_err() {
            return format!(
                "field `{}`: expected {}",
                field.name(),
                expectation(field.data_type())
            );
        }
    }
    "does not fit the columns".into()
}
