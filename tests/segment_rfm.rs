//! `segment.rfm` on the real CDNOW transactions, checked against an independent computation.

use crate::support::Project;

fn cdnow_pipeline(with: &str) -> Project {
    let project = Project::new();
    project.with_cdnow();
    project.pipeline(
        "rfm",
        &format!(
            r#"
name: rfm
steps:
  - id: orders
    uses: gather.csv
    with: {{ path: data/cdnow_transactions.csv }}
  - id: rfm
    uses: segment.rfm
    needs: [orders]
    with:
      customer: customer_id
      date: order_date
      amount: amount
{with}
"#
        ),
    );
    project
}

/// Reference values from `python3 tests/reference/rfm_cdnow.py` (pandas 2, as_of 1998-07-01,
/// 5 bins, monetary = sum, scores from pandas `rank(method="min")`, the default table).
#[test]
fn cdnow_figures_match_an_independent_computation() {
    let project = cdnow_pipeline("      as_of: \"1998-07-01\"");
    let id = project.segflow(&["run", "rfm"]).ok().run_id();
    let out = project.outputs(&id, "rfm");
    assert_eq!(out["customers"], 23570);
    assert_eq!(out["transactions"], 69659);
    assert_eq!(out["as_of"], "1998-07-01");
    let expected = [
        ("Champions", 6314),
        ("Loyal Customers", 4057),
        ("New Customers", 0),
        ("Promising", 1438),
        ("Potential Loyalist", 2412),
        ("Need Attention", 120),
        ("About To Sleep", 2893),
        ("Can't Lose Them", 21),
        ("At Risk", 296),
        ("Lost", 1740),
        ("Hibernating", 1356),
        ("Others", 2923),
    ];
    let segments = out["segments"].as_object().expect("segment counts");
    let names: Vec<&str> = segments.keys().map(String::as_str).collect();
    let expected_names: Vec<&str> = expected.iter().map(|(n, _)| *n).collect();
    assert_eq!(names, expected_names, "segments in table order");
    for (name, count) in expected {
        assert_eq!(segments[name], count, "{name}");
    }

    let rows = project.dataset(&id, "rfm", "main");
    assert_eq!(rows.len(), 23570);
    let mut score_counts = [[0u32; 5]; 3];
    let mut monetary_total = 0.0;
    for row in &rows {
        for (i, key) in ["r_score", "f_score", "m_score"].iter().enumerate() {
            let score = row[*key].as_u64().unwrap() as usize;
            score_counts[i][score - 1] += 1;
        }
        monetary_total += row["monetary"].as_f64().unwrap();
    }
    assert_eq!(score_counts[0], [4735, 4712, 4702, 4720, 4701], "R");
    // Half the customers bought once: they share F = 1, and score 2 stays empty.
    assert_eq!(score_counts[1], [11908, 0, 4079, 3658, 3925], "F");
    assert_eq!(score_counts[2], [4817, 4615, 4710, 4715, 4713], "M");
    assert!(
        (monetary_total - 2_500_315.63).abs() < 0.01,
        "{monetary_total}"
    );

    // (customer, recency days, orders, spend, score, segment); ids keep their leading zeros.
    let customers = [
        ("00001", 546, 1, 11.77, "111", "Lost"),
        ("00002", 535, 2, 89.0, "134", "At Risk"),
        ("00100", 72, 3, 55.24, "543", "Loyal Customers"),
        ("12345", 502, 1, 15.36, "211", "About To Sleep"),
        ("23570", 462, 2, 94.08, "334", "Loyal Customers"),
    ];
    for (customer, recency, orders, spend, score, segment) in customers {
        let row = rows
            .iter()
            .find(|r| r["customer_id"] == customer)
            .unwrap_or_else(|| panic!("customer {customer}"));
        assert_eq!(row["recency_days"], recency, "{customer}");
        assert_eq!(row["frequency"], orders, "{customer}");
        assert!(
            (row["monetary"].as_f64().unwrap() - spend).abs() < 1e-9,
            "{customer}"
        );
        assert_eq!(row["rfm_score"], score, "{customer}");
        assert_eq!(row["segment"], segment, "{customer}");
    }
    // Customers come out sorted by id, so runs are comparable row by row.
    assert_eq!(rows[0]["customer_id"], "00001");

    let report = project.report(&id, "rfm");
    assert_eq!(report["kind"], "segment.rfm");
    let md = project.report_markdown(&id, "rfm");
    assert!(md.contains("| Champions | 6314 |"), "{md}");
}

