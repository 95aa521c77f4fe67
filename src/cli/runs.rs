//! `segflow runs list` and `segflow runs show RUN`.

use std::process::ExitCode;

use chrono::{DateTime, Utc};

use super::Global;
use super::common::open_store;
use crate::engine::resolve_run_id;
use crate::store::run_summary;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: RunsCommand,
}

#[derive(Debug, clap::Subcommand)]
pub enum RunsCommand {
    /// The latest runs, newest first.
    List {
        /// Only runs of this pipeline.
        #[arg(long)]
        pipeline: Option<String>,
        #[arg(long, default_value_t = 20)]
        limit: usize,
        #[arg(long)]
        json: bool,
    },
    /// One run: its steps, attempts, outputs and datasets.
    Show {
        /// The run id (or a unique prefix of it).
        run: String,
        #[arg(long)]
        json: bool,
    },
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let state = open_store(global, None)?;
    let store = state.store.as_ref();
    match args.command {
        RunsCommand::List {
            pipeline,
            limit,
            json,
        } => {
            let runs = store.list_runs(pipeline.as_deref(), limit)?;
            if json {
                let items: Vec<_> = runs.iter().map(run_summary).collect();
                out!("{}", serde_json::to_string_pretty(&items)?);
                return Ok(ExitCode::SUCCESS);
            }
            if runs.is_empty() {
                out!("no runs yet; start one with `segflow run PIPELINE`");
                return Ok(ExitCode::SUCCESS);
            }
            out!(
                "{:<26}  {:<20}  {:<11}  {:<19}  {:>9}",
                "RUN",
                "PIPELINE",
                "STATE",
                "STARTED",
                "TOOK"
            );
            for run in &runs {
                out!(
                    "{:<26}  {:<20}  {:<11}  {:<19}  {:>9}",
                    run.id,
                    truncate(&run.pipeline, 20),
                    run.state.name(),
                    local_time(run.started_at.unwrap_or(run.created_at)),
                    took(run.started_at, run.ended_at),
                );
            }
        }
        RunsCommand::Show { run, json } => {
            let run_id = resolve_run_id(store, &run)?;
            let run = store.get_run(&run_id)?.expect("resolved ids exist");
            let steps = store.get_steps(&run_id)?;
            if json {
                let mut value = run_summary(&run);
                value["steps"] = serde_json::to_value(&steps)?;
                out!("{}", serde_json::to_string_pretty(&value)?);
                return Ok(ExitCode::SUCCESS);
            }
            out!("run       {}", run.id);
            out!(
                "pipeline  {} ({})",
                run.pipeline,
                run.pipeline_file.display()
            );
            out!(
                "state     {}{}",
                run.state.name(),
                run.error
                    .as_deref()
                    .map(|e| format!(": {e}"))
                    .unwrap_or_default()
            );
            out!(
                "started   {}   took {}",
                local_time(run.started_at.unwrap_or(run.created_at)),
                took(run.started_at, run.ended_at)
            );
            if !run.params.is_empty() {
                let params: Vec<String> =
                    run.params.iter().map(|(k, v)| format!("{k}={v}")).collect();
                out!("params    {}", params.join(" "));
            }
            out!();
            out!(
                "{:<20}  {:<18}  {:<15}  {:>8}  {:>9}  REASON",
                "STEP",
                "KIND",
                "STATE",
                "ATTEMPTS",
                "TOOK"
            );
            for step in &steps {
                out!(
                    "{:<20}  {:<18}  {:<15}  {:>8}  {:>9}  {}",
                    truncate(&step.id, 20),
                    truncate(&step.kind, 18),
                    step.state.name(),
                    step.attempts.len(),
                    took(step.started_at, step.ended_at),
                    step.reason
                        .as_deref()
                        .and_then(|r| r.lines().next())
                        .unwrap_or_default()
                );
            }
            let datasets: Vec<_> = steps.iter().flat_map(|s| &s.datasets).collect();
            if !datasets.is_empty() {
                out!();
                out!("{:<32}  {:>10}  COLUMNS", "DATASET", "ROWS");
                for dataset in datasets {
                    let columns: Vec<String> = dataset
                        .columns
                        .iter()
                        .map(|c| format!("{}:{}", c.name, c.data_type))
                        .collect();
                    out!(
                        "{:<32}  {:>10}  {}",
                        dataset.table_name(),
                        dataset.rows,
                        columns.join(", ")
                    );
                }
            }
            let with_outputs: Vec<_> = steps.iter().filter(|s| !s.outputs.is_empty()).collect();
            if !with_outputs.is_empty() {
                out!();
                out!("OUTPUTS");
                for step in with_outputs {
                    out!(
                        "  {}: {}",
                        step.id,
                        serde_json::Value::Object(step.outputs.clone())
                    );
                }
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

fn local_time(at: DateTime<Utc>) -> String {
    at.with_timezone(&chrono::Local)
        .format("%Y-%m-%d %H:%M:%S")
        .to_string()
}

fn took(start: Option<DateTime<Utc>>, end: Option<DateTime<Utc>>) -> String {
    match (start, end) {
        (Some(start), Some(end)) => {
            let ms = (end - start).num_milliseconds().max(0) as u64;
            if ms < 1000 {
                format!("{ms}ms")
            } else {
                format!("{:.1}s", ms as f64 / 1000.0)
            }
        }
        (Some(_), None) => "…".into(),
        _ => "-".into(),
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        let cut: String = text.chars().take(width - 1).collect();
        format!("{cut}…")
    }
}
