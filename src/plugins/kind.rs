//! A plugin's step kind as the engine sees it: `plugin.NAME.KIND`, its `with` checked against the
//! plugin's JSON Schema, and each attempt one run of the plugin's program (the protocol in
//! `protocol.rs`).

use std::collections::HashSet;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};

use super::datasets;
use super::load::{KindSpec, Plugin, resolve_executable};
use super::protocol::{
    self, InputColumn, PERMANENT_EXIT_CODES, PROTOCOL_VERSION, PluginInfo, Request, RunInfo,
    StepInfo,
};
use crate::data::MAIN_DATASET;
use crate::spec::deserialize::FieldError;
use crate::spec::yaml_path::YamlPath;
use crate::steps::process::{self, ProcessError};
use crate::steps::{CheckContext, StepContext, StepError, StepKind, StepOutput};

/// How much a plugin may print as its result; more is a bug in the plugin (data goes in files).
const RESULT_LIMIT: usize = 16 * 1024 * 1024;

pub struct PluginKind {
    plugin: Arc<Plugin>,
    spec: Arc<KindSpec>,
    name: String,
}

impl PluginKind {
    pub fn new(plugin: Arc<Plugin>, spec: Arc<KindSpec>) -> Self {
        let name = plugin.uses(&spec.name);
        PluginKind { plugin, spec, name }
    }

    /// "plugin.churn.score" for messages.
    fn what(&self) -> String {
        format!("plugin `{}` (kind `{}`)", self.plugin.name, self.spec.name)
    }

    fn check_input_count(&self, count: usize) -> Option<String> {
        let inputs = &self.spec.inputs;
        let plural = |n: usize| if n == 1 { "" } else { "s" };
        if count < inputs.min {
            return Some(format!(
                "`{}` reads {} upstream dataset{} at least, but the step has {count}",
                self.name,
                inputs.min,
                plural(inputs.min)
            ));
        }
        match inputs.max {
            Some(max) if count > max => Some(format!(
                "`{}` reads {max} upstream dataset{} at most, but the step has {count}",
                self.name,
                plural(max)
            )),
            _ => None,
        }
    }
}

#[async_trait]
impl StepKind for PluginKind {
    fn name(&self) -> &str {
        &self.name
    }

    fn description(&self) -> &str {
        &self.spec.description
    }

    fn config_schema(&self) -> Value {
        let schema = &self.spec.schema.schema;
        // Inside the pipeline schema a `$ref` would point at the wrong document: offer the
        // description alone then, and let `segflow validate` check the rest.
        if schema.to_string().contains("\"$ref\"") {
            json!({ "type": "object" })
        } else {
            schema.clone()
        }
    }

    fn outputs(&self, _with: &Value) -> Option<Vec<String>> {
        self.spec.outputs.clone()
    }

    fn check(&self, with: &Value, ctx: &CheckContext<'_>) -> Vec<FieldError> {
        let mut errors = self.spec.schema.check(with, &ctx.dynamic);
        // Each step named in `needs` hands over its main dataset (and maybe others); too few
        // is certain to fail at run time.
        if ctx.needs.len() < self.spec.inputs.min
            && let Some(message) = self.check_input_count(ctx.needs.len())
        {
            errors.push(FieldError {
                path: YamlPath::root(),
                message,
                hint: Some("list the steps whose datasets it reads under `needs`".into()),
                at_key: false,
            });
        }
        errors
    }

