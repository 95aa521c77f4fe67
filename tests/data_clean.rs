//! clean and transform.sql on real datasets, including the CDNOW purchases.

use serde_json::json;

use crate::data_gather::rows;
use crate::support::Project;

const CUSTOMERS: &str = "id,email,age,country,spend,signup\n\
1, Ann@Example.com ,34,DE,10.5,20240102\n\
2,bob@,41,FR,7,20240103\n\
1,ann@example.com,36,DE,11,20240104\n\
3,cy@example.org,,US,1000,2024-13-01\n\
4,dee@example.net,29,,3,20240105\n\
5,,50,DE,x,20240106\n\
6,eve@example.com,44,DE,9,20240107\n";

fn pipeline(clean: &str) -> String {
    format!(
        "name: p\nsteps:\n  - id: cust\n    uses: gather.csv\n    with: {{ path: data/c.csv, types: {{ spend: string, signup: string }} }}\n  - id: clean\n    uses: clean\n    needs: [cust]\n    with:\n{clean}"
    )
}

#[test]
fn clean_applies_operations_in_order_and_keeps_rejected_rows_with_reasons() {
    let project = Project::new();
    project.write("data/c.csv", CUSTOMERS);
    project.pipeline(
        "p",
        &pipeline(
            "      trim: all\n      email: email\n      dedupe: { key: [id], keep: last }\n      drop_missing: [email]\n      fill: { age: { strategy: median }, country: unknown }\n      cast: { spend: float, signup: { type: date, format: \"%Y%m%d\" } }\n      filter: \"country <> 'US'\"\n",
        ),
    );
    let run = project.segflow(&["run", "p"]).ok().run_id();
    let cleaned = rows(&project, &run, "clean", "main");
    let ids: Vec<i64> = cleaned.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [1, 4, 6]);
    // keep: last took the second row of id 1; the email was normalised.
    assert_eq!(cleaned[0]["age"], 36);
    assert_eq!(cleaned[0]["email"], "ann@example.com");
    assert_eq!(cleaned[1]["age"], 29);
    assert_eq!(cleaned[1]["country"], "unknown");
    assert_eq!(cleaned[2]["signup"], "2024-01-07");

    let rejected = rows(&project, &run, "clean", "rejected");
    let why: Vec<(i64, &str, &str)> = rejected
        .iter()
        .map(|r| {
            (
                r["id"].as_i64().unwrap(),
                r["operation"].as_str().unwrap(),
                r["reason"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        why,
        [
            (2, "email", "invalid email in `email`"),
            (
                3,
                "cast",
                "cast `signup` to date: does not match the format %Y%m%d"
            ),
            (5, "drop_missing", "missing `email`"),
        ]
    );
    // Rejected rows are kept as they arrived: id 3's age is still missing, though fill
    // gave it the median of the ages then left (36, 50, 29, 44 → 40) before cast rejected it.
    assert_eq!(rejected[1]["age"], serde_json::Value::Null);
    let out = project.outputs(&run, "clean");
    assert_eq!(
        out["operations"][4]["details"],
        json!({ "age": { "filled": 1 }, "country": { "filled": 1 } })
    );
    assert_eq!(
        (out["rows_in"].clone(), out["rows"].clone()),
        (json!(7), json!(3))
    );
    assert_eq!(out["rejected"], 3);
    let per_op: Vec<(String, u64, u64, u64)> = out["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| {
            (
                o["operation"].as_str().unwrap().to_string(),
                o["rows_out"].as_u64().unwrap(),
                o["rejected"].as_u64().unwrap(),
                o["dropped"].as_u64().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        per_op,
        [
            ("trim".into(), 7, 0, 0),
            ("email".into(), 6, 1, 0),
            ("dedupe".into(), 5, 0, 1),
            ("drop_missing".into(), 4, 1, 0),
            ("fill".into(), 4, 0, 0),
            ("cast".into(), 3, 1, 0),
            ("filter".into(), 3, 0, 0),
        ]
    );
}

#[test]
fn dedupe_by_order_column_clip_and_standardize() {
    let project = Project::new();
    project.write(
        "data/c.csv",
        "id,day,v\na,3,1\na,1,2\na,2,3\nb,5,4\nb,5,5\nc,1,100\nd,1,6\ne,1,7\n",
    );
    project.pipeline(
        "p",
        "name: p\nsteps:\n  - id: src\n    uses: gather.csv\n    with: { path: data/c.csv }\n  - id: first\n    uses: clean\n    needs: [src]\n    with: { dedupe: { key: [id], order_by: day } }\n  - id: last\n    uses: clean\n    needs: [src]\n    with:\n      dedupe: { key: [id], keep: last, order_by: day }\n      clip: { v: { percentile: [0.0, 0.75] } }\n      standardize: { day: minmax }\n",
    );
    let run = project.segflow(&["run", "p"]).ok().run_id();
    let first: Vec<(String, i64)> = rows(&project, &run, "first", "main")
        .iter()
        .map(|r| (r["id"].as_str().unwrap().into(), r["v"].as_i64().unwrap()))
        .collect();
    // Smallest day wins; a tie keeps the earlier row.
    assert_eq!(
        first,
        [
            ("a".into(), 2),
            ("b".into(), 4),
            ("c".into(), 100),
            ("d".into(), 6),
            ("e".into(), 7)
        ]
    );
    let last = rows(&project, &run, "last", "main");
    let values: Vec<i64> = last.iter().map(|r| r["v"].as_i64().unwrap()).collect();
    // Largest day wins, a tie keeps the later row; then v (1, 5, 100, 6, 7) is clipped to its
    // 75th percentile (numpy.quantile([1, 5, 100, 6, 7], 0.75) = 7.0).
    assert_eq!(values, [1, 5, 7, 6, 7]);
    let days: Vec<f64> = last.iter().map(|r| r["day"].as_f64().unwrap()).collect();
    assert_eq!(days, [0.5, 1.0, 0.0, 0.0, 0.0]);
    let out = project.outputs(&run, "last");
    assert_eq!(
        out["operations"][1]["details"]["v"],
        json!({ "lower": 1.0, "upper": 7.0, "clipped": 1 })
    );
}

#[test]
fn validate_reports_clean_and_sql_mistakes_with_their_lines() {
    let project = Project::new();
    project.pipeline(
        "p",
        "name: p\nsteps:\n  - id: src\n    uses: gather.csv\n    with: { path: data/c.csv }\n  - id: clean\n    uses: clean\n    needs: [src]\n    with:\n      dedup: { key: [id] }\n  - id: sql\n    uses: transform.sql\n    needs: [clean]\n    with: { query: \"SELECT * FROM claen\" }\n",
    );
    let out = project.segflow(&["validate", "pipelines/p.yaml"]).failed();
    assert!(out.stderr.contains("unknown key `dedup`"), "{}", out.stderr);
    assert!(
        out.stderr.contains("did you mean `dedupe`?"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("p.yaml:10:7"), "{}", out.stderr);
    assert!(
        out.stderr.contains("the query reads table `claen`"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("did you mean `clean`?"),
        "{}",
        out.stderr
    );

    project.pipeline(
        "q",
        "name: q\nsteps:\n  - id: src\n    uses: gather.csv\n    with: { path: data/c.csv }\n  - id: clean\n    uses: clean\n    needs: [src]\n    with:\n      filter: \"amount >\"\n      clip: { v: { percentile: [0.9, 0.1] } }\n  - id: sql\n    uses: transform.sql\n    needs: [clean]\n    with: { query: \"SELEC 1\" }\n",
    );
    let out = project.segflow(&["validate", "pipelines/q.yaml"]).failed();
    assert!(out.stderr.contains("not a SQL condition"), "{}", out.stderr);
    assert!(out.stderr.contains("q.yaml:10:"), "{}", out.stderr);
    assert!(
        out.stderr
            .contains("percentile bounds must satisfy 0 <= low < high <= 1"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("not valid SQL"), "{}", out.stderr);
}

#[test]
fn transform_sql_joins_upstream_datasets_and_reads_rejected_rows() {
    let project = Project::new();
    project.write("data/c.csv", CUSTOMERS);
    project.write("data/o.csv", "id,amount\n1,5\n1,7\n4,1\n9,3\n");
    project.pipeline(
        "p",
        &(pipeline("      email: email\n      dedupe: { key: [id] }\n")
            + "  - id: orders\n    uses: gather.csv\n    with: { path: data/o.csv }\n  - id: joined\n    uses: transform.sql\n    needs: [clean, orders]\n    with:\n      query: |\n        SELECT c.id, sum(o.amount) AS revenue,\n               (SELECT count(*) FROM clean.rejected) AS rejected\n        FROM clean c JOIN orders o ON o.id = c.id\n        GROUP BY c.id ORDER BY c.id\n"),
    );
    let run = project.segflow(&["run", "p"]).ok().run_id();
    let joined = rows(&project, &run, "joined", "main");
    assert_eq!(
        joined,
        vec![
            json!({ "id": 1, "revenue": 12, "rejected": 1 }),
            json!({ "id": 4, "revenue": 1, "rejected": 1 })
        ]
    );
    assert_eq!(project.outputs(&run, "joined")["rows"], 2);
}

#[test]
fn cdnow_purchases_gather_clean_and_aggregate() {
    let project = Project::new();
    std::fs::create_dir_all(project.path("data")).unwrap();
    std::fs::copy(
        concat!(env!("CARGO_MANIFEST_DIR"), "/data/cdnow_transactions.csv"),
        project.path("data/cdnow.csv"),
    )
    .unwrap();
    project.pipeline(
        "cdnow",
        "name: cdnow\nsteps:\n  - id: orders\n    uses: gather.csv\n    with: { path: data/cdnow.csv }\n  - id: clean\n    uses: clean\n    needs: [orders]\n    with:\n      drop_missing: [customer_id, order_date, amount]\n      filter: \"amount > 0\"\n  - id: customers\n    uses: transform.sql\n    needs: [clean]\n    with:\n      query: |\n        SELECT customer_id, count(*) AS orders, sum(amount) AS revenue, max(order_date) AS last_order\n        FROM clean GROUP BY customer_id\n",
    );
    let run = project.segflow(&["run", "cdnow"]).ok().run_id();
    assert_eq!(project.outputs(&run, "orders")["rows"], 69_659);
    let clean = project.outputs(&run, "clean");
    assert_eq!(clean["rejected"], 0);
    // Counted with pandas: (df.amount > 0).sum() == 69579 purchases with an amount, by
    // df[df.amount > 0].customer_id.nunique() == 23502 customers.
    assert_eq!(clean["rows"], 69_579);
    assert_eq!(project.outputs(&run, "customers")["rows"], 23_502);
}

#[test]
fn iqr_clip_zscore_mode_fill_and_lowercase() {
    let project = Project::new();
    project.write(
        "data/c.csv",
        "id,name,country,s,w\n\
         1,ANN,DE,2,1.5\n\
         2,Bob,FR,4,2\n\
         3,CY,DE,4,3\n\
         4,dee,,4,4\n\
         5,Eve,US,5,100\n\
         6,FRED,DE,5,2.5\n\
         7,gus,,7,3.5\n\
         8,Hal,FR,9,2\n",
    );
    project.pipeline(
        "p",
        "name: p\nsteps:\n  - id: src\n    uses: gather.csv\n    with: { path: data/c.csv }\n  - id: clean\n    uses: clean\n    needs: [src]\n    with:\n      lowercase: [name]\n      fill: { country: { strategy: mode } }\n      clip: { w: { iqr: 1.5 } }\n      standardize: { s: zscore }\n",
    );
    let run = project.segflow(&["run", "p"]).ok().run_id();
    let cleaned = rows(&project, &run, "clean", "main");
    let column = |name: &str| -> Vec<serde_json::Value> {
        cleaned.iter().map(|r| r[name].clone()).collect()
    };
    assert_eq!(
        column("name"),
        ["ann", "bob", "cy", "dee", "eve", "fred", "gus", "hal"]
    );
    // The most frequent country (DE, 3 of 6) fills the two blanks.
    assert_eq!(
        column("country"),
        ["DE", "FR", "DE", "DE", "US", "DE", "DE", "FR"]
    );
    // Tukey's fences as numpy computes them: Q1 = 2, Q3 = 3.625 (linear interpolation),
    // IQR = 1.625, so [2 - 1.5·1.625, 3.625 + 1.5·1.625] = [-0.4375, 6.0625]; 100 is clipped.
    assert_eq!(
        column("w"),
        [1.5, 2.0, 3.0, 4.0, 6.0625, 2.5, 3.5, 2.0].map(|v| json!(v))
    );
    // z-scores with the population standard deviation (as scikit-learn's StandardScaler):
    // mean 5, std 2.
    assert_eq!(
        column("s"),
        [-1.5, -0.5, -0.5, -0.5, 0.0, 0.0, 1.0, 2.0].map(|v| json!(v))
    );
    let out = project.outputs(&run, "clean");
    let details: Vec<&serde_json::Value> = out["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| &o["details"])
        .collect();
    assert_eq!(details[1]["country"]["filled"], 2);
    assert_eq!(
        details[2]["w"],
        json!({ "lower": -0.4375, "upper": 6.0625, "clipped": 1 })
    );
}

/// Trim, email and cast work in blocks of 8,192 rows on every core: values on both sides of
/// each block boundary come out right, in order, and rejections name the right rows.
#[test]
fn operations_done_in_row_blocks_keep_every_row_in_place() {
    const ROWS: usize = 20_000;
    let dirty_email = [0, 8191, 8192, 16383, 16384, ROWS - 1];
    let invalid_email = [8190, 8193, ROWS - 2];
    let padded_city = [8191, 8192];
    let bad_date = [8194, 16385];
    let mut csv = String::from("id,email,city,signup\n");
    for i in 0..ROWS {
        let email = if dirty_email.contains(&i) {
            format!(" User{i}@Example.COM ")
        } else if invalid_email.contains(&i) {
            format!("user{i}@")
        } else {
            format!("user{i}@example.com")
        };
        let city = if padded_city.contains(&i) {
            " Lyon "
        } else {
            "Lyon"
        };
        let signup = if bad_date.contains(&i) {
            "2024-13-40"
        } else {
            "2024-03-05"
        };
        csv.push_str(&format!("{i},{email},{city},{signup}\n"));
    }
    let project = Project::new();
    project.write("data/c.csv", &csv);
    project.pipeline(
        "p",
        "name: p\nsteps:\n  - id: cust\n    uses: gather.csv\n    with: { path: data/c.csv, types: { signup: string } }\n  - id: clean\n    uses: clean\n    needs: [cust]\n    with:\n      trim: [city]\n      email: email\n      cast: { signup: date }\n",
    );
    let run = project.segflow(&["run", "p"]).ok().run_id();

    let cleaned = rows(&project, &run, "clean", "main");
    let ids: Vec<usize> = cleaned
        .iter()
        .map(|r| r["id"].as_u64().unwrap() as usize)
        .collect();
    let expected: Vec<usize> = (0..ROWS)
        .filter(|i| !invalid_email.contains(i) && !bad_date.contains(i))
        .collect();
    assert_eq!(ids, expected);
    for row in &cleaned {
        let id = row["id"].as_u64().unwrap();
        assert_eq!(row["email"], format!("user{id}@example.com"), "row {id}");
        assert_eq!(row["city"], "Lyon", "row {id}");
        assert_eq!(row["signup"], "2024-03-05", "row {id}");
    }

    let rejected = rows(&project, &run, "clean", "rejected");
    let why: Vec<(u64, &str)> = rejected
        .iter()
        .map(|r| (r["id"].as_u64().unwrap(), r["operation"].as_str().unwrap()))
        .collect();
    assert_eq!(
        why,
        [
            (8190, "email"),
            (8193, "email"),
            (8194, "cast"),
            (16385, "cast"),
            (ROWS as u64 - 2, "email"),
        ]
    );
    let out = project.outputs(&run, "clean");
    let changed: Vec<u64> = out["operations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|o| o["changed"].as_u64().unwrap())
        .collect();
    assert_eq!(changed, [2, 6, 0]);
}
