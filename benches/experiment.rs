//! Holdout and A/B evaluation on 1M customers: how long `validate.holdout` takes to assign and
//! check 1M customers in 10 segments, and `validate.ab` to evaluate 2 metrics on them (reading
//! the assignment from the earlier run), plus raw bucketing throughput. Prints figures.
//!
//! cargo bench --bench experiment

use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use segflow::engine::Engine;
use segflow::secrets::Secrets;
use segflow::spec::load_source;
use segflow::spec::source::Source;
use segflow::steps::Registry;
use segflow::steps::validate::bucket::{Arms, bucket};
use segflow::store::{RunState, RunTrigger, SledStore, StateStore};
use tokio_util::sync::CancellationToken;

const CUSTOMERS: usize = 1_000_000;
const SEGMENTS: [&str; 10] = [
    "Champions",
    "Loyal Customers",
    "Potential Loyalist",
    "New Customers",
    "Promising",
    "Need Attention",
    "About To Sleep",
    "At Risk",
    "Can't Lose Them",
    "Lost",
];

const HOLDOUT: &str = r#"
name: holdout
steps:
  - id: customers
    uses: gather.csv
    with: { path: customers.csv }
  - id: split
    uses: validate.holdout
    needs: [customers]
    with: { fraction: 0.1, salt: bench, stratify_by: segment }
"#;

const EVALUATE: &str = r#"
name: evaluate
steps:
  - id: outcomes
    uses: gather.csv
    with: { path: outcomes.csv }
  - id: ab
    uses: validate.ab
    needs: [outcomes]
    with:
      assignment: { pipeline: holdout, step: split }
      outcomes: outcomes
      metrics: [converted, revenue]
      require: { srm: pass, max_p: 0.05 }
      on_fail: warn
"#;

fn write_data(dir: &Path) {
    let mut customers = String::from("customer_id,segment\n");
    let mut outcomes = String::from("customer_id,converted,revenue\n");
    for i in 0..CUSTOMERS {
        let _ = writeln!(customers, "{i},{}", SEGMENTS[i % SEGMENTS.len()]);
        // Deterministic pseudo-random outcomes: ~12% convert, revenue 10–60.
        let draw = bucket("outcomes", &i.to_string());
        let converted = draw < 0.12;
        let revenue = if converted { 10.0 + draw * 400.0 } else { 0.0 };
        let _ = writeln!(outcomes, "{i},{},{revenue:.2}", u8::from(converted));
    }
    std::fs::write(dir.join("customers.csv"), customers).expect("customers.csv");
    std::fs::write(dir.join("outcomes.csv"), outcomes).expect("outcomes.csv");
}

/// Runs a pipeline; returns each step's duration as the engine recorded it.
async fn run(yaml: &str, dir: &Path, store: &Arc<dyn StateStore>) -> Vec<(String, Duration)> {
    let registry = Arc::new(Registry::builtin());
    let loaded =
        load_source(Source::new(dir.join("p.yaml"), yaml), &registry, dir).expect("valid pipeline");
    let engine = Engine::new(registry, Arc::clone(store), Arc::new(Secrets::default()));
    let run = engine
        .create_run(&loaded, &IndexMap::new(), RunTrigger::Manual, None)
        .expect("run created");
    let done = engine
        .execute(&run.id, CancellationToken::new())
        .await
        .expect("run executes");
    assert_eq!(done.state, RunState::Succeeded, "{:?}", done.error);
    store
        .get_steps(&run.id)
        .expect("steps")
        .into_iter()
        .map(|s| {
            let ms = s.duration_ms().unwrap_or_default().max(0) as u64;
            (s.id, Duration::from_millis(ms))
        })
        .collect()
}

fn main() {
    let dir = tempfile::tempdir().expect("temp dir");
    let start = Instant::now();
    write_data(dir.path());
    println!(
        "data: {CUSTOMERS} customers in {} segments, outcomes with 2 metrics (written in {:.1} s)",
        SEGMENTS.len(),
        start.elapsed().as_secs_f64()
    );

    let arms = Arms::holdout(0.1);
    let ids: Vec<String> = (0..CUSTOMERS).map(|i| i.to_string()).collect();
    let start = Instant::now();
    let control = ids
        .iter()
        .filter(|id| arms.assign("bench", id) == 0)
        .count();
    let took = start.elapsed();
    println!(
        "bucketing (SHA-256 of salt:id): {CUSTOMERS} ids in {:.0} ms ({:.0} ns per id), {control} in control",
        took.as_secs_f64() * 1e3,
        took.as_secs_f64() * 1e9 / CUSTOMERS as f64
    );

    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    runtime.block_on(async {
        let store: Arc<dyn StateStore> =
            Arc::new(SledStore::open(&dir.path().join(".segflow")).expect("store"));
        for _ in 0..3 {
            let holdout = run(HOLDOUT, dir.path(), &store).await;
            let evaluate = run(EVALUATE, dir.path(), &store).await;
            let line: Vec<String> = holdout
                .iter()
                .chain(&evaluate)
                .map(|(id, took)| format!("{id} {:.2} s", took.as_secs_f64()))
                .collect();
            println!("{}", line.join(", "));
        }
    });
}
