//! The shipped CDNOW experiment pipelines run as the README says, on the real data.

use crate::support::Project;
use crate::support::parquet::{Cell, dataset};

fn copy_into(project: &Project, relative: &str) {
    let source = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(relative);
    let text =
        std::fs::read_to_string(&source).unwrap_or_else(|e| panic!("{}: {e}", source.display()));
    project.write(relative, &text);
}

#[test]
fn cdnow_holdout_then_evaluation_finds_the_campaign_lift() {
    let project = Project::new();
    for file in [
        "data/cdnow_transactions.csv",
        "data/cdnow_outcomes.csv",
        "pipelines/cdnow-holdout.yaml",
        "pipelines/cdnow-evaluate.yaml",
    ] {
        copy_into(&project, file);
    }
    project.segflow(&["validate", "pipelines"]).ok();

    let holdout = project.segflow(&["run", "cdnow-holdout"]).ok().run_id();
    let shown = project.show(&holdout);
    let split = &shown["steps"][2]["outputs"];
    assert_eq!(split["rows"], 23_570);
    assert_eq!(split["srm_ok"], true);
    // Sticky hashing of the ids as written (leading zeros kept): the same split everywhere.
    assert_eq!(split["counts"]["control"], 2_340, "{split}");
    assert_eq!(split["counts"]["treatment"], 21_230, "{split}");
    assert!(
        split["segments"]
            .as_object()
            .unwrap()
            .contains_key("Champions"),
        "{split}"
    );
    assert_eq!(
        shown["steps"][3]["state"], "succeeded",
        "the campaign step runs"
    );

    let evaluation = project.segflow(&["run", "cdnow-evaluate"]).ok().run_id();
    let shown = project.show(&evaluation);
    let ab = &shown["steps"][1]["outputs"];
    assert_eq!(ab["assignment_run"], holdout.as_str());
    assert_eq!(ab["passed"], true, "{ab}");
    assert_eq!(ab["verdict"], "pass");
    // The outcomes file was made with the pipeline's salt: the simulated lift shows up. The
    // reference figures come from pandas and statsmodels' proportions_ztest on the exported
    // assignment and data/cdnow_outcomes.csv: 389 of 2,340 control customers converted,
    // 4,139 of 21,230 treatment customers; z = 3.3469, p = 0.00081710.
    let lift = ab["lift"].as_f64().unwrap();
    assert!((lift - 0.172_766_868).abs() < 1e-6, "{ab}");
    let p = ab["p_value"].as_f64().unwrap();
    assert!((p - 0.000_817_100_16).abs() < 1e-9, "{ab}");
    assert_eq!(ab["verdicts"]["Others"], "pass", "{ab}");
    assert_eq!(ab["verdicts"]["Promising"], "pass", "{ab}");
    assert_eq!(ab["verdicts"]["Champions"], "fail", "{ab}");
    assert_eq!(ab["verdicts"]["At Risk"], "insufficient data", "{ab}");
    let rows = dataset(&project, &evaluation, "ab", "main");
    let overall = rows
        .iter()
        .find(|r| r["segment"] == Cell::Null && r["metric"].text() == "converted")
        .unwrap();
    assert_eq!(
        overall["control_customers"].number().unwrap()
            + overall["group_customers"].number().unwrap(),
        23_570.0
    );
    let report = project.read(format!(".segflow/runs/{evaluation}/ab/report.md"));
    assert!(report.contains("### Champions: "), "{report}");
    assert!(report.contains("Gates passed."), "{report}");
}
