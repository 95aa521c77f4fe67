//! What the endpoint holds as far as segflow knows: per customer key, the hash of the mapped
//! fields last acknowledged and the identifiers a removal needs. Kept as the step's
//! `sync_state` dataset in each run, so it lives and goes with the run; `mode: diff` reads the
//! copy of the last run in which this step succeeded against the same endpoint, plus what
//! later runs that failed had delivered (recorded with each batch's acknowledgement).

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use super::ledger::{self, SyncChange};
use super::preset::Action;
use crate::data::{DataError, DatasetRef, FastHash};
use crate::steps::StepContext;
use crate::store::StepState;

pub const DATASET: &str = "sync_state";
/// The step output naming the endpoint a state belongs to.
pub const TARGET_OUTPUT: &str = "sync_target";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Entry {
    pub hash: String,
    /// JSON object of the platform identifiers (e.g. `{"email": …}`).
    pub identity: String,
}

/// Keyed by customer key; hashed with foldhash, as these maps hold one entry per contact.
pub type SyncState = HashMap<String, Entry, FastHash>;

/// What the endpoint holds according to earlier runs, and where that came from.
pub struct Previous {
    /// The newest earlier run in which this step succeeded (its `sync_state` dataset).
    pub run_id: Option<String>,
    /// Later runs in which the step failed (or was interrupted) after the endpoint had
    /// acknowledged some of its batches: those batches are applied on top.
    pub partial_runs: Vec<String>,
    pub state: SyncState,
}

impl Previous {
    /// "by run X (and the acknowledged batches of failed runs Y, Z)".
    pub fn describe(&self) -> String {
        let partial = match self.partial_runs.as_slice() {
            [] => String::new(),
            runs => format!(
                "the acknowledged batches of run(s) {} that did not finish",
                runs.join(", ")
            ),
        };
        match (&self.run_id, partial.is_empty()) {
            (Some(run), true) => format!("by run {run}"),
            (Some(run), false) => format!("by run {run} and {partial}"),
            (None, _) => format!("in {partial}"),
        }
    }
}

/// What the endpoint holds as far as earlier runs of this pipeline know: the state of the
/// newest earlier run in which this step succeeded against the same target, plus the batches
/// that later runs, which did not succeed, had delivered (recorded with their
/// acknowledgements), so a failed run's deliveries are not sent again under new keys.
pub fn previous(ctx: &StepContext, target: &str) -> Result<Option<Previous>, String> {
    let runs = ctx
        .store
        .list_runs(Some(&ctx.pipeline), usize::MAX)
        .map_err(|e| e.to_string())?;
    let mut base: Option<(String, SyncState)> = None;
    // Newest first.
    let mut partial: Vec<(String, Vec<SyncChange>)> = Vec::new();
    // Earlier runs only (run ids sort by time), so a resumed run compares with what it
    // compared with the first time and cuts the same batches.
    for run in runs.into_iter().filter(|r| r.id < ctx.run_id) {
        let steps = ctx.store.get_steps(&run.id).map_err(|e| e.to_string())?;
        let Some(step) = steps.iter().find(|s| s.id == ctx.step_id) else {
            continue;
        };
        if step.state != StepState::Succeeded {
            let changes = ledger::sync_changes(ctx.store.as_ref(), &run.id, &ctx.step_id, target)
                .map_err(|e| e.to_string())?;
            if !changes.is_empty() {
                partial.push((run.id.clone(), changes));
            }
            continue;
        }
        if step.outputs.get(TARGET_OUTPUT).and_then(|v| v.as_str()) != Some(target) {
            continue;
        }
        let Some((_, path)) = ctx
            .dataset_of_run(&run.id, &ctx.step_id, DATASET)
            .map_err(|e| e.to_string())?
        else {
            continue;
        };
        let state = read(&path).map_err(|e| {
            format!(
                "cannot read the sync state of run {} ({}): {e}; delete that run or publish with `mode: full` once",
                run.id,
                path.display()
            )
        })?;
        base = Some((run.id, state));
        break;
    }
    if base.is_none() && partial.is_empty() {
        return Ok(None);
    }
    let (run_id, mut state) = match base {
        Some((run, state)) => (Some(run), state),
        None => (None, SyncState::default()),
    };
    // Oldest first, each run's batches in the order they were acknowledged.
    for (_, changes) in partial.iter().rev() {
        for change in changes {
            apply(&mut state, change);
        }
    }
    Ok(Some(Previous {
        run_id,
        partial_runs: partial.into_iter().rev().map(|(run, _)| run).collect(),
        state,
    }))
}

/// What an acknowledged batch tells about the endpoint.
pub fn apply(state: &mut SyncState, change: &SyncChange) {
    for (key, hash, identity) in &change.members {
        match change.action {
            Action::Upsert => {
                state.insert(
                    key.clone(),
                    Entry {
                        hash: hash.clone(),
                        identity: identity.clone(),
                    },
                );
            }
            Action::Remove => {
                state.remove(key);
            }
        }
    }
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("key", DataType::Utf8, false),
        Field::new("hash", DataType::Utf8, false),
        Field::new("identity", DataType::Utf8, false),
    ]))
}

pub fn read(path: &Path) -> Result<SyncState, String> {
    let file = std::fs::File::open(path).map_err(|e| e.to_string())?;
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .and_then(|b| b.build())
        .map_err(|e| e.to_string())?;
    let mut state = SyncState::default();
    for batch in reader {
        let batch = batch.map_err(|e| e.to_string())?;
        let column = |name: &str| {
            batch
                .column_by_name(name)
                .and_then(|c| c.as_string_opt::<i32>())
                .ok_or_else(|| format!("the column `{name}` is missing"))
        };
        let (keys, hashes, identities) = (column("key")?, column("hash")?, column("identity")?);
        for row in 0..batch.num_rows() {
            if keys.is_null(row) {
                continue;
            }
            state.insert(
                keys.value(row).to_string(),
                Entry {
                    hash: hashes.value(row).to_string(),
                    identity: identities.value(row).to_string(),
                },
            );
        }
    }
    Ok(state)
}

/// Writes the state, sorted by key, as this step's `sync_state` dataset.
pub fn write(ctx: &StepContext, state: &SyncState) -> Result<DatasetRef, DataError> {
    let mut keys: Vec<&String> = state.keys().collect();
    keys.sort_unstable();
    let schema = schema();
    let mut writer = ctx.dataset_writer(DATASET, schema.clone())?;
    for chunk in keys.chunks(64 * 1024) {
        let mut key = StringBuilder::new();
        let mut hash = StringBuilder::new();
        let mut identity = StringBuilder::new();
        for k in chunk {
            let entry = &state[*k];
            key.append_value(k);
            hash.append_value(&entry.hash);
            identity.append_value(&entry.identity);
        }
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(key.finish()),
                Arc::new(hash.finish()),
                Arc::new(identity.finish()),
            ],
        )
        .expect("the columns match the state schema");
        writer.write(&batch)?;
    }
    ctx.finish_dataset(writer)
}
