//! The DataFusion session every dataset is read with.

use datafusion::prelude::{SessionConfig, SessionContext};

/// A session that reads each dataset file in its own order. DataFusion would split one Parquet
/// file into byte ranges scanned in parallel and hand the batches on as they finish, so a
/// dataset a step wrote `ORDER BY customer_id` would reach the next step shuffled by 8,192-row
/// batch. For the same reason no round-robin repartitioning is added in front of filters and
/// projections: `SELECT ... WHERE` keeps the order of its input. Queries that aggregate or join
/// still run in parallel after the scan (hash repartitioning is left on).
///
/// Aggregates and joins hash their rows into at least 64 partitions (four per core on larger
/// machines): each partition's hash table is then small enough to stay in cache. The data
/// benchmark's GROUP BY of 10,000,000 rows into 1,000,000 customers, joined to the clean
/// customers, took a quarter less time with 64 partitions than with 8 on two cores, and a cache
/// simulation of the query counted 42% fewer last-level read misses (docs/data.md#benchmark).
/// No result changes: each partition still receives its rows in input order.
pub fn ordered_session() -> SessionContext {
    SessionContext::new_with_config(
        SessionConfig::new()
            .with_repartition_file_scans(false)
            .with_round_robin_repartition(false)
            .with_target_partitions(hash_partitions()),
    )
}

/// How many partitions an aggregate or a join hashes its rows into.
fn hash_partitions() -> usize {
    (super::cores() * 4).max(64)
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use datafusion::arrow::array::{AsArray, Float64Array, RecordBatch, StringArray};
    use datafusion::arrow::datatypes::{DataType, Field, Float64Type, Int64Type, Schema};
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use crate::data::{DatasetWriter, MAIN_DATASET, UpstreamStep, as_text, session_with_inputs};

    /// Hash repartitioning must not reorder a group's rows: every group's float sum is added up
    /// in file order, the same bits as a plain loop over the file, however the partitions are
    /// scheduled. (A parallel file scan would break this: its partial sums arrive in whatever
    /// order their byte ranges finish.) The session is the one transform.sql queries.
    #[tokio::test]
    async fn a_grouped_float_sum_adds_each_groups_values_in_file_order() {
        // More rows than one Parquet row group holds (1,048,576), so that a parallel scan would
        // have two byte ranges to read at once.
        let rows = 1_200_000;
        let mut rng = StdRng::seed_from_u64(7);
        let keys: Vec<String> = (0..rows)
            .map(|_| format!("C{:06}", rng.random_range(0..200_000)))
            .collect();
        // Magnitudes from 1e-3 to 1e12 and both signs, so that adding a group's values in
        // another order than the file's can change the last bits of its sum.
        let values: Vec<f64> = (0..rows)
            .map(|_| {
                let sign = if rng.random_bool(0.5) { 1.0 } else { -1.0 };
                sign * rng.random::<f64>() * 10f64.powi(rng.random_range(-3..12))
            })
            .collect();
        let mut expected: HashMap<&str, (i64, f64)> = HashMap::new();
        for (key, value) in keys.iter().zip(&values) {
            let group = expected.entry(key).or_insert((0, 0.0));
            group.0 += 1;
            group.1 += value;
        }

        let schema = Arc::new(Schema::new(vec![
            Field::new("k", DataType::Utf8, false),
            Field::new("v", DataType::Float64, false),
        ]));
        let batch = RecordBatch::try_new(
            schema.clone(),
            vec![
                Arc::new(StringArray::from(keys.clone())),
                Arc::new(Float64Array::from(values)),
            ],
        )
        .unwrap();
        let run = tempfile::tempdir().unwrap();
        let mut writer = DatasetWriter::create(run.path(), "t", MAIN_DATASET, schema).unwrap();
        writer.write(&batch).unwrap();
        let upstream = UpstreamStep {
            id: "t".into(),
            outputs: Default::default(),
            datasets: vec![writer.finish().unwrap()],
        };

        let ctx = session_with_inputs(&[upstream], run.path()).await.unwrap();
        let batches = ctx
            .sql("SELECT k, count(*) AS n, sum(v) AS s FROM t GROUP BY k")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();

        let mut seen = 0;
        for batch in &batches {
            let k = as_text(batch.column(0)).unwrap().expect("the key is text");
            let n = batch.column(1).as_primitive::<Int64Type>();
            let s = batch.column(2).as_primitive::<Float64Type>();
            for i in 0..batch.num_rows() {
                let key = k.value(i);
                let (count, sum) = expected[key];
                assert_eq!(n.value(i), count, "{key}");
                assert_eq!(
                    s.value(i).to_bits(),
                    sum.to_bits(),
                    "{key}: {} against {sum} added in file order",
                    s.value(i)
                );
                seen += 1;
            }
        }
        assert_eq!(seen, expected.len());
    }
}
