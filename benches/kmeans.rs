//! k-means on 1,000,000 x 8 rows: segflow's `kmeans_fit` against scikit-learn's KMeans on the
//! same data, in one run.
//!
//!     cargo bench --bench kmeans
//!
//! The data: 8 overlapping Gaussian groups in 8 dimensions (seeded, so every run sees the same
//! numbers), written to a temporary file that `benches/peers/kmeans_sklearn.py` reads. Both fit
//! k = 8 with k-means++ (greedy), one start, max_iter 300, tol 1e-4, once for each of five seeds:
//! how many iterations a fit takes depends on where k-means++ happens to start, and the two
//! libraries draw different starts from the same seed, so one seed alone would compare luck.
//! Prints the mean fit time, inertia and iterations of each side, the time per iteration, and
//! the silhouette time on a 10,000-row sample.
//! Set SEGFLOW_BENCH_ROWS to try another size, and SEGFLOW_BENCH_PYTHON to the python with
//! scikit-learn (default python3), e.g. target/peer-venv/bin/python.

use std::io::Write;
use std::process::Command;
use std::time::Instant;

use segflow::steps::segment::kmeans_fit::{Matrix, Params, fit};
use segflow::steps::segment::silhouette::{sample_rows, silhouette};

const COLS: usize = 8;
const K: usize = 8;
const SEED: u64 = 7;
/// The seeds each side fits with, once each.
const SEEDS: [u64; 5] = [7, 8, 9, 10, 11];

/// SplitMix64: a tiny seeded generator, so the data needs nothing from outside.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn normal(&mut self) -> f64 {
        let u1 = self.unit().max(1e-300);
        let u2 = self.unit();
        (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
    }
}

fn data(rows: usize) -> Vec<f64> {
    let mut rng = SplitMix(42);
    let centers: Vec<Vec<f64>> = (0..K)
        .map(|_| (0..COLS).map(|_| rng.unit() * 6.0 - 3.0).collect())
        .collect();
    let mut data = Vec::with_capacity(rows * COLS);
    for i in 0..rows {
        let center = &centers[(rng.next() % K as u64) as usize];
        let spread = 0.8 + (i % 3) as f64 * 0.4;
        for value in center {
            data.push(value + rng.normal() * spread);
        }
    }
    data
}

fn main() {
    let rows: usize = std::env::var("SEGFLOW_BENCH_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let data = data(rows);
    let x = Matrix::new(&data, COLS);
    println!(
        "k-means, {rows} x {COLS}, k = {K}, k-means++ (greedy), n_init 1, max_iter 300, tol 1e-4, seeds {SEEDS:?}, {} threads",
        segflow::data::cores()
    );

    let mut seconds = 0.0;
    let mut inertia = 0.0;
    let mut iterations = 0;
    let mut last = None;
    for seed in SEEDS {
        let start = Instant::now();
        let fitted = fit(x, &Params::new(K, seed), &|| false).expect("the fit works");
        seconds += start.elapsed().as_secs_f64();
        inertia += fitted.inertia;
        iterations += fitted.iterations;
        last = Some(fitted);
    }
    let runs = SEEDS.len() as f64;
    let (ours_seconds, ours_inertia) = (seconds / runs, inertia / runs);
    let ours_iterations = iterations as f64 / runs;
    let ours = last.expect("five fits");
    println!(
        "segflow       fit {ours_seconds:>7.3} s   inertia {ours_inertia:>16.1}   iterations {ours_iterations:>5.1}   {:.1} ms per iteration   (means of {} seeds)",
        1000.0 * ours_seconds / ours_iterations,
        SEEDS.len()
    );

    let sample = sample_rows(rows, 10_000, SEED);
    let start = Instant::now();
    let score = silhouette(x, &ours.labels, K, &sample);
    println!(
        "segflow       silhouette on {} rows {:.3} s = {:.4}",
        sample.len(),
        start.elapsed().as_secs_f64(),
        score.unwrap_or(f64::NAN)
    );

    let path = std::env::temp_dir().join(format!("segflow-kmeans-{}.f64", std::process::id()));
    {
        let mut file = std::fs::File::create(&path).expect("a temp file");
        let bytes: Vec<u8> = data.iter().flat_map(|v| v.to_le_bytes()).collect();
        file.write_all(&bytes).expect("write the data");
    }
    let script = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/benches/peers/kmeans_sklearn.py"
    );
    let python = std::env::var("SEGFLOW_BENCH_PYTHON").unwrap_or_else(|_| "python3".into());
    let peer = Command::new(&python)
        .arg(script)
        .arg(&path)
        .args([
            rows.to_string(),
            COLS.to_string(),
            K.to_string(),
            SEEDS.map(|s| s.to_string()).join(","),
        ])
        // These slow a current numpy down on this machine's processors (see the env notes).
        .env_remove("OPENBLAS_CORETYPE")
        .env_remove("OPENBLAS_L2_SIZE")
        .output();
    let _ = std::fs::remove_file(&path);
    let output = match peer {
        Ok(output) if output.status.success() => output,
        Ok(output) => {
            println!(
                "scikit-learn  not run: {}",
                String::from_utf8_lossy(&output.stderr).trim()
            );
            return;
        }
        Err(e) => {
            println!("scikit-learn  not run: {python}: {e}");
            return;
        }
    };
    let peer: serde_json::Value =
        serde_json::from_slice(&output.stdout).expect("the peer prints JSON");
    let seconds = peer["seconds"].as_f64().unwrap_or(f64::NAN);
    let inertia = peer["inertia"].as_f64().unwrap_or(f64::NAN);
    let iterations = peer["n_iter"].as_f64().unwrap_or(f64::NAN);
    println!(
        "scikit-learn  fit {seconds:>7.3} s   inertia {inertia:>16.1}   iterations {iterations:>5.1}   {:.1} ms per iteration   (means of {} seeds, {} threads)",
        1000.0 * seconds / iterations,
        SEEDS.len(),
        peer["threads"]
    );
    println!(
        "segflow / scikit-learn: mean fit time {:.2}x, time per iteration {:.2}x, mean inertia {:+.3}%",
        ours_seconds / seconds,
        (ours_seconds / ours_iterations) / (seconds / iterations),
        100.0 * (ours_inertia - inertia) / inertia
    );
}
