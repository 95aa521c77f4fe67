//! Crash safety and cancellation: SIGKILL at many points of a run, then `segflow resume`;
//! Ctrl-C; a second process on the same state.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::Child;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;

use crate::support::{Project, step_states};

/// a -> (b, c) -> d -> e, plus an independent f. Each step logs its start and end to `ran`
/// (the side-effect counter) and sets an output derived from its id.
const DAG: &str = r#"name: crashy
concurrency: 2
steps:
  - { id: a, uses: shell, with: { command: ["sh", "-c", "echo start a >> ran; sleep 0.15; echo '{\"v\": \"a!\"}' > \"$SEGFLOW_OUTPUTS\"; echo done a >> ran"], outputs: [v] } }
  - { id: b, uses: shell, needs: [a], with: { command: ["sh", "-c", "echo start b >> ran; sleep 0.15; echo '{\"v\": \"b!\"}' > \"$SEGFLOW_OUTPUTS\"; echo done b >> ran"], outputs: [v] } }
  - { id: c, uses: shell, needs: [a], with: { command: ["sh", "-c", "echo start c >> ran; sleep 0.15; echo '{\"v\": \"c!\"}' > \"$SEGFLOW_OUTPUTS\"; echo done c >> ran"], outputs: [v] } }
  - { id: d, uses: shell, needs: [b, c], with: { command: ["sh", "-c", "echo start d >> ran; sleep 0.15; echo '{\"v\": \"d!\"}' > \"$SEGFLOW_OUTPUTS\"; echo done d >> ran"], outputs: [v] } }
  - { id: e, uses: noop, needs: [d], with: { outputs: { v: "${{ steps.d.outputs.v }}+e" } } }
  - { id: f, uses: shell, with: { command: ["sh", "-c", "echo start f >> ran; sleep 0.15; echo '{\"v\": \"f!\"}' > \"$SEGFLOW_OUTPUTS\"; echo done f >> ran"], outputs: [v] } }
"#;

fn starts(project: &Project) -> BTreeMap<String, usize> {
    let mut counts = BTreeMap::new();
    for line in project.read("ran").lines() {
        if let Some(step) = line.strip_prefix("start ") {
            *counts.entry(step.to_string()).or_insert(0) += 1;
        }
    }
    counts
}

fn outputs(shown: &Value) -> BTreeMap<String, Value> {
    shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| (s["id"].as_str().unwrap().to_string(), s["outputs"].clone()))
        .collect()
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(start.elapsed() < timeout, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
}

