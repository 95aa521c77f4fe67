//! Batches the endpoint refused for good (and rows that could not be sent), kept as the
//! step's `dead_letter` dataset with the endpoint's answer, so nothing is lost silently.

use std::sync::Arc;

use datafusion::arrow::array::{StringBuilder, UInt16Builder, UInt64Builder};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;

use super::preset::Action;
use crate::data::{DataError, DatasetRef};
use crate::steps::StepContext;

pub const DATASET: &str = "dead_letter";
/// Answers are cut to this many bytes.
const MAX_RESPONSE: usize = 64 * 1024;

#[derive(Debug, Clone)]
pub struct DeadLetter {
    pub action: Action,
    pub batch: Option<u64>,
    pub idempotency_key: Option<String>,
    pub status: Option<u16>,
    pub reason: String,
    pub response: Option<String>,
    /// The customer keys concerned.
    pub keys: Vec<String>,
    /// The request body, when a request was made.
    pub body: Option<String>,
}

impl DeadLetter {
    pub fn records(&self) -> usize {
        self.keys.len()
    }
}

pub fn response_text(bytes: &[u8]) -> String {
    let cut = &bytes[..bytes.len().min(MAX_RESPONSE)];
    String::from_utf8_lossy(cut).into_owned()
}

fn schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("action", DataType::Utf8, false),
        Field::new("batch", DataType::UInt64, true),
        Field::new("idempotency_key", DataType::Utf8, true),
        Field::new("status", DataType::UInt16, true),
        Field::new("reason", DataType::Utf8, false),
        Field::new("response", DataType::Utf8, true),
        Field::new("record_count", DataType::UInt64, false),
        Field::new("keys", DataType::Utf8, false),
        Field::new("body", DataType::Utf8, true),
    ]))
}

/// Writes the dead letters as the step's `dead_letter` dataset.
pub fn write(ctx: &StepContext, letters: &[DeadLetter]) -> Result<DatasetRef, DataError> {
    let mut action = StringBuilder::new();
    let mut batch = UInt64Builder::new();
    let mut key = StringBuilder::new();
    let mut status = UInt16Builder::new();
    let mut reason = StringBuilder::new();
    let mut response = StringBuilder::new();
    let mut count = UInt64Builder::new();
    let mut keys = StringBuilder::new();
    let mut body = StringBuilder::new();
    for letter in letters {
        action.append_value(letter.action.name());
        batch.append_option(letter.batch);
        key.append_option(letter.idempotency_key.as_deref());
        status.append_option(letter.status);
        reason.append_value(&letter.reason);
        response.append_option(letter.response.as_deref());
        count.append_value(letter.keys.len() as u64);
        keys.append_value(serde_json::to_string(&letter.keys).expect("strings serialize"));
        body.append_option(letter.body.as_deref());
    }
    let schema = schema();
    let columns: Vec<datafusion::arrow::array::ArrayRef> = vec![
        Arc::new(action.finish()),
        Arc::new(batch.finish()),
        Arc::new(key.finish()),
        Arc::new(status.finish()),
        Arc::new(reason.finish()),
        Arc::new(response.finish()),
        Arc::new(count.finish()),
        Arc::new(keys.finish()),
        Arc::new(body.finish()),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)
        .expect("the columns match the dead-letter schema");
    ctx.write_dataset(DATASET, schema, &[batch])
}
