//! `validate.ab`: measures whether a campaign worked. Joins an assignment (from an upstream
//! `validate.holdout`, or the one an earlier run sent) with outcomes, and reports per segment
//! and overall: sizes, rates or means, absolute and relative lift with intervals, p-values
//! (two-proportion z-test or Welch's t-test), the sample-ratio check, achieved power, minimum
//! detectable effect and a correction across segments; then judges the declared gates.

use std::collections::HashMap;

use async_trait::async_trait;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::ab_report;
use super::analysis::{self, Groups, Settings};
use super::assignment::{self, AssignmentSource};
use super::gates::{self, InsufficientData, OnFail, Require, Scope, Verdict};
use super::outcomes::{self, MetricSpec};
use crate::data::Column;
use crate::spec::deserialize::FieldError;
use crate::spec::yaml_path::YamlPath;
use crate::stats::correction::Correction;
use crate::stats::{finite, srm};
use crate::steps::segment::input;
use crate::steps::{CheckContext, Kind, StepContext, StepError, StepOutput};

pub struct Ab;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AbConfig {
    /// The assignment: an upstream step id (`split`), or an earlier run's holdout step
    /// (`{ pipeline: weekly-rfm, run: last_success, step: split }`).
    pub assignment: AssignmentSource,
    /// The upstream step whose dataset holds the outcomes: the customer id and metric columns.
    pub outcomes: String,
    /// The customer id column of the outcomes (default `customer_id`).
    #[serde(default = "default_customer")]
    pub customer: String,
    /// The metrics: column names, or `{ column, type: proportion | mean }`.
    pub metrics: Vec<MetricSpec>,
    /// The name of the control group (default `control`).
    #[serde(default = "default_control")]
    pub control: String,
    /// The expected share of each group, for the sample-ratio check (default: the holdout
    /// step's own `arms`).
    #[serde(default)]
    pub weights: Option<IndexMap<String, f64>>,
    /// Customers with no outcome row: `zero` (they did not convert, spent 0; the default) or
    /// `exclude` (left out of the metric).
    #[serde(default)]
    pub missing: Missing,
    /// Significance level: intervals are (1 − alpha), power and MDE use it (default 0.05).
    #[serde(default = "default_alpha")]
    pub alpha: f64,
    /// The power the minimum detectable effect is computed for (default 0.8).
    #[serde(default = "default_power")]
    pub power: f64,
    /// Fewer customers than this in control or a treatment group: "insufficient data" (default 50).
    #[serde(default = "default_min_per_group")]
    pub min_per_group: u64,
    /// Correction of the segments' p-values: `holm` (default), `bh` (Benjamini–Hochberg) or `none`.
    #[serde(default)]
    pub correction: Correction,
    /// Sample-ratio p-value below which the split is a mismatch (default 0.001).
    #[serde(default = "default_srm_threshold")]
    pub srm_threshold: f64,
    /// The gates, e.g. `{ srm: pass, min_lift: 0.01, max_p: 0.05, min_power: 0.8 }`.
    #[serde(default)]
    pub require: Option<Require>,
    /// When the gates do not pass: `fail` the step (default) or `warn` and go on.
    #[serde(default)]
    pub on_fail: OnFail,
    /// Which verdicts decide `passed`: `all` (default), `overall` or `segments`.
    #[serde(default)]
    pub scope: Scope,
    /// Whether an "insufficient data" verdict fails the gates: `ignore` (default) or `fail`.
    #[serde(default)]
    pub insufficient_data: InsufficientData,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Missing {
    /// They count as 0: did not convert, spent nothing (an orders export lists buyers only).
    #[default]
    Zero,
    /// They are left out of the metric (the outcome is unknown for them).
    Exclude,
}

fn default_customer() -> String {
    "customer_id".into()
}
fn default_control() -> String {
    "control".into()
}
fn default_alpha() -> f64 {
    0.05
}
fn default_power() -> f64 {
    0.8
}
fn default_min_per_group() -> u64 {
    50
}
fn default_srm_threshold() -> f64 {
    srm::DEFAULT_THRESHOLD
}

impl AbConfig {
    fn problems(&self, needs: &[String]) -> Vec<FieldError> {
        let mut problems = Vec::new();
        let mut problem = |path: YamlPath, message: String, hint: Option<&str>| {
            problems.push(FieldError {
                path,
                message,
                hint: hint.map(str::to_string),
                at_key: false,
            })
        };
        let root = YamlPath::root();
        if let AssignmentSource::Step(step) = &self.assignment
            && !needs.contains(step)
        {
            problem(
                root.key("assignment"),
                format!("`assignment` names `{step}`, which is not in this step's `needs`"),
                Some(
                    "add it to `needs`, or take an earlier run's: `{ pipeline: NAME, run: last_success, step: split }`",
                ),
            );
        }
        if let AssignmentSource::Run(run) = &self.assignment
            && run.run.trim().is_empty()
        {
            problem(
                root.key("assignment").key("run"),
                "`run` is empty".into(),
                Some("`last_success` or a run id"),
            );
        }
        if !needs.contains(&self.outcomes) {
            problem(
                root.key("outcomes"),
                format!(
                    "`outcomes` names `{}`, which is not in this step's `needs`",
                    self.outcomes
                ),
                Some("add the step with the outcomes to `needs`"),
            );
        }
        if self.metrics.is_empty() {
            problem(
                root.key("metrics"),
                "`metrics` is empty".into(),
                Some("name at least one outcome column, e.g. `metrics: [converted]`"),
            );
        }
        let mut seen = Vec::new();
        for (i, metric) in self.metrics.iter().enumerate() {
            if seen.contains(&metric.column()) {
                problem(
                    root.key("metrics").index(i),
                    format!("metric `{}` is listed twice", metric.column()),
                    None,
                );
            }
            seen.push(metric.column());
        }
        for (key, value) in [
            ("alpha", self.alpha),
            ("power", self.power),
            ("srm_threshold", self.srm_threshold),
        ] {
            if !(value > 0.0 && value < 1.0) {
                problem(
                    root.key(key),
                    format!("`{key}` is {value}; it must be between 0 and 1 (exclusive)"),
                    None,
                );
            }
        }
        if let Some(weights) = &self.weights {
            let sum: f64 = weights.values().sum();
            if weights.len() < 2 || (sum - 1.0).abs() > 1e-6 || weights.values().any(|w| *w < 0.0) {
                problem(
                    root.key("weights"),
                    format!(
                        "`weights` must give at least 2 groups non-negative shares that sum to 1 (they sum to {sum})"
                    ),
                    Some("e.g. `weights: { control: 0.1, treatment: 0.9 }`"),
                );
            } else if !weights.contains_key(&self.control) {
                problem(
                    root.key("weights"),
                    format!(
                        "`weights` has no group `{}` (the control group)",
                        self.control
                    ),
                    Some("set `control:` to the control group's name"),
                );
            }
        }
        if let Some(require) = &self.require {
            let path = root.key("require");
            if let Some(metric) = &require.metric
                && !self.metrics.iter().any(|m| m.column() == metric)
            {
                problem(
                    path.key("metric"),
                    format!("`require.metric` names `{metric}`, which is not in `metrics`"),
                    None,
                );
            }
            if let Some(p) = require.max_p
                && !(p > 0.0 && p <= 1.0)
            {
                problem(
                    path.key("max_p"),
                    format!("`max_p` is {p}; it must be in (0, 1]"),
                    None,
                );
            }
            if let Some(power) = require.min_power
                && !(0.0..=1.0).contains(&power)
            {
                problem(
                    path.key("min_power"),
                    format!("`min_power` is {power}; it must be between 0 and 1"),
                    None,
                );
            }
        }
        problems
    }

