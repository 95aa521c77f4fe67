//! Deterministic data parallelism (the clustering math, clean's per-value operations): rows are
//! cut into fixed blocks, the blocks are shared out to one thread per core, and results come back
//! in block order. Block boundaries do not depend on the number of threads, so sums (and so
//! results) are the same on any machine.

use datafusion::arrow::array::{Array, ArrayRef, StringArray};
use datafusion::arrow::compute::concat;
use datafusion::arrow::error::ArrowError;

/// Rows per block: big enough to keep thread overhead small, small enough to balance load.
pub const BLOCK: usize = 8192;

/// `f(start, end)` for each block of `0..rows`; the results in block order.
pub fn map_blocks<T, F>(rows: usize, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize, usize) -> T + Sync,
{
    let blocks = rows.div_ceil(BLOCK);
    let threads = crate::data::cores().min(blocks.max(1));
    let shares = (0..threads)
        .map(|t| (t..blocks).step_by(threads).map(|b| (b, ())).collect())
        .collect();
    run_shares(shares, |b, ()| f(b * BLOCK, ((b + 1) * BLOCK).min(rows)))
}

/// Like `map_blocks`, with each block also given its slices of two per-row output buffers.
pub fn map_blocks_mut<A, B, T, F>(a: &mut [A], b: &mut [B], f: F) -> Vec<T>
where
    A: Send,
    B: Send,
    T: Send,
    F: Fn(usize, &mut [A], &mut [B]) -> T + Sync,
{
    assert_eq!(a.len(), b.len(), "per-row buffers have one entry per row");
    let blocks = a.len().div_ceil(BLOCK);
    let threads = crate::data::cores().min(blocks.max(1));
    let mut shares: Vec<Vec<_>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, rows) in a.chunks_mut(BLOCK).zip(b.chunks_mut(BLOCK)).enumerate() {
        shares[i % threads].push((i, rows));
    }
    run_shares(shares, |i, (ca, cb)| f(i * BLOCK, ca, cb))
}

/// `f(i, item)` for each item, the items shared out to one thread per core in turn; the
/// results in item order.
pub fn map_each<S, T, F>(items: Vec<S>, f: F) -> Vec<T>
where
    S: Send,
    T: Send,
    F: Fn(usize, S) -> T + Sync,
{
    let threads = crate::data::cores().min(items.len()).max(1);
    let mut shares: Vec<Vec<_>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, item) in items.into_iter().enumerate() {
        shares[i % threads].push((i, item));
    }
    run_shares(shares, f)
}

/// Runs each share of numbered blocks on a thread of its own (on this one when there is one
/// share) and gives the results in block order.
fn run_shares<S, T, F>(shares: Vec<Vec<(usize, S)>>, f: F) -> Vec<T>
where
    S: Send,
    T: Send,
    F: Fn(usize, S) -> T + Sync,
{
    let f = &f;
    let run = move |share: Vec<(usize, S)>| -> Vec<(usize, T)> {
        share.into_iter().map(|(i, s)| (i, f(i, s))).collect()
    };
    let mut results: Vec<(usize, T)> = if shares.len() <= 1 {
        shares.into_iter().flat_map(run).collect()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = shares
                .into_iter()
                .map(|share| scope.spawn(move || run(share)))
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().expect("a worker thread panicked"))
                .collect()
        })
    };
    results.sort_by_key(|(b, _)| *b);
    results.into_iter().map(|(_, t)| t).collect()
}

/// `f` on each block of `array`'s rows (a slice, not a copy); the results in block order.
pub fn map_slices<T, F>(array: &ArrayRef, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(ArrayRef) -> T + Sync,
{
    map_spans(array.len(), |offset, length| f(array.slice(offset, length)))
}

/// `map_slices` for a text column, each block given as text.
pub fn map_text_slices<T, F>(text: &StringArray, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(&StringArray) -> T + Sync,
{
    map_spans(text.len(), |offset, length| f(&text.slice(offset, length)))
}

/// `f(offset, length)` for each block of `0..rows`; an empty column is one empty block, so
/// there is always a result to join (with the type the operation gives).
fn map_spans<T, F>(rows: usize, f: F) -> Vec<T>
where
    T: Send,
    F: Fn(usize, usize) -> T + Sync,
{
    if rows == 0 {
        return vec![f(0, 0)];
    }
    map_blocks(rows, |start, end| f(start, end - start))
}

/// Blocks' arrays (from `map_slices`, so at least one) joined back into one column.
pub fn join_blocks(blocks: &[ArrayRef]) -> Result<ArrayRef, ArrowError> {
    match blocks {
        [one] => Ok(one.clone()),
        // Arrow refuses an empty list with an error of its own.
        many => {
            let parts: Vec<&dyn Array> = many.iter().map(AsRef::as_ref).collect();
            concat(&parts)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_item_is_mapped_once_and_the_results_keep_item_order() {
        let items: Vec<String> = (0..11).map(|i| format!("c{i}")).collect();
        let mapped = map_each(items.clone(), |i, item| format!("{i}:{item}"));
        let expected: Vec<String> = (0..11).map(|i| format!("{i}:c{i}")).collect();
        assert_eq!(mapped, expected);
        assert!(map_each(Vec::<u8>::new(), |_, x| x).is_empty());
    }

    #[test]
    fn blocks_cover_every_row_once_in_order() {
        let rows = BLOCK * 3 + 17;
        let ranges = map_blocks(rows, |s, e| (s, e));
        assert_eq!(ranges.first(), Some(&(0, BLOCK)));
        assert_eq!(ranges.last(), Some(&(BLOCK * 3, rows)));
        assert!(ranges.windows(2).all(|w| w[0].1 == w[1].0));
    }

    #[test]
    fn sliced_blocks_join_back_into_the_column() {
        use datafusion::arrow::array::Int64Array;
        use std::sync::Arc;
        let rows = BLOCK * 2 + 3;
        let column: ArrayRef = Arc::new(Int64Array::from_iter_values(0..rows as i64));
        let blocks = map_slices(&column, |block| {
            let values = block.as_any().downcast_ref::<Int64Array>().unwrap();
            Arc::new(
                values
                    .iter()
                    .map(|v| v.map(|v| v * 2))
                    .collect::<Int64Array>(),
            ) as ArrayRef
        });
        assert_eq!(blocks.len(), 3);
        let joined = join_blocks(&blocks).unwrap();
        let joined = joined.as_any().downcast_ref::<Int64Array>().unwrap();
        assert!(
            joined
                .values()
                .iter()
                .enumerate()
                .all(|(i, v)| *v == 2 * i as i64)
        );
        let empty = column.slice(0, 0);
        let none = map_slices(&empty, |block| block.len());
        assert_eq!(none, [0], "an empty column is one empty block");
    }

    #[test]
    fn mutable_blocks_write_their_own_rows() {
        let rows = BLOCK * 2 + 5;
        let mut a = vec![0usize; rows];
        let mut b = vec![0u8; rows];
        let starts = map_blocks_mut(&mut a, &mut b, |start, a, b| {
            for (i, v) in a.iter_mut().enumerate() {
                *v = start + i;
            }
            b.fill(1);
            start
        });
        assert_eq!(starts, [0, BLOCK, 2 * BLOCK]);
        assert!(a.iter().enumerate().all(|(i, v)| i == *v));
        assert!(b.iter().all(|v| *v == 1));
    }
}
