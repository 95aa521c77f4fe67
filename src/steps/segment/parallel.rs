//! Deterministic data parallelism for the clustering math: rows are cut into fixed blocks, the
//! blocks are shared out to one thread per core, and results come back in block order. Block
//! boundaries do not depend on the number of threads, so sums (and so results) are the same on
//! any machine.

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
    if threads <= 1 {
        return (0..blocks)
            .map(|b| f(b * BLOCK, ((b + 1) * BLOCK).min(rows)))
            .collect();
    }
    let f = &f;
    let mut results: Vec<(usize, T)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (t..blocks)
                        .step_by(threads)
                        .map(|b| (b, f(b * BLOCK, ((b + 1) * BLOCK).min(rows))))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| h.join().expect("a worker thread panicked"))
            .collect()
    });
    results.sort_by_key(|(b, _)| *b);
    results.into_iter().map(|(_, t)| t).collect()
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
    let rows = a.len();
    let blocks = rows.div_ceil(BLOCK);
    let threads = crate::data::cores().min(blocks.max(1));
    // Per thread: (block index, its rows of `a`, its rows of `b`).
    type Share<'s, A, B> = Vec<(usize, &'s mut [A], &'s mut [B])>;
    let mut shares: Vec<Share<'_, A, B>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, (ca, cb)) in a.chunks_mut(BLOCK).zip(b.chunks_mut(BLOCK)).enumerate() {
        shares[i % threads].push((i, ca, cb));
    }
    let f = &f;
    let mut results: Vec<(usize, T)> = if threads <= 1 {
        shares
            .into_iter()
            .flatten()
            .map(|(i, ca, cb)| (i, f(i * BLOCK, ca, cb)))
            .collect()
    } else {
        std::thread::scope(|scope| {
            let handles: Vec<_> = shares
                .into_iter()
                .map(|share| {
                    scope.spawn(move || {
                        share
                            .into_iter()
                            .map(|(i, ca, cb)| (i, f(i * BLOCK, ca, cb)))
                            .collect::<Vec<_>>()
                    })
                })
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn blocks_cover_every_row_once_in_order() {
        let rows = BLOCK * 3 + 17;
        let ranges = map_blocks(rows, |s, e| (s, e));
        assert_eq!(ranges.first(), Some(&(0, BLOCK)));
        assert_eq!(ranges.last(), Some(&(BLOCK * 3, rows)));
        assert!(ranges.windows(2).all(|w| w[0].1 == w[1].0));
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
