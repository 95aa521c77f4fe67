//! `publish.webhook`: sends a dataset to an HTTP endpoint in batches — Klaviyo, Mailchimp,
//! SendGrid, Braze or any JSON webhook — exactly once per batch.
//!
//! The rows are read in file order and cut into batches deterministically; each batch gets an
//! idempotency key derived from the run, step, config, position and content. A batch the
//! endpoint acknowledged is recorded in the state store before the worker takes the next one,
//! so a retry or `segflow resume` of the step sends only what was not acknowledged, under the
//! same keys. `mode: diff` sends only contacts whose mapped fields changed since this step's
//! last successful publish, and removals as their own batches.

mod batches;
mod config;
mod dead_letter;
pub(super) mod delivery;
mod dry_run;
mod ledger;
pub mod preset;
mod records;
mod refusals;
pub mod signing;
mod summary;
mod sync_state;
mod target;
mod workers;

use std::collections::HashMap;
use std::collections::hash_map::Entry as Slot;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use serde_json::{Map, Value, json};
use tokio::sync::{Mutex as AsyncMutex, mpsc};
use tokio_util::sync::CancellationToken;

use self::batches::{Batcher, Cut, Member};
pub use self::config::{DeliveryConfig, MemberStatus, SyncMode, WebhookConfig};
use self::dead_letter::DeadLetter;
use self::delivery::{RetrySettings, Sender};
use self::dry_run::DryRun;
use self::ledger::{AckWriter, Ledger};
use self::preset::{Action, Shape};
use self::records::{Mapping, content_hash};
use self::summary::{Tally, finish, skipped_row};
use self::sync_state::{Entry, SyncState};
use self::target::{Target, short_hash};
use self::workers::{Finished, Outbound, Outcome, Shared, worker};
use super::input;
use crate::data::FastHash;
use crate::spec::deserialize::FieldError;
use crate::spec::yaml_path::YamlPath;
use crate::steps::{CheckContext, Kind, StepContext, StepError, StepOutput};

pub struct PublishWebhook;

#[async_trait]
impl Kind for PublishWebhook {
    const NAME: &'static str = "publish.webhook";
    const DESCRIPTION: &'static str = "Sends a dataset to an HTTP endpoint or email platform (Klaviyo, Mailchimp, SendGrid, Braze) in signed, rate-limited batches, exactly once per batch.";
    const OUTPUTS: &'static [&'static str] = &[
        "records",
        "sent",
        "already_sent",
        "unchanged",
        "removed",
        "rejected",
        "batches",
        "dry_run",
        sync_state::TARGET_OUTPUT,
    ];
    type Config = WebhookConfig;

    fn check(&self, config: &WebhookConfig, ctx: &CheckContext<'_>) -> Vec<FieldError> {
        let dynamic = |key: &str| {
            let path = YamlPath::root().key(key);
            ctx.dynamic
                .iter()
                .any(|d| d.starts_with(&path) || path.starts_with(d))
        };
        let error = |key: &str, message: String| FieldError {
            path: YamlPath::root().key(key),
            message,
            hint: None,
            at_key: false,
        };
        let mut errors = Vec::new();
        if let Some(filter) = &config.filter
            && !dynamic("filter")
            && let Some(message) = input::check_filter(filter)
        {
            errors.push(error("filter", message));
        }
        if let Some(dataset) = &config.dataset
            && !dynamic("dataset")
            && let Some(message) = input::check_dataset(dataset, ctx.needs)
        {
            errors.push(error("dataset", message));
        }
        if ctx.needs.is_empty() {
            errors.push(error(
                "dataset",
                "publish.webhook sends an upstream dataset: add the step that makes it to `needs`"
                    .into(),
            ));
        }
        if let Some(fields) = &config.fields {
            let identifiers = config.preset.identifiers();
            if !identifiers.is_empty()
                && !dynamic("fields")
                && !fields.keys().any(|k| identifiers.contains(&k.as_str()))
            {
                errors.push(error(
                    "fields",
                    format!(
                        "the {} preset needs one of these fields to identify a contact: {}",
                        config.preset.name(),
                        identifiers.join(", ")
                    ),
                ));
            }
        }
        // The endpoint side; values that expressions fill in at run time get stand-ins, so
        // the limits are still checked when the URL or the secret come from `env`/`secrets`.
        let mut probe = config.clone();
        if dynamic("url") {
            probe.url = Some("https://segflow.invalid".into());
        }
        if dynamic("secret") {
            probe.secret = None;
        }
        if dynamic("api_key") {
            probe.api_key = Some("placeholder-us1".into());
        }
        if dynamic("list_id") {
            probe.list_id = Some("placeholder".into());
        }
        if dynamic("headers") {
            probe.headers.clear();
        }
        if dynamic("batch_size") {
            probe.batch_size = None;
        }
        if let Err(message) = Target::resolve(&probe) {
            let key = if message.contains("batch_size") {
                "batch_size"
            } else if message.contains("concurrency") {
                "concurrency"
            } else if message.contains("rate_limit") {
                "rate_limit"
            } else if message.starts_with("`secret`") {
                "secret"
            } else if message.contains("list_id") {
                "list_id"
            } else if message.starts_with("`headers`") {
                "headers"
            } else {
                "url"
            };
            errors.push(error(key, message));
        }
        errors
    }

    async fn run(&self, config: WebhookConfig, ctx: &StepContext) -> Result<StepOutput, StepError> {
        publish(config, ctx).await
    }
}

