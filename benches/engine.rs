//! Engine overhead, durable state included: 1,000 `noop` steps in a wide and in a deep DAG,
//! and 40 sequential `shell` steps running `true`. Prints per-step figures.
//!
//! cargo bench --bench engine

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use segflow::engine::Engine;
use segflow::secrets::Secrets;
use segflow::spec::load_source;
use segflow::spec::source::Source;
use segflow::steps::Registry;
use segflow::store::{RunState, RunTrigger, SledStore, StateStore};
use tokio_util::sync::CancellationToken;

fn wide(n: usize, concurrency: usize) -> String {
    let mut yaml = format!("name: wide\nconcurrency: {concurrency}\nsteps:\n");
    for i in 0..n {
        yaml.push_str(&format!("  - {{ id: s{i}, uses: noop }}\n"));
    }
    yaml
}

fn deep(n: usize) -> String {
    let mut yaml = String::from("name: deep\nsteps:\n  - { id: s0, uses: noop }\n");
    for i in 1..n {
        yaml.push_str(&format!(
            "  - {{ id: s{i}, uses: noop, needs: [s{}] }}\n",
            i - 1
        ));
    }
    yaml
}

fn shell_chain(n: usize) -> String {
    let mut yaml = String::from(
        "name: shell\nsteps:\n  - { id: s0, uses: shell, with: { command: [\"true\"] } }\n",
    );
    for i in 1..n {
        yaml.push_str(&format!(
            "  - {{ id: s{i}, uses: shell, needs: [s{}], with: {{ command: [\"true\"] }} }}\n",
            i - 1
        ));
    }
    yaml
}

/// Runs a pipeline once with a fresh sled store; returns the wall time of `execute`.
async fn time_run(yaml: &str, dir: &Path) -> Duration {
    let registry = Arc::new(Registry::builtin());
    let loaded =
        load_source(Source::new(dir.join("p.yaml"), yaml), &registry, dir).expect("valid pipeline");
    let store: Arc<dyn StateStore> =
        Arc::new(SledStore::open(&dir.join(".segflow")).expect("store"));
    let engine = Engine::new(registry, store, Arc::new(Secrets::default()));
    let run = engine
        .create_run(&loaded, &IndexMap::new(), RunTrigger::Manual, None)
        .expect("run created");
    let start = Instant::now();
    let done = engine
        .execute(&run.id, CancellationToken::new())
        .await
        .expect("run executes");
    let took = start.elapsed();
    assert_eq!(done.state, RunState::Succeeded);
    took
}

async fn report(label: &str, yaml: &str, steps: usize, repeats: usize) {
    let mut best = Duration::MAX;
    let mut total = Duration::ZERO;
    for _ in 0..repeats {
        let dir = tempfile::tempdir().expect("temp dir");
        let took = time_run(yaml, dir.path()).await;
        best = best.min(took);
        total += took;
    }
    let mean = total / repeats as u32;
    println!(
        "{label:<34} {steps:>5} steps  mean {:>8.1} ms  best {:>8.1} ms  per step: mean {:>7.3} ms, best {:>7.3} ms",
        mean.as_secs_f64() * 1e3,
        best.as_secs_f64() * 1e3,
        mean.as_secs_f64() * 1e3 / steps as f64,
        best.as_secs_f64() * 1e3 / steps as f64,
    );
}

fn main() {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        println!("segflow engine overhead (sled state flushed on every transition)");
        report("noop, wide (concurrency 4)", &wide(1000, 4), 1000, 5).await;
        report("noop, wide (concurrency 64)", &wide(1000, 64), 1000, 5).await;
        report("noop, deep (a chain)", &deep(1000), 1000, 5).await;
        report("shell `true`, 40 in sequence", &shell_chain(40), 40, 5).await;
    });
}
