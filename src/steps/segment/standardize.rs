//! Putting features on one scale before clustering, and back to their own units after.

use schemars::JsonSchema;
use serde::Deserialize;

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scaling {
    /// (x - mean) / standard deviation (population), as scikit-learn's StandardScaler.
    #[default]
    Zscore,
    /// (x - min) / (max - min): every feature from 0 to 1.
    Minmax,
    /// The features as they are.
    None,
}

/// Per feature: `scaled = (x - shift) / scale`.
#[derive(Debug, Clone, PartialEq)]
pub struct Scaler {
    pub shift: Vec<f64>,
    pub scale: Vec<f64>,
    /// Features whose values are all the same (their scale is left at 1).
    pub constant: Vec<usize>,
}

impl Scaler {
    /// Fits the scaler on `data` (rows of `cols` numbers).
    pub fn fit(scaling: Scaling, data: &[f64], cols: usize) -> Self {
        let rows = (data.len() / cols).max(1) as f64;
        let mut shift = vec![0.0; cols];
        let mut scale = vec![1.0; cols];
        let mut constant = Vec::new();
        for j in 0..cols {
            let column = data.iter().skip(j).step_by(cols);
            let (s, spread) = match scaling {
                Scaling::None => (0.0, 1.0),
                Scaling::Zscore => {
                    let mean = column.clone().sum::<f64>() / rows;
                    let var = column.map(|v| (v - mean).powi(2)).sum::<f64>() / rows;
                    (mean, var.sqrt())
                }
                Scaling::Minmax => {
                    let (lo, hi) = column
                        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &v| {
                            (lo.min(v), hi.max(v))
                        });
                    (lo, hi - lo)
                }
            };
            shift[j] = s;
            if scaling != Scaling::None {
                if spread > 0.0 && spread.is_finite() {
                    scale[j] = spread;
                } else {
                    constant.push(j);
                }
            }
        }
        Scaler {
            shift,
            scale,
            constant,
        }
    }

    pub fn apply(&self, data: &mut [f64]) {
        let cols = self.shift.len();
        for row in data.chunks_exact_mut(cols) {
            for (j, v) in row.iter_mut().enumerate() {
                *v = (*v - self.shift[j]) / self.scale[j];
            }
        }
    }

    pub fn invert(&self, data: &mut [f64]) {
        let cols = self.shift.len();
        for row in data.chunks_exact_mut(cols) {
            for (j, v) in row.iter_mut().enumerate() {
                *v = *v * self.scale[j] + self.shift[j];
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn zscore_centres_and_scales_and_inverts() {
        let mut data = vec![1.0, 10.0, 3.0, 10.0];
        let scaler = Scaler::fit(Scaling::Zscore, &data, 2);
        assert_eq!(scaler.shift, [2.0, 10.0]);
        assert_eq!(scaler.scale, [1.0, 1.0]);
        assert_eq!(scaler.constant, [1], "the second feature never changes");
        let original = data.clone();
        scaler.apply(&mut data);
        assert_eq!(data, [-1.0, 0.0, 1.0, 0.0]);
        scaler.invert(&mut data);
        assert_eq!(data, original);
    }

    #[test]
    fn minmax_maps_to_zero_one() {
        let mut data = vec![2.0, 4.0, 6.0];
        let scaler = Scaler::fit(Scaling::Minmax, &data, 1);
        scaler.apply(&mut data);
        assert_eq!(data, [0.0, 0.5, 1.0]);
    }
}
