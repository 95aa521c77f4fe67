//! Run state: a trait, and its embedded sled implementation (nothing to install).

mod records;
mod sled_store;
mod view;

pub use records::*;
pub use sled_store::SledStore;
pub use view::{LookupError, find_dataset, find_step, run_summary};

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("the state folder {path} is in use by another segflow process{holder}\n  {hint}")]
    Locked {
        path: PathBuf,
        holder: String,
        hint: String,
    },
    #[error("cannot open the state folder {path}: {source}")]
    Open {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("state storage failed: {0}")]
    Sled(#[from] sled::Error),
    #[error(
        "a state record is unreadable ({what}): {source}; the state folder may come from a newer segflow"
    )]
    Corrupt {
        what: String,
        source: serde_json::Error,
    },
}

pub type StoreResult<T> = Result<T, StoreError>;

/// Everything segflow remembers. Every write that records a state change is flushed to disk
/// before the call returns, so a crash right after it loses nothing.
pub trait StateStore: Send + Sync {
    /// Writes a run (when given) and some of its steps and events, then flushes: one durable
    /// transition.
    fn commit(
        &self,
        run_id: &str,
        run: Option<&RunRecord>,
        steps: &[&StepRecord],
        events: &[Event],
    ) -> StoreResult<()>;
    fn get_run(&self, id: &str) -> StoreResult<Option<RunRecord>>;
    /// Runs, newest first; only those of `pipeline` when given.
    fn list_runs(&self, pipeline: Option<&str>, limit: usize) -> StoreResult<Vec<RunRecord>> {
        self.list_runs_where(&|run| pipeline.is_none_or(|p| p == run.pipeline), limit)
    }
    /// The first `limit` runs, newest first, that `keep` keeps; the scan stops there.
    fn list_runs_where(
        &self,
        keep: &dyn Fn(&RunRecord) -> bool,
        limit: usize,
    ) -> StoreResult<Vec<RunRecord>>;
    /// The run ids that start with `prefix` (for short ids on the command line).
    fn find_runs(&self, prefix: &str) -> StoreResult<Vec<RunId>>;
    /// A run's steps, in pipeline-file order.
    fn get_steps(&self, run_id: &str) -> StoreResult<Vec<StepRecord>>;
    fn events(&self, run_id: &str) -> StoreResult<Vec<Event>>;
    /// Appends a log line; it becomes durable with the next commit.
    fn append_log(&self, run_id: &str, line: &LogLine) -> StoreResult<()>;
    fn logs(&self, run_id: &str, step: Option<&str>) -> StoreResult<Vec<LogLine>>;
    /// Small keyed records for other parts (scheduler fire times, publish acknowledgements).
    fn kv_get(&self, namespace: &str, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Writes and flushes.
    fn kv_put(&self, namespace: &str, key: &str, value: &[u8]) -> StoreResult<()>;
    /// Writes several records and flushes once (a group commit): as durable as `kv_put` for
    /// each, for the price of one flush.
    fn kv_put_many(&self, namespace: &str, entries: &[(String, Vec<u8>)]) -> StoreResult<()> {
        for (key, value) in entries {
            self.kv_put(namespace, key, value)?;
        }
        Ok(())
    }
    fn kv_remove(&self, namespace: &str, key: &str) -> StoreResult<()>;
    /// Keys and values of a namespace whose key starts with `prefix`, in key order.
    fn kv_scan(&self, namespace: &str, prefix: &str) -> StoreResult<Vec<(String, Vec<u8>)>>;
    /// Where run folders (datasets) live.
    fn runs_dir(&self) -> PathBuf;
}
