//! The adjusted Rand index of two labelings of the same customers (Hubert and Arabie, 1985):
//! 1 when they group customers the same way (whatever the names), about 0 for chance agreement.

use std::collections::HashMap;

fn pairs(n: u64) -> f64 {
    (n as f64) * (n.saturating_sub(1) as f64) / 2.0
}

/// ARI of paired labels; `None` for fewer than two customers. When both labelings put everyone
/// in one group (the index is 0/0) it is 1, as scikit-learn's `adjusted_rand_score`.
pub fn adjusted_rand_index(a: &[&str], b: &[&str]) -> Option<f64> {
    assert_eq!(a.len(), b.len(), "labels come in pairs");
    let n = a.len() as u64;
    if n < 2 {
        return None;
    }
    let mut cells: HashMap<(&str, &str), u64> = HashMap::new();
    let mut rows: HashMap<&str, u64> = HashMap::new();
    let mut cols: HashMap<&str, u64> = HashMap::new();
    for (x, y) in a.iter().zip(b) {
        *cells.entry((x, y)).or_default() += 1;
        *rows.entry(x).or_default() += 1;
        *cols.entry(y).or_default() += 1;
    }
    let index: f64 = cells.values().map(|&c| pairs(c)).sum();
    let sum_a: f64 = rows.values().map(|&c| pairs(c)).sum();
    let sum_b: f64 = cols.values().map(|&c| pairs(c)).sum();
    let expected = sum_a * sum_b / pairs(n);
    let max = (sum_a + sum_b) / 2.0;
    if max == expected {
        return Some(1.0);
    }
    Some((index - expected) / (max - expected))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Expected values from scikit-learn 1.x `adjusted_rand_score` on the same labels.
    #[test]
    fn matches_scikit_learn() {
        let a = ["0", "0", "0", "1", "1", "1", "2", "2"];
        let b = ["0", "0", "1", "1", "1", "2", "2", "2"];
        let got = adjusted_rand_index(&a, &b).expect("defined");
        assert!((got - 0.23809523809523808).abs() < 1e-12, "{got}");
        assert_eq!(
            adjusted_rand_index(&["A", "A", "B", "B"], &["x", "x", "y", "y"]),
            Some(1.0),
            "renamed segments are the same grouping"
        );
        let got =
            adjusted_rand_index(&["0", "0", "1", "1"], &["0", "1", "0", "1"]).expect("defined");
        assert!((got + 0.5).abs() < 1e-12, "{got}");
    }

    #[test]
    fn degenerate_cases() {
        assert_eq!(adjusted_rand_index(&["a"], &["b"]), None);
        assert_eq!(adjusted_rand_index(&["a", "a"], &["b", "b"]), Some(1.0));
    }
}
