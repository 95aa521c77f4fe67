//! `segflow validate`, `graph` and `schema`.

use crate::support::Project;

const GOOD: &str = r#"name: weekly-rfm
description: A valid pipeline.
schedule:
  cron: "0 6 * * 1"
  timezone: Europe/Berlin
params:
  as_of: { type: date, default: "${{ run.scheduled_date }}" }
  holdout: { type: number, default: 0.1, min: 0, max: 0.5 }
defaults:
  retry: { attempts: 3, backoff: exponential, delay: 2s, max_delay: 1m }
  timeout: 15m
steps:
  - id: orders
    uses: shell
    with:
      command: ["echo", "${{ params.as_of }}"]
      outputs: [rows]
  - id: split
    uses: noop
    needs: [orders]
    when: "${{ steps.orders.outputs.rows > 0 }}"
    with: { outputs: { srm_ok: true, fraction: "${{ params.holdout }}" } }
  - id: alert
    uses: noop
    needs: [split]
    trigger: one_failed
"#;

#[test]
fn a_valid_pipeline_passes() {
    let project = Project::new();
    project.pipeline("good", GOOD);
    let run = project.segflow(&["validate"]).ok();
    assert!(
        run.stdout.contains("1 file checked: 0 errors, 0 warnings"),
        "{}",
        run.stdout
    );
}

#[test]
fn every_error_of_every_file_is_reported_with_its_line() {
    let project = Project::new();
    project.pipeline("good", GOOD);
    project.pipeline(
        "bad",
        r#"name: bad
steps:
  - id: orders
    uses: gather.cvs
    neds: [x]
  - id: clean
    uses: noop
    needs: [ordrs]
"#,
    );
    project.pipeline(
        "worse",
        "name: worse\nsteps:\n  - id: a\n    uses: noop\n    needs: [a]\n",
    );
    let run = project.segflow(&["validate", "pipelines"]).failed();
    let err = &run.stderr;
    // Each error: message, file:line:column, the source line and a caret, a hint.
    assert!(
        err.contains("error: unknown step kind `gather.cvs`"),
        "{err}"
    );
    assert!(err.contains("pipelines/bad.yaml:4:11"), "{err}");
    assert!(
        err.contains("4 |     uses: gather.cvs\n  |           ^^^^^^^^^^"),
        "{err}"
    );
    assert!(err.contains("error: unknown key `neds`"), "{err}");
    assert!(err.contains("help: did you mean `needs`?"), "{err}");
    assert!(
        err.contains("step `clean` needs `ordrs`, but there is no such step"),
        "{err}"
    );
    assert!(err.contains("help: did you mean `orders`?"), "{err}");
    assert!(err.contains("pipelines/worse.yaml:5:13"), "{err}");
    assert!(err.contains("step `a` needs itself: a -> a"), "{err}");
    assert!(err.contains("3 files checked: 4 errors"), "{err}");
}

/// One file with one of each error `validate` must catch; each is checked for its message and line.
#[test]
fn catches_each_kind_of_mistake() {
    let project = Project::new();
    let path = project.pipeline(
        "mistakes",
        r#"name: mistakes
schedule:
  cron: "0 6 * * 8"
  timezone: Europe/Berln
params:
  holdout: { type: number, default: 0.7, min: 0, max: 0.5 }
  segment: { type: enum, values: [a, b], default: c }
steps:
  - id: a
    uses: noop
    needs: [c]
    with: { outputs: { x: "${{ params.holdot }}" } }
  - id: b
    uses: noop
    needs: [a]
    retry: { attempts: "three" }
  - id: c
    uses: noop
    needs: [b]
    when: "${{ steps.zz.outputs.ok }}"
  - id: a
    uses: shell
    with: { command: "echo hi", retries: 3 }
    trigger: all_sucess
  - id: e
    uses: noop
    when: "${{ steps.f.outputs.n }}"
  - id: f
    uses: shell
    with: { command: [echo], outputs: [n] }
  - id: g
    uses: noop
    needs: [f]
    with: { outputs: { y: "${{ steps.f.outputs.m }} ${{ run.nope }} ${{ foo.bar }} ${{ params.holdout +* 2 }}" } }
"#,
    );
    let run = project
        .segflow(&["validate", path.to_str().unwrap()])
        .failed();
    let err = &run.stderr;
    let expect = [
        ("3:9", "is out of range for the day of week field"),
        ("4:13", "`Europe/Berln` is not an IANA timezone"),
        ("6:37", "param `holdout` is 0.7, above its maximum 0.5"),
        ("7:51", "param `segment` cannot be `c`"),
        (
            "11:13",
            "the steps depend on each other in a cycle: a -> c -> b -> a",
        ),
        ("12:32", "there is no param `holdot`"),
        (
            "16:24",
            "expected a whole number, 0 or more, found the text \"three\"",
        ),
        ("20:16", "there is no step `zz`"),
        ("21:9", "duplicate step id `a`"),
        (
            "23:22",
            "`command` is a list of arguments, not a shell string",
        ),
        ("23:33", "unknown key `retries`"),
        ("24:14", "`all_sucess` is not allowed here"),
        ("27:16", "step `f` does not run before this step"),
        ("34:32", "step `f` (shell) has no output `m`"),
        ("34:57", "`run` has no field `nope`"),
        ("34:73", "unknown name `foo` in expression"),
        ("34:88", "does not parse"),
    ];
    for (position, message) in expect {
        let located = format!("mistakes.yaml:{position}");
        let found = err
            .split("\n\n")
            .any(|block| block.contains(message) && block.contains(&located));
        assert!(found, "expected `{message}` at {located}\n{err}");
    }
    assert!(err.contains("help: did you mean `Europe/Berlin`?"), "{err}");
    assert!(err.contains("help: did you mean `all_success`?"), "{err}");
    assert!(err.contains("help: did you mean `holdout`?"), "{err}");
    assert!(
        err.contains("help: write a number without quotes, like `4`"),
        "{err}"
    );
    assert!(err.contains(&format!("{} errors", expect.len())), "{err}");
}

