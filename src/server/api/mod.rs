//! The JSON API: one file per resource.

pub mod datasets;
pub mod pipelines;
pub mod reports;
pub mod runs;

use axum::extract::Query;
use axum::extract::rejection::{PathRejection, QueryRejection};
use indexmap::IndexMap;

use super::error::{ApiError, ApiResult};

/// A path parameter, or a 400 that says why it could not be read.
pub fn path_param<T>(path: Result<axum::extract::Path<T>, PathRejection>) -> ApiResult<T> {
    path.map(|p| p.0)
        .map_err(|e| ApiError::bad_request(e.body_text(), "check the URL's path"))
}

/// The query string as names and values; a name not in `allowed` is an error, so a typo is not
/// silently ignored.
pub fn query_params(
    query: Result<Query<IndexMap<String, String>>, QueryRejection>,
    allowed: &[&str],
) -> ApiResult<IndexMap<String, String>> {
    let query = query
        .map(|q| q.0)
        .map_err(|e| ApiError::bad_request(e.body_text(), "check the URL's query string"))?;
    for name in query.keys() {
        if !allowed.contains(&name.as_str()) {
            let hint = crate::spec::suggest::hint(name, allowed.iter().copied())
                .unwrap_or_else(|| "this endpoint takes no query parameters".into());
            return Err(ApiError::bad_request(
                format!("unknown query parameter `{name}`"),
                hint,
            ));
        }
    }
    Ok(query)
}

/// `limit=N` of a query: `default` when absent, at most `cap`.
pub fn limit_param(
    query: &IndexMap<String, String>,
    default: usize,
    cap: usize,
) -> ApiResult<usize> {
    match query.get("limit") {
        None => Ok(default),
        Some(text) => match text.trim().parse::<usize>() {
            Ok(0) | Err(_) => Err(ApiError::bad_request(
                format!("`limit={text}` is not a positive whole number"),
                format!("give e.g. limit={default} (at most {cap})"),
            )),
            Ok(n) => Ok(n.min(cap)),
        },
    }
}
