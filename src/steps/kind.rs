//! What a step kind is: the object-safe `StepKind` the engine drives, and the typed `Kind`
//! that built-in kinds implement (one file each, one line in the registry).

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::context::StepContext;
use crate::data::Column;
use crate::spec::deserialize::{FieldError, deserialize_all};
use crate::spec::yaml_path::YamlPath;

/// What `segflow validate` knows when it checks a step's `with`.
pub struct CheckContext<'a> {
    pub step_id: &'a str,
    pub needs: &'a [String],
    /// The folder relative paths are read from.
    pub base_dir: &'a Path,
    /// Nodes of `with` holding expressions whose value is only known at run time.
    pub dynamic: Vec<YamlPath>,
    /// The columns of the main dataset of each needed step, for the steps whose columns can be
    /// known before the run (see `StepKind::output_columns`). A missing entry means "unknown".
    pub input_columns: &'a HashMap<String, Vec<Column>>,
}

impl CheckContext<'_> {
    /// The columns of the dataset a step reads: the table it names (`input`), else its only
    /// need. `None` when they are not known before the run.
    pub fn columns_of(&self, input: Option<&str>) -> Option<&[Column]> {
        let step = match input {
            Some(table) => table,
            None if self.needs.len() == 1 => self.needs[0].as_str(),
            None => return None,
        };
        self.input_columns.get(step).map(Vec::as_slice)
    }
}

/// What a finished step hands on (besides its datasets, written through the context).
#[derive(Debug, Default, Clone)]
pub struct StepOutput {
    pub outputs: Map<String, Value>,
}

impl StepOutput {
    pub fn with(mut self, name: &str, value: impl Into<Value>) -> Self {
        self.outputs.insert(name.to_string(), value.into());
        self
    }
}

/// Why a step attempt failed, and whether trying again could help.
#[derive(Debug)]
pub struct StepError {
    pub message: String,
    pub retryable: bool,
}

impl StepError {
    /// A failure worth retrying (network, busy database…).
    pub fn new(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            retryable: true,
        }
    }

    /// A failure no retry can fix (bad config, missing column…).
    pub fn permanent(message: impl Into<String>) -> Self {
        StepError {
            message: message.into(),
            retryable: false,
        }
    }
}

impl fmt::Display for StepError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl<E: std::error::Error + Send + Sync + 'static> From<E> for StepError {
    /// Errors from reading or computing data lose the values they quote: a step's reason is
    /// shown and sent far and wide, customer data is not.
    fn from(error: E) -> Self {
        StepError::new(crate::data::message_of(&error))
    }
}

/// The engine's view of a step kind.
#[async_trait]
pub trait StepKind: Send + Sync {
    fn name(&self) -> &str;
    fn description(&self) -> &str;
    /// JSON Schema of the `with` block.
    fn config_schema(&self) -> Value;
    /// The output names a step of this kind sets, or `None` when any name may appear.
    fn outputs(&self, with: &Value) -> Option<Vec<String>>;
    /// Checks a `with` block; paths in the errors are relative to `with`.
    fn check(&self, with: &Value, ctx: &CheckContext<'_>) -> Vec<FieldError>;
    /// The columns of the main dataset a step with this `with` writes, when they can be known
    /// before the run (from a file's header, or from the input's columns). `segflow validate`
    /// walks the plan in order, so each step's check sees its inputs' columns.
    fn output_columns(&self, _with: &Value, _ctx: &CheckContext<'_>) -> Option<Vec<Column>> {
        None
    }
    /// Runs one attempt; `with` has its expressions evaluated.
    async fn run(&self, with: Value, ctx: &StepContext) -> Result<StepOutput, StepError>;
}

/// A built-in step kind with a typed config.
#[async_trait]
pub trait Kind: Send + Sync + 'static {
    const NAME: &'static str;
    const DESCRIPTION: &'static str;
    /// The outputs every step of this kind sets.
    const OUTPUTS: &'static [&'static str] = &[];
    type Config: DeserializeOwned + JsonSchema + Send + Sync;

    /// The outputs a step with this config sets; `None` when any name may appear.
    fn outputs(&self, _config: &Self::Config) -> Option<Vec<String>> {
        Some(Self::OUTPUTS.iter().map(|s| s.to_string()).collect())
    }

    /// Checks beyond the config's shape (a file exists, bounds agree, columns exist…).
    fn check(&self, _config: &Self::Config, _ctx: &CheckContext<'_>) -> Vec<FieldError> {
        Vec::new()
    }

    /// The columns of the main dataset a step with this config writes, when known before the
    /// run; `None` (the default) when they are not.
    fn output_columns(
        &self,
        _config: &Self::Config,
        _ctx: &CheckContext<'_>,
    ) -> Option<Vec<Column>> {
        None
    }

    async fn run(&self, config: Self::Config, ctx: &StepContext) -> Result<StepOutput, StepError>;
}

/// Adapts a typed `Kind` to the engine's `StepKind`.
pub struct Typed<K>(pub K);

#[async_trait]
impl<K: Kind> StepKind for Typed<K> {
    fn name(&self) -> &str {
        K::NAME
    }

    fn description(&self) -> &str {
        K::DESCRIPTION
    }

    fn config_schema(&self) -> Value {
        // Inlined, so the schema can sit inside the pipeline schema without dangling `$ref`s.
        let settings = schemars::generate::SchemaSettings::draft2020_12().with(|s| {
            s.inline_subschemas = true;
        });
        let schema = settings
            .into_generator()
            .into_root_schema_for::<K::Config>();
        serde_json::to_value(schema).expect("schemas serialize")
    }

    fn outputs(&self, with: &Value) -> Option<Vec<String>> {
        match serde_json::from_value::<K::Config>(with.clone()) {
            Ok(config) => self.0.outputs(&config),
            Err(_) if K::OUTPUTS.is_empty() => None,
            Err(_) => Some(K::OUTPUTS.iter().map(|s| s.to_string()).collect()),
        }
    }

    fn check(&self, with: &Value, ctx: &CheckContext<'_>) -> Vec<FieldError> {
        match deserialize_all::<K::Config>(with, &ctx.dynamic) {
            Ok(config) => self.0.check(&config, ctx),
            Err(errors) => errors,
        }
    }

    fn output_columns(&self, with: &Value, ctx: &CheckContext<'_>) -> Option<Vec<Column>> {
        let config = deserialize_all::<K::Config>(with, &ctx.dynamic).ok()?;
        self.0.output_columns(&config, ctx)
    }

    async fn run(&self, with: Value, ctx: &StepContext) -> Result<StepOutput, StepError> {
        let config = deserialize_all::<K::Config>(&with, &[]).map_err(|errors| {
            let lines: Vec<String> = errors
                .iter()
                .map(|e| format!("with.{}: {}", e.path, e.message))
                .collect();
            StepError::permanent(format!("invalid config: {}", lines.join("; ")))
        })?;
        self.0.run(config, ctx).await
    }
}
