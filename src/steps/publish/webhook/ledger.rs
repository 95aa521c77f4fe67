//! Exactly once per batch: every batch the endpoint acknowledged is recorded in the state store
//! (flushed to disk) before the step moves on; a retry or `segflow resume` of the same step in
//! the same run skips those batches and sends the others under the same idempotency keys.
//!
//! The record also says which contacts the endpoint refused inside its 2xx answer, and, for
//! `mode: diff`, what the sync state learns from the batch (in the same write as the ack), so
//! a later run's diff knows what a failed run did deliver.

use std::collections::HashMap;
use std::sync::Arc;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use sha2::{Digest as _, Sha256};
use tokio::sync::{mpsc, oneshot};

use super::batches::Member;
use super::preset::{Action, hex};
use super::refusals::Refusal;
use crate::store::{StateStore, StoreError};

pub const NAMESPACE: &str = "publish.acks";

/// What is kept about an acknowledged batch.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Ack {
    /// SHA-256 of the request body: a batch counts as sent only if its content is the same.
    pub content: String,
    pub idempotency_key: String,
    pub status: u16,
    pub records: usize,
    pub at: DateTime<Utc>,
    /// Contacts the 2xx answer still refused.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub refused: Vec<Refusal>,
    /// `mode: diff`: what this batch changed at the endpoint, for the sync state.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sync: Option<SyncChange>,
}

/// What an acknowledged batch changed at the endpoint, as the sync state records it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct SyncChange {
    /// The endpoint (the step's `sync_target` fingerprint: preset, URL, list).
    pub target: String,
    pub action: Action,
    /// `(key, hash of the mapped fields, identifiers)` of every contact the endpoint
    /// accepted; removals keep only the key.
    pub members: Vec<(String, String, String)>,
}

impl SyncChange {
    /// The change a batch of `members` made, leaving out the contacts the endpoint refused.
    pub fn of(target: &str, action: Action, members: &[Member], refused: &[Refusal]) -> Self {
        let refused: std::collections::HashSet<usize> = refused.iter().map(|r| r.index).collect();
        let members = members
            .iter()
            .enumerate()
            .filter(|(i, _)| !refused.contains(i))
            .map(|(_, m)| match action {
                Action::Upsert => (m.key.clone(), m.hash.clone(), m.identity.clone()),
                Action::Remove => (m.key.clone(), String::new(), String::new()),
            })
            .collect();
        SyncChange {
            target: target.to_string(),
            action,
            members,
        }
    }
}

/// The sync changes of the batches this step acknowledged in run `run_id` against `target`,
/// oldest first.
pub fn sync_changes(
    store: &dyn StateStore,
    run_id: &str,
    step_id: &str,
    target: &str,
) -> Result<Vec<SyncChange>, StoreError> {
    let mut acks: Vec<Ack> = scan_acks(store, &format!("{run_id}/{step_id}/"))?
        .into_iter()
        .map(|(_, ack)| ack)
        .filter(|ack| ack.sync.as_ref().is_some_and(|s| s.target == target))
        .collect();
    acks.sort_by_key(|a| a.at);
    Ok(acks.into_iter().filter_map(|a| a.sync).collect())
}

/// Every acknowledgement recorded under `prefix`, with its key.
fn scan_acks(store: &dyn StateStore, prefix: &str) -> Result<Vec<(String, Ack)>, StoreError> {
    store
        .kv_scan(NAMESPACE, prefix)?
        .into_iter()
        .map(|(key, value)| {
            let ack = serde_json::from_slice(&value).map_err(|source| StoreError::Corrupt {
                what: format!("publish acknowledgement {key}"),
                source,
            })?;
            Ok((key, ack))
        })
        .collect()
}

pub struct Ledger {
    store: Arc<dyn StateStore>,
    /// `run/step/fingerprint/`
    prefix: String,
    acked: HashMap<String, Ack>,
}

/// The identity of a batch: where it sits and what it holds.
#[derive(Debug, Clone)]
pub struct BatchId {
    pub action: Action,
    pub index: u64,
    pub content: String,
    pub idempotency_key: String,
}

