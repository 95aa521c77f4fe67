//! `noop`: does nothing, optionally setting outputs. For wiring tests and engine benchmarks.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value};

use super::{Kind, StepContext, StepError, StepOutput};

pub struct Noop;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct NoopConfig {
    /// Outputs the step sets, as given.
    #[serde(default)]
    pub outputs: Map<String, Value>,
}

#[async_trait]
impl Kind for Noop {
    const NAME: &'static str = "noop";
    const DESCRIPTION: &'static str = "Does nothing; sets the outputs it is given.";
    type Config = NoopConfig;

    fn outputs(&self, config: &NoopConfig) -> Option<Vec<String>> {
        Some(config.outputs.keys().cloned().collect())
    }

    async fn run(&self, config: NoopConfig, _ctx: &StepContext) -> Result<StepOutput, StepError> {
        Ok(StepOutput {
            outputs: config.outputs,
        })
    }
}
