//! What the endpoint holds as far as segflow knows: per customer key, the hash of the mapped
//! fields last acknowledged and the identifiers a removal needs. Kept as the step's
//! `sync_state` dataset in each run, so it lives and goes with the run; `mode: diff` reads the
//! copy of the last run in which this step succeeded against the same endpoint.

use std::collections::HashMap;
use std::path::Path;
use std::sync::Arc;

use datafusion::arrow::array::{Array, AsArray, StringBuilder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

use crate::data::{DataError, DatasetRef};
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

pub type SyncState = HashMap<String, Entry>;

/// Where the previous state came from.
pub struct Previous {
    pub run_id: String,
    pub state: SyncState,
}

/// The state of the newest earlier run of this pipeline in which this step succeeded against
/// the same target.
pub fn previous(ctx: &StepContext, target: &str) -> Result<Option<Previous>, String> {
    let runs = ctx
        .store
        .list_runs(Some(&ctx.pipeline), usize::MAX)
        .map_err(|e| e.to_string())?;
    for run in runs.into_iter().filter(|r| r.id != ctx.run_id) {
        let steps = ctx.store.get_steps(&run.id).map_err(|e| e.to_string())?;
        let Some(step) = steps.iter().find(|s| s.id == ctx.step_id) else {
            continue;
        };
        if step.state != StepState::Succeeded
            || step.outputs.get(TARGET_OUTPUT).and_then(|v| v.as_str()) != Some(target)
        {
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
        return Ok(Some(Previous {
            run_id: run.id,
            state,
        }));
    }
    Ok(None)
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
    let mut state = SyncState::new();
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
