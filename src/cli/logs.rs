//! `segflow logs RUN [STEP]`: a run's logs.

use std::process::ExitCode;

use super::Global;
use super::common::open_store;
use crate::engine::resolve_run_id;
use crate::store::LogStream;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run id (or a unique prefix of it).
    pub run: String,
    /// Only this step's lines.
    pub step: Option<String>,
    /// One JSON object per line.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let state = open_store(global, None)?;
    let run_id = resolve_run_id(state.store.as_ref(), &args.run)?;
    if let Some(step) = &args.step {
        let steps = state.store.get_steps(&run_id)?;
        crate::store::find_step(&steps, &run_id, step)?;
    }
    for line in state.store.logs(&run_id, args.step.as_deref())? {
        if args.json {
            out!("{}", serde_json::to_string(&line)?);
            continue;
        }
        let stream = match line.stream {
            LogStream::Stdout => "",
            LogStream::Stderr => " [stderr]",
            LogStream::Info => " [segflow]",
            LogStream::Warn => " [warning]",
        };
        out!(
            "{} {}#{}{stream} {}",
            line.at.format("%H:%M:%S%.3f"),
            line.step,
            line.attempt,
            line.line
        );
    }
    Ok(ExitCode::SUCCESS)
}
