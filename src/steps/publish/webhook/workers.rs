//! The workers: each takes a batch off the queue, delivers it (or writes it, in a dry run),
//! and records an acknowledged batch durably before it takes the next one.
//!
//! Two ways to end early. `stop` (a batch gave up, the endpoint refused us, the input is
//! bad): no worker takes another batch and no new try starts, but requests already sent are
//! awaited and their acknowledgements recorded — dropping them would leave batches the
//! endpoint processed unrecorded, to be sent again by `segflow resume`. `cancel` (Ctrl-C, run
//! cancellation, the step's timeout) also drops the requests in flight.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use bytes::Bytes;
use tokio::sync::{Mutex as AsyncMutex, mpsc};
use tokio_util::sync::CancellationToken;

use super::batches::Member;
use super::delivery::{Delivery, Sender};
use super::dry_run::DryRun;
use super::ledger::{AckWriter, BatchId, Ledger, SyncChange};
use super::refusals::{Refusal, refusals};
use super::target::Target;

/// A batch ready to go.
pub(super) struct Outbound {
    pub(super) id: BatchId,
    pub(super) body: Bytes,
    pub(super) members: Vec<Member>,
}

/// How a batch ended, for the bookkeeping at the end.
pub(super) enum Outcome {
    Acked {
        status: u16,
        /// Contacts the 2xx answer still refused (the others were accepted).
        refused: Vec<Refusal>,
        /// Sent before (recorded by an earlier attempt): skipped this time.
        earlier: bool,
    },
    Rejected {
        status: u16,
        response: Bytes,
        endpoint_level: bool,
    },
    GaveUp(String),
    NotSent,
}

impl Outcome {
    /// Whether the dead letters will need the batch's body: a rejected batch, or an
    /// acknowledged one the endpoint still refused contacts of. Other bodies are dropped at
    /// once, so a large publish does not hold every body it sent until the step ends.
    pub(super) fn needs_body(&self) -> bool {
        match self {
            Outcome::Rejected { .. } => true,
            Outcome::Acked { refused, .. } => !refused.is_empty(),
            Outcome::GaveUp(_) | Outcome::NotSent => false,
        }
    }
}

pub(super) struct Finished {
    pub(super) id: BatchId,
    pub(super) members: Vec<Member>,
    /// The request body, when `outcome.needs_body()`.
    pub(super) body: Option<Bytes>,
    pub(super) outcome: Outcome,
}

/// What the workers share.
pub(super) struct Shared {
    pub(super) sender: Sender,
    pub(super) target: Target,
    /// `mode: diff` (not a dry run): each batch's sync change is recorded with its
    /// acknowledgement, under the endpoint's fingerprint.
    pub(super) record_sync: bool,
    pub(super) acks: AckWriter,
    pub(super) ack_prefix: String,
    /// No new batch, no new try; requests in flight finish and are recorded.
    pub(super) stop: CancellationToken,
    /// Drops requests in flight too (the step's own cancellation; `stop` is its child).
    pub(super) cancel: CancellationToken,
    pub(super) dry_run: Option<DryRun>,
    pub(super) sent_batches: AtomicU64,
    pub(super) sent_records: AtomicU64,
}

/// Takes batches off the queue and delivers them one at a time; an acknowledged batch is
/// recorded (flushed) before the next one is taken.
pub(super) async fn worker(
    shared: Arc<Shared>,
    batches: Arc<AsyncMutex<mpsc::Receiver<Outbound>>>,
    done: mpsc::UnboundedSender<Finished>,
) {
    loop {
        let next = batches.lock().await.recv().await;
        let Some(batch) = next else { break };
        let outcome = if shared.stop.is_cancelled() {
            Outcome::NotSent
        } else {
            deliver(&shared, &batch).await
        };
        if let Outcome::Acked { refused, .. } = &outcome {
            shared.sent_batches.fetch_add(1, Ordering::Relaxed);
            shared.sent_records.fetch_add(
                batch.members.len().saturating_sub(refused.len()) as u64,
                Ordering::Relaxed,
            );
        }
        let _ = done.send(Finished {
            id: batch.id,
            members: batch.members,
            body: outcome.needs_body().then_some(batch.body),
            outcome,
        });
    }
}

pub(super) async fn deliver(shared: &Shared, batch: &Outbound) -> Outcome {
    let (method, url) = shared.target.endpoint(batch.id.action);
    if let Some(dry_run) = &shared.dry_run {
        let headers = shared
            .sender
            .headers_for(&batch.id.idempotency_key, &batch.body);
        return match dry_run.write(method, url, &headers, &batch.body) {
            Ok(()) => Outcome::Acked {
                status: 200,
                refused: Vec::new(),
                earlier: false,
            },
            Err(e) => {
                shared.stop.cancel();
                Outcome::GaveUp(format!("cannot write {}: {e}", dry_run.path().display()))
            }
        };
    }
    let delivery = shared
        .sender
        .deliver(
            method,
            url,
            batch.body.clone(),
            &batch.id.idempotency_key,
            &shared.stop,
            &shared.cancel,
        )
        .await;
    match delivery {
        Delivery::Acked { status, response } => {
            let action = batch.id.action;
            let refused = refusals(shared.target.preset, action, &response, &batch.members);
            let sync = shared.record_sync.then(|| {
                SyncChange::of(&shared.target.fingerprint, action, &batch.members, &refused)
            });
            let (key, value) = Ledger::ack_entry(
                &shared.ack_prefix,
                &batch.id,
                status,
                batch.members.len(),
                refused.clone(),
                sync,
            );
            let recorded = shared.acks.record(key, value).await;
            match recorded {
                Ok(()) => Outcome::Acked {
                    status,
                    refused,
                    earlier: false,
                },
                Err(e) => {
                    shared.stop.cancel();
                    Outcome::GaveUp(format!(
                        "batch {} was delivered but its acknowledgement could not be recorded ({e}); it will be sent again under the same idempotency key",
                        batch.id.index
                    ))
                }
            }
        }
        Delivery::Rejected {
            status,
            response,
            endpoint_level,
        } => {
            if endpoint_level {
                shared.stop.cancel();
            }
            Outcome::Rejected {
                status,
                response,
                endpoint_level,
            }
        }
        Delivery::GaveUp { attempts, last } => {
            shared.stop.cancel();
            Outcome::GaveUp(format!(
                "{} batch {} was not acknowledged after {attempts} tries (last: {last})",
                batch.id.action.name(),
                batch.id.index
            ))
        }
        Delivery::Cancelled => Outcome::NotSent,
    }
}
