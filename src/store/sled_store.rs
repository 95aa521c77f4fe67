//! The embedded store: sled trees in `.segflow/db`, one process at a time.

use std::convert::Infallible;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;
use serde::de::DeserializeOwned;
use sled::Transactional;

use super::{Event, LogLine, RunId, RunRecord, StateStore, StepRecord, StoreError, StoreResult};

pub struct SledStore {
    db: sled::Db,
    runs: sled::Tree,
    steps: sled::Tree,
    events: sled::Tree,
    logs: sled::Tree,
    kv: sled::Tree,
    dir: PathBuf,
    /// Held for the life of the store: a second process gets `StoreError::Locked`.
    _lock: File,
}

const SEP: u8 = 0;

/// `a SEP b SEP c`: keys that scan by prefix.
fn key(parts: &[&str]) -> Vec<u8> {
    parts
        .iter()
        .map(|p| p.as_bytes())
        .collect::<Vec<_>>()
        .join(&SEP)
}

fn key2(a: &str, b: &str) -> Vec<u8> {
    key(&[a, b])
}

/// The prefix of every key under `parts`.
fn prefix(parts: &[&str]) -> Vec<u8> {
    let mut key = key(parts);
    key.push(SEP);
    key
}

fn encode<T: Serialize>(value: &T) -> Vec<u8> {
    serde_json::to_vec(value).expect("state records always serialize")
}

fn decode<T: DeserializeOwned>(bytes: &[u8], what: &str) -> StoreResult<T> {
    serde_json::from_slice(bytes).map_err(|source| StoreError::Corrupt {
        what: what.to_string(),
        source,
    })
}

/// Opens sled's database. Holding the state folder's lock, nothing but an earlier handle of this
/// same process can still hold sled's own file lock: sled releases it from a background thread
/// a moment after the handle is dropped, so wait for that (sled's own tests block on it too).
fn open_db(path: &Path) -> StoreResult<sled::Db> {
    let config = sled::Config::new()
        .path(path)
        .cache_capacity(64 * 1024 * 1024)
        .flush_every_ms(None);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    loop {
        match config.open() {
            Err(sled::Error::Io(e))
                if e.to_string().starts_with("could not acquire lock")
                    && std::time::Instant::now() < deadline =>
            {
                std::thread::sleep(std::time::Duration::from_millis(20));
            }
            opened => return Ok(opened?),
        }
    }
}

impl SledStore {
    /// Opens (creating if needed) the state folder. Fails at once, without waiting, when another
    /// process holds it.
    pub fn open(dir: &Path) -> StoreResult<Self> {
        let open_err = |source| StoreError::Open {
            path: dir.to_path_buf(),
            source,
        };
        std::fs::create_dir_all(dir).map_err(open_err)?;
        let lock_path = dir.join("lock");
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(open_err)?;
        if lock.try_lock().is_err() {
            let holder = std::fs::read_to_string(&lock_path)
                .ok()
                .map(|h| h.trim().to_string())
                .filter(|h| !h.is_empty())
                .map(|h| format!(" ({h})"))
                .unwrap_or_default();
            // `segflow serve` holds its state for as long as it runs: its API is the way in.
            let hint = if holder.contains(" serve") {
                "that is `segflow serve`: use its HTTP API or web UI while it runs (GET /api/runs, POST /api/pipelines/NAME/runs), or stop it first"
            } else {
                "wait for it to finish, or use another folder with --state-dir or SEGFLOW_HOME"
            };
            return Err(StoreError::Locked {
                path: dir.to_path_buf(),
                holder,
                hint: hint.to_string(),
            });
        }
        let holder = format!(
            "pid {}: {}",
            std::process::id(),
            std::env::args().collect::<Vec<_>>().join(" ")
        );
        lock.set_len(0).map_err(open_err)?;
        lock.write_all(holder.as_bytes()).map_err(open_err)?;

        let db = open_db(&dir.join("db"))?;
        Ok(SledStore {
            runs: db.open_tree("runs")?,
            steps: db.open_tree("steps")?,
            events: db.open_tree("events")?,
            logs: db.open_tree("logs")?,
            kv: db.open_tree("kv")?,
            db,
            dir: dir.to_path_buf(),
            _lock: lock,
        })
    }

    fn flush(&self) -> StoreResult<()> {
        self.db.flush()?;
        Ok(())
    }
}

