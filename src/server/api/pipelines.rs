//! `GET /api/pipelines`, `GET /api/pipelines/{name}`, `POST /api/pipelines/{name}/runs`.

use axum::Json;
use axum::body::Bytes;
use axum::extract::rejection::PathRejection;
use axum::extract::{Path, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use indexmap::IndexMap;
use serde_json::{Value, json};

use super::path_param;
use crate::server::ServerState;
use crate::server::error::{ApiError, ApiResult};
use crate::service::PipelineStatus;
use crate::store::run_summary;

/// Runs shown with one pipeline.
const RECENT_RUNS: usize = 10;

pub async fn list(State(state): State<ServerState>) -> ApiResult<Json<Value>> {
    let mut pipelines = Vec::new();
    for status in state.app.control.pipelines() {
        let last = state.app.store.list_runs(Some(&status.name), 1)?;
        let mut value = to_json(&status)?;
        value["last_run"] = last.first().map(run_summary).unwrap_or(Value::Null);
        pipelines.push(value);
    }
    Ok(Json(json!({ "pipelines": pipelines })))
}

pub async fn show(
    State(state): State<ServerState>,
    name: Result<Path<String>, PathRejection>,
) -> ApiResult<Json<Value>> {
    let name = path_param(name)?;
    let status = find(&state, &name)?;
    let runs = state.app.store.list_runs(Some(&name), RECENT_RUNS)?;
    let mut value = to_json(&status)?;
    value["runs"] = runs.iter().map(run_summary).collect();
    Ok(Json(value))
}

/// Starts a run now. The body is optional: `{"params": {"holdout": 0.2}}`.
pub async fn trigger(
    State(state): State<ServerState>,
    name: Result<Path<String>, PathRejection>,
    body: Bytes,
) -> ApiResult<Response> {
    let name = path_param(name)?;
    find(&state, &name)?;
    let params = params_of(&body)?;
    let run = state.app.control.trigger(&name, params).map_err(|e| {
        let hint = format!("GET /api/pipelines/{name} lists the pipeline's params and their types");
        match e {
            crate::service::ControlError::Invalid(_) => ApiError::from(e).with_hint(hint),
            other => other.into(),
        }
    })?;
    let location = format!("/api/runs/{run}");
    let body = Json(json!({ "run": run, "pipeline": name, "url": location }));
    Ok((StatusCode::CREATED, [(header::LOCATION, location)], body).into_response())
}

fn find(state: &ServerState, name: &str) -> ApiResult<PipelineStatus> {
    let pipelines = state.app.control.pipelines();
    if let Some(found) = pipelines.iter().find(|p| p.name == name) {
        return Ok(found.clone());
    }
    let names: Vec<&str> = pipelines.iter().map(|p| p.name.as_str()).collect();
    let hint = crate::spec::suggest::hint(name, names.iter().copied())
        .unwrap_or_else(|| "GET /api/pipelines lists the pipelines".into());
    Err(ApiError::not_found(
        format!("there is no pipeline `{name}`"),
        hint,
    ))
}

fn to_json(status: &PipelineStatus) -> ApiResult<Value> {
    serde_json::to_value(status).map_err(ApiError::internal)
}

/// The params of a trigger body, as text the way `-p name=value` gives them.
fn params_of(body: &[u8]) -> ApiResult<IndexMap<String, String>> {
    const SHAPE: &str = r#"send {"params": {"name": value}} with Content-Type: application/json, or no body for the defaults"#;
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(IndexMap::new());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("the body is not JSON: {e}"), SHAPE))?;
    let Value::Object(mut top) = value else {
        return Err(ApiError::bad_request(
            "the body is not a JSON object",
            SHAPE,
        ));
    };
    let params = top.remove("params");
    if let Some(other) = top.keys().next() {
        return Err(ApiError::bad_request(
            format!("the body has an unknown field `{other}`"),
            SHAPE,
        ));
    }
    let params = match params {
        None | Some(Value::Null) => return Ok(IndexMap::new()),
        Some(Value::Object(params)) => params,
        Some(_) => {
            return Err(ApiError::bad_request(
                "`params` is not a JSON object",
                SHAPE,
            ));
        }
    };
    let mut texts = IndexMap::new();
    for (name, value) in params {
        let text = match value {
            Value::String(s) => s,
            Value::Number(n) => n.to_string(),
            Value::Bool(b) => b.to_string(),
            Value::Null => continue,
            Value::Array(_) | Value::Object(_) => {
                return Err(ApiError::bad_request(
                    format!(
                        "param `{name}` is a list or an object; a param is a string, number or boolean"
                    ),
                    SHAPE,
                ));
            }
        };
        texts.insert(name, text);
    }
    Ok(texts)
}

#[cfg(test)]
mod tests {
    use super::params_of;

    #[test]
    fn trigger_bodies() {
        assert!(params_of(b"").unwrap().is_empty());
        assert!(params_of(b"{}").unwrap().is_empty());
        let params =
            params_of(br#"{"params": {"a": 0.2, "b": "x", "c": true, "d": null}}"#).unwrap();
        assert_eq!(params["a"], "0.2");
        assert_eq!(params["b"], "x");
        assert_eq!(params["c"], "true");
        assert!(!params.contains_key("d"));
        for bad in [
            &b"[1]"[..],
            b"{\"param\": {}}",
            b"{\"params\": 3}",
            b"{\"params\": {\"a\": [1]}}",
            b"{",
        ] {
            let error = params_of(bad).unwrap_err();
            assert_eq!(error.status, 400, "{}", String::from_utf8_lossy(bad));
        }
    }
}
