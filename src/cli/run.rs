//! `segflow run PIPELINE [-p name=value]...`: runs a pipeline now.

use std::process::ExitCode;

use indexmap::IndexMap;

use super::Global;
use super::common::{
    execute_with_progress, load_pipeline_with_registry, open_store, print_diagnostics, secrets,
};
use crate::engine::Engine;
use crate::spec::params::parse_assignment;
use crate::store::RunTrigger;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A pipeline file, or a pipeline's name in pipelines/.
    pub pipeline: String,
    /// Set a param: -p as_of=2026-11-23 (repeatable).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE", value_parser = parse_assignment)]
    pub params: Vec<(String, String)>,
}

pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let (registry, loaded) = load_pipeline_with_registry(&args.pipeline)?;
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            print_diagnostics(&diagnostics);
            return Ok(ExitCode::FAILURE);
        }
    };
    let state = open_store(global, Some(&loaded.source.path))?;
    let params: IndexMap<String, String> = args.params.into_iter().collect();
    let engine = Engine::new(
        registry.clone(),
        state.store.clone(),
        secrets(global, &state.dir)?,
    );
    let run = engine.create_run(&loaded, &params, RunTrigger::Manual, None)?;
    drop(engine);
    execute_with_progress(global, state, registry, &run.id).await
}