    fn gate_metric(&self) -> usize {
        self.require
            .as_ref()
            .and_then(|r| r.metric.as_ref())
            .and_then(|name| self.metrics.iter().position(|m| m.column() == name))
            .unwrap_or(0)
    }
}

#[async_trait]
impl Kind for Ab {
    const NAME: &'static str = "validate.ab";
    const DESCRIPTION: &'static str = "Measures the lift of treatment over control per segment (z-test or Welch, intervals, sample-ratio check, power, corrections) and judges declared gates.";
    const OUTPUTS: &'static [&'static str] = &[
        "passed",
        "verdict",
        "verdicts",
        "reasons",
        "srm_ok",
        "lift",
        "p_value",
        "customers",
        "assignment_run",
    ];
    type Config = AbConfig;

    fn check(&self, config: &AbConfig, ctx: &CheckContext<'_>) -> Vec<FieldError> {
        let mut problems = config.problems(ctx.needs);
        // When the outcomes' columns are known before the run, check the ones named here.
        let columns = ctx.input_columns.get(&config.outcomes).map(Vec::as_slice);
        let root = YamlPath::root();
        problems.extend(input::check_column(
            root.key("customer"),
            &config.customer,
            columns,
        ));
        for (i, metric) in config.metrics.iter().enumerate() {
            problems.extend(input::check_column(
                root.key("metrics").index(i),
                metric.column(),
                columns,
            ));
        }
        problems
    }

