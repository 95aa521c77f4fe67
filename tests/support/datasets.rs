//! Reading what a run wrote: a step's dataset as JSON rows, its report.

use std::fs::File;

use datafusion::arrow::json::ArrayWriter;
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;
use serde_json::{Map, Value};

use super::Project;

impl Project {
    /// The rows of `<step>/<name>.parquet` of a run, as JSON objects (nulls left out).
    pub fn dataset(&self, run_id: &str, step: &str, name: &str) -> Vec<Map<String, Value>> {
        let path = self
            .path(".segflow/runs")
            .join(run_id)
            .join(step)
            .join(format!("{name}.parquet"));
        let file = File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .expect("a parquet file")
            .build()
            .expect("a reader");
        let mut writer = ArrayWriter::new(Vec::new());
        for batch in reader {
            writer
                .write(&batch.expect("a batch"))
                .expect("rows as JSON");
        }
        writer.finish().expect("JSON");
        let bytes = writer.into_inner();
        if bytes.is_empty() {
            return Vec::new();
        }
        serde_json::from_slice::<Vec<Map<String, Value>>>(&bytes).expect("JSON rows")
    }

    /// A step's `report.json` in a run.
    pub fn report(&self, run_id: &str, step: &str) -> Value {
        let path = self
            .path(".segflow/runs")
            .join(run_id)
            .join(step)
            .join("report.json");
        let text =
            std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        serde_json::from_str(&text).expect("report JSON")
    }

    /// A step's `report.md` in a run.
    pub fn report_markdown(&self, run_id: &str, step: &str) -> String {
        let path = self
            .path(".segflow/runs")
            .join(run_id)
            .join(step)
            .join("report.md");
        std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }

    /// Copies the CDNOW transactions into the project as `data/cdnow_transactions.csv`.
    pub fn with_cdnow(&self) -> &Self {
        let source =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("data/cdnow_transactions.csv");
        let target = self.path("data/cdnow_transactions.csv");
        std::fs::create_dir_all(target.parent().expect("a folder")).expect("data folder");
        std::fs::copy(&source, &target).expect("copy CDNOW data");
        self
    }
}
