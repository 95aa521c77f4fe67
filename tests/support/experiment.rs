//! Helpers for the experiment tests: the documented bucketing formula, re-implemented here
//! from the documentation (not from segflow's code), and CSV builders.

use sha2::{Digest, Sha256};

/// `(int.from_bytes(sha256(f"{salt}:{id}")[:8], "big") >> 11) / 2**53`, as docs/validate.md says.
pub fn documented_bucket(salt: &str, id: &str) -> f64 {
    let digest = Sha256::digest(format!("{salt}:{id}").as_bytes());
    let top = u64::from_be_bytes(digest[..8].try_into().expect("8 bytes"));
    (top >> 11) as f64 / 9_007_199_254_740_992.0
}

/// A CSV with a header line and rows.
pub fn csv(header: &str, rows: impl IntoIterator<Item = String>) -> String {
    let mut out = format!("{header}\n");
    for row in rows {
        out.push_str(&row);
        out.push('\n');
    }
    out
}
