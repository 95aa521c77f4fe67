//! Plugins: plugin.yaml checks, `segflow plugins list`, validation of `with` against a plugin's
//! schema, and the protocol end to end (request, result, datasets, failures, timeouts, secrets).

use std::time::{Duration, Instant};

use crate::support;
use crate::support::plugins::{copy_from_repo, read_dataset, write_plugin};
use crate::support::{Project, step_states};

/// A plugin whose kind `run` is the given sh script.
fn sh_plugin(project: &Project, name: &str, kind_yaml: &str, script: &str) {
    let manifest = format!(
        "name: {name}\nversion: 1.0.0\nprotocol: 1\nkinds:\n  run:\n    description: test kind\n    executable: run.sh\n{kind_yaml}"
    );
    write_plugin(project, name, &manifest, "run.sh", script);
}

fn attempts(shown: &serde_json::Value, step: &str) -> Vec<serde_json::Value> {
    support::step(shown, step)["attempts"]
        .as_array()
        .unwrap()
        .clone()
}

fn reason(shown: &serde_json::Value, step: &str) -> String {
    support::step_reason(shown, step)
}

#[test]
fn plugins_list_shows_the_shipped_plugins_and_their_kinds() {
    let project = Project::new();
    copy_from_repo(&project, "plugins");
    let listed = project.segflow(&["plugins", "list"]).ok();
    assert!(
        listed
            .stdout
            .contains("churn 0.1.0  (plugins/churn/plugin.yaml)"),
        "{}",
        listed.stdout
    );
    assert!(
        listed.stdout.contains("plugin.churn.score")
            && listed.stdout.contains("Scores each customer's churn risk"),
        "{}",
        listed.stdout
    );
    assert!(
        listed.stdout.contains("plugin.tiers.value"),
        "{}",
        listed.stdout
    );
    assert!(
        listed.stdout.contains("reads 1 dataset as csv"),
        "{}",
        listed.stdout
    );
    assert!(
        listed
            .stdout
            .contains("with: column*, gold_at*, silver_at*"),
        "{}",
        listed.stdout
    );

    let json = project.segflow(&["plugins", "list", "--json"]).ok().json();
    let uses: Vec<&str> = json["plugins"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|p| p["kinds"].as_array().unwrap())
        .map(|k| k["uses"].as_str().unwrap())
        .collect();
    assert_eq!(uses, ["plugin.churn.score", "plugin.tiers.value"]);
}

#[test]
fn a_broken_plugin_yaml_is_reported_with_its_file_and_line() {
    let project = Project::new();
    project.write("outside.sh", "#!/bin/sh\n");
    write_plugin(
        &project,
        "bad",
        "name: bad\nversion: 1.0.0\nprotocol: 2\nkinds:\n  go:\n    description: d\n    executable: ../../outside.sh\n    schema: { type: banana }\n    colour: red\n",
        "ok.sh",
        "#!/bin/sh\n",
    );
    project.pipeline("p", "name: p\nsteps:\n  - id: a\n    uses: plugin.bad.go\n");

    let listed = project.segflow(&["plugins", "list"]).failed();
    let err = &listed.stderr;
    assert!(err.contains("plugins/bad/plugin.yaml:3:11"), "{err}");
    assert!(
        err.contains(
            "the plugin speaks protocol version 2, but this segflow speaks protocol version 1"
        ),
        "{err}"
    );
    assert!(err.contains("plugins/bad/plugin.yaml:9:5"), "{err}");
    assert!(err.contains("unknown key `colour`"), "{err}");

    // Once the shape is right, the executable and the schema are checked too.
    write_plugin(
        &project,
        "bad",
        "name: bad\nversion: 1.0.0\nprotocol: 1\nkinds:\n  go:\n    description: d\n    executable: ../../outside.sh\n    schema: { type: banana }\n",
        "ok.sh",
        "#!/bin/sh\n",
    );
    let validated = project.segflow(&["validate"]).failed();
    let err = &validated.stderr;
    assert!(err.contains("plugins/bad/plugin.yaml:7:17"), "{err}");
    assert!(err.contains("goes up with `..`"), "{err}");
    assert!(err.contains("plugins/bad/plugin.yaml:8:13"), "{err}");
    assert!(err.contains("not a valid JSON Schema"), "{err}");
    // The pipeline cannot use a plugin that did not load, and says where to look.
    assert!(err.contains("unknown step kind `plugin.bad.go`"), "{err}");
    assert!(err.contains("segflow plugins list"), "{err}");
}

