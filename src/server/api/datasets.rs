//! `GET /api/runs/{id}/steps/{step}/datasets/{name}?limit=N`: a dataset's first rows.

use axum::Json;
use axum::extract::rejection::{PathRejection, QueryRejection};
use axum::extract::{Path, Query, State};
use indexmap::IndexMap;
use serde_json::{Value, json};

use super::runs::find_run;
use super::{limit_param, path_param, query_params};
use crate::server::ServerState;
use crate::server::error::{ApiError, ApiResult};
use crate::store::{find_dataset, find_step};

const DEFAULT_ROWS: usize = 20;
/// The most rows one request returns: this is a preview; `segflow data` exports everything.
pub const MAX_ROWS: usize = 1000;

pub async fn first_rows(
    State(state): State<ServerState>,
    path: Result<Path<(String, String, String)>, PathRejection>,
    query: Result<Query<IndexMap<String, String>>, QueryRejection>,
) -> ApiResult<Json<Value>> {
    let (run, step, name) = path_param(path)?;
    let query = query_params(query, &["limit"])?;
    let limit = limit_param(&query, DEFAULT_ROWS, MAX_ROWS)?;
    let run = find_run(&state, &run)?;
    let steps = state.app.store.get_steps(&run.id)?;
    let step = find_step(&steps, &run.id, &step)?;
    let dataset = find_dataset(step, &run.id, &name)?;
    let file = dataset.path(&state.app.store.runs_dir().join(&run.id));
    let rows = crate::data::first_rows_json(&file, limit)
        .await
        .map_err(|e| match e {
            crate::data::ReadError::Gone(_) => ApiError::not_found(
                e.to_string(),
                "the run folder was removed; run the pipeline again",
            ),
            other => ApiError::internal(other),
        })?;
    Ok(Json(json!({
        "run": run.id,
        "step": step.id,
        "dataset": dataset.name,
        "rows": dataset.rows,
        "columns": dataset.columns,
        "limit": limit,
        "data": rows,
    })))
}
