//! The README's main job: `segflow run pipelines/cdnow-weekly.yaml` on the shipped CDNOW data.

use serde_json::Value;

use crate::support::parquet::dataset;
use crate::support::{Project, step};

#[test]
fn the_weekly_cdnow_job_segments_holds_out_and_publishes() {
    let project = Project::new();
    project.with_cdnow();
    let yaml = std::fs::read_to_string(
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("pipelines/cdnow-weekly.yaml"),
    )
    .expect("the shipped pipeline");
    // A smaller silhouette sample keeps the debug build quick; everything else is as shipped.
    let yaml = yaml.replace(
        "      column: cluster",
        "      column: cluster\n      silhouette_sample: 1500",
    );
    assert!(yaml.contains("silhouette_sample"), "the pipeline changed");
    project.pipeline("cdnow-weekly", &yaml);
    project.segflow(&["validate"]).ok();

    let run = project.segflow(&["run", "cdnow-weekly"]).ok().run_id();
    let shown = project.show(&run);
    for s in shown["steps"].as_array().unwrap() {
        assert_eq!(s["state"], "succeeded", "{s}");
    }
    assert_eq!(step(&shown, "orders")["outputs"]["rows"], 69_659);
    assert_eq!(step(&shown, "rfm")["outputs"]["customers"], 23_570);
    let split = &step(&shown, "split")["outputs"];
    assert_eq!(split["srm_ok"], true, "{split}");
    let treatment = split["counts"]["treatment"].as_u64().unwrap();
    assert!((treatment as f64 / 23_570.0 - 0.9).abs() < 0.01, "{split}");

    // The export holds exactly the treatment group, sorted, with made-up example.com addresses.
    let export = project.read("exports/cdnow-treatment.csv");
    let mut lines = export.lines();
    assert_eq!(lines.next(), Some("customer_id,email,segment"));
    let rows: Vec<&str> = lines.collect();
    assert_eq!(rows.len() as u64, treatment);
    assert!(
        rows.iter().all(|r| r.contains("@example.com")),
        "{:?}",
        &rows[..3]
    );
    let ids: Vec<&str> = rows.iter().map(|r| r.split(',').next().unwrap()).collect();
    assert!(ids.windows(2).all(|w| w[0] < w[1]), "sorted by customer");

    // The Klaviyo step sent nothing, and wrote every request it would have sent.
    let klaviyo = &step(&shown, "klaviyo")["outputs"];
    assert_eq!(klaviyo["dry_run"], true);
    assert_eq!(klaviyo["records"].as_u64(), Some(treatment));
    let requests = project.read(format!(
        ".segflow/runs/{run}/klaviyo/dry-run-requests.ndjson"
    ));
    let mut profiles = 0;
    for line in requests.lines() {
        let request: Value = serde_json::from_str(line).unwrap();
        assert_eq!(
            request["url"],
            "https://a.klaviyo.com/api/profile-bulk-import-jobs"
        );
        profiles += request["body"]["data"]["attributes"]["profiles"]["data"]
            .as_array()
            .unwrap()
            .len() as u64;
    }
    assert_eq!(profiles, treatment);

    // Every customer has a persona segment and a cluster.
    let clusters = dataset(&project, &run, "clusters", "main");
    assert_eq!(clusters.len(), 23_570);

    // The second week compares with the first: nobody moved, the data being the same.
    let second = project.segflow(&["run", "cdnow-weekly"]).ok().run_id();
    let shown = project.show(&second);
    let drift = &step(&shown, "drift")["outputs"];
    assert_eq!(drift["compared"], true, "{drift}");
    assert_eq!(drift["moved"], 0, "{drift}");
    assert_eq!(drift["previous_run"], run.as_str());
    // A dry run leaves the diff state alone: the first live run will send everyone.
    let klaviyo = &step(&shown, "klaviyo")["outputs"];
    assert_eq!(klaviyo["sent"].as_u64(), Some(treatment), "{klaviyo}");
    assert_eq!(klaviyo["unchanged"], 0, "{klaviyo}");
}
