//! `validate.ab`: lift, significance, sample-ratio checks, power and gates, on known cases and
//! on the edge cases a weekly pipeline meets.

use serde_json::Value;

use crate::support::experiment::csv;
use crate::support::parquet::{Cell, Row, dataset};
use crate::support::{self, Project, step_states};

/// (segment, group, customers, conversions) → an assignment file and an outcomes file that
/// lists converters only (others count as 0), with a repeat purchase and a stranger in it.
fn write_case(project: &Project, cells: &[(&str, &str, usize, usize)]) {
    let mut assignment = Vec::new();
    let mut outcomes = Vec::new();
    let mut next = 0;
    for (segment, group, customers, conversions) in cells {
        for i in 0..*customers {
            let id = next;
            next += 1;
            assignment.push(format!("{id},{segment},{group}"));
            if i < *conversions {
                outcomes.push(format!("{id},1,{}", 10 + i % 50));
            }
        }
    }
    // One converter bought twice: still one conversion.
    if let Some(first) = outcomes.first().cloned() {
        outcomes.push(first);
    }
    outcomes.push("999999,1,10".into());
    project.write(
        "data/assignment.csv",
        &csv("customer_id,segment,group", assignment),
    );
    project.write(
        "data/outcomes.csv",
        &csv("customer_id,converted,revenue", outcomes),
    );
}

fn ab_pipeline(project: &Project, with: &str) {
    project.pipeline(
        "evaluate",
        &format!(
            r#"
name: evaluate
steps:
  - id: sent
    uses: gather.csv
    with: {{ path: data/assignment.csv }}
  - id: orders
    uses: gather.csv
    with: {{ path: data/outcomes.csv }}
  - id: ab
    uses: validate.ab
    needs: [sent, orders]
    with:
      assignment: sent
      outcomes: orders
{with}
  - id: next
    uses: noop
    needs: [ab]
    when: "${{{{ steps.ab.outputs.passed }}}}"
"#
        ),
    );
}

fn close(actual: Option<f64>, expected: f64, what: &str) {
    let actual = actual.unwrap_or_else(|| panic!("{what} is null"));
    assert!(
        (actual - expected).abs() < 1e-9 * expected.abs().max(1.0),
        "{what}: {actual} vs {expected}"
    );
}

fn row<'a>(rows: &'a [Row], segment: Option<&str>, metric: &str) -> &'a Row {
    rows.iter()
        .find(|r| {
            r["metric"].text() == metric
                && match segment {
                    Some(s) => r["segment"] == Cell::Text(s.into()),
                    None => r["segment"] == Cell::Null,
                }
        })
        .unwrap_or_else(|| panic!("no row for {segment:?} {metric}"))
}

/// No NaN, no infinity anywhere in a results dataset.
fn assert_no_nan(rows: &[Row]) {
    for row in rows {
        for (column, cell) in row {
            if let Cell::Number(x) = cell {
                assert!(x.is_finite(), "{column} is {x} in {row:?}");
            }
        }
    }
}

