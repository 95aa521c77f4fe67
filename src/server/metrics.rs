//! `GET /metrics` in the Prometheus text format (version 0.0.4), from what the store holds:
//! runs by pipeline and state, how long steps took, and the records publish steps delivered.
//!
//! The figures are read from the store on each scrape, so they cover every run ever recorded,
//! whoever started it. What a finished run adds is cached until the run changes (a resume).

use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;
use std::sync::Mutex;

use chrono::{DateTime, Utc};

use super::ServerState;
use crate::store::{RunRecord, RunState, StateStore, StepState, StoreResult};

/// Step duration buckets, in seconds: from quick SQL steps to hour-long publishes.
const BUCKETS: [f64; 14] = [
    0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0,
];

/// What one run adds to the metrics.
#[derive(Clone)]
struct RunFigures {
    /// The run as it was when these were computed: a change (a resume) computes them again.
    version: (RunState, Option<DateTime<Utc>>, u32),
    /// (step, seconds) of every step that ran to success or failure.
    durations: Vec<(String, f64)>,
    /// (step, dry run, records delivered) of every publish.webhook step that succeeded.
    published: Vec<(String, bool, u64)>,
}

#[derive(Default)]
pub struct MetricsCache {
    finished: Mutex<HashMap<String, RunFigures>>,
}

