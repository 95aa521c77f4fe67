//! The scheduler of `segflow serve`: for every pipeline with a `schedule`, it waits for the next
//! fire time and starts a run, catches up on fire times missed while segflow was down, applies
//! `overlap` while a run still runs, and re-plans when the pipelines folder changes.
//!
//! A fire time is recorded in the store (flushed) before its run starts: a crash may lose a fire
//! time but never starts one twice.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use indexmap::IndexMap;
use tokio::sync::{broadcast, watch};
use tokio_util::sync::CancellationToken;

use super::LocalService;
use crate::schedule::catchup::window_of;
use crate::schedule::{
    Clock, Fire, FireDecision, FireQueue, FireTimes, ScheduleMark, latest_fires, missed_fires,
};
use crate::spec::model::{Catchup, Schedule};
use crate::store::RunTrigger;

/// What the scheduler shows of one pipeline (for `PipelineStatus`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScheduledView {
    pub next_fire: Option<Fire>,
    pub last_fire: Option<DateTime<Utc>>,
}

/// One scheduled pipeline.
struct Plan {
    file: PathBuf,
    /// The cron line and timezone the fire times come from (a change re-plans).
    source: (String, String),
    times: FireTimes,
    catchup: Catchup,
    queue: FireQueue,
    next: Option<Fire>,
    mark: ScheduleMark,
}

pub struct Scheduler {
    service: Arc<LocalService>,
    clock: Arc<dyn Clock>,
    plans: BTreeMap<String, Plan>,
}

impl Scheduler {
    pub fn new(service: Arc<LocalService>, clock: Arc<dyn Clock>) -> Self {
        Scheduler {
            service,
            clock,
            plans: BTreeMap::new(),
        }
    }

