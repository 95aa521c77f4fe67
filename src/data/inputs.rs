//! What a step sees of the steps it needs: their outputs and datasets, registered for SQL.

use std::path::Path;
use std::sync::Arc;

use datafusion::catalog::{MemTable, MemorySchemaProvider, SchemaProvider, TableProvider};
use datafusion::prelude::{Expr, ParquetReadOptions, SessionContext, cast, ident};
use serde_json::{Map, Value};

use super::dataset::{DataError, DatasetRef, MAIN_DATASET};
use super::handoff::KeptDataset;

#[derive(Debug, Clone)]
pub struct UpstreamStep {
    pub id: String,
    pub outputs: Map<String, Value>,
    pub datasets: Vec<DatasetRef>,
    /// Those of its datasets this run still has in memory (see `data::handoff`).
    pub kept: Vec<KeptDataset>,
}

impl UpstreamStep {
    pub fn dataset(&self, name: &str) -> Option<&DatasetRef> {
        self.datasets.iter().find(|d| d.name == name)
    }

    /// The batches of dataset `name`, when this run kept them: the same rows as its file.
    pub fn kept(&self, name: &str) -> Option<&KeptDataset> {
        let rows = self.dataset(name)?.rows;
        self.kept
            .iter()
            .find(|k| k.name() == name && k.rows() == rows)
    }

    pub fn main(&self) -> Option<&DatasetRef> {
        self.dataset(MAIN_DATASET)
    }
}

/// A DataFusion session where each upstream main dataset is a table named after its step, and
/// each other dataset is `step.name`. Datasets the run kept in memory are read from there.
pub async fn session_with_inputs(
    inputs: &[UpstreamStep],
    run_dir: &Path,
) -> Result<SessionContext, DataError> {
    let ctx = crate::data::ordered_session();
    for step in inputs {
        let mut extra: Option<Arc<MemorySchemaProvider>> = None;
        for dataset in &step.datasets {
            let path = dataset.path(run_dir);
            let path = path.to_string_lossy();
            let kept = step.kept(&dataset.name);
            if dataset.name == MAIN_DATASET && kept.is_none() {
                ctx.register_parquet(&step.id, path.as_ref(), ParquetReadOptions::default())
                    .await?;
                continue;
            }
            let table = table_of(&ctx, path.as_ref(), kept).await?;
            if dataset.name == MAIN_DATASET {
                ctx.register_table(&step.id, table)?;
            } else {
                let schema = extra.get_or_insert_with(|| Arc::new(MemorySchemaProvider::new()));
                schema.register_table(dataset.name.clone(), table)?;
            }
        }
        if let Some(schema) = extra {
            let catalog = ctx
                .catalog("datafusion")
                .expect("the default catalog exists");
            catalog.register_schema(&step.id, schema)?;
        }
    }
    Ok(ctx)
}