impl StateStore for SledStore {
    fn commit(
        &self,
        run_id: &str,
        run: Option<&RunRecord>,
        steps: &[&StepRecord],
        events: &[Event],
    ) -> StoreResult<()> {
        let run = run.map(|r| (r.id.as_bytes().to_vec(), encode(r)));
        let steps: Vec<(Vec<u8>, Vec<u8>)> = steps
            .iter()
            .map(|step| (key2(run_id, &step.id), encode(step)))
            .collect();
        let events: Vec<(Vec<u8>, Vec<u8>)> = events
            .iter()
            .map(|event| {
                let seq = self.db.generate_id()?;
                Ok((key2(run_id, &format!("{seq:020}")), encode(event)))
            })
            .collect::<StoreResult<_>>()?;
        // One transaction over the three trees: a crash in the middle of a commit leaves all
        // of it or none of it, never a run that says `succeeded` beside a step still `running`.
        (&self.runs, &self.steps, &self.events)
            .transaction(|(runs_tx, steps_tx, events_tx)| {
                if let Some((key, value)) = &run {
                    runs_tx.insert(key.as_slice(), value.as_slice())?;
                }
                for (key, value) in &steps {
                    steps_tx.insert(key.as_slice(), value.as_slice())?;
                }
                for (key, value) in &events {
                    events_tx.insert(key.as_slice(), value.as_slice())?;
                }
                Ok::<(), sled::transaction::ConflictableTransactionError<Infallible>>(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Storage(e) => StoreError::Sled(e),
                sled::transaction::TransactionError::Abort(never) => match never {},
            })?;
        self.flush()
    }

    fn get_run(&self, id: &str) -> StoreResult<Option<RunRecord>> {
        self.runs
            .get(id.as_bytes())?
            .map(|bytes| decode(&bytes, &format!("run {id}")))
            .transpose()
    }

    fn list_runs_where(
        &self,
        keep: &dyn Fn(&RunRecord) -> bool,
        limit: usize,
    ) -> StoreResult<Vec<RunRecord>> {
        let mut runs = Vec::new();
        for entry in self.runs.iter().rev() {
            let (key, bytes) = entry?;
            let run: RunRecord = decode(&bytes, &format!("run {}", String::from_utf8_lossy(&key)))?;
            if keep(&run) {
                runs.push(run);
                if runs.len() >= limit {
                    break;
                }
            }
        }
        Ok(runs)
    }

    fn find_runs(&self, id_prefix: &str) -> StoreResult<Vec<RunId>> {
        self.runs
            .scan_prefix(id_prefix.to_lowercase().as_bytes())
            .keys()
            .map(|k| Ok(String::from_utf8_lossy(&k?).into_owned()))
            .collect()
    }

    fn get_steps(&self, run_id: &str) -> StoreResult<Vec<StepRecord>> {
        let mut steps: Vec<StepRecord> = self
            .steps
            .scan_prefix(prefix(&[run_id]))
            .values()
            .map(|v| decode(&v?, &format!("steps of run {run_id}")))
            .collect::<StoreResult<_>>()?;
        steps.sort_by_key(|s| s.position);
        Ok(steps)
    }

    fn events(&self, run_id: &str) -> StoreResult<Vec<Event>> {
        self.events
            .scan_prefix(prefix(&[run_id]))
            .values()
            .map(|v| decode(&v?, &format!("events of run {run_id}")))
            .collect()
    }

    fn append_log(&self, run_id: &str, line: &LogLine) -> StoreResult<()> {
        let seq = self.db.generate_id()?;
        let seq = format!("{seq:020}");
        self.logs
            .insert(key(&[run_id, &line.step, &seq]), encode(line))?;
        Ok(())
    }

    fn logs(&self, run_id: &str, step: Option<&str>) -> StoreResult<Vec<LogLine>> {
        let scan = match step {
            Some(step) => prefix(&[run_id, step]),
            None => prefix(&[run_id]),
        };
        let mut lines: Vec<LogLine> = self
            .logs
            .scan_prefix(scan)
            .values()
            .map(|v| decode(&v?, &format!("logs of run {run_id}")))
            .collect::<StoreResult<_>>()?;
        // Lines of several steps interleave in time order.
        lines.sort_by_key(|l| l.at);
        Ok(lines)
    }

    fn kv_get(&self, namespace: &str, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.kv.get(key2(namespace, key))?.map(|v| v.to_vec()))
    }

    fn kv_put(&self, namespace: &str, key: &str, value: &[u8]) -> StoreResult<()> {
        self.kv.insert(key2(namespace, key), value)?;
        self.flush()
    }

    fn kv_put_many(&self, namespace: &str, entries: &[(String, Vec<u8>)]) -> StoreResult<()> {
        // A batch is applied atomically: all the records or none survive a crash.
        let mut batch = sled::Batch::default();
        for (key, value) in entries {
            batch.insert(key2(namespace, key), value.as_slice());
        }
        self.kv.apply_batch(batch)?;
        self.flush()
    }

    fn kv_remove(&self, namespace: &str, key: &str) -> StoreResult<()> {
        self.kv.remove(key2(namespace, key))?;
        self.flush()
    }

    fn kv_scan(&self, namespace: &str, key_prefix: &str) -> StoreResult<Vec<(String, Vec<u8>)>> {
        let start = key2(namespace, key_prefix);
        let skip = namespace.len() + 1;
        self.kv
            .scan_prefix(start)
            .map(|entry| {
                let (k, v) = entry?;
                Ok((String::from_utf8_lossy(&k[skip..]).into_owned(), v.to_vec()))
            })
            .collect()
    }

    fn runs_dir(&self) -> PathBuf {
        self.dir.join("runs")
    }
}