    /// Schedules until `stop` fires; `reloaded` ticks when the catalog changed.
    pub async fn run(mut self, reloaded: watch::Receiver<u64>, stop: CancellationToken) {
        let mut reloaded = Some(reloaded);
        let mut ended = self.service.launcher.subscribe();
        self.sync(true);
        loop {
            self.start_ready();
            self.publish();
            let wake = self
                .plans
                .values()
                .filter_map(|p| p.next.map(|f| f.at))
                .min();
            let clock = Arc::clone(&self.clock);
            let sleep = async move {
                match wake {
                    Some(at) => clock.sleep_until(at).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                changed = next_reload(&mut reloaded) => {
                    if changed {
                        self.sync(false);
                    }
                }
                _ = next_end(&mut ended) => {}
                _ = sleep => self.fire_due(),
            }
        }
        tracing::info!("the scheduler stopped: no more fire times are started");
    }

    /// Brings the plans in line with the catalog. At start, fire times missed while segflow was
    /// down are caught up as each pipeline's `catchup` says.
    fn sync(&mut self, at_start: bool) {
        let now = self.clock.now();
        let wanted = self.wanted();
        let gone: Vec<String> = self
            .plans
            .keys()
            .filter(|name| !wanted.contains_key(*name))
            .cloned()
            .collect();
        for name in gone {
            self.plans.remove(&name);
            tracing::info!(pipeline = %name, "no longer scheduled: its file was removed or its schedule taken out");
        }
        let store = self.service.launcher.engine().store.clone();
        for (name, (file, schedule)) in wanted {
            let times = match FireTimes::of(&schedule) {
                Ok(times) => times,
                Err(error) => {
                    tracing::error!(pipeline = %name, "cannot schedule: {error}");
                    self.plans.remove(&name);
                    continue;
                }
            };
            let source = (schedule.cron.clone(), schedule.timezone.clone());
            if let Some(plan) = self.plans.get_mut(&name) {
                plan.file = file;
                plan.catchup = schedule.catchup;
                plan.queue.set_overlap(schedule.overlap);
                if plan.source != source {
                    plan.source = source;
                    plan.times = times;
                    plan.next = plan.times.next_after(now.max(plan.mark.handled_until()));
                    tracing::info!(pipeline = %name, cron = %schedule.cron, timezone = %schedule.timezone, "the schedule changed; next fire time {}", describe(&plan.times, plan.next));
                }
                continue;
            }
            let mark = match ScheduleMark::load(store.as_ref(), &name) {
                Ok(mark) => mark,
                Err(error) => {
                    tracing::error!(pipeline = %name, "{error}; scheduling it from now on");
                    None
                }
            };
            let new_mark = mark.is_none();
            let mut mark = mark.unwrap_or_else(|| ScheduleMark::new(now));
            let mut queue = FireQueue::new(schedule.overlap);
            if at_start && !new_mark {
                let missed = missed_fires(
                    &times,
                    schedule.catchup,
                    window_of(&schedule),
                    mark.handled_until(),
                    now,
                );
                report_missed(&name, schedule.catchup, &missed, &times);
                queue.catch_up(missed.to_run.iter().map(|f| f.at));
                if schedule.catchup == Catchup::None {
                    mark.settled_until = now;
                }
            } else if !new_mark {
                // Added while serving: fire times from before it was added were never due.
                mark.settled_until = mark.settled_until.max(now);
            }
            if let Err(error) = mark.save(store.as_ref(), &name) {
                tracing::error!(pipeline = %name, "cannot record its schedule state: {error}");
            }
            let next = times.next_after(now.max(mark.handled_until()));
            tracing::info!(pipeline = %name, cron = %schedule.cron, timezone = %schedule.timezone, "scheduled; next fire time {}", describe(&times, next));
            self.plans.insert(
                name,
                Plan {
                    file,
                    source,
                    times,
                    catchup: schedule.catchup,
                    queue,
                    next,
                    mark,
                },
            );
        }
    }

    /// The pipelines of the catalog that have a schedule, by name, from their last good
    /// version. Two files with one name: the first is scheduled.
    fn wanted(&self) -> BTreeMap<String, (PathBuf, Schedule)> {
        let catalog = self.service.catalog();
        let mut wanted: BTreeMap<String, (PathBuf, Schedule)> = BTreeMap::new();
        for entry in catalog.entries() {
            let Some(loaded) = &entry.loaded else {
                continue;
            };
            let Some(schedule) = &loaded.pipeline.schedule else {
                continue;
            };
            let name = loaded.pipeline.name.clone();
            if let Some((first, _)) = wanted.get(&name) {
                tracing::warn!(pipeline = %name, file = %entry.file.display(), "not scheduled: {} already has this name", first.display());
                continue;
            }
            wanted.insert(name, (entry.file.clone(), schedule.clone()));
        }
        wanted
    }

    /// Handles every fire time that has come.
    fn fire_due(&mut self) {
        let now = self.clock.now();
        for (name, plan) in self.plans.iter_mut() {
            let (mut due, _) = latest_fires(std::iter::from_fn(|| {
                let fire = plan.next.filter(|f| f.at <= now)?;
                plan.next = plan.times.next_after(fire.at);
                Some(fire)
            }));
            let Some(current) = due.pop() else {
                continue;
            };
            // More than one due: the machine slept or the clock jumped; the earlier ones are
            // missed fire times.
            if !due.is_empty() {
                if plan.catchup == Catchup::All {
                    plan.queue.catch_up(due.iter().map(|f| f.at));
                    start_ready_of(&self.service, name, plan);
                } else {
                    tracing::warn!(pipeline = %name, missed = due.len(), "fire times passed while the scheduler could not run; only the latest is run (catchup: {})", catchup_name(plan.catchup));
                }
            }
            let running = self.service.launcher.pipeline_is_running(name);
            match plan.queue.on_fire(current.at, running) {
                FireDecision::Start => start_run(&self.service, name, plan, current.at),
                FireDecision::Queued => {
                    tracing::info!(pipeline = %name, fire = %current.at, "fire time queued until the running run ends (overlap: queue)")
                }
                FireDecision::Skipped(why) => {
                    tracing::info!(pipeline = %name, fire = %current.at, "fire time skipped: {why}")
                }
            }
        }
    }

    /// Starts the waiting fire times whose turn has come.
    fn start_ready(&mut self) {
        for (name, plan) in self.plans.iter_mut() {
            start_ready_of(&self.service, name, plan);
        }
    }

    /// Shows the plans to the service (`PipelineStatus.schedule`).
    fn publish(&self) {
        let views = self
            .plans
            .iter()
            .map(|(name, plan)| {
                (
                    name.clone(),
                    ScheduledView {
                        next_fire: plan.next,
                        last_fire: plan.mark.last_fire,
                    },
                )
            })
            .collect();
        self.service.set_scheduled(views);
    }
}

fn start_ready_of(service: &LocalService, name: &str, plan: &mut Plan) {
    if plan.queue.waiting() == 0 {
        return;
    }
    let running = service.launcher.pipeline_is_running(name);
    for at in plan.queue.take_ready(running) {
        start_run(service, name, plan, at);
    }
}

/// Records the fire time, then starts its run with the pipeline's last good version.
fn start_run(service: &LocalService, name: &str, plan: &mut Plan, at: DateTime<Utc>) {
    if plan.mark.last_fire.is_some_and(|last| at <= last) {
        tracing::warn!(pipeline = %name, fire = %at, "fire time not started: a run for it or a later one was already started");
        return;
    }
    let loaded = {
        let catalog = service.catalog();
        catalog.get(&plan.file).and_then(|e| e.loaded.clone())
    };
    let Some(loaded) = loaded else {
        tracing::warn!(pipeline = %name, fire = %at, "fire time not started: the pipeline is no longer loaded");
        return;
    };
    let previous = plan.mark.last_fire.replace(at);
    let store = service.launcher.engine().store.clone();
    if let Err(error) = plan.mark.save(store.as_ref(), name) {
        plan.mark.last_fire = previous;
        tracing::error!(pipeline = %name, fire = %at, "fire time not started: it could not be recorded first, and a crash could then start it twice: {error}");
        return;
    }
    match service
        .launcher
        .start(&loaded, &IndexMap::new(), RunTrigger::Schedule, Some(at))
    {
        Ok(run) => {
            tracing::info!(pipeline = %name, run = %run.id, fire = %at, "scheduled run started")
        }
        Err(error) => {
            tracing::error!(pipeline = %name, fire = %at, "the scheduled run could not start: {error}")
        }
    }
}

fn report_missed(
    name: &str,
    policy: Catchup,
    missed: &crate::schedule::catchup::Missed,
    times: &FireTimes,
) {
    if !missed.any {
        return;
    }
    match policy {
        Catchup::None => {
            tracing::info!(pipeline = %name, "fire times were missed while segflow was down; not caught up (catchup: none)")
        }
        _ => {
            let first = missed.to_run.first().map(|f| f.at);
            tracing::info!(
                pipeline = %name,
                runs = missed.to_run.len(),
                passed_over = missed.passed_over.unwrap_or(0),
                "catching up on fire times missed while segflow was down (catchup: {}), from {}",
                catchup_name(policy),
                first.map(|at| times.local_text(at)).unwrap_or_default()
            );
        }
    }
}

fn catchup_name(policy: Catchup) -> &'static str {
    match policy {
        Catchup::None => "none",
        Catchup::Latest => "latest",
        Catchup::All => "all",
    }
}

