//! The service of one project: its pipelines folder, the runs it launches, and the state store.

use std::str::FromStr;
use std::sync::{Arc, RwLock};

use chrono::Utc;
use indexmap::IndexMap;

use super::{
    Catalog, CatalogEntry, Control, ControlError, Launcher, PipelineStatus, ScheduleStatus,
    StepInfo,
};
use crate::schedule::CronSchedule;
use crate::steps::Registry;
use crate::store::{RunId, RunTrigger};

pub struct LocalService {
    pub registry: Arc<Registry>,
    pub catalog: RwLock<Catalog>,
    pub launcher: Launcher,
}

impl LocalService {
    pub fn new(registry: Arc<Registry>, catalog: Catalog, launcher: Launcher) -> Self {
        LocalService {
            registry,
            catalog: RwLock::new(catalog),
            launcher,
        }
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
        let timezone = chrono_tz::Tz::from_str(&s.timezone).unwrap_or(chrono_tz::UTC);
        let next = CronSchedule::parse(&s.cron)
            .ok()
            .and_then(|c| c.next_after(&Utc::now().with_timezone(&timezone)));
        ScheduleStatus {
            cron: s.cron.clone(),
            timezone: s.timezone.clone(),
            catchup: format!("{:?}", s.catchup).to_lowercase(),
            overlap: format!("{:?}", s.overlap).to_lowercase(),
            next_fire: next.map(|t| t.with_timezone(&Utc)),
            next_fire_local: next.map(|t| t.format("%Y-%m-%d %H:%M:%S %Z").to_string()),
            last_fire: None,
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
        let mut all: Vec<PipelineStatus> = self.catalog().entries().map(status_of).collect();
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
