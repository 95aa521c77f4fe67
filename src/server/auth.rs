//! Who may use the API.
//!
//! - With a token configured, every API call and /metrics needs `Authorization: Bearer TOKEN`
//!   (reads too: run data is customer data); /healthz and the UI's static files stay open, and
//!   the UI asks for the token.
//! - Without a token, the server only listens on loopback (see [`super::bind`]); then every
//!   request must also name a loopback host, so a web page that re-binds its own DNS name to
//!   127.0.0.1 cannot read the API from the browser.
//! - A request that changes something (POST) is refused when a browser says it comes from
//!   another site, so no web page can start or cancel runs through a visitor's browser.

use std::net::SocketAddr;

use axum::extract::{ConnectInfo, Request, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};
use subtle::ConstantTimeEq;

use super::ServerState;
use super::error::ApiError;

const TOKEN_HINT: &str = "send the token segflow serve was started with (SEGFLOW_API_TOKEN or --token-file) as `Authorization: Bearer TOKEN`";

/// Checks the token (when one is configured) and where a mutating request comes from.
pub async fn require_access(
    State(state): State<ServerState>,
    request: Request,
    next: Next,
) -> Response {
    let mutating = !matches!(
        *request.method(),
        Method::GET | Method::HEAD | Method::OPTIONS
    );
    if mutating && let Err(error) = same_site(request.headers()) {
        return error.into_response();
    }
    match state.app.token.as_deref() {
        Some(token) => {
            if let Err(error) = check_bearer(request.headers(), token) {
                let mut response = error.into_response();
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"segflow\""),
                );
                return response;
            }
        }
        None => {
            // `bind` already refuses a public address without a token; this keeps the rule
            // should the listener ever come from elsewhere.
            let peer = request
                .extensions()
                .get::<ConnectInfo<SocketAddr>>()
                .map(|c| c.0);
            if mutating && peer.is_some_and(|p| !p.ip().is_loopback()) {
                return ApiError::new(
                    StatusCode::FORBIDDEN,
                    "only loopback clients may change things on a server without a token",
                    "start segflow serve with SEGFLOW_API_TOKEN (or --token-file) to allow others",
                )
                .into_response();
            }
        }
    }
    next.run(request).await
}

/// Without a token, refuses requests that do not name a loopback host (DNS re-binding).
pub async fn require_loopback_host(
    State(state): State<ServerState>,
    request: Request,
    next: Next,
) -> Response {
    if state.app.token.is_none() {
        let host = request
            .headers()
            .get(header::HOST)
            .and_then(|h| h.to_str().ok())
            .unwrap_or_default();
        if !is_loopback_host(host) {
            return ApiError::new(
                StatusCode::FORBIDDEN,
                format!("the host `{host}` is not a loopback name"),
                "without a token segflow serve only answers requests to 127.0.0.1, [::1] or localhost",
            )
            .into_response();
        }
    }
    next.run(request).await
}

fn check_bearer(headers: &HeaderMap, token: &str) -> Result<(), ApiError> {
    let unauthorized = |error: &str| ApiError::new(StatusCode::UNAUTHORIZED, error, TOKEN_HINT);
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Err(unauthorized(
            "this server needs a bearer token and the request has no Authorization header",
        ));
    };
    let given = value
        .to_str()
        .ok()
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
        .ok_or_else(|| unauthorized("the Authorization header is not `Bearer TOKEN`"))?;
    // Hashing first makes the comparison constant-time in the length too.
    let same: bool = Sha256::digest(given.as_bytes())
        .ct_eq(&Sha256::digest(token.as_bytes()))
        .into();
    if same {
        Ok(())
    } else {
        Err(unauthorized("the bearer token is wrong"))
    }
}

/// Refuses a request a browser marks as sent by another site.
fn same_site(headers: &HeaderMap) -> Result<(), ApiError> {
    let refused = |why: String| {
        ApiError::new(
            StatusCode::FORBIDDEN,
            why,
            "runs are started, cancelled and resumed from segflow's own web UI or a non-browser client",
        )
    };
    let text = |name| {
        headers
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    if let Some(origin) = text(header::ORIGIN) {
        let authority = origin.split_once("://").map(|(_, rest)| rest);
        let host = text(header::HOST);
        if authority.is_none() || authority != host {
            return Err(refused(format!(
                "a request from the web page {origin} may not change anything here"
            )));
        }
    } else if let Some(site) = text(header::HeaderName::from_static("sec-fetch-site"))
        && matches!(site, "cross-site" | "same-site")
    {
        return Err(refused(format!(
            "a {site} request from a web page may not change anything here"
        )));
    }
    Ok(())
}

/// `localhost`, `127.x.y.z` or `[::1]`, with or without a port.
fn is_loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split_once(']').map(|(ip, _)| ip).unwrap_or(rest)
    } else {
        host.rsplit_once(':').map(|(name, _)| name).unwrap_or(host)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts() {
        for host in [
            "127.0.0.1:8080",
            "localhost",
            "LOCALHOST:1",
            "[::1]:80",
            "127.1.2.3",
        ] {
            assert!(is_loopback_host(host), "{host}");
        }
        for host in [
            "",
            "evil.example:8080",
            "10.0.0.1",
            "[2001:db8::1]:80",
            "localhost.evil",
        ] {
            assert!(!is_loopback_host(host), "{host}");
        }
    }

    #[test]
    fn bearer_tokens() {
        let mut headers = HeaderMap::new();
        assert!(check_bearer(&headers, "s3cret").is_err());
        headers.insert(header::AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert!(check_bearer(&headers, "s3cret").is_err());
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cre"),
        );
        assert!(check_bearer(&headers, "s3cret").is_err());
        headers.insert(
            header::AUTHORIZATION,
            HeaderValue::from_static("Bearer s3cret"),
        );
        assert!(check_bearer(&headers, "s3cret").is_ok());
    }

    #[test]
    fn cross_site_posts_are_refused() {
        let mut headers = HeaderMap::new();
        headers.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(same_site(&headers).is_ok());
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("http://127.0.0.1:8080"),
        );
        assert!(same_site(&headers).is_ok());
        headers.insert(
            header::ORIGIN,
            HeaderValue::from_static("https://evil.example"),
        );
        assert!(same_site(&headers).is_err());
        headers.remove(header::ORIGIN);
        headers.insert("sec-fetch-site", HeaderValue::from_static("cross-site"));
        assert!(same_site(&headers).is_err());
    }
}
