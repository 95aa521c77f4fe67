//! Running pipelines: trigger rules, retries, timeouts, concurrency, params, secrets, resume.

use std::time::{Duration, Instant};

use crate::support::{Project, step_states};

fn pairs(items: &[(&str, &str)]) -> Vec<(String, String)> {
    items
        .iter()
        .map(|(a, b)| (a.to_string(), b.to_string()))
        .collect()
}

#[test]
fn outputs_flow_through_expressions_and_when_skips() {
    let project = Project::new();
    project.pipeline(
        "flow",
        r#"name: flow
params:
  holdout: { type: number, default: 0.1, min: 0, max: 0.5 }
steps:
  - id: count
    uses: shell
    with:
      command: ["sh", "-c", "echo counting; echo '{\"rows\": 42}' > \"$SEGFLOW_OUTPUTS\""]
      outputs: [rows]
  - id: big
    uses: noop
    needs: [count]
    when: "${{ steps.count.outputs.rows > 10 }}"
    with: { outputs: { doubled: "${{ steps.count.outputs.rows * 2 }}", holdout: "${{ params.holdout }}", label: "n=${{ steps.count.outputs.rows }}" } }
  - id: small
    uses: noop
    needs: [count]
    when: "steps.count.outputs.rows < 10"
  - id: after_small
    uses: noop
    needs: [small]
  - id: after_either
    uses: noop
    needs: [small, big]
    trigger: none_failed
"#,
    );
    let run = project.segflow(&["run", "flow", "-p", "holdout=0.25"]).ok();
    let shown = project.show(&run.run_id());
    assert_eq!(
        step_states(&shown),
        pairs(&[
            ("count", "succeeded"),
            ("big", "succeeded"),
            ("small", "skipped"),
            ("after_small", "skipped"),
            ("after_either", "succeeded"),
        ])
    );
    let big = &shown["steps"][1];
    assert_eq!(big["outputs"]["doubled"], 84);
    assert_eq!(big["outputs"]["holdout"], 0.25);
    assert_eq!(big["outputs"]["label"], "n=42");
    assert_eq!(shown["steps"][2]["reason"], "`when` is false");
    assert_eq!(
        shown["steps"][3]["reason"],
        "needed step `small` was skipped"
    );
    assert_eq!(shown["params"]["holdout"], 0.25);
    let logs = project.segflow(&["logs", &run.run_id(), "count"]).ok();
    assert!(logs.stdout.contains("count#1 counting"), "{}", logs.stdout);
}

#[test]
fn a_failure_fails_the_run_and_fires_one_failed_steps() {
    let project = Project::new();
    project.pipeline(
        "fails",
        r#"name: fails
steps:
  - id: broken
    uses: shell
    with: { command: ["sh", "-c", "echo 'disk on fire' >&2; exit 3"] }
  - id: downstream
    uses: noop
    needs: [broken]
  - id: cleanup
    uses: noop
    needs: [broken]
    trigger: all_done
  - id: alert
    uses: noop
    needs: [downstream]
    trigger: one_failed
  - id: quiet
    uses: noop
    trigger: one_failed
    needs: [cleanup]
"#,
    );
    let run = project.segflow(&["run", "fails"]).failed();
    assert!(
        run.stdout.contains("failed: failed steps: broken"),
        "{}",
        run.stdout
    );
    let shown = project.show(&run.run_id());
    assert_eq!(shown["state"], "failed");
    assert_eq!(
        step_states(&shown),
        pairs(&[
            ("broken", "failed"),
            ("downstream", "upstream_failed"),
            ("cleanup", "succeeded"),
            ("alert", "succeeded"),
            ("quiet", "skipped"),
        ])
    );
    let reason = shown["steps"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("`sh` exited with code 3"), "{reason}");
    assert!(
        reason.contains("disk on fire"),
        "the error carries the last stderr lines: {reason}"
    );
}

