//! The service of one project: its pipelines folder, the runs it launches, and the state store.

use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use indexmap::IndexMap;

use super::scheduler::ScheduledView;
use super::{
    Catalog, CatalogEntry, Control, ControlError, Launcher, PipelineStatus, ScheduleStatus,
    StepInfo,
};
use crate::schedule::{Fire, FireTimes, ScheduleMark};
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

/// How the service shows one catalog entry.
pub fn status_of(entry: &CatalogEntry) -> PipelineStatus {
    let pipeline = entry.loaded.as_ref().map(|l| &l.pipeline);
    let schedule = pipeline.and_then(|p| p.schedule.as_ref()).map(|s| {
        let next = FireTimes::of(s)
            .ok()
            .and_then(|times| times.next_after(Utc::now()));
        let mut status = ScheduleStatus {
            cron: s.cron.clone(),
            timezone: s.timezone.clone(),
            catchup: format!("{:?}", s.catchup).to_lowercase(),
            overlap: format!("{:?}", s.overlap).to_lowercase(),
            next_fire: None,
            next_fire_local: None,
            last_fire: None,
        };
        set_next_fire(&mut status, next);
        status
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

fn set_next_fire(status: &mut ScheduleStatus, next: Option<Fire>) {
    let timezone: Tz = status.timezone.parse().unwrap_or(chrono_tz::UTC);
    status.next_fire = next.map(|f| f.at);
    status.next_fire_local = next.map(|f| {
        f.at.with_timezone(&timezone)
            .format("%Y-%m-%d %H:%M:%S %Z")
            .to_string()
    });
}

impl LocalService {
    /// The last fire time the scheduler acted on: its plan's, else the one in the store.
    fn last_fire(
        &self,
        name: &str,
        scheduled: &BTreeMap<String, ScheduledView>,
    ) -> Option<DateTime<Utc>> {
        if let Some(view) = scheduled.get(name) {
            return view.last_fire;
        }
        ScheduleMark::load(self.launcher.engine().store.as_ref(), name)
            .ok()
            .flatten()
            .and_then(|mark| mark.last_fire)
    }
}

impl Control for LocalService {
    fn pipelines(&self) -> Vec<PipelineStatus> {
        let scheduled = self.scheduled();
        let mut all: Vec<PipelineStatus> = self.catalog().entries().map(status_of).collect();
        for status in all.iter_mut() {
            let last_fire = self.last_fire(&status.name, &scheduled);
            let Some(schedule) = status.schedule.as_mut() else {
                continue;
            };
            schedule.last_fire = last_fire;
            // The scheduler's plan knows better than "after now" (it may be catching up).
            if let Some(view) = scheduled.get(&status.name) {
                set_next_fire(schedule, view.next_fire);
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
