//! Decoding CSV files on every core: each file is cut into pieces of a few megabytes at line
//! ends, several pieces are decoded at once, and their batches are handed on in file order.
//!
//! Cutting at line ends is only right when no value spans lines, which a file without a quote
//! character guarantees. A piece that holds a quote stops the read with [`PieceError::Quoted`]
//! and the caller reads the files in one stream instead. A piece always starts at the start of
//! a line, so the rows, their order and their values are those the one-stream reader gives.

use std::fs::File;
use std::io::{BufRead, BufReader, Read, Seek, SeekFrom};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use datafusion::arrow::csv::ReaderBuilder;
use datafusion::arrow::datatypes::SchemaRef;
use datafusion::arrow::record_batch::RecordBatch;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::csv_infer::CsvFormat;
use super::csv_plain;
use super::files::SourceFile;
use crate::data::DatasetWriter;
use crate::steps::StepError;

/// How much of a file one piece covers: large enough that the line-end search and the last,
/// short batch of a piece cost nothing, small enough that the pieces in flight stay small.
const PIECE_BYTES: u64 = 8 << 20;

/// Rows per batch, as DataFusion's reader makes them.
const BATCH_ROWS: usize = 8192;

/// How much is read at a time when looking for a line end (after a header, past a piece).
const SEARCH_BYTES: usize = 64 << 10;

/// The read buffers of pieces that are done, for the next pieces to read into: a fresh 8 MB
/// buffer per piece would be new memory, which the kernel zeroes page by page before use.
#[derive(Default, Clone)]
struct Buffers(Arc<Mutex<Vec<Vec<u8>>>>);

impl Buffers {
    fn take(&self) -> Vec<u8> {
        let free = self.0.lock().ok().and_then(|mut free| free.pop());
        free.unwrap_or_default()
    }

    fn give_back(&self, mut buffer: Vec<u8>) {
        buffer.clear();
        if let Ok(mut free) = self.0.lock() {
            free.push(buffer);
        }
    }
}

#[derive(Debug)]
pub enum PieceError {
    /// A value may span lines: read the files in one stream.
    Quoted,
    Failed(StepError),
}

impl From<datafusion::arrow::error::ArrowError> for PieceError {
    fn from(error: datafusion::arrow::error::ArrowError) -> Self {
        PieceError::Failed(error.into())
    }
}

/// The rows of one file whose line starts at or after `start` and before `end`.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Piece {
    path: Arc<PathBuf>,
    name: Arc<str>,
    /// Where the rows begin in the file (after the header).
    first_row: u64,
    start: u64,
    end: u64,
    file_len: u64,
}

/// The pieces of every file, in file order, or `None` when a header holds a quote (it might
/// span lines, so where the rows begin is the one-stream reader's business).
fn pieces_of(
    files: &[SourceFile],
    format: CsvFormat,
    piece_bytes: u64,
) -> Result<Option<Vec<Piece>>, StepError> {
    let mut pieces = Vec::new();
    for source in files {
        let cannot_read =
            |e: std::io::Error| StepError::new(format!("cannot read `{}`: {e}", source.name));
        let file = File::open(&source.path).map_err(cannot_read)?;
        let file_len = file.metadata().map_err(cannot_read)?.len();
        let first_row = if format.header {
            let mut header = Vec::new();
            BufReader::with_capacity(SEARCH_BYTES, file)
                .read_until(b'\n', &mut header)
                .map_err(cannot_read)?;
            if header.contains(&b'"') {
                return Ok(None);
            }
            // Without a line end the file is a header alone.
            if header.ends_with(b"\n") {
                header.len() as u64
            } else {
                file_len
            }
        } else {
            0
        };
        let path = Arc::new(source.path.clone());
        let name: Arc<str> = Arc::from(source.name.as_str());
        let mut start = first_row;
        while start < file_len {
            let end = (start + piece_bytes).min(file_len);
            pieces.push(Piece {
                path: path.clone(),
                name: name.clone(),
                first_row,
                start,
                end,
                file_len,
            });
            start = end;
        }
    }
    Ok(Some(pieces))
}

impl Piece {
    /// Reads this piece into `bytes` (empty on entry) and returns where in them the lines that
    /// start in the piece begin (the bytes before are the end of an earlier piece's last line).
    fn lines(&self, bytes: &mut Vec<u8>) -> std::io::Result<usize> {
        debug_assert!(bytes.is_empty(), "a piece is read into an empty buffer");
        let mut file = File::open(self.path.as_ref())?;
        // One byte before the start tells whether a line starts right there.
        let from = if self.start == self.first_row {
            self.start
        } else {
            self.start - 1
        };
        file.seek(SeekFrom::Start(from))?;
        let mut reader = BufReader::with_capacity(SEARCH_BYTES, file);
        bytes.reserve((self.end - from) as usize + SEARCH_BYTES);
        (&mut reader).take(self.end - from).read_to_end(bytes)?;
        // The first line that starts in the piece: right at the file's first row, or after the
        // first `\n` at or after the byte before `start`.
        let first = if from == self.start {
            0
        } else {
            match bytes.iter().position(|b| *b == b'\n') {
                Some(at) => at + 1,
                None => bytes.len(),
            }
        };
        if first >= bytes.len() {
            // The line that crosses into this piece started earlier and belongs to an earlier
            // piece, which reads it to its end.
            return Ok(bytes.len());
        }
        // The last line that starts in the piece runs on to its end.
        if self.end < self.file_len && bytes.last() != Some(&b'\n') {
            reader.read_until(b'\n', bytes)?;
        }
        Ok(first)
    }