// Reference values: examples/experiment_stats_reference.py ("the known case"), i.e. statsmodels
// 0.15.0 proportions_ztest / NormalIndPower / multipletests(holm), gbstats 0.8.0 TwoSidedTTest
// (relative and absolute), scipy 1.17.1 chisquare, on these exact counts.
#[test]
fn the_known_case_matches_statsmodels_and_growthbook() {
    let project = Project::new();
    write_case(
        &project,
        &[
            ("A", "control", 1000, 100),
            ("A", "treatment", 1000, 120),
            ("B", "control", 1000, 50),
            ("B", "treatment", 1020, 75),
            ("C", "control", 10, 1),
            ("C", "treatment", 12, 2),
        ],
    );
    ab_pipeline(
        &project,
        r#"      metrics: [converted]
      weights: { control: 0.5, treatment: 0.5 }
      require: { srm: pass, max_p: 0.05 }
      on_fail: warn"#,
    );
    let run_id = project
        .segflow(&["run", "pipelines/evaluate.yaml"])
        .ok()
        .run_id();
    let rows = dataset(&project, &run_id, "ab", "main");
    assert_no_nan(&rows);

    let a = row(&rows, Some("A"), "converted");
    assert_eq!(a["metric_type"].text(), "proportion");
    assert_eq!(a["control_customers"].number(), Some(1000.0));
    close(a["control_value"].number(), 0.1, "A control rate");
    close(a["group_value"].number(), 0.12, "A treatment rate");
    close(a["p_value"].number(), 0.1529177818639, "A p");
    close(a["p_adjusted"].number(), 0.1529177818639, "A Holm p");
    close(a["rel_lift"].number(), 0.2, "A lift");
    close(a["rel_lift_low"].number(), -0.1007679748484, "A lift low");
    close(a["rel_lift_high"].number(), 0.5007679748484, "A lift high");
    close(a["abs_lift_low"].number(), -0.0074282031925, "A abs low");
    close(a["power"].number(), 0.2986540208458, "A power");
    assert!((a["mde_abs"].number().unwrap() - 0.0406242717).abs() < 1e-6);
    close(a["srm_p"].number(), 1.0, "A srm");
    assert_eq!(a["verdict"].text(), "fail");

    let b = row(&rows, Some("B"), "converted");
    close(b["p_value"].number(), 0.02820251700183, "B p");
    close(b["p_adjusted"].number(), 0.0564050340037, "B Holm p");
    close(b["rel_lift_low"].number(), -0.0400877763548, "B lift low");
    close(b["rel_lift_high"].number(), 0.9812642469430, "B lift high");
    close(b["abs_lift_low"].number(), 0.0025634965812, "B abs low");
    close(b["power"].number(), 0.5972318622112, "B power");
    close(b["srm_p"].number(), 0.6563239748867, "B srm");
    // Significant alone, not after Holm across the segments.
    assert_eq!(b["verdict"].text(), "fail");

    let overall = row(&rows, None, "converted");
    assert_eq!(overall["control_customers"].number(), Some(2010.0));
    assert_eq!(overall["group_customers"].number(), Some(2032.0));
    close(overall["p_value"].number(), 0.01339009549748, "overall p");
    close(
        overall["rel_lift"].number(),
        0.2905107681076,
        "overall lift",
    );
    close(
        overall["rel_lift_low"].number(),
        0.0286827371093,
        "overall lift low",
    );
    close(
        overall["rel_lift_high"].number(),
        0.5523387991060,
        "overall lift high",
    );
    close(
        overall["abs_lift_high"].number(),
        0.0391010620267,
        "overall abs high",
    );
    close(overall["power"].number(), 0.6980444060144, "overall power");
    close(overall["srm_p"].number(), 0.7293137180309, "overall srm");
    assert_eq!(overall["verdict"].text(), "pass");

    let c = row(&rows, Some("C"), "converted");
    assert_eq!(c["verdict"].text(), "insufficient data");
    assert_eq!(c["p_adjusted"], Cell::Null);
    assert!(
        c["note"]
            .text()
            .contains("control has 10 customers, fewer than min_per_group (50)"),
        "{c:?}"
    );

    let outputs = project.outputs(&run_id, "ab");
    assert_eq!(outputs["passed"], false);
    assert_eq!(outputs["verdict"], "pass");
    assert_eq!(outputs["verdicts"]["A"], "fail");
    assert_eq!(outputs["verdicts"]["C"], "insufficient data");
    assert_eq!(
        outputs["reasons"]["B"][0],
        "p = 0.0564 (Holm-adjusted) is above max_p 0.05"
    );
    assert_eq!(outputs["srm_ok"], true);
    close(outputs["p_value"].as_f64(), 0.01339009549748, "output p");
    assert_eq!(outputs["customers"], 4042);
    // on_fail: warn goes on, and `when: passed` holds the next step back.
    let shown = project.show(&run_id);
    assert_eq!(step_states(&shown)[3], ("next".into(), "skipped".into()));

    let report = project.read(format!(".segflow/runs/{run_id}/ab/report.md"));
    assert!(
        report.contains("Gates failed in: A, B; on_fail is warn"),
        "{report}"
    );
    // 348 converters, a repeat purchase and a stranger.
    assert!(
        report.contains("349 of 350 outcome rows matched an assigned customer; 1 (customers outside the assignment) ignored"),
        "{report}"
    );
    assert!(
        report.contains("| C | 22 | insufficient data |"),
        "{report}"
    );
    let json = project.read(format!(".segflow/runs/{run_id}/ab/report.json"));
    let report: Value = serde_json::from_str(&json).unwrap();
    let chart = &report["charts"][0];
    assert_eq!(chart["type"], "interval");
    let labels: Vec<&str> = chart["rows"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["label"].as_str().unwrap())
        .collect();
    assert_eq!(labels, ["overall", "A", "B", "C"]);
}