    async fn run(&self, with: Value, ctx: &StepContext) -> Result<StepOutput, StepError> {
        let problems = self.spec.schema.check(&with, &[]);
        if !problems.is_empty() {
            let lines: Vec<String> = problems
                .iter()
                .map(|e| match e.path.is_empty() {
                    true => format!("with: {}", e.message),
                    false => format!("with.{}: {}", e.path, e.message),
                })
                .collect();
            return Err(StepError::permanent(format!(
                "invalid config for `{}`: {}",
                self.name,
                lines.join("; ")
            )));
        }
        let main_inputs = ctx.inputs.iter().filter(|i| i.main().is_some()).count();
        if let Some(message) = self.check_input_count(main_inputs) {
            return Err(StepError::permanent(message));
        }
        // The program may have been swapped since the plugin was loaded: check again.
        let program = resolve_executable(&self.plugin.dir, &self.spec.executable)
            .map_err(|(message, _)| StepError::permanent(format!("{}: {message}", self.what())))?;

        let work_dir = ctx.step_dir().join(format!("plugin-{}", ctx.attempt));
        if work_dir.exists() {
            std::fs::remove_dir_all(&work_dir)?;
        }
        let output_dir = std::path::absolute(work_dir.join("out"))?;
        std::fs::create_dir_all(&output_dir)?;
        let inputs =
            datasets::inputs_for(ctx, self.spec.inputs.format, &work_dir.join("inputs")).await?;

        let input_columns: Vec<InputColumn> = inputs
            .iter()
            .flat_map(|i| i.columns.iter())
            .map(|c| InputColumn {
                name: c.name.clone(),
                data_type: c.data_type.clone(),
            })
            .collect();
        let request = Request {
            protocol: PROTOCOL_VERSION,
            plugin: PluginInfo {
                name: self.plugin.name.clone(),
                version: self.plugin.version.clone(),
                dir: self.plugin.dir.clone(),
            },
            kind: self.spec.name.clone(),
            step: StepInfo {
                id: ctx.step_id.clone(),
                attempt: ctx.attempt,
            },
            run: RunInfo {
                id: ctx.run_id.clone(),
                pipeline: ctx.pipeline.clone(),
                params: ctx.params.clone(),
                project_dir: std::path::absolute(&ctx.base_dir)?,
            },
            with,
            inputs,
            output_dir: output_dir.clone(),
        };
        let mut stdin = serde_json::to_vec(&request).map_err(|e| {
            StepError::permanent(format!(
                "cannot write the plugin's request: {e} (file paths must be UTF-8)"
            ))
        })?;
        stdin.push(b'\n');

        let mut command = tokio::process::Command::new(&program);
        command.args(&self.spec.args).current_dir(&self.plugin.dir);
        // A plugin gets the secrets its step's config names, in the request, and no others
        // (`process::run` keeps segflow's secret variables out of its environment).
        let options = process::Options {
            stdin: Some(stdin),
            stdout: process::Stdout::Capture {
                limit: RESULT_LIMIT,
            },
            kill_grace: process::DEFAULT_GRACE,
        };
        let finished = match process::run(command, options, ctx).await {
            Ok(finished) => finished,
            Err(ProcessError::Start(e)) => {
                return Err(StepError::permanent(format!(
                    "cannot start {} ({}): {e}",
                    self.what(),
                    self.spec.executable
                )));
            }
            Err(e @ ProcessError::Cancelled) => return Err(StepError::permanent(e.to_string())),
            Err(e @ ProcessError::Wait(_)) => return Err(StepError::new(e.to_string())),
        };
        if !finished.status.success() {
            let message = finished.failure_message(&self.what());
            return Err(match finished.status.code() {
                Some(code) if PERMANENT_EXIT_CODES.contains(&code) => StepError::permanent(message),
                _ => StepError::new(message),
            });
        }
        if finished.stdout_overflow {
            return Err(StepError::permanent(format!(
                "{} printed more than {} MiB on stdout; its result must be one small JSON object (datasets go in files)",
                self.what(),
                RESULT_LIMIT / (1024 * 1024)
            )));
        }
        let response = protocol::parse_response(&finished.stdout)
            .map_err(|why| StepError::permanent(format!("{}: {why}", self.what())))?;

        if let Some(declared) = &self.spec.outputs {
            let missing: Vec<&str> = declared
                .iter()
                .filter(|name| !response.outputs.contains_key(name.as_str()))
                .map(String::as_str)
                .collect();
            if !missing.is_empty() {
                return Err(StepError::permanent(format!(
                    "{} did not set the output{} {} that its plugin.yaml promises",
                    self.what(),
                    if missing.len() == 1 { "" } else { "s" },
                    backticked(&missing)
                )));
            }
        }
        let mut seen = HashSet::new();
        for dataset in &response.datasets {
            if !self.spec.writes.contains(&dataset.name) {
                return Err(StepError::permanent(format!(
                    "{} returned a dataset `{}` that its plugin.yaml does not list under `writes` ({})",
                    self.what(),
                    dataset.name,
                    backticked(
                        &self
                            .spec
                            .writes
                            .iter()
                            .map(String::as_str)
                            .collect::<Vec<_>>()
                    )
                )));
            }
            if !seen.insert(dataset.name.as_str()) {
                return Err(StepError::permanent(format!(
                    "{} returned the dataset `{}` twice",
                    self.what(),
                    dataset.name
                )));
            }
        }
        let missing: Vec<&str> = self
            .spec
            .writes
            .iter()
            .filter(|name| !seen.contains(name.as_str()))
            .map(String::as_str)
            .collect();
        if !missing.is_empty() {
            return Err(StepError::permanent(format!(
                "{} did not return the dataset{} {} that its plugin.yaml lists under `writes`",
                self.what(),
                if missing.len() == 1 { "" } else { "s" },
                backticked(&missing)
            )));
        }
        for dataset in &response.datasets {
            let written = datasets::import(ctx, &output_dir, dataset, &input_columns).await?;
            let label = if written.name == MAIN_DATASET {
                "its main dataset".to_string()
            } else {
                format!("the dataset `{}`", written.name)
            };
            ctx.info(&format!(
                "the plugin wrote {label}: {} rows, {} columns",
                written.rows,
                written.columns.len()
            ));
        }
        // The files were copied into the run's datasets; CSV copies need not stay twice.
        if let Err(e) = std::fs::remove_dir_all(&work_dir) {
            ctx.warn(&format!("could not remove {}: {e}", work_dir.display()));
        }
        Ok(StepOutput {
            outputs: response.outputs,
        })
    }
}

fn backticked(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}
