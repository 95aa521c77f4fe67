//! `segflow serve` as a scheduler: runs fired every second, the last fire time kept across a
//! restart, catch-up after downtime, hot reload, and SIGTERM during a long step.

use std::collections::BTreeSet;
use std::time::{Duration, Instant};

use chrono::{DateTime, Utc};
use serde_json::Value;

use crate::support::Project;
use crate::support::serve::Server;

/// Generous: the machine may be busy; tests poll and never wait this long when all is well.
const DEADLINE: Duration = Duration::from_secs(60);

/// `segflow serve` with a short grace period, so the SIGTERM tests stay quick.
fn start_server(project: &Project) -> Server {
    project.serve(&["--grace", "300ms"], &[])
}

fn wait_until<T>(what: &str, mut done: impl FnMut() -> Option<T>) -> T {
    let start = Instant::now();
    loop {
        if let Some(value) = done() {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// Lines of a file the pipeline's steps append to.
fn lines(project: &Project, file: &str) -> Vec<String> {
    project.read(file).lines().map(str::to_string).collect()
}

fn runs(project: &Project) -> Vec<Value> {
    let listed = project
        .segflow(&["runs", "list", "--json", "--limit", "100000"])
        .ok()
        .json();
    listed.as_array().unwrap().clone()
}

fn fire_time(run: &Value) -> DateTime<Utc> {
    run["scheduled_for"]
        .as_str()
        .unwrap_or_else(|| panic!("no scheduled_for: {run}"))
        .parse()
        .unwrap()
}

/// Every run's fire time, checking that none was started twice.
fn distinct_fire_times(project: &Project) -> BTreeSet<DateTime<Utc>> {
    let runs = runs(project);
    let times: BTreeSet<DateTime<Utc>> = runs.iter().map(fire_time).collect();
    assert_eq!(times.len(), runs.len(), "a fire time ran twice: {runs:#?}");
    for run in &runs {
        assert_eq!(run["trigger"], "schedule", "{run}");
    }
    times
}

/// Every second, appending its fire time to `fired`.
fn every_second(project: &Project, catchup: &str) {
    project.pipeline(
        "tick",
        &format!(
            r#"name: tick
schedule: {{ cron: "* * * * * *", catchup: {catchup} }}
steps:
  - id: note
    uses: shell
    with: {{ command: ["sh", "-c", "echo ${{{{ run.scheduled_for }}}} >> fired"] }}
"#
        ),
    );
}

#[test]
fn serve_fires_every_second_and_never_twice_across_a_restart() {
    let project = Project::new();
    every_second(&project, "none");
    let server = start_server(&project);
    assert!(
        server.addr.to_string().starts_with("127.0.0.1:"),
        "{}",
        server.addr
    );
    wait_until("three runs", || {
        (lines(&project, "fired").len() >= 3).then_some(())
    });
    let log = server.stop();
    assert!(log.contains("scheduled run started"), "{log}");
    let first = distinct_fire_times(&project);
    let last = *first.last().unwrap();

    let restarted_at = Utc::now();
    let server = start_server(&project);
    let before = lines(&project, "fired").len();
    wait_until("two more runs", || {
        (lines(&project, "fired").len() >= before + 2).then_some(())
    });
    server.stop();
    let all = distinct_fire_times(&project);
    let new: Vec<_> = all.difference(&first).collect();
    assert!(new.len() >= 2, "{all:?}");
    assert!(new.iter().all(|t| **t > last), "{all:?}");
    // catchup: none: nothing from while it was down.
    assert!(
        new.iter()
            .all(|t| **t >= restarted_at - chrono::Duration::seconds(1)),
        "caught up with catchup: none: {new:?} (restarted at {restarted_at})"
    );
}

#[test]
fn serve_catches_up_fire_times_missed_while_down() {
    let project = Project::new();
    every_second(&project, "all");
    let server = start_server(&project);
    wait_until("a run", || {
        (!lines(&project, "fired").is_empty()).then_some(())
    });
    server.stop();
    let last = *distinct_fire_times(&project).last().unwrap();
    // Down for a while: a few fire times go by.
    std::thread::sleep(Duration::from_millis(2500));
    let restarted_at = Utc::now();
    let missed: Vec<DateTime<Utc>> = (1..)
        .map(|s| last + chrono::Duration::seconds(s))
        .take_while(|t| *t < restarted_at)
        .collect();
    assert!(missed.len() >= 2, "{missed:?}");

    let server = start_server(&project);
    wait_until("the missed fire times to run", || {
        let fired = project.read("fired");
        missed
            .iter()
            .all(|t| fired.contains(&t.to_rfc3339()))
            .then_some(())
    });
    let log = server.stop();
    assert!(log.contains("catching up on fire times missed"), "{log}");
    let all = distinct_fire_times(&project);
    assert!(missed.iter().all(|t| all.contains(t)), "{all:?}");
}

#[test]
fn hot_reload_keeps_the_last_good_version_and_takes_a_fixed_edit() {
    let project = Project::new();
    let version = |tag: &str, cron: &str| {
        format!(
            "name: tick\nschedule: {{ cron: \"{cron}\" }}\nsteps:\n  - {{ id: note, uses: shell, with: {{ command: [\"sh\", \"-c\", \"echo {tag} >> fired\"] }} }}\n"
        )
    };
    let file = project.pipeline("tick", &version("v1", "* * * * * *"));
    let server = start_server(&project);
    wait_until("a v1 run", || {
        lines(&project, "fired")
            .contains(&"v1".into())
            .then_some(())
    });

    // A broken edit: logged, and the last good version keeps firing.
    std::fs::write(&file, version("broken", "* * * * * * * *")).unwrap();
    server.wait_for_log("does not load; the last good version stays in use");
    let count = lines(&project, "fired").len();
    wait_until("more v1 runs", || {
        (lines(&project, "fired").len() >= count + 2).then_some(())
    });
    assert!(!project.read("fired").contains("broken"));

    // Fixed: the new version runs.
    std::fs::write(&file, version("v2", "*/1 * * * * *")).unwrap();
    wait_until("a v2 run", || {
        lines(&project, "fired")
            .contains(&"v2".into())
            .then_some(())
    });
    let log = server.stop();
    assert!(log.contains("tick.yaml"), "{log}");
    assert!(log.contains("the schedule changed"), "{log}");
}

#[test]
fn sigterm_interrupts_a_long_step_and_the_next_serve_resumes_it() {
    let project = Project::new();
    // The first try of `wait` is long; after a resume (attempt 2) it is short.
    project.pipeline(
        "slow",
        r#"name: slow
schedule: { cron: "* * * * * *", catchup: none, overlap: skip }
steps:
  - { id: begin, uses: shell, with: { command: ["sh", "-c", "echo begin $SEGFLOW_RUN_ID >> events"] } }
  - id: wait
    uses: sleep
    needs: [begin]
    with: { duration: "${{ '10m' if run.attempt == 1 else '10ms' }}" }
  - { id: end, uses: shell, needs: [wait], with: { command: ["sh", "-c", "echo end $SEGFLOW_RUN_ID >> events"] } }
"#,
    );
    project.segflow(&["validate", "pipelines/slow.yaml"]).ok();
    let server = start_server(&project);
    let run = wait_until("the first step", || {
        lines(&project, "events")
            .first()
            .and_then(|l| l.strip_prefix("begin ").map(str::to_string))
    });
    let log = server.stop();
    // The scheduler stopped before the runs were drained, and started nothing after.
    let stopped = log
        .find("the scheduler stopped")
        .unwrap_or_else(|| panic!("{log}"));
    assert!(!log[stopped..].contains("scheduled run started"), "{log}");
    let shown = project.show(&run);
    assert_eq!(shown["state"], "interrupted", "{shown}");
    assert_eq!(runs(&project).len(), 1, "overlap: skip started another run");

    let server = start_server(&project);
    wait_until("the resumed run to finish", || {
        lines(&project, "events")
            .contains(&format!("end {run}"))
            .then_some(())
    });
    server.stop();
    let shown = project.show(&run);
    assert_eq!(shown["state"], "succeeded", "{shown}");
    // The step that had succeeded did not run again.
    let begins = lines(&project, "events")
        .iter()
        .filter(|l| **l == format!("begin {run}"))
        .count();
    assert_eq!(begins, 1);
}
