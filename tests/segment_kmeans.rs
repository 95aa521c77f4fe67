//! `segment.kmeans`: fixed and automatic k, standardization, centroids in original units,
//! determinism, the null policy, and inertia checked against scikit-learn on CDNOW.

use crate::support::Project;

/// Three clear groups of customers: (age, income) around (25, 30k), (45, 60k) and (65, 120k),
/// 20 each, with a small deterministic jitter.
fn customers_csv(blank_row: Option<usize>) -> String {
    let mut csv = String::from("customer_id,age,income\n");
    let centres = [(25.0, 30_000.0), (45.0, 60_000.0), (65.0, 120_000.0)];
    for (g, (age, income)) in centres.iter().enumerate() {
        for i in 0..20 {
            let n = g * 20 + i;
            let jitter = ((n * 7919) % 13) as f64 / 13.0 - 0.5;
            if blank_row == Some(n) {
                csv.push_str(&format!("c{n},,{}\n", income + jitter * 4000.0));
            } else {
                csv.push_str(&format!(
                    "c{n},{},{}\n",
                    age + jitter * 4.0,
                    income + jitter * 4000.0
                ));
            }
        }
    }
    csv
}

fn project(csv: &str, with: &str) -> Project {
    let project = Project::new();
    project.write("data/customers.csv", csv);
    project.pipeline(
        "km",
        &format!(
            r#"
name: km
steps:
  - id: customers
    uses: gather.csv
    with: {{ path: data/customers.csv }}
  - id: km
    uses: segment.kmeans
    needs: [customers]
    with:
      features: [age, income]
{with}
"#
        ),
    );
    project
}

#[test]
fn k_auto_finds_the_three_groups_and_reports_the_curve() {
    let project = project(&customers_csv(None), "      k: auto\n      k_range: [2, 5]");
    let id = project.segflow(&["run", "km"]).ok().run_id();
    let out = project.outputs(&id, "km");
    assert_eq!(out["k"], 3, "{out}");
    let curve = out["inertia_curve"].as_array().unwrap();
    let ks: Vec<u64> = curve.iter().map(|p| p["k"].as_u64().unwrap()).collect();
    assert_eq!(ks, [2, 3, 4, 5]);
    let inertias: Vec<f64> = curve
        .iter()
        .map(|p| p["inertia"].as_f64().unwrap())
        .collect();
    assert!(inertias.windows(2).all(|w| w[1] <= w[0]), "{inertias:?}");
    assert!(out["silhouette"].as_f64().unwrap() > 0.8, "{out}");

    let rows = project.dataset(&id, "km", "main");
    assert_eq!(rows.len(), 60);
    for group in 0..3 {
        let first = &rows[group * 20]["segment"];
        assert!(
            rows[group * 20..(group + 1) * 20]
                .iter()
                .all(|r| &r["segment"] == first),
            "group {group} is split"
        );
        assert!(rows[group * 20]["segment_distance"].as_f64().unwrap() >= 0.0);
        assert_eq!(rows[group * 20]["customer_id"], format!("c{}", group * 20));
    }
    // Centroids come back in the features' own units.
    let centroids = project.dataset(&id, "km", "centroids");
    assert_eq!(centroids.len(), 3);
    let mut incomes: Vec<f64> = centroids
        .iter()
        .map(|c| c["income"].as_f64().unwrap())
        .collect();
    incomes.sort_by(f64::total_cmp);
    for (got, want) in incomes.iter().zip([30_000.0, 60_000.0, 120_000.0]) {
        assert!((got - want).abs() < 1000.0, "{incomes:?}");
    }
    let md = project.report_markdown(&id, "km");
    assert!(md.contains("### Silhouette by k"), "{md}");
}

#[test]
fn the_same_seed_gives_the_same_clusters() {
    let project = project(
        &customers_csv(None),
        "      k: 4\n      seed: 11\n      standardize: minmax",
    );
    let a = project.segflow(&["run", "km"]).ok().run_id();
    let b = project.segflow(&["run", "km"]).ok().run_id();
    assert_eq!(
        project.dataset(&a, "km", "main"),
        project.dataset(&b, "km", "main")
    );
    assert_eq!(
        project.outputs(&a, "km")["inertia"],
        project.outputs(&b, "km")["inertia"]
    );
}

