//! Shared helpers for the integration tests: a throwaway project folder and the real binary.

#![allow(dead_code)]

pub mod datasets;
pub mod experiment;
pub mod http_server;
pub mod parquet;
pub mod plugins;
pub mod postgres;
pub mod receiver;
pub mod serve;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use serde_json::Value;

/// The segflow binary cargo built for these tests.
pub fn bin() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_segflow"))
}

/// A project folder with `pipelines/`, deleted when dropped.
pub struct Project {
    dir: tempfile::TempDir,
}

/// What a finished command printed.
#[derive(Debug)]
pub struct Run {
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    fn from(output: Output) -> Self {
        Run {
            code: output.status.code(),
            stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
        }
    }

    /// Asserts the command succeeded, showing what it printed when it did not.
    #[track_caller]
    pub fn ok(self) -> Self {
        assert_eq!(
            self.code,
            Some(0),
            "expected success\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    #[track_caller]
    pub fn failed(self) -> Self {
        assert_eq!(
            self.code,
            Some(1),
            "expected exit code 1\nstdout:\n{}\nstderr:\n{}",
            self.stdout,
            self.stderr
        );
        self
    }

    /// The run id printed by `segflow run` / `resume` (`run ID state…`).
    pub fn run_id(&self) -> String {
        self.stdout
            .lines()
            .chain(self.stderr.lines())
            .find_map(|l| {
                l.strip_prefix("run ")
                    .and_then(|r| r.split_whitespace().next())
            })
            .filter(|id| id.len() == 26)
            .map(str::to_string)
            .unwrap_or_else(|| {
                panic!(
                    "no run id in output\nstdout:\n{}\nstderr:\n{}",
                    self.stdout, self.stderr
                )
            })
    }

    pub fn json(&self) -> Value {
        serde_json::from_str(&self.stdout)
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}):\n{}", self.stdout))
    }
}

impl Project {
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("segflow-test-")
            .tempdir()
            .expect("a temp dir");
        std::fs::create_dir_all(dir.path().join("pipelines")).expect("pipelines folder");
        Project { dir }
    }

    pub fn path(&self, relative: impl AsRef<Path>) -> PathBuf {
        self.dir.path().join(relative)
    }

    pub fn root(&self) -> &Path {
        self.dir.path()
    }

    /// Writes a file (creating folders) and returns its path.
    pub fn write(&self, relative: impl AsRef<Path>, content: &str) -> PathBuf {
        let path = self.path(relative);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("parent folder");
        }
        std::fs::write(&path, content).expect("write file");
        path
    }

    /// Writes `pipelines/NAME.yaml`.
    pub fn pipeline(&self, name: &str, yaml: &str) -> PathBuf {
        self.write(format!("pipelines/{name}.yaml"), yaml)
    }

    pub fn read(&self, relative: impl AsRef<Path>) -> String {
        std::fs::read_to_string(self.path(relative)).unwrap_or_default()
    }

    /// A command for the binary, in the project folder, with a clean environment for segflow.
    pub fn command(&self, args: &[&str]) -> Command {
        let mut command = Command::new(bin());
        command
            .args(args)
            .current_dir(self.root())
            .env_remove("SEGFLOW_HOME")
            .env_remove("SEGFLOW_LOG")
            .env_remove("SEGFLOW_SECRETS_FILE")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null());
        command
    }

    /// Runs the binary to completion.
    pub fn segflow(&self, args: &[&str]) -> Run {
        Run::from(self.command(args).output().expect("segflow runs"))
    }

    /// `runs show RUN --json`.
    pub fn show(&self, run_id: &str) -> Value {
        self.segflow(&["runs", "show", run_id, "--json"])
            .ok()
            .json()
    }

    /// The outputs of one step of a run.
    #[track_caller]
    pub fn outputs(&self, run_id: &str, step_id: &str) -> Value {
        step(&self.show(run_id), step_id)["outputs"].clone()
    }
}

/// One step of a shown run (`runs show RUN --json`), by id.
#[track_caller]
pub fn step<'a>(shown: &'a Value, id: &str) -> &'a Value {
    shown["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .find(|s| s["id"] == id)
        .unwrap_or_else(|| panic!("no step {id} in {shown}"))
}

/// Why a step of a shown run failed or was skipped (empty when it says nothing).
#[track_caller]
pub fn step_reason(shown: &Value, id: &str) -> String {
    step(shown, id)["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string()
}

/// The state of each step of a shown run, as `id -> state`.
pub fn step_states(shown: &Value) -> Vec<(String, String)> {
    shown["steps"]
        .as_array()
        .expect("steps")
        .iter()
        .map(|s| {
            (
                s["id"].as_str().unwrap().to_string(),
                s["state"].as_str().unwrap().to_string(),
            )
        })
        .collect()
}

/// The PostgreSQL URL for tests that need the database. Without one, says loudly that the test
/// is skipped; with `SEGFLOW_REQUIRE_DATABASE=1` (as `.ci/run` sets) a missing URL fails instead.
pub fn database_url(test: &str) -> Option<String> {
    match std::env::var("SEGFLOW_TEST_DATABASE_URL") {
        Ok(url) if !url.is_empty() => Some(url),
        _ => {
            if std::env::var("SEGFLOW_REQUIRE_DATABASE").is_ok_and(|v| v == "1") {
                panic!(
                    "{test}: SEGFLOW_REQUIRE_DATABASE=1 but SEGFLOW_TEST_DATABASE_URL is not set"
                );
            }
            say_skipped(
                test,
                "set SEGFLOW_TEST_DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/test) to run it",
            );
            None
        }
    }
}

/// Tells loudly that a test did not really run. Written straight to the process's stderr,
/// which the test harness does not capture, so it shows even when the test "passes".
pub fn say_skipped(test: &str, how_to_run: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "\n!!! SKIPPED {test}: {how_to_run}\n");
}