fn wait_exit(child: &mut Child, timeout: Duration) -> Option<i32> {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status.code();
        }
        if start.elapsed() > timeout {
            let _ = child.kill();
            panic!("segflow did not exit within {timeout:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// The run id segflow recorded (the only run of the project).
fn only_run(project: &Project) -> String {
    let listed = project.segflow(&["runs", "list", "--json"]).ok().json();
    let runs = listed.as_array().unwrap();
    assert_eq!(runs.len(), 1, "{listed}");
    runs[0]["id"].as_str().unwrap().to_string()
}

enum KillPoint {
    /// Once the steps wrote this many lines to `ran` (each step writes `start X`, then `done X`
    /// when its work is done but before segflow has recorded it).
    AfterLines(usize),
    /// After this long.
    After(Duration),
}

#[test]
fn sigkill_at_any_point_then_resume_finishes_without_rerunning_succeeded_steps() {
    // The uninterrupted run, for comparison.
    let reference = Project::new();
    reference.pipeline("crashy", DAG);
    let ref_id = reference.segflow(&["run", "crashy"]).ok().run_id();
    let expected = outputs(&reference.show(&ref_id));
    assert_eq!(expected["e"]["v"], "d!+e");

    // Ten points tied to what the steps did (five shell steps, a start and a done line each),
    // and a few at fixed times, among them one before the run can have been recorded.
    let mut kill_points: Vec<KillPoint> = (1..=10).map(KillPoint::AfterLines).collect();
    kill_points.extend([3, 260, 420].map(|ms| KillPoint::After(Duration::from_millis(ms))));
    let mut mid_run = 0;
    for point in kill_points {
        let project = Project::new();
        project.pipeline("crashy", DAG);
        let mut child = project.command(&["run", "crashy"]).spawn().unwrap();
        match point {
            KillPoint::AfterLines(n) => {
                wait_until("the steps to get that far", Duration::from_secs(10), || {
                    project.read("ran").lines().count() >= n
                })
            }
            KillPoint::After(delay) => std::thread::sleep(delay),
        }
        kill(Pid::from_raw(child.id() as i32), Signal::SIGKILL).unwrap();
        child.wait().unwrap();
        // The dead process's children die with it (PR_SET_PDEATHSIG); let them go.
        std::thread::sleep(Duration::from_millis(50));

        let listed = project.segflow(&["runs", "list", "--json"]).ok().json();
        if listed.as_array().unwrap().is_empty() {
            // Killed before the run was recorded: nothing to resume, nothing ran.
            assert!(starts(&project).is_empty());
            continue;
        }
        let run_id = only_run(&project);
        let before = project.show(&run_id);
        let finished_before = before["state"] == "succeeded";
        if !finished_before {
            assert_eq!(before["state"], "interrupted", "{before}");
            mid_run += 1;
        }
        let succeeded_before: Vec<String> = step_states(&before)
            .into_iter()
            .filter(|(_, state)| state == "succeeded")
            .map(|(id, _)| id)
            .collect();
        let starts_before = starts(&project);

        if !finished_before {
            project.segflow(&["resume", &run_id]).ok();
        }
        let after = project.show(&run_id);
        assert_eq!(after["state"], "succeeded", "{after}");
        assert_eq!(
            outputs(&after),
            expected,
            "the resumed run ends as an uninterrupted one"
        );
        assert_eq!(
            step_states(&after),
            step_states(&reference.show(&ref_id)),
            "every step ends in the state it has in an uninterrupted run"
        );
        let starts_after = starts(&project);
        for step in &succeeded_before {
            assert_eq!(
                starts_after.get(step),
                starts_before.get(step),
                "step {step} had succeeded before the kill and ran again"
            );
        }
        for step in ["a", "b", "c", "d", "f"] {
            assert!(
                starts_after.get(step).copied().unwrap_or(0) >= 1,
                "{step} never ran"
            );
        }
    }
    assert!(
        mid_run >= 9,
        "only {mid_run} of the kills landed in the middle of the run: the test proves too little"
    );
}

/// Sends SIGINT to a running `segflow run` once its first step has started its program.
fn run_and_interrupt(project: &Project) -> (Child, i32) {
    let child = project.command(&["run", "cancel"]).spawn().unwrap();
    wait_until("the step to start", Duration::from_secs(10), || {
        project.path("pid").exists() && !project.read("pid").trim().is_empty()
    });
    let program = project.read("pid").trim().parse::<i32>().unwrap();
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    (child, program)
}

const CANCELLABLE: &str = r#"name: cancel
steps:
  - id: long
    uses: shell
    with: { command: ["sh", "-c", "test -f quick && exit 0; echo $$ > pid; sleep 30"] }
  - { id: after, uses: noop, needs: [long] }
"#;

#[test]
fn ctrl_c_cancels_cleanly_and_the_run_resumes() {
    let project = Project::new();
    project.pipeline("cancel", CANCELLABLE);
    let (mut child, program) = run_and_interrupt(&project);
    let code = wait_exit(&mut child, Duration::from_secs(15));
    assert_eq!(code, Some(1));
    assert!(
        kill(Pid::from_raw(program), None).is_err(),
        "the step's program is still alive"
    );
    let run_id = only_run(&project);
    let shown = project.show(&run_id);
    assert_eq!(shown["state"], "cancelled", "{shown}");
    assert_eq!(
        step_states(&shown),
        vec![
            ("long".to_string(), "cancelled".to_string()),
            ("after".to_string(), "cancelled".to_string())
        ]
    );
    assert_eq!(shown["steps"][0]["attempts"][0]["outcome"], "cancelled");
    project.write("quick", "");
    project.segflow(&["resume", &run_id]).ok();
    assert_eq!(project.show(&run_id)["state"], "succeeded");
}

#[test]
fn a_second_process_gets_a_clear_error_not_a_hang() {
    let project = Project::new();
    project.pipeline("cancel", CANCELLABLE);
    let mut child = project.command(&["run", "cancel"]).spawn().unwrap();
    wait_until("the step to start", Duration::from_secs(10), || {
        project.path("pid").exists()
    });
    let started = Instant::now();
    let second = project.segflow(&["runs", "list"]).failed();
    assert!(started.elapsed() < Duration::from_secs(5));
    assert!(
        second
            .stderr
            .contains("is in use by another segflow process"),
        "{}",
        second.stderr
    );
    assert!(
        second.stderr.contains(&format!("pid {}", child.id())),
        "{}",
        second.stderr
    );
    assert!(second.stderr.contains("--state-dir"), "{}", second.stderr);
    kill(Pid::from_raw(child.id() as i32), Signal::SIGINT).unwrap();
    wait_exit(&mut child, Duration::from_secs(15));
    // Once the first process is gone the state opens again.
    project.segflow(&["runs", "list"]).ok();
}

#[test]
fn state_lives_beside_the_pipelines_unless_told_otherwise() {
    let project = Project::new();
    project.pipeline("tiny", "name: tiny\nsteps:\n  - { id: a, uses: noop }\n");
    let elsewhere = tempfile::tempdir().unwrap();
    let pipeline = project.path("pipelines/tiny.yaml");
    let mut command = project.command(&["run", pipeline.to_str().unwrap()]);
    command.current_dir(elsewhere.path());
    assert!(command.status().unwrap().success());
    assert!(project.path(".segflow/db").exists());
    assert!(!elsewhere.path().join(".segflow").exists());

    let custom = elsewhere.path().join("state");
    let mut command = project.command(&["run", "tiny"]);
    command.env("SEGFLOW_HOME", &custom);
    assert!(command.status().unwrap().success());
    assert!(custom.join("db").exists());
    let listed = project
        .segflow(&[
            "--state-dir",
            custom.to_str().unwrap(),
            "runs",
            "list",
            "--json",
        ])
        .ok()
        .json();
    assert_eq!(listed.as_array().unwrap().len(), 1);
    assert!(Path::new(&custom).join("lock").exists());
}