    fn decode(
        &self,
        schema: SchemaRef,
        format: CsvFormat,
        buffers: &Buffers,
    ) -> Result<Vec<RecordBatch>, PieceError> {
        let mut read = buffers.take();
        let decoded = self.decode_into(schema, format, &mut read);
        buffers.give_back(read);
        decoded
    }

    fn decode_into(
        &self,
        schema: SchemaRef,
        format: CsvFormat,
        read: &mut Vec<u8>,
    ) -> Result<Vec<RecordBatch>, PieceError> {
        let first = self.lines(read).map_err(|e| {
            PieceError::Failed(StepError::new(format!("cannot read `{}`: {e}", self.name)))
        })?;
        let bytes = &read[first..];
        if bytes.contains(&b'"') {
            return Err(PieceError::Quoted);
        }
        if let Some(batches) = csv_plain::decode(bytes, &schema, format.delimiter, BATCH_ROWS) {
            return Ok(batches);
        }
        // Arrow's reader decides whatever the quote-free decoder is not sure of. The batches are
        // built in their own arrays, so the buffer is free once they are.
        let reader = ReaderBuilder::new(schema)
            .with_header(false)
            .with_delimiter(format.delimiter)
            .with_batch_size(BATCH_ROWS)
            .build_buffered(bytes)?;
        let batches = reader.collect::<Result<Vec<_>, _>>()?;
        Ok(batches)
    }
}

/// Reads the files piece by piece into `writer`, in file order. `Ok(false)` when the pieces
/// cannot be used (a header or a piece holds a quote) and nothing useful was written; the
/// caller then starts over with the one-stream reader.
pub async fn copy_in_pieces(
    files: &[SourceFile],
    schema: &SchemaRef,
    format: CsvFormat,
    writer: &mut DatasetWriter,
    cancel: &CancellationToken,
) -> Result<bool, StepError> {
    copy_in_pieces_of(files, schema, format, writer, cancel, PIECE_BYTES).await
}

async fn copy_in_pieces_of(
    files: &[SourceFile],
    schema: &SchemaRef,
    format: CsvFormat,
    writer: &mut DatasetWriter,
    cancel: &CancellationToken,
    piece_bytes: u64,
) -> Result<bool, StepError> {
    let pieces = {
        let files = files.to_vec();
        tokio::task::spawn_blocking(move || pieces_of(&files, format, piece_bytes))
            .await
            .map_err(|e| StepError::permanent(format!("the reader stopped: {e}")))??
    };
    let Some(pieces) = pieces else {
        return Ok(false);
    };
    // One piece per core decoding, one more read ahead; the writer encodes beside them.
    let in_flight = crate::data::cores() + 1;
    let buffers = Buffers::default();
    let mut decoded = futures::stream::iter(pieces.into_iter().map(|piece| {
        let schema = schema.clone();
        let buffers = buffers.clone();
        tokio::task::spawn_blocking(move || piece.decode(schema, format, &buffers))
    }))
    .buffered(in_flight);
    loop {
        let next = tokio::select! {
            next = decoded.next() => next,
            _ = cancel.cancelled() => return Err(crate::steps::streaming::cancelled()),
        };
        let Some(joined) = next else {
            return Ok(true);
        };
        let batches =
            joined.map_err(|e| StepError::permanent(format!("the reader stopped: {e}")))?;
        match batches {
            Ok(batches) => {
                for batch in &batches {
                    writer.write(batch)?;
                }
            }
            Err(PieceError::Quoted) => return Ok(false),
            Err(PieceError::Failed(error)) => return Err(error),
        }
    }
}

#[cfg(test)]
mod tests {
    use datafusion::arrow::compute::concat_batches;
    use datafusion::arrow::datatypes::{DataType, Field, Schema};
    use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

    use super::*;

    const FORMAT: CsvFormat = CsvFormat {
        header: true,
        delimiter: b',',
    };

    fn source(dir: &std::path::Path, name: &str, text: &[u8]) -> SourceFile {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        SourceFile {
            path,
            name: name.into(),
        }
    }

