//! The DataFusion session every dataset is read with.

use datafusion::prelude::{SessionConfig, SessionContext};

/// A session that reads each dataset file in its own order. DataFusion would split one Parquet
/// file into byte ranges scanned in parallel and hand the batches on as they finish, so a
/// dataset a step wrote `ORDER BY customer_id` would reach the next step shuffled by 8,192-row
/// batch. For the same reason no round-robin repartitioning is added in front of filters and
/// projections: `SELECT ... WHERE` keeps the order of its input. Queries that aggregate or join
/// still run in parallel after the scan (hash repartitioning is left on).
///
/// Aggregates and joins hash their rows into four partitions per core rather than one: each
/// partition's hash table is then small enough to stay in cache, which made the data benchmark's
/// GROUP BY of 10,000,000 rows into 1,000,000 customers 15–20% faster on two cores (and changes
/// no result: each partition still receives its rows in input order).
pub fn ordered_session() -> SessionContext {
    SessionContext::new_with_config(
        SessionConfig::new()
            .with_repartition_file_scans(false)
            .with_round_robin_repartition(false)
            .with_target_partitions(super::cores() * 4),
    )
}
