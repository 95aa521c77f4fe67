//! Secrets for `${{ secrets.NAME }}`: from `SEGFLOW_SECRET_NAME` variables or a secrets file.
//! Every secret that is read is registered with the redactor, so it never reaches a log,
//! the state store or a report.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::redact;

pub const ENV_PREFIX: &str = "SEGFLOW_SECRET_";

#[derive(Debug, Default)]
pub struct Secrets {
    file_values: BTreeMap<String, String>,
    file: Option<PathBuf>,
}

#[derive(Debug, thiserror::Error)]
pub enum SecretsError {
    #[error("cannot read the secrets file {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: expected NAME=value")]
    Syntax { path: PathBuf, line: usize },
}

impl Secrets {
    /// Reads `NAME=value` lines (blank lines and `#` comments allowed) when the file exists.
    pub fn load(file: Option<&Path>) -> Result<Self, SecretsError> {
        // Every secret segflow was given is masked, read or not: a program could print one
        // it found some other way.
        for (name, value) in std::env::vars_os() {
            if name.to_string_lossy().starts_with(ENV_PREFIX) {
                redact::register(&value.to_string_lossy());
            }
        }
        let Some(path) = file else {
            return Ok(Secrets::default());
        };
        if !path.exists() {
            return Ok(Secrets {
                file: Some(path.to_path_buf()),
                ..Secrets::default()
            });
        }
        let text = std::fs::read_to_string(path).map_err(|source| SecretsError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let mut file_values = BTreeMap::new();
        for (number, line) in text.lines().enumerate() {
            let line = line.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            let Some((name, value)) = line.split_once('=') else {
                return Err(SecretsError::Syntax {
                    path: path.to_path_buf(),
                    line: number + 1,
                });
            };
            let value = value.trim().trim_matches('"').to_string();
            redact::register(&value);
            file_values.insert(name.trim().to_string(), value);
        }
        Ok(Secrets {
            file_values,
            file: Some(path.to_path_buf()),
        })
    }

    /// The secret's value; registered with the redactor before it is handed out.
    pub fn get(&self, name: &str) -> Option<String> {
        let value = std::env::var(format!("{ENV_PREFIX}{name}"))
            .ok()
            .or_else(|| self.file_values.get(name).cloned())?;
        redact::register(&value);
        Some(value)
    }

    /// How to set a missing secret.
    pub fn how_to_set(&self, name: &str) -> String {
        match &self.file {
            Some(file) => format!(
                "set the environment variable {ENV_PREFIX}{name}, or add `{name}=...` to {}",
                file.display()
            ),
            None => format!("set the environment variable {ENV_PREFIX}{name}"),
        }
    }
}
