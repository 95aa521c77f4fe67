//! `dry_run: true`: the exact requests, written to a file in the step folder instead of sent.

use std::io::Write;
use std::path::PathBuf;
use std::sync::Mutex;

use reqwest::Method;
use reqwest::header::HeaderMap;
use serde_json::{Map, Value, json};

use crate::redact;

pub const FILE_NAME: &str = "dry-run-requests.ndjson";

/// Headers whose whole value is a credential.
const CREDENTIALS: &[&str] = &["authorization", "x-api-key", "api-key", "cookie"];

pub struct DryRun {
    path: PathBuf,
    out: Mutex<std::io::BufWriter<std::fs::File>>,
}

impl DryRun {
    pub fn create(path: PathBuf) -> std::io::Result<Self> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent)?;
        }
        let file = std::fs::File::create(&path)?;
        Ok(DryRun {
            path,
            out: Mutex::new(std::io::BufWriter::new(file)),
        })
    }

    pub fn path(&self) -> &PathBuf {
        &self.path
    }

    /// One request as a JSON line: method, URL, headers (credentials masked), body.
    pub fn write(
        &self,
        method: &Method,
        url: &str,
        headers: &HeaderMap,
        body: &[u8],
    ) -> std::io::Result<()> {
        let mut shown = Map::new();
        for (name, value) in headers {
            let text = if CREDENTIALS.contains(&name.as_str()) {
                redact::MASK.to_string()
            } else {
                redact::apply(value.to_str().unwrap_or("<binary>")).into_owned()
            };
            shown.insert(name.as_str().to_string(), Value::String(text));
        }
        let body: Value = serde_json::from_slice(body)
            .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(body).into_owned()));
        let line = json!({
            "method": method.as_str(),
            "url": redact::apply(url),
            "headers": shown,
            "body": body,
        });
        let mut out = self.out.lock().unwrap_or_else(|e| e.into_inner());
        serde_json::to_writer(&mut *out, &line)?;
        out.write_all(b"\n")
    }

    pub fn finish(&self) -> std::io::Result<()> {
        self.out.lock().unwrap_or_else(|e| e.into_inner()).flush()
    }
}
