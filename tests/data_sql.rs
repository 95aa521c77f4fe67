//! gather.sql against the real PostgreSQL of this machine (SEGFLOW_TEST_DATABASE_URL).

use serde_json::json;

use crate::data_gather::rows;
use crate::support::postgres::{execute, unique_table};
use crate::support::{Project, database_url};

fn project_with_secret(url: &str) -> Project {
    let project = Project::new();
    project.write(".segflow/secrets.env", &format!("CRM_DATABASE_URL={url}\n"));
    project
}

fn gather(project: &Project, with: &str) -> String {
    project.pipeline(
        "p",
        &format!(
            "name: p\nsteps:\n  - id: crm\n    uses: gather.sql\n    retry: {{ attempts: 2, delay: 10ms }}\n    with:\n      url: \"${{{{ secrets.CRM_DATABASE_URL }}}}\"\n{with}"
        ),
    );
    project.segflow(&["run", "p"]).run_id()
}

#[test]
fn sql_types_and_nulls_become_arrow_types() {
    let Some(url) = database_url("sql_types_and_nulls_become_arrow_types") else {
        return;
    };
    let table = unique_table("segflow_types");
    execute(
        &url,
        &format!(
            "CREATE TABLE {table} (id int8, small int2, mid int4, ratio float4, score float8, \
             price numeric(10,2), exact numeric, name text, code varchar(5), active bool, \
             born date, seen timestamp, seen_tz timestamptz);
             INSERT INTO {table} VALUES
               (1, 2, 3, 0.5, 1.25, 12.34, 0.1234567891234, 'Ann', 'DE', true, '1990-05-17',
                '2026-01-02 03:04:05.678', '2026-01-02 03:04:05+02'),
               (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL);"
        ),
    );
    let project = project_with_secret(&url);
    let run = gather(
        &project,
        &format!("      query: SELECT * FROM {table} ORDER BY id\n"),
    );
    assert_eq!(project.outputs(&run, "crm")["rows"], 2);
    let shown = project.show(&run);
    let types: Vec<String> = shown["steps"][0]["datasets"][0]["columns"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["data_type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(
        types,
        [
            "Int64",
            "Int16",
            "Int32",
            "Float32",
            "Float64",
            "Decimal128(10, 2)",
            "Decimal128(38, 10)",
            "Utf8",
            "Utf8",
            "Boolean",
            "Date32",
            "Timestamp(µs)",
            "Timestamp(µs, \"UTC\")",
        ]
    );
    let data = rows(&project, &run, "crm", "main");
    assert_eq!(data[0]["small"], 2);
    assert_eq!(data[0]["ratio"], 0.5);
    // Decimals print as numbers; the unconstrained numeric is rounded to 10 decimals.
    assert_eq!(data[0]["price"].as_f64(), Some(12.34));
    assert_eq!(data[0]["exact"].as_f64(), Some(0.1234567891));
    assert_eq!(data[0]["code"], "DE");
    assert_eq!(data[0]["active"], true);
    assert_eq!(data[0]["born"], "1990-05-17");
    assert_eq!(data[0]["seen"], "2026-01-02T03:04:05.678");
    assert_eq!(data[0]["seen_tz"], "2026-01-02T01:04:05Z");
    // Every column of the second row is null, except the id.
    assert_eq!(data[1], json!({ "id": 2 }));
    execute(&url, &format!("DROP TABLE {table}"));
}

#[test]
fn sql_parameters_are_bound_not_spliced() {
    let Some(url) = database_url("sql_parameters_are_bound_not_spliced") else {
        return;
    };
    let table = unique_table("segflow_params");
    execute(
        &url,
        &format!(
            "CREATE TABLE {table} (id int4, country text, amount float8, signed_up date);
             INSERT INTO {table} SELECT g, CASE WHEN g % 2 = 0 THEN 'DE' ELSE 'FR' END, g * 1.5,
               DATE '2026-01-01' + g FROM generate_series(1, 10000) g;"
        ),
    );
    let project = project_with_secret(&url);
    let query = format!(
        "      query: SELECT id FROM {table} WHERE country = $1 AND amount > $2 AND signed_up >= $3 ORDER BY id\n      params: [DE, 14000, \"2026-01-01\"]\n      batch_rows: 1000\n"
    );
    let run = gather(&project, &query);
    // Even ids with 1.5·id > 14000: 9334, 9336 … 10000.
    assert_eq!(project.outputs(&run, "crm")["rows"], 334);
    let first = &rows(&project, &run, "crm", "main")[0];
    assert_eq!(first["id"], 9334);

    // A value that would be an injection if spliced is just a value that matches nothing.
    let query = format!(
        "      query: SELECT id FROM {table} WHERE country = $1\n      params: [\"DE' OR '1'='1\"]\n"
    );
    let run = gather(&project, &query);
    assert_eq!(project.outputs(&run, "crm")["rows"], 0);

    // A parameter of the wrong type says which one and what was expected.
    let query =
        format!("      query: SELECT id FROM {table} WHERE id = $1\n      params: [seven]\n");
    let run = gather(&project, &query);
    let shown = project.show(&run);
    let reason = shown["steps"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("params[0] ($1): expected an integer"),
        "{reason}"
    );
    execute(&url, &format!("DROP TABLE {table}"));
}

#[test]
fn sql_errors_are_clear_and_only_connection_failures_are_retried() {
    let Some(url) = database_url("sql_errors_are_clear_and_only_connection_failures_are_retried")
    else {
        return;
    };
    let project = project_with_secret(&url);
    let run = gather(
        &project,
        "      query: SELECT * FROM segflow_no_such_table\n",
    );
    let shown = project.show(&run);
    let step = &shown["steps"][0];
    let reason = step["reason"].as_str().unwrap();
    assert!(
        reason.contains("relation \"segflow_no_such_table\" does not exist (SQLSTATE 42P01)"),
        "{reason}"
    );
    assert_eq!(step["attempts"].as_array().unwrap().len(), 1);

    // A value Arrow cannot hold is an error naming the column, never a silent null.
    let run = gather(&project, "      query: SELECT 'NaN'::numeric AS score\n");
    let shown = project.show(&run);
    let reason = shown["steps"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("column `score`: a value is NaN or infinite"),
        "{reason}"
    );

    // Nothing listens on port 1: two attempts (the retry policy), then a clear error without
    // the URL's password.
    let project = project_with_secret("postgres://segflow:s3cret-pw@127.0.0.1:1/test");
    let run = gather(&project, "      query: SELECT 1\n");
    let shown = project.show(&run);
    let step = &shown["steps"][0];
    let reason = step["reason"].as_str().unwrap();
    assert!(
        reason.starts_with("cannot connect to PostgreSQL"),
        "{reason}"
    );
    assert!(!reason.contains("s3cret-pw"), "{reason}");
    assert_eq!(step["attempts"].as_array().unwrap().len(), 2);
    let logs = project.segflow(&["logs", &run]).ok();
    assert!(!logs.stdout.contains("s3cret-pw") && !logs.stderr.contains("s3cret-pw"));
}

#[test]
fn sql_url_written_in_the_file_is_refused_at_validate() {
    let project = Project::new();
    project.pipeline(
        "p",
        "name: p\nsteps:\n  - id: crm\n    uses: gather.sql\n    with: { url: \"postgres://me:pw@db/crm\", query: SELECT 1 }\n",
    );
    let out = project.segflow(&["validate", "pipelines/p.yaml"]).failed();
    assert!(
        out.stderr
            .contains("the database URL is written out in the pipeline file"),
        "{}",
        out.stderr
    );
}