#[test]
fn as_of_defaults_to_the_day_after_the_last_transaction() {
    let project = cdnow_pipeline("");
    let id = project.segflow(&["run", "rfm"]).ok().run_id();
    let out = project.outputs(&id, "rfm");
    assert_eq!(out["as_of"], "1998-07-01");
    assert_eq!(out["left_out_after_as_of"], 0);
}

#[test]
fn transactions_after_as_of_are_left_out_and_counted() {
    let project = cdnow_pipeline("      as_of: \"1997-12-31\"\n      monetary: mean");
    let id = project.segflow(&["run", "rfm"]).ok().run_id();
    let out = project.outputs(&id, "rfm");
    let used = out["transactions"].as_i64().unwrap();
    assert_eq!(used + out["left_out_after_as_of"].as_i64().unwrap(), 69659);
    assert!(used < 69659);
    let rows = project.dataset(&id, "rfm", "main");
    let second = rows
        .iter()
        .find(|r| r["customer_id"] == "00002")
        .expect("customer 2");
    // Customer 2 bought twice on 1997-01-12 (12.00 and 77.00): the mean order is 44.50.
    assert_eq!(second["monetary"], 44.5);
    assert_eq!(second["recency_days"], 353);
    let logs = project.segflow(&["logs", &id]).ok();
    assert!(
        logs.stdout.contains("after as_of 1997-12-31 are left out"),
        "{}",
        logs.stdout
    );
}

#[test]
fn a_custom_table_and_bins_override_the_standard_one() {
    let project = cdnow_pipeline(
        r#"      bins: 3
      segments:
        - { name: Best, r: [3, 3], f: [3, 3] }
        - { name: Fading, r: [1, 1] }
      default_segment: Middle"#,
    );
    let id = project.segflow(&["run", "rfm"]).ok().run_id();
    let rows = project.dataset(&id, "rfm", "main");
    for row in &rows {
        let (r, f) = (
            row["r_score"].as_u64().unwrap(),
            row["f_score"].as_u64().unwrap(),
        );
        let expected = if r == 3 && f == 3 {
            "Best"
        } else if r == 1 {
            "Fading"
        } else {
            "Middle"
        };
        assert_eq!(row["segment"], expected, "{row:?}");
        assert!(row["m_score"].as_u64().unwrap() <= 3);
    }
}

#[test]
fn validate_catches_bad_columns_dates_and_tables() {
    let project = cdnow_pipeline(
        r#"      as_of: "July 1st"
      order_id: order
      bins: 4"#,
    );
    let run = project.segflow(&["validate"]).failed();
    for expected in [
        "`July 1st` is not a date",
        "the input has no column `order`",
        "the standard segment table is written for 5 bins, not 4",
    ] {
        assert!(run.stderr.contains(expected), "{expected}\n{}", run.stderr);
    }
}

#[test]
fn rows_that_cannot_be_scored_stop_the_step_with_counts() {
    let project = Project::new();
    project.write(
        "data/tx.csv",
        "customer_id,order_date,amount\na,2024-01-02,10\n,2024-01-03,5\nb,someday,3\nc,2024-02-01,\n",
    );
    project.pipeline(
        "rfm",
        r#"
name: rfm
steps:
  - id: tx
    uses: gather.csv
    with: { path: data/tx.csv }
  - id: rfm
    uses: segment.rfm
    needs: [tx]
    with: { customer: customer_id, date: order_date, amount: amount, as_of: "2024-03-01" }
"#,
    );
    let run = project.segflow(&["run", "rfm"]).failed();
    let shown = project.show(&run.run_id());
    let reason = shown["steps"][1]["reason"].as_str().unwrap_or_default();
    assert!(
        reason.contains("1 of 4 rows have no customer_id"),
        "{reason}"
    );
    assert!(
        reason.contains("1 of 4 rows have a value in order_date that is not a date"),
        "{reason}"
    );
    assert!(reason.contains("1 of 4 rows have no amount"), "{reason}");
    // A permanent error: no retries.
    assert_eq!(shown["steps"][1]["attempts"].as_array().unwrap().len(), 1);
}