impl Ledger {
    /// Loads the acknowledgements an earlier attempt of this step (same run, same config) left.
    pub fn open(
        store: Arc<dyn StateStore>,
        run_id: &str,
        step_id: &str,
        fingerprint: &str,
    ) -> Result<Self, StoreError> {
        let prefix = format!("{run_id}/{step_id}/{fingerprint}/");
        let acked: HashMap<String, Ack> = scan_acks(store.as_ref(), &prefix)?
            .into_iter()
            .map(|(key, ack)| (key[prefix.len()..].to_string(), ack))
            .collect();
        Ok(Ledger {
            store,
            prefix,
            acked,
        })
    }

    fn slot(action: Action, index: u64) -> String {
        format!("{}/{index:010}", action.name())
    }

    /// The id of batch `index` of `action` with this body; the idempotency key is derived
    /// from the run, step, config, position and content, so it is the same on every retry.
    pub fn batch_id(&self, action: Action, index: u64, body: &[u8]) -> BatchId {
        let content = hex(&Sha256::digest(body));
        let seed = format!("{}{}/{content}", self.prefix, Self::slot(action, index));
        let idempotency_key = format!("msg_{}", &hex(&Sha256::digest(seed.as_bytes()))[..32]);
        BatchId {
            action,
            index,
            content,
            idempotency_key,
        }
    }

    /// The acknowledgement of this very batch (same position, same content), if an earlier
    /// attempt recorded one.
    pub fn acked(&self, id: &BatchId) -> Option<&Ack> {
        self.acked
            .get(&Self::slot(id.action, id.index))
            .filter(|a| a.content == id.content)
    }

    /// Whether an earlier attempt acknowledged different content at this position (the input
    /// changed, e.g. after `segflow retry --from` an upstream step).
    pub fn replaced(&self, id: &BatchId) -> bool {
        self.acked
            .get(&Self::slot(id.action, id.index))
            .is_some_and(|a| a.content != id.content)
    }

    pub fn previously_acked(&self) -> usize {
        self.acked.len()
    }

    /// The record of an acknowledged batch: its store key and value.
    pub fn ack_entry(
        prefix: &str,
        id: &BatchId,
        status: u16,
        records: usize,
        refused: Vec<Refusal>,
        sync: Option<SyncChange>,
    ) -> (String, Vec<u8>) {
        let ack = Ack {
            content: id.content.clone(),
            idempotency_key: id.idempotency_key.clone(),
            status,
            records,
            at: Utc::now(),
            refused,
            sync,
        };
        let key = format!("{prefix}{}", Self::slot(id.action, id.index));
        (key, serde_json::to_vec(&ack).expect("acks serialize"))
    }

    pub fn prefix(&self) -> &str {
        &self.prefix
    }

    pub fn store(&self) -> Arc<dyn StateStore> {
        Arc::clone(&self.store)
    }
}

type Pending = (String, Vec<u8>, oneshot::Sender<Result<(), String>>);

/// Writes acknowledgements for every worker with group commits: the acks that arrive while a
/// flush is on disk go together in the next one. `record` returns only once its ack is flushed,
/// so a worker still moves on only after its batch is durably recorded.
#[derive(Clone)]
pub struct AckWriter {
    queue: mpsc::UnboundedSender<Pending>,
}

impl AckWriter {
    pub fn start(store: Arc<dyn StateStore>) -> Self {
        let (queue, mut pending) = mpsc::unbounded_channel::<Pending>();
        tokio::spawn(async move {
            while let Some(first) = pending.recv().await {
                let mut group = vec![first];
                while let Ok(more) = pending.try_recv() {
                    group.push(more);
                }
                let entries: Vec<(String, Vec<u8>)> = group
                    .iter()
                    .map(|(key, value, _)| (key.clone(), value.clone()))
                    .collect();
                let store = Arc::clone(&store);
                let written =
                    tokio::task::spawn_blocking(move || store.kv_put_many(NAMESPACE, &entries))
                        .await;
                let result = match written {
                    Ok(Ok(())) => Ok(()),
                    Ok(Err(e)) => Err(e.to_string()),
                    Err(e) => Err(e.to_string()),
                };
                for (_, _, reply) in group {
                    let _ = reply.send(result.clone());
                }
            }
        });
        AckWriter { queue }
    }

    /// Records one acknowledgement; returns once it is on disk.
    pub async fn record(&self, key: String, value: Vec<u8>) -> Result<(), String> {
        let (reply, done) = oneshot::channel();
        self.queue
            .send((key, value, reply))
            .map_err(|_| "the acknowledgement writer stopped".to_string())?;
        done.await
            .map_err(|_| "the acknowledgement writer stopped".to_string())?
    }
}
