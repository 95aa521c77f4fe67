//! Absolute and relative lift of treatment over control with confidence intervals, as
//! GrowthBook's frequentist engine (gbstats `TwoSidedTTest`): the relative lift's variance by
//! the delta method, σC²·μT²/(μC⁴·nC) + σT²/(μC²·nT); the interval uses Student's t with
//! Welch–Satterthwaite degrees of freedom.

use statrs::distribution::ContinuousCDF;

use super::welch::{standard_error_and_df, student_t};
use super::{ArmSummary, Undefined};

/// An estimate with its two-sided confidence interval.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Interval {
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

/// μT − μC with its (1 − alpha) interval.
pub fn absolute(
    control: &ArmSummary,
    treatment: &ArmSummary,
    alpha: f64,
) -> Result<Interval, Undefined> {
    let (variance, df) = standard_error_and_df(treatment, control)?;
    let estimate = treatment.mean - control.mean;
    let width = critical_value(df, alpha)? * variance.sqrt();
    Ok(Interval {
        estimate,
        low: estimate - width,
        high: estimate + width,
    })
}

/// (μT − μC) / μC with its (1 − alpha) interval.
pub fn relative(
    control: &ArmSummary,
    treatment: &ArmSummary,
    alpha: f64,
) -> Result<Interval, Undefined> {
    let (_, df) = standard_error_and_df(treatment, control)?;
    if control.mean == 0.0 {
        return Err(Undefined::ZeroBaseline);
    }
    let (mc, mt) = (control.mean, treatment.mean);
    let (nc, nt) = (control.n as f64, treatment.n as f64);
    let variance =
        control.variance * mt * mt / (mc.powi(4) * nc) + treatment.variance / (mc * mc * nt);
    let estimate = (mt - mc) / mc;
    let width = critical_value(df, alpha)? * variance.sqrt();
    if !width.is_finite() {
        return Err(Undefined::NoVariation);
    }
    Ok(Interval {
        estimate,
        low: estimate - width,
        high: estimate + width,
    })
}

/// t(1 − alpha/2, df).
fn critical_value(df: f64, alpha: f64) -> Result<f64, Undefined> {
    Ok(student_t(df)?.inverse_cdf(1.0 - alpha / 2.0))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::stats::Moments;

    fn close(actual: f64, expected: f64, what: &str) {
        assert!(
            (actual - expected).abs() < 1e-9 * expected.abs().max(1.0),
            "{what}: {actual} vs {expected}"
        );
    }

    // Reference values: gbstats 0.8.0 (GrowthBook's Python stats engine), `TwoSidedTTest` with
    // `ProportionStatistic`/`SampleMeanStatistic` and `difference_type` "relative" / "absolute",
    // alpha 0.05 (see examples/experiment_stats_reference.py).
    #[test]
    fn proportions_match_growthbook() {
        let control = ArmSummary::proportion(100, 1000);
        let treatment = ArmSummary::proportion(120, 1000);
        let rel = relative(&control, &treatment, 0.05).expect("defined");
        close(rel.estimate, 0.2, "relative estimate");
        close(rel.low, -0.1007679748484, "relative low");
        close(rel.high, 0.5007679748484, "relative high");
        let abs = absolute(&control, &treatment, 0.05).expect("defined");
        close(abs.estimate, 0.02, "absolute estimate");
        close(abs.low, -0.0074282031925, "absolute low");
        close(abs.high, 0.0474282031925, "absolute high");
    }

    #[test]
    fn means_match_growthbook() {
        let control = ArmSummary::mean(&Moments::from_values(&[
            0.0, 5.0, 9.8, 0.0, 11.2, 0.0, 3.3, 14.0, 0.0, 6.1,
        ]));
        let treatment = ArmSummary::mean(&Moments::from_values(&[
            23.5, 0.0, 12.0, 55.1, 0.0, 8.2, 31.0, 0.0, 19.9, 44.4, 7.5, 0.0,
        ]));
        let rel = relative(&control, &treatment, 0.05).expect("defined");
        close(rel.estimate, 2.4008097165992, "relative estimate");
        close(rel.low, -0.9980010148887, "relative low");
        close(rel.high, 5.7996204480871, "relative high");
        let abs = absolute(&control, &treatment, 0.05).expect("defined");
        close(abs.estimate, 11.8600000000000, "absolute estimate");
        close(abs.low, -0.2615304853987, "absolute low");
        close(abs.high, 23.9815304853987, "absolute high");
    }

    #[test]
    fn a_zero_control_rate_has_no_relative_lift() {
        let control = ArmSummary::proportion(0, 500);
        let treatment = ArmSummary::proportion(7, 500);
        assert_eq!(
            relative(&control, &treatment, 0.05),
            Err(Undefined::ZeroBaseline)
        );
        let abs = absolute(&control, &treatment, 0.05).expect("absolute lift exists");
        assert!(abs.low < abs.estimate && abs.estimate < abs.high);
    }

    #[test]
    fn no_conversions_anywhere_has_no_interval() {
        let none = ArmSummary::proportion(0, 500);
        assert_eq!(absolute(&none, &none, 0.05), Err(Undefined::NoVariation));
    }
}
