//! API errors: a status code and a JSON body `{"error": "...", "hint": "..."}` that says what
//! was wrong and what to do about it.

use axum::Json;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde_json::json;

use crate::engine::EngineError;
use crate::service::ControlError;

#[derive(Debug)]
pub struct ApiError {
    pub status: StatusCode,
    pub error: String,
    pub hint: String,
}

pub type ApiResult<T> = Result<T, ApiError>;

impl ApiError {
    pub fn new(status: StatusCode, error: impl Into<String>, hint: impl Into<String>) -> Self {
        ApiError {
            status,
            error: error.into(),
            hint: hint.into(),
        }
    }

    pub fn bad_request(error: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, error, hint)
    }

    pub fn not_found(error: impl Into<String>, hint: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, error, hint)
    }

    /// Something failed on the server's side; the details go to the server's log too.
    pub fn internal(error: impl std::fmt::Display) -> Self {
        let error = error.to_string();
        tracing::error!("an API request failed: {error}");
        Self::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            error,
            "this is a problem on the server's side; its log has the details",
        )
    }

    /// Replaces the hint (for a context that knows better what to do).
    pub fn with_hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = hint.into();
        self
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = Json(json!({ "error": self.error, "hint": self.hint }));
        (self.status, body).into_response()
    }
}

impl From<ControlError> for ApiError {
    fn from(error: ControlError) -> Self {
        let message = error.to_string();
        match error {
            ControlError::UnknownPipeline(_) => {
                ApiError::not_found(message, "GET /api/pipelines lists the pipelines")
            }
            ControlError::UnknownRun(_) => {
                ApiError::not_found(message, "GET /api/runs lists the runs")
            }
            ControlError::Invalid(_) => ApiError::bad_request(
                message,
                "fix the request as the error says and send it again",
            ),
            ControlError::Conflict(_) => ApiError::new(
                StatusCode::CONFLICT,
                message,
                "GET /api/runs/{id} shows the run's state now",
            ),
            ControlError::Internal(_) => ApiError::internal(message),
        }
    }
}

impl From<EngineError> for ApiError {
    fn from(error: EngineError) -> Self {
        match error {
            EngineError::UnknownRun(id) => ApiError::not_found(
                format!("there is no run `{id}`"),
                "GET /api/runs lists the runs; any unique prefix of a run id works",
            ),
            EngineError::AmbiguousRun { .. } => {
                ApiError::bad_request(error.to_string(), "give more characters of the run id")
            }
            EngineError::Store(_) | EngineError::Spec { .. } => ApiError::internal(error),
            other => ControlError::from(other).into(),
        }
    }
}

impl From<crate::store::StoreError> for ApiError {
    fn from(error: crate::store::StoreError) -> Self {
        ApiError::internal(error)
    }
}

impl From<crate::store::LookupError> for ApiError {
    fn from(error: crate::store::LookupError) -> Self {
        use crate::store::LookupError as L;
        let hint = match &error {
            L::NoStep { .. } => "GET /api/runs/{id} lists the run's steps",
            L::NoDatasets { .. } | L::NoDataset { .. } => {
                "GET /api/runs/{id} lists every step's datasets"
            }
        };
        ApiError::not_found(error.to_string(), hint)
    }
}