#[test]
fn yaml_syntax_errors_point_at_the_line() {
    let project = Project::new();
    project.pipeline(
        "broken",
        "name: broken\nsteps:\n  - id: a\n    uses: [noop\n",
    );
    let run = project.segflow(&["validate"]).failed();
    assert!(
        run.stderr.contains("error: this is not valid YAML"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("pipelines/broken.yaml:5:1"),
        "{}",
        run.stderr
    );
}

#[test]
fn empty_and_missing_files_are_explained() {
    let project = Project::new();
    project.pipeline("empty", "");
    let run = project
        .segflow(&["validate", "pipelines/empty.yaml", "pipelines/nope.yaml"])
        .failed();
    assert!(run.stderr.contains("the file is empty"), "{}", run.stderr);
    assert!(
        run.stderr
            .contains("a pipeline needs at least `name:` and `steps:`"),
        "{}",
        run.stderr
    );
    assert!(
        run.stderr.contains("cannot read the pipeline file"),
        "{}",
        run.stderr
    );
}

#[test]
fn json_output_lists_diagnostics_with_positions() {
    let project = Project::new();
    project.pipeline("bad", "name: bad\nsteps:\n  - id: a\n    uses: nope\n");
    let run = project.segflow(&["validate", "--json"]).failed();
    let report = run.json();
    let diagnostic = &report[0]["diagnostics"][0];
    assert_eq!(report[0]["ok"], false);
    assert_eq!(diagnostic["message"], "unknown step kind `nope`");
    assert_eq!(diagnostic["line"], 4);
    assert_eq!(diagnostic["column"], 11);
    assert_eq!(diagnostic["path"], "steps[0].uses");
}

#[test]
fn graph_prints_mermaid_and_dot() {
    let project = Project::new();
    project.pipeline("good", GOOD);
    let mermaid = project.segflow(&["graph", "good"]).ok().stdout;
    assert!(mermaid.starts_with("flowchart LR\n"), "{mermaid}");
    assert!(mermaid.contains("  orders --> split\n"), "{mermaid}");
    assert!(
        mermaid.contains("  split -. one_failed .-> alert\n"),
        "{mermaid}"
    );
    let dot = project
        .segflow(&["graph", "pipelines/good.yaml", "--format", "dot"])
        .ok()
        .stdout;
    assert!(dot.starts_with("digraph \"weekly-rfm\" {"), "{dot}");
    assert!(dot.contains("\"orders\" -> \"split\";"), "{dot}");
    let missing = project.segflow(&["graph", "god"]).failed();
    assert!(
        missing.stderr.contains("no pipeline `god`"),
        "{}",
        missing.stderr
    );
    assert!(
        missing.stderr.contains("did you mean `good`?"),
        "{}",
        missing.stderr
    );
}

#[test]
fn schema_describes_pipelines_and_each_kind_config() {
    let project = Project::new();
    let schema = project.segflow(&["schema"]).ok().json();
    assert_eq!(schema["title"], "segflow pipeline");
    assert!(
        schema["required"]
            .as_array()
            .unwrap()
            .contains(&"steps".into())
    );
    let step = &schema["$defs"]["Step"];
    assert_eq!(step["additionalProperties"], false);
    let kinds: Vec<&str> = step["properties"]["uses"]["anyOf"][0]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|k| k.as_str().unwrap())
        .collect();
    assert!(
        kinds.contains(&"shell") && kinds.contains(&"noop"),
        "{kinds:?}"
    );
    let shell = step["allOf"]
        .as_array()
        .unwrap()
        .iter()
        .find(|rule| rule["if"]["properties"]["uses"]["const"] == "shell")
        .expect("a rule for shell");
    let with = &shell["then"]["properties"]["with"];
    assert!(
        with["required"]
            .as_array()
            .unwrap()
            .contains(&"command".into()),
        "{with}"
    );
    assert!(
        !with.to_string().contains("\"$ref\""),
        "kind schemas are inlined: {with}"
    );
}
