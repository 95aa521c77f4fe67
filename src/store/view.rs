//! A recorded run as the CLI and the HTTP API show it: the run's summary, and finding one of its
//! steps or datasets with an error that names what does exist.

use serde_json::{Value, json};

use super::{RunRecord, StepRecord};
use crate::data::DatasetRef;

/// The run without its pipeline text: what `segflow runs list --json` prints for each run.
pub fn run_summary(run: &RunRecord) -> Value {
    json!({
        "id": run.id,
        "pipeline": run.pipeline,
        "state": run.state,
        "trigger": run.trigger,
        "params": run.params,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "scheduled_for": run.scheduled_for,
        "error": run.error,
        "resumes": run.resumes,
    })
}

#[derive(Debug, thiserror::Error)]
pub enum LookupError {
    #[error("run {run} has no step `{step}`; {hint}")]
    NoStep {
        run: String,
        step: String,
        hint: String,
    },
    #[error("step `{step}` of run {run} wrote no dataset (it is {state})")]
    NoDatasets {
        run: String,
        step: String,
        state: &'static str,
    },
    #[error("step `{step}` has no dataset `{name}`; it has: {names}")]
    NoDataset {
        step: String,
        name: String,
        names: String,
    },
}

/// The step `id` of a run's steps; the error suggests a close id or lists them all.
pub fn find_step<'a>(
    steps: &'a [StepRecord],
    run: &str,
    id: &str,
) -> Result<&'a StepRecord, LookupError> {
    if let Some(step) = steps.iter().find(|s| s.id == id) {
        return Ok(step);
    }
    let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
    let hint = match crate::spec::suggest::closest(id, ids.iter().copied()) {
        Some(best) => format!("did you mean `{best}`?"),
        None => format!("its steps are: {}", ids.join(", ")),
    };
    Err(LookupError::NoStep {
        run: run.to_string(),
        step: id.to_string(),
        hint,
    })
}

/// The dataset `name` of a step.
pub fn find_dataset<'a>(
    step: &'a StepRecord,
    run: &str,
    name: &str,
) -> Result<&'a DatasetRef, LookupError> {
    if let Some(dataset) = step.datasets.iter().find(|d| d.name == name) {
        return Ok(dataset);
    }
    if step.datasets.is_empty() {
        return Err(LookupError::NoDatasets {
            run: run.to_string(),
            step: step.id.clone(),
            state: step.state.name(),
        });
    }
    let names: Vec<&str> = step.datasets.iter().map(|d| d.name.as_str()).collect();
    Err(LookupError::NoDataset {
        step: step.id.clone(),
        name: name.to_string(),
        names: names.join(", "),
    })
}
