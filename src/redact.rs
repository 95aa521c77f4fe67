//! Keeps secret values out of everything segflow writes: logs, state, reports.

use std::borrow::Cow;
use std::sync::RwLock;

static SECRETS: RwLock<Vec<String>> = RwLock::new(Vec::new());

pub const MASK: &str = "***";

/// Remembers a value to mask from now on. Very short values are not masked: masking `1` or `a`
/// would garble every log line and protect nothing.
pub fn register(secret: &str) {
    if secret.len() < 4 {
        return;
    }
    // JSON logs and state write a secret holding `"` or `\` escaped: mask that form too.
    let escaped = serde_json::to_string(secret).unwrap_or_default();
    let escaped = escaped.trim_matches('"');
    let mut secrets = SECRETS.write().unwrap_or_else(|e| e.into_inner());
    for form in [secret, escaped] {
        if !form.is_empty() && !secrets.iter().any(|s| s == form) {
            secrets.push(form.to_string());
        }
    }
    // Longest first, so a secret containing another is masked whole.
    secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
}

/// The text with every registered secret replaced by `***`.
pub fn apply(text: &str) -> Cow<'_, str> {
    let secrets = SECRETS.read().unwrap_or_else(|e| e.into_inner());
    if secrets.is_empty() || !secrets.iter().any(|s| text.contains(s.as_str())) {
        return Cow::Borrowed(text);
    }
    let mut out = text.to_string();
    for secret in secrets.iter() {
        out = out.replace(secret.as_str(), MASK);
    }
    Cow::Owned(out)
}

/// Redacts every string inside a JSON value.
pub fn apply_json(value: &mut serde_json::Value) {
    match value {
        serde_json::Value::String(s) => {
            if let Cow::Owned(clean) = apply(s) {
                *s = clean;
            }
        }
        serde_json::Value::Array(items) => items.iter_mut().for_each(apply_json),
        serde_json::Value::Object(map) => map.values_mut().for_each(apply_json),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_the_json_escaped_form_too() {
        register("pa\"ss\\word-42");
        let logged = serde_json::json!({ "message": "token pa\"ss\\word-42" }).to_string();
        assert_eq!(apply(&logged), r#"{"message":"token ***"}"#);
    }

    #[test]
    fn masks_registered_secrets() {
        register("s3cr3t-token-value");
        assert_eq!(apply("auth: s3cr3t-token-value!"), "auth: ***!");
        assert_eq!(apply("nothing here"), "nothing here");
    }
}
