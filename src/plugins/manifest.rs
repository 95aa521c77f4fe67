//! `plugins/NAME/plugin.yaml`: what a plugin says about itself and its step kinds.
//!
//! ```yaml
//! name: churn
//! version: 0.1.0
//! protocol: 1
//! kinds:
//!   score:
//!     description: Churn-risk score (0–1) from recency, frequency and monetary columns.
//!     executable: score.py
//!     args: ["--quiet"]
//!     inputs: { min: 1, max: 1, format: csv }
//!     writes: [main]
//!     outputs: [scored, high_risk]
//!     schema: { type: object, properties: { threshold: { type: number } } }
//! ```

use indexmap::IndexMap;
use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Value, json};

/// The whole `plugin.yaml`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The plugin's name: the same as its folder; its kinds are `plugin.NAME.KIND`.
    pub name: String,
    /// The plugin's own version, shown by `segflow plugins list` and sent in each request.
    /// `version: 1` or `version: 1.2` are read as the text they look like.
    #[serde(deserialize_with = "text_or_number")]
    pub version: String,
    #[serde(default)]
    pub description: Option<String>,
    /// The version of the request/result protocol the plugin speaks.
    pub protocol: u32,
    /// The step kinds, by name.
    pub kinds: IndexMap<String, KindManifest>,
}

/// One step kind of a plugin.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct KindManifest {
    pub description: String,
    /// The program to start, relative to the plugin's folder and inside it.
    pub executable: String,
    /// Arguments given to it, as a list (no shell reads them).
    #[serde(default)]
    pub args: Vec<String>,
    /// JSON Schema of the step's `with` (default: any mapping).
    #[serde(default = "any_mapping")]
    pub schema: Value,
    /// The upstream datasets it reads.
    #[serde(default)]
    pub inputs: InputsManifest,
    /// The datasets it writes (default: `main`, the one downstream steps see under the step id).
    #[serde(default = "main_only")]
    pub writes: Vec<String>,
    /// The outputs every step of the kind sets; without it any name is accepted.
    #[serde(default)]
    pub outputs: Option<Vec<String>>,
}

#[derive(Debug, Clone, Default, Deserialize, Serialize)]
#[serde(deny_unknown_fields)]
pub struct InputsManifest {
    /// The fewest upstream main datasets the kind needs.
    #[serde(default)]
    pub min: usize,
    /// The most it accepts (default: no limit).
    #[serde(default)]
    pub max: Option<usize>,
    /// How input datasets are handed over.
    #[serde(default)]
    pub format: InputFormat,
}

/// The file format of the input datasets given to a plugin.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum InputFormat {
    /// The run's own Parquet files, as they are.
    #[default]
    Parquet,
    /// CSV files with a header line, written for the plugin (for languages with no Parquet reader).
    Csv,
}

impl InputFormat {
    pub fn name(self) -> &'static str {
        match self {
            InputFormat::Parquet => "parquet",
            InputFormat::Csv => "csv",
        }
    }
}

fn text_or_number<'de, D: Deserializer<'de>>(deserializer: D) -> Result<String, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Version {
        Text(String),
        Number(serde_json::Number),
    }
    match Version::deserialize(deserializer) {
        Ok(Version::Text(text)) => Ok(text),
        Ok(Version::Number(number)) => Ok(number.to_string()),
        Err(_) => Err(serde::de::Error::custom(
            "`version` is text, like `version: 0.1.0`",
        )),
    }
}

fn any_mapping() -> Value {
    json!({ "type": "object" })
}

fn main_only() -> Vec<String> {
    vec![crate::data::MAIN_DATASET.to_string()]
}