fn describe(times: &FireTimes, next: Option<Fire>) -> String {
    match next {
        Some(fire) => format!("{} ({})", times.local_text(fire.at), fire.at.to_rfc3339()),
        None => "none: the cron line never fires again".into(),
    }
}

/// True when the catalog changed; never resolves once the reload watcher is gone.
async fn next_reload(reloaded: &mut Option<watch::Receiver<u64>>) -> bool {
    let Some(receiver) = reloaded else {
        return std::future::pending().await;
    };
    if receiver.changed().await.is_ok() {
        return true;
    }
    *reloaded = None;
    false
}

/// Resolves when a run ended (or ends were missed: the caller looks at every pipeline anyway).
async fn next_end(ended: &mut broadcast::Receiver<super::launcher::RunEnded>) {
    match ended.recv().await {
        Ok(_) | Err(broadcast::error::RecvError::Lagged(_)) => {}
        Err(broadcast::error::RecvError::Closed) => std::future::pending().await,
    }
}

#[cfg(test)]
mod tests {
    //! The scheduler loop against a clock the test moves: no waiting for real fire times.

    use std::time::Duration as StdDuration;

    use super::*;
    use crate::engine::Engine;
    use crate::schedule::ManualClock;
    use crate::schedule::test_time::utc;
    use crate::secrets::Secrets;
    use crate::service::reload::reload_now;
    use crate::service::{Catalog, Launcher};
    use crate::steps::Registry;
    use crate::store::{RunRecord, SledStore, StateStore};

    /// A project folder, its store, and a service over its pipelines.
    struct Setup {
        dir: tempfile::TempDir,
        store: Arc<dyn StateStore>,
    }