/// The dataset file at `path` as a table, its rows taken from `kept` when the run has them.
///
/// The columns come out with the types a read of the file gives (text as Utf8View, as
/// DataFusion reads Parquet), so that no query's result depends on where its input came from.
async fn table_of(
    ctx: &SessionContext,
    path: &str,
    kept: Option<&KeptDataset>,
) -> Result<Arc<dyn TableProvider>, DataError> {
    let file = ctx
        .read_parquet(path, ParquetReadOptions::default())
        .await?;
    let Some(kept) = kept else {
        return Ok(file.into_view());
    };
    let have = kept.schema();
    let want = file.schema();
    let same_names = have.fields().len() == want.fields().len()
        && have
            .fields()
            .iter()
            .zip(want.fields())
            .all(|(h, w)| h.name() == w.name());
    if !same_names {
        return Ok(file.into_view());
    }
    let columns: Vec<Expr> = have
        .fields()
        .iter()
        .zip(want.fields())
        .map(|(h, w)| {
            let column = ident(h.name());
            if h.data_type() == w.data_type() {
                column
            } else {
                cast(column, w.data_type().clone()).alias(h.name())
            }
        })
        .collect();
    // One partition, the batches in the order they were written: the order a read of the file
    // gives (the session splits no scan).
    let table = MemTable::try_new(have, vec![kept.batches().to_vec()])?;
    Ok(ctx
        .read_table(Arc::new(table))?
        .select(columns)?
        .into_view())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::data::{DatasetWriter, Handoff};
    use datafusion::arrow::array::{
        BooleanArray, Date32Array, Float64Array, Int64Array, ListArray, RecordBatch, StringArray,
        TimestampMicrosecondArray,
    };
    use datafusion::arrow::compute::concat_batches;
    use datafusion::arrow::datatypes::{DataType, Field, Int64Type, Schema};

    /// 5,000 rows of every kind of column a step writes, nulls included.
    fn table() -> RecordBatch {
        let rows = 5_000;
        let schema = Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, false),
            Field::new("Email", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
            Field::new("active", DataType::Boolean, true),
            Field::new("signup", DataType::Date32, true),
            Field::new(
                "seen_at",
                DataType::Timestamp(
                    datafusion::arrow::datatypes::TimeUnit::Microsecond,
                    Some("UTC".into()),
                ),
                true,
            ),
            Field::new(
                "tags",
                DataType::List(Arc::new(Field::new_list_field(DataType::Int64, true))),
                true,
            ),
        ]));
        let some = |i: usize| i % 7 != 3;
        RecordBatch::try_new(
            schema,
            vec![
                Arc::new(Int64Array::from_iter_values(0..rows as i64)),
                Arc::new(StringArray::from_iter(
                    (0..rows).map(|i| some(i).then(|| format!("c{}@example.com", i % 640))),
                )),
                Arc::new(Float64Array::from_iter(
                    (0..rows).map(|i| some(i).then_some(i as f64 * 0.37 - 900.0)),
                )),
                Arc::new(BooleanArray::from_iter(
                    (0..rows).map(|i| some(i).then_some(i % 2 == 0)),
                )),
                Arc::new(Date32Array::from_iter(
                    (0..rows).map(|i| some(i).then_some(9_000 + i as i32 % 900)),
                )),
                Arc::new(
                    TimestampMicrosecondArray::from_iter(
                        (0..rows).map(|i| some(i).then_some(i as i64 * 1_000_003)),
                    )
                    .with_timezone("UTC"),
                ),
                Arc::new(ListArray::from_iter_primitive::<Int64Type, _, _>(
                    (0..rows).map(|i| some(i).then(|| vec![Some(i as i64), None])),
                )),
            ],
        )
        .unwrap()
    }

    /// The table written as step `t`'s main and `rejected` datasets in batches of 700 rows;
    /// with the batches kept when `keep`.
    fn upstream(run: &Path, keep: bool) -> UpstreamStep {
        let handoff = Handoff::new(if keep { 64 << 20 } else { 0 });
        let table = table();
        let mut datasets = Vec::new();
        let mut kept = Vec::new();
        for name in [MAIN_DATASET, "rejected"] {
            let mut writer = DatasetWriter::create(run, "t", name, table.schema())
                .unwrap()
                .keep_in(&handoff);
            for start in (0..table.num_rows()).step_by(700) {
                let len = 700.min(table.num_rows() - start);
                writer.write(&table.slice(start, len)).unwrap();
            }
            let (dataset, batches) = writer.finish_kept().unwrap();
            datasets.push(dataset);
            kept.extend(batches);
        }
        assert_eq!(kept.len(), if keep { 2 } else { 0 });
        UpstreamStep {
            id: "t".into(),
            outputs: Default::default(),
            datasets,
            kept,
        }
    }

    async fn query(upstream: &UpstreamStep, run: &Path, sql: &str) -> RecordBatch {
        let ctx = session_with_inputs(std::slice::from_ref(upstream), run)
            .await
            .unwrap();
        let frame = ctx.sql(sql).await.unwrap();
        let schema = Arc::new(frame.schema().as_arrow().clone());
        let batches = frame.collect().await.unwrap();
        concat_batches(&schema, &batches).unwrap()
    }

    /// A query's result must not depend on whether its input came from memory or from the file:
    /// the same columns, the same types (text as the Utf8View a Parquet read gives), the same
    /// rows in the same order.
    #[tokio::test]
    async fn a_kept_dataset_queries_exactly_as_its_file_does() {
        let run = tempfile::tempdir().unwrap();
        let from_memory = upstream(&run.path().join("kept"), true);
        let from_file = upstream(&run.path().join("file"), false);
        for sql in [
            "SELECT * FROM t",
            r#"SELECT id, "Email", tags FROM t WHERE amount > 10 AND active"#,
            r#"SELECT "Email", count(*) AS n, sum(amount) AS total, max(seen_at) AS last
               FROM t GROUP BY "Email" ORDER BY "Email" NULLS FIRST"#,
            "SELECT * FROM t.rejected LIMIT 1234",
            "SELECT a.id, b.signup FROM t a JOIN t.rejected b ON a.id = b.id ORDER BY a.id",
        ] {
            let memory = query(&from_memory, &run.path().join("kept"), sql).await;
            let file = query(&from_file, &run.path().join("file"), sql).await;
            assert_eq!(memory.schema(), file.schema(), "{sql}");
            assert_eq!(memory, file, "{sql}");
            assert!(memory.num_rows() > 0, "{sql}");
        }
        let all = query(&from_memory, &run.path().join("kept"), "SELECT * FROM t").await;
        assert_eq!(all.schema().field(1).data_type(), &DataType::Utf8View);
        assert_eq!(all.num_rows(), 5_000);
    }

    /// Batches that do not have the file's rows (another attempt's, say) are not used.
    #[test]
    fn kept_batches_are_used_only_when_they_hold_the_datasets_rows() {
        let run = tempfile::tempdir().unwrap();
        let mut step = upstream(run.path(), true);
        assert!(step.kept(MAIN_DATASET).is_some());
        step.datasets[0].rows += 1;
        assert!(step.kept(MAIN_DATASET).is_none());
        assert!(step.kept("rejected").is_some());
    }
}
