//! The pipeline file, as serde reads it. Every struct rejects unknown keys.

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::duration::HumanDuration;

/// A segmentation pipeline: a DAG of steps, run now or on a schedule.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Pipeline {
    /// The pipeline's name: letters, digits, `-` and `_`. Runs are filed under it.
    pub name: String,
    /// What the pipeline does, for people reading runs and the UI.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// When the scheduler (`segflow serve`) runs the pipeline.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub schedule: Option<Schedule>,
    /// Typed parameters, set with `segflow run -p name=value`; used as `${{ params.name }}`.
    #[serde(default, skip_serializing_if = "IndexMap::is_empty")]
    pub params: IndexMap<String, ParamSpec>,
    /// Retry and timeout that every step gets unless it sets its own.
    #[serde(default)]
    pub defaults: Defaults,
    /// How many steps may run at once (default: 4).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub concurrency: Option<usize>,
    /// The longest the whole run may take; the run is cancelled after it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
    /// The steps, in any order: `needs` sets the order they run in.
    pub steps: Vec<Step>,
}

pub const DEFAULT_CONCURRENCY: usize = 4;

#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Schedule {
    /// A crontab line: 5 fields (minute hour day-of-month month day-of-week, Sunday = 0 or 7),
    /// 6 fields with seconds first, or `@hourly`, `@daily`, `@weekly`, `@monthly`, `@yearly`.
    pub cron: String,
    /// IANA timezone the cron line is read in (default UTC).
    #[serde(default = "default_timezone")]
    pub timezone: String,
    /// What to do with fire times missed while segflow was down.
    #[serde(default)]
    pub catchup: Catchup,
    /// How far back missed fire times are caught up (default 7 days).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub catchup_window: Option<HumanDuration>,
    /// What to do when a fire time comes while the previous run still runs.
    #[serde(default)]
    pub overlap: Overlap,
}

fn default_timezone() -> String {
    "UTC".to_string()
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Catchup {
    /// Skip missed fire times.
    None,
    /// Run once for the latest missed fire time.
    #[default]
    Latest,
    /// Run every missed fire time inside the window, oldest first.
    All,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Overlap {
    /// Drop the new fire time.
    #[default]
    Skip,
    /// Start the new run when the running one ends.
    Queue,
    /// Start the new run at once, beside the running one.
    Allow,
}

/// A typed parameter.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ParamSpec {
    #[serde(rename = "type")]
    pub kind: ParamType,
    /// The value used when the run does not set one; may be an expression over `run.*`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub default: Option<serde_json::Value>,
    /// Smallest allowed value (integer and number params).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    /// Largest allowed value (integer and number params).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    /// The allowed values of an `enum` param.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub values: Option<Vec<String>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum ParamType {
    String,
    Integer,
    Number,
    Boolean,
    /// A calendar date, `YYYY-MM-DD`.
    Date,
    /// One of `values`.
    Enum,
}

impl ParamType {
    pub fn name(self) -> &'static str {
        match self {
            ParamType::String => "string",
            ParamType::Integer => "integer",
            ParamType::Number => "number",
            ParamType::Boolean => "boolean",
            ParamType::Date => "date",
            ParamType::Enum => "enum",
        }
    }
}

#[derive(Debug, Clone, Default, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Defaults {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

/// How a failed step is tried again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RetryPolicy {
    /// Tries in all, the first one included (1 = no retry).
    #[serde(default = "default_attempts")]
    #[schemars(range(min = 1))]
    pub attempts: u32,
    #[serde(default)]
    pub backoff: Backoff,
    /// Wait before the second try; exponential backoff doubles it each time.
    #[serde(default = "default_delay")]
    pub delay: HumanDuration,
    /// The longest wait between tries.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_delay: Option<HumanDuration>,
    /// Randomise each wait (between half and all of it) so retries do not arrive in lockstep.
    #[serde(default = "default_true")]
    pub jitter: bool,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            attempts: 1,
            backoff: Backoff::default(),
            delay: default_delay(),
            max_delay: None,
            jitter: true,
        }
    }
}

fn default_attempts() -> u32 {
    1
}

fn default_delay() -> HumanDuration {
    HumanDuration(std::time::Duration::from_secs(1))
}

fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Backoff {
    Constant,
    #[default]
    Exponential,
}

/// One step of the DAG.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Step {
    /// Unique name of the step: a letter or `_`, then letters, digits and `_`.
    pub id: String,
    /// The step kind: a built-in (`gather.csv`, `segment.rfm`, `shell`…) or `plugin.NAME.KIND`.
    pub uses: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Steps that must finish first; their datasets and outputs are this step's inputs.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub needs: Vec<String>,
    /// The step kind's own configuration; strings may hold `${{ … }}` expressions.
    #[serde(default = "empty_object", skip_serializing_if = "is_empty_object")]
    pub with: serde_json::Value,
    /// Run the step only when this is true (an expression or a boolean); otherwise it is skipped.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub when: Option<Condition>,
    /// When the step runs, given the states of the steps it needs.
    #[serde(default)]
    pub trigger: Trigger,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retry: Option<RetryPolicy>,
    /// The longest one try of the step may take.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<HumanDuration>,
}

fn empty_object() -> serde_json::Value {
    serde_json::Value::Object(Default::default())
}

fn is_empty_object(value: &serde_json::Value) -> bool {
    value.as_object().is_some_and(|o| o.is_empty())
}

/// A `when:` condition: a boolean, or a string holding a `${{ … }}` expression.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum Condition {
    Literal(bool),
    Expression(String),
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Trigger {
    /// Run when every needed step succeeded (skipped upstream skips this step too).
    #[default]
    AllSuccess,
    /// Run when every needed step is done, whatever its state.
    AllDone,
    /// Run as soon as one needed step failed; skipped when none did.
    OneFailed,
    /// Run when no needed step failed (succeeded or skipped).
    NoneFailed,
}

impl Trigger {
    pub fn name(self) -> &'static str {
        match self {
            Trigger::AllSuccess => "all_success",
            Trigger::AllDone => "all_done",
            Trigger::OneFailed => "one_failed",
            Trigger::NoneFailed => "none_failed",
        }
    }
}

impl Pipeline {
    pub fn step(&self, id: &str) -> Option<&Step> {
        self.steps.iter().find(|s| s.id == id)
    }

    pub fn concurrency(&self) -> usize {
        self.concurrency.unwrap_or(DEFAULT_CONCURRENCY).max(1)
    }

    /// The retry policy a step runs with: its own, else the pipeline default, else one try.
    pub fn retry_for(&self, step: &Step) -> RetryPolicy {
        step.retry
            .clone()
            .or_else(|| self.defaults.retry.clone())
            .unwrap_or_default()
    }

    pub fn timeout_for(&self, step: &Step) -> Option<std::time::Duration> {
        step.timeout.or(self.defaults.timeout).map(|d| d.0)
    }
}