#[test]
fn retries_with_backoff_until_success() {
    let project = Project::new();
    project.pipeline(
        "flaky",
        r#"name: flaky
steps:
  - id: flaky
    uses: shell
    retry: { attempts: 4, backoff: exponential, delay: 50ms, jitter: false }
    with:
      command: ["sh", "-c", "echo x >> tries; test $(wc -l < tries) -ge 3"]
"#,
    );
    let run = project.segflow(&["run", "flaky"]).ok();
    let shown = project.show(&run.run_id());
    let attempts = shown["steps"][0]["attempts"].as_array().unwrap();
    assert_eq!(attempts.len(), 3);
    let outcomes: Vec<&str> = attempts
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["failed", "failed", "succeeded"]);
    // Exponential backoff: the second wait is about twice the first (50ms, then 100ms).
    let times: Vec<chrono::DateTime<chrono::Utc>> = attempts
        .iter()
        .map(|a| a["started_at"].as_str().unwrap().parse().unwrap())
        .collect();
    let first_gap = (times[1] - times[0]).num_milliseconds();
    let second_gap = (times[2] - times[1]).num_milliseconds();
    assert!(first_gap >= 50, "{first_gap}");
    assert!(second_gap >= 100, "{second_gap}");
    assert_eq!(project.read("tries").lines().count(), 3);
}

#[test]
fn retries_stop_after_the_last_attempt() {
    let project = Project::new();
    project.pipeline(
        "never",
        "name: never\ndefaults:\n  retry: { attempts: 2, delay: 10ms }\nsteps:\n  - id: never\n    uses: shell\n    with: { command: [\"false\"] }\n",
    );
    let run = project.segflow(&["run", "never"]).failed();
    let shown = project.show(&run.run_id());
    assert_eq!(shown["steps"][0]["attempts"].as_array().unwrap().len(), 2);
    assert_eq!(shown["steps"][0]["state"], "failed");
}

#[test]
fn a_resumed_step_gets_its_whole_retry_policy_again() {
    let project = Project::new();
    // Fails its first four tries: each execution (the run, then each resume) gets the two
    // tries its policy allows, and the fifth try succeeds.
    project.pipeline(
        "stubborn",
        r#"name: stubborn
steps:
  - id: stubborn
    uses: shell
    retry: { attempts: 2, delay: 10ms, jitter: false }
    with:
      command: ["sh", "-c", "echo x >> tries; test $(wc -l < tries) -ge 5"]
"#,
    );
    let run_id = project.segflow(&["run", "stubborn"]).failed().run_id();
    assert_eq!(project.read("tries").lines().count(), 2);
    project.segflow(&["resume", &run_id]).failed();
    assert_eq!(
        project.read("tries").lines().count(),
        4,
        "the resumed step was tried twice, as its policy says"
    );
    project.segflow(&["resume", &run_id]).ok();
    let shown = project.show(&run_id);
    let outcomes: Vec<&str> = shown["steps"][0]["attempts"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(
        outcomes,
        ["failed", "failed", "failed", "failed", "succeeded"]
    );
}

#[test]
fn a_step_timeout_kills_the_program_and_its_children() {
    let project = Project::new();
    project.pipeline(
        "slow",
        r#"name: slow
steps:
  - id: slow
    uses: shell
    timeout: 300ms
    with: { command: ["sh", "-c", "(sleep 2; touch grandchild-survived) & sleep 2; touch child-survived"] }
"#,
    );
    let started = Instant::now();
    let run = project.segflow(&["run", "slow"]).failed();
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "the run waited for the program"
    );
    let shown = project.show(&run.run_id());
    let reason = shown["steps"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("timed out after 300ms"), "{reason}");
    assert_eq!(shown["steps"][0]["attempts"][0]["outcome"], "timed_out");
    std::thread::sleep(Duration::from_millis(2500));
    assert!(!project.path("child-survived").exists());
    assert!(!project.path("grandchild-survived").exists());
}

#[test]
fn a_run_timeout_cancels_what_is_left() {
    let project = Project::new();
    project.pipeline(
        "long",
        "name: long\ntimeout: 300ms\nsteps:\n  - { id: wait, uses: sleep, with: { duration: 5s } }\n  - { id: after, uses: noop, needs: [wait] }\n",
    );
    let run = project.segflow(&["run", "long"]).failed();
    let shown = project.show(&run.run_id());
    assert_eq!(shown["state"], "failed");
    assert!(
        shown["error"]
            .as_str()
            .unwrap()
            .contains("timed out after 300ms"),
        "{shown}"
    );
    assert_eq!(
        step_states(&shown),
        pairs(&[("wait", "cancelled"), ("after", "cancelled")])
    );
}

