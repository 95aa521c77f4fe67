//! Power and minimum detectable effect of a two-sample test, as statsmodels' `NormalIndPower`
//! (two-sided): power = Φ(d·√ñ − z) + Φ(−d·√ñ − z) with ñ = 1/(1/n1 + 1/n2) and
//! z = Φ⁻¹(1 − α/2). The effect size d is Cohen's h for proportions and Cohen's d (the lift over
//! the pooled standard deviation) for means.

use statrs::distribution::ContinuousCDF;

use super::Undefined;
use super::proportions::standard_normal;

/// Cohen's h between two proportions: 2·asin(√p1) − 2·asin(√p2) (statsmodels
/// `proportion_effectsize`).
pub fn cohens_h(p1: f64, p2: f64) -> f64 {
    2.0 * p1.sqrt().asin() - 2.0 * p2.sqrt().asin()
}

/// The proportion `p2` lies `h` above `p1` on Cohen's scale; `None` past 100%.
pub fn proportion_at(p1: f64, h: f64) -> Option<f64> {
    let angle = p1.sqrt().asin() + h / 2.0;
    (angle <= std::f64::consts::FRAC_PI_2).then(|| angle.sin().powi(2))
}

/// The chance a two-sided test at `alpha` detects a standardised effect `effect` with `n1` and
/// `n2` units.
pub fn power(effect: f64, n1: u64, n2: u64, alpha: f64) -> Result<f64, Undefined> {
    let n = effective_n(n1, n2)?;
    let normal = standard_normal();
    let crit = normal.inverse_cdf(1.0 - alpha / 2.0);
    let shift = effect.abs() * n.sqrt();
    Ok((normal.sf(crit - shift) + normal.cdf(-crit - shift)).clamp(0.0, 1.0))
}

/// The smallest standardised effect detected with probability `target` (statsmodels
/// `NormalIndPower().solve_power(effect_size=None, …)`), found by bisection.
pub fn minimum_detectable_effect(
    n1: u64,
    n2: u64,
    alpha: f64,
    target: f64,
) -> Result<f64, Undefined> {
    let at = |effect: f64| power(effect, n1, n2, alpha);
    if at(0.0)? >= target {
        return Ok(0.0);
    }
    let (mut low, mut high) = (0.0_f64, 1.0_f64);
    while at(high)? < target {
        high *= 2.0;
        if high > 1e6 {
            return Err(Undefined::NotDetectable);
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (low + high);
        if at(mid)? < target {
            low = mid;
        } else {
            high = mid;
        }
        if high - low <= 1e-15 * high {
            break;
        }
    }
    Ok(high)
}

fn effective_n(n1: u64, n2: u64) -> Result<f64, Undefined> {
    if n1 == 0 || n2 == 0 {
        return Err(Undefined::EmptyGroup);
    }
    Ok(1.0 / (1.0 / n1 as f64 + 1.0 / n2 as f64))
}

#[cfg(test)]
mod tests {
    use super::*;

    // Reference values: statsmodels 0.15.0,
    // `NormalIndPower().power(effect_size=h, nobs1=n1, alpha=0.05, ratio=n2/n1)` and
    // `.solve_power(effect_size=None, nobs1=n1, alpha=0.05, power=0.8, ratio=n2/n1)` (statsmodels
    // stops its root finder near 1e-6, hence the looser tolerance there), with
    // `proportion_effectsize(0.12, 0.10)` (see examples/experiment_stats_reference.py).
    #[test]
    fn matches_statsmodels_normal_ind_power() {
        let h = cohens_h(0.12, 0.10);
        assert!((h - 0.0639821029861).abs() < 1e-12, "h {h}");
        let cases = [
            // (effect, n1, n2, power)
            (h, 1000, 1000, 0.2986540208458),
            (h, 4500, 500, 0.2738091754240),
            (0.2, 300, 120, 0.4569384618844),
            (0.05, 20000, 20000, 0.9988172507035),
        ];
        for (effect, n1, n2, expected) in cases {
            let actual = power(effect, n1, n2, 0.05).expect("defined");
            assert!(
                (actual - expected).abs() < 1e-9,
                "power({effect}, {n1}, {n2}) = {actual}"
            );
        }
        let mdes = [
            // (n1, n2, effect at 80% power)
            (1000, 1000, 0.1252903452972),
            (4500, 500, 0.1320678561563),
            (300, 120, 0.3026053753455),
        ];
        for (n1, n2, expected) in mdes {
            let actual = minimum_detectable_effect(n1, n2, 0.05, 0.8).expect("defined");
            assert!(
                (actual - expected).abs() < 1e-5,
                "mde({n1}, {n2}) = {actual}"
            );
        }
    }

    #[test]
    fn proportion_at_inverts_cohens_h() {
        let p2 = proportion_at(0.10, cohens_h(0.12, 0.10)).expect("below 100%");
        assert!((p2 - 0.12).abs() < 1e-12);
        assert_eq!(proportion_at(0.9, 1.5), None);
    }

    #[test]
    fn an_empty_group_has_no_power() {
        assert_eq!(power(0.2, 0, 100, 0.05), Err(Undefined::EmptyGroup));
        assert_eq!(
            minimum_detectable_effect(100, 0, 0.05, 0.8),
            Err(Undefined::EmptyGroup)
        );
    }
}
