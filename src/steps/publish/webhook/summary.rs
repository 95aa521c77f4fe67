//! The bookkeeping once every batch has ended: dead letters, the new sync state and the step's
//! outputs — or the error that says what was not delivered and what a resume will do.

use std::collections::HashSet;

use serde_json::Value;

use super::config::WebhookConfig;
use super::dead_letter::{self, DeadLetter};
use super::preset::{Action, Shape};
use super::sync_state::{self, Entry, SyncState};
use super::workers::{Finished, Outcome, Shared};
use crate::steps::{StepContext, StepError, StepOutput};

/// Counters of one publish.
#[derive(Default)]
pub(super) struct Tally {
    pub(super) records: u64,
    pub(super) unchanged: u64,
    pub(super) duplicates: u64,
    pub(super) batches: u64,
}

pub(super) fn skipped_row(row: u64, key: Option<String>, reason: String) -> DeadLetter {
    DeadLetter {
        action: Action::Upsert,
        batch: None,
        idempotency_key: None,
        status: None,
        reason,
        response: None,
        keys: vec![key.unwrap_or_else(|| format!("row {row}"))],
        body: None,
    }
}

/// The bookkeeping after every batch ended: dead letters, the new sync state, the outputs —
/// or the error that says what was not delivered.
#[allow(clippy::too_many_arguments)]
pub(super) fn finish(
    ctx: &StepContext,
    config: &WebhookConfig,
    shared: &Shared,
    shape: &Shape,
    mut finished: Vec<Finished>,
    mut letters: Vec<DeadLetter>,
    tally: Tally,
    mut state: SyncState,
) -> Result<StepOutput, StepError> {
    finished.sort_by_key(|f| (f.id.action, f.id.index));
    let mut sent = 0u64;
    let mut already = 0u64;
    let mut removed = 0u64;
    let mut rejected_batches = 0usize;
    let mut acked_batches = 0usize;
    let mut first_failure: Option<String> = None;
    let mut endpoint_refusal: Option<(u64, u16)> = None;
    for f in finished {
        match f.outcome {
            Outcome::Acked {
                status,
                refused,
                earlier,
            } => {
                acked_batches += 1;
                // Refusals come from this very batch's answer (or its recorded ack): their
                // positions are within it; anything else is ignored rather than trusted.
                let refused: Vec<_> = refused
                    .into_iter()
                    .filter(|r| r.index < f.members.len())
                    .collect();
                let accepted = f.members.len().saturating_sub(refused.len()) as u64;
                match (f.id.action, earlier) {
                    (Action::Remove, _) => removed += accepted,
                    (Action::Upsert, true) => already += accepted,
                    (Action::Upsert, false) => sent += accepted,
                }
                if !refused.is_empty() {
                    // Counts only: the platform's reasons may quote the contacts.
                    ctx.warn(&format!(
                        "{} batch {} was acknowledged, but the endpoint refused {} of its {} contacts; they are in the dead letters",
                        f.id.action.name(),
                        f.id.index,
                        refused.len(),
                        f.members.len()
                    ));
                    let contacts = f
                        .body
                        .as_deref()
                        .and_then(|body| shape.contacts_of(f.id.action, body));
                    for refusal in &refused {
                        letters.push(DeadLetter {
                            action: f.id.action,
                            batch: Some(f.id.index),
                            idempotency_key: Some(f.id.idempotency_key.clone()),
                            status: Some(status),
                            reason: refusal.reason.clone(),
                            response: Some(refusal.detail.clone()),
                            keys: vec![f.members[refusal.index].key.clone()],
                            body: contacts
                                .as_ref()
                                .and_then(|c| c.get(refusal.index))
                                .map(Value::to_string),
                        });
                    }
                }
                let refused: HashSet<usize> = refused.iter().map(|r| r.index).collect();
                for (index, member) in f.members.into_iter().enumerate() {
                    if refused.contains(&index) {
                        continue;
                    }
                    match f.id.action {
                        Action::Upsert => {
                            state.insert(
                                member.key,
                                Entry {
                                    hash: member.hash,
                                    identity: member.identity,
                                },
                            );
                        }
                        Action::Remove => {
                            state.remove(&member.key);
                        }
                    }
                }
            }
            Outcome::Rejected {
                status,
                response,
                endpoint_level,
            } => {
                rejected_batches += 1;
                if endpoint_level && endpoint_refusal.is_none() {
                    endpoint_refusal = Some((f.id.index, status));
                }
                ctx.warn(&format!(
                    "{} batch {} ({} contacts) was rejected with HTTP {status}; kept in the dead letters",
                    f.id.action.name(),
                    f.id.index,
                    f.members.len()
                ));
                letters.push(DeadLetter {
                    action: f.id.action,
                    batch: Some(f.id.index),
                    idempotency_key: Some(f.id.idempotency_key),
                    status: Some(status),
                    reason: format!("HTTP {status}"),
                    response: Some(dead_letter::response_text(&response)),
                    keys: f.members.iter().map(|m| m.key.clone()).collect(),
                    body: f.body.as_deref().map(dead_letter::response_text),
                });
            }
            Outcome::GaveUp(message) => {
                first_failure.get_or_insert(message);
            }
            Outcome::NotSent => {}
        }
    }
    let rejected_records: usize = letters.iter().map(DeadLetter::records).sum();
    let letters_path = ctx
        .step_dir()
        .join(format!("{}.parquet", dead_letter::DATASET));
    if !letters.is_empty() {
        dead_letter::write(ctx, &letters)?;
        ctx.warn(&format!(
            "{} contacts were not accepted; they are in dataset {}.{} ({})",
            rejected_records,
            ctx.step_id,
            dead_letter::DATASET,
            letters_path.display()
        ));
    }
    if tally.duplicates > 0 {
        ctx.warn(&format!(
            "{} rows repeat the `key` of an earlier row; all of them were sent",
            tally.duplicates
        ));
    }
    let delivered_batches = acked_batches;
    let not_delivered = (tally.batches as usize).saturating_sub(acked_batches + rejected_batches);
    if ctx.cancel.is_cancelled() {
        return Err(StepError::permanent(format!(
            "cancelled after {delivered_batches} batches were delivered (and recorded); `segflow resume` sends the rest"
        )));
    }
    if let Some((batch, status)) = endpoint_refusal {
        return Err(StepError::permanent(format!(
            "the endpoint refused batch {batch} with HTTP {status} (wrong URL, credentials or list?), so publishing stopped after {delivered_batches} delivered batches; the answer is in {}; fix the config and `segflow resume` the run to send the rest",
            letters_path.display()
        )));
    }
    if let Some(failure) = first_failure {
        return Err(StepError::new(format!(
            "{failure}; {delivered_batches} batches are delivered and recorded, the next attempt (or `segflow resume`) sends only the others"
        )));
    }
    if not_delivered > 0 {
        return Err(StepError::new(format!(
            "{not_delivered} of {} batches were not sent; the next attempt (or `segflow resume`) sends them",
            tally.batches
        )));
    }
    if rejected_batches > config.max_rejected_batches {
        return Err(StepError::permanent(format!(
            "the endpoint rejected {rejected_batches} batches ({rejected_records} contacts), more than `max_rejected_batches: {}`; see {} for its answers",
            config.max_rejected_batches,
            letters_path.display()
        )));
    }
    if !config.dry_run {
        sync_state::write(ctx, &state)?;
    }
    ctx.info(&format!(
        "done: {} contacts read, {sent} sent, {already} sent by an earlier attempt, {} unchanged, {removed} removed, {rejected_records} not accepted, in {} batches",
        tally.records, tally.unchanged, tally.batches
    ));
    Ok(StepOutput::default()
        .with("records", tally.records)
        .with("sent", sent)
        .with("already_sent", already)
        .with("unchanged", tally.unchanged)
        .with("removed", removed)
        .with("rejected", rejected_records as u64)
        .with("batches", tally.batches)
        .with("dry_run", config.dry_run)
        .with(sync_state::TARGET_OUTPUT, shared.target.fingerprint.clone()))
}
