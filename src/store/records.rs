//! What the store keeps about runs: the run, its steps with every attempt, events and logs.

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::data::DatasetRef;

/// Run ids are ULIDs: they sort by creation time.
pub type RunId = String;

/// A new run id, greater than every id this process made before (ULIDs made in the same
/// millisecond are ordered too).
pub fn new_run_id() -> RunId {
    static GENERATOR: std::sync::Mutex<Option<ulid::Generator>> = std::sync::Mutex::new(None);
    let mut generator = GENERATOR.lock().unwrap_or_else(|e| e.into_inner());
    let generator = generator.get_or_insert_with(ulid::Generator::new);
    let id = generator.generate().unwrap_or_else(|_| ulid::Ulid::new());
    id.to_string().to_lowercase()
}

#[cfg(test)]
mod tests {
    #[test]
    fn run_ids_sort_by_creation() {
        let ids: Vec<String> = (0..1000).map(|_| super::new_run_id()).collect();
        let mut sorted = ids.clone();
        sorted.sort();
        assert_eq!(ids, sorted);
        assert!(ids.iter().all(|id| id.len() == 26));
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunState {
    Queued,
    Running,
    Succeeded,
    Failed,
    Cancelled,
    /// The process running it died (crash, kill -9, power loss); `segflow resume` finishes it.
    Interrupted,
}

impl RunState {
    pub fn is_finished(self) -> bool {
        matches!(
            self,
            RunState::Succeeded | RunState::Failed | RunState::Cancelled | RunState::Interrupted
        )
    }

    pub fn name(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Succeeded => "succeeded",
            RunState::Failed => "failed",
            RunState::Cancelled => "cancelled",
            RunState::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum RunTrigger {
    Manual,
    Schedule,
    Backfill,
    Api,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunRecord {
    pub id: RunId,
    pub pipeline: String,
    /// The pipeline file the run was started from.
    pub pipeline_file: std::path::PathBuf,
    /// The folder relative paths in step configs are read from.
    pub base_dir: std::path::PathBuf,
    /// The pipeline file's text when the run started: resume runs exactly this.
    pub spec_text: String,
    pub params: IndexMap<String, Value>,
    pub state: RunState,
    pub trigger: RunTrigger,
    pub created_at: DateTime<Utc>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    /// The fire time a scheduled or backfilled run stands for.
    #[serde(default)]
    pub scheduled_for: Option<DateTime<Utc>>,
    #[serde(default)]
    pub error: Option<String>,
    /// How many times the run was resumed or retried.
    #[serde(default)]
    pub resumes: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StepState {
    Pending,
    Running,
    /// Failed, waiting for its next try.
    Retrying,
    Succeeded,
    Failed,
    /// Not run: `when` was false, a needed step was skipped, or the trigger rule did not fire.
    Skipped,
    /// Not run because a needed step failed.
    UpstreamFailed,
    Cancelled,
    Interrupted,
}

impl StepState {
    /// Finished for good in this execution of the run.
    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            StepState::Succeeded
                | StepState::Failed
                | StepState::Skipped
                | StepState::UpstreamFailed
                | StepState::Cancelled
                | StepState::Interrupted
        )
    }

    pub fn is_failure(self) -> bool {
        matches!(self, StepState::Failed | StepState::UpstreamFailed)
    }

    pub fn name(self) -> &'static str {
        match self {
            StepState::Pending => "pending",
            StepState::Running => "running",
            StepState::Retrying => "retrying",
            StepState::Succeeded => "succeeded",
            StepState::Failed => "failed",
            StepState::Skipped => "skipped",
            StepState::UpstreamFailed => "upstream_failed",
            StepState::Cancelled => "cancelled",
            StepState::Interrupted => "interrupted",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AttemptOutcome {
    Succeeded,
    Failed,
    TimedOut,
    Cancelled,
    Interrupted,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Attempt {
    pub number: u32,
    pub started_at: DateTime<Utc>,
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub outcome: Option<AttemptOutcome>,
    #[serde(default)]
    pub error: Option<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct StepRecord {
    pub id: String,
    pub kind: String,
    /// Where the step stands in the pipeline file; steps are listed in this order.
    #[serde(default)]
    pub position: usize,
    pub state: StepState,
    #[serde(default)]
    pub attempts: Vec<Attempt>,
    /// How many of `attempts` belong to earlier executions of the run (before a resume or a
    /// retry): the retry policy counts only the tries after them.
    #[serde(default)]
    pub attempts_before: usize,
    #[serde(default)]
    pub outputs: Map<String, Value>,
    #[serde(default)]
    pub datasets: Vec<DatasetRef>,
    /// The step's report (`report.json`), relative to the run folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub report: Option<std::path::PathBuf>,
    /// Why the step failed, was skipped or cancelled.
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub started_at: Option<DateTime<Utc>>,
    #[serde(default)]
    pub ended_at: Option<DateTime<Utc>>,
    /// When a retrying step tries next.
    #[serde(default)]
    pub next_attempt_at: Option<DateTime<Utc>>,
}

impl StepRecord {
    pub fn pending(id: &str, kind: &str, position: usize) -> Self {
        StepRecord {
            id: id.to_string(),
            kind: kind.to_string(),
            position,
            state: StepState::Pending,
            attempts: Vec::new(),
            attempts_before: 0,
            outputs: Map::new(),
            datasets: Vec::new(),
            report: None,
            reason: None,
            started_at: None,
            ended_at: None,
            next_attempt_at: None,
        }
    }

    /// Puts the step back to pending for another execution, keeping its attempt history; the
    /// new execution gets its full retry policy again.
    pub fn reset(&mut self) {
        self.attempts_before = self.attempts.len();
        self.state = StepState::Pending;
        self.outputs.clear();
        self.datasets.clear();
        self.report = None;
        self.reason = None;
        self.started_at = None;
        self.ended_at = None;
        self.next_attempt_at = None;
    }

    /// The tries of this execution of the run so far.
    pub fn attempts_this_execution(&self) -> u32 {
        self.attempts.len().saturating_sub(self.attempts_before) as u32
    }

    pub fn duration_ms(&self) -> Option<i64> {
        Some((self.ended_at? - self.started_at?).num_milliseconds())
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Event {
    pub at: DateTime<Utc>,
    #[serde(default)]
    pub step: Option<String>,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogStream {
    Stdout,
    Stderr,
    Info,
    Warn,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct LogLine {
    pub at: DateTime<Utc>,
    pub step: String,
    pub attempt: u32,
    pub stream: LogStream,
    pub line: String,
}