#[test]
fn concurrency_limits_how_many_steps_run_at_once() {
    let project = Project::new();
    let step = |id: &str| {
        format!(
            "  - id: {id}\n    uses: shell\n    with: {{ command: [\"sh\", \"-c\", \"echo start >> log; sleep 0.3; echo end >> log\"] }}\n"
        )
    };
    let steps: String = ["a", "b", "c", "d", "e"].iter().map(|s| step(s)).collect();
    project.pipeline(
        "wide",
        &format!("name: wide\nconcurrency: 2\nsteps:\n{steps}"),
    );
    project.segflow(&["run", "wide"]).ok();
    let mut running = 0;
    let mut most = 0;
    for line in project.read("log").lines() {
        running += if line == "start" { 1 } else { -1 };
        most = most.max(running);
    }
    assert_eq!(most, 2, "{}", project.read("log"));
}

#[test]
fn independent_steps_run_in_parallel() {
    let project = Project::new();
    project.pipeline(
        "parallel",
        "name: parallel\nsteps:\n  - { id: a, uses: sleep, with: { duration: 400ms } }\n  - { id: b, uses: sleep, with: { duration: 400ms } }\n  - { id: c, uses: sleep, with: { duration: 400ms } }\n",
    );
    let run = project.segflow(&["run", "parallel"]).ok();
    let shown = project.show(&run.run_id());
    let starts: Vec<chrono::DateTime<chrono::Utc>> = shown["steps"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["started_at"].as_str().unwrap().parse().unwrap())
        .collect();
    let spread = (*starts.iter().max().unwrap() - *starts.iter().min().unwrap()).num_milliseconds();
    assert!(
        spread < 300,
        "all three started together, spread {spread}ms"
    );
}

