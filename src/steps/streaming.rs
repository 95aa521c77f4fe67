//! Moving record batches from a reader into a dataset while keeping both cores busy: the reader
//! decodes in one task while this one encodes Parquet, and both stop when the step is cancelled.

use datafusion::arrow::record_batch::RecordBatch;
use datafusion::physical_plan::SendableRecordBatchStream;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::StepError;
use crate::data::DatasetWriter;

/// How many decoded batches may wait for the writer.
const QUEUE: usize = 4;

/// Writes every batch of a DataFusion stream, decoding ahead in another task.
pub async fn copy_stream(
    stream: SendableRecordBatchStream,
    writer: &mut DatasetWriter,
    cancel: &CancellationToken,
) -> Result<(), StepError> {
    let (sender, mut receiver) = mpsc::channel(QUEUE);
    let reader = tokio::spawn(async move {
        let mut stream = stream;
        while let Some(batch) = stream.next().await {
            let failed = batch.is_err();
            if sender.send(batch).await.is_err() || failed {
                break;
            }
        }
    });
    let result = async {
        loop {
            let batch = tokio::select! {
                batch = receiver.recv() => batch,
                _ = cancel.cancelled() => return Err(cancelled()),
            };
            match batch {
                Some(batch) => writer.write(&batch?)?,
                None => return Ok(()),
            }
        }
    }
    .await;
    reader.abort();
    result
}

/// Runs a blocking producer (a file reader) on its own thread; what it sends arrives on the
/// returned receiver. The producer learns that the consumer stopped when `send` fails.
pub fn spawn_producer<T, F>(produce: F) -> Producer<T>
where
    T: Send + 'static,
    F: FnOnce(mpsc::Sender<RecordBatch>) -> Result<T, StepError> + Send + 'static,
{
    let (sender, receiver) = mpsc::channel(QUEUE);
    let handle = tokio::task::spawn_blocking(move || produce(sender));
    Producer { receiver, handle }
}

pub struct Producer<T> {
    receiver: mpsc::Receiver<RecordBatch>,
    handle: tokio::task::JoinHandle<Result<T, StepError>>,
}

/// Writes what a producer sends, then reports the producer's own result.
pub async fn drain_producer<T>(
    producer: Producer<T>,
    writer: &mut DatasetWriter,
    cancel: &CancellationToken,
) -> Result<T, StepError> {
    let Producer {
        mut receiver,
        handle,
    } = producer;
    loop {
        let batch = tokio::select! {
            batch = receiver.recv() => batch,
            _ = cancel.cancelled() => {
                drop(receiver);
                return Err(cancelled());
            }
        };
        match batch {
            Some(batch) => writer.write(&batch)?,
            None => break,
        }
    }
    match handle.await {
        Ok(result) => result,
        Err(error) => Err(StepError::permanent(format!(
            "the reader stopped unexpectedly: {error}"
        ))),
    }
}

pub fn cancelled() -> StepError {
    StepError::permanent("cancelled")
}
