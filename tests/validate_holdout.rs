//! `validate.holdout`: deterministic, sticky, stratified control groups and their split check.

use std::collections::HashMap;

use crate::support::experiment::{csv, documented_bucket};
use crate::support::parquet::{Row, dataset};
use crate::support::{Project, step_states};

const SEGMENTS: [&str; 4] = ["Champions", "Loyal", "At Risk", "Lost"];

/// `n` customers `c0…`, segment chosen by `segment_of(i)`.
fn customers(project: &Project, file: &str, n: usize, segment_of: impl Fn(usize) -> &'static str) {
    project.write(
        file,
        &csv(
            "customer_id,segment,email",
            (0..n).map(|i| format!("c{i},{},c{i}@example.com", segment_of(i))),
        ),
    );
}

fn holdout_pipeline(project: &Project, name: &str, file: &str, with: &str) {
    project.pipeline(
        name,
        &format!(
            r#"
name: {name}
params:
  holdout: {{ type: number, default: 0.2, min: 0, max: 0.5 }}
steps:
  - id: customers
    uses: gather.csv
    with: {{ path: {file} }}
  - id: split
    uses: validate.holdout
    needs: [customers]
    with: {with}
  - id: sync
    uses: noop
    needs: [split]
    when: "${{{{ steps.split.outputs.srm_ok }}}}"
"#
        ),
    );
}

fn groups_by_customer(rows: &[Row]) -> HashMap<String, String> {
    rows.iter()
        .map(|r| {
            (
                r["customer_id"].text().to_string(),
                r["group"].text().to_string(),
            )
        })
        .collect()
}

#[test]
fn splits_every_segment_at_the_fraction_and_lets_the_pipeline_go_on() {
    let project = Project::new();
    customers(&project, "data/customers.csv", 20_000, |i| SEGMENTS[i % 4]);
    holdout_pipeline(
        &project,
        "weekly",
        "data/customers.csv",
        r#"{ fraction: "${{ params.holdout }}", salt: weekly-rfm-2026, stratify_by: segment }"#,
    );
    project.segflow(&["validate", "pipelines/weekly.yaml"]).ok();
    let run = project.segflow(&["run", "pipelines/weekly.yaml"]).ok();
    let run_id = run.run_id();
    let shown = project.show(&run_id);
    assert_eq!(
        step_states(&shown),
        [
            ("customers".to_string(), "succeeded".to_string()),
            ("split".to_string(), "succeeded".to_string()),
            ("sync".to_string(), "succeeded".to_string()),
        ]
    );
    let outputs = &shown["steps"][1]["outputs"];
    assert_eq!(outputs["srm_ok"], true);
    assert_eq!(outputs["rows"], 20_000);
    assert!(outputs["srm_p"].as_f64().unwrap() > 0.001);
    assert_eq!(outputs["arms"]["control"], 0.2);
    // Each segment of 5,000 gets close to 20% control (binomial sd 0.57 points; allow 3.5 sd).
    for segment in SEGMENTS {
        let counts = &outputs["segments"][segment];
        let control = counts["control"].as_u64().unwrap() as f64;
        let treatment = counts["treatment"].as_u64().unwrap() as f64;
        assert_eq!(control + treatment, 5000.0, "{segment}");
        let share = control / 5000.0;
        assert!(
            (share - 0.2).abs() < 0.02,
            "{segment}: control share {share}"
        );
    }

    // The main dataset is the input with a group column; the assignment has one row each.
    let main = dataset(&project, &run_id, "split", "main");
    assert_eq!(main.len(), 20_000);
    assert!(main[0].contains_key("email") && main[0].contains_key("group"));
    let assignment = dataset(&project, &run_id, "split", "assignment");
    assert_eq!(assignment.len(), 20_000);
    let columns: Vec<&String> = assignment[0].keys().collect();
    assert_eq!(columns, ["customer_id", "group", "segment"]);
    // Every group is the one the documented formula gives.
    for row in assignment.iter().take(2000) {
        let bucket = documented_bucket("weekly-rfm-2026", row["customer_id"].text());
        let expected = if bucket < 0.2 { "control" } else { "treatment" };
        assert_eq!(row["group"].text(), expected);
    }

    // The report is there for people.
    let report = project.read(format!(".segflow/runs/{run_id}/split/report.md"));
    assert!(report.contains("| Champions | 5000 |"), "{report}");
    assert!(report.contains("No sample-ratio mismatch"), "{report}");
}

