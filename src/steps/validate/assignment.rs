//! The assignment `validate.ab` evaluates: from an upstream step (a `validate.holdout`, or any
//! dataset with `customer_id`, `group` and optionally `segment`), or from the holdout step of an
//! earlier run, so the evaluation joins exactly the groups that were sent.

use std::collections::HashMap;
use std::path::Path;

use datafusion::arrow::array::Array;
use datafusion::prelude::ParquetReadOptions;
use futures::StreamExt;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::columns;
use super::holdout::{ASSIGNMENT_DATASET, MAX_SEGMENTS};
use crate::data::MAIN_DATASET;
use crate::steps::{StepContext, StepError};
use crate::store::RunState;

/// More groups than this is not an assignment (an id column taken for the group).
const MAX_GROUPS: usize = 100;

/// Where the assignment comes from.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum AssignmentSource {
    /// An upstream step in `needs` (usually a `validate.holdout` step).
    Step(String),
    /// The holdout step of an earlier run, e.g. `{ pipeline: weekly-rfm, run: last_success, step: split }`.
    Run(EarlierRun),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EarlierRun {
    /// The pipeline that made the assignment (default: this pipeline).
    #[serde(default)]
    pub pipeline: Option<String>,
    /// `last_success` (the latest succeeded run other than this one; the default) or a run id.
    #[serde(default = "last_success")]
    pub run: String,
    /// The step of that run that wrote the assignment.
    pub step: String,
}

impl<'de> Deserialize<'de> for AssignmentSource {
    /// By hand, so a wrong value gets a message that shows both forms.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match Value::deserialize(deserializer)? {
            Value::String(step) => Ok(AssignmentSource::Step(step)),
            value @ Value::Object(_) => EarlierRun::deserialize(value)
                .map(AssignmentSource::Run)
                .map_err(serde::de::Error::custom),
            _ => Err(serde::de::Error::custom(
                "`assignment` is an upstream step id (`assignment: split`) or an earlier run (`assignment: { pipeline: weekly-rfm, run: last_success, step: split }`)",
            )),
        }
    }
}

fn last_success() -> String {
    "last_success".into()
}

/// Every assigned customer, with their segment and group as indexes into `segments` / `groups`.
#[derive(Debug, Default)]
pub struct Assignment {
    pub index: HashMap<String, usize>,
    pub segment_of: Vec<Option<u32>>,
    pub group_of: Vec<u32>,
    pub segments: Vec<String>,
    pub groups: Vec<String>,
    /// The split the assignment was made with, when known (a holdout step's `arms` output).
    pub weights: Option<IndexMap<String, f64>>,
    /// Where it came from, for people: "step split" or "run 01J… step split".
    pub origin: String,
    /// The run it came from (this run for an upstream step).
    pub run_id: String,
}

impl Assignment {
    pub fn len(&self) -> usize {
        self.group_of.len()
    }

    pub fn is_empty(&self) -> bool {
        self.group_of.is_empty()
    }
}

/// Finds and reads the assignment.
pub async fn load(source: &AssignmentSource, ctx: &StepContext) -> Result<Assignment, StepError> {
    let (path, outputs, origin, run_id) = match source {
        AssignmentSource::Step(step) => {
            let upstream = ctx.input(step).ok_or_else(|| {
                StepError::permanent(format!(
                    "`assignment` names step `{step}`, which is not in this step's `needs`; add it there"
                ))
            })?;
            let dataset = upstream
                .dataset(ASSIGNMENT_DATASET)
                .or_else(|| upstream.main())
                .ok_or_else(|| {
                    StepError::permanent(format!(
                        "step `{step}` wrote no dataset; `assignment` must name a validate.holdout step or a step with columns customer_id, group (and segment)"
                    ))
                })?;
            (
                dataset.path(&ctx.run_dir),
                upstream.outputs.clone(),
                format!("step `{step}` of this run"),
                ctx.run_id.clone(),
            )
        }
        AssignmentSource::Run(earlier) => {
            let pipeline = earlier.pipeline.as_deref().unwrap_or(&ctx.pipeline);
            let run = if earlier.run == "last_success" {
                ctx.last_successful_run(pipeline)?.ok_or_else(|| {
                    StepError::permanent(format!(
                        "pipeline `{pipeline}` has no succeeded run yet to take the assignment from; run it first (`segflow run {pipeline}`)"
                    ))
                })?
            } else {
                let id = crate::engine::resolve_run_id(ctx.store.as_ref(), &earlier.run)
                    .map_err(|e| StepError::permanent(format!("`assignment.run`: {e}")))?;
                let run = ctx.store.get_run(&id)?.ok_or_else(|| {
                    StepError::permanent(format!("`assignment.run`: run {id} does not exist"))
                })?;
                if run.pipeline != pipeline {
                    return Err(StepError::permanent(format!(
                        "`assignment.run`: run {id} belongs to pipeline `{}`, not `{pipeline}`",
                        run.pipeline
                    )));
                }
                if run.state != RunState::Succeeded {
                    ctx.warn(&format!(
                        "taking the assignment from run {id}, which is {} (not succeeded)",
                        run.state.name()
                    ));
                }
                run
            };
            let steps = ctx.store.get_steps(&run.id)?;
            let Some(step) = steps.iter().find(|s| s.id == earlier.step) else {
                let names: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
                return Err(StepError::permanent(format!(
                    "run {} of `{pipeline}` has no step `{}`; its steps are: {}",
                    run.id,
                    earlier.step,
                    names.join(", ")
                )));
            };
            let found = ctx
                .dataset_of_run(&run.id, &step.id, ASSIGNMENT_DATASET)?
                .or(ctx.dataset_of_run(&run.id, &step.id, MAIN_DATASET)?);
            let Some((_, path)) = found else {
                return Err(StepError::permanent(format!(
                    "step `{}` of run {} wrote no assignment (it is {}); point `assignment.step` at its validate.holdout step",
                    step.id,
                    run.id,
                    step.state.name()
                )));
            };
            (
                path,
                step.outputs.clone(),
                format!("step `{}` of run {}", step.id, run.id),
                run.id.clone(),
            )
        }
    };
    if !path.is_file() {
        return Err(StepError::permanent(format!(
            "the assignment file {} is gone; was the run folder cleaned up?",
            path.display()
        )));
    }
    let mut assignment = read(&path, &origin, ctx).await?;
    assignment.weights = weights_from_outputs(outputs.get("arms"));
    assignment.origin = origin;
    assignment.run_id = run_id;
    Ok(assignment)
}

