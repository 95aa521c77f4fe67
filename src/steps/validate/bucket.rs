//! Deterministic assignment of a customer to an arm: SHA-256 of `salt:customer_id`, the first
//! 8 bytes read as a big-endian integer, its top 53 bits scaled to a number in [0, 1), then the
//! arm whose cumulative weight range holds it.
//!
//! Why this hash: the same salt and id give the same bucket on every machine and in every
//! version (sticky across weekly runs), a different salt gives an unrelated bucket (independent
//! experiments), and anyone can reproduce a customer's group in Python or SQL:
//!
//! ```python
//! d = hashlib.sha256(f"{salt}:{customer_id}".encode()).digest()
//! bucket = (int.from_bytes(d[:8], "big") >> 11) / 2**53
//! ```
//!
//! The segment plays no part, so a customer who moves to another segment keeps their group.
//! With the `fraction` form, control is the bucket range [0, fraction): raising the fraction
//! later only moves treatment customers into control, never the other way.

use sha2::{Digest, Sha256};

/// The position of a customer in [0, 1) for a salt.
pub fn bucket(salt: &str, customer_id: &str) -> f64 {
    let mut hasher = Sha256::new();
    hasher.update(salt.as_bytes());
    hasher.update(b":");
    hasher.update(customer_id.as_bytes());
    let digest = hasher.finalize();
    let mut first = [0u8; 8];
    first.copy_from_slice(&digest[..8]);
    (u64::from_be_bytes(first) >> 11) as f64 / (1u64 << 53) as f64
}

/// Named arms with weights, in the order their bucket ranges are laid out.
#[derive(Debug, Clone, PartialEq)]
pub struct Arms {
    names: Vec<String>,
    weights: Vec<f64>,
    /// Upper end of each arm's range; the last is forced to 1 so rounding loses nobody.
    upper: Vec<f64>,
}

impl Arms {
    /// Arms from (name, weight) pairs whose weights sum to 1 (checked by the caller).
    pub fn new(arms: impl IntoIterator<Item = (String, f64)>) -> Self {
        let (names, weights): (Vec<String>, Vec<f64>) = arms.into_iter().unzip();
        let mut upper = Vec::with_capacity(weights.len());
        let mut running = 0.0;
        for w in &weights {
            running += w;
            upper.push(running);
        }
        if let Some(last) = upper.last_mut() {
            *last = f64::INFINITY;
        }
        Arms {
            names,
            weights,
            upper,
        }
    }

    /// `control` gets `fraction`, `treatment` the rest.
    pub fn holdout(fraction: f64) -> Self {
        Arms::new([
            ("control".to_string(), fraction),
            ("treatment".to_string(), 1.0 - fraction),
        ])
    }

    /// The arm (index) a bucket falls in.
    pub fn arm_of(&self, bucket: f64) -> usize {
        self.upper
            .iter()
            .position(|&upper| bucket < upper)
            .unwrap_or(self.upper.len() - 1)
    }

    pub fn assign(&self, salt: &str, customer_id: &str) -> usize {
        self.arm_of(bucket(salt, customer_id))
    }

    pub fn names(&self) -> &[String] {
        &self.names
    }

    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    pub fn len(&self) -> usize {
        self.names.len()
    }

    pub fn is_empty(&self) -> bool {
        self.names.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values: Python's hashlib with the formula in the module comment
    // (examples/experiment_stats_reference.py).
    #[test]
    fn buckets_match_the_documented_python_formula() {
        let cases = [
            ("weekly-rfm-2026", "00042", 0.8934442965783707),
            ("weekly-rfm-2026", "1", 0.2565587573695498),
            ("other-salt", "1", 0.9910577794813532),
            ("s", "customer@example.com", 0.8556225942051964),
        ];
        for (salt, id, expected) in cases {
            assert_eq!(bucket(salt, id), expected, "{salt}:{id}");
        }
    }

    #[test]
    fn the_salt_and_id_are_separated() {
        // Without the separator "ab" + "c" and "a" + "bc" would be the same customer.
        assert_ne!(bucket("ab", "c"), bucket("a", "bc"));
    }

    #[test]
    fn arms_follow_their_cumulative_ranges() {
        let arms = Arms::new([
            ("control".to_string(), 0.1),
            ("a".to_string(), 0.45),
            ("b".to_string(), 0.45),
        ]);
        assert_eq!(arms.arm_of(0.0), 0);
        assert_eq!(arms.arm_of(0.0999), 0);
        assert_eq!(arms.arm_of(0.1), 1);
        assert_eq!(arms.arm_of(0.5499), 1);
        assert_eq!(arms.arm_of(0.55), 2);
        assert_eq!(arms.arm_of(0.999_999_999), 2);
    }

    #[test]
    fn a_zero_fraction_holds_out_nobody_and_one_holds_out_everybody() {
        let none = Arms::holdout(0.0);
        let all = Arms::holdout(1.0);
        for i in 0..2000 {
            let id = i.to_string();
            assert_eq!(none.assign("s", &id), 1);
            assert_eq!(all.assign("s", &id), 0);
        }
    }

    #[test]
    fn achieved_fractions_are_close_to_the_weights() {
        let arms = Arms::new([
            ("control".to_string(), 0.1),
            ("a".to_string(), 0.3),
            ("b".to_string(), 0.6),
        ]);
        let n = 100_000;
        let mut counts = [0u32; 3];
        for i in 0..n {
            counts[arms.assign("fractions", &format!("c{i}"))] += 1;
        }
        for (count, weight) in counts.iter().zip([0.1, 0.3, 0.6]) {
            let share = *count as f64 / n as f64;
            // Binomial standard error at n = 100k is below 0.0016; allow about 4 of them.
            assert!((share - weight).abs() < 0.006, "{counts:?}");
        }
    }

    #[test]
    fn raising_the_fraction_only_moves_treatment_into_control() {
        let small = Arms::holdout(0.1);
        let large = Arms::holdout(0.2);
        for i in 0..10_000 {
            let id = format!("{i}");
            if small.assign("grow", &id) == 0 {
                assert_eq!(large.assign("grow", &id), 0, "customer {id} left control");
            }
        }
    }

    #[test]
    fn two_salts_assign_independently() {
        // Cross-tab of two salts' 50/50 splits on 100k ids: each cell should hold a quarter,
        // as it does when the assignments are independent (chi-square test of independence).
        let arms = Arms::holdout(0.5);
        let n = 100_000u32;
        let mut table = [[0f64; 2]; 2];
        for i in 0..n {
            let id = i.to_string();
            table[arms.assign("salt-one", &id)][arms.assign("salt-two", &id)] += 1.0;
        }
        let total = n as f64;
        let rows = [table[0][0] + table[0][1], table[1][0] + table[1][1]];
        let cols = [table[0][0] + table[1][0], table[0][1] + table[1][1]];
        let mut chi = 0.0;
        for r in 0..2 {
            for c in 0..2 {
                let expected = rows[r] * cols[c] / total;
                chi += (table[r][c] - expected).powi(2) / expected;
            }
        }
        // 1 degree of freedom: chi² above 10.83 would reject independence at p = 0.001.
        assert!(chi < 10.83, "chi² = {chi}, table {table:?}");
        for row in table {
            for cell in row {
                assert!((cell / total - 0.25).abs() < 0.01, "{table:?}");
            }
        }
    }
}