#[test]
fn customers_keep_their_group_when_segments_change_and_salts_are_independent() {
    let project = Project::new();
    // Week 1: 6,000 customers. Week 2: a third left, 2,000 new ones came, everybody moved segment.
    customers(&project, "data/week1.csv", 6000, |i| SEGMENTS[i % 4]);
    project.write(
        "data/week2.csv",
        &csv(
            "customer_id,segment,email",
            (2000..8000).map(|i| format!("c{i},{},c{i}@example.com", SEGMENTS[(i / 7) % 4])),
        ),
    );
    let with = r#"{ fraction: 0.3, salt: weekly-rfm-2026, stratify_by: segment }"#;
    holdout_pipeline(&project, "week1", "data/week1.csv", with);
    holdout_pipeline(&project, "week2", "data/week2.csv", with);
    holdout_pipeline(
        &project,
        "other",
        "data/week1.csv",
        r#"{ fraction: 0.3, salt: another-experiment, stratify_by: segment }"#,
    );
    let first = project
        .segflow(&["run", "pipelines/week1.yaml"])
        .ok()
        .run_id();
    let second = project
        .segflow(&["run", "pipelines/week2.yaml"])
        .ok()
        .run_id();
    let other = project
        .segflow(&["run", "pipelines/other.yaml"])
        .ok()
        .run_id();
    let week1 = groups_by_customer(&dataset(&project, &first, "split", "assignment"));
    let week2 = groups_by_customer(&dataset(&project, &second, "split", "assignment"));
    let salted = groups_by_customer(&dataset(&project, &other, "split", "assignment"));

    let shared: Vec<&String> = week1.keys().filter(|id| week2.contains_key(*id)).collect();
    assert_eq!(shared.len(), 4000);
    for id in &shared {
        assert_eq!(week1[*id], week2[*id], "customer {id} changed group");
    }
    // Another salt draws an unrelated split: agreement is what independence predicts,
    // 0.3² + 0.7² = 58%, not the 100% of the same salt.
    let agree = week1.iter().filter(|(id, g)| salted[*id] == **g).count() as f64 / 6000.0;
    assert!((agree - 0.58).abs() < 0.03, "agreement {agree}");
}

#[test]
fn named_arms_get_their_weights() {
    let project = Project::new();
    customers(&project, "data/customers.csv", 12_000, |i| SEGMENTS[i % 2]);
    holdout_pipeline(
        &project,
        "arms",
        "data/customers.csv",
        r#"{ arms: { control: 0.1, subject_a: 0.45, subject_b: 0.45 }, salt: subject-test, stratify_by: segment, customer: customer_id }"#,
    );
    let run_id = project
        .segflow(&["run", "pipelines/arms.yaml"])
        .ok()
        .run_id();
    let shown = project.show(&run_id);
    let counts = &shown["steps"][1]["outputs"]["counts"];
    let total: u64 = ["control", "subject_a", "subject_b"]
        .iter()
        .map(|a| counts[a].as_u64().unwrap())
        .sum();
    assert_eq!(total, 12_000);
    for (arm, weight) in [("control", 0.1), ("subject_a", 0.45), ("subject_b", 0.45)] {
        let share = counts[arm].as_u64().unwrap() as f64 / 12_000.0;
        assert!((share - weight).abs() < 0.015, "{arm}: {share}");
    }
    assert_eq!(shown["steps"][1]["outputs"]["srm_ok"], true);
}