    fn output_columns(&self, _config: &AbConfig, _ctx: &CheckContext<'_>) -> Option<Vec<Column>> {
        Some(ab_report::results_columns())
    }

    async fn run(&self, config: AbConfig, ctx: &StepContext) -> Result<StepOutput, StepError> {
        let needs: Vec<String> = ctx.inputs.iter().map(|i| i.id.clone()).collect();
        let problems = config.problems(&needs);
        if !problems.is_empty() {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("with.{}: {}", p.path, p.message))
                .collect();
            return Err(StepError::permanent(lines.join("; ")));
        }
        let assignment = assignment::load(&config.assignment, ctx).await?;
        ctx.info(&format!(
            "assignment from {}: {} customers",
            assignment.origin,
            assignment.len()
        ));
        let outcomes = outcomes::load(
            &config.outcomes,
            &config.customer,
            &config.metrics,
            &assignment,
            ctx,
        )
        .await?;
        if outcomes.unmatched_rows > 0 {
            ctx.warn(&format!(
                "{} of {} outcome rows belong to customers outside the assignment and were ignored",
                outcomes.unmatched_rows, outcomes.rows
            ));
        }
        for metric in &outcomes.metrics {
            ctx.info(&format!(
                "metric {} is a {}",
                metric.name,
                metric.metric_type.name()
            ));
        }

        let (groups, group_index) = groups(&config, &assignment, ctx)?;
        let settings = Settings {
            alpha: config.alpha,
            power: config.power,
            min_per_group: config.min_per_group,
            correction: config.correction,
            missing_as_zero: config.missing == Missing::Zero,
        };
        let analysis = analysis::analyse(&assignment, &outcomes, groups, &group_index, &settings);
        let gate_metric = config.gate_metric();
        let require = config.require.clone().unwrap_or_default();
        let judgements = gates::judge(
            &analysis,
            gate_metric,
            &require,
            config.srm_threshold,
            config.correction.name(),
        );
        let passed = gates::passed(&judgements, config.scope, config.insufficient_data);
        let srm_ok = !analysis
            .populations
            .iter()
            .any(|p| matches!(&p.srm, Some(Ok(test)) if !test.ok(config.srm_threshold)));

        let context = ab_report::ReportContext {
            origin: &assignment.origin,
            customers: assignment.len(),
            outcome_rows: outcomes.rows,
            unmatched_rows: outcomes.unmatched_rows,
            settings: &settings,
            srm_threshold: config.srm_threshold,
            gate_metric,
            gates_set: config.require.is_some(),
            passed,
            on_fail: config.on_fail,
        };
        let results = ab_report::results_dataset(&analysis, &judgements, gate_metric)?;
        ctx.write_dataset(
            crate::data::MAIN_DATASET,
            results.schema(),
            std::slice::from_ref(&results),
        )?;
        ctx.write_report(&ab_report::report(&analysis, &judgements, &context))?;

        let overall = &judgements[0];
        let verdicts: Map<String, Value> = judgements[1..]
            .iter()
            .map(|j| (j.label().to_string(), json!(j.verdict.as_str())))
            .collect();
        let reasons: Map<String, Value> = judgements[1..]
            .iter()
            .filter(|j| j.verdict != Verdict::Pass)
            .map(|j| (j.label().to_string(), json!(j.reasons)))
            .collect();
        let headline = analysis.populations[0].metrics[gate_metric]
            .comparisons
            .first();
        let lift = headline
            .and_then(|c| c.relative.as_ref().ok())
            .and_then(|i| finite(i.estimate));
        let p_value = headline
            .and_then(|c| c.p_value.as_ref().ok())
            .and_then(|p| finite(*p));
        let output = StepOutput::default()
            .with("passed", passed)
            .with("verdict", overall.verdict.as_str())
            .with("verdicts", Value::Object(verdicts))
            .with("reasons", Value::Object(reasons))
            .with("srm_ok", srm_ok)
            .with("lift", lift.map_or(Value::Null, |x| json!(x)))
            .with("p_value", p_value.map_or(Value::Null, |x| json!(x)))
            .with("customers", assignment.len())
            .with("assignment_run", assignment.run_id.clone());