#[test]
fn missing_features_fail_clearly_unless_a_policy_is_set() {
    let csv = customers_csv(Some(5));
    let project = project(&csv, "      k: 3");
    let run = project.segflow(&["run", "km"]).failed();
    let shown = project.show(&run.run_id());
    let reason = shown["steps"][1]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("`age` is empty in 1 rows (first: row 6)"),
        "{reason}"
    );
    assert!(reason.contains("nulls: drop"), "{reason}");

    let dropping = self::project(&csv, "      k: 3\n      nulls: drop");
    let id = dropping.segflow(&["run", "km"]).ok().run_id();
    assert_eq!(dropping.outputs(&id, "km")["unassigned"], 1);
    let rows = dropping.dataset(&id, "km", "main");
    assert_eq!(rows.len(), 60, "the customer is kept, without a cluster");
    assert!(rows[5].get("segment").is_none(), "{:?}", rows[5]);

    let filling = self::project(&csv, "      k: 3\n      nulls: mean");
    let id = filling.segflow(&["run", "km"]).ok().run_id();
    assert_eq!(filling.outputs(&id, "km")["unassigned"], 0);
}

#[test]
fn validate_checks_features_and_k() {
    let project = project(
        &customers_csv(None),
        "      k: auto\n      k_range: [1, 4]\n      column: age",
    );
    project.write(
        "pipelines/km.yaml",
        &project
            .read("pipelines/km.yaml")
            .replace("[age, income]", "[age, incme, customer_id]"),
    );
    let run = project.segflow(&["validate"]).failed();
    for expected in [
        "the input has no column `incme`",
        "did you mean `income`?",
        "`customer_id` is not numeric (Utf8)",
        "convert this one first with a `clean` step",
        "[1, 4] cannot be searched",
        "the input already has a column `age`",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
}

/// scikit-learn reference from `python3 tests/reference/kmeans_cdnow.py`: KMeans(4,
/// n_init=10, random_state=0) on z-scored CDNOW RFM features (as of 1998-07-01) reaches
/// inertia 18109.244 with clusters of 15973, 6902, 683 and 12 customers.
#[test]
fn cdnow_inertia_is_as_low_as_scikit_learns() {
    let project = Project::new();
    project.with_cdnow();
    project.pipeline(
        "km",
        r#"
name: km
steps:
  - id: orders
    uses: gather.csv
    with: { path: data/cdnow_transactions.csv }
  - id: rfm
    uses: segment.rfm
    needs: [orders]
    with: { customer: customer_id, date: order_date, amount: amount, as_of: "1998-07-01" }
  - id: clusters
    uses: segment.kmeans
    needs: [rfm]
    with:
      features: [recency_days, frequency, monetary]
      k: 4
      n_init: 10
      column: cluster
      silhouette_sample: 2000
"#,
    );
    let id = project.segflow(&["run", "km"]).ok().run_id();
    let out = project.outputs(&id, "clusters");
    let inertia = out["inertia"].as_f64().unwrap();
    assert!(inertia <= 18109.244 * 1.01, "inertia {inertia}");
    let centroids = project.dataset(&id, "clusters", "centroids");
    let sizes: Vec<u64> = centroids
        .iter()
        .map(|c| c["customers"].as_u64().unwrap())
        .collect();
    assert_eq!(sizes.len(), 4);
    assert_eq!(sizes.iter().sum::<u64>(), 23570);
    assert!(
        sizes.windows(2).all(|w| w[0] >= w[1]),
        "largest first: {sizes:?}"
    );
    // The dozen biggest spenders form their own cluster, as in scikit-learn.
    assert_eq!(sizes[3], 12, "{sizes:?}");
    assert_eq!(centroids[0]["cluster"], "cluster_1");
}