#[test]
fn benjamini_hochberg_and_a_passing_gate() {
    let project = Project::new();
    write_case(
        &project,
        &[
            ("A", "control", 1000, 100),
            ("A", "treatment", 1000, 120),
            ("B", "control", 1000, 50),
            ("B", "treatment", 1020, 75),
        ],
    );
    ab_pipeline(
        &project,
        r#"      metrics: [{ column: converted, type: proportion }]
      weights: { control: 0.5, treatment: 0.5 }
      correction: bh
      require: { srm: pass, min_lift: 0.1, max_p: 0.05 }
      scope: overall"#,
    );
    let run_id = project
        .segflow(&["run", "pipelines/evaluate.yaml"])
        .ok()
        .run_id();
    let rows = dataset(&project, &run_id, "ab", "main");
    // statsmodels multipletests([pA, pB], method="fdr_bh").
    close(
        row(&rows, Some("A"), "converted")["p_adjusted"].number(),
        0.1529177818639,
        "A BH",
    );
    close(
        row(&rows, Some("B"), "converted")["p_adjusted"].number(),
        0.0564050340037,
        "B BH",
    );
    let outputs = project.outputs(&run_id, "ab");
    // Only the overall verdict counts, and it passes.
    assert_eq!(outputs["passed"], true);
    let shown = project.show(&run_id);
    assert_eq!(step_states(&shown)[3], ("next".into(), "succeeded".into()));
}

// Reference values: scipy 1.17.1 ttest_ind(equal_var=False) and gbstats 0.8.0 TwoSidedTTest on
// these revenues (examples/experiment_stats_reference.py, arrays A and B).
#[test]
fn revenue_is_tested_with_welch() {
    let project = Project::new();
    let treatment = [
        23.5, 0.0, 12.0, 55.1, 0.0, 8.2, 31.0, 0.0, 19.9, 44.4, 7.5, 0.0,
    ];
    let control = [0.0, 5.0, 9.8, 0.0, 11.2, 0.0, 3.3, 14.0, 0.0, 6.1];
    let mut assignment = Vec::new();
    let mut outcomes = Vec::new();
    for (i, x) in treatment.iter().enumerate() {
        assignment.push(format!("t{i},All,treatment"));
        outcomes.push(format!("t{i},{x}"));
    }
    for (i, x) in control.iter().enumerate() {
        assignment.push(format!("c{i},All,control"));
        outcomes.push(format!("c{i},{x}"));
    }
    project.write(
        "data/assignment.csv",
        &csv("customer_id,segment,group", assignment),
    );
    project.write("data/outcomes.csv", &csv("customer_id,revenue", outcomes));
    ab_pipeline(
        &project,
        r#"      metrics: [revenue]
      min_per_group: 5
      missing: exclude"#,
    );
    let run_id = project
        .segflow(&["run", "pipelines/evaluate.yaml"])
        .ok()
        .run_id();
    let rows = dataset(&project, &run_id, "ab", "main");
    let overall = row(&rows, None, "revenue");
    assert_eq!(overall["metric_type"].text(), "mean");
    close(overall["p_value"].number(), 0.0544376441811, "Welch p");
    close(overall["abs_lift"].number(), 11.86, "abs lift");
    close(
        overall["abs_lift_low"].number(),
        -0.2615304853987,
        "abs low",
    );
    close(
        overall["abs_lift_high"].number(),
        23.9815304853987,
        "abs high",
    );
    close(
        overall["rel_lift_low"].number(),
        -0.9980010148887,
        "rel low",
    );
    close(
        overall["rel_lift_high"].number(),
        5.7996204480871,
        "rel high",
    );
    // Without weights the split is not checked, and says so.
    assert_eq!(overall["srm_p"], Cell::Null);
    let report = project.read(format!(".segflow/runs/{run_id}/ab/report.md"));
    assert!(
        report.contains("Sample ratio not checked: the expected split is unknown"),
        "{report}"
    );
    assert!(report.contains("No gates set"), "{report}");
}