    impl Setup {
        fn new() -> Self {
            // The scheduler's log, shown when a test fails.
            let _ = tracing_subscriber::fmt()
                .with_test_writer()
                .with_env_filter("segflow=debug")
                .try_init();
            let dir = tempfile::tempdir().unwrap();
            std::fs::create_dir_all(dir.path().join("pipelines")).unwrap();
            let store: Arc<dyn StateStore> =
                Arc::new(SledStore::open(&dir.path().join(".segflow")).unwrap());
            Setup { dir, store }
        }

        fn pipeline(&self, name: &str, schedule: &str, step: &str) {
            let text = format!("name: {name}\nschedule: {schedule}\nsteps:\n  - {step}\n");
            std::fs::write(self.file(name), text).unwrap();
        }

        fn file(&self, name: &str) -> std::path::PathBuf {
            self.dir
                .path()
                .join("pipelines")
                .join(format!("{name}.yaml"))
        }

        fn service(&self) -> Arc<LocalService> {
            let registry = Arc::new(Registry::builtin());
            let engine = Arc::new(Engine::new(
                registry.clone(),
                self.store.clone(),
                Arc::new(Secrets::load(None).unwrap()),
            ));
            let catalog = Catalog::load(&self.dir.path().join("pipelines"), &registry);
            Arc::new(LocalService::new(registry, catalog, Launcher::new(engine)))
        }

        fn runs(&self) -> Vec<RunRecord> {
            let mut runs = self.store.list_runs(None, usize::MAX).unwrap();
            runs.reverse();
            runs
        }

        fn fire_times(&self) -> Vec<String> {
            self.runs()
                .iter()
                .map(|r| r.scheduled_for.unwrap().to_rfc3339())
                .collect()
        }
    }

    /// A running scheduler and what stops it.
    struct Running {
        service: Arc<LocalService>,
        clock: Arc<ManualClock>,
        stop: CancellationToken,
        reloaded: watch::Sender<u64>,
        task: tokio::task::JoinHandle<()>,
    }

    impl Running {
        fn start(service: &Arc<LocalService>, now: DateTime<Utc>) -> Self {
            let clock = Arc::new(ManualClock::new(now));
            let stop = CancellationToken::new();
            let (reloaded, reloads) = watch::channel(0);
            let scheduler = Scheduler::new(service.clone(), clock.clone());
            let task = tokio::spawn(scheduler.run(reloads, stop.clone()));
            Running {
                service: service.clone(),
                clock,
                stop,
                reloaded,
                task,
            }
        }

        /// Waits until the scheduler sleeps on the clock, having done all it could.
        async fn settle(&self) {
            wait_for("the scheduler to wait", || self.clock.sleepers() == 1).await;
        }

        /// Moves the clock and, when a fire time has come, waits until the scheduler handled it.
        async fn set_clock(&self, now: DateTime<Utc>) {
            self.settle().await;
            let due = self
                .service
                .scheduled()
                .values()
                .any(|v| v.next_fire.is_some_and(|f| f.at <= now));
            let sleeps = self.clock.sleeps();
            self.clock.set(now);
            if due {
                wait_for("the scheduler to go round", || {
                    self.clock.sleeps() > sleeps && self.clock.sleepers() == 1
                })
                .await;
            }
        }

        async fn stop(self) {
            self.stop.cancel();
            self.task.await.unwrap();
        }
    }

    async fn wait_for(what: &str, mut done: impl FnMut() -> bool) {
        let deadline = tokio::time::Instant::now() + StdDuration::from_secs(20);
        while !done() {
            assert!(
                tokio::time::Instant::now() < deadline,
                "timed out waiting for {what}"
            );
            tokio::time::sleep(StdDuration::from_millis(5)).await;
        }
    }

