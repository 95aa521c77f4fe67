//! gather.csv, gather.json, gather.parquet and `segflow data`: real files through real runs.

use serde_json::Value;

use crate::support;
use crate::support::Project;

/// Rows of a dataset, via `segflow data RUN STEP --format json`.
pub fn rows(project: &Project, run: &str, step: &str, dataset: &str) -> Vec<Value> {
    let out = project
        .segflow(&["data", run, step, "--dataset", dataset, "--format", "json"])
        .ok();
    out.json().as_array().expect("an array of rows").clone()
}

fn step_reason(project: &Project, run: &str, step: &str) -> String {
    support::step_reason(&project.show(run), step)
}

const DIRTY: &str = "id,name,amount,day\n\
00001,Ann,1.5,2024-01-02\n\
00002,Bob,x,2024-01-03\n\
00003,Cy,2,2024-01-04,extra\n\
00004,\"Dee, D\",3,2024-01-05\n";

fn one_step(project: &Project, with: &str) -> String {
    project.pipeline(
        "p",
        &format!("name: p\nsteps:\n  - id: src\n    uses: gather.csv\n    with: {with}\n"),
    );
    let run = project.segflow(&["run", "p"]);
    run.run_id()
}

#[test]
fn csv_quarantine_keeps_bad_rows_with_line_and_reason() {
    let project = Project::new();
    project.write("data/c.csv", DIRTY);
    let run = one_step(
        &project,
        "{ path: data/c.csv, on_bad_rows: quarantine, types: { amount: float } }",
    );
    let out = project.outputs(&run, "src");
    assert_eq!(out["rows"], 2);
    assert_eq!(out["rejected"], 2);
    let good = rows(&project, &run, "src", "main");
    // Leading zeros keep identifiers as text; quoted delimiters stay inside the value.
    assert_eq!(good[0]["id"], "00001");
    assert_eq!(good[1]["name"], "Dee, D");
    assert_eq!(good[1]["amount"], 3.0);
    let bad = rows(&project, &run, "src", "rejected");
    assert_eq!(bad.len(), 2);
    assert_eq!(bad[0]["line"], 3);
    assert_eq!(bad[0]["reason"], "column `amount`: expected a number");
    assert_eq!(bad[0]["record"], "00002,Bob,x,2024-01-03");
    assert_eq!(bad[1]["line"], 4);
    assert_eq!(bad[1]["reason"], "expected 4 fields, found 5");
    assert_eq!(bad[1]["file"], "data/c.csv");
}

#[test]
fn csv_bad_row_fails_by_default_naming_file_and_line() {
    let project = Project::new();
    project.write("data/c.csv", DIRTY);
    let run = one_step(&project, "{ path: data/c.csv, types: { amount: float } }");
    let reason = step_reason(&project, &run, "src");
    assert!(
        reason.contains("data/c.csv line 3: column `amount`: expected a number"),
        "{reason}"
    );
    assert!(reason.contains("on_bad_rows: quarantine"), "{reason}");
    // The bad value itself is not in the error: it could be personal data.
    assert!(!reason.contains("Bob"), "{reason}");
}

#[test]
fn csv_skip_leaves_bad_rows_out_and_counts_them() {
    let project = Project::new();
    project.write("data/c.csv", DIRTY);
    let run = one_step(
        &project,
        "{ path: data/c.csv, on_bad_rows: skip, types: { amount: float } }",
    );
    let out = project.outputs(&run, "src");
    assert_eq!(
        (out["rows"].clone(), out["rejected"].clone()),
        (2.into(), 2.into())
    );
    let logs = project.segflow(&["logs", &run]).ok();
    assert!(
        logs.stdout.contains("left out 2 bad rows"),
        "{}",
        logs.stdout
    );
    let missing = project.segflow(&["data", &run, "src", "--dataset", "rejected"]);
    assert!(
        missing.stderr.contains("has no dataset `rejected`"),
        "{}",
        missing.stderr
    );
}