#[test]
fn a_rigged_segment_is_caught_by_the_sample_ratio_check() {
    let project = Project::new();
    // "Rigged" was built from customers who mostly hash into control: 50% instead of 10%,
    // as happens when someone filters the list after the split.
    let mut rows = Vec::new();
    let (mut control, mut treatment) = (0, 0);
    let mut i = 0;
    while control < 200 || treatment < 200 {
        let id = format!("r{i}");
        let in_control = documented_bucket("rig", &id) < 0.1;
        if in_control && control < 200 {
            control += 1;
            rows.push(format!("{id},Rigged,x"));
        } else if !in_control && treatment < 200 {
            treatment += 1;
            rows.push(format!("{id},Rigged,x"));
        }
        i += 1;
    }
    rows.extend((0..3000).map(|i| format!("f{i},Fair,x")));
    project.write(
        "data/customers.csv",
        &csv("customer_id,segment,email", rows),
    );
    holdout_pipeline(
        &project,
        "rigged",
        "data/customers.csv",
        r#"{ fraction: 0.1, salt: rig, stratify_by: segment }"#,
    );
    let run_id = project
        .segflow(&["run", "pipelines/rigged.yaml"])
        .ok()
        .run_id();
    let shown = project.show(&run_id);
    let outputs = &shown["steps"][1]["outputs"];
    assert_eq!(outputs["srm_ok"], false);
    let failed: Vec<&str> = outputs["srm_failed"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(failed.contains(&"Rigged"), "{failed:?}");
    assert!(!failed.contains(&"Fair"), "{failed:?}");
    // The publish step guarded by `when: srm_ok` does not run.
    assert_eq!(step_states(&shown)[2].1, "skipped");
    let report = project.read(format!(".segflow/runs/{run_id}/split/report.md"));
    assert!(report.contains("| Rigged | 400 | 200 |"), "{report}");
    assert!(report.contains("mismatch"), "{report}");
}

#[test]
fn tiny_segments_and_unsegmented_lists_are_handled() {
    let project = Project::new();
    project.write(
        "data/customers.csv",
        &csv(
            "customer_id,segment,email",
            (0..500)
                .map(|i| format!("{i},Big,x"))
                .chain((500..505).map(|i| format!("{i},Tiny,x")))
                .chain((505..510).map(|i| format!("{i},,x"))),
        ),
    );
    holdout_pipeline(
        &project,
        "tiny",
        "data/customers.csv",
        r#"{ fraction: 0.5, salt: s, stratify_by: segment }"#,
    );
    holdout_pipeline(
        &project,
        "flat",
        "data/customers.csv",
        r#"{ fraction: 0.5, salt: s }"#,
    );
    let run_id = project
        .segflow(&["run", "pipelines/tiny.yaml"])
        .ok()
        .run_id();
    let outputs = &project.show(&run_id)["steps"][1]["outputs"];
    // Too small to judge is not a mismatch.
    assert_eq!(outputs["srm_ok"], true);
    let segments = outputs["segments"].as_object().unwrap();
    let names: Vec<&String> = segments.keys().collect();
    assert_eq!(names, ["(no segment)", "Big", "Tiny"]);
    let report = project.read(format!(".segflow/runs/{run_id}/split/report.md"));
    assert!(
        report.contains("not judged: an arm has fewer than 8 customers"),
        "{report}"
    );

    let flat = project
        .segflow(&["run", "pipelines/flat.yaml"])
        .ok()
        .run_id();
    let outputs = &project.show(&flat)["steps"][1]["outputs"];
    assert_eq!(outputs["segments"], serde_json::json!({}));
    assert_eq!(outputs["rows"], 510);
    let assignment = dataset(&project, &flat, "split", "assignment");
    assert!(
        assignment
            .iter()
            .all(|r| r["segment"] == crate::support::parquet::Cell::Null)
    );
}

#[test]
fn bad_configs_are_caught_by_validate_with_their_line() {
    let project = Project::new();
    project.write("data/customers.csv", "customer_id,segment\n1,A\n");
    project.pipeline(
        "bad",
        r#"
name: bad
steps:
  - id: customers
    uses: gather.csv
    with: { path: data/customers.csv }
  - id: split
    uses: validate.holdout
    needs: [customers]
    with: { fraction: 1.5, salt: "" }
  - id: arms
    uses: validate.holdout
    needs: [customers]
    with: { arms: { control: 0.1, treatment: 0.8 }, salt: x }
  - id: both
    uses: validate.holdout
    needs: [customers]
    with: { fraction: 0.1, arms: { control: 0.1, treatment: 0.9 }, salt: x, input: orders }
  - id: typo
    uses: validate.holdout
    needs: [customers]
    with: { fraction: 0.1, salt: x, customer: custmer_id, stratify_by: segmnet, group_column: segment }
"#,
    );
    let out = project
        .segflow(&["validate", "pipelines/bad.yaml"])
        .failed();
    let text = out.stdout + &out.stderr;
    for expected in [
        "`fraction` is 1.5; it must be between 0 and 1",
        "bad.yaml:10:",
        "`salt` is empty",
        "the arm weights sum to 0.9; they must sum to 1",
        "`fraction` and `arms` both given",
        "`input` names `orders`, which is not in this step's `needs`",
        // The input's columns are known from the CSV header before the run.
        "the input has no column `custmer_id`",
        "did you mean `customer_id`?",
        "the input has no column `segmnet`",
        "the input already has a column `segment`",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in:\n{text}");
    }
}

#[test]
fn bad_data_fails_with_the_row_and_never_the_customer() {
    let project = Project::new();
    project.write(
        "data/dupes.csv",
        "customer_id,segment\nann@example.com,A\nbob@example.com,A\nann@example.com,B\n",
    );
    project.write("data/blank.csv", "customer_id,segment\n1,A\n,A\n");
    project.write("data/floats.csv", "id,segment\n1.5,A\n");
    holdout_pipeline(
        &project,
        "dupes",
        "data/dupes.csv",
        r#"{ fraction: 0.1, salt: s, stratify_by: segment }"#,
    );
    holdout_pipeline(
        &project,
        "blank",
        "data/blank.csv",
        r#"{ fraction: 0.1, salt: s }"#,
    );
    holdout_pipeline(
        &project,
        "floats",
        "data/floats.csv",
        r#"{ fraction: 0.1, salt: s, customer: id }"#,
    );

    let reason = |name: &str| {
        let run = project
            .segflow(&["run", &format!("pipelines/{name}.yaml")])
            .failed();
        let shown = project.show(&run.run_id());
        shown["steps"][1]["reason"]
            .as_str()
            .unwrap_or_default()
            .to_string()
    };
    let dupes = reason("dupes");
    assert!(
        dupes.contains("row 3") && dupes.contains("row 1"),
        "{dupes}"
    );
    assert!(
        !dupes.contains("ann@example.com"),
        "personal data in an error: {dupes}"
    );
    let blank = reason("blank");
    assert!(
        blank.contains("row 2") && blank.contains("no customer id"),
        "{blank}"
    );
    let floats = reason("floats");
    assert!(floats.contains("integers or text"), "{floats}");

    // An id column taken for the segment column would make every customer a segment.
    project.write(
        "data/many.csv",
        &csv(
            "customer_id,segment",
            (0..1500).map(|i| format!("{i},s{i}")),
        ),
    );
    holdout_pipeline(
        &project,
        "many",
        "data/many.csv",
        r#"{ fraction: 0.1, salt: s, stratify_by: customer_id }"#,
    );
    let many = reason("many");
    assert!(
        many.contains("more than 1000 distinct values")
            && many.contains("`stratify_by` must name a segment column"),
        "{many}"
    );
}
