//! `shell`: runs a program with arguments (an argv list, never a shell string).
//!
//! stdout and stderr go to the step's log; a non-zero exit fails the step; the program may
//! write a JSON object of outputs to the file named by `$SEGFLOW_OUTPUTS`. The program runs as
//! `process` runs every external program: its whole process group is stopped on cancellation,
//! timeout or exit.

use async_trait::async_trait;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Deserializer};
use serde_json::{Map, Value};

use super::process::{self, ProcessError};
use super::{Kind, StepContext, StepError, StepOutput};
use crate::spec::duration::HumanDuration;

pub struct Shell;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ShellConfig {
    /// The program and its arguments, e.g. `["python3", "score.py", "--as-of", "${{ params.as_of }}"]`.
    /// No shell reads it: to use one, write `["sh", "-c", "…"]`.
    #[serde(deserialize_with = "argv")]
    #[schemars(length(min = 1))]
    pub command: Vec<String>,
    /// Environment variables added to segflow's own.
    #[serde(default)]
    pub env: IndexMap<String, String>,
    /// Working folder, relative to the project folder (default: the project folder).
    #[serde(default)]
    pub cwd: Option<String>,
    /// The output names the program writes to `$SEGFLOW_OUTPUTS`, so `validate` can check
    /// references to them. Without it any name is accepted.
    #[serde(default)]
    pub outputs: Option<Vec<String>>,
    /// How long the program gets to exit after SIGTERM before it is killed (default 5s).
    #[serde(default)]
    pub kill_grace: Option<HumanDuration>,
}

fn argv<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Arg {
        Text(String),
        Number(serde_json::Number),
        Bool(bool),
    }
    let value = Value::deserialize(deserializer)?;
    if let Value::String(text) = &value {
        return Err(serde::de::Error::custom(format!(
            "`command` is a list of arguments, not a shell string; write [\"sh\", \"-c\", {text:?}] to run it through a shell, or split it: {:?}",
            text.split_whitespace().collect::<Vec<_>>()
        )));
    }
    let args: Vec<Arg> = Vec::deserialize(value).map_err(serde::de::Error::custom)?;
    if args.is_empty() {
        return Err(serde::de::Error::custom(
            "`command` is empty; give the program and its arguments",
        ));
    }
    Ok(args
        .into_iter()
        .map(|a| match a {
            Arg::Text(t) => t,
            Arg::Number(n) => n.to_string(),
            Arg::Bool(b) => b.to_string(),
        })
        .collect())
}

#[async_trait]
impl Kind for Shell {
    const NAME: &'static str = "shell";
    const DESCRIPTION: &'static str =
        "Runs a program (argv list); logs its output; outputs from $SEGFLOW_OUTPUTS.";
    type Config = ShellConfig;

    fn outputs(&self, config: &ShellConfig) -> Option<Vec<String>> {
        config.outputs.clone()
    }

    async fn run(&self, config: ShellConfig, ctx: &StepContext) -> Result<StepOutput, StepError> {
        let step_dir = ctx.step_dir();
        std::fs::create_dir_all(&step_dir)?;
        let outputs_file = step_dir.join(format!("outputs-{}.json", ctx.attempt));
        let _ = std::fs::remove_file(&outputs_file);
        let cwd = config
            .cwd
            .as_deref()
            .map_or_else(|| ctx.base_dir.clone(), |c| ctx.resolve_path(c));

        let program = &config.command[0];
        let mut command = tokio::process::Command::new(program);
        command
            .args(&config.command[1..])
            .envs(&config.env)
            .env("SEGFLOW_RUN_ID", &ctx.run_id)
            .env("SEGFLOW_PIPELINE", &ctx.pipeline)
            .env("SEGFLOW_STEP_ID", &ctx.step_id)
            .env("SEGFLOW_ATTEMPT", ctx.attempt.to_string())
            .env("SEGFLOW_OUTPUTS", &outputs_file)
            .env("SEGFLOW_STEP_DIR", &step_dir)
            .env("SEGFLOW_RUN_DIR", &ctx.run_dir)
            .current_dir(&cwd);
        let options = process::Options {
            stdin: None,
            stdout: process::Stdout::Log,
            kill_grace: config.kill_grace.map_or(process::DEFAULT_GRACE, |g| g.0),
        };
        let finished = match process::run(command, options, ctx).await {
            Ok(finished) => finished,
            Err(ProcessError::Start(e)) => {
                let hint = if e.kind() == std::io::ErrorKind::NotFound {
                    if cwd.exists() {
                        " (is it installed and on PATH?)"
                    } else {
                        " (the working folder does not exist)"
                    }
                } else {
                    ""
                };
                return Err(StepError::permanent(format!(
                    "cannot start `{program}`: {e}{hint}"
                )));
            }
            Err(e @ ProcessError::Cancelled) => return Err(StepError::permanent(e.to_string())),
            Err(e @ ProcessError::Wait(_)) => return Err(StepError::new(e.to_string())),
        };
        if !finished.status.success() {
            return Err(StepError::new(
                finished.failure_message(&format!("`{program}`")),
            ));
        }
        let outputs = read_outputs(&outputs_file);
        // The file may hold secrets in clear; what is kept is the redacted copy in the store.
        let _ = std::fs::remove_file(&outputs_file);
        Ok(StepOutput { outputs: outputs? })
    }
}

fn read_outputs(path: &std::path::Path) -> Result<Map<String, Value>, StepError> {
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Map::new()),
        Err(e) => return Err(e.into()),
    };
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(StepError::permanent(
            "$SEGFLOW_OUTPUTS must hold a JSON object, like {\"rows\": 42}",
        )),
        Err(e) => Err(StepError::permanent(format!(
            "$SEGFLOW_OUTPUTS is not valid JSON: {e}"
        ))),
    }
}
