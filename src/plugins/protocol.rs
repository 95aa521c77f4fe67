//! The plugin protocol: one JSON request on the program's stdin, one JSON result on its stdout.
//! docs/plugins.md spells it out for plugin authors; keep the two in step.

use std::path::PathBuf;

use indexmap::IndexMap;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// The protocol version this segflow speaks, in `plugin.yaml`, each request and each result.
pub const PROTOCOL_VERSION: u32 = 1;

/// Exit codes (from sysexits.h) that mark a failure no retry can fix: bad usage, bad input
/// data, bad configuration. Any other non-zero exit is a failure the step's retry policy may retry.
pub const PERMANENT_EXIT_CODES: [i32; 3] = [64, 65, 78];

/// What segflow writes on the program's stdin (one line of JSON, then stdin is closed).
#[derive(Debug, Serialize)]
pub struct Request {
    pub protocol: u32,
    pub plugin: PluginInfo,
    /// The kind's name within the plugin (`score` for `plugin.churn.score`).
    pub kind: String,
    pub step: StepInfo,
    pub run: RunInfo,
    /// The step's `with`, its expressions evaluated (secrets included where it names them).
    pub with: Value,
    /// Every dataset of the steps this one needs.
    pub inputs: Vec<InputDataset>,
    /// Where the program writes its datasets; it exists and is empty.
    pub output_dir: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct PluginInfo {
    pub name: String,
    pub version: String,
    /// The plugin's folder (also the program's working folder).
    pub dir: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct StepInfo {
    pub id: String,
    /// 1 for the first attempt, 2 for the first retry…
    pub attempt: u32,
}

#[derive(Debug, Serialize)]
pub struct RunInfo {
    pub id: String,
    pub pipeline: String,
    /// The run's params, resolved.
    pub params: IndexMap<String, Value>,
    /// The project folder (the one holding `pipelines/` and `plugins/`).
    pub project_dir: PathBuf,
}

#[derive(Debug, Serialize)]
pub struct InputDataset {
    /// The upstream step that wrote it.
    pub step: String,
    /// `main`, or the name of another dataset of that step (`rejected`).
    pub name: String,
    /// The name SQL steps know it by: the step id for `main`, else `step.name`.
    pub table: String,
    /// Absolute path of the file.
    pub path: PathBuf,
    /// `parquet` or `csv`, as the kind's `inputs.format` asks.
    pub format: String,
    pub rows: u64,
    pub columns: Vec<InputColumn>,
}

#[derive(Debug, Serialize)]
pub struct InputColumn {
    pub name: String,
    /// The Arrow type (`Int64`, `Float64`, `Utf8`, `Date32`…).
    #[serde(rename = "type")]
    pub data_type: String,
}

/// What the program writes on its stdout.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Response {
    pub protocol: u32,
    /// Small values downstream steps read as `steps.ID.outputs.NAME`.
    #[serde(default)]
    pub outputs: Map<String, Value>,
    /// The datasets it wrote into `output_dir`.
    #[serde(default)]
    pub datasets: Vec<OutputDataset>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OutputDataset {
    /// The dataset's name: `main` is what downstream steps see under the step id.
    #[serde(default = "main_name")]
    pub name: String,
    /// The file, relative to `output_dir`.
    pub file: String,
    /// `parquet`, `csv` (with a header line) or `ndjson`; by default from the file's extension.
    #[serde(default)]
    pub format: Option<OutputFormat>,
    /// Arrow types of CSV or NDJSON columns (`{"customer_id": "Utf8"}`), over the types taken
    /// from same-named input columns and those inferred from the values.
    #[serde(default)]
    pub types: IndexMap<String, String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OutputFormat {
    Parquet,
    Csv,
    Ndjson,
}

impl OutputFormat {
    /// The format a file's extension names, if any.
    pub fn from_extension(file: &str) -> Option<Self> {
        let extension = std::path::Path::new(file)
            .extension()?
            .to_str()?
            .to_ascii_lowercase();
        match extension.as_str() {
            "parquet" => Some(OutputFormat::Parquet),
            "csv" => Some(OutputFormat::Csv),
            "ndjson" | "jsonl" => Some(OutputFormat::Ndjson),
            _ => None,
        }
    }
}

fn main_name() -> String {
    crate::data::MAIN_DATASET.to_string()
}

/// Reads a program's stdout as a result, with errors that tell a plugin author what to fix.
pub fn parse_response(stdout: &[u8]) -> Result<Response, String> {
    let text = String::from_utf8_lossy(stdout);
    let text = text.trim();
    if text.is_empty() {
        return Err(format!(
            "it printed nothing on stdout; a plugin ends by printing its result, like {{\"protocol\": {PROTOCOL_VERSION}, \"outputs\": {{}}, \"datasets\": []}}"
        ));
    }
    let value: Value = serde_json::from_str(text).map_err(|e| {
        format!(
            "its stdout is not one JSON result ({e}); write logs to stderr, and only the result to stdout"
        )
    })?;
    let Some(object) = value.as_object() else {
        return Err(
            "its result must be a JSON object with `protocol`, `outputs` and `datasets`".into(),
        );
    };
    // The version first: a result of another version may fail to parse for that very reason.
    match object.get("protocol") {
        None => {
            return Err(format!(
                "its result has no `protocol`; add \"protocol\": {PROTOCOL_VERSION}"
            ));
        }
        Some(Value::Number(n)) if n.as_u64() == Some(u64::from(PROTOCOL_VERSION)) => {}
        Some(other) => {
            return Err(format!(
                "it answered in protocol version {other}, but this segflow speaks protocol version {PROTOCOL_VERSION}; update the plugin or segflow so they agree"
            ));
        }
    }
    serde_path_to_error::deserialize::<_, Response>(value).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.inner().to_string();
        if path == "." || path.is_empty() {
            format!("its result is not valid: {inner}")
        } else {
            format!("its result is not valid at `{path}`: {inner}")
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_a_result() {
        let response = parse_response(
            br#"{"protocol": 1, "outputs": {"n": 3}, "datasets": [{"file": "out.csv"}]}"#,
        )
        .expect("valid");
        assert_eq!(response.outputs["n"], 3);
        assert_eq!(response.datasets[0].name, "main");
        assert_eq!(
            OutputFormat::from_extension(&response.datasets[0].file),
            Some(OutputFormat::Csv)
        );
    }

    #[test]
    fn names_both_versions_on_a_mismatch() {
        let error = parse_response(br#"{"protocol": 2}"#).unwrap_err();
        assert!(error.contains("protocol version 2"), "{error}");
        assert!(error.contains("protocol version 1"), "{error}");
    }

    #[test]
    fn explains_missing_or_mixed_output() {
        let error = parse_response(b"").unwrap_err();
        assert!(error.contains("printed nothing"), "{error}");
        let error = parse_response(b"working...\n{\"protocol\": 1}").unwrap_err();
        assert!(error.contains("write logs to stderr"), "{error}");
        let error = parse_response(br#"{"protocol": 1, "output": {}}"#).unwrap_err();
        assert!(error.contains("unknown field `output`"), "{error}");
    }
}