/// A holdout step's `arms` output: `{ control: 0.1, treatment: 0.9 }`.
fn weights_from_outputs(arms: Option<&Value>) -> Option<IndexMap<String, f64>> {
    let map = arms?.as_object()?;
    let weights: IndexMap<String, f64> = map
        .iter()
        .filter_map(|(name, w)| Some((name.clone(), w.as_f64()?)))
        .collect();
    (weights.len() == map.len() && !weights.is_empty()).then_some(weights)
}

async fn read(path: &Path, origin: &str, ctx: &StepContext) -> Result<Assignment, StepError> {
    let session = crate::data::ordered_session();
    let frame = session
        .read_parquet(
            path.to_string_lossy().as_ref(),
            ParquetReadOptions::default(),
        )
        .await?;
    let schema = frame.schema().as_arrow().clone();
    let what = format!("the assignment ({origin})");
    let id_index = columns::find(&schema, "customer_id", &what, "assignment")?;
    let group_index = columns::find(&schema, "group", &what, "assignment")?;
    let segment_index = schema.index_of("segment").ok();
    let mut assignment = Assignment::default();
    let mut segment_ids: HashMap<String, u32> = HashMap::new();
    let mut group_ids: HashMap<String, u32> = HashMap::new();
    let mut stream = frame.execute_stream().await?;
    let mut row: u64 = 0;
    while let Some(batch) = stream.next().await {
        if ctx.cancel.is_cancelled() {
            return Err(StepError::permanent("cancelled"));
        }
        let batch = batch?;
        let ids = columns::as_text(batch.column(id_index))?;
        let groups = columns::as_text(batch.column(group_index))?;
        let segments = match segment_index {
            Some(i) => Some(columns::as_text(batch.column(i))?),
            None => None,
        };
        for i in 0..batch.num_rows() {
            row += 1;
            if ids.is_null(i) || groups.is_null(i) {
                return Err(StepError::permanent(format!(
                    "row {row} of {what} has no customer id or no group"
                )));
            }
            let position = assignment.group_of.len();
            if let Some(first) = assignment.index.insert(ids.value(i).to_string(), position) {
                return Err(StepError::permanent(format!(
                    "row {row} of {what} repeats the customer of row {}; an assignment has one row per customer",
                    first + 1
                )));
            }
            let group = intern(&mut group_ids, &mut assignment.groups, groups.value(i));
            let segment = match &segments {
                Some(s) if !s.is_null(i) => Some(intern(
                    &mut segment_ids,
                    &mut assignment.segments,
                    s.value(i),
                )),
                _ => None,
            };
            if assignment.groups.len() > MAX_GROUPS {
                return Err(StepError::permanent(format!(
                    "the `group` column of {what} has more than {MAX_GROUPS} distinct values; it must hold the group names (control, treatment…)"
                )));
            }
            if assignment.segments.len() > MAX_SEGMENTS {
                return Err(StepError::permanent(format!(
                    "the `segment` column of {what} has more than {MAX_SEGMENTS} distinct values; it must hold segments"
                )));
            }
            assignment.group_of.push(group);
            assignment.segment_of.push(segment);
        }
    }
    Ok(assignment)
}

fn intern(ids: &mut HashMap<String, u32>, names: &mut Vec<String>, name: &str) -> u32 {
    if let Some(&id) = ids.get(name) {
        return id;
    }
    let id = names.len() as u32;
    names.push(name.to_string());
    ids.insert(name.to_string(), id);
    id
}
