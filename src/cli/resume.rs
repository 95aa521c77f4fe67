//! `segflow resume RUN`: finishes an interrupted, failed or cancelled run.

use std::process::ExitCode;

use super::Global;
use super::common::{execute_with_progress, open_store, registry_for_run, secrets};
use crate::engine::{Engine, resolve_run_id};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run id (or a unique prefix of it).
    pub run: String,
}

pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let state = open_store(global, None)?;
    let run_id = resolve_run_id(state.store.as_ref(), &args.run)?;
    let registry = registry_for_run(&state, &run_id)?;
    let engine = Engine::new(
        registry.clone(),
        state.store.clone(),
        secrets(global, &state.dir)?,
    );
    engine.prepare_resume(&run_id)?;
    drop(engine);
    execute_with_progress(global, state, registry, &run_id).await
}
