//! `segflow next` and `segflow backfill`: fire times in a pipeline's timezone, across DST.

use serde_json::Value;

use crate::support::Project;

fn scheduled(project: &Project, name: &str, schedule: &str) {
    project.pipeline(
        name,
        &format!(
            r#"name: {name}
schedule: {schedule}
params:
  as_of: {{ type: date, default: "${{{{ run.scheduled_date }}}}" }}
steps:
  - {{ id: a, uses: noop, with: {{ outputs: {{ day: "${{{{ params.as_of }}}}" }} }} }}
"#
        ),
    );
}

#[test]
fn next_prints_fire_times_across_the_berlin_spring_gap() {
    let project = Project::new();
    scheduled(
        &project,
        "nightly",
        "{ cron: \"30 2 * * *\", timezone: Europe/Berlin }",
    );
    let out = project
        .segflow(&[
            "next",
            "nightly",
            "-n",
            "3",
            "--after",
            "2026-03-27T12:00:00Z",
        ])
        .ok()
        .stdout;
    let lines: Vec<&str> = out.lines().collect();
    assert_eq!(
        lines[0], "nightly: \"30 2 * * *\" in Europe/Berlin",
        "{out}"
    );
    assert!(
        lines[1].starts_with("  Sat 2026-03-28 02:30:00 CET  2026-03-28T01:30:00Z"),
        "{out}"
    );
    // 02:30 does not exist on the 29th: once, at 03:00 CEST.
    assert!(
        lines[2].starts_with("  Sun 2026-03-29 03:00:00 CEST  2026-03-29T01:00:00Z"),
        "{out}"
    );
    assert!(lines[2].contains("02:30 does not exist that day"), "{out}");
    assert!(
        lines[3].starts_with("  Mon 2026-03-30 02:30:00 CEST  2026-03-30T00:30:00Z"),
        "{out}"
    );
}

#[test]
fn next_fires_once_in_the_new_york_fall_back_hour() {
    let project = Project::new();
    scheduled(
        &project,
        "early",
        "{ cron: \"30 1 * * *\", timezone: America/New_York }",
    );
    let shown = project
        .segflow(&[
            "next",
            "early",
            "-n",
            "2",
            "--after",
            "2026-10-31 12:00",
            "--json",
        ])
        .ok()
        .json();
    let at: Vec<&str> = shown
        .as_array()
        .unwrap()
        .iter()
        .map(|f| f["at"].as_str().unwrap())
        .collect();
    assert_eq!(at, ["2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z"]);
    assert_eq!(shown[0]["dst"], "first_of_two");
    assert_eq!(shown[1]["local"], "2026-11-02T01:30:00-05:00");
}

#[test]
fn next_explains_what_is_wrong() {
    let project = Project::new();
    project.pipeline("plain", "name: plain\nsteps:\n  - { id: a, uses: noop }\n");
    let err = project.segflow(&["next", "plain"]).failed().stderr;
    assert!(
        err.contains("pipeline `plain`") && err.contains("has no schedule"),
        "{err}"
    );
    scheduled(&project, "daily", "{ cron: \"@daily\" }");
    let err = project
        .segflow(&["next", "daily", "--after", "yesterday"])
        .failed()
        .stderr;
    assert!(
        err.contains("`yesterday` is not a time for --after"),
        "{err}"
    );
}

#[test]
fn backfill_runs_each_past_fire_time_with_scheduled_for() {
    let project = Project::new();
    // Mondays at 06:00 in Berlin; the clocks moved forward on 2025-03-30.
    scheduled(
        &project,
        "weekly",
        "{ cron: \"0 6 * * 1\", timezone: Europe/Berlin }",
    );
    let out = project
        .segflow(&[
            "backfill",
            "weekly",
            "--from",
            "2025-03-01",
            "--to",
            "2025-03-31",
        ])
        .ok();
    assert!(
        out.stdout.contains("backfill weekly: 5 runs"),
        "{}",
        out.stdout
    );
    assert!(
        out.stdout
            .contains("backfill weekly: 5 of 5 runs succeeded"),
        "{}",
        out.stdout
    );
    let listed = project
        .segflow(&["runs", "list", "--json", "--limit", "100"])
        .ok()
        .json();
    let mut runs: Vec<Value> = listed
        .as_array()
        .unwrap()
        .iter()
        .map(|r| project.show(r["id"].as_str().unwrap()))
        .collect();
    runs.sort_by_key(|r| r["scheduled_for"].as_str().unwrap().to_string());
    let fire_times: Vec<&str> = runs
        .iter()
        .map(|r| r["scheduled_for"].as_str().unwrap())
        .collect();
    assert_eq!(
        fire_times,
        [
            "2025-03-03T05:00:00Z",
            "2025-03-10T05:00:00Z",
            "2025-03-17T05:00:00Z",
            "2025-03-24T05:00:00Z",
            "2025-03-31T04:00:00Z"
        ]
    );
    for run in &runs {
        assert_eq!(run["trigger"], "backfill", "{run}");
        assert_eq!(run["state"], "succeeded", "{run}");
    }
    // run.scheduled_date is the fire time's day in the pipeline's timezone.
    let days: Vec<&str> = runs
        .iter()
        .map(|r| r["steps"][0]["outputs"]["day"].as_str().unwrap())
        .collect();
    assert_eq!(
        days,
        [
            "2025-03-03",
            "2025-03-10",
            "2025-03-17",
            "2025-03-24",
            "2025-03-31"
        ]
    );
}

