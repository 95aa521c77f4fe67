//! The shipped `pipelines/cdnow-segments.yaml` end to end, `segment.profile` personas and
//! `segment.compare` drift between runs.

use crate::support::{Project, step};

/// The shipped pipeline, with a smaller silhouette sample so the debug build stays quick.
fn shipped() -> Project {
    let project = Project::new();
    project.with_cdnow();
    let yaml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/cdnow-segments.yaml"),
    )
    .expect("the shipped pipeline");
    let yaml = yaml.replace(
        "      column: cluster",
        "      column: cluster\n      silhouette_sample: 1500",
    );
    project.pipeline("cdnow-segments", &yaml);
    project
}

#[test]
fn the_shipped_pipeline_runs_twice_and_the_second_run_compares() {
    let project = shipped();
    project.segflow(&["validate"]).ok();
    let first = project.segflow(&["run", "cdnow-segments"]).ok().run_id();
    let shown = project.show(&first);
    let drift = &step(&shown, "drift")["outputs"];
    assert_eq!(drift["compared"], false, "{drift}");
    let md = project.report_markdown(&first, "drift");
    assert!(md.contains("first successful run"), "{md}");
    let clusters = &step(&shown, "clusters")["outputs"];
    let k = clusters["k"].as_u64().unwrap();
    assert!((2..=8).contains(&k), "{clusters}");
    assert_eq!(clusters["inertia_curve"].as_array().unwrap().len(), 7);

    // Personas: one row per cluster, shares adding up to 1, indexes against everyone.
    let personas = project.dataset(&first, "personas", "main");
    assert_eq!(personas.len() as u64, k);
    let shares: f64 = personas.iter().map(|p| p["share"].as_f64().unwrap()).sum();
    assert!((shares - 1.0).abs() < 1e-9);
    let customers: u64 = personas
        .iter()
        .map(|p| p["customers"].as_u64().unwrap())
        .sum();
    assert_eq!(customers, 23570);
    // Mean spend of all customers is 2,500,315.63 / 23,570 = 106.08: each index follows.
    for p in &personas {
        let index = p["monetary_index"].as_f64().unwrap();
        let mean = p["monetary_mean"].as_f64().unwrap();
        assert!(
            (index - 100.0 * mean / (2_500_315.63 / 23_570.0)).abs() < 1e-6,
            "{p:?}"
        );
        assert!(p["segment_top"].as_str().unwrap().contains('%'), "{p:?}");
    }
    // The biggest spenders' cluster is described in plain language.
    let top = personas
        .iter()
        .max_by(|a, b| {
            a["monetary_index"]
                .as_f64()
                .unwrap()
                .total_cmp(&b["monetary_index"].as_f64().unwrap())
        })
        .unwrap();
    let summary = top["summary"].as_str().unwrap();
    assert!(summary.contains("x average monetary"), "{summary}");
    assert!(summary.contains("frequent buyers"), "{summary}");
    let md = project.report_markdown(&first, "personas");
    assert!(md.contains("## Segment personas"), "{md}");
    assert!(md.contains("(index: 100 = all customers)"), "{md}");

    // The same data again: nobody moves.
    let second = project.segflow(&["run", "cdnow-segments"]).ok().run_id();
    let shown = project.show(&second);
    let drift = &step(&shown, "drift")["outputs"];
    assert_eq!(drift["compared"], true, "{drift}");
    assert_eq!(drift["previous_run"], first.as_str());
    assert_eq!(drift["moved"], 0);
    assert_eq!(drift["ari"], 1.0);

    // Half a year earlier: many customers were in other segments, and the 15% threshold warns.
    let third = project
        .segflow(&["run", "cdnow-segments", "-p", "as_of=1998-01-01"])
        .ok()
        .run_id();
    let shown = project.show(&third);
    let drift = &step(&shown, "drift")["outputs"];
    assert_eq!(drift["previous_run"], second.as_str());
    let moved_share = drift["moved_share"].as_f64().unwrap();
    // 4,211 of 23,570 customers (17.9%) were in another RFM segment half a year earlier.
    assert_eq!(drift["moved"], 4211, "{drift}");
    assert!((moved_share - 4211.0 / 23570.0).abs() < 1e-12, "{drift}");
    assert!(drift["ari"].as_f64().unwrap() < 0.9, "{drift}");
    assert!(
        drift["warnings"][0]
            .as_str()
            .unwrap()
            .contains("more than 15.0% of customers changed segment"),
        "{drift}"
    );
    let report = project.report(&third, "drift");
    let matrix = report["charts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["type"] == "matrix")
        .expect("a migration matrix");
    let total: f64 = matrix["values"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| r.as_array().unwrap().iter().map(|v| v.as_f64().unwrap()))
        .sum();
    // Every customer of either run is counted once (none is new or gone here).
    assert_eq!(total, 23570.0);
    let rows = project.dataset(&third, "drift", "main");
    let moved = rows.iter().filter(|r| r["status"] == "moved").count() as f64;
    assert!((moved / 23570.0 - moved_share).abs() < 1e-12);
}

#[test]
fn compare_fails_the_step_past_a_threshold_and_keeps_its_report() {
    let project = Project::new();
    project.write("data/a.csv", "id,segment\n1,A\n2,A\n3,B\n4,B\n");
    project.pipeline(
        "drift",
        r#"
name: drift
params:
  file: { type: string, default: a }
steps:
  - id: seg
    uses: gather.csv
    with: { path: "data/${{ params.file }}.csv" }
  - id: drift
    uses: segment.compare
    needs: [seg]
    with:
      customer: id
      thresholds: { moved: { fail: 0.3 }, ari: { warn: 0.9 } }
"#,
    );
    project.segflow(&["run", "drift"]).ok();
    project.write("data/b.csv", "id,segment\n1,B\n2,A\n3,A\n5,B\n");
    let run = project.segflow(&["run", "drift", "-p", "file=b"]).failed();
    let id = run.run_id();
    let shown = project.show(&id);
    let reason = step(&shown, "drift")["reason"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    assert!(
        reason.contains("more than 30.0% of customers changed segment (66.7% did: 2 of 3)"),
        "{reason}"
    );
    let md = project.report_markdown(&id, "drift");
    assert!(md.contains("FAILED: more than 30.0%"), "{md}");
    assert!(md.contains("| (new) |"), "{md}");
    let rows = project.dataset(&id, "drift", "main");
    let statuses: Vec<&str> = rows.iter().map(|r| r["status"].as_str().unwrap()).collect();
    assert_eq!(statuses, ["moved", "stayed", "moved", "new", "gone"]);
}
