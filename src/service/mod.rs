//! segflow as a long-running service (`segflow serve`): the pipelines it knows, the runs it
//! started, and the operations the HTTP server asks of it.
//!
//! The server only sees the [`Control`] trait, so the API does not depend on how runs are
//! scheduled or launched.

mod catalog;
mod launcher;
mod local;
pub mod reload;
pub mod scheduler;

pub use catalog::{Catalog, CatalogEntry};
pub use launcher::{Launcher, RunEnded};
pub use local::LocalService;
pub use scheduler::{ScheduledView, Scheduler};

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::Serialize;

use crate::spec::model::ParamSpec;
use crate::store::RunId;

/// What the service knows of one pipeline file.
#[derive(Debug, Clone, Serialize)]
pub struct PipelineStatus {
    /// The pipeline's `name`, or the file's stem when the file never loaded.
    pub name: String,
    /// The pipeline file.
    pub file: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The schedule of the version in use, with its next fire time.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub schedule: Option<ScheduleStatus>,
    pub params: IndexMap<String, ParamSpec>,
    /// The steps of the version in use, in file order.
    pub steps: Vec<StepInfo>,
    /// Why the file on disk does not load (rendered diagnostics). When a good version was
    /// loaded before, that version is still the one in use.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// False when no version of the file ever loaded: it cannot be run.
    pub runnable: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct ScheduleStatus {
    pub cron: String,
    pub timezone: String,
    pub catchup: String,
    pub overlap: String,
    /// The next fire time, in UTC (`next_fire_local` in the pipeline's timezone).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_fire: Option<DateTime<Utc>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_fire_local: Option<String>,
    /// The last fire time the scheduler acted on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last_fire: Option<DateTime<Utc>>,
}

#[derive(Debug, Clone, Serialize)]
pub struct StepInfo {
    pub id: String,
    pub uses: String,
    pub needs: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("there is no pipeline `{0}`")]
    UnknownPipeline(String),
    #[error("there is no run `{0}`")]
    UnknownRun(String),
    /// The request cannot be carried out as asked (bad params, a run that is not resumable).
    #[error("{0}")]
    Invalid(String),
    /// The request fits, but not now (the run is not running, segflow is shutting down).
    #[error("{0}")]
    Conflict(String),
    #[error("{0}")]
    Internal(String),
}

impl From<crate::engine::EngineError> for ControlError {
    fn from(error: crate::engine::EngineError) -> Self {
        use crate::engine::EngineError as E;
        match error {
            E::UnknownRun(id) => ControlError::UnknownRun(id),
            E::AmbiguousRun { .. } | E::Params(_) | E::UnknownStep { .. } => {
                ControlError::Invalid(error.to_string())
            }
            E::NotResumable { .. } | E::ShuttingDown => ControlError::Conflict(error.to_string()),
            E::Spec { .. } | E::Store(_) => ControlError::Internal(error.to_string()),
        }
    }
}

/// The operations of a running service, for the HTTP API.
pub trait Control: Send + Sync {
    /// Every pipeline file the service knows, sorted by name.
    fn pipelines(&self) -> Vec<PipelineStatus>;
    /// Starts a run of a pipeline now, with params given as text (as `-p name=value`), and
    /// returns its id once the run is recorded; the run goes on in the background.
    fn trigger(
        &self,
        pipeline: &str,
        params: IndexMap<String, String>,
    ) -> Result<RunId, ControlError>;
    /// Cancels a running run; its steps are stopped and it is recorded as cancelled.
    fn cancel(&self, run: &str) -> Result<(), ControlError>;
    /// Resumes an interrupted, failed or cancelled run in the background.
    fn resume(&self, run: &str) -> Result<RunId, ControlError>;
    /// The runs going on now.
    fn running(&self) -> Vec<RunId>;
}
