//! Datasets handed between the steps of one run in memory: what the steps read is what the files
//! hold, whether or not the run kept it.

use serde_json::Value;

use crate::support::{Project, step};

const PIPELINE: &str = r#"name: cdnow
steps:
  - id: orders
    uses: gather.csv
    with: { path: data/cdnow.csv, types: { order_date: string } }
  - id: clean
    uses: clean
    needs: [orders]
    with:
      dedupe: { key: [customer_id, order_date] }
      cast: { order_date: date }
      filter: "amount > 0"
  - id: customers
    uses: transform.sql
    needs: [clean, orders]
    with:
      query: |
        SELECT c.customer_id, c.orders, c.revenue, c.last_order, o.bought
        FROM (SELECT customer_id, count(*) AS orders, sum(amount) AS revenue,
                     max(order_date) AS last_order
              FROM clean GROUP BY customer_id) c
        JOIN (SELECT customer_id, sum(quantity) AS bought FROM orders GROUP BY customer_id) o
          ON o.customer_id = c.customer_id
        ORDER BY c.customer_id
  - id: dropped
    uses: transform.sql
    needs: [clean]
    with:
      query: SELECT * FROM clean.rejected
"#;

/// The CDNOW purchases and two more with dates that are no dates, for clean's rejected rows.
fn project() -> Project {
    let project = Project::new();
    project.with_cdnow();
    let mut purchases = project.read("data/cdnow_transactions.csv");
    assert!(purchases.ends_with('\n'));
    purchases.push_str("88888,1997-02-30,1,9.99\r\n88889,someday,2,5.00\r\n");
    project.write("data/cdnow.csv", &purchases);
    project.pipeline("cdnow", PIPELINE);
    project
}

/// Runs the pipeline with `SEGFLOW_HANDOFF_MIB` set to `budget`; its run id.
fn run(project: &Project, budget: &str) -> String {
    let output = project
        .command(&["run", "cdnow"])
        .env("SEGFLOW_HANDOFF_MIB", budget)
        .output()
        .expect("segflow runs");
    crate::support::Run::from(output).ok().run_id()
}

/// Every dataset of every step: its columns as `runs show` lists them, and its rows.
fn everything(project: &Project, run: &str) -> Vec<(String, Value, Value)> {
    let shown = project.show(run);
    let mut all = Vec::new();
    for id in ["orders", "clean", "customers", "dropped"] {
        for dataset in step(&shown, id)["datasets"].as_array().unwrap() {
            let name = dataset["name"].as_str().unwrap();
            let rows = project
                .segflow(&["data", run, id, "--dataset", name, "--format", "json"])
                .ok()
                .json();
            all.push((format!("{id}.{name}"), dataset["columns"].clone(), rows));
        }
    }
    all
}

fn log_of(project: &Project, run: &str, step: &str) -> String {
    project.segflow(&["logs", run, step]).ok().stdout
}

#[test]
fn steps_read_the_same_rows_from_memory_as_from_the_files() {
    let project = project();
    let kept = run(&project, "1024");
    let read = run(&project, "0");

    // The kept run did read from memory, the other did not.
    let clean_log = log_of(&project, &kept, "clean");
    assert!(
        clean_log.contains("`orders` (69661 rows) is read from memory"),
        "{clean_log}"
    );
    let customers_log = log_of(&project, &kept, "customers");
    assert!(customers_log.contains("`clean` ("), "{customers_log}");
    assert!(
        customers_log.contains("`orders` (69661 rows)"),
        "{customers_log}"
    );
    assert!(
        log_of(&project, &kept, "dropped").contains("`clean.rejected` ("),
        "the rejected rows are handed on too"
    );
    for step in ["clean", "customers", "dropped"] {
        assert!(
            !log_of(&project, &read, step).contains("read from memory"),
            "{step} read from memory with a budget of 0"
        );
    }

    let from_memory = everything(&project, &kept);
    let from_files = everything(&project, &read);
    // orders, clean, clean.rejected, customers, dropped.
    assert_eq!(from_memory.len(), 5);
    for (memory, file) in from_memory.iter().zip(&from_files) {
        assert_eq!(memory.0, file.0);
        assert_eq!(memory.1, file.1, "the columns of {}", memory.0);
        assert!(memory.2 == file.2, "the rows of {} differ", memory.0);
    }
    let customers = &from_memory[3];
    assert_eq!(customers.0, "customers.main");
    assert!(customers.2.as_array().unwrap().len() > 20_000);
    let dropped = &from_memory[4];
    assert_eq!(dropped.0, "dropped.main");
    assert_eq!(
        dropped.2.as_array().unwrap().len(),
        2,
        "the two dates that are no dates"
    );
    assert_eq!(project.outputs(&kept, "clean")["rejected"], 2);
}

#[test]
fn a_dataset_over_the_budget_is_read_from_its_file() {
    let project = project();
    // 1 MiB holds none of the 69,659 purchases (about 2 MB of columns).
    let run = run(&project, "1");
    assert!(!log_of(&project, &run, "clean").contains("read from memory"));
    let customers_log = log_of(&project, &run, "customers");
    assert!(
        !customers_log.contains("`orders` (") && !customers_log.contains("`clean` ("),
        "{customers_log}"
    );
    // The two rejected rows do fit: each dataset is kept or not on its own.
    assert!(
        customers_log.contains("`clean.rejected` (2 rows) is read from memory"),
        "{customers_log}"
    );
    assert_eq!(project.outputs(&run, "orders")["rows"], 69_661);
    assert_eq!(project.outputs(&run, "clean")["rejected"], 2);
}

#[test]
fn a_budget_that_is_not_a_number_is_refused_before_the_run_starts() {
    let project = project();
    let output = project
        .command(&["run", "cdnow"])
        .env("SEGFLOW_HANDOFF_MIB", "1GB")
        .output()
        .unwrap();
    let failed = crate::support::Run::from(output).failed();
    assert!(
        failed
            .stderr
            .contains("SEGFLOW_HANDOFF_MIB=\"1GB\" is not a whole number of MiB"),
        "{}",
        failed.stderr
    );
    assert!(
        failed.stderr.contains("SEGFLOW_HANDOFF_MIB=512"),
        "{}",
        failed.stderr
    );
}
