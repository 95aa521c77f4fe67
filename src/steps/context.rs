//! What a running step gets from the engine: where it is, what it reads, where it writes, and
//! how it logs and learns that it should stop.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use chrono::Utc;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::SessionContext;
use indexmap::IndexMap;
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::data::{self, DataError, DatasetRef, DatasetWriter, UpstreamStep};
use crate::redact;
use crate::report::Report;
use crate::secrets::Secrets;
use crate::store::{LogLine, LogStream, RunRecord, RunState, StateStore, StoreError};

pub struct StepContext {
    pub run_id: String,
    pub pipeline: String,
    pub step_id: String,
    pub attempt: u32,
    pub params: IndexMap<String, Value>,
    /// Relative paths in configs are read from here (the project folder).
    pub base_dir: PathBuf,
    /// This run's folder; every step writes under `<run_dir>/<step id>/`.
    pub run_dir: PathBuf,
    /// The steps this one needs, with their outputs and datasets.
    pub inputs: Vec<UpstreamStep>,
    /// Cancelled on Ctrl-C, run cancellation or this attempt's timeout.
    pub cancel: CancellationToken,
    pub store: Arc<dyn StateStore>,
    pub secrets: Arc<Secrets>,
    datasets: Mutex<Vec<DatasetRef>>,
    report: Mutex<Option<PathBuf>>,
}

impl StepContext {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        run_id: String,
        pipeline: String,
        step_id: String,
        attempt: u32,
        params: IndexMap<String, Value>,
        base_dir: PathBuf,
        run_dir: PathBuf,
        inputs: Vec<UpstreamStep>,
        cancel: CancellationToken,
        store: Arc<dyn StateStore>,
        secrets: Arc<Secrets>,
    ) -> Self {
        StepContext {
            run_id,
            pipeline,
            step_id,
            attempt,
            params,
            base_dir,
            run_dir,
            inputs,
            cancel,
            store,
            secrets,
            datasets: Mutex::new(Vec::new()),
            report: Mutex::new(None),
        }
    }

    /// This step's own folder in the run.
    pub fn step_dir(&self) -> PathBuf {
        self.run_dir.join(&self.step_id)
    }

    /// A config path made absolute against the project folder.
    pub fn resolve_path(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        if path.is_absolute() {
            path.to_path_buf()
        } else {
            self.base_dir.join(path)
        }
    }

    /// Adds a line to the step's log (kept in the state store). Secrets are masked. Never pass
    /// personal data (emails, names) here: logs are meant to be shared.
    pub fn log(&self, stream: LogStream, line: &str) {
        let line = redact::apply(line).into_owned();
        tracing::debug!(run = %self.run_id, step = %self.step_id, "{line}");
        let record = LogLine {
            at: Utc::now(),
            step: self.step_id.clone(),
            attempt: self.attempt,
            stream,
            line,
        };
        if let Err(error) = self.store.append_log(&self.run_id, &record) {
            tracing::warn!(run = %self.run_id, step = %self.step_id, %error, "could not store a log line");
        }
    }

    pub fn info(&self, line: &str) {
        self.log(LogStream::Info, line);
    }

    pub fn warn(&self, line: &str) {
        self.log(LogStream::Warn, line);
    }

    /// The step this one needs with the given id.
    pub fn input(&self, step: &str) -> Option<&UpstreamStep> {
        self.inputs.iter().find(|i| i.id == step)
    }

    /// A DataFusion session with every upstream dataset registered under its step id.
    pub async fn session(&self) -> Result<SessionContext, DataError> {
        data::session_with_inputs(&self.inputs, &self.run_dir).await
    }

    /// Starts writing one of this step's datasets; call `finish_dataset` with the writer at the end.
    pub fn dataset_writer(
        &self,
        name: &str,
        schema: SchemaRef,
    ) -> Result<DatasetWriter, DataError> {
        DatasetWriter::create(&self.run_dir, &self.step_id, name, schema)
    }

    /// Closes a dataset and records it as an output of this step.
    pub fn finish_dataset(&self, writer: DatasetWriter) -> Result<DatasetRef, DataError> {
        let dataset = writer.finish()?;
        self.record_dataset(dataset.clone());
        Ok(dataset)
    }

    /// Writes a whole in-memory dataset, its columns encoded on every core.
    pub fn write_dataset(
        &self,
        name: &str,
        schema: SchemaRef,
        batches: &[RecordBatch],
    ) -> Result<DatasetRef, DataError> {
        let dataset = self
            .dataset_writer(name, schema)?
            .write_all_and_finish(batches)?;
        self.record_dataset(dataset.clone());
        Ok(dataset)
    }

    fn record_dataset(&self, dataset: DatasetRef) {
        let mut datasets = self.datasets.lock().unwrap_or_else(|e| e.into_inner());
        datasets.retain(|d| d.name != dataset.name);
        datasets.push(dataset);
    }

    /// Writes this step's report (`report.json` and `report.md` in its folder) for
    /// `segflow runs show`, the web UI and people.
    pub fn write_report(&self, report: &Report) -> Result<(), DataError> {
        let dir = self.step_dir();
        let io = |source| DataError::Io {
            path: dir.clone(),
            source,
        };
        std::fs::create_dir_all(&dir).map_err(io)?;
        let json = serde_json::to_vec_pretty(report).expect("reports serialize");
        std::fs::write(dir.join("report.json"), json).map_err(io)?;
        std::fs::write(dir.join("report.md"), report.to_markdown()).map_err(io)?;
        let relative = PathBuf::from(&self.step_id).join("report.json");
        *self.report.lock().unwrap_or_else(|e| e.into_inner()) = Some(relative);
        Ok(())
    }

    /// The report written by this attempt, relative to the run folder.
    pub fn report(&self) -> Option<PathBuf> {
        self.report
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The latest run of `pipeline` that succeeded, other than this one.
    pub fn last_successful_run(&self, pipeline: &str) -> Result<Option<RunRecord>, StoreError> {
        let found = self.store.list_runs_where(
            &|r| r.pipeline == pipeline && r.id != self.run_id && r.state == RunState::Succeeded,
            1,
        )?;
        Ok(found.into_iter().next())
    }

    /// A dataset a step of an earlier run wrote, with its file's path.
    pub fn dataset_of_run(
        &self,
        run_id: &str,
        step: &str,
        name: &str,
    ) -> Result<Option<(DatasetRef, PathBuf)>, StoreError> {
        let steps = self.store.get_steps(run_id)?;
        let run_dir = self.store.runs_dir().join(run_id);
        Ok(steps
            .into_iter()
            .find(|s| s.id == step)
            .and_then(|s| s.datasets.into_iter().find(|d| d.name == name))
            .map(|d| {
                let path = d.path(&run_dir);
                (d, path)
            }))
    }

    /// The datasets written so far by this attempt.
    pub fn datasets(&self) -> Vec<DatasetRef> {
        self.datasets
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }
}
