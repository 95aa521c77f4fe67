//! The command line: one file per subcommand; this file parses arguments and dispatches.

#[macro_use]
mod output;
mod backfill;
mod common;
mod data;
mod graph;
mod logs;
mod next;
mod plugins;
mod progress;
mod resume;
mod retry;
mod run;
mod runs;
mod schema;
mod serve;
mod validate;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use crate::logging::{self, LogFormat};

#[derive(Debug, Parser)]
#[command(
    name = "segflow",
    version,
    about = "Customer-segmentation pipelines: gather, clean, segment, validate with holdouts, publish.",
    propagate_version = true
)]
pub struct Cli {
    #[command(flatten)]
    pub global: Global,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Args)]
pub struct Global {
    /// Where runs are kept (default: .segflow/ beside the pipelines).
    #[arg(long, global = true, env = "SEGFLOW_HOME", value_name = "DIR")]
    pub state_dir: Option<PathBuf>,
    /// A file of NAME=value lines for `${{ secrets.NAME }}` (default: .segflow/secrets.env).
    #[arg(long, global = true, env = "SEGFLOW_SECRETS_FILE", value_name = "FILE")]
    pub secrets: Option<PathBuf>,
    /// Log format on stderr.
    #[arg(long, global = true, value_enum, default_value = "human")]
    pub log_format: LogFormat,
    /// More log detail (-v info, -vv debug).
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Check pipeline files and report every problem with its line.
    Validate(validate::Args),
    /// Print a pipeline's DAG as Mermaid or Graphviz dot.
    Graph(graph::Args),
    /// Run a pipeline now.
    Run(run::Args),
    /// List runs or show one.
    Runs(runs::Args),
    /// Print or export one dataset of a run (`--format table|csv|json|ndjson`).
    Data(data::Args),
    /// Print a run's logs, of one step or all.
    Logs(logs::Args),
    /// Finish an interrupted, failed or cancelled run; steps that succeeded are not run again.
    Resume(resume::Args),
    /// Run a step of a finished run again, and every step after it.
    Retry(retry::Args),
    /// Print the JSON Schema of pipeline files.
    Schema(schema::Args),
    /// The plugins in plugins/ and the step kinds they add.
    Plugins(plugins::Args),
    /// Serve the pipelines of a folder: scheduled runs, the HTTP API and the web UI.
    Serve(serve::Args),
    /// Run a pipeline for each of its past fire times in a range of days.
    Backfill(backfill::Args),
    /// Print the next fire times of a pipeline's schedule.
    Next(next::Args),
}

pub fn main() -> ExitCode {
    let cli = Cli::parse();
    let progress_shown = matches!(
        cli.command,
        Command::Run(_) | Command::Resume(_) | Command::Retry(_) | Command::Backfill(_)
    );
    // A service tells what it does (fire times, runs started and ended) by default.
    let verbosity = match cli.command {
        Command::Serve(_) => cli.global.verbose.max(1),
        _ => cli.global.verbose,
    };
    logging::init(cli.global.log_format, verbosity, progress_shown);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(dispatch(cli));
    match result {
        Ok(code) => code,
        Err(error) if output::is_broken_pipe(&error) => ExitCode::SUCCESS,
        Err(error) => {
            let message = format!("{error:#}");
            if logging::is_json() {
                tracing::error!(target: "segflow", "{}", crate::redact::apply(&message));
            } else {
                eprintln!("error: {}", crate::redact::apply(&message));
            }
            ExitCode::FAILURE
        }
    }
}

async fn dispatch(cli: Cli) -> anyhow::Result<ExitCode> {
    let global = &cli.global;
    match cli.command {
        Command::Validate(args) => validate::run(args, global),
        Command::Graph(args) => graph::run(args, global),
        Command::Run(args) => run::run(args, global).await,
        Command::Runs(args) => runs::run(args, global),
        Command::Data(args) => data::run(args, global).await,
        Command::Logs(args) => logs::run(args, global),
        Command::Resume(args) => resume::run(args, global).await,
        Command::Retry(args) => retry::run(args, global).await,
        Command::Schema(args) => schema::run(args, global),
        Command::Plugins(args) => plugins::run(args, global),
        Command::Serve(args) => serve::run(args, global).await,
        Command::Backfill(args) => backfill::run(args, global).await,
        Command::Next(args) => next::run(args, global),
    }
}
