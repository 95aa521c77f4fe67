//! The `with` block of publish.webhook.

use std::time::Duration;

use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::preset::Preset;
use crate::spec::duration::HumanDuration;

/// `full` sends every row; `diff` only what changed since this step's last successful publish,
/// plus removals.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum SyncMode {
    #[default]
    Full,
    Diff,
}

/// Mailchimp member status for the contacts sent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum MemberStatus {
    #[default]
    Subscribed,
    Pending,
    Transactional,
}

impl MemberStatus {
    pub fn name(self) -> &'static str {
        match self {
            MemberStatus::Subscribed => "subscribed",
            MemberStatus::Pending => "pending",
            MemberStatus::Transactional => "transactional",
        }
    }
}

/// How hard each batch is tried before the step gives up (acknowledged batches stay recorded).
#[derive(Debug, Clone, Deserialize, Serialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DeliveryConfig {
    /// Tries per batch, the first included (default 8).
    #[serde(default = "default_attempts")]
    #[schemars(range(min = 1))]
    pub attempts: u32,
    /// Wait after the first failure; doubled after each (default 1s), with jitter.
    #[serde(default = "default_delay")]
    pub delay: HumanDuration,
    /// The longest backoff wait (default 1m).
    #[serde(default = "default_max_delay")]
    pub max_delay: HumanDuration,
    /// The longest `Retry-After` / `X-RateLimit-Reset` wait obeyed (default 5m).
    #[serde(default = "default_max_wait")]
    pub max_wait: HumanDuration,
}

impl Default for DeliveryConfig {
    fn default() -> Self {
        DeliveryConfig {
            attempts: default_attempts(),
            delay: default_delay(),
            max_delay: default_max_delay(),
            max_wait: default_max_wait(),
        }
    }
}

fn default_attempts() -> u32 {
    8
}
fn default_delay() -> HumanDuration {
    HumanDuration(Duration::from_secs(1))
}
fn default_max_delay() -> HumanDuration {
    HumanDuration(Duration::from_secs(60))
}
fn default_max_wait() -> HumanDuration {
    HumanDuration(Duration::from_secs(300))
}
fn default_concurrency() -> usize {
    4
}
fn default_true() -> bool {
    true
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WebhookConfig {
    /// The endpoint (generic preset), or the platform's API base URL (other presets; default:
    /// the platform's public API, for Mailchimp from the API key's data centre).
    #[serde(default)]
    pub url: Option<String>,
    /// generic (default), klaviyo, mailchimp, sendgrid or braze: the body, headers, endpoint
    /// path and batch limit of that platform's bulk API.
    #[serde(default)]
    pub preset: Preset,
    /// The dataset to send: `STEP` (its main dataset) or `STEP.NAME` (e.g. `split.rejected`);
    /// default: the main dataset of the only step in `needs`.
    #[serde(default)]
    pub dataset: Option<String>,
    /// A SQL condition over the dataset's columns; only matching rows are sent
    /// (e.g. `group = 'treatment'`).
    #[serde(default)]
    pub filter: Option<String>,
    /// Platform field ← column (e.g. `email: email_address`, `segment: rfm_segment`); default:
    /// every column under its own name. Dotted names nest (`location.city`).
    #[serde(default)]
    pub fields: Option<IndexMap<String, String>>,
    /// The column that identifies a customer (for `mode: diff`); default: the column mapped to
    /// the platform's identifier (email, external_id…).
    #[serde(default)]
    pub key: Option<String>,
    /// full (default) or diff.
    #[serde(default)]
    pub mode: SyncMode,
    /// Contacts per request (default: the preset's; never more than the platform allows).
    #[serde(default)]
    #[schemars(range(min = 1))]
    pub batch_size: Option<usize>,
    /// Requests in flight at once (default 4).
    #[serde(default = "default_concurrency")]
    #[schemars(range(min = 1, max = 256))]
    pub concurrency: usize,
    /// Requests per second on average, in bursts of up to one second's worth (default: the
    /// platform's documented limit, e.g. Klaviyo's 150 a minute; none for generic).
    #[serde(default)]
    pub rate_limit: Option<f64>,
    /// Standard Webhooks signing secret (`whsec_…`): requests carry `webhook-signature`.
    #[serde(default)]
    pub secret: Option<String>,
    /// The platform's API key, sent the way the platform expects (Bearer for generic).
    #[serde(default)]
    pub api_key: Option<String>,
    /// Klaviyo list the profiles join, Mailchimp audience id (required), or SendGrid list id.
    #[serde(default)]
    pub list_id: Option<String>,
    /// Klaviyo API revision header (default 2026-07-15).
    #[serde(default)]
    pub revision: Option<String>,
    /// Mailchimp member status (subscribed, pending, transactional; default subscribed).
    #[serde(default)]
    pub status: MemberStatus,
    /// Mailchimp `update_existing` (default true).
    #[serde(default = "default_true")]
    pub update_existing: bool,
    /// More request headers.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// Time limit of one request (default 30s).
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// Retries of one batch.
    #[serde(default)]
    pub delivery: DeliveryConfig,
    /// Batches the endpoint may reject (4xx) before the step fails (default 0). Rejected
    /// batches are kept in the `dead_letter` dataset either way.
    #[serde(default)]
    pub max_rejected_batches: usize,
    /// Write the exact requests to `dry-run-requests.ndjson` in the step folder instead of
    /// sending them.
    #[serde(default)]
    pub dry_run: bool,
}
