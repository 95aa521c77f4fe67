//! The endpoint side of a config, resolved and checked: URLs, headers, limits, signing.

use reqwest::Method;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Value, json};
use sha2::{Digest as _, Sha256};

use super::config::WebhookConfig;
use super::preset::{Action, Preset, Rate, hex};
use super::signing::Signer;

/// The endpoint side of a config, resolved.
pub struct Target {
    pub preset: Preset,
    pub upsert: (Method, String),
    pub remove: (Method, String),
    pub headers: HeaderMap,
    pub batch_size: usize,
    pub max_bytes: Option<usize>,
    pub rate: Option<Rate>,
    pub signer: Option<Signer>,
    /// What identifies the endpoint (preset, URL, list) for the sync state.
    pub fingerprint: String,
}

impl Target {
    pub fn resolve(config: &WebhookConfig) -> Result<Self, String> {
        let preset = config.preset;
        let limits = preset.limits();
        let base = match config.url.as_deref().map(str::trim).filter(|u| !u.is_empty()) {
            Some(url) => url.to_string(),
            None => preset.default_base(config.api_key.as_deref()).ok_or_else(|| {
                match preset {
                    Preset::Mailchimp => "set `url` (https://<dc>.api.mailchimp.com) or an `api_key` ending in its data centre (`…-us6`)".to_string(),
                    _ => format!("the {} preset needs `url`", preset.name()),
                }
            })?,
        };
        let parsed =
            reqwest::Url::parse(&base).map_err(|e| format!("`url` is not a valid URL: {e}"))?;
        if !matches!(parsed.scheme(), "http" | "https") {
            return Err(format!(
                "`url` must be http or https, not {}",
                parsed.scheme()
            ));
        }
        if preset == Preset::Mailchimp && config.list_id.is_none() {
            return Err("the mailchimp preset needs `list_id` (the audience id)".into());
        }
        let endpoint = |action| {
            let (method, path) = preset.endpoint(action, config.list_id.as_deref());
            let url = if path.is_empty() {
                base.clone()
            } else {
                format!("{}{path}", base.trim_end_matches('/'))
            };
            (method, url)
        };
        let batch_size = config.batch_size.unwrap_or(limits.default_batch);
        if batch_size == 0 || batch_size > limits.max_records {
            return Err(format!(
                "`batch_size: {batch_size}` is outside what {} accepts (1 to {} contacts per request)",
                preset.name(),
                limits.max_records
            ));
        }
        if let Some(max) = limits.max_concurrency
            && config.concurrency > max
        {
            return Err(format!(
                "`concurrency: {}` is more than {} allows ({max} connections at once)",
                config.concurrency,
                preset.name()
            ));
        }
        if let Some(rate) = config.rate_limit
            && !(rate > 0.0 && rate.is_finite())
        {
            return Err(format!(
                "`rate_limit: {rate}` must be a positive number of requests per second"
            ));
        }
        let rate = config.rate_limit.map(Rate::steady).or(limits.default_rate);
        let mut headers = HeaderMap::new();
        let mut add = |name: &str, value: &str| -> Result<(), String> {
            let name = HeaderName::from_bytes(name.as_bytes())
                .map_err(|_| format!("`{name}` is not a valid header name"))?;
            let value = HeaderValue::from_str(value)
                .map_err(|_| format!("the value of header `{name}` is not valid in a header"))?;
            headers.insert(name, value);
            Ok(())
        };
        add("content-type", preset.content_type())?;
        add("accept", preset.content_type())?;
        match config.api_key.as_deref().filter(|k| !k.is_empty()) {
            Some(key) => {
                for (name, value) in preset.auth_headers(key, config.revision.as_deref()) {
                    add(&name, &value)?;
                }
            }
            None => {
                for (name, value) in preset.version_headers(config.revision.as_deref()) {
                    add(&name, &value)?;
                }
            }
        }
        for (name, value) in &config.headers {
            add(name, value).map_err(|e| format!("`headers`: {e}"))?;
        }
        let signer = config
            .secret
            .as_deref()
            .filter(|s| !s.is_empty())
            .map(Signer::from_secret)
            .transpose()
            .map_err(|e| format!("`secret`: {e}"))?;
        let upsert = endpoint(Action::Upsert);
        let remove = endpoint(Action::Remove);
        let fingerprint = short_hash(&json!({
            "preset": preset,
            "url": upsert.1,
            "list": config.list_id,
        }));
        Ok(Target {
            preset,
            upsert,
            remove,
            headers,
            batch_size,
            max_bytes: limits.max_bytes,
            rate,
            signer,
            fingerprint,
        })
    }

    pub fn endpoint(&self, action: Action) -> &(Method, String) {
        match action {
            Action::Upsert => &self.upsert,
            Action::Remove => &self.remove,
        }
    }
}

pub fn short_hash(value: &Value) -> String {
    let bytes = serde_json::to_vec(value).expect("JSON values serialize");
    hex(&Sha256::digest(&bytes)[..8])
}