#[test]
fn csv_inferred_types_delimiter_and_no_header() {
    let project = Project::new();
    project.write(
        "data/s.csv",
        "7;2.5;true;2024-02-29;2024-02-29 10:30:00\n8;3;false;2024-03-01;2024-03-01 00:00:00\n",
    );
    let run = one_step(
        &project,
        "{ path: data/s.csv, header: false, delimiter: \";\" }",
    );
    let shown = project.show(&run);
    let columns = &shown["steps"][0]["datasets"][0]["columns"];
    let types: Vec<(&str, &str)> = columns
        .as_array()
        .unwrap()
        .iter()
        .map(|c| {
            (
                c["name"].as_str().unwrap(),
                c["data_type"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        types,
        [
            ("column_1", "Int64"),
            ("column_2", "Float64"),
            ("column_3", "Boolean"),
            ("column_4", "Date32"),
            ("column_5", "Timestamp(µs)"),
        ]
    );
    let data = rows(&project, &run, "src", "main");
    assert_eq!(data[1]["column_2"], 3.0);
    assert_eq!(data[0]["column_4"], "2024-02-29");
}

#[test]
fn csv_glob_reads_files_in_name_order_and_requires_one_header() {
    let project = Project::new();
    project.write("data/part-2.csv", "id,v\n3,c\n");
    project.write("data/part-1.csv", "id,v\n1,a\n2,b\n");
    let run = one_step(&project, "{ path: \"data/part-*.csv\" }");
    let out = project.outputs(&run, "src");
    assert_eq!(out["files"], 2);
    let ids: Vec<i64> = rows(&project, &run, "src", "main")
        .iter()
        .map(|r| r["id"].as_i64().unwrap())
        .collect();
    assert_eq!(ids, [1, 2, 3]);

    project.write("data/part-3.csv", "id,value\n4,d\n");
    let run = one_step(&project, "{ path: \"data/part-*.csv\" }");
    let reason = step_reason(&project, &run, "src");
    assert!(
        reason.contains("`data/part-3.csv` has the columns id, value"),
        "{reason}"
    );
}

#[test]
fn clear_errors_for_missing_empty_and_unknown_columns() {
    let project = Project::new();
    let run = one_step(&project, "{ path: data/nope.csv }");
    let reason = step_reason(&project, &run, "src");
    assert!(
        reason.starts_with("`data/nope.csv` does not exist"),
        "{reason}"
    );

    let run = one_step(&project, "{ path: \"data/*.csv\" }");
    assert!(step_reason(&project, &run, "src").starts_with("no file matches `data/*.csv`"));

    project.write("data/empty.csv", "");
    let run = one_step(&project, "{ path: data/empty.csv }");
    assert!(step_reason(&project, &run, "src").contains("`data/empty.csv` is empty"));

    // A column in `types` that the file lacks is caught by `segflow validate`, at its key...
    project.write("data/c.csv", "id,amount\n1,2\n");
    project.pipeline(
        "p",
        "name: p\nsteps:\n  - id: src\n    uses: gather.csv\n    with: { path: data/c.csv, types: { amout: float } }\n",
    );
    let checked = project.segflow(&["validate"]).failed();
    assert!(
        checked.stderr.contains("pipelines/p.yaml:5:40")
            && checked
                .stderr
                .contains("`data/c.csv` has no column `amout`"),
        "{}",
        checked.stderr
    );
    assert!(
        checked.stderr.contains("help: did you mean `amount`?"),
        "{}",
        checked.stderr
    );
    // ...and, for a file that only appears during the run, by the step.
    project.pipeline(
        "p",
        r#"name: p
steps:
  - id: make
    uses: shell
    with: { command: ["sh", "-c", "printf 'id,amount\n1,2\n' > data/later.csv"] }
  - id: src
    uses: gather.csv
    needs: [make]
    with: { path: data/later.csv, types: { amout: float } }
"#,
    );
    let run = project.segflow(&["run", "p"]).failed().run_id();
    let reason = step_reason(&project, &run, "src");
    assert!(
        reason.contains(
            "`types` names column `amout`, which `data/later.csv` does not have; did you mean `amount`?"
        ),
        "{reason}"
    );
    // A wrong column is not worth retrying: one attempt only.
    let shown = project.show(&run);
    assert_eq!(shown["steps"][1]["attempts"].as_array().unwrap().len(), 1);
}

#[test]
fn json_lines_with_quarantine_and_type_overrides() {
    let project = Project::new();
    project.write(
        "data/e.ndjson",
        "{\"id\":\"a\",\"n\":1,\"d\":\"2024-01-01\"}\n{\"id\":\"b\",\"n\":2}\nnot json\n[1]\n\n{\"id\":\"c\",\"n\":\"x\"}\n",
    );
    project.pipeline(
        "p",
        "name: p\nsteps:\n  - id: e\n    uses: gather.json\n    with: { path: data/e.ndjson, on_bad_rows: quarantine, infer_rows: 2, types: { d: date } }\n",
    );
    let run = project.segflow(&["run", "p"]).ok().run_id();
    let good = rows(&project, &run, "e", "main");
    assert_eq!(good.len(), 2);
    assert_eq!(good[0]["d"], "2024-01-01");
    assert_eq!(good[1]["n"], 2);
    let bad = rows(&project, &run, "e", "rejected");
    let summary: Vec<(u64, &str)> = bad
        .iter()
        .map(|r| (r["line"].as_u64().unwrap(), r["reason"].as_str().unwrap()))
        .collect();
    assert_eq!(summary[0].0, 3);
    assert!(summary[0].1.starts_with("not valid JSON"), "{summary:?}");
    assert_eq!(summary[1], (4, "not a JSON object"));
    assert_eq!(summary[2], (6, "field `n`: expected an integer"));
}

#[test]
fn parquet_reads_columns_and_converts_types() {
    let project = Project::new();
    project.write("data/c.csv", "id,amount,note\n1,2.5,x\n2,3.5,y\n");
    project.pipeline(
        "make",
        "name: make\nsteps:\n  - id: src\n    uses: gather.csv\n    with: { path: data/c.csv }\n",
    );
    let made = project.segflow(&["run", "make"]).ok().run_id();
    std::fs::create_dir_all(project.path("data/pq")).unwrap();
    std::fs::copy(
        project.path(format!(".segflow/runs/{made}/src/main.parquet")),
        project.path("data/pq/a.parquet"),
    )
    .unwrap();
    project.pipeline(
        "p",
        "name: p\nsteps:\n  - id: pq\n    uses: gather.parquet\n    with: { path: \"data/pq/*.parquet\", columns: [amount, id], types: { id: string, amount: integer }, on_bad_rows: quarantine }\n",
    );
    let run = project.segflow(&["run", "p"]).ok().run_id();
    let data = rows(&project, &run, "pq", "main");
    assert_eq!(
        data,
        vec![
            serde_json::json!({ "amount": 2, "id": "1" }),
            serde_json::json!({ "amount": 3, "id": "2" })
        ]
    );

    project.write("data/bad.parquet", "not parquet at all");
    project.pipeline(
        "q",
        "name: q\nsteps:\n  - id: pq\n    uses: gather.parquet\n    with: { path: data/bad.parquet }\n",
    );
    let run = project.segflow(&["run", "q"]).failed().run_id();
    assert!(step_reason(&project, &run, "pq").contains("is not a readable Parquet file"));
}

#[test]
fn data_command_prints_tables_and_exports() {
    let project = Project::new();
    let mut csv = String::from("id,v\n");
    for i in 0..30 {
        csv.push_str(&format!("{i},v{i}\n"));
    }
    project.write("data/c.csv", &csv);
    let run = one_step(&project, "{ path: data/c.csv }");
    let table = project.segflow(&["data", &run, "src"]).ok().stdout;
    assert!(table.contains("| id | v   |"), "{table}");
    assert!(table.contains("20 of 30 rows"), "{table}");
    let head = project
        .segflow(&["data", &run, "src", "--head", "2", "--format", "csv"])
        .ok()
        .stdout;
    assert_eq!(head, "id,v\n0,v0\n1,v1\n");
    let all = project
        .segflow(&["data", &run, "src", "--format", "ndjson"])
        .ok()
        .stdout;
    assert_eq!(all.lines().count(), 30);
    let shown = project.segflow(&["runs", "show", &run]).ok().stdout;
    assert!(
        shown.contains("src") && shown.contains("30  id:Int64, v:Utf8"),
        "{shown}"
    );
    let wrong = project.segflow(&["data", &run, "nope"]).failed();
    assert!(
        wrong
            .stderr
            .contains("has no step `nope`; its steps are: src")
    );
}

#[test]
fn csv_value_beyond_the_guessing_rows_names_the_guess() {
    let project = Project::new();
    project.write("data/c.csv", "id,amount\n1,2\n2,2.5\n");
    let run = one_step(&project, "{ path: data/c.csv, infer_rows: 1 }");
    let reason = step_reason(&project, &run, "src");
    assert!(
        reason.contains("data/c.csv line 3: column `amount`: expected an integer"),
        "{reason}"
    );
    assert!(
        reason.contains("the type of `amount` was guessed from the first 1 rows"),
        "{reason}"
    );
    let run = one_step(
        &project,
        "{ path: data/c.csv, infer_rows: 1, types: { amount: float } }",
    );
    assert_eq!(project.outputs(&run, "src")["rows"], 2);
}
