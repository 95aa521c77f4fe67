//! Benchmark (not a test): publish.webhook sending 1,000,000 contacts to a receiver on
//! loopback, batches of 500, 8 at once, signed. Prints contacts per second and CPU time.
//!
//!     cargo bench --bench publish                  # 1,000,000 contacts
//!     SEGFLOW_BENCH_CONTACTS=100000 cargo bench --bench publish
//!
//! segflow runs as its own process (the release binary, `segflow run`), so its CPU time
//! (getrusage of the child) is apart from the receiver's, which runs in this process.

use std::io::Write;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use nix::sys::resource::{UsageWho, getrusage};
use serde::Deserialize;
use serde::de::IgnoredAny;

#[derive(Default)]
struct Counts {
    requests: AtomicU64,
    records: AtomicU64,
}

#[derive(Deserialize)]
struct Body {
    records: Vec<IgnoredAny>,
}

async fn receive(State(counts): State<Arc<Counts>>, body: Bytes) -> &'static str {
    let parsed: Body = serde_json::from_slice(&body).expect("a generic-preset body");
    counts.requests.fetch_add(1, Ordering::Relaxed);
    counts
        .records
        .fetch_add(parsed.records.len() as u64, Ordering::Relaxed);
    "{\"ok\":true}"
}

fn start_receiver(counts: Arc<Counts>) -> String {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
    listener.set_nonblocking(true).expect("non-blocking");
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap();
        runtime.block_on(async move {
            let app = Router::new()
                .route("/hook", post(receive))
                .with_state(counts);
            let listener = tokio::net::TcpListener::from_std(listener).unwrap();
            axum::serve(listener, app).await.unwrap();
        });
    });
    url
}

fn seconds(t: nix::sys::time::TimeVal) -> f64 {
    t.tv_sec() as f64 + t.tv_usec() as f64 / 1e6
}

fn main() {
    if std::env::args().any(|a| a == "--list") {
        return;
    }
    let contacts: u64 = std::env::var("SEGFLOW_BENCH_CONTACTS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let dir = tempfile::tempdir().expect("a temp dir");
    let root = dir.path();
    std::fs::create_dir_all(root.join("data")).unwrap();
    std::fs::create_dir_all(root.join("pipelines")).unwrap();
    let mut csv =
        std::io::BufWriter::new(std::fs::File::create(root.join("data/contacts.csv")).unwrap());
    writeln!(csv, "customer_id,email,first_name,segment,score").unwrap();
    let segments = [
        "Champions",
        "Loyal Customers",
        "At Risk",
        "Lost",
        "New Customers",
    ];
    for i in 0..contacts {
        writeln!(
            csv,
            "{i},customer{i}@example.test,Name{i},{},{}",
            segments[(i % 5) as usize],
            (i * 7919) % 1000
        )
        .unwrap();
    }
    csv.flush().unwrap();
    drop(csv);

    let counts = Arc::new(Counts::default());
    let url = start_receiver(Arc::clone(&counts));
    std::fs::write(
        root.join("pipelines/bench.yaml"),
        format!(
            r#"name: bench
steps:
  - id: contacts
    uses: gather.csv
    with: {{ path: data/contacts.csv }}
  - id: sync
    uses: publish.webhook
    needs: [contacts]
    with:
      url: "{url}"
      secret: whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw
      key: customer_id
      fields: {{ id: customer_id, email: email, first_name: first_name, segment: segment, score: score }}
      batch_size: 500
      concurrency: 8
"#
        ),
    )
    .unwrap();

    let before = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap();
    let started = Instant::now();
    let status = Command::new(env!("CARGO_BIN_EXE_segflow"))
        .args(["run", "bench"])
        .current_dir(root)
        .env("NO_COLOR", "1")
        .status()
        .expect("segflow runs");
    let wall = started.elapsed().as_secs_f64();
    let after = getrusage(UsageWho::RUSAGE_CHILDREN).unwrap();
    assert!(status.success(), "the benchmark run failed");
    let user = seconds(after.user_time()) - seconds(before.user_time());
    let system = seconds(after.system_time()) - seconds(before.system_time());

    let shown = Command::new(env!("CARGO_BIN_EXE_segflow"))
        .args(["runs", "list", "--json"])
        .current_dir(root)
        .output()
        .unwrap();
    let runs: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let run_id = runs[0]["id"].as_str().unwrap().to_string();
    let shown = Command::new(env!("CARGO_BIN_EXE_segflow"))
        .args(["runs", "show", &run_id, "--json"])
        .current_dir(root)
        .output()
        .unwrap();
    let run: serde_json::Value = serde_json::from_slice(&shown.stdout).unwrap();
    let step_seconds = |id: &str| -> f64 {
        let step = run["steps"]
            .as_array()
            .unwrap()
            .iter()
            .find(|s| s["id"] == id)
            .unwrap();
        let parse =
            |key: &str| chrono::DateTime::parse_from_rfc3339(step[key].as_str().unwrap()).unwrap();
        (parse("ended_at") - parse("started_at")).num_milliseconds() as f64 / 1000.0
    };
    let publish = step_seconds("sync");
    let gather = step_seconds("contacts");
    let received = counts.records.load(Ordering::Relaxed);
    assert_eq!(received, contacts, "the receiver did not get every contact");

    println!("publish.webhook benchmark: {contacts} contacts, batch 500, concurrency 8, signed");
    println!(
        "  receiver: {} requests, {received} contacts",
        counts.requests.load(Ordering::Relaxed)
    );
    println!(
        "  publish step: {publish:.2} s = {:.0} contacts/s",
        contacts as f64 / publish
    );
    println!(
        "  whole run (gather CSV + publish, process start to exit): {wall:.2} s = {:.0} contacts/s (gather step {gather:.2} s)",
        contacts as f64 / wall
    );
    println!(
        "  segflow CPU time: {user:.2} s user + {system:.2} s system = {:.2} s ({:.2} µs per contact)",
        user + system,
        (user + system) * 1e6 / contacts as f64
    );
}