async fn publish(config: WebhookConfig, ctx: &StepContext) -> Result<StepOutput, StepError> {
    let target = Target::resolve(&config).map_err(StepError::permanent)?;
    let dataset = input::pick(ctx, config.dataset.as_deref())?;
    let (schema, mut stream) = input::read(ctx, &dataset, config.filter.as_deref()).await?;
    let mapping = Mapping::new(
        config.fields.as_ref(),
        config.key.as_deref(),
        &schema,
        config.preset,
    )
    .map_err(StepError::permanent)?;
    let shape = Shape {
        preset: config.preset,
        list_id: config.list_id.clone(),
        status: config.status.name().to_string(),
        update_existing: config.update_existing,
        targets: mapping.targets(),
    };
    // Everything that decides the batches; a change starts a fresh ledger.
    let fingerprint = short_hash(&json!({
        "target": target.fingerprint,
        "dataset": dataset.table_name(),
        "filter": config.filter,
        "fields": mapping.targets(),
        "columns": mapping.fields.iter().map(|(_, i)| schema.field(*i).name()).collect::<Vec<_>>(),
        "key": mapping.key_name,
        "mode": config.mode,
        "batch_size": target.batch_size,
        "status": config.status,
        "update_existing": config.update_existing,
    }));
    let previous = sync_state::previous(ctx, &target.fingerprint).map_err(StepError::permanent)?;
    let ledger = Ledger::open(
        Arc::clone(&ctx.store),
        &ctx.run_id,
        &ctx.step_id,
        &fingerprint,
    )?;
    let origin = reqwest::Url::parse(&target.upsert.1)
        .map(|u| u.origin().ascii_serialization())
        .unwrap_or_default();
    ctx.info(&format!(
        "publishing dataset {} to {origin} (preset {}, mode {}, batches of at most {}, {} at once{})",
        dataset.table_name(),
        target.preset.name(),
        match config.mode {
            SyncMode::Full => "full",
            SyncMode::Diff => "diff",
        },
        target.batch_size,
        config.concurrency,
        target
            .rate
            .map(|r| format!(", at most {} requests/s in bursts of {}", r.per_second, r.burst))
            .unwrap_or_default()
    ));
    if config.mode == SyncMode::Diff {
        match &previous {
            Some(p) => ctx.info(&format!(
                "comparing with the {} contacts published {}",
                p.state.len(),
                p.describe()
            )),
            None => ctx.info("no earlier publish to this endpoint: sending everything"),
        }
    }
    if ledger.previously_acked() > 0 {
        ctx.info(&format!(
            "{} batches were acknowledged by an earlier attempt of this step; they are not sent again",
            ledger.previously_acked()
        ));
    }

    let dry_run = if config.dry_run {
        let path = ctx.step_dir().join(dry_run::FILE_NAME);
        let writer = DryRun::create(path.clone())?;
        ctx.info(&format!(
            "dry run: writing the requests to {} instead of sending them",
            path.display()
        ));
        Some(writer)
    } else {
        None
    };
    let timeout = config.timeout.map_or(Duration::from_secs(30), |t| t.0);
    let sender = Sender::new(
        target.headers.clone(),
        target.signer.clone(),
        target.rate,
        timeout,
        config.concurrency,
        RetrySettings {
            attempts: config.delivery.attempts.max(1),
            delay: config.delivery.delay.0,
            max_delay: config.delivery.max_delay.0,
            max_wait: config.delivery.max_wait.0,
        },
    )
    .map_err(StepError::permanent)?;
    // A batch that gives up, an endpoint that refuses us or bad input stops handing out
    // batches (`stop`), but lets the requests in flight finish and be recorded; only the
    // step's own cancellation drops them.
    let stop = ctx.cancel.child_token();
    let shared = Arc::new(Shared {
        sender,
        target,
        record_sync: config.mode == SyncMode::Diff && !config.dry_run,
        acks: AckWriter::start(ledger.store()),
        ack_prefix: ledger.prefix().to_string(),
        stop: stop.clone(),
        cancel: ctx.cancel.clone(),
        dry_run,
        sent_batches: AtomicU64::new(0),
        sent_records: AtomicU64::new(0),
    });

    let (batch_tx, batch_rx) = mpsc::channel::<Outbound>(config.concurrency * 2);
    let (done_tx, mut done_rx) = mpsc::unbounded_channel::<Finished>();
    let batch_rx = Arc::new(AsyncMutex::new(batch_rx));
    // A dry run writes its requests in batch order.
    let workers = if config.dry_run {
        1
    } else {
        config.concurrency
    };
    let workers: Vec<_> = (0..workers)
        .map(|_| {
            tokio::spawn(worker(
                Arc::clone(&shared),
                Arc::clone(&batch_rx),
                done_tx.clone(),
            ))
        })
        .collect();

    let mut letters: Vec<DeadLetter> = Vec::new();
    let mut tally = Tally::default();
    let mut seen: HashMap<String, u64, FastHash> = HashMap::default();
    let pass_through = shape.sends_fields_as_they_are();
    let prev_state: SyncState = previous.map(|p| p.state).unwrap_or_default();

    // Produce batches while the workers send them.
    let produced: Result<(), StepError> = async {
        let mut batcher = Batcher::new(Action::Upsert, shared.target.batch_size, room(&shared, &shape, Action::Upsert));
        let mut next_row = 1u64;
        while let Some(batch) = tokio::select! {
            _ = stop.cancelled() => None,
            next = stream.next() => next,
        } {
            let batch = batch.map_err(|e| input::read_error(&dataset, &e))?;
            let contacts = mapping
                .contacts(&batch, next_row)
                .map_err(|e| StepError::permanent(crate::data::without_values(&e).into_owned()))?;
            next_row += batch.num_rows() as u64;
            for contact in contacts {
                tally.records += 1;
                let Some(key) = contact.key.clone() else {
                    letters.push(skipped_row(contact.row, None, format!("row {} has no value in the key column `{}`", contact.row, mapping.key_name)));
                    continue;
                };
                match seen.entry(key.clone()) {
                    Slot::Occupied(first) => {
                        if config.mode == SyncMode::Diff {
                            return Err(StepError::permanent(format!(
                                "rows {} and {} have the same `{}`; `mode: diff` needs one row per customer: dedupe upstream or pick another `key`",
                                first.get(), contact.row, mapping.key_name
                            )));
                        }
                        tally.duplicates += 1;
                    }
                    Slot::Vacant(slot) => {
                        slot.insert(contact.row);
                    }
                }
                let Some(identity) = mapping.identity(&contact) else {
                    letters.push(skipped_row(contact.row, Some(key), format!(
                        "row {} has none of the fields that identify a contact on {} ({})",
                        contact.row,
                        config.preset.name(),
                        config.preset.identifiers().join(", ")
                    )));
                    continue;
                };
                let fields_json = serde_json::to_vec(&contact.fields).expect("JSON values serialize");
                let hash = content_hash(&fields_json);
                if config.mode == SyncMode::Diff
                    && prev_state.get(&key).is_some_and(|e| e.hash == hash)
                {
                    tally.unchanged += 1;
                    continue;
                }
                let fragment = if pass_through {
                    fields_json
                } else {
                    serde_json::to_vec(&shape.upsert_fragment(&contact.fields))
                        .expect("JSON values serialize")
                };
                let member = Member {
                    key,
                    hash,
                    identity: Value::Object(identity).to_string(),
                };
                if let Some(cut) = batcher.push(member, fragment)
                    && !dispatch(cut, &shape, &ledger, &batch_tx, &done_tx, &stop, &mut tally).await
                {
                    return Ok(());
                }
            }
        }
        if let Some(cut) = batcher.finish()
            && !dispatch(cut, &shape, &ledger, &batch_tx, &done_tx, &stop, &mut tally).await
        {
            return Ok(());
        }
        if config.mode == SyncMode::Diff {
            let mut removed: Vec<(&String, &Entry)> = prev_state
                .iter()
                .filter(|(key, _)| !seen.contains_key(*key))
                .collect();
            removed.sort_unstable_by(|a, b| a.0.cmp(b.0));
            if !removed.is_empty() {
                ctx.info(&format!("{} contacts left the audience: sending removals", removed.len()));
            }
            let mut batcher = Batcher::new(Action::Remove, shared.target.batch_size, room(&shared, &shape, Action::Remove));
            for (key, entry) in removed {
                let identity: Map<String, Value> = serde_json::from_str(&entry.identity).unwrap_or_default();
                let fragment = serde_json::to_vec(&shape.remove_fragment(&identity))
                    .expect("JSON values serialize");
                let member = Member { key: key.clone(), hash: String::new(), identity: entry.identity.clone() };
                if let Some(cut) = batcher.push(member, fragment)
                    && !dispatch(cut, &shape, &ledger, &batch_tx, &done_tx, &stop, &mut tally).await
                {
                    return Ok(());
                }
            }
            if let Some(cut) = batcher.finish() {
                dispatch(cut, &shape, &ledger, &batch_tx, &done_tx, &stop, &mut tally).await;
            }
        }
        Ok(())
    }
    .await;
    drop(batch_tx);
    drop(done_tx);
    if produced.is_err() {
        stop.cancel();
    }

    // Collect every batch's outcome, logging progress now and then.
    let mut finished: Vec<Finished> = Vec::new();
    let mut ticker = tokio::time::interval(Duration::from_secs(10));
    ticker.tick().await;
    loop {
        tokio::select! {
            next = done_rx.recv() => match next {
                Some(f) => finished.push(f),
                None => break,
            },
            _ = ticker.tick() => ctx.info(&format!(
                "{} batches ({} contacts) delivered so far",
                shared.sent_batches.load(Ordering::Relaxed),
                shared.sent_records.load(Ordering::Relaxed)
            )),
        }
    }
    for worker in workers {
        let _ = worker.await;
    }
    produced?;
    if let Some(dry_run) = &shared.dry_run {
        dry_run.finish()?;
    }
    finish(
        ctx, &config, &shared, &shape, finished, letters, tally, prev_state,
    )
}

