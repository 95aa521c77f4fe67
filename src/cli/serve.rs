//! `segflow serve --pipelines DIR`: the long-running service — the pipelines of a folder run on
//! their schedules, runs started through the HTTP API, and the web UI.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use super::Global;
use super::common::{self, open_store, registry_for, secrets};
use crate::engine::Engine;
use crate::schedule::SystemClock;
use crate::server::{self, AppState, ServerConfig};
use crate::service::reload::{RELOAD_INTERVAL, watch_pipelines};
use crate::service::{Catalog, Control, Launcher, LocalService, Scheduler};
use crate::spec::duration::HumanDuration;
use crate::store::{RunState, RunTrigger};

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The folder of pipeline files to serve.
    #[arg(long, value_name = "DIR", default_value = "pipelines")]
    pub pipelines: PathBuf,
    /// The address the HTTP API and web UI listen on.
    #[arg(long, value_name = "ADDR", default_value = "127.0.0.1:8080")]
    pub listen: SocketAddr,
    /// A file holding the bearer token that mutating API calls need (else SEGFLOW_API_TOKEN).
    #[arg(long, value_name = "FILE")]
    pub token_file: Option<PathBuf>,
    /// On SIGTERM or Ctrl-C, how long running steps get to finish before they are stopped.
    #[arg(long, value_name = "DURATION", default_value = "30s", value_parser = parse_duration)]
    pub grace: Duration,
}

fn parse_duration(text: &str) -> Result<Duration, String> {
    HumanDuration::parse(text).map(|d| d.0)
}

pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    if !args.pipelines.is_dir() {
        anyhow::bail!(
            "there is no folder {}; give the folder of your pipeline files with --pipelines DIR",
            args.pipelines.display()
        );
    }
    let token = api_token(args.token_file.as_deref())?;
    let config = ServerConfig {
        addr: args.listen,
        token: token.clone(),
    };
    // Any pipeline file of the folder tells where the project (and its state) is.
    let anchor = args.pipelines.join("pipeline.yaml");
    let project_dir = crate::spec::project_dir(&anchor);
    let listener = server::bind(&config).await?;
    let state = open_store(global, Some(&anchor))?;
    let registry = registry_for(&project_dir);
    let engine = Arc::new(Engine::new(
        registry.clone(),
        state.store.clone(),
        secrets(global, &state.dir)?,
    ));
    let catalog = Catalog::load(&args.pipelines, &registry);
    for entry in catalog.entries() {
        if let Some(error) = &entry.error {
            tracing::error!(file = %entry.file.display(), "pipeline does not load:\n{error}");
        }
    }
    let service = Arc::new(LocalService::new(registry, catalog, Launcher::new(engine)));
    resume_interrupted(&service, state.store.as_ref())?;

    let shutdown = CancellationToken::new();
    let app = AppState {
        store: state.store.clone(),
        control: service.clone() as Arc<dyn Control>,
        token: token.map(Arc::from),
    };
    let local = listener.local_addr().context("the listening address")?;
    eprintln!(
        "segflow is serving {} on http://{local}",
        args.pipelines.display()
    );
    let http = tokio::spawn(server::serve(listener, app, shutdown.clone()));
    let stop_scheduling = CancellationToken::new();
    let (reloaded, reloads) = tokio::sync::watch::channel(0u64);
    let watcher = tokio::spawn(watch_pipelines(
        service.clone(),
        RELOAD_INTERVAL,
        reloaded,
        stop_scheduling.clone(),
    ));
    let scheduler = tokio::spawn(
        Scheduler::new(service.clone(), Arc::new(SystemClock))
            .run(reloads, stop_scheduling.clone()),
    );
    common::signal_received(common::sigterm().as_mut()).await;
    eprintln!(
        "shutting down: no new runs start; running steps get {} to finish",
        humantime::format_duration(args.grace)
    );
    // The scheduler stops first, so no run starts while the others drain.
    stop_scheduling.cancel();
    let _ = scheduler.await;
    let _ = watcher.await;
    service.launcher.shutdown(args.grace).await;
    shutdown.cancel();
    match http.await {
        Ok(result) => result?,
        Err(error) => anyhow::bail!("the HTTP server crashed: {error}"),
    }
    Ok(ExitCode::SUCCESS)
}

/// The token from `--token-file`, else from SEGFLOW_API_TOKEN; blank means none.
fn api_token(file: Option<&std::path::Path>) -> anyhow::Result<Option<String>> {
    let token = match file {
        Some(file) => std::fs::read_to_string(file)
            .with_context(|| format!("cannot read the token file {}", file.display()))?,
        None => std::env::var("SEGFLOW_API_TOKEN").unwrap_or_default(),
    };
    let token = token.trim().to_string();
    Ok((!token.is_empty()).then_some(token))
}

/// Runs the service started (on a schedule or through the API) that a crash or a shutdown
/// interrupted go on where they stopped; so do those it had recorded but not yet begun.
/// (Runs started with `segflow run` or `segflow backfill` are left to `segflow resume`.)
fn resume_interrupted(
    service: &LocalService,
    store: &dyn crate::store::StateStore,
) -> anyhow::Result<()> {
    for run in store.list_runs(None, usize::MAX)? {
        let unfinished = matches!(run.state, RunState::Interrupted | RunState::Queued);
        let by_service = matches!(run.trigger, RunTrigger::Schedule | RunTrigger::Api);
        if !unfinished || !by_service {
            continue;
        }
        match service.launcher.resume(&run.id) {
            Ok(_) => {
                tracing::info!(run = %run.id, pipeline = %run.pipeline, "resuming an interrupted run")
            }
            Err(error) => {
                tracing::error!(run = %run.id, "cannot resume an interrupted run: {error}")
            }
        }
    }
    Ok(())
}
