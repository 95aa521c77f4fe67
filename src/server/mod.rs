//! The HTTP server of `segflow serve`: a JSON API over the store and the service, Prometheus
//! metrics, and the web UI.
//!
//! Every route is listed once in [`routes`]; the OpenAPI file (`docs/openapi.yaml`, served at
//! `/api/openapi.yaml`) describes exactly those, which a test checks.

pub mod api;
mod auth;
pub mod error;
mod metrics;
mod ui;

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post};
use tokio_util::sync::CancellationToken;

use crate::service::Control;
use crate::store::StateStore;
use error::ApiError;

/// The API's description, embedded so the binary serves the one it was built with.
pub const OPENAPI_YAML: &str = include_str!("../../docs/openapi.yaml");

/// Where the server listens and who may change things.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    pub addr: SocketAddr,
    /// The bearer token mutating endpoints require. Without one, the server only listens on a
    /// loopback address.
    pub token: Option<String>,
}

#[derive(Clone)]
pub struct AppState {
    pub store: Arc<dyn StateStore>,
    pub control: Arc<dyn Control>,
    pub token: Option<Arc<str>>,
}

/// What the handlers share: the application's state and the server's own caches.
#[derive(Clone)]
pub struct ServerState {
    pub app: AppState,
    metrics: Arc<metrics::MetricsCache>,
}

#[derive(Debug, thiserror::Error)]
pub enum ServerError {
    #[error(
        "refusing to listen on {0} without a token: anyone who can reach it could start and cancel runs\n  set SEGFLOW_API_TOKEN (or --token-file FILE), or listen on 127.0.0.1"
    )]
    PublicWithoutToken(SocketAddr),
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("the HTTP server stopped: {0}")]
    Serve(std::io::Error),
}

/// Checks the address against the token rule and binds it, so a bad address is reported
/// before anything else starts.
pub async fn bind(config: &ServerConfig) -> Result<tokio::net::TcpListener, ServerError> {
    if !config.addr.ip().is_loopback() && config.token.is_none() {
        return Err(ServerError::PublicWithoutToken(config.addr));
    }
    tokio::net::TcpListener::bind(config.addr)
        .await
        .map_err(|source| ServerError::Bind {
            addr: config.addr,
            source,
        })
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// Anyone who can reach the server (/healthz, the UI's static files).
    Open,
    /// The bearer token when one is configured (the API, /metrics).
    Guarded,
}

/// One route: method, path (axum syntax, as in the OpenAPI file) and who may call it.
pub struct Route {
    pub method: Method,
    pub path: &'static str,
    pub access: Access,
    handler: MethodRouter<ServerState>,
}

fn route(
    method: Method,
    path: &'static str,
    access: Access,
    handler: MethodRouter<ServerState>,
) -> Route {
    Route {
        method,
        path,
        access,
        handler,
    }
}

/// Every route the server answers.
pub fn routes() -> Vec<Route> {
    use Access::{Guarded, Open};
    use Method as M;
    use api::{datasets, pipelines, reports, runs};
    vec![
        route(M::GET, "/healthz", Open, get(healthz)),
        route(M::GET, "/metrics", Guarded, get(metrics_text)),
        route(M::GET, "/api/openapi.yaml", Open, get(openapi)),
        route(M::GET, "/api/pipelines", Guarded, get(pipelines::list)),
        route(
            M::GET,
            "/api/pipelines/{name}",
            Guarded,
            get(pipelines::show),
        ),
        route(
            M::POST,
            "/api/pipelines/{name}/runs",
            Guarded,
            post(pipelines::trigger),
        ),
        route(M::GET, "/api/runs", Guarded, get(runs::list)),
        route(M::GET, "/api/runs/{id}", Guarded, get(runs::show)),
        route(M::GET, "/api/runs/{id}/logs", Guarded, get(runs::logs)),
        route(
            M::GET,
            "/api/runs/{id}/report",
            Guarded,
            get(reports::run_report),
        ),
        route(
            M::GET,
            "/api/runs/{id}/steps/{step}/datasets/{name}",
            Guarded,
            get(datasets::first_rows),
        ),
        route(
            M::POST,
            "/api/runs/{id}/cancel",
            Guarded,
            post(runs::cancel),
        ),
        route(
            M::POST,
            "/api/runs/{id}/resume",
            Guarded,
            post(runs::resume),
        ),
        route(M::GET, "/", Open, get(ui::index)),
        route(M::GET, "/ui/{file}", Open, get(ui::asset)),
    ]
}

pub fn router(app: AppState) -> Router {
    let state = ServerState {
        app,
        metrics: Arc::default(),
    };
    let mut open = Router::new();
    let mut guarded = Router::new();
    for route in routes() {
        match route.access {
            Access::Open => open = open.route(route.path, route.handler),
            Access::Guarded => guarded = guarded.route(route.path, route.handler),
        }
    }
    let guarded = guarded.layer(axum::middleware::from_fn_with_state(
        state.clone(),
        auth::require_access,
    ));
    open.merge(guarded)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(axum::middleware::from_fn_with_state(
            state.clone(),
            auth::require_loopback_host,
        ))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/yaml")], OPENAPI_YAML).into_response()
}

async fn metrics_text(State(state): State<ServerState>) -> Result<Response, ApiError> {
    let text = tokio::task::spawn_blocking(move || metrics::render(&state))
        .await
        .map_err(ApiError::internal)??;
    Ok((
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        text,
    )
        .into_response())
}

async fn not_found(uri: Uri) -> ApiError {
    ApiError::not_found(
        format!("there is nothing at {}", uri.path()),
        "GET /api/openapi.yaml describes every endpoint; the web UI is at /",
    )
}

async fn method_not_allowed(method: Method, uri: Uri) -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        format!("{} does not take {method}", uri.path()),
        "GET /api/openapi.yaml lists the methods of every endpoint",
    )
}

/// Serves until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    let app = router(state).into_make_service_with_connect_info::<SocketAddr>();
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(ServerError::Serve)
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    /// Every route of the router is in docs/openapi.yaml, and every operation there is a route.
    #[test]
    fn the_openapi_file_describes_every_route() {
        let doc: serde_yaml::Value =
            serde_yaml::from_str(super::OPENAPI_YAML).expect("docs/openapi.yaml is YAML");
        assert_eq!(doc["openapi"].as_str().map(|v| &v[..2]), Some("3."));
        let mut described = BTreeSet::new();
        for (path, item) in doc["paths"].as_mapping().expect("paths") {
            let path = path.as_str().expect("a path").to_string();
            for (method, _) in item.as_mapping().expect("a path item") {
                let method = method.as_str().expect("a method");
                if method != "parameters" {
                    described.insert((method.to_uppercase(), path.clone()));
                }
            }
        }
        let served: BTreeSet<(String, String)> = super::routes()
            .iter()
            .map(|r| (r.method.to_string(), r.path.to_string()))
            .collect();
        let undocumented: Vec<_> = served.difference(&described).collect();
        let not_served: Vec<_> = described.difference(&served).collect();
        assert!(
            undocumented.is_empty(),
            "routes missing from docs/openapi.yaml: {undocumented:?}"
        );
        assert!(
            not_served.is_empty(),
            "docs/openapi.yaml describes routes the server lacks: {not_served:?}"
        );
    }
}
