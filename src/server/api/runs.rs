//! `GET /api/runs`, `GET /api/runs/{id}`, `GET /api/runs/{id}/logs`, and cancel / resume.

use std::collections::HashMap;

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use axum::http::StatusCode;
use indexmap::IndexMap;
use serde_json::{Value, json};

use super::{limit_param, path_param, query_params};
use crate::engine::resolve_run_id;
use crate::server::ServerState;
use crate::server::error::{ApiError, ApiResult};
use crate::store::{RunRecord, RunState, find_step, run_summary};

const DEFAULT_RUNS: usize = 50;
const MAX_RUNS: usize = 1000;

const STATES: [RunState; 6] = [
    RunState::Queued,
    RunState::Running,
    RunState::Succeeded,
    RunState::Failed,
    RunState::Cancelled,
    RunState::Interrupted,
];

pub async fn list(
    State(state): State<ServerState>,
    query: Result<Query<IndexMap<String, String>>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let query = query_params(query, &["pipeline", "state", "limit"])?;
    let limit = limit_param(&query, DEFAULT_RUNS, MAX_RUNS)?;
    let pipeline = query.get("pipeline").filter(|p| !p.is_empty());
    let wanted = match query.get("state").filter(|s| !s.is_empty()) {
        None => None,
        Some(name) => Some(
            STATES
                .into_iter()
                .find(|s| s.name() == name)
                .ok_or_else(|| {
                    let names: Vec<&str> = STATES.iter().map(|s| s.name()).collect();
                    ApiError::bad_request(
                        format!("`state={name}` is not a run state"),
                        crate::spec::suggest::hint(name, names.iter().copied()).unwrap_or_default(),
                    )
                })?,
        ),
    };
    let store = &state.app.store;
    let runs = store.list_runs_where(
        &|r| pipeline.is_none_or(|p| *p == r.pipeline) && wanted.is_none_or(|w| r.state == w),
        limit,
    )?;
    let runs: Vec<Value> = runs.iter().map(run_summary).collect();
    Ok(Json(json!({ "runs": runs })))
}

/// A run with its steps (attempts, timings, outputs, datasets, what each needs) and events.
pub async fn show(
    State(state): State<ServerState>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let run = find_run(&state, &path_param(id)?)?;
    let store = &state.app.store;
    let needs = step_needs(&run.spec_text);
    let mut steps = Vec::new();
    for step in store.get_steps(&run.id)? {
        let mut value = serde_json::to_value(&step).map_err(ApiError::internal)?;
        value["needs"] = json!(needs.get(&step.id).cloned().unwrap_or_default());
        value["duration_ms"] = json!(step.duration_ms());
        steps.push(value);
    }
    let events = store.events(&run.id)?;
    let mut value = run_summary(&run);
    value["pipeline_file"] = json!(run.pipeline_file);
    value["duration_ms"] = json!(
        run.started_at
            .zip(run.ended_at)
            .map(|(start, end)| (end - start).num_milliseconds())
    );
    value["steps"] = Value::Array(steps);
    value["events"] = serde_json::to_value(&events).map_err(ApiError::internal)?;
    Ok(Json(value))
}

pub async fn logs(
    State(state): State<ServerState>,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<IndexMap<String, String>>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let run = find_run(&state, &path_param(id)?)?;
    let query = query_params(query, &["step"])?;
    let step = query.get("step").filter(|s| !s.is_empty());
    if let Some(step) = step {
        find_step(&state.app.store.get_steps(&run.id)?, &run.id, step)?;
    }
    let lines = state.app.store.logs(&run.id, step.map(String::as_str))?;
    Ok(Json(json!({ "run": run.id, "lines": lines })))
}

pub async fn cancel(
    State(state): State<ServerState>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let run = find_run(&state, &path_param(id)?)?;
    state.app.control.cancel(&run.id).map_err(|e| match e {
        crate::service::ControlError::Conflict(_) => ApiError::from(e).with_hint(format!(
            "the run is {}; only a running run can be cancelled",
            run.state.name()
        )),
        other => other.into(),
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "run": run.id, "cancelling": true })),
    ))
}

pub async fn resume(
    State(state): State<ServerState>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<(StatusCode, Json<Value>)> {
    let run = find_run(&state, &path_param(id)?)?;
    let resumed = state.app.control.resume(&run.id).map_err(|e| match e {
        crate::service::ControlError::Conflict(_) => ApiError::from(e).with_hint(
            "only an interrupted, failed or cancelled run that is not running can be resumed",
        ),
        other => other.into(),
    })?;
    Ok((
        StatusCode::ACCEPTED,
        Json(json!({ "run": resumed, "url": format!("/api/runs/{resumed}") })),
    ))
}

/// A run by its id or a unique prefix of it.
pub fn find_run(state: &ServerState, given: &str) -> ApiResult<RunRecord> {
    let store = state.app.store.as_ref();
    let id = resolve_run_id(store, given)?;
    store.get_run(&id)?.ok_or_else(|| {
        ApiError::not_found(
            format!("there is no run `{given}`"),
            "GET /api/runs lists the runs",
        )
    })
}

/// What each step needs, from the pipeline text the run was started with (the pipeline file
/// may have changed since). A text that no longer parses gives no edges.
fn step_needs(spec_text: &str) -> HashMap<String, Vec<String>> {
    let Ok(spec) = serde_yaml::from_str::<serde_yaml::Value>(spec_text) else {
        return HashMap::new();
    };
    let Some(steps) = spec.get("steps").and_then(|s| s.as_sequence()) else {
        return HashMap::new();
    };
    steps
        .iter()
        .filter_map(|step| {
            let id = step.get("id")?.as_str()?.to_string();
            let needs = step
                .get("needs")
                .and_then(|n| n.as_sequence())
                .map(|n| {
                    n.iter()
                        .filter_map(|x| x.as_str().map(str::to_string))
                        .collect()
                })
                .unwrap_or_default();
            Some((id, needs))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn needs_come_from_the_runs_pipeline_text() {
        let needs = super::step_needs(
            "name: p\nsteps:\n  - id: a\n    uses: noop\n  - id: b\n    uses: noop\n    needs: [a]\n",
        );
        assert_eq!(needs["a"], Vec::<String>::new());
        assert_eq!(needs["b"], ["a"]);
        assert!(super::step_needs(": not yaml [").is_empty());
    }
}
