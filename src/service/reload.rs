//! Hot reload: the pipelines folder is read again every second; changed files are validated
//! again, and the scheduler re-plans.
//!
//! Polling, rather than file-system events, because it sees every way editors save (write in
//! place, write-and-rename, a git checkout) on every file system, network ones included, and a
//! folder of pipeline files is cheap to read: only files whose text changed are parsed.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::LocalService;
use super::catalog::ReloadSummary;

/// How often the folder is read.
pub const RELOAD_INTERVAL: Duration = Duration::from_secs(1);

/// Reloads the catalog every `every` until `stop` fires; `changed` ticks after each reload that
/// changed something.
pub async fn watch_pipelines(
    service: Arc<LocalService>,
    every: Duration,
    changed: watch::Sender<u64>,
    stop: CancellationToken,
) {
    let mut ticker = tokio::time::interval(every);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        if reload_now(&service) {
            changed.send_modify(|n| *n = n.wrapping_add(1));
        }
    }
}

/// Reads the folder again and logs what changed; true when something did.
pub fn reload_now(service: &LocalService) -> bool {
    let summary = service.catalog_mut().reload(&service.registry);
    if summary.is_empty() {
        return false;
    }
    report(service, &summary);
    true
}

fn report(service: &LocalService, summary: &ReloadSummary) {
    let catalog = service.catalog();
    for file in &summary.updated {
        tracing::info!(file = %file.display(), "pipeline file reloaded");
    }
    for file in &summary.failed {
        let entry = catalog.get(file);
        let error = entry
            .and_then(|e| e.error.as_deref())
            .unwrap_or("it does not load");
        let kept = if entry.is_some_and(|e| e.loaded.is_some()) {
            "the last good version stays in use"
        } else {
            "no version of it ever loaded, so it is not scheduled"
        };
        tracing::error!(file = %file.display(), "pipeline file changed but does not load; {kept}; fix the file and it is picked up:\n{error}");
    }
    for file in &summary.removed {
        tracing::info!(file = %file.display(), "pipeline file removed");
    }
}