#[test]
fn an_executable_that_links_out_of_its_folder_is_refused() {
    let project = Project::new();
    project.write("elsewhere/tool.sh", "#!/bin/sh\n");
    write_plugin(
        &project,
        "sneaky",
        "name: sneaky\nversion: 1.0.0\nprotocol: 1\nkinds:\n  go:\n    description: d\n    executable: tool.sh\n",
        "unused.sh",
        "#!/bin/sh\n",
    );
    std::os::unix::fs::symlink(
        project.path("elsewhere/tool.sh"),
        project.path("plugins/sneaky/tool.sh"),
    )
    .unwrap();
    let listed = project.segflow(&["plugins", "list"]).failed();
    assert!(
        listed
            .stderr
            .contains("through a symlink, outside the plugin's folder"),
        "{}",
        listed.stderr
    );
}

#[test]
fn validate_checks_with_against_the_plugin_schema_at_the_right_line() {
    let project = Project::new();
    copy_from_repo(&project, "plugins");
    project.pipeline(
        "p",
        r#"name: p
params:
  cut: { type: number, default: 0.5 }
steps:
  - id: rfm
    uses: noop
  - id: risk
    uses: plugin.churn.score
    needs: [rfm]
    with:
      custmer: id
      high_at: 1.5
      medium_at: "${{ params.cut }}"
  - id: tiers
    uses: plugin.tiers.value
    needs: [risk]
    with: { column: monetary, gold_at: lots }
"#,
    );
    let validated = project.segflow(&["validate"]).failed();
    let err = &validated.stderr;
    assert!(err.contains("unknown key `custmer`"), "{err}");
    assert!(err.contains("pipelines/p.yaml:11:7"), "{err}");
    assert!(err.contains("did you mean `customer`?"), "{err}");
    assert!(
        err.contains("1.5 is greater than the maximum of 1"),
        "{err}"
    );
    assert!(err.contains("pipelines/p.yaml:12:16"), "{err}");
    assert!(err.contains("\"lots\" is not of type \"number\""), "{err}");
    assert!(err.contains("missing required key `silver_at`"), "{err}");
    // The param's default (a number) fits: nothing is said about `medium_at`.
    assert!(!err.contains("medium_at"), "{err}");
    assert!(validated.stderr.contains("4 errors"), "{err}");

    let json = project.segflow(&["validate", "--json"]).failed().json();
    let pipeline = json
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["file"] == "pipelines/p.yaml")
        .expect("the pipeline's findings");
    let paths: Vec<&str> = pipeline["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d["path"].as_str().unwrap_or_default())
        .collect();
    assert!(paths.contains(&"steps[1].with.custmer"), "{paths:?}");
    assert!(paths.contains(&"steps[2].with.gold_at"), "{paths:?}");
}

#[test]
fn a_plugin_kind_with_too_few_needs_is_caught_by_validate() {
    let project = Project::new();
    copy_from_repo(&project, "plugins");
    project.pipeline(
        "p",
        "name: p\nsteps:\n  - id: risk\n    uses: plugin.churn.score\n",
    );
    let validated = project.segflow(&["validate"]).failed();
    assert!(
        validated
            .stderr
            .contains("`plugin.churn.score` reads 1 upstream dataset at least, but the step has 0"),
        "{}",
        validated.stderr
    );
}