#[test]
fn params_are_checked_before_anything_runs() {
    let project = Project::new();
    project.pipeline(
        "params",
        "name: params\nparams:\n  holdout: { type: number, default: 0.1, max: 0.5 }\n  day: { type: date }\nsteps:\n  - { id: a, uses: noop }\n",
    );
    let run = project
        .segflow(&["run", "params", "-p", "holdout=0.9", "-p", "hldout=1"])
        .failed();
    assert!(
        run.stderr
            .contains("the pipeline has no param `hldout` (did you mean `holdout`?)"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("param `holdout` is 0.9, above its maximum 0.5"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr
            .contains("param `day` has no default and was not given; pass -p day=VALUE"),
        "{}",
        run.stderr
    );
    let bad = project
        .segflow(&["run", "params", "-p", "day=23/11/2026"])
        .failed();
    assert!(
        bad.stderr.contains("must be a date written YYYY-MM-DD"),
        "{}",
        bad.stderr
    );
    let listed = project.segflow(&["runs", "list", "--json"]).ok().json();
    assert_eq!(listed.as_array().unwrap().len(), 0, "no run was recorded");
    let bad_arg = project.segflow(&["run", "params", "-p", "novalue"]);
    assert_eq!(bad_arg.code, Some(2));
    assert!(
        bad_arg.stderr.contains("`novalue` is not name=value"),
        "{}",
        bad_arg.stderr
    );
}

#[test]
fn invalid_pipelines_do_not_run() {
    let project = Project::new();
    project.pipeline("bad", "name: bad\nsteps:\n  - { id: a, uses: nope }\n");
    let run = project.segflow(&["run", "bad"]).failed();
    assert!(
        run.stderr.contains("unknown step kind `nope`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("pipelines/bad.yaml:3:20"),
        "{}",
        run.stderr
    );
}

#[test]
fn secrets_never_reach_logs_outputs_or_state() {
    let project = Project::new();
    let secret = "s3cr3t-api-key-9f8e7d";
    project.write(
        ".segflow/secrets.env",
        &format!("# test secrets\nAPI_KEY={secret}\n"),
    );
    project.pipeline(
        "secret",
        r#"name: secret
steps:
  - id: leak
    uses: shell
    with:
      command: ["sh", "-c", "echo \"key is $KEY\"; echo \"oops $KEY\" >&2; echo \"{\\\"k\\\": \\\"$KEY\\\"}\" > \"$SEGFLOW_OUTPUTS\""]
      env: { KEY: "${{ secrets.API_KEY }}" }
  - id: env_secret
    uses: noop
    with: { outputs: { token: "${{ secrets.OTHER }}" } }
  # Never names secrets.UNREAD: it does not get it, and a copy it finds is masked anyway.
  - id: unread
    uses: shell
    with:
      command: ["sh", "-c", "echo \"unread=[$SEGFLOW_SECRET_UNREAD]\"; cat found.txt"]
"#,
    );
    project.write("found.txt", "found unread-secret-value-456\n");
    let mut command = project.command(&["run", "secret", "-v", "--log-format", "json"]);
    command.env("SEGFLOW_SECRET_OTHER", "another-secret-value-123");
    command.env("SEGFLOW_SECRET_UNREAD", "unread-secret-value-456");
    let output = command.output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{stdout}\n{stderr}");
    assert!(!stdout.contains(secret) && !stderr.contains(secret));
    // --log-format json: every line on stderr is a JSON log event.
    let log_lines: Vec<&str> = stderr.lines().collect();
    assert!(!log_lines.is_empty(), "{stderr}");
    for line in log_lines {
        let event: serde_json::Value = serde_json::from_str(line)
            .unwrap_or_else(|e| panic!("not a JSON line ({e}): {line}\n{stderr}"));
        assert!(
            event["level"].is_string() && event["timestamp"].is_string(),
            "{line}"
        );
    }
    let run_id = stdout.split_whitespace().nth(1).unwrap().to_string();
    let logs = project.segflow(&["logs", &run_id]).ok().stdout;
    assert!(logs.contains("key is ***"), "{logs}");
    assert!(logs.contains("oops ***"), "{logs}");
    assert!(logs.contains("unread=[]"), "{logs}");
    assert!(logs.contains("found ***"), "{logs}");
    assert!(!logs.contains("unread-secret-value-456"), "{logs}");
    let shown = project.show(&run_id);
    assert_eq!(shown["steps"][0]["outputs"]["k"], "***");
    assert_eq!(shown["steps"][1]["outputs"]["token"], "***");
    // Nothing on disk holds the secret in clear, apart from the secrets file itself.
    for entry in walk(&project.path(".segflow")) {
        if entry.ends_with("secrets.env") {
            continue;
        }
        let bytes = std::fs::read(&entry).unwrap();
        let text = String::from_utf8_lossy(&bytes);
        assert!(
            !text.contains(secret),
            "{} holds the secret",
            entry.display()
        );
        assert!(
            !text.contains("another-secret-value-123"),
            "{} holds the secret",
            entry.display()
        );
    }
}

#[test]
fn a_missing_secret_fails_the_step_with_how_to_set_it() {
    let project = Project::new();
    project.pipeline(
        "nosecret",
        "name: nosecret\nsteps:\n  - id: a\n    uses: noop\n    with: { outputs: { t: \"${{ secrets.MISSING }}\" } }\n",
    );
    let run = project.segflow(&["run", "nosecret"]).failed();
    let shown = project.show(&run.run_id());
    let reason = shown["steps"][0]["reason"].as_str().unwrap();
    assert!(reason.contains("secrets.MISSING"), "{reason}");
}

fn walk(dir: &std::path::Path) -> Vec<std::path::PathBuf> {
    let mut files = Vec::new();
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            files.extend(walk(&path));
        } else {
            files.push(path);
        }
    }
    files
}

#[test]
fn resume_reruns_only_what_did_not_succeed() {
    let project = Project::new();
    project.pipeline(
        "resumable",
        r#"name: resumable
steps:
  - id: first
    uses: shell
    with: { command: ["sh", "-c", "echo first >> ran"] }
  - id: gate
    uses: shell
    needs: [first]
    with: { command: ["sh", "-c", "echo gate >> ran; test -f fixed"] }
  - id: last
    uses: shell
    needs: [gate]
    with: { command: ["sh", "-c", "echo last >> ran"] }
"#,
    );
    let run = project.segflow(&["run", "resumable"]).failed();
    let run_id = run.run_id();
    assert!(
        run.stderr.contains(&format!("segflow resume {run_id}")),
        "{}",
        run.stderr
    );
    assert_eq!(project.read("ran"), "first\ngate\n");
    project.write("fixed", "");
    let resumed = project.segflow(&["resume", &run_id[..10]]).ok();
    assert_eq!(resumed.run_id(), run_id);
    assert_eq!(project.read("ran"), "first\ngate\ngate\nlast\n");
    let shown = project.show(&run_id);
    assert_eq!(shown["state"], "succeeded");
    assert_eq!(shown["resumes"], 1);
    assert_eq!(shown["steps"][0]["attempts"].as_array().unwrap().len(), 1);
    assert_eq!(shown["steps"][1]["attempts"].as_array().unwrap().len(), 2);
    let again = project.segflow(&["resume", &run_id]).failed();
    assert!(
        again.stderr.contains("already succeeded"),
        "{}",
        again.stderr
    );
}

#[test]
fn retry_from_a_step_reruns_it_and_what_follows() {
    let project = Project::new();
    project.pipeline(
        "again",
        r#"name: again
steps:
  - { id: a, uses: shell, with: { command: ["sh", "-c", "echo a >> ran"] } }
  - { id: b, uses: shell, needs: [a], with: { command: ["sh", "-c", "echo b >> ran"] } }
  - { id: c, uses: shell, needs: [b], with: { command: ["sh", "-c", "echo c >> ran"] } }
  - { id: d, uses: shell, needs: [a], with: { command: ["sh", "-c", "echo d >> ran"] } }
"#,
    );
    let run_id = project.segflow(&["run", "again"]).ok().run_id();
    let before: Vec<String> = project.read("ran").lines().map(str::to_string).collect();
    assert_eq!(before.len(), 4);
    project.segflow(&["retry", &run_id, "--from", "b"]).ok();
    let after: Vec<String> = project
        .read("ran")
        .lines()
        .skip(4)
        .map(str::to_string)
        .collect();
    assert_eq!(after, ["b", "c"]);
    let unknown = project
        .segflow(&["retry", &run_id, "--from", "bb"])
        .failed();
    assert!(
        unknown
            .stderr
            .contains("has no step `bb`; did you mean `b`?"),
        "{}",
        unknown.stderr
    );
}

#[test]
fn unknown_runs_are_explained() {
    let project = Project::new();
    let run = project.segflow(&["runs", "show", "nope"]).failed();
    assert!(
        run.stderr.contains("there is no run `nope`"),
        "{}",
        run.stderr
    );
    let empty = project.segflow(&["runs", "list"]).ok();
    assert!(empty.stdout.contains("no runs yet"), "{}", empty.stdout);
}

#[test]
fn reading_a_skipped_steps_outputs_says_how_to_allow_for_it() {
    let project = Project::new();
    project.pipeline(
        "skipped",
        r#"name: skipped
steps:
  - { id: maybe, uses: noop, when: false, with: { outputs: { n: 1 } } }
  - id: after
    uses: noop
    needs: [maybe]
    trigger: none_failed
    with: { outputs: { n: "${{ steps.maybe.outputs.n }}" } }
  - id: safe
    uses: noop
    needs: [maybe]
    trigger: none_failed
    with: { outputs: { n: "${{ steps.maybe.outputs.n | default(0) }}" } }
"#,
    );
    let run_id = project.segflow(&["run", "skipped"]).failed().run_id();
    let shown = project.show(&run_id);
    let reason = shown["steps"][1]["reason"].as_str().unwrap();
    assert!(
        reason.contains("step `maybe` is skipped, so it set no outputs")
            && reason.contains("| default(VALUE)"),
        "{reason}"
    );
    assert_eq!(shown["steps"][2]["state"], "succeeded");
    assert_eq!(shown["steps"][2]["outputs"]["n"], 0);
}
