//! What the file gatherers do with rows that do not fit (`on_bad_rows`), and the `rejected`
//! dataset that keeps them with their file, line number and reason.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, StringBuilder, UInt64Builder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use schemars::JsonSchema;
use serde::Deserialize;

use crate::data::DatasetRef;
use crate::steps::{StepContext, StepError};

/// The dataset holding rows a gatherer or `clean` set aside.
pub const REJECTED_DATASET: &str = "rejected";

/// What to do with a row that cannot be read (wrong number of fields, a value that does not
/// fit its column's type, a line that is not JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum OnBadRows {
    /// Stop the step at the first bad row, naming its file and line (the default).
    #[default]
    Fail,
    /// Leave bad rows out; their number is the `rejected` output and the log names the first lines.
    Skip,
    /// Leave bad rows out and keep them in the `rejected` dataset (file, line, reason, record).
    Quarantine,
}

/// A row that could not be read.
#[derive(Debug, Clone)]
pub struct BadRow {
    /// The file, as the user named it (relative to the project folder).
    pub file: String,
    /// 1-based line in the file (for Parquet: the row number).
    pub line: u64,
    /// Why, without quoting the data.
    pub reason: String,
    /// The row as it was in the file.
    pub record: String,
}

impl BadRow {
    /// The error a `fail` policy reports.
    pub fn into_error(self) -> StepError {
        StepError::permanent(format!(
            "{} line {}: {}; fix the file, or set `on_bad_rows: skip` (leave such rows out) or \
             `on_bad_rows: quarantine` (keep them in the `rejected` dataset)",
            self.file, self.line, self.reason
        ))
    }
}

/// Collects bad rows as a reader finds them, applying the policy.
#[derive(Debug)]
pub struct BadRows {
    policy: OnBadRows,
    rows: Vec<BadRow>,
    count: u64,
}

impl BadRows {
    pub fn new(policy: OnBadRows) -> Self {
        BadRows {
            policy,
            rows: Vec::new(),
            count: 0,
        }
    }

    /// Records a bad row; under `fail` this is the step's error.
    pub fn add(&mut self, row: BadRow) -> Result<(), StepError> {
        self.count += 1;
        match self.policy {
            OnBadRows::Fail => Err(row.into_error()),
            // Kept for the log's first examples only.
            OnBadRows::Skip if self.rows.len() >= EXAMPLES => Ok(()),
            OnBadRows::Skip | OnBadRows::Quarantine => {
                self.rows.push(row);
                Ok(())
            }
        }
    }

    pub fn count(&self) -> u64 {
        self.count
    }

    /// Logs what was left out and, under `quarantine`, writes the `rejected` dataset.
    pub fn finish(mut self, ctx: &StepContext) -> Result<Option<DatasetRef>, StepError> {
        // Rows that failed on a type are found after those with the wrong shape: restore file order.
        self.rows
            .sort_by(|a, b| a.file.cmp(&b.file).then(a.line.cmp(&b.line)));
        if self.count > 0 {
            let examples: Vec<String> = self
                .rows
                .iter()
                .take(EXAMPLES)
                .map(|r| format!("{} line {} ({})", r.file, r.line, r.reason))
                .collect();
            ctx.warn(&format!(
                "left out {} bad row{}; first: {}",
                self.count,
                if self.count == 1 { "" } else { "s" },
                examples.join("; ")
            ));
        }
        if self.policy != OnBadRows::Quarantine {
            return Ok(None);
        }
        let schema = rejected_schema();
        let mut batches = Vec::new();
        for chunk in self.rows.chunks(8192) {
            batches.push(rejected_batch(&schema, chunk)?);
        }
        Ok(Some(ctx.write_dataset(
            REJECTED_DATASET,
            schema,
            &batches,
        )?))
    }
}

const EXAMPLES: usize = 5;

pub fn rejected_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("file", DataType::Utf8, false),
        Field::new("line", DataType::UInt64, false),
        Field::new("reason", DataType::Utf8, false),
        Field::new("record", DataType::Utf8, false),
    ]))
}

fn rejected_batch(schema: &SchemaRef, rows: &[BadRow]) -> Result<RecordBatch, StepError> {
    let mut file = StringBuilder::new();
    let mut line = UInt64Builder::new();
    let mut reason = StringBuilder::new();
    let mut record = StringBuilder::new();
    for row in rows {
        file.append_value(&row.file);
        line.append_value(row.line);
        reason.append_value(&row.reason);
        record.append_value(&row.record);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(file.finish()),
        Arc::new(line.finish()),
        Arc::new(reason.finish()),
        Arc::new(record.finish()),
    ];
    Ok(RecordBatch::try_new(schema.clone(), columns)?)
}