/// Room for contacts in one body under the preset's byte limit.
fn room(shared: &Shared, shape: &Shape, action: Action) -> Option<usize> {
    shared
        .target
        .max_bytes
        .map(|max| max.saturating_sub(shape.envelope_len(action)))
}

/// Gives a cut batch its body and key; queues it unless it was acknowledged before.
/// False when publishing is being stopped.
async fn dispatch(
    cut: Cut,
    shape: &Shape,
    ledger: &Ledger,
    batches: &mpsc::Sender<Outbound>,
    done: &mpsc::UnboundedSender<Finished>,
    stop: &CancellationToken,
    tally: &mut Tally,
) -> bool {
    tally.batches += 1;
    let body = Bytes::from(shape.body(cut.action, &cut.fragments));
    let id = ledger.batch_id(cut.action, cut.index, &body);
    if let Some(ack) = ledger.acked(&id) {
        let outcome = Outcome::Acked {
            status: ack.status,
            refused: ack.refused.clone(),
            earlier: true,
        };
        let _ = done.send(Finished {
            id,
            members: cut.members,
            body: outcome.needs_body().then_some(body),
            outcome,
        });
        return true;
    }
    if ledger.replaced(&id) {
        tracing::warn!(
            batch = cut.index,
            "an earlier attempt sent different content at this position; the input changed"
        );
    }
    let outbound = Outbound {
        id,
        body,
        members: cut.members,
    };
    tokio::select! {
        _ = stop.cancelled() => false,
        sent = batches.send(outbound) => sent.is_ok(),
    }
}
