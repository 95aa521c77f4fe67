//! Running a pipeline: the executor, trigger rules, retries, timeouts, cancellation, and the
//! bookkeeping that lets a run resume after a crash.

mod events;
mod executor;
pub mod expressions;
mod recover;
pub mod retry;
pub mod trigger;

pub use events::{EngineEvent, EventSink};
pub use recover::mark_interrupted;

use std::str::FromStr;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use tokio_util::sync::CancellationToken;

use crate::plan::Plan;
use crate::secrets::Secrets;
use crate::spec::{LoadedPipeline, params};
use crate::steps::Registry;
use crate::store::{
    Event, RunRecord, RunState, RunTrigger, StateStore, StepRecord, StoreError, new_run_id,
};

#[derive(Debug, thiserror::Error)]
pub enum EngineError {
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("there is no run `{0}`; `segflow runs list` shows the runs")]
    UnknownRun(String),
    #[error("`{prefix}` could be any of these runs: {matches}; give more of the id")]
    AmbiguousRun { prefix: String, matches: String },
    #[error("the pipeline of run {run} does not load any more:\n{details}")]
    Spec { run: String, details: String },
    #[error("the params are not valid:\n  {}", .0.join("\n  "))]
    Params(Vec<String>),
    #[error("run {run} {why}")]
    NotResumable { run: String, why: String },
    #[error("segflow is shutting down: no new run starts now; try again once it is back")]
    ShuttingDown,
    #[error("run {run} has no step `{step}`{hint}")]
    UnknownStep {
        run: String,
        step: String,
        hint: String,
    },
}

pub struct Engine {
    pub registry: Arc<Registry>,
    pub store: Arc<dyn StateStore>,
    pub secrets: Arc<Secrets>,
    events: Option<EventSink>,
}

impl Engine {
    pub fn new(registry: Arc<Registry>, store: Arc<dyn StateStore>, secrets: Arc<Secrets>) -> Self {
        Engine {
            registry,
            store,
            secrets,
            events: None,
        }
    }

    /// Sends progress events to `sink` from now on.
    pub fn with_events(mut self, sink: EventSink) -> Self {
        self.events = Some(sink);
        self
    }

    /// Records a new run of a checked pipeline, its params resolved; nothing runs yet.
    pub fn create_run(
        &self,
        loaded: &LoadedPipeline,
        given_params: &IndexMap<String, String>,
        trigger: RunTrigger,
        scheduled_for: Option<DateTime<Utc>>,
    ) -> Result<RunRecord, EngineError> {
        let pipeline = &loaded.pipeline;
        let mut run = RunRecord {
            id: new_run_id(),
            pipeline: pipeline.name.clone(),
            pipeline_file: std::path::absolute(&loaded.source.path)
                .unwrap_or_else(|_| loaded.source.path.clone()),
            base_dir: loaded.base_dir.clone(),
            spec_text: loaded.source.text.clone(),
            params: IndexMap::new(),
            state: RunState::Queued,
            trigger,
            created_at: Utc::now(),
            started_at: None,
            ended_at: None,
            scheduled_for,
            error: None,
            resumes: 0,
        };
        let run_values = expressions::run_values(&run, timezone_of(loaded));
        run.params = params::resolve(
            &pipeline.params,
            given_params,
            &expressions::params_context(&run_values),
        )
        .map_err(EngineError::Params)?;
        let steps: Vec<StepRecord> = pipeline
            .steps
            .iter()
            .enumerate()
            .map(|(i, s)| StepRecord::pending(&s.id, &s.uses, i))
            .collect();
        let step_refs: Vec<&StepRecord> = steps.iter().collect();
        let event = Event {
            at: Utc::now(),
            step: None,
            message: format!("run created ({:?})", trigger).to_lowercase(),
        };
        self.store
            .commit(&run.id, Some(&run), &step_refs, &[event])?;
        Ok(run)
    }

    /// Runs (or goes on running) a recorded run until every step is done or it is cancelled.
    pub async fn execute(
        &self,
        run_id: &str,
        cancel: CancellationToken,
    ) -> Result<RunRecord, EngineError> {
        executor::execute(self, run_id, cancel, CancellationToken::new()).await
    }

    /// Like `execute`, and when `drain` fires nothing new starts while running steps may
    /// finish; steps left unfinished (cut short when `cancel` fires after a grace period, or
    /// never started) are recorded as interrupted, and so is the run, for a later resume.
    pub async fn execute_draining(
        &self,
        run_id: &str,
        cancel: CancellationToken,
        drain: CancellationToken,
    ) -> Result<RunRecord, EngineError> {
        executor::execute(self, run_id, cancel, drain).await
    }

    /// Prepares an interrupted, failed or cancelled run to go on: steps that succeeded keep
    /// their outputs and datasets; every other step will run again.
    pub fn prepare_resume(&self, run_id: &str) -> Result<RunRecord, EngineError> {
        recover::prepare_resume(self, run_id)
    }

    /// Prepares a finished run to run `from` and every step after it again.
    pub fn prepare_retry(&self, run_id: &str, from: &str) -> Result<RunRecord, EngineError> {
        recover::prepare_retry(self, run_id, from)
    }

    /// The full id of a run given by its id or a unique prefix of it.
    pub fn resolve_run_id(&self, given: &str) -> Result<String, EngineError> {
        resolve_run_id(self.store.as_ref(), given)
    }

    pub(crate) fn emit(&self, event: EngineEvent) {
        if let Some(sink) = &self.events {
            let _ = sink.send(event);
        }
    }

    /// Loads the pipeline a run was started with, exactly as it was then.
    pub(crate) fn load_run_pipeline(
        &self,
        run: &RunRecord,
    ) -> Result<(LoadedPipeline, Plan), EngineError> {
        let source = crate::spec::source::Source::new(&run.pipeline_file, run.spec_text.clone());
        let loaded =
            crate::spec::load_source(source, &self.registry, &run.base_dir).map_err(|d| {
                EngineError::Spec {
                    run: run.id.clone(),
                    details: d.render(false),
                }
            })?;
        let plan = Plan::build(&loaded.pipeline).map_err(|_| EngineError::Spec {
            run: run.id.clone(),
            details: "the steps form a cycle".into(),
        })?;
        Ok((loaded, plan))
    }
}

/// The full id of a run given by its id or a unique prefix of it.
pub fn resolve_run_id(store: &dyn StateStore, given: &str) -> Result<String, EngineError> {
    let given = given.trim();
    if given.is_empty() {
        return Err(EngineError::UnknownRun(given.to_string()));
    }
    let matches = store.find_runs(given)?;
    match matches.as_slice() {
        [] => Err(EngineError::UnknownRun(given.to_string())),
        [one] => Ok(one.clone()),
        many => Err(EngineError::AmbiguousRun {
            prefix: given.to_string(),
            matches: many.iter().take(5).cloned().collect::<Vec<_>>().join(", "),
        }),
    }
}

pub(crate) fn timezone_of(loaded: &LoadedPipeline) -> Option<chrono_tz::Tz> {
    loaded
        .pipeline
        .schedule
        .as_ref()
        .and_then(|s| chrono_tz::Tz::from_str(&s.timezone).ok())
}