#[test]
fn the_python_and_shell_plugins_score_and_tier_customers() {
    let project = Project::new();
    copy_from_repo(&project, "plugins");
    // Four customers from safest (1) to riskiest (4) on each of recency, frequency, monetary:
    // mid-ranks make their risks 0.125, 0.375, 0.625 and 0.875 (worked out by hand).
    project.write(
        "data/rfm.csv",
        "customer_id,recency_days,frequency,monetary\n1,1,10,1000\n2,10,5,300\n3,100,2,50\n4,300,1,5\n",
    );
    project.pipeline(
        "p",
        r#"name: p
steps:
  - id: rfm
    uses: gather.csv
    with: { path: data/rfm.csv }
  - id: risk
    uses: plugin.churn.score
    needs: [rfm]
    with: { high_at: 0.7, medium_at: 0.33 }
  - id: tiers
    uses: plugin.tiers.value
    needs: [risk]
    with: { column: monetary, gold_at: 500, silver_at: 50 }
  - id: report
    uses: noop
    needs: [tiers]
    when: "${{ steps.risk.outputs.high_risk == 1 }}"
    with: { outputs: { gold: "${{ steps.tiers.outputs.gold }}" } }
"#,
    );
    let run = project.segflow(&["run", "p"]).ok();
    let shown = project.show(&run.run_id());
    assert!(
        step_states(&shown)
            .iter()
            .all(|(_, state)| state == "succeeded"),
        "{shown:#}"
    );
    let steps = shown["steps"].as_array().unwrap();
    let risk = steps.iter().find(|s| s["id"] == "risk").unwrap();
    assert_eq!(risk["outputs"]["scored"], 4);
    assert_eq!(risk["outputs"]["high_risk"], 1);
    assert_eq!(risk["outputs"]["high_risk_share"], 0.25);
    assert_eq!(risk["outputs"]["mean_risk"], 0.5);
    let tiers = steps.iter().find(|s| s["id"] == "tiers").unwrap();
    assert_eq!(tiers["outputs"]["gold"], 1);
    assert_eq!(tiers["outputs"]["silver"], 2);
    assert_eq!(tiers["outputs"]["bronze"], 1);
    let report = steps.iter().find(|s| s["id"] == "report").unwrap();
    assert_eq!(report["outputs"]["gold"], 1);

    let scored = read_dataset(&project, &shown, "risk", "main");
    assert_eq!(
        scored.column("churn_risk"),
        ["0.125", "0.375", "0.625", "0.875"]
    );
    assert_eq!(
        scored.column("risk_band"),
        ["low", "medium", "medium", "high"]
    );
    let tiered = read_dataset(&project, &shown, "tiers", "main");
    assert_eq!(
        tiered.columns,
        [
            "customer_id",
            "recency_days",
            "frequency",
            "monetary",
            "churn_risk",
            "risk_band",
            "value_tier"
        ]
    );
    assert_eq!(
        tiered.column("value_tier"),
        ["gold", "silver", "silver", "bronze"]
    );
    // The plugins' stderr is in the step's log.
    let logs = project.segflow(&["logs", &run.run_id(), "risk"]).ok();
    assert!(
        logs.stdout.contains("1 of 4 customers are at high risk"),
        "{}",
        logs.stdout
    );
    // The CSV copies the plugins worked on are cleaned up; the datasets stay.
    let run_dir = project.path(".segflow/runs").join(run.run_id());
    assert!(!run_dir.join("risk/plugin-1").exists());
    assert!(run_dir.join("risk/main.parquet").is_file());
}

#[test]
fn the_shipped_pipeline_runs_on_the_cdnow_customers() {
    let project = Project::new();
    copy_from_repo(&project, "plugins");
    copy_from_repo(&project, "pipelines/churn-tiers.yaml");
    copy_from_repo(&project, "data/cdnow_transactions.csv");
    project.segflow(&["validate"]).ok();
    let run = project.segflow(&["run", "churn-tiers"]).ok();
    let shown = project.show(&run.run_id());
    let steps = shown["steps"].as_array().unwrap();
    let risk = steps.iter().find(|s| s["id"] == "risk").unwrap();
    assert_eq!(risk["outputs"]["scored"], 23570);
    let tiers = steps.iter().find(|s| s["id"] == "tiers").unwrap();
    // Counted independently from the transactions with awk:
    // awk -F, 'NR>1{s[$1]+=$4} END{for(c in s){v=sprintf("%.2f",s[c])+0;
    //   if(v>=500)g++; else if(v>=100)si++; else b++} print g, si, b}' data/cdnow_transactions.csv
    assert_eq!(tiers["outputs"]["gold"], 734);
    assert_eq!(tiers["outputs"]["silver"], 5500);
    assert_eq!(tiers["outputs"]["bronze"], 17336);
    let summary = steps.iter().find(|s| s["id"] == "summary").unwrap();
    assert_eq!(
        summary["outputs"]["high_risk"],
        risk["outputs"]["high_risk"]
    );
    // Through two CSV round trips the ids keep their type and leading zeros.
    let tiered = read_dataset(&project, &shown, "tiers", "main");
    assert_eq!(&tiered.column("customer_id")[..2], ["00001", "00002"]);
    assert_eq!(tiered.rows.len(), 23570);
}

