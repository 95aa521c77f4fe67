//! `sleep`: waits, then succeeds. For tests of timeouts, cancellation and concurrency.

use async_trait::async_trait;
use schemars::JsonSchema;
use serde::Deserialize;

use super::{Kind, StepContext, StepError, StepOutput};
use crate::spec::duration::HumanDuration;

pub struct Sleep;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SleepConfig {
    /// How long to wait, e.g. `500ms` or `2s`.
    pub duration: HumanDuration,
}

#[async_trait]
impl Kind for Sleep {
    const NAME: &'static str = "sleep";
    const DESCRIPTION: &'static str = "Waits for a duration, then succeeds.";
    type Config = SleepConfig;

    async fn run(&self, config: SleepConfig, ctx: &StepContext) -> Result<StepOutput, StepError> {
        tokio::select! {
            _ = tokio::time::sleep(config.duration.0) => Ok(StepOutput::default()),
            _ = ctx.cancel.cancelled() => Err(StepError::permanent("cancelled")),
        }
    }
}