    /// The lines each piece of `size` bytes owns.
    fn lines_in_pieces(text: &[u8], format: CsvFormat, size: u64) -> Vec<Vec<u8>> {
        let dir = tempfile::tempdir().unwrap();
        let file = source(dir.path(), "t.csv", text);
        let pieces = pieces_of(&[file], format, size).unwrap().unwrap();
        pieces
            .iter()
            .map(|p| {
                let mut read = Vec::new();
                let first = p.lines(&mut read).unwrap();
                read[first..].to_vec()
            })
            .collect()
    }

    #[test]
    fn every_line_lands_in_exactly_one_piece_whatever_the_cut() {
        let text = b"id,name\n1,ann\n22,bob\n333,carla\n\n4444,dan\r\n5,e";
        let body = &text[8..];
        for size in 1..=text.len() as u64 + 1 {
            let pieces = lines_in_pieces(text, FORMAT, size);
            assert_eq!(pieces.concat(), body, "pieces of {size} bytes");
            for piece in pieces.iter().filter(|p| !p.is_empty()) {
                // Each piece is whole lines: it ends with a line end or at the end of the file.
                assert!(
                    piece.ends_with(b"\n") || body.ends_with(piece),
                    "{size}: {piece:?}"
                );
            }
        }
    }

    #[test]
    fn without_a_header_the_first_line_is_a_row() {
        let text = b"1,ann\n2,bob\n";
        let format = CsvFormat {
            header: false,
            ..FORMAT
        };
        for size in 1..=text.len() as u64 {
            assert_eq!(lines_in_pieces(text, format, size).concat(), text);
        }
    }

    #[test]
    fn a_quote_in_the_header_leaves_the_file_to_the_stream_reader() {
        let dir = tempfile::tempdir().unwrap();
        let file = source(dir.path(), "t.csv", b"\"id\",name\n1,ann\n");
        assert_eq!(pieces_of(&[file], FORMAT, PIECE_BYTES).unwrap(), None);
    }

    fn schema() -> SchemaRef {
        Arc::new(Schema::new(vec![
            Field::new("id", DataType::Int64, true),
            Field::new("name", DataType::Utf8, true),
            Field::new("amount", DataType::Float64, true),
        ]))
    }

    /// Reads `files` in pieces of `size` bytes into a dataset and returns its rows, or `None`
    /// when the pieces gave up.
    async fn read_in_pieces(files: &[SourceFile], size: u64) -> Option<RecordBatch> {
        let run = tempfile::tempdir().unwrap();
        let mut writer = DatasetWriter::create(run.path(), "gather", "main", schema()).unwrap();
        let done = copy_in_pieces_of(
            files,
            &schema(),
            FORMAT,
            &mut writer,
            &CancellationToken::new(),
            size,
        )
        .await
        .unwrap();
        if !done {
            return None;
        }
        let dataset = writer.finish().unwrap();
        let file = File::open(dataset.path(run.path())).unwrap();
        let reader = ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
        let batches: Vec<RecordBatch> = reader.map(Result::unwrap).collect();
        Some(concat_batches(&schema(), &batches).unwrap())
    }

    #[tokio::test]
    async fn pieces_of_several_files_give_every_row_once_in_file_order() {
        let dir = tempfile::tempdir().unwrap();
        let mut files = Vec::new();
        let mut expected_ids = Vec::new();
        let mut blank_names = 0;
        for (n, rows) in [(0, 3000), (1, 1), (2, 0), (3, 1700)] {
            let mut text = String::from("id,name,amount\n");
            for row in 0..rows {
                let id = n * 10_000 + row;
                // Blank names are nulls, as the one-stream reader reads them.
                let name = if row % 7 == 0 {
                    blank_names += 1;
                    String::new()
                } else {
                    format!("n{id}")
                };
                text.push_str(&format!("{id},{name},{}.5\n", row % 100));
                expected_ids.push(id);
            }
            files.push(source(
                dir.path(),
                &format!("part-{n}.csv"),
                text.as_bytes(),
            ));
        }
        // Pieces far smaller than a file, and one piece per file.
        for size in [100, 4096, PIECE_BYTES] {
            let rows = read_in_pieces(&files, size).await.expect("no quotes");
            let ids: Vec<i64> = rows
                .column(0)
                .as_any()
                .downcast_ref::<datafusion::arrow::array::Int64Array>()
                .unwrap()
                .values()
                .to_vec();
            assert_eq!(ids, expected_ids, "pieces of {size} bytes");
            assert_eq!(rows.column(1).null_count(), blank_names);
        }
    }

    #[tokio::test]
    async fn a_quoted_value_gives_the_file_back_to_the_stream_reader() {
        let dir = tempfile::tempdir().unwrap();
        let file = source(
            dir.path(),
            "t.csv",
            b"id,name,amount\n1,\"ann\nsmith\",2.5\n2,bob,1\n",
        );
        assert_eq!(read_in_pieces(&[file], 8).await, None);
    }
}