#[test]
fn parquet_inputs_and_parquet_and_ndjson_results() {
    let project = Project::new();
    project.write("data/c.csv", "id,spend\n1,10.5\n2,20\n3,0\n");
    // Hands the Parquet input back as it is, and adds an NDJSON dataset of its own.
    sh_plugin(
        &project,
        "copy",
        "    inputs: { min: 1 }\n    writes: [main, note]\n    outputs: [inputs_seen]\n",
        r#"#!/bin/sh
request=$(cat)
input=$(printf '%s' "$request" | sed -n 's/.*"path":"\([^"]*\)".*/\1/p')
out=$(printf '%s' "$request" | sed -n 's/.*"output_dir":"\([^"]*\)".*/\1/p')
format=$(printf '%s' "$request" | sed -n 's/.*"format":"\([^"]*\)".*/\1/p')
cp "$input" "$out/copy.parquet"
printf '{"kind":"copy","ok":true}\n{"kind":"again","ok":false}\n' > "$out/note.jsonl"
echo "{\"protocol\":1,\"outputs\":{\"inputs_seen\":\"$format\"},\"datasets\":[{\"file\":\"copy.parquet\"},{\"name\":\"note\",\"file\":\"note.jsonl\"}]}"
"#,
    );
    project.pipeline(
        "p",
        "name: p\nsteps:\n  - id: c\n    uses: gather.csv\n    with: { path: data/c.csv }\n  - id: copied\n    uses: plugin.copy.run\n    needs: [c]\n",
    );
    let run = project.segflow(&["run", "p"]).ok();
    let shown = project.show(&run.run_id());
    let copied = support::step(&shown, "copied").clone();
    assert_eq!(copied["outputs"]["inputs_seen"], "parquet");
    let main = read_dataset(&project, &shown, "copied", "main");
    assert_eq!(main.column("spend"), ["10.5", "20.0", "0.0"]);
    let note = read_dataset(&project, &shown, "copied", "note");
    assert_eq!(note.column("kind"), ["copy", "again"]);
    assert_eq!(note.column("ok"), ["true", "false"]);
}

#[test]
fn a_failing_plugin_quotes_its_stderr_and_retries_unless_told_not_to() {
    let project = Project::new();
    sh_plugin(
        &project,
        "flaky",
        "    writes: []\n",
        "#!/bin/sh\ncat > /dev/null\necho 'connecting to the scoring service' >&2\necho 'service unavailable' >&2\nexit 3\n",
    );
    sh_plugin(
        &project,
        "strict",
        "    writes: []\n",
        "#!/bin/sh\ncat > /dev/null\necho 'row 7: amount is not a number' >&2\nexit 65\n",
    );
    project.pipeline(
        "p",
        "name: p\ndefaults:\n  retry: { attempts: 2, delay: 10ms }\nsteps:\n  - id: flaky\n    uses: plugin.flaky.run\n  - id: strict\n    uses: plugin.strict.run\n",
    );
    let run = project.segflow(&["run", "p"]).failed();
    let shown = project.show(&run.run_id());
    let flaky = reason(&shown, "flaky");
    assert!(
        flaky.contains("plugin `flaky` (kind `run`) exited with code 3"),
        "{flaky}"
    );
    assert!(
        flaky.contains("connecting to the scoring service\nservice unavailable"),
        "{flaky}"
    );
    assert_eq!(attempts(&shown, "flaky").len(), 2);
    let strict = reason(&shown, "strict");
    assert!(strict.contains("exited with code 65"), "{strict}");
    assert!(strict.contains("row 7: amount is not a number"), "{strict}");
    assert_eq!(attempts(&shown, "strict").len(), 1, "65 is not retried");
}

