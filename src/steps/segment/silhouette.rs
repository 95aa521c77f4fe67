//! The silhouette of a clustering, on a sample of rows (the full computation is quadratic).
//!
//! For a row, a = mean distance to the other rows of its cluster, b = the lowest mean distance
//! to the rows of another cluster, s = (b - a) / max(a, b); a row alone in its cluster scores 0
//! (as scikit-learn). The silhouette is the mean s over the sample, from -1 to 1, higher is
//! better separated. Distances are Euclidean.

use rand::SeedableRng;
use rand::rngs::StdRng;

use super::kmeans_fit::Matrix;
use crate::data::parallel::map_blocks;

/// Which rows the silhouette is computed on: all of them when there are at most `size`,
/// else `size` rows drawn with the seed (sorted, so the draw does not depend on row order
/// beyond the row numbers).
pub fn sample_rows(rows: usize, size: usize, seed: u64) -> Vec<usize> {
    if rows <= size {
        return (0..rows).collect();
    }
    let mut rng = StdRng::seed_from_u64(seed);
    let mut picked = rand::seq::index::sample(&mut rng, rows, size).into_vec();
    picked.sort_unstable();
    picked
}

/// The mean silhouette of the sampled rows, or `None` when the sample holds fewer than two
/// clusters (the silhouette is not defined then).
pub fn silhouette(x: Matrix<'_>, labels: &[u32], k: usize, sample: &[usize]) -> Option<f64> {
    let sample_labels: Vec<usize> = sample.iter().map(|&i| labels[i] as usize).collect();
    let mut sizes = vec![0usize; k];
    for &l in &sample_labels {
        sizes[l] += 1;
    }
    if sizes.iter().filter(|&&s| s > 0).count() < 2 {
        return None;
    }
    let per_block = map_blocks(sample.len(), |start, end| {
        let mut sum = 0.0;
        let mut totals = vec![0.0; k];
        for a in start..end {
            totals.fill(0.0);
            let row = x.row(sample[a]);
            for (b, &other) in sample.iter().enumerate() {
                if a != b {
                    let d: f64 = row
                        .iter()
                        .zip(x.row(other))
                        .map(|(p, q)| (p - q) * (p - q))
                        .sum();
                    totals[sample_labels[b]] += d.sqrt();
                }
            }
            let own = sample_labels[a];
            if sizes[own] <= 1 {
                continue;
            }
            let inside = totals[own] / (sizes[own] - 1) as f64;
            let outside = (0..k)
                .filter(|&c| c != own && sizes[c] > 0)
                .map(|c| totals[c] / sizes[c] as f64)
                .fold(f64::INFINITY, f64::min);
            let spread = inside.max(outside);
            if spread > 0.0 {
                sum += (outside - inside) / spread;
            }
        }
        sum
    });
    Some(per_block.into_iter().sum::<f64>() / sample.len() as f64)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_hand_computed_value() {
        // Rows 0, 1 (cluster 0) and 10, 12 (cluster 1) on a line.
        // Row 0: a = 1, b = (10 + 12) / 2 = 11, s = 10/11. Row 1: a = 1, b = 10, s = 0.9.
        // Row 10: a = 2, b = (10 + 9) / 2 = 9.5, s = 7.5/9.5. Row 12: a = 2, b = 11.5, s = 9.5/11.5.
        let data = [0.0, 1.0, 10.0, 12.0];
        let labels = [0, 0, 1, 1];
        let got = silhouette(Matrix::new(&data, 1), &labels, 2, &[0, 1, 2, 3]).expect("defined");
        let expected = (10.0 / 11.0 + 0.9 + 7.5 / 9.5 + 9.5 / 11.5) / 4.0;
        assert!((got - expected).abs() < 1e-12, "{got} vs {expected}");
    }

    #[test]
    fn undefined_for_one_cluster() {
        let data = [0.0, 1.0];
        assert_eq!(silhouette(Matrix::new(&data, 1), &[0, 0], 2, &[0, 1]), None);
    }

    #[test]
    fn the_sample_depends_on_the_seed_only() {
        assert_eq!(sample_rows(1000, 10, 5), sample_rows(1000, 10, 5));
        assert_ne!(sample_rows(1000, 10, 5), sample_rows(1000, 10, 6));
        assert_eq!(sample_rows(5, 10, 5), [0, 1, 2, 3, 4]);
    }
}
