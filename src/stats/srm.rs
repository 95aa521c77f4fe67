//! Sample-ratio mismatch: did the arms get the share of customers they were meant to? A Pearson
//! chi-square goodness-of-fit test of the observed counts against weight × total, as GrowthBook.

use statrs::distribution::{ChiSquared, ContinuousCDF};

use super::Undefined;

/// GrowthBook flags a mismatch below this p-value.
pub const DEFAULT_THRESHOLD: f64 = 0.001;

/// GrowthBook does not judge a split with fewer units than this in an arm.
pub const MIN_PER_ARM: u64 = 8;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SrmTest {
    pub chi_square: f64,
    pub df: u32,
    pub p_value: f64,
}

impl SrmTest {
    /// True when the split looks as planned (p ≥ threshold).
    pub fn ok(&self, threshold: f64) -> bool {
        self.p_value >= threshold
    }
}

/// Tests `observed[i]` against `weights[i]` (normalised). Arms with weight 0 expect nobody and
/// add no degree of freedom; anybody found in one is a mismatch (p = 0).
pub fn test(observed: &[u64], weights: &[f64]) -> Result<SrmTest, Undefined> {
    debug_assert_eq!(observed.len(), weights.len());
    let total_weight: f64 = weights.iter().filter(|w| **w > 0.0).sum();
    let arms = weights.iter().filter(|w| **w > 0.0).count();
    if arms < 2 || total_weight <= 0.0 {
        return Err(Undefined::SingleArm);
    }
    let df = (arms - 1) as u32;
    // Units in an arm that expects nobody: the split is broken whatever the rest looks like.
    let stray: u64 = observed
        .iter()
        .zip(weights)
        .filter(|(_, w)| **w <= 0.0)
        .map(|(o, _)| *o)
        .sum();
    if stray == 0
        && observed
            .iter()
            .zip(weights)
            .any(|(&o, &w)| w > 0.0 && o < MIN_PER_ARM)
    {
        return Err(Undefined::TooFewForSrm(MIN_PER_ARM));
    }
    let total: u64 = observed
        .iter()
        .zip(weights)
        .filter(|(_, w)| **w > 0.0)
        .map(|(o, _)| *o)
        .sum();
    let mut chi_square = 0.0;
    for (&o, &w) in observed.iter().zip(weights) {
        if w > 0.0 && total > 0 {
            let expected = w / total_weight * total as f64;
            chi_square += (o as f64 - expected).powi(2) / expected;
        }
    }
    let p_value = if stray > 0 {
        0.0
    } else {
        let distribution = ChiSquared::new(df as f64).expect("df is at least 1");
        distribution.sf(chi_square).clamp(0.0, 1.0)
    };
    Ok(SrmTest {
        chi_square,
        df,
        p_value,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values: scipy 1.17.1, `chisquare(observed, f_exp=weights/sum(weights)*total)`
    // (see examples/experiment_stats_reference.py).
    #[test]
    fn matches_scipy_chisquare() {
        let cases: [(&[u64], &[f64], f64, f64); 4] = [
            (&[1000, 9000], &[0.1, 0.9], 0.0, 1.0),
            (&[1080, 8920], &[0.1, 0.9], 7.1111111111111, 0.007660761135),
            (&[5100, 4900], &[0.5, 0.5], 4.0, 0.0455002639),
            (
                &[220, 2310, 2470],
                &[0.05, 0.475, 0.475],
                9.1789473684211,
                0.01015820339,
            ),
        ];
        for (observed, weights, chi, p) in cases {
            let srm = test(observed, weights).expect("defined");
            assert!(
                (srm.chi_square - chi).abs() < 1e-9,
                "chi² for {observed:?}: {}",
                srm.chi_square
            );
            assert!(
                (srm.p_value - p).abs() < 1e-9 * p.max(1e-3),
                "p for {observed:?}: {}",
                srm.p_value
            );
            assert_eq!(srm.df as usize, observed.len() - 1);
        }
    }

    #[test]
    fn flags_a_broken_split_at_growthbooks_threshold() {
        // 10% holdout that came out at 12%.
        let srm = test(&[1200, 8800], &[0.1, 0.9]).expect("defined");
        assert!(!srm.ok(DEFAULT_THRESHOLD), "p = {}", srm.p_value);
        let fine = test(&[1010, 8990], &[0.1, 0.9]).expect("defined");
        assert!(fine.ok(DEFAULT_THRESHOLD));
    }

    #[test]
    fn too_few_or_a_single_arm_is_not_judged() {
        assert_eq!(test(&[3, 40], &[0.1, 0.9]), Err(Undefined::TooFewForSrm(8)));
        assert_eq!(test(&[0, 40], &[0.0, 1.0]), Err(Undefined::SingleArm));
        let stray = test(&[5, 40, 40], &[0.0, 0.5, 0.5]).expect("judged");
        assert_eq!(stray.p_value, 0.0);
    }
}