#[test]
fn backfill_runs_several_at_once() {
    let project = Project::new();
    scheduled(&project, "daily", "{ cron: \"0 6 * * *\" }");
    project
        .segflow(&[
            "backfill",
            "daily",
            "--from",
            "2025-01-01",
            "--to",
            "2025-01-06",
            "--concurrency",
            "3",
        ])
        .ok();
    let listed = project.segflow(&["runs", "list", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 6, "{listed}");
}

#[test]
fn backfill_explains_bad_ranges() {
    let project = Project::new();
    scheduled(
        &project,
        "weekly",
        "{ cron: \"0 6 * * 1\", timezone: Europe/Berlin }",
    );
    let backfill = |from: &str, to: &str| {
        project
            .segflow(&["backfill", "weekly", "--from", from, "--to", to])
            .failed()
            .stderr
    };
    let err = backfill("2025-03-10", "2025-03-01");
    assert!(
        err.contains("--from 2025-03-10 is after --to 2025-03-01"),
        "{err}"
    );
    // A Tuesday and a Wednesday: no Monday.
    let err = backfill("2025-03-04", "2025-03-05");
    assert!(
        err.contains("no fire time of \"0 6 * * 1\" falls between 2025-03-04 and 2025-03-05"),
        "{err}"
    );
    let err = backfill("2099-03-02", "2099-03-09");
    assert!(err.contains("has come yet"), "{err}");
    let err = project
        .segflow(&[
            "backfill",
            "weekly",
            "--from",
            "2025-13-01",
            "--to",
            "2025-03-01",
        ])
        .stderr;
    assert!(err.contains("`2025-13-01` is not a date"), "{err}");

    scheduled(&project, "often", "{ cron: \"0 * * * *\" }");
    let err = project
        .segflow(&[
            "backfill",
            "often",
            "--from",
            "2025-01-01",
            "--to",
            "2025-01-10",
        ])
        .failed()
        .stderr;
    assert!(
        err.contains("would create 240 runs") && err.contains("--yes"),
        "{err}"
    );
    // Nothing was recorded by the refused backfills.
    let listed = project.segflow(&["runs", "list", "--json"]).ok().json();
    assert!(listed.as_array().unwrap().is_empty(), "{listed}");

    project.pipeline("plain", "name: plain\nsteps:\n  - { id: a, uses: noop }\n");
    let err = project
        .segflow(&[
            "backfill",
            "plain",
            "--from",
            "2025-01-01",
            "--to",
            "2025-01-02",
        ])
        .failed()
        .stderr;
    assert!(err.contains("has no schedule"), "{err}");
}

#[test]
fn a_stopped_backfill_says_how_to_finish() {
    use std::time::{Duration, Instant};

    let project = Project::new();
    project.pipeline(
        "daily",
        r#"name: daily
schedule: { cron: "0 6 * * *" }
steps:
  - { id: work, uses: shell, with: { command: ["sh", "-c", "touch started; sleep 600"] } }
"#,
    );
    let child = project
        .command(&[
            "backfill",
            "daily",
            "--from",
            "2025-01-01",
            "--to",
            "2025-01-03",
        ])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let start = Instant::now();
    while !project.path("started").exists() {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "the first run never started"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGINT,
    )
    .unwrap();
    let output = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains(
            "2 fire times not run; to run them: segflow backfill daily --from 2025-01-02 --to 2025-01-03"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("segflow resume"), "{stderr}");
    let listed = project.segflow(&["runs", "list", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 1, "{listed}");
    assert_eq!(listed[0]["state"], "cancelled", "{listed}");
}
