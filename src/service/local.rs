//! The service of one project: its pipelines folder, the runs it launches, and the state store.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono::Utc;
use indexmap::IndexMap;

use super::scheduler::ScheduledView;
use super::{
    Catalog, CatalogEntry, Control, ControlError, Launcher, PipelineStatus, ScheduleStatus,
    StepInfo,
};
use crate::schedule::{FireTimes, ScheduleMark};
use crate::steps::Registry;
use crate::store::{RunId, RunTrigger};

pub struct LocalService {
    pub registry: Arc<Registry>,
    pub catalog: RwLock<Catalog>,
    pub launcher: Launcher,
    /// What the scheduler plans, by pipeline name (empty while no scheduler runs).
    scheduled: RwLock<BTreeMap<String, ScheduledView>>,
}

impl LocalService {
    pub fn new(registry: Arc<Registry>, catalog: Catalog, launcher: Launcher) -> Self {
        LocalService {
            registry,
            catalog: RwLock::new(catalog),
            launcher,
            scheduled: RwLock::default(),
        }
    }

    /// The scheduler's plans, as it last published them.
    pub fn scheduled(&self) -> BTreeMap<String, ScheduledView> {
        self.scheduled
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    pub(super) fn set_scheduled(&self, views: BTreeMap<String, ScheduledView>) {
        *self.scheduled.write().unwrap_or_else(|e| e.into_inner()) = views;
    }

    pub fn catalog(&self) -> std::sync::RwLockReadGuard<'_, Catalog> {
        self.catalog.read().unwrap_or_else(|e| e.into_inner())
    }

    pub fn catalog_mut(&self) -> std::sync::RwLockWriteGuard<'_, Catalog> {
        self.catalog.write().unwrap_or_else(|e| e.into_inner())
    }
}

/// How the service shows one catalog entry; `view` is the scheduler's plan for it, when it
/// has one (its next fire time knows better than "after now": it may be catching up).
pub fn status_of(entry: &CatalogEntry, view: Option<&ScheduledView>) -> PipelineStatus {
    let pipeline = entry.loaded.as_ref().map(|l| &l.pipeline);
    let schedule = pipeline.and_then(|p| p.schedule.as_ref()).map(|s| {
        let times = FireTimes::of(s).ok();
        let next = match view {
            Some(view) => view.next_fire,
            None => times.as_ref().and_then(|t| t.next_after(Utc::now())),
        };
        ScheduleStatus {
            cron: s.cron.clone(),
            timezone: s.timezone.clone(),
            catchup: format!("{:?}", s.catchup).to_lowercase(),
            overlap: format!("{:?}", s.overlap).to_lowercase(),
            next_fire: next.map(|f| f.at),
            next_fire_local: next.zip(times).map(|(f, times)| times.local_text(f.at)),
            last_fire: view.and_then(|v| v.last_fire),
        }
    });
    PipelineStatus {
        name: entry.name(),
        file: entry.file.display().to_string(),
        description: pipeline.and_then(|p| p.description.clone()),
        schedule,
        params: pipeline.map(|p| p.params.clone()).unwrap_or_default(),
        steps: pipeline
            .map(|p| {
                p.steps
                    .iter()
                    .map(|s| StepInfo {
                        id: s.id.clone(),
                        uses: s.uses.clone(),
                        needs: s.needs.clone(),
                    })
                    .collect()
            })
            .unwrap_or_default(),
        error: entry.error.clone(),
        runnable: entry.loaded.is_some(),
    }
}

impl Control for LocalService {
    fn pipelines(&self) -> Vec<PipelineStatus> {
        let scheduled = self.scheduled();
        let mut all: Vec<PipelineStatus> = self
            .catalog()
            .entries()
            .map(|entry| status_of(entry, scheduled.get(&entry.name())))
            .collect();
        // Not in the scheduler's plans (no `serve`): the last fire time it recorded.
        for status in all.iter_mut() {
            if let Some(schedule) = status.schedule.as_mut()
                && !scheduled.contains_key(&status.name)
            {
                schedule.last_fire =
                    ScheduleMark::load(self.launcher.engine().store.as_ref(), &status.name)
                        .ok()
                        .flatten()
                        .and_then(|mark| mark.last_fire);
            }
        }
        all.sort_by(|a, b| a.name.cmp(&b.name));
        all
    }

    fn trigger(
        &self,
        pipeline: &str,
        params: IndexMap<String, String>,
    ) -> Result<RunId, ControlError> {
        let loaded = {
            let catalog = self.catalog();
            let entry = catalog
                .find(pipeline)
                .ok_or_else(|| ControlError::UnknownPipeline(pipeline.to_string()))?;
            entry.loaded.clone().ok_or_else(|| {
                ControlError::Invalid(format!(
                    "pipeline `{pipeline}` does not load, so it cannot run:\n{}",
                    entry.error.as_deref().unwrap_or_default()
                ))
            })?
        };
        let run = self
            .launcher
            .start(&loaded, &params, RunTrigger::Api, None)?;
        Ok(run.id)
    }

    fn cancel(&self, run: &str) -> Result<(), ControlError> {
        let run_id = self.launcher.engine().resolve_run_id(run)?;
        if self.launcher.cancel(&run_id) {
            Ok(())
        } else {
            Err(ControlError::Conflict(format!(
                "run {run_id} is not running, so there is nothing to cancel"
            )))
        }
    }

    fn resume(&self, run: &str) -> Result<RunId, ControlError> {
        Ok(self.launcher.resume(run)?.id)
    }

    fn running(&self) -> Vec<RunId> {
        self.launcher.running()
    }
}