impl MetricsCache {
    fn figures(&self, store: &dyn StateStore, run: &RunRecord) -> StoreResult<RunFigures> {
        let version = (run.state, run.ended_at, run.resumes);
        if let Some(cached) = self.lock().get(&run.id)
            && cached.version == version
        {
            return Ok(cached.clone());
        }
        let figures = compute(store, run, version)?;
        if run.state.is_finished() {
            self.lock().insert(run.id.clone(), figures.clone());
        }
        Ok(figures)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, RunFigures>> {
        self.finished.lock().unwrap_or_else(|e| e.into_inner())
    }
}

fn compute(
    store: &dyn StateStore,
    run: &RunRecord,
    version: (RunState, Option<DateTime<Utc>>, u32),
) -> StoreResult<RunFigures> {
    let mut figures = RunFigures {
        version,
        durations: Vec::new(),
        published: Vec::new(),
    };
    for step in store.get_steps(&run.id)? {
        if matches!(step.state, StepState::Succeeded | StepState::Failed)
            && let Some(ms) = step.duration_ms()
        {
            figures
                .durations
                .push((step.id.clone(), ms.max(0) as f64 / 1000.0));
        }
        if step.kind == "publish.webhook" && step.state == StepState::Succeeded {
            let count = |name: &str| step.outputs.get(name).and_then(|v| v.as_u64()).unwrap_or(0);
            let dry_run = step
                .outputs
                .get("dry_run")
                .and_then(|v| v.as_bool())
                .unwrap_or(false);
            figures.published.push((
                step.id.clone(),
                dry_run,
                count("sent") + count("already_sent"),
            ));
        }
    }
    Ok(figures)
}

#[derive(Default)]
struct Histogram {
    buckets: [u64; BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    fn observe(&mut self, seconds: f64) {
        for (bucket, le) in self.buckets.iter_mut().zip(BUCKETS) {
            if seconds <= le {
                *bucket += 1;
            }
        }
        self.count += 1;
        self.sum += seconds;
    }
}

/// The whole exposition, read from the store and the service.
pub fn render(state: &ServerState) -> StoreResult<String> {
    let store = state.app.store.as_ref();
    let mut runs: BTreeMap<(String, &'static str), u64> = BTreeMap::new();
    let mut durations: BTreeMap<(String, String), Histogram> = BTreeMap::new();
    let mut published: BTreeMap<(String, String, bool), u64> = BTreeMap::new();
    for run in store.list_runs(None, usize::MAX)? {
        *runs
            .entry((run.pipeline.clone(), run.state.name()))
            .or_default() += 1;
        let figures = state.metrics.figures(store, &run)?;
        for (step, seconds) in figures.durations {
            durations
                .entry((run.pipeline.clone(), step))
                .or_default()
                .observe(seconds);
        }
        for (step, dry_run, records) in figures.published {
            *published
                .entry((run.pipeline.clone(), step, dry_run))
                .or_default() += records;
        }
    }

    let mut out = String::new();
    family(
        &mut out,
        "segflow_runs",
        "gauge",
        "Runs recorded in the state store, by pipeline and state.",
    );
    for ((pipeline, run_state), count) in &runs {
        sample(
            &mut out,
            "segflow_runs",
            &[("pipeline", pipeline), ("state", run_state)],
            *count as f64,
        );
    }
    family(
        &mut out,
        "segflow_runs_active",
        "gauge",
        "Runs this server is executing now.",
    );
    sample(
        &mut out,
        "segflow_runs_active",
        &[],
        state.app.control.running().len() as f64,
    );

    family(
        &mut out,
        "segflow_step_duration_seconds",
        "histogram",
        "How long steps that succeeded or failed took, from their first try to their end.",
    );
    for ((pipeline, step), histogram) in &durations {
        let labels = [("pipeline", pipeline.as_str()), ("step", step.as_str())];
        for (le, count) in BUCKETS.iter().zip(histogram.buckets) {
            let le = le.to_string();
            sample(
                &mut out,
                "segflow_step_duration_seconds_bucket",
                &[labels[0], labels[1], ("le", &le)],
                count as f64,
            );
        }
        sample(
            &mut out,
            "segflow_step_duration_seconds_bucket",
            &[labels[0], labels[1], ("le", "+Inf")],
            histogram.count as f64,
        );
        sample(
            &mut out,
            "segflow_step_duration_seconds_sum",
            &labels,
            histogram.sum,
        );
        sample(
            &mut out,
            "segflow_step_duration_seconds_count",
            &labels,
            histogram.count as f64,
        );
    }

    family(
        &mut out,
        "segflow_records_published_total",
        "counter",
        "Records publish.webhook steps delivered (dry_run=\"true\": written to the dry-run file instead).",
    );
    for ((pipeline, step, dry_run), records) in &published {
        let dry_run = if *dry_run { "true" } else { "false" };
        sample(
            &mut out,
            "segflow_records_published_total",
            &[("pipeline", pipeline), ("step", step), ("dry_run", dry_run)],
            *records as f64,
        );
    }

    let pipelines = state.app.control.pipelines();
    family(
        &mut out,
        "segflow_pipeline_load_error",
        "gauge",
        "1 when the pipeline file on disk does not load (the last good version stays in use).",
    );
    for pipeline in &pipelines {
        let failed = if pipeline.error.is_some() { 1.0 } else { 0.0 };
        sample(
            &mut out,
            "segflow_pipeline_load_error",
            &[("pipeline", &pipeline.name)],
            failed,
        );
    }
    family(
        &mut out,
        "segflow_pipeline_next_fire_timestamp_seconds",
        "gauge",
        "When a scheduled pipeline runs next (Unix time).",
    );
    for pipeline in &pipelines {
        if let Some(next) = pipeline.schedule.as_ref().and_then(|s| s.next_fire) {
            sample(
                &mut out,
                "segflow_pipeline_next_fire_timestamp_seconds",
                &[("pipeline", &pipeline.name)],
                next.timestamp() as f64,
            );
        }
    }
    Ok(out)
}

fn family(out: &mut String, name: &str, kind: &str, help: &str) {
    let help = help.replace('\\', "\\\\").replace('\n', "\\n");
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

fn sample(out: &mut String, name: &str, labels: &[(&str, &str)], value: f64) {
    out.push_str(name);
    if !labels.is_empty() {
        out.push('{');
        for (i, (label, text)) in labels.iter().enumerate() {
            if i > 0 {
                out.push(',');
            }
            let _ = write!(out, "{label}=\"{}\"", escape_label(text));
        }
        out.push('}');
    }
    let _ = writeln!(out, " {}", number(value));
}

/// Label values escape `\`, `"` and newlines, as the text format requires.
fn escape_label(text: &str) -> String {
    text.replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

fn number(value: f64) -> String {
    if value.is_nan() {
        "NaN".into()
    } else if value.is_infinite() {
        if value > 0.0 {
            "+Inf".into()
        } else {
            "-Inf".into()
        }
    } else {
        value.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn samples_escape_labels() {
        let mut out = String::new();
        sample(&mut out, "m", &[("pipeline", "a\"b\\c\nd")], 1.5);
        assert_eq!(out, "m{pipeline=\"a\\\"b\\\\c\\nd\"} 1.5\n");
        let mut out = String::new();
        sample(&mut out, "m", &[], 3.0);
        assert_eq!(out, "m 3\n");
    }

    #[test]
    fn histograms_are_cumulative() {
        let mut histogram = Histogram::default();
        histogram.observe(0.2);
        histogram.observe(7.0);
        assert_eq!(histogram.buckets[0], 0); // 0.05
        assert_eq!(histogram.buckets[2], 1); // 0.25
        assert_eq!(histogram.buckets[7], 2); // 10
        assert_eq!(histogram.count, 2);
        assert!((histogram.sum - 7.2).abs() < 1e-9);
    }
}
