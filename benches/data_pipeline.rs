//! Benchmark: gather.csv + clean + a transform.sql aggregate in segflow, against the same work in
//! pandas (benches/peers/pandas_pipeline.py), on the same generated files, in one run. Prints
//! both wall times, the ratio and each one's peak memory (from `/usr/bin/time -v`).
//!
//!     cargo bench --bench data_pipeline
//!
//! Environment: SEGFLOW_BENCH_DIR (default target/bench-data), SEGFLOW_BENCH_CUSTOMERS
//! (1,000,000), SEGFLOW_BENCH_TRANSACTIONS (10,000,000), SEGFLOW_BENCH_PYTHON (python3, with
//! pandas and pyarrow).

#[path = "../examples/generate.rs"]
#[allow(dead_code)]
mod generate;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

fn env_or<T: std::str::FromStr>(name: &str, default: T) -> T {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

const PIPELINE: &str = r#"name: bench
steps:
  - id: customers
    uses: gather.csv
    with: { path: DATA/customers.csv, types: { signup_date: string } }
  - id: transactions
    uses: gather.csv
    with: { path: DATA/transactions.csv }
  - id: clean
    uses: clean
    needs: [customers]
    with:
      trim: [first_name, last_name, city]
      email: email
      drop_missing: [email]
      dedupe: { key: [customer_id] }
      cast: { signup_date: date }
      fill: { age: { strategy: median }, country: unknown }
      clip: { age: { percentile: [0.01, 0.99] } }
  - id: customer_revenue
    uses: transform.sql
    needs: [clean, transactions]
    with:
      query: |
        SELECT c.customer_id, c.country, c.channel, t.orders, t.revenue, t.last_order
        FROM clean c
        JOIN (SELECT customer_id, count(*) AS orders, sum(amount) AS revenue,
                     max(order_date) AS last_order
              FROM transactions GROUP BY customer_id) t
          ON t.customer_id = c.customer_id
"#;

struct Measured {
    seconds: f64,
    peak_mb: f64,
    stdout: String,
}

/// Runs a command under `/usr/bin/time -v`, returning its wall time and peak resident memory.
fn measure(program: &str, args: &[&str], cwd: &Path) -> Measured {
    let started = Instant::now();
    let output = Command::new("/usr/bin/time")
        .arg("-v")
        .arg(program)
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap_or_else(|e| panic!("cannot run /usr/bin/time {program}: {e}"));
    let seconds = started.elapsed().as_secs_f64();
    let stderr = String::from_utf8_lossy(&output.stderr);
    if !output.status.success() {
        panic!("{program} failed:\n{stderr}");
    }
    let peak_kb: f64 = stderr
        .lines()
        .find_map(|l| {
            l.trim()
                .strip_prefix("Maximum resident set size (kbytes): ")
        })
        .and_then(|v| v.trim().parse().ok())
        .expect("/usr/bin/time -v reports the peak memory");
    Measured {
        seconds,
        peak_mb: peak_kb / 1024.0,
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
    }
}

fn main() {
    // `cargo bench` passes `--bench`; this runner takes no arguments of its own.
    let root = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let dir = std::env::var("SEGFLOW_BENCH_DIR")
        .map_or_else(|_| root.join("target/bench-data"), PathBuf::from);
    let customers: usize = env_or("SEGFLOW_BENCH_CUSTOMERS", 1_000_000);
    let transactions: usize = env_or("SEGFLOW_BENCH_TRANSACTIONS", 10_000_000);
    let python = std::env::var("SEGFLOW_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());

    let marker = dir.join(format!("generated-{customers}-{transactions}"));
    if !marker.exists() {
        let started = Instant::now();
        generate::generate(&dir, customers, transactions).expect("the data is written");
        std::fs::write(&marker, "").expect("the marker is written");
        println!(
            "generated {customers} customers and {transactions} transactions in {:.1}s",
            started.elapsed().as_secs_f64()
        );
    }
    let size = |f: &str| std::fs::metadata(dir.join(f)).map_or(0, |m| m.len()) / 1_000_000;
    println!(
        "data: customers.csv {} MB, transactions.csv {} MB ({})",
        size("customers.csv"),
        size("transactions.csv"),
        dir.display()
    );

    let project = dir.join("segflow-project");
    let _ = std::fs::remove_dir_all(&project);
    std::fs::create_dir_all(project.join("pipelines")).expect("a project folder");
    std::fs::write(
        project.join("pipelines/bench.yaml"),
        PIPELINE.replace("DATA", &dir.to_string_lossy()),
    )
    .expect("the pipeline is written");

    let segflow = measure(env!("CARGO_BIN_EXE_segflow"), &["run", "bench"], &project);
    let shown = Command::new(env!("CARGO_BIN_EXE_segflow"))
        .args(["runs", "list", "--json", "--limit", "1"])
        .current_dir(&project)
        .output()
        .expect("runs list");
    let runs: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("JSON");
    let run_id = runs[0]["id"].as_str().expect("a run").to_string();
    let shown = Command::new(env!("CARGO_BIN_EXE_segflow"))
        .args(["runs", "show", &run_id, "--json"])
        .current_dir(&project)
        .output()
        .expect("runs show");
    let shown: serde_json::Value = serde_json::from_slice(&shown.stdout).expect("JSON");
    let step = |id: &str| {
        shown["steps"]
            .as_array()
            .expect("steps")
            .iter()
            .find(|s| s["id"] == id)
            .cloned()
            .expect("the step")
    };
    let clean = step("clean");
    let result = step("customer_revenue");
    let took = |s: &serde_json::Value| {
        let start =
            chrono::DateTime::parse_from_rfc3339(s["started_at"].as_str().unwrap_or_default());
        let end = chrono::DateTime::parse_from_rfc3339(s["ended_at"].as_str().unwrap_or_default());
        match (start, end) {
            (Ok(a), Ok(b)) => format!("{:.2}s", (b - a).num_milliseconds() as f64 / 1000.0),
            _ => "?".into(),
        }
    };

    let out = dir.join("pandas-out");
    let script = root.join("benches/peers/pandas_pipeline.py");
    let pandas = measure(
        &python,
        &[
            &script.to_string_lossy(),
            &dir.to_string_lossy(),
            &out.to_string_lossy(),
        ],
        &root,
    );
    let summary: serde_json::Value =
        serde_json::from_str(pandas.stdout.trim()).expect("pandas prints a JSON summary");

    println!();
    println!(
        "segflow steps: customers {}, transactions {}, clean {}, customer_revenue {}",
        took(&step("customers")),
        took(&step("transactions")),
        took(&clean),
        took(&result)
    );
    println!(
        "segflow: clean rows {}, rejected {}, result rows {}",
        clean["outputs"]["rows"], clean["outputs"]["rejected"], result["outputs"]["rows"]
    );
    println!(
        "pandas:  clean rows {}, rejected {}, result rows {}",
        summary["clean_rows"], summary["rejected"], summary["result_rows"]
    );
    println!();
    println!("{:<8} {:>10} {:>14}", "", "wall", "peak memory");
    println!(
        "{:<8} {:>9.2}s {:>11.0} MB",
        "segflow", segflow.seconds, segflow.peak_mb
    );
    println!(
        "{:<8} {:>9.2}s {:>11.0} MB",
        "pandas", pandas.seconds, pandas.peak_mb
    );
    println!(
        "segflow is {:.1}x faster than pandas and uses {:.0}% of its peak memory",
        pandas.seconds / segflow.seconds,
        100.0 * segflow.peak_mb / pandas.peak_mb
    );
}
