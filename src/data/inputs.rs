//! What a step sees of the steps it needs: their outputs and datasets, registered for SQL.

use std::path::Path;
use std::sync::Arc;

use datafusion::catalog::{MemorySchemaProvider, SchemaProvider};
use datafusion::prelude::{ParquetReadOptions, SessionContext};
use serde_json::{Map, Value};

use super::dataset::{DataError, DatasetRef, MAIN_DATASET};

#[derive(Debug, Clone)]
pub struct UpstreamStep {
    pub id: String,
    pub outputs: Map<String, Value>,
    pub datasets: Vec<DatasetRef>,
}

impl UpstreamStep {
    pub fn dataset(&self, name: &str) -> Option<&DatasetRef> {
        self.datasets.iter().find(|d| d.name == name)
    }

    pub fn main(&self) -> Option<&DatasetRef> {
        self.dataset(MAIN_DATASET)
    }
}

/// A DataFusion session where each upstream main dataset is a table named after its step, and
/// each other dataset is `step.name`.
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
            if dataset.name == MAIN_DATASET {
                ctx.register_parquet(&step.id, path.as_ref(), ParquetReadOptions::default())
                    .await?;
            } else {
                let schema = extra.get_or_insert_with(|| Arc::new(MemorySchemaProvider::new()));
                let table = ctx
                    .read_parquet(path.as_ref(), ParquetReadOptions::default())
                    .await?
                    .into_view();
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
