//! What several subcommands share: opening the store, the registry, secrets, running a run
//! with progress and Ctrl-C handling.

use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::Context as _;
use tokio_util::sync::CancellationToken;

use super::Global;
use super::progress::Progress;
use crate::engine::{Engine, mark_interrupted};
use crate::plugins::{self, Plugins};
use crate::project;
use crate::secrets::Secrets;
use crate::spec::{FileDiagnostics, LoadedPipeline};
use crate::steps::Registry;
use crate::store::{RunState, SledStore, StateStore};

/// The built-in kinds and the plugins of the project around the working folder.
pub fn registry() -> Arc<Registry> {
    registry_for(&project::current_project_dir())
}

/// The built-in kinds and the plugins of a project folder. Plugins that do not load are left
/// out, their problems printed (`segflow validate` and `segflow plugins list` count them).
pub fn registry_for(project_dir: &Path) -> Arc<Registry> {
    let (registry, plugins) = registry_with_plugins(project_dir);
    if plugins.error_count() > 0 {
        for problems in &plugins.problems {
            eprintln!("{}", problems.render(color_stderr()));
        }
        eprintln!(
            "note: plugins with errors are not loaded; `segflow plugins list` shows every problem"
        );
    }
    Arc::new(registry)
}

/// The registry of a project folder, with what its plugins folder holds (problems included).
pub fn registry_with_plugins(project_dir: &Path) -> (Registry, Plugins) {
    let mut registry = Registry::builtin();
    let plugins = plugins::load_project(project_dir);
    plugins.register(&mut registry);
    (registry, plugins)
}

/// The registry a recorded run needs: the plugins of the project it was started in.
pub fn registry_for_run(state: &State, run_id: &str) -> anyhow::Result<Arc<Registry>> {
    let run = state
        .store
        .get_run(run_id)?
        .ok_or_else(|| anyhow::anyhow!("there is no run `{run_id}`"))?;
    Ok(registry_for(&run.base_dir))
}

/// An open state folder.
pub struct State {
    pub dir: PathBuf,
    pub store: Arc<dyn StateStore>,
}

/// Opens the state folder and marks runs a dead process left behind as interrupted.
pub fn open_store(global: &Global, pipeline_file: Option<&Path>) -> anyhow::Result<State> {
    let dir = project::state_dir(global.state_dir.as_deref(), pipeline_file);
    let store = SledStore::open(&dir)?;
    let interrupted = mark_interrupted(&store)?;
    for run in interrupted {
        crate::logging::notice(&format!(
            "note: run {run} was interrupted; `segflow resume {run}` finishes it"
        ));
    }
    Ok(State {
        dir,
        store: Arc::new(store),
    })
}

pub fn secrets(global: &Global, state_dir: &Path) -> anyhow::Result<Arc<Secrets>> {
    let file = global
        .secrets
        .clone()
        .unwrap_or_else(|| state_dir.join("secrets.env"));
    Ok(Arc::new(Secrets::load(Some(&file))?))
}

pub fn color_stderr() -> bool {
    std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Loads a pipeline given by path or name with the registry of its project (its plugins).
pub fn load_pipeline_with_registry(
    given: &str,
) -> anyhow::Result<(Arc<Registry>, Result<LoadedPipeline, FileDiagnostics>)> {
    let path = project::find_pipeline(given).map_err(anyhow::Error::msg)?;
    let registry = registry_for(&crate::spec::project_dir(&path));
    let loaded = crate::spec::load(&path, &registry);
    Ok((registry, loaded))
}

pub fn print_diagnostics(diagnostics: &FileDiagnostics) {
    eprint!("{}", diagnostics.render(color_stderr()));
    let errors = diagnostics.error_count();
    eprintln!(
        "\n{}: {errors} error{}",
        diagnostics.source.path.display(),
        if errors == 1 { "" } else { "s" }
    );
}

/// Executes a prepared run with live progress; Ctrl-C (or SIGTERM) cancels it cleanly.
pub async fn execute_with_progress(
    global: &Global,
    state: State,
    registry: Arc<Registry>,
    run_id: &str,
) -> anyhow::Result<ExitCode> {
    let secrets = secrets(global, &state.dir)?;
    let (sink, events) = tokio::sync::mpsc::unbounded_channel();
    let engine = Engine::new(registry, state.store, secrets).with_events(sink);
    let cancel = CancellationToken::new();
    let progress = tokio::spawn(Progress::new().render(events));
    let signals = tokio::spawn(cancel_on_signal(cancel.clone()));
    let run = engine
        .execute(run_id, cancel)
        .await
        .context("the run stopped")?;
    signals.abort();
    drop(engine);
    let _ = progress.await;
    out!("{}", run_line(&run));
    if matches!(run.state, RunState::Cancelled | RunState::Failed) {
        crate::logging::notice(&format!("to finish it later: segflow resume {}", run.id));
    }
    Ok(if run.state == RunState::Succeeded {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// `run ID STATE[: error]`, the line a finished run is reported with (tests and scripts read it).
pub fn run_line(run: &crate::store::RunRecord) -> String {
    format!(
        "run {} {}{}",
        run.id,
        run.state.name(),
        run.error
            .as_deref()
            .map(|e| format!(": {e}"))
            .unwrap_or_default()
    )
}

/// Ctrl-C or SIGTERM cancels the run; a second one exits at once.
pub async fn cancel_on_signal(cancel: CancellationToken) {
    let Some(mut term) = sigterm() else {
        return;
    };
    signal_received(Some(&mut term)).await;
    crate::logging::notice(
        "cancelling the run (steps are being stopped; press Ctrl-C again to quit at once)",
    );
    cancel.cancel();
    signal_received(Some(&mut term)).await;
    crate::steps::process::kill_all_programs();
    std::process::exit(130);
}

/// A watch on SIGTERM, when one can be set up.
pub fn sigterm() -> Option<tokio::signal::unix::Signal> {
    tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok()
}

/// Waits for Ctrl-C or, when watched, SIGTERM.
pub async fn signal_received(term: Option<&mut tokio::signal::unix::Signal>) {
    match term {
        Some(term) => tokio::select! {
            _ = tokio::signal::ctrl_c() => {}
            _ = term.recv() => {}
        },
        None => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}
