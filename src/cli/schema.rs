//! `segflow schema`: the JSON Schema of pipeline files.

use std::process::ExitCode;

use super::Global;
use super::common::registry;
use crate::spec::schema::pipeline_schema;

#[derive(Debug, clap::Args)]
pub struct Args {}

pub fn run(_args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    out!(
        "{}",
        serde_json::to_string_pretty(&pipeline_schema(&registry()))?
    );
    Ok(ExitCode::SUCCESS)
}