#[test]
fn a_result_in_another_protocol_version_or_shape_is_refused_clearly() {
    let project = Project::new();
    sh_plugin(
        &project,
        "future",
        "    writes: []\n",
        "#!/bin/sh\ncat > /dev/null\necho '{\"protocol\": 2, \"outputs\": {}}'\n",
    );
    sh_plugin(
        &project,
        "chatty",
        "    writes: []\n",
        "#!/bin/sh\ncat > /dev/null\necho 'loading model'\necho '{\"protocol\": 1}'\n",
    );
    sh_plugin(
        &project,
        "lazy",
        "",
        "#!/bin/sh\ncat > /dev/null\necho '{\"protocol\": 1, \"datasets\": [{\"file\": \"../../../escape.csv\"}]}'\n",
    );
    project.pipeline(
        "p",
        "name: p\nsteps:\n  - id: future\n    uses: plugin.future.run\n  - id: chatty\n    uses: plugin.chatty.run\n  - id: lazy\n    uses: plugin.lazy.run\n",
    );
    let run = project.segflow(&["run", "p"]).failed();
    let shown = project.show(&run.run_id());
    let future = reason(&shown, "future");
    assert!(
        future.contains("protocol version 2, but this segflow speaks protocol version 1"),
        "{future}"
    );
    let chatty = reason(&shown, "chatty");
    assert!(chatty.contains("write logs to stderr"), "{chatty}");
    let lazy = reason(&shown, "lazy");
    assert!(
        lazy.contains("dataset files are relative to `output_dir` and inside it"),
        "{lazy}"
    );
}

#[test]
fn the_step_timeout_stops_the_plugin_and_everything_it_started() {
    let project = Project::new();
    let pid_file = project.path("child.pid");
    sh_plugin(
        &project,
        "slow",
        "    writes: []\n",
        &format!(
            "#!/bin/sh\ncat > /dev/null\nsleep 60 &\necho $! > {}\nwait\n",
            pid_file.display()
        ),
    );
    project.pipeline(
        "p",
        "name: p\nsteps:\n  - id: slow\n    uses: plugin.slow.run\n    timeout: 1s\n",
    );
    let started = Instant::now();
    let run = project.segflow(&["run", "p"]).failed();
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the run waited for the plugin"
    );
    let shown = project.show(&run.run_id());
    assert!(
        reason(&shown, "slow").contains("timed out after 1s"),
        "{shown:#}"
    );
    let pid = project.read("child.pid").trim().to_string();
    assert!(!pid.is_empty(), "the plugin wrote its child's pid");
    // The plugin's own child (in its process group) is gone too.
    let deadline = Instant::now() + Duration::from_secs(5);
    while !process_gone(&pid) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        process_gone(&pid),
        "the plugin's child {pid} outlived the step"
    );
}

/// Whether a process is gone: no longer there, or a zombie waiting for init to reap it.
fn process_gone(pid: &str) -> bool {
    match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        Err(_) => true,
        Ok(stat) => stat
            .rsplit_once(')')
            .is_some_and(|(_, rest)| rest.trim_start().starts_with('Z')),
    }
}