    async fn wait_runs_ended(service: &LocalService) {
        wait_for("runs to end", || service.launcher.running().is_empty()).await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn fires_across_the_berlin_spring_gap_with_scheduled_for_set() {
        let setup = Setup::new();
        setup.pipeline(
            "nightly",
            "{ cron: \"30 2 * * *\", timezone: Europe/Berlin }",
            "{ id: a, uses: noop }",
        );
        let service = setup.service();
        let running = Running::start(&service, utc("2026-03-28T12:00:00Z"));
        running.settle().await;
        let view = service.scheduled()["nightly"].clone();
        assert_eq!(view.next_fire.unwrap().at, utc("2026-03-29T01:00:00Z"));
        running.set_clock(utc("2026-03-29T01:00:00Z")).await;
        wait_runs_ended(&service).await;
        // 03:00 CEST, just after the gap; the next one is back at 02:30.
        assert_eq!(setup.fire_times(), ["2026-03-29T01:00:00+00:00"]);
        let run = &setup.runs()[0];
        assert_eq!(run.trigger, RunTrigger::Schedule);
        assert_eq!(run.state, crate::store::RunState::Succeeded);
        running.set_clock(utc("2026-03-30T00:30:00Z")).await;
        wait_runs_ended(&service).await;
        assert_eq!(setup.fire_times().len(), 2);
        let mark = ScheduleMark::load(setup.store.as_ref(), "nightly")
            .unwrap()
            .unwrap();
        assert_eq!(mark.last_fire, Some(utc("2026-03-30T00:30:00Z")));
        let status = crate::service::Control::pipelines(service.as_ref());
        assert_eq!(
            status[0].schedule.as_ref().unwrap().last_fire,
            Some(utc("2026-03-30T00:30:00Z"))
        );
        running.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_new_york_fall_back_hour_fires_once() {
        let setup = Setup::new();
        setup.pipeline(
            "early",
            "{ cron: \"30 1 * * 0\", timezone: America/New_York }",
            "{ id: a, uses: noop }",
        );
        let service = setup.service();
        let running = Running::start(&service, utc("2026-10-31T12:00:00Z"));
        // 01:30 EDT, then the clock passes 01:30 EST: nothing more.
        running.set_clock(utc("2026-11-01T05:30:00Z")).await;
        wait_runs_ended(&service).await;
        running.set_clock(utc("2026-11-01T06:45:00Z")).await;
        wait_runs_ended(&service).await;
        assert_eq!(setup.fire_times(), ["2026-11-01T05:30:00+00:00"]);
        assert_eq!(
            service.scheduled()["early"].next_fire.unwrap().at,
            utc("2026-11-08T06:30:00Z")
        );
        running.stop().await;
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_restart_never_fires_a_time_twice_and_catches_up_as_told() {
        let setup = Setup::new();
        let step = "{ id: a, uses: noop }";
        let daily = |catchup: &str, window: &str| {
            format!("{{ cron: \"0 6 * * *\", timezone: UTC, catchup: {catchup}{window} }}")
        };
        setup.pipeline("daily", &daily("all", ""), step);
        let service = setup.service();
        let running = Running::start(&service, utc("2026-05-01T05:00:00Z"));
        running.set_clock(utc("2026-05-01T06:00:00Z")).await;
        wait_runs_ended(&service).await;
        running.stop().await;
        assert_eq!(setup.fire_times(), ["2026-05-01T06:00:00+00:00"]);

        // Back at once: nothing to catch up, the fire time is not started again.
        let running = Running::start(&setup.service(), utc("2026-05-01T06:00:00Z"));
        running.settle().await;
        running.stop().await;
        assert_eq!(setup.fire_times().len(), 1);

        // Down for three days, catchup: all.
        let service = setup.service();
        let running = Running::start(&service, utc("2026-05-04T12:00:00Z"));
        wait_for("the catch-up runs", || setup.runs().len() == 4).await;
        wait_runs_ended(&service).await;
        running.stop().await;
        assert_eq!(
            setup.fire_times()[1..],
            [
                "2026-05-02T06:00:00+00:00",
                "2026-05-03T06:00:00+00:00",
                "2026-05-04T06:00:00+00:00"
            ]
        );

        // catchup: latest, inside a 2-day window: only the latest of five missed.
        setup.pipeline("daily", &daily("latest", ", catchup_window: 2d"), step);
        let service = setup.service();
        let running = Running::start(&service, utc("2026-05-09T12:00:00Z"));
        wait_for("the catch-up run", || setup.runs().len() == 5).await;
        wait_runs_ended(&service).await;
        running.stop().await;
        assert_eq!(setup.fire_times()[4], "2026-05-09T06:00:00+00:00");

        // catchup: none: nothing, and the next start does not catch those up either.
        setup.pipeline("daily", &daily("none", ""), step);
        let running = Running::start(&setup.service(), utc("2026-05-12T12:00:00Z"));
        running.settle().await;
        running.stop().await;
        setup.pipeline("daily", &daily("all", ""), step);
        let running = Running::start(&setup.service(), utc("2026-05-12T12:00:01Z"));
        running.settle().await;
        running.stop().await;
        assert_eq!(setup.runs().len(), 5);
    }

    /// A run that sleeps until cancelled, so the test decides when it ends.
    const LONG_STEP: &str = "{ id: wait, uses: sleep, with: { duration: 1h } }";

    async fn overlap_fire_times(overlap: &str, runs: usize) -> (Vec<String>, Vec<usize>) {
        let setup = Setup::new();
        setup.pipeline(
            "busy",
            &format!("{{ cron: \"*/10 * * * *\", overlap: {overlap} }}"),
            LONG_STEP,
        );
        let service = setup.service();
        let running = Running::start(&service, utc("2026-06-01T00:05:00Z"));
        let mut running_counts = Vec::new();
        for minute in [10, 20, 30] {
            running
                .set_clock(utc(&format!("2026-06-01T00:{minute}:00Z")))
                .await;
            wait_for("the run to start", || {
                !service.launcher.running().is_empty()
            })
            .await;
            running_counts.push(service.launcher.running().len());
        }
        // The first run ends: a queued fire time starts now.
        let first = setup.runs()[0].id.clone();
        service.launcher.cancel(&first);
        wait_for("the first run to end", || {
            !service.launcher.is_running(&first)
        })
        .await;
        wait_for("the runs", || setup.runs().len() == runs).await;
        running.settle().await;
        let fire_times = setup.fire_times();
        for id in service.launcher.running() {
            service.launcher.cancel(&id);
        }
        wait_runs_ended(&service).await;
        running.stop().await;
        (fire_times, running_counts)
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn overlap_skip_queue_and_allow() {
        let (skip, counts) = overlap_fire_times("skip", 1).await;
        assert_eq!(skip, ["2026-06-01T00:10:00+00:00"]);
        assert_eq!(counts, [1, 1, 1]);

        let (queue, counts) = overlap_fire_times("queue", 2).await;
        // 00:20 waits for the first run; 00:30 finds it already queued and is dropped.
        assert_eq!(
            queue,
            ["2026-06-01T00:10:00+00:00", "2026-06-01T00:20:00+00:00"]
        );
        assert_eq!(counts, [1, 1, 1]);

        let (allow, counts) = overlap_fire_times("allow", 3).await;
        assert_eq!(
            allow,
            [
                "2026-06-01T00:10:00+00:00",
                "2026-06-01T00:20:00+00:00",
                "2026-06-01T00:30:00+00:00"
            ]
        );
        assert_eq!(counts, [1, 2, 3]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_reload_replans_keeps_the_last_good_version_and_drops_removed_files() {
        let setup = Setup::new();
        setup.pipeline("hourly", "{ cron: \"0 * * * *\" }", "{ id: a, uses: noop }");
        let service = setup.service();
        let running = Running::start(&service, utc("2026-06-01T00:30:00Z"));
        running.settle().await;
        let next = |service: &LocalService| service.scheduled()["hourly"].next_fire.unwrap().at;
        assert_eq!(next(&service), utc("2026-06-01T01:00:00Z"));

        // A broken edit: the old schedule stays, and the error is shown.
        std::fs::write(
            setup.file("hourly"),
            "name: hourly\nschedule: { cron: \"0 * * *\" }\nsteps: []\n",
        )
        .unwrap();
        assert!(reload_now(&service));
        running.reloaded.send_modify(|n| *n += 1);
        running.settle().await;
        assert_eq!(next(&service), utc("2026-06-01T01:00:00Z"));
        let status = crate::service::Control::pipelines(service.as_ref());
        assert!(
            status[0].error.as_deref().unwrap().contains("cron"),
            "{status:?}"
        );

        // A fixed edit with a new schedule: re-planned.
        setup.pipeline(
            "hourly",
            "{ cron: \"15 * * * *\" }",
            "{ id: a, uses: noop }",
        );
        assert!(reload_now(&service));
        running.reloaded.send_modify(|n| *n += 1);
        wait_for("the new plan", || {
            next(&service) == utc("2026-06-01T01:15:00Z")
        })
        .await;

        // Removed: no longer scheduled.
        std::fs::remove_file(setup.file("hourly")).unwrap();
        assert!(reload_now(&service));
        running.reloaded.send_modify(|n| *n += 1);
        wait_for("the plan to go", || service.scheduled().is_empty()).await;
        running.clock.set(utc("2026-06-01T03:00:00Z"));
        tokio::time::sleep(StdDuration::from_millis(50)).await;
        running.stop().await;
        assert!(setup.runs().is_empty());
    }
}