#[test]
fn zero_conversions_empty_arms_and_tiny_segments_say_why_never_nan() {
    let project = Project::new();
    write_case(
        &project,
        &[
            ("Nobody", "control", 300, 0),
            ("Nobody", "treatment", 300, 0),
            ("NoControl", "treatment", 400, 40),
            ("Tiny", "control", 20, 2),
            ("Tiny", "treatment", 25, 3),
            ("Fine", "control", 2000, 200),
            ("Fine", "treatment", 2000, 300),
        ],
    );
    ab_pipeline(
        &project,
        r#"      metrics: [converted, revenue]
      require: { min_lift: 0.01, max_p: 0.05, min_power: 0.8 }
      on_fail: warn"#,
    );
    let run_id = project
        .segflow(&["run", "pipelines/evaluate.yaml"])
        .ok()
        .run_id();
    let rows = dataset(&project, &run_id, "ab", "main");
    assert_no_nan(&rows);
    let outputs = project.outputs(&run_id, "ab");
    assert_eq!(outputs["verdicts"]["Nobody"], "insufficient data");
    assert_eq!(
        outputs["reasons"]["Nobody"][0],
        "no test possible: nobody converted in either group"
    );
    assert_eq!(outputs["verdicts"]["NoControl"], "insufficient data");
    assert_eq!(
        outputs["reasons"]["NoControl"][0],
        "no customers in control"
    );
    assert_eq!(outputs["verdicts"]["Tiny"], "insufficient data");
    assert_eq!(
        outputs["reasons"]["Tiny"][0],
        "control has 20 customers, fewer than min_per_group (50)"
    );
    assert_eq!(outputs["verdicts"]["Fine"], "pass");
    // Insufficient data is ignored by default: Fine and overall pass.
    assert_eq!(outputs["passed"], true);

    let nobody = row(&rows, Some("Nobody"), "converted");
    assert_eq!(nobody["p_value"], Cell::Null);
    assert_eq!(nobody["rel_lift"], Cell::Null);
    assert!(
        nobody["note"].text().contains("nobody converted"),
        "{nobody:?}"
    );
    let no_control = row(&rows, Some("NoControl"), "revenue");
    assert_eq!(no_control["control_value"], Cell::Null);
    assert_eq!(no_control["control_customers"].number(), Some(0.0));

    for file in ["report.json", "report.md"] {
        let text = project.read(format!(".segflow/runs/{run_id}/ab/{file}"));
        assert!(
            !text.contains("NaN") && !text.contains("inf"),
            "{file}:\n{text}"
        );
    }
    let shown = project.segflow(&["runs", "show", &run_id, "--json"]).ok();
    assert!(!shown.stdout.contains("NaN"));
}