fn wait_until(what: &str, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn cancelling_the_run_stops_the_plugin_and_everything_it_started() {
    let project = Project::new();
    let pid_file = project.path("child.pid");
    sh_plugin(
        &project,
        "slow",
        "    writes: []\n",
        &format!(
            "#!/bin/sh\ncat > /dev/null\nsleep 60 &\necho $! > {}\nwait\n",
            pid_file.display()
        ),
    );
    project.pipeline(
        "p",
        "name: p\nsteps:\n  - id: slow\n    uses: plugin.slow.run\n",
    );
    let segflow = project
        .command(&["run", "p"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    wait_until("the plugin started its child", || {
        !project.read("child.pid").trim().is_empty()
    });
    let pid = project.read("child.pid").trim().to_string();
    // What Ctrl-C or a service manager does.
    let signalled = std::process::Command::new("kill")
        .args(["-TERM", &segflow.id().to_string()])
        .status()
        .unwrap();
    assert!(signalled.success());
    let output = segflow.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    assert!(stdout.contains("cancelled"), "{stdout}\n{stderr}");
    let run_id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run "))
        .and_then(|r| r.split_whitespace().next())
        .expect("a run id")
        .to_string();
    let shown = project.show(&run_id);
    assert_eq!(shown["state"], "cancelled", "{shown:#}");
    assert_eq!(
        step_states(&shown),
        [("slow".to_string(), "cancelled".to_string())]
    );
    wait_until("the plugin's child is gone", || process_gone(&pid));
}

#[test]
fn a_plugin_gets_only_the_secrets_its_config_names() {
    let project = Project::new();
    let seen = project.path("seen");
    sh_plugin(
        &project,
        "peek",
        "    writes: []\n    schema: { type: object, properties: { token: { type: string } } }\n",
        &format!(
            "#!/bin/sh\ncat > {seen}.request\nenv > {seen}.env\necho \"using token $(sed -n 's/.*\"token\":\"\\([^\"]*\\)\".*/\\1/p' {seen}.request)\" >&2\necho '{{\"protocol\": 1}}'\n",
            seen = seen.display()
        ),
    );
    project.pipeline(
        "p",
        "name: p\nsteps:\n  - id: peek\n    uses: plugin.peek.run\n    with: { token: \"${{ secrets.API_TOKEN }}\" }\n",
    );
    let run = project
        .command(&["run", "p"])
        .env("SEGFLOW_SECRET_API_TOKEN", "tok-1234567890")
        .env("SEGFLOW_SECRET_OTHER", "other-secret-value")
        .output()
        .unwrap();
    assert!(
        run.status.success(),
        "{}",
        String::from_utf8_lossy(&run.stderr)
    );
    let request = project.read("seen.request");
    assert!(
        request.contains("\"token\":\"tok-1234567890\""),
        "{request}"
    );
    assert!(!request.contains("other-secret-value"), "{request}");
    let env = project.read("seen.env");
    assert!(!env.contains("SEGFLOW_SECRET_"), "{env}");
    assert!(!env.contains("other-secret-value"), "{env}");
    // What the plugin says about the secret is masked in the log.
    let stdout = String::from_utf8_lossy(&run.stdout).into_owned();
    let run_id = stdout
        .lines()
        .find_map(|l| l.strip_prefix("run "))
        .and_then(|r| r.split_whitespace().next())
        .unwrap()
        .to_string();
    let logs = project.segflow(&["logs", &run_id, "peek"]).ok();
    assert!(logs.stdout.contains("using token ***"), "{}", logs.stdout);
    assert!(!logs.stdout.contains("tok-1234567890"), "{}", logs.stdout);
}

#[test]
fn a_plugin_that_skips_a_dataset_it_promised_fails_the_step() {
    let project = Project::new();
    sh_plugin(
        &project,
        "forgetful",
        "    outputs: [count]\n",
        "#!/bin/sh\ncat > /dev/null\necho '{\"protocol\": 1, \"outputs\": {\"count\": 1}}'\n",
    );
    project.pipeline(
        "p",
        "name: p\nsteps:\n  - id: f\n    uses: plugin.forgetful.run\n",
    );
    let run = project.segflow(&["run", "p"]).failed();
    let shown = project.show(&run.run_id());
    let why = reason(&shown, "f");
    assert!(
        why.contains("did not return the dataset `main` that its plugin.yaml lists under `writes`"),
        "{why}"
    );
}

#[test]
fn plugin_arguments_reach_the_program_as_they_are_written_never_through_a_shell() {
    let project = Project::new();
    let seen = project.path("argv");
    // Each argument on its own line: a shell would have split, expanded or run them.
    sh_plugin(
        &project,
        "argv",
        "    args: [\"two words\", \"$HOME\", \"; touch pwned\", \"`id`\", \"*\"]\n    writes: []\n",
        &format!(
            "#!/bin/sh\ncat > /dev/null\nfor a in \"$@\"; do printf '%s\\n' \"$a\"; done > {}\necho '{{\"protocol\": 1}}'\n",
            seen.display()
        ),
    );
    project.pipeline(
        "p",
        "name: p\nsteps:\n  - id: a\n    uses: plugin.argv.run\n",
    );
    project.segflow(&["run", "p"]).ok();
    assert_eq!(
        project.read("argv").lines().collect::<Vec<_>>(),
        ["two words", "$HOME", "; touch pwned", "`id`", "*"]
    );
    assert!(!project.path("plugins/argv/pwned").exists());
    assert!(!project.path("pwned").exists());
}