        if config.require.is_some() && !passed {
            let message = failure_message(&judgements, config.scope, config.insufficient_data);
            match config.on_fail {
                OnFail::Fail => return Err(StepError::permanent(message)),
                OnFail::Warn => ctx.warn(&message),
            }
        }
        Ok(output)
    }
}

/// The groups in report order, and each assignment group's position among them.
fn groups(
    config: &AbConfig,
    assignment: &assignment::Assignment,
    ctx: &StepContext,
) -> Result<(Groups, Vec<usize>), StepError> {
    let weights = config
        .weights
        .clone()
        .or_else(|| assignment.weights.clone());
    let mut names: Vec<String> = weights
        .as_ref()
        .map(|w| w.keys().cloned().collect())
        .unwrap_or_default();
    let mut extra: Vec<&String> = assignment
        .groups
        .iter()
        .filter(|g| !names.contains(g))
        .collect();
    extra.sort();
    names.extend(extra.into_iter().cloned());
    if weights.is_some() && !names.contains(&config.control) {
        return Err(StepError::permanent(format!(
            "the expected split has no group `{}`; its groups are {}; set `control:` to the control group's name",
            config.control,
            names.join(", ")
        )));
    }
    if !assignment.groups.contains(&config.control) && assignment.groups.len() >= 2 {
        // Several groups and none of them is the control: a misnamed `control:`, not an
        // experiment where everybody landed in one group.
        let hint = crate::spec::suggest::hint(
            &config.control,
            assignment.groups.iter().map(String::as_str),
        )
        .map(|h| format!(" ({h})"))
        .unwrap_or_default();
        return Err(StepError::permanent(format!(
            "the assignment has no group `{}`; its groups are {}{hint}; set `control:` to the control group's name",
            config.control,
            assignment.groups.join(", ")
        )));
    }
    if !assignment.groups.contains(&config.control) {
        ctx.warn(&format!(
            "nobody in the assignment is in group `{}` (groups found: {}); set `control:` if the control group has another name",
            config.control,
            assignment.groups.join(", ")
        ));
    }
    if weights.is_none() {
        ctx.warn(
            "the expected split is unknown, so the sample ratio is not checked; give `weights:`",
        );
        names.retain(|n| n != &config.control);
        names.insert(0, config.control.clone());
    }
    let control = names
        .iter()
        .position(|n| n == &config.control)
        .expect("the control group is among the names");
    let position: HashMap<&str, usize> = names
        .iter()
        .enumerate()
        .map(|(i, n)| (n.as_str(), i))
        .collect();
    let group_index = assignment
        .groups
        .iter()
        .map(|g| position[g.as_str()])
        .collect();
    let weights = weights.map(|w| {
        names
            .iter()
            .map(|n| w.get(n).copied().unwrap_or(0.0))
            .collect()
    });
    Ok((
        Groups {
            names,
            control,
            weights,
        },
        group_index,
    ))
}

/// "gates did not pass: overall: …; Champions: …".
fn failure_message(
    judgements: &[gates::Judgement],
    scope: Scope,
    insufficient: InsufficientData,
) -> String {
    let considered = judgements.iter().filter(|j| match scope {
        Scope::All => true,
        Scope::Overall => j.segment.is_none(),
        Scope::Segments => j.segment.is_some(),
    });
    let mut lines = Vec::new();
    let mut any_pass = false;
    for judgement in considered {
        match judgement.verdict {
            Verdict::Fail => lines.push(format!(
                "{}: {}",
                judgement.label(),
                judgement.reasons.join(", ")
            )),
            Verdict::Insufficient if insufficient == InsufficientData::Fail => lines.push(format!(
                "{}: insufficient data ({})",
                judgement.label(),
                judgement.reasons.join(", ")
            )),
            Verdict::Pass => any_pass = true,
            Verdict::Insufficient => {}
        }
    }
    if lines.is_empty() && !any_pass {
        let unjudged: Vec<String> = judgements
            .iter()
            .map(|j| format!("{}: {}", j.label(), j.reasons.join(", ")))
            .collect();
        return format!(
            "gates not passed: nothing had enough data to judge ({})",
            unjudged.join("; ")
        );
    }
    format!("gates failed: {}", lines.join("; "))
}