#[test]
fn everybody_in_one_group_fails_the_gate_with_the_reason() {
    let project = Project::new();
    write_case(
        &project,
        &[("A", "treatment", 500, 50), ("B", "treatment", 500, 60)],
    );
    ab_pipeline(
        &project,
        r#"      metrics: [converted]
      require: { max_p: 0.05 }"#,
    );
    let run = project
        .segflow(&["run", "pipelines/evaluate.yaml"])
        .failed();
    let shown = project.show(&run.run_id());
    let ab = support::step(&shown, "ab");
    assert_eq!(ab["state"], "failed");
    let reason = ab["reason"].as_str().unwrap();
    assert!(
        reason.contains("nothing had enough data to judge")
            && reason.contains("no customers in control"),
        "{reason}"
    );
    // The failed step keeps its report, so people can see why.
    assert_eq!(ab["report"], "ab/report.json");
    assert_eq!(step_states(&shown)[3].1, "upstream_failed");
}

#[test]
fn a_failed_gate_fails_the_step_and_lists_every_failure() {
    let project = Project::new();
    write_case(
        &project,
        &[
            ("A", "control", 600, 60),
            ("A", "treatment", 400, 40),
            ("B", "control", 500, 50),
            ("B", "treatment", 500, 49),
        ],
    );
    ab_pipeline(
        &project,
        r#"      metrics: [converted]
      weights: { control: 0.5, treatment: 0.5 }
      require: { srm: pass, min_lift: 0.01 }
      on_fail: fail"#,
    );
    let run = project
        .segflow(&["run", "pipelines/evaluate.yaml"])
        .failed();
    let shown = project.show(&run.run_id());
    let reason = shown["steps"][2]["reason"].as_str().unwrap().to_string();
    assert!(reason.starts_with("gates failed:"), "{reason}");
    assert!(
        reason.contains("A: sample-ratio mismatch: p < 0.0001 is below 0.001"),
        "{reason}"
    );
    assert!(
        reason.contains("B: relative lift -2% is below min_lift 1%"),
        "{reason}"
    );
    assert_eq!(
        shown["steps"][2]["attempts"].as_array().unwrap().len(),
        1,
        "gates are not retried"
    );
}

#[test]
fn an_earlier_runs_assignment_is_joined_exactly() {
    let project = Project::new();
    project.write(
        "data/customers.csv",
        &csv(
            "customer_id,segment",
            (0..3000).map(|i| format!("{i},{}", ["Champions", "Lost"][i % 2])),
        ),
    );
    project.pipeline(
        "weekly",
        r#"
name: weekly
params:
  salt: { type: string, default: week-1 }
steps:
  - id: customers
    uses: gather.csv
    with: { path: data/customers.csv }
  - id: split
    uses: validate.holdout
    needs: [customers]
    with: { fraction: 0.2, salt: "${{ params.salt }}", stratify_by: segment }
"#,
    );
    // Everyone converts at 10%, except treatment customers of the first split at 20%.
    let first = project
        .segflow(&["run", "pipelines/weekly.yaml"])
        .ok()
        .run_id();
    let sent = dataset(&project, &first, "split", "assignment");
    let outcomes: Vec<String> = sent
        .iter()
        .enumerate()
        .map(|(i, r)| {
            let rate = if r["group"].text() == "treatment" {
                5
            } else {
                10
            };
            format!("{},{}", r["customer_id"].text(), u8::from(i % rate == 0))
        })
        .collect();
    project.write("data/outcomes.csv", &csv("customer_id,converted", outcomes));
    let evaluate = |run: &str| {
        project.pipeline(
            "evaluate",
            &format!(
                r#"
name: evaluate
steps:
  - id: orders
    uses: gather.csv
    with: {{ path: data/outcomes.csv }}
  - id: ab
    uses: validate.ab
    needs: [orders]
    with:
      assignment: {{ pipeline: weekly, run: {run}, step: split }}
      outcomes: orders
      metrics: [converted]
"#
            ),
        );
        let run_id = project
            .segflow(&["run", "pipelines/evaluate.yaml"])
            .ok()
            .run_id();
        project.outputs(&run_id, "ab")
    };
    let latest = evaluate("last_success");
    assert_eq!(latest["assignment_run"], first.as_str());
    assert_eq!(latest["customers"], 3000);
    assert!(latest["lift"].as_f64().unwrap() > 0.5, "{latest}");
    assert_eq!(latest["srm_ok"], true);

    // A new week with another salt: evaluating `last_success` now joins the new groups, while
    // naming the first run still joins exactly what was sent then.
    let second = project
        .segflow(&["run", "pipelines/weekly.yaml", "--param", "salt=week-2"])
        .ok()
        .run_id();
    assert_eq!(evaluate("last_success")["assignment_run"], second.as_str());
    let pinned = evaluate(&first);
    assert_eq!(pinned["assignment_run"], first.as_str());
    assert_eq!(pinned["lift"], latest["lift"]);
}

