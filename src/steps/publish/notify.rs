//! `notify.webhook`: posts a Slack-compatible message (`{"text": …, "blocks": […]}`) with the
//! run's summary — typically with `trigger: one_failed`, to tell people a run needs them.

use std::time::Duration;

use async_trait::async_trait;
use bytes::Bytes;
use indexmap::IndexMap;
use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::webhook::delivery::{Delivery, RetrySettings, Sender};
use super::webhook::preset::hex;
use crate::redact;
use crate::spec::deserialize::FieldError;
use crate::spec::duration::HumanDuration;
use crate::spec::yaml_path::YamlPath;
use crate::steps::{CheckContext, Kind, StepContext, StepError, StepOutput};
use crate::store::{StepRecord, StepState};

pub struct NotifyWebhook;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NotifyConfig {
    /// Where to post (a Slack incoming webhook, or anything that takes the same JSON).
    pub url: String,
    /// A first line of your own (default: what happened to which pipeline).
    #[serde(default)]
    pub text: Option<String>,
    /// More request headers.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// Time limit of one request (default 10s).
    #[serde(default)]
    pub timeout: Option<HumanDuration>,
    /// Tries, the first included (default 3).
    #[serde(default = "default_attempts")]
    #[schemars(range(min = 1))]
    pub attempts: u32,
}

fn default_attempts() -> u32 {
    3
}

/// Slack caps a section's text at 3,000 characters.
const SECTION_LIMIT: usize = 2_900;
/// Slack refuses (HTTP 400) a message of more than 50 blocks.
const MAX_BLOCKS: usize = 50;

#[async_trait]
impl Kind for NotifyWebhook {
    const NAME: &'static str = "notify.webhook";
    const DESCRIPTION: &'static str = "Posts a Slack-compatible message with the run's summary (run, pipeline, step states, errors).";
    const OUTPUTS: &'static [&'static str] = &["status"];
    type Config = NotifyConfig;

    fn check(&self, config: &NotifyConfig, ctx: &CheckContext<'_>) -> Vec<FieldError> {
        let url_path = YamlPath::root().key("url");
        if ctx.dynamic.iter().any(|d| d.starts_with(&url_path)) {
            return Vec::new();
        }
        match reqwest::Url::parse(&config.url) {
            Ok(url) if matches!(url.scheme(), "http" | "https") => Vec::new(),
            _ => vec![FieldError {
                path: url_path,
                message: "`url` is not an http(s) URL".into(),
                hint: None,
                at_key: false,
            }],
        }
    }

    async fn run(&self, config: NotifyConfig, ctx: &StepContext) -> Result<StepOutput, StepError> {
        let run = ctx.store.get_run(&ctx.run_id)?.ok_or_else(|| {
            StepError::permanent(format!("run {} is not in the store", ctx.run_id))
        })?;
        let steps: Vec<StepRecord> = ctx
            .store
            .get_steps(&ctx.run_id)?
            .into_iter()
            .filter(|s| s.id != ctx.step_id)
            .collect();
        let message = message(&run.id, &run.pipeline, config.text.as_deref(), &steps);
        let body = Bytes::from(serde_json::to_vec(&message).expect("JSON values serialize"));

        let mut headers = HeaderMap::new();
        headers.insert(
            HeaderName::from_static("content-type"),
            HeaderValue::from_static("application/json"),
        );
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                StepError::permanent(format!("`headers`: `{name}` is not a valid header name"))
            })?;
            let value = HeaderValue::from_str(value).map_err(|_| {
                StepError::permanent(format!(
                    "`headers`: the value of `{name}` is not valid in a header"
                ))
            })?;
            headers.insert(name, value);
        }
        let sender = Sender::new(
            headers,
            None,
            None,
            config.timeout.map_or(Duration::from_secs(10), |t| t.0),
            1,
            RetrySettings {
                attempts: config.attempts.max(1),
                delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(10),
                max_wait: Duration::from_secs(60),
            },
        )
        .map_err(StepError::permanent)?;
        let key = format!(
            "msg_{}",
            &hex(&<sha2::Sha256 as sha2::Digest>::digest(
                format!("{}/{}", ctx.run_id, ctx.step_id).as_bytes()
            ))[..32]
        );
        // The URL itself is often the credential (Slack): only its host is ever logged.
        let host = reqwest::Url::parse(&config.url)
            .ok()
            .and_then(|u| u.host_str().map(str::to_string))
            .unwrap_or_default();
        match sender
            .deliver(
                &Method::POST,
                &config.url,
                body,
                &key,
                &ctx.cancel,
                &ctx.cancel,
            )
            .await
        {
            Delivery::Acked { status, .. } => {
                ctx.info(&format!("posted the run summary to {host} (HTTP {status})"));
                Ok(StepOutput::default().with("status", status))
            }
            Delivery::Rejected { status, .. } => Err(StepError::permanent(format!(
                "{host} refused the notification with HTTP {status}; check `url`"
            ))),
            Delivery::GaveUp { attempts, last } => Err(StepError::new(format!(
                "could not post the notification to {host} after {attempts} tries: {last}"
            ))),
            Delivery::Cancelled => Err(StepError::permanent("cancelled")),
        }
    }
}

