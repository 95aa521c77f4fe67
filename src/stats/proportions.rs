//! Two-proportion z-test, pooled and without continuity correction, exactly as statsmodels'
//! `proportions_ztest([x1, x2], [n1, n2])`.

use statrs::distribution::{ContinuousCDF, Normal};

use super::Undefined;

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ZTest {
    /// (p1 − p2) / se, positive when the first group converts more.
    pub z: f64,
    /// Two-sided.
    pub p_value: f64,
}

/// Tests whether `x1` of `n1` converts at a different rate than `x2` of `n2`.
pub fn ztest(x1: u64, n1: u64, x2: u64, n2: u64) -> Result<ZTest, Undefined> {
    if n1 == 0 || n2 == 0 {
        return Err(Undefined::EmptyGroup);
    }
    let (n1f, n2f) = (n1 as f64, n2 as f64);
    let pooled = (x1 + x2) as f64 / (n1f + n2f);
    if x1 + x2 == 0 {
        return Err(Undefined::NoConversions);
    }
    if x1 + x2 == n1 + n2 {
        return Err(Undefined::AllConverted);
    }
    let variance = pooled * (1.0 - pooled) * (1.0 / n1f + 1.0 / n2f);
    let z = (x1 as f64 / n1f - x2 as f64 / n2f) / variance.sqrt();
    Ok(ZTest {
        z,
        p_value: two_sided_normal(z),
    })
}

/// 2·(1 − Φ(|z|)), computed through the upper tail so tiny p-values keep their digits.
pub fn two_sided_normal(z: f64) -> f64 {
    (2.0 * standard_normal().sf(z.abs())).min(1.0)
}

pub fn standard_normal() -> Normal {
    Normal::standard()
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values: statsmodels 0.15.0,
    // `proportions_ztest(count=[x1, x2], nobs=[n1, n2])` (see examples/experiment_stats_reference.py).
    #[test]
    fn matches_statsmodels_proportions_ztest() {
        let cases = [
            // (x1, n1, x2, n2, z, p)
            (120, 1000, 100, 1000, 1.4293008498232, 0.1529177818639),
            (300, 4500, 45, 500, -1.9529164171613, 0.05082950003602),
            (1, 50, 9, 60, -2.3615672761960, 0.01819786970005),
            (
                5200,
                50000,
                4800,
                50000,
                4.2163702135578,
                2.482660633881e-05,
            ),
            (0, 200, 12, 200, -3.5172622905633, 0.0004360226943917),
        ];
        for (x1, n1, x2, n2, z, p) in cases {
            let test = ztest(x1, n1, x2, n2).expect("defined");
            assert!(
                (test.z - z).abs() < 1e-9,
                "z for {x1}/{n1} vs {x2}/{n2}: {}",
                test.z
            );
            assert!(
                (test.p_value - p).abs() < 1e-9 * p.max(1e-3),
                "p for {x1}/{n1} vs {x2}/{n2}: {}",
                test.p_value
            );
        }
    }

    #[test]
    fn says_why_when_the_test_has_no_value() {
        assert_eq!(ztest(0, 100, 0, 100), Err(Undefined::NoConversions));
        assert_eq!(ztest(100, 100, 80, 80), Err(Undefined::AllConverted));
        assert_eq!(ztest(3, 10, 0, 0), Err(Undefined::EmptyGroup));
    }

    #[test]
    fn zero_conversions_in_one_group_still_tests() {
        let test = ztest(0, 200, 12, 200).expect("defined");
        assert!(test.z < 0.0);
        assert!(test.p_value < 0.001);
    }
}
