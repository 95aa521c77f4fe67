//! Corrections for testing many segments at once, as statsmodels' `multipletests`:
//! Holm–Bonferroni (`holm`, family-wise error) and Benjamini–Hochberg (`fdr_bh`, false
//! discovery rate). Adjusted p-values come back in the input order.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Correction {
    /// Holm–Bonferroni: controls the chance of any false positive among the segments.
    #[default]
    Holm,
    /// Benjamini–Hochberg: controls the share of false positives among the significant segments.
    #[serde(alias = "benjamini_hochberg", alias = "fdr_bh")]
    Bh,
    /// No correction: each segment's p-value as it is.
    None,
}

impl Correction {
    pub fn adjust(self, p_values: &[f64]) -> Vec<f64> {
        match self {
            Correction::Holm => holm(p_values),
            Correction::Bh => benjamini_hochberg(p_values),
            Correction::None => p_values.to_vec(),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            Correction::Holm => "Holm",
            Correction::Bh => "Benjamini-Hochberg",
            Correction::None => "none",
        }
    }
}

fn ascending_order(p_values: &[f64]) -> Vec<usize> {
    let mut order: Vec<usize> = (0..p_values.len()).collect();
    order.sort_by(|&a, &b| p_values[a].total_cmp(&p_values[b]));
    order
}

/// Holm: the i-th smallest p (from 0) times (m − i), made non-decreasing, capped at 1.
pub fn holm(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut adjusted = vec![0.0; m];
    let mut running = 0.0_f64;
    for (rank, &index) in ascending_order(p_values).iter().enumerate() {
        running = running.max(p_values[index] * (m - rank) as f64);
        adjusted[index] = running.min(1.0);
    }
    adjusted
}

/// Benjamini–Hochberg: the i-th smallest p (from 1) times m / i, made non-increasing from the
/// largest down, capped at 1.
pub fn benjamini_hochberg(p_values: &[f64]) -> Vec<f64> {
    let m = p_values.len();
    let mut adjusted = vec![0.0; m];
    let mut running = 1.0_f64;
    let order = ascending_order(p_values);
    for (rank, &index) in order.iter().enumerate().rev() {
        running = running.min(p_values[index] * m as f64 / (rank + 1) as f64);
        adjusted[index] = running.min(1.0);
    }
    adjusted
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values: statsmodels 0.15.0, `multipletests(p, method="holm")` and
    // `method="fdr_bh"` (see examples/experiment_stats_reference.py).
    const P: [f64; 6] = [0.01, 0.04, 0.03, 0.005, 0.2, 0.04];

    #[test]
    fn holm_matches_statsmodels() {
        let expected = [0.05, 0.12, 0.12, 0.03, 0.2, 0.12];
        for (a, e) in holm(&P).iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{:?}", holm(&P));
        }
    }

    #[test]
    fn benjamini_hochberg_matches_statsmodels() {
        let expected = [0.03, 0.048, 0.048, 0.03, 0.2, 0.048];
        for (a, e) in benjamini_hochberg(&P).iter().zip(expected) {
            assert!((a - e).abs() < 1e-12, "{:?}", benjamini_hochberg(&P));
        }
    }

    #[test]
    fn adjusted_values_never_exceed_one_and_keep_order() {
        let p = [0.9, 0.5, 0.7];
        assert_eq!(holm(&p), vec![1.0, 1.0, 1.0]);
        assert_eq!(Correction::None.adjust(&p), p.to_vec());
        assert!(holm(&[]).is_empty());
    }
}
