//! Starts runs in the background and keeps track of them until they end: what is running,
//! cancelling one, and a graceful shutdown that lets running steps finish.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::{Engine, EngineError};
use crate::spec::LoadedPipeline;
use crate::store::{RunId, RunRecord, RunState, RunTrigger};

/// A run that ended, as the launcher tells its subscribers.
#[derive(Debug, Clone)]
pub struct RunEnded {
    pub run_id: RunId,
    pub pipeline: String,
    /// `None` when the engine could not execute the run at all.
    pub state: Option<RunState>,
}

struct Running {
    pipeline: String,
    cancel: CancellationToken,
}

pub struct Launcher {
    engine: Arc<Engine>,
    running: Arc<Mutex<HashMap<RunId, Running>>>,
    tasks: TaskTracker,
    /// Fired on shutdown: running runs start nothing new.
    drain: CancellationToken,
    ended: broadcast::Sender<RunEnded>,
}

impl Launcher {
    pub fn new(engine: Arc<Engine>) -> Self {
        Launcher {
            engine,
            running: Arc::default(),
            tasks: TaskTracker::new(),
            drain: CancellationToken::new(),
            ended: broadcast::channel(256).0,
        }
    }

    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }

    /// Records a new run of a pipeline and starts it in the background.
    pub fn start(
        &self,
        loaded: &LoadedPipeline,
        params: &IndexMap<String, String>,
        trigger: RunTrigger,
        scheduled_for: Option<DateTime<Utc>>,
    ) -> Result<RunRecord, EngineError> {
        self.refuse_when_draining()?;
        let run = self
            .engine
            .create_run(loaded, params, trigger, scheduled_for)?;
        self.spawn(&run);
        Ok(run)
    }

    /// Prepares an interrupted, failed or cancelled run and goes on with it in the background.
    pub fn resume(&self, run_id: &str) -> Result<RunRecord, EngineError> {
        self.refuse_when_draining()?;
        let run_id = self.engine.resolve_run_id(run_id)?;
        if self.is_running(&run_id) {
            return Err(EngineError::NotResumable {
                run: run_id,
                why: "is running now".into(),
            });
        }
        let run = self.engine.prepare_resume(&run_id)?;
        self.spawn(&run);
        Ok(run)
    }

    /// Asks a running run to stop. False when it is not running here.
    pub fn cancel(&self, run_id: &str) -> bool {
        let running = self.running.lock().unwrap_or_else(|e| e.into_inner());
        match running.get(run_id) {
            Some(run) => {
                run.cancel.cancel();
                true
            }
            None => false,
        }
    }

    pub fn is_running(&self, run_id: &str) -> bool {
        self.lock_running().contains_key(run_id)
    }

    /// The runs going on now, oldest first.
    pub fn running(&self) -> Vec<RunId> {
        let mut ids: Vec<RunId> = self.lock_running().keys().cloned().collect();
        ids.sort();
        ids
    }

    /// Whether a run of this pipeline is going on now.
    pub fn pipeline_is_running(&self, pipeline: &str) -> bool {
        self.lock_running().values().any(|r| r.pipeline == pipeline)
    }

    /// Tells of every run that ends from now on.
    pub fn subscribe(&self) -> broadcast::Receiver<RunEnded> {
        self.ended.subscribe()
    }

    pub fn is_draining(&self) -> bool {
        self.drain.is_cancelled()
    }

    /// Stops starting steps, gives running steps `grace` to finish, then stops them; every run
    /// left unfinished is recorded as interrupted (the next start resumes it). Returns when
    /// every run has ended.
    pub async fn shutdown(&self, grace: Duration) {
        self.drain.cancel();
        self.tasks.close();
        if tokio::time::timeout(grace, self.tasks.wait())
            .await
            .is_err()
        {
            let running = self.lock_running();
            tracing::warn!(
                runs = running.len(),
                "the grace period is over; stopping the steps still running"
            );
            for run in running.values() {
                run.cancel.cancel();
            }
        }
        self.tasks.wait().await;
    }

    fn refuse_when_draining(&self) -> Result<(), EngineError> {
        if self.is_draining() {
            return Err(EngineError::ShuttingDown);
        }
        Ok(())
    }

    fn lock_running(&self) -> std::sync::MutexGuard<'_, HashMap<RunId, Running>> {
        self.running.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn spawn(&self, run: &RunRecord) {
        let cancel = CancellationToken::new();
        self.lock_running().insert(
            run.id.clone(),
            Running {
                pipeline: run.pipeline.clone(),
                cancel: cancel.clone(),
            },
        );
        let engine = Arc::clone(&self.engine);
        let running = Arc::clone(&self.running);
        let drain = self.drain.clone();
        let ended = self.ended.clone();
        let run_id = run.id.clone();
        let pipeline = run.pipeline.clone();
        self.tasks.spawn(async move {
            let state = match engine.execute_draining(&run_id, cancel, drain).await {
                Ok(run) => {
                    tracing::info!(run = %run.id, pipeline = %run.pipeline, state = run.state.name(), "run ended");
                    Some(run.state)
                }
                Err(error) => {
                    tracing::error!(run = %run_id, "the run could not be executed: {error}");
                    None
                }
            };
            running
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&run_id);
            let _ = ended.send(RunEnded {
                run_id,
                pipeline,
                state,
            });
        });
    }
}
