//! `GET /api/runs/{id}/report`: the reports of a run's steps (segment sizes, migration, lift…),
//! in pipeline order.

use axum::Json;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use serde_json::{Value, json};

use super::path_param;
use super::runs::find_run;
use crate::server::ServerState;
use crate::server::error::ApiResult;

pub async fn run_report(
    State(state): State<ServerState>,
    id: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let run = find_run(&state, &path_param(id)?)?;
    let run_dir = state.app.store.runs_dir().join(&run.id);
    let mut reports = Vec::new();
    for step in state.app.store.get_steps(&run.id)? {
        let Some(relative) = &step.report else {
            continue;
        };
        let file = run_dir.join(relative);
        // A report that cannot be read is named with the reason rather than failing the
        // whole answer: the other steps' reports are still worth seeing.
        let read = tokio::fs::read_to_string(&file)
            .await
            .map_err(|e| format!("cannot read the report of step `{}`: {e}", step.id))
            .and_then(|text| {
                serde_json::from_str::<Value>(&text)
                    .map_err(|e| format!("the report of step `{}` is not JSON: {e}", step.id))
            });
        reports.push(match read {
            Ok(report) => json!({ "step": step.id, "kind": step.kind, "report": report }),
            Err(error) => json!({ "step": step.id, "kind": step.kind, "error": error }),
        });
    }
    Ok(Json(
        json!({ "run": run.id, "pipeline": run.pipeline, "reports": reports }),
    ))
}
