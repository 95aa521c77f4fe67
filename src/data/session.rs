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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;
    use std::sync::Arc;

    use datafusion::arrow::array::{Float64Array, Int64Array, RecordBatch, StringArray};
    use datafusion::arrow::compute::cast;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::prelude::ParquetReadOptions;
    use rand::rngs::StdRng;
    use rand::{Rng, SeedableRng};

    use super::*;
    use crate::data::dataset::{DatasetWriter, MAIN_DATASET};

    /// Hash repartitioning must not reorder a group's rows: every group's float sum is added up
    /// in file order, the same bits as a plain loop over the file, however the partitions are
    /// scheduled. (A parallel file scan would break this: its partial sums arrive in whatever
    /// order their byte ranges finish.)
    #[tokio::test]
    async fn a_grouped_float_sum_adds_each_groups_values_in_file_order() {
        // More rows than one Parquet row group holds (1,048,576), so that a parallel scan would
        // have two byte ranges to read at once.
        let rows = 1_200_000;
        let mut rng = StdRng::seed_from_u64(7);
        let keys: Vec<String> = (0..rows)
            .map(|_| format!("C{:06}", rng.random_range(0..200_000)))
            .collect();
        // Magnitudes from 1e-3 to 1e12 and both signs: adding a group's values in any other
        // order than the file's gives other last bits for most groups.
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
        let run = tempfile::tempdir().unwrap();
        let mut writer =
            DatasetWriter::create(run.path(), "t", MAIN_DATASET, schema.clone()).unwrap();
        for start in (0..rows).step_by(8_192) {
            let end = (start + 8_192).min(rows);
            let batch = RecordBatch::try_new(
                schema.clone(),
                vec![
                    Arc::new(StringArray::from(keys[start..end].to_vec())),
                    Arc::new(Float64Array::from(values[start..end].to_vec())),
                ],
            )
            .unwrap();
            writer.write(&batch).unwrap();
        }
        let dataset = writer.finish().unwrap();

        let ctx = ordered_session();
        let path = dataset.path(run.path());
        ctx.register_parquet("t", path.to_str().unwrap(), ParquetReadOptions::default())
            .await
            .unwrap();
        let batches = ctx
            .sql("SELECT k, count(*) AS n, sum(v) AS s FROM t GROUP BY k")
            .await
            .unwrap()
            .collect()
            .await
            .unwrap();

        let mut seen = 0;
        for batch in &batches {
            // DataFusion may hand the key back as a string view.
            let k = cast(batch.column(0), &DataType::Utf8).unwrap();
            let k = k.as_any().downcast_ref::<StringArray>().unwrap();
            let n = batch
                .column(1)
                .as_any()
                .downcast_ref::<Int64Array>()
                .unwrap();
            let s = batch
                .column(2)
                .as_any()
                .downcast_ref::<Float64Array>()
                .unwrap();
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