fn icon(state: StepState) -> &'static str {
    match state {
        StepState::Succeeded => ":white_check_mark:",
        StepState::Failed | StepState::UpstreamFailed => ":x:",
        StepState::Skipped => ":fast_forward:",
        StepState::Cancelled | StepState::Interrupted => ":octagonal_sign:",
        StepState::Pending | StepState::Running | StepState::Retrying => ":hourglass:",
    }
}

fn cut(text: &str, limit: usize) -> String {
    if text.chars().count() <= limit {
        return text.to_string();
    }
    let mut out: String = text.chars().take(limit).collect();
    out.push('…');
    out
}

/// The Slack message: a plain `text` (for notifications and clients without blocks) and blocks
/// with one line per step and each failed step's error.
pub fn message(run_id: &str, pipeline: &str, text: Option<&str>, steps: &[StepRecord]) -> Value {
    let failed: Vec<&StepRecord> = steps
        .iter()
        .filter(|s| s.state == StepState::Failed)
        .collect();
    let headline = match (text, failed.as_slice()) {
        (Some(text), _) => text.to_string(),
        (None, []) => format!("segflow: pipeline {pipeline}, run {run_id}: no step failed"),
        (None, failed) => format!(
            "segflow: pipeline {pipeline}, run {run_id}: {} failed",
            failed
                .iter()
                .map(|s| s.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    let lines: Vec<String> = steps
        .iter()
        .map(|s| format!("{} `{}` {}", icon(s.state), s.id, s.state.name()))
        .collect();
    let mut blocks = vec![
        json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&headline, SECTION_LIMIT)}}),
        json!({"type": "context", "elements": [
            {"type": "mrkdwn", "text": format!("pipeline *{pipeline}* · run `{run_id}` · `segflow runs show {run_id}`")}
        ]}),
        json!({"type": "section", "text": {"type": "mrkdwn", "text": cut(&lines.join("\n"), SECTION_LIMIT)}}),
    ];
    // One block per failed step while they fit; past that, the first ones and a last block
    // naming the others, so the message stays within Slack's 50 blocks.
    let shown = if blocks.len() + failed.len() <= MAX_BLOCKS {
        failed.len()
    } else {
        MAX_BLOCKS - blocks.len() - 1
    };
    for step in &failed[..shown] {
        let reason = step.reason.as_deref().unwrap_or("no reason recorded");
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": cut(&format!("*{}* failed:\n```{}```", step.id, redact::apply(reason)), SECTION_LIMIT)}}));
    }
    if shown < failed.len() {
        let rest: Vec<&str> = failed[shown..].iter().map(|s| s.id.as_str()).collect();
        blocks.push(json!({"type": "section", "text": {"type": "mrkdwn",
            "text": cut(&format!(
                "…and {} more failed steps: {}. Every error: `segflow runs show {run_id}`",
                rest.len(),
                rest.join(", ")
            ), SECTION_LIMIT)}}));
    }
    let mut plain = headline;
    for step in &failed {
        plain.push_str(&format!(
            "\n{}: {}",
            step.id,
            redact::apply(step.reason.as_deref().unwrap_or("no reason recorded"))
        ));
    }
    json!({ "text": cut(&plain, SECTION_LIMIT), "blocks": blocks })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_failed_steps_and_their_errors() {
        let mut ok = StepRecord::pending("rfm", "noop", 0);
        ok.state = StepState::Succeeded;
        let mut bad = StepRecord::pending("sync", "publish.webhook", 1);
        bad.state = StepState::Failed;
        bad.reason = Some("HTTP 401".into());
        let m = message("01run", "weekly-rfm", None, &[ok, bad]);
        let text = m["text"].as_str().unwrap();
        assert!(
            text.contains("weekly-rfm") && text.contains("01run") && text.contains("sync"),
            "{text}"
        );
        assert!(text.contains("HTTP 401"), "{text}");
        let blocks = m["blocks"].as_array().unwrap();
        assert!(
            blocks[2]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("`rfm` succeeded")
        );
        assert!(
            blocks[3]["text"]["text"]
                .as_str()
                .unwrap()
                .contains("HTTP 401")
        );
    }

    #[test]
    fn sixty_failed_steps_fit_in_slacks_fifty_blocks() {
        let steps: Vec<StepRecord> = (0..60)
            .map(|i| {
                let mut step = StepRecord::pending(&format!("step{i}"), "shell", i);
                step.state = StepState::Failed;
                step.reason = Some(format!("exited with code {i}"));
                step
            })
            .collect();
        let m = message("01run", "big", None, &steps);
        let blocks = m["blocks"].as_array().unwrap();
        assert_eq!(blocks.len(), 50, "Slack refuses more than 50 blocks");
        let texts: Vec<&str> = blocks
            .iter()
            .filter_map(|b| b["text"]["text"].as_str())
            .collect();
        assert!(texts.iter().any(|t| t.contains("*step45* failed")));
        assert!(!texts.iter().any(|t| t.contains("*step46* failed")));
        let last = texts.last().unwrap();
        assert!(
            last.starts_with("…and 14 more failed steps: step46, step47")
                && last.contains("step59")
                && last.contains("segflow runs show 01run"),
            "{last}"
        );
        assert!(texts.iter().all(|t| t.chars().count() <= 3_000));
        // A handful of failures still get a block each.
        let m = message("01run", "small", None, &steps[..5]);
        assert_eq!(m["blocks"].as_array().unwrap().len(), 3 + 5);
    }
}
