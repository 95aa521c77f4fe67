//! Quantile scores (1..=bins) for RFM.
//!
//! The tie rule: equal values always share a score. A value's score comes from its *minimum
//! rank* — the position of the first of its ties once the values are sorted (pandas
//! `rank(method="min")`): `score = 1 + floor(bins * (rank - 1) / n)`. Scores so split the
//! customers into `bins` groups as equal as the ties allow; when many customers share a value
//! (most CDNOW customers bought once) the score above theirs can stay empty. Nothing depends on
//! row order or customer ids, so the same data always gives the same scores.

/// Scores in 1..=bins, higher values higher scores. `values` must hold no NaN.
pub fn scores(values: &[f64], bins: u8) -> Vec<u8> {
    let n = values.len();
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&a, &b| values[a].total_cmp(&values[b]));
    let mut out = vec![0u8; n];
    let mut start = 0;
    while start < n {
        let value = values[order[start]];
        let mut end = start + 1;
        while end < n && values[order[end]] == value {
            end += 1;
        }
        // `start` is the 0-based minimum rank of this run of ties.
        let score = 1 + (bins as usize * start / n) as u8;
        for &i in &order[start..end] {
            out[i] = score;
        }
        start = end;
    }
    out
}

/// Scores where lower values score higher (recency: fewer days since the last order is better).
pub fn reversed_scores(values: &[f64], bins: u8) -> Vec<u8> {
    let negated: Vec<f64> = values.iter().map(|v| -v).collect();
    scores(&negated, bins)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distinct_values_fill_equal_bins() {
        let values: Vec<f64> = (1..=10).map(f64::from).collect();
        assert_eq!(scores(&values, 5), [1, 1, 2, 2, 3, 3, 4, 4, 5, 5]);
    }

    #[test]
    fn equal_values_share_the_score_of_the_first_of_them() {
        // Six of ten customers bought once: they all score 1, whatever their order.
        let values = [1.0, 1.0, 3.0, 1.0, 1.0, 2.0, 1.0, 5.0, 1.0, 4.0];
        assert_eq!(scores(&values, 5), [1, 1, 4, 1, 1, 4, 1, 5, 1, 5]);
    }

    #[test]
    fn the_scores_do_not_depend_on_row_order() {
        let values = [5.0, 2.0, 2.0, 9.0, 1.0, 2.0, 7.0];
        let reversed: Vec<f64> = values.iter().rev().copied().collect();
        let mut back = scores(&reversed, 3);
        back.reverse();
        assert_eq!(scores(&values, 3), back);
    }

    #[test]
    fn recency_is_reversed() {
        let days = [10.0, 300.0, 50.0, 5.0];
        assert_eq!(reversed_scores(&days, 4), [3, 1, 2, 4]);
    }
}
