//! Starts runs in the background and keeps track of them until they end: what is running,
//! cancelling one, and a graceful shutdown that lets running steps finish.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use tokio::sync::broadcast;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::engine::{Engine, EngineError};
use crate::spec::LoadedPipeline;
use crate::store::{RunId, RunRecord, RunState, RunTrigger};

/// How long a resume waits for the task of a run whose end is already recorded.
const ENDING_GRACE: Duration = Duration::from_secs(2);

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
        // The engine records a run's end a moment before its task leaves `running`: a resume
        // that comes in that moment (a client that saw `cancelled`) waits for the task instead
        // of being told the run is still running.
        let deadline = Instant::now() + ENDING_GRACE;
        while self.is_running(&run_id) {
            let ended = self
                .engine
                .store
                .get_run(&run_id)?
                .is_some_and(|r| r.state.is_finished());
            if !ended || Instant::now() >= deadline {
                return Err(EngineError::NotResumable {
                    run: run_id,
                    why: "is running now".into(),
                });
            }
            std::thread::sleep(Duration::from_millis(5));
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::Secrets;
    use crate::steps::Registry;
    use crate::store::{SledStore, StateStore};

    /// A launcher over a fresh store, and one recorded (not started) run of a one-step pipeline.
    fn launcher_with_a_run(dir: &std::path::Path) -> (Launcher, RunRecord) {
        let registry = Arc::new(Registry::builtin());
        let store: Arc<dyn StateStore> = Arc::new(SledStore::open(&dir.join(".segflow")).unwrap());
        let engine = Arc::new(Engine::new(
            registry.clone(),
            store,
            Arc::new(Secrets::load(None).unwrap()),
        ));
        let file = dir.join("p.yaml");
        let source =
            crate::spec::source::Source::new(&file, "name: p\nsteps:\n  - { id: a, uses: noop }\n");
        let loaded = crate::spec::load_source(source, &registry, dir).unwrap();
        let run = engine
            .create_run(&loaded, &IndexMap::new(), RunTrigger::Manual, None)
            .unwrap();
        (Launcher::new(engine), run)
    }

    fn pretend_running(launcher: &Launcher, run: &RunRecord) {
        launcher.lock_running().insert(
            run.id.clone(),
            Running {
                pipeline: run.pipeline.clone(),
                cancel: CancellationToken::new(),
            },
        );
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_resume_just_after_the_recorded_end_waits_for_the_runs_task() {
        let dir = tempfile::tempdir().unwrap();
        let (launcher, mut run) = launcher_with_a_run(dir.path());
        // The engine has recorded the end; the task has not yet left `running`.
        run.state = RunState::Cancelled;
        launcher
            .engine
            .store
            .commit(&run.id, Some(&run), &[], &[])
            .unwrap();
        pretend_running(&launcher, &run);
        let running = Arc::clone(&launcher.running);
        let id = run.id.clone();
        let leaves = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(100));
            running.lock().unwrap().remove(&id);
        });
        let resumed = launcher
            .resume(&run.id)
            .expect("the resume waits, then starts");
        assert_eq!(resumed.id, run.id);
        leaves.join().unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_run_still_going_is_not_resumed() {
        let dir = tempfile::tempdir().unwrap();
        let (launcher, run) = launcher_with_a_run(dir.path());
        pretend_running(&launcher, &run);
        let started = Instant::now();
        let error = launcher.resume(&run.id).unwrap_err();
        assert!(error.to_string().contains("is running now"), "{error}");
        assert!(
            started.elapsed() < ENDING_GRACE,
            "refused at once, without waiting"
        );
    }
}
