//! Running mean and variance of one arm's metric (Welford's method: stable for revenue-sized
//! values where sum-of-squares formulas lose every digit).

/// Count, mean and sum of squared deviations of the values seen so far.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Moments {
    n: u64,
    mean: f64,
    m2: f64,
}

impl Moments {
    pub fn push(&mut self, x: f64) {
        self.n += 1;
        let delta = x - self.mean;
        self.mean += delta / self.n as f64;
        self.m2 += delta * (x - self.mean);
    }

    pub fn from_values(values: &[f64]) -> Self {
        let mut moments = Moments::default();
        for &x in values {
            moments.push(x);
        }
        moments
    }

    /// Combines two summaries (Chan et al.), as if every value had been pushed into one.
    pub fn merge(&mut self, other: &Moments) {
        if other.n == 0 {
            return;
        }
        if self.n == 0 {
            *self = *other;
            return;
        }
        let n = self.n + other.n;
        let delta = other.mean - self.mean;
        self.mean += delta * other.n as f64 / n as f64;
        self.m2 += other.m2 + delta * delta * (self.n as f64 * other.n as f64) / n as f64;
        self.n = n;
    }

    pub fn n(&self) -> u64 {
        self.n
    }

    /// The mean; 0 for no values (callers check `n` first).
    pub fn mean(&self) -> f64 {
        self.mean
    }

    pub fn sum(&self) -> f64 {
        self.mean * self.n as f64
    }

    /// The sample variance (n − 1 in the denominator), for n ≥ 2.
    pub fn sample_variance(&self) -> Option<f64> {
        (self.n >= 2).then(|| (self.m2 / (self.n - 1) as f64).max(0.0))
    }
}

/// What the tests need of one arm: its size, mean and per-unit variance.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ArmSummary {
    pub n: u64,
    pub mean: f64,
    /// Per-unit variance: p(1 − p) for a proportion (as GrowthBook), the sample variance
    /// (n − 1) for a mean.
    pub variance: f64,
}

impl ArmSummary {
    /// A conversion rate: `conversions` of `n`.
    pub fn proportion(conversions: u64, n: u64) -> Self {
        let p = if n == 0 {
            0.0
        } else {
            conversions as f64 / n as f64
        };
        ArmSummary {
            n,
            mean: p,
            variance: p * (1.0 - p),
        }
    }

    /// A mean; the variance is 0 below 2 values (callers check `n`).
    pub fn mean(moments: &Moments) -> Self {
        ArmSummary {
            n: moments.n(),
            mean: moments.mean(),
            variance: moments.sample_variance().unwrap_or(0.0),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn welford_matches_the_two_pass_variance_on_large_offsets() {
        // Revenue-like values around 1e9: the naive sum-of-squares formula loses them all.
        let offsets: Vec<f64> = (0..1000).map(|i| (i % 7) as f64).collect();
        let values: Vec<f64> = offsets.iter().map(|o| 1e9 + o).collect();
        // The variance does not depend on the offset: compute it exactly on the small values.
        let mean = offsets.iter().sum::<f64>() / 1000.0;
        let var = offsets.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / 999.0;
        let moments = Moments::from_values(&values);
        assert!((moments.mean() - (1e9 + mean)).abs() < 1e-6);
        let welford = moments.sample_variance().unwrap();
        assert!((welford - var).abs() < 1e-6 * var, "{welford} vs {var}");
        // What the naive formula gives, to show the test would catch it.
        let n = values.len() as f64;
        let naive = (values.iter().map(|x| x * x).sum::<f64>()
            - values.iter().sum::<f64>().powi(2) / n)
            / (n - 1.0);
        assert!((naive - var).abs() > 1e-3 * var, "naive {naive}");
    }

    #[test]
    fn merging_equals_pushing_everything() {
        let a = [1.0, 4.0, 9.0, 2.5];
        let b = [3.0, 3.5, 10.0];
        let mut merged = Moments::from_values(&a);
        merged.merge(&Moments::from_values(&b));
        let all = Moments::from_values(&[a.as_slice(), b.as_slice()].concat());
        assert_eq!(merged.n(), all.n());
        assert!((merged.mean() - all.mean()).abs() < 1e-12);
        assert!((merged.sample_variance().unwrap() - all.sample_variance().unwrap()).abs() < 1e-12);
        let mut empty = Moments::default();
        empty.merge(&all);
        assert_eq!(empty, all);
    }

    #[test]
    fn variance_needs_two_values() {
        assert_eq!(Moments::from_values(&[5.0]).sample_variance(), None);
        assert_eq!(Moments::default().sample_variance(), None);
    }
}
