//! The careful CSV reader: row by row, so a row with the wrong number of fields or a value that
//! does not fit its column is set aside with its line number instead of failing the whole file.
//! Used when the fast reader meets a bad row.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, BooleanArray, StringBuilder};
use datafusion::arrow::compute::filter;
use datafusion::arrow::datatypes::{DataType, SchemaRef};
use datafusion::arrow::record_batch::RecordBatch;
use tokio::sync::mpsc;

use super::bad_rows::{BadRow, BadRows};
use super::csv_infer::CsvFormat;
use super::files::SourceFile;
use crate::data::{cast_checked, expectation};
use crate::steps::StepError;

const BATCH_ROWS: usize = 8192;

/// Reads every file, sending good rows as batches of `schema` and collecting the bad ones.
pub fn read_checked(
    files: &[SourceFile],
    schema: SchemaRef,
    format: CsvFormat,
    mut bad: BadRows,
    sender: mpsc::Sender<RecordBatch>,
) -> Result<BadRows, StepError> {
    for file in files {
        let mut pending = Pending::new(&schema);
        let mut reader = format.reader(file)?;
        let mut record = csv::ByteRecord::new();
        let mut first = true;
        loop {
            let found = reader
                .read_byte_record(&mut record)
                .map_err(|e| StepError::new(format!("cannot read `{}`: {e}", file.name)))?;
            if !found {
                break;
            }
            if first && format.header {
                first = false;
                continue;
            }
            first = false;
            let line = record.position().map_or(0, |p| p.line());
            if record.len() != schema.fields().len() {
                // A blank line is not a row.
                if record.len() == 1 && record[0].is_empty() {
                    continue;
                }
                // Rows before this one are judged first, so bad rows are found in file order.
                if !pending.flush(&schema, file, format, &mut bad, &sender)? {
                    return Ok(bad);
                }
                bad.add(BadRow {
                    file: file.name.clone(),
                    line,
                    reason: format!(
                        "expected {} fields, found {}",
                        schema.fields().len(),
                        record.len()
                    ),
                    record: record_text(&record, format.delimiter),
                })?;
                continue;
            }
            if let Some(column) = record.iter().position(|f| std::str::from_utf8(f).is_err()) {
                if !pending.flush(&schema, file, format, &mut bad, &sender)? {
                    return Ok(bad);
                }
                bad.add(BadRow {
                    file: file.name.clone(),
                    line,
                    reason: format!(
                        "column `{}`: not valid UTF-8 text",
                        schema.field(column).name()
                    ),
                    record: record_text(&record, format.delimiter),
                })?;
                continue;
            }
            pending.push(&record, line);
            if pending.len() == BATCH_ROWS
                && !pending.flush(&schema, file, format, &mut bad, &sender)?
            {
                return Ok(bad);
            }
        }
        if !pending.flush(&schema, file, format, &mut bad, &sender)? {
            return Ok(bad);
        }
    }
    Ok(bad)
}

/// Rows read but not yet typed.
struct Pending {
    columns: Vec<StringBuilder>,
    records: Vec<csv::ByteRecord>,
    lines: Vec<u64>,
}

impl Pending {
    fn new(schema: &SchemaRef) -> Self {
        Pending {
            columns: schema
                .fields()
                .iter()
                .map(|_| StringBuilder::new())
                .collect(),
            records: Vec::with_capacity(BATCH_ROWS),
            lines: Vec::with_capacity(BATCH_ROWS),
        }
    }

    fn len(&self) -> usize {
        self.lines.len()
    }

    fn push(&mut self, record: &csv::ByteRecord, line: u64) {
        for (builder, field) in self.columns.iter_mut().zip(record.iter()) {
            if field.is_empty() {
                builder.append_null();
            } else {
                // Checked as UTF-8 by the caller.
                builder.append_value(String::from_utf8_lossy(field));
            }
        }
        self.records.push(record.clone());
        self.lines.push(line);
    }

    /// Types the pending rows, sets aside those that do not fit and sends the rest. `false`
    /// when nobody listens any more (the step stopped).
    fn flush(
        &mut self,
        schema: &SchemaRef,
        file: &SourceFile,
        format: CsvFormat,
        bad: &mut BadRows,
        sender: &mpsc::Sender<RecordBatch>,
    ) -> Result<bool, StepError> {
        if self.lines.is_empty() {
            return Ok(true);
        }
        let rows = self.lines.len();
        let mut reasons: Vec<Option<String>> = vec![None; rows];
        let mut arrays: Vec<ArrayRef> = Vec::with_capacity(self.columns.len());
        for (builder, field) in self.columns.iter_mut().zip(schema.fields()) {
            let text: ArrayRef = Arc::new(builder.finish());
            if field.data_type() == &DataType::Utf8 {
                arrays.push(text);
                continue;
            }
            let checked = cast_checked(&text, field.data_type())?;
            for (row, failed) in checked.failed.iter().enumerate() {
                if failed == Some(true) && reasons[row].is_none() {
                    reasons[row] = Some(format!(
                        "column `{}`: expected {}",
                        field.name(),
                        expectation(field.data_type())
                    ));
                }
            }
            arrays.push(checked.array);
        }
        for (row, reason) in reasons.iter().enumerate() {
            if let Some(reason) = reason {
                bad.add(BadRow {
                    file: file.name.clone(),
                    line: self.lines[row],
                    reason: reason.clone(),
                    record: record_text(&self.records[row], format.delimiter),
                })?;
            }
        }
        let keep: BooleanArray = reasons.iter().map(|r| Some(r.is_none())).collect();
        let arrays = if keep.true_count() == rows {
            arrays
        } else {
            arrays
                .iter()
                .map(|a| filter(a.as_ref(), &keep))
                .collect::<Result<_, _>>()?
        };
        self.records.clear();
        self.lines.clear();
        let batch = RecordBatch::try_new(schema.clone(), arrays)?;
        Ok(batch.num_rows() == 0 || sender.blocking_send(batch).is_ok())
    }
}

/// A record written back as one CSV line, for the `rejected` dataset.
fn record_text(record: &csv::ByteRecord, delimiter: u8) -> String {
    let mut writer = csv::WriterBuilder::new()
        .delimiter(delimiter)
        .from_writer(Vec::new());
    if writer.write_byte_record(record).is_err() {
        return String::new();
    }
    let bytes = writer.into_inner().unwrap_or_default();
    String::from_utf8_lossy(&bytes)
        .trim_end_matches(['\r', '\n'])
        .to_string()
}