#[test]
fn a_missing_earlier_run_or_column_is_a_clear_error() {
    let project = Project::new();
    project.write("data/outcomes.csv", "customer_id,converted\n1,1\n");
    project.pipeline(
        "evaluate",
        r#"
name: evaluate
steps:
  - id: orders
    uses: gather.csv
    with: { path: data/outcomes.csv }
  - id: ab
    uses: validate.ab
    needs: [orders]
    with:
      assignment: { pipeline: weekly, step: split }
      outcomes: orders
      metrics: [converted]
"#,
    );
    let run = project
        .segflow(&["run", "pipelines/evaluate.yaml"])
        .failed();
    let reason = project.show(&run.run_id())["steps"][1]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("pipeline `weekly` has no succeeded run yet")
            && reason.contains("segflow run weekly"),
        "{reason}"
    );

    project.write(
        "data/assignment.csv",
        "customer_id,segment,group\n1,A,control\n2,A,treatment\n",
    );
    ab_pipeline(&project, "      metrics: [convertd]");
    let checked = project
        .segflow(&["validate", "pipelines/evaluate.yaml"])
        .failed();
    assert!(
        checked
            .stdout
            .contains("the input has no column `convertd`")
            || checked
                .stderr
                .contains("the input has no column `convertd`"),
        "{checked:?}"
    );
    // `run` checks the same before it starts anything.
    let run = project
        .segflow(&["run", "pipelines/evaluate.yaml"])
        .failed();
    assert!(run.stderr.contains("did you mean `converted`?"), "{run:?}");

    // A control group name that is not in the assignment fails, naming the groups there are.
    ab_pipeline(
        &project,
        "      metrics: [converted]\n      control: contrl",
    );
    let run = project
        .segflow(&["run", "pipelines/evaluate.yaml"])
        .failed();
    let reason = project.show(&run.run_id())["steps"][2]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("the assignment has no group `contrl`; its groups are control, treatment (did you mean `control`?)"),
        "{reason}"
    );
}

#[test]
fn named_arms_are_each_compared_with_control() {
    let project = Project::new();
    write_case(
        &project,
        &[
            ("A", "control", 400, 40),
            ("A", "subject_a", 800, 120),
            ("A", "subject_b", 800, 80),
        ],
    );
    ab_pipeline(
        &project,
        r#"      metrics: [converted]
      weights: { control: 0.2, subject_a: 0.4, subject_b: 0.4 }
      require: { min_lift: 0.1 }
      on_fail: warn"#,
    );
    let run_id = project
        .segflow(&["run", "pipelines/evaluate.yaml"])
        .ok()
        .run_id();
    let rows = dataset(&project, &run_id, "ab", "main");
    let groups: Vec<&str> = rows
        .iter()
        .filter(|r| r["segment"] == Cell::Text("A".into()))
        .map(|r| r["group"].text())
        .collect();
    assert_eq!(groups, ["subject_a", "subject_b"]);
    let a = rows
        .iter()
        .find(|r| r["segment"] == Cell::Text("A".into()) && r["group"].text() == "subject_a")
        .unwrap();
    close(a["rel_lift"].number(), 0.5, "subject_a lift");
    let outputs = project.outputs(&run_id, "ab");
    // subject_a lifts 50%, subject_b 0%: the segment fails on subject_b, and says which.
    assert_eq!(outputs["verdicts"]["A"], "fail");
    assert_eq!(
        outputs["reasons"]["A"],
        serde_json::json!(["subject_b: relative lift 0% is below min_lift 10%"])
    );
}
