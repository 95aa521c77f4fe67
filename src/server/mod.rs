//! The HTTP server of `segflow serve`: a JSON API over the store and the service, and the web UI.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::routing::get;
use tokio_util::sync::CancellationToken;

use crate::service::Control;
use crate::store::StateStore;

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

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/healthz", get(healthz))
        .with_state(state)
}

async fn healthz() -> &'static str {
    "ok\n"
}

/// Serves until `shutdown` fires.
pub async fn serve(
    listener: tokio::net::TcpListener,
    state: AppState,
    shutdown: CancellationToken,
) -> Result<(), ServerError> {
    axum::serve(listener, router(state))
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
        .map_err(ServerError::Serve)
}
