//! One row of a batch as a JSON object, for the `rejected` dataset of sources without lines.

use datafusion::arrow::json::LineDelimitedWriter;
use datafusion::arrow::record_batch::RecordBatch;

pub fn row_as_json(batch: &RecordBatch, row: usize) -> String {
    let mut out = Vec::new();
    let mut writer = LineDelimitedWriter::new(&mut out);
    if writer.write(&batch.slice(row, 1)).is_err() || writer.finish().is_err() {
        return String::new();
    }
    drop(writer);
    String::from_utf8_lossy(&out).trim_end().to_string()
}
