//! Welch's unequal-variance t-test, as scipy's `ttest_ind(a, b, equal_var=False)`.

use statrs::distribution::{ContinuousCDF, StudentsT};

use super::{ArmSummary, Undefined};

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TTest {
    /// (mean_a − mean_b) / se.
    pub t: f64,
    /// Welch–Satterthwaite degrees of freedom.
    pub df: f64,
    /// Two-sided.
    pub p_value: f64,
}

/// Tests whether `a` and `b` have different means; `variance` must be the sample variance.
pub fn ttest(a: &ArmSummary, b: &ArmSummary) -> Result<TTest, Undefined> {
    let (se2, df) = standard_error_and_df(a, b)?;
    let t = (a.mean - b.mean) / se2.sqrt();
    let p_value = (2.0 * student_t(df)?.sf(t.abs())).min(1.0);
    Ok(TTest { t, df, p_value })
}

/// The squared standard error of `a.mean − b.mean` and its Welch–Satterthwaite degrees of freedom.
pub fn standard_error_and_df(a: &ArmSummary, b: &ArmSummary) -> Result<(f64, f64), Undefined> {
    if a.n == 0 || b.n == 0 {
        return Err(Undefined::EmptyGroup);
    }
    if a.n < 2 || b.n < 2 {
        return Err(Undefined::TooFewUnits);
    }
    let va = a.variance / a.n as f64;
    let vb = b.variance / b.n as f64;
    let se2 = va + vb;
    if se2 <= 0.0 || !se2.is_finite() {
        return Err(Undefined::NoVariation);
    }
    let df = se2 * se2 / (va * va / (a.n - 1) as f64 + vb * vb / (b.n - 1) as f64);
    Ok((se2, df))
}

/// Student's t with `df` degrees of freedom.
pub fn student_t(df: f64) -> Result<StudentsT, Undefined> {
    StudentsT::new(0.0, 1.0, df).map_err(|_| Undefined::TooFewUnits)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Moments;

    fn summary(values: &[f64]) -> ArmSummary {
        ArmSummary::mean(&Moments::from_values(values))
    }

    // Reference values: scipy 1.17.1, `ttest_ind(a, b, equal_var=False)` on these arrays
    // (see examples/experiment_stats_reference.py).
    #[test]
    fn matches_scipy_welch() {
        let a = [
            23.5, 0.0, 12.0, 55.1, 0.0, 8.2, 31.0, 0.0, 19.9, 44.4, 7.5, 0.0,
        ];
        let b = [0.0, 5.0, 9.8, 0.0, 11.2, 0.0, 3.3, 14.0, 0.0, 6.1];
        let test = ttest(&summary(&a), &summary(&b)).expect("defined");
        assert!((test.t - 2.1129326779393).abs() < 1e-9, "t {}", test.t);
        assert!((test.df - 13.0500948758390).abs() < 1e-9, "df {}", test.df);
        assert!(
            (test.p_value - 0.0544376441811).abs() < 1e-9,
            "p {}",
            test.p_value
        );
    }

    #[test]
    fn needs_two_values_and_some_variation() {
        let one = summary(&[3.0]);
        let flat = summary(&[2.0, 2.0, 2.0]);
        let varied = summary(&[1.0, 2.0, 3.0]);
        assert_eq!(ttest(&one, &varied), Err(Undefined::TooFewUnits));
        assert_eq!(ttest(&flat, &flat), Err(Undefined::NoVariation));
        assert_eq!(ttest(&summary(&[]), &varied), Err(Undefined::EmptyGroup));
        // One flat arm is fine: the other carries the variance.
        assert!(ttest(&flat, &varied).is_ok());
    }
}
