//! The web UI: a few static files compiled into the binary (no CDN, nothing fetched from
//! anywhere but this server). The pages are drawn in the browser from the JSON API.

use axum::extract::Path;
use axum::http::{HeaderName, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Scripts, styles and data only from this server; no framing by other sites.
const CONTENT_SECURITY_POLICY: &str = "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'";

/// (file name, content type, content) of every file under /ui/.
const ASSETS: &[(&str, &str, &str)] = &[
    (
        "style.css",
        "text/css; charset=utf-8",
        include_str!("ui/style.css"),
    ),
    (
        "app.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/app.js"),
    ),
    (
        "api.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/api.js"),
    ),
    (
        "dom.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/dom.js"),
    ),
    (
        "dag.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/dag.js"),
    ),
    (
        "gantt.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/gantt.js"),
    ),
    (
        "charts.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/charts.js"),
    ),
    (
        "pages.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/pages.js"),
    ),
    (
        "run_page.js",
        "text/javascript; charset=utf-8",
        include_str!("ui/run_page.js"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_str!("ui/favicon.svg"),
    ),
];

const INDEX_HTML: &str = include_str!("ui/index.html");

pub async fn index() -> Response {
    page("text/html; charset=utf-8", INDEX_HTML)
}

pub async fn asset(
    file: Result<Path<String>, axum::extract::rejection::PathRejection>,
) -> Response {
    let found = file
        .ok()
        .and_then(|Path(file)| ASSETS.iter().find(|(name, _, _)| *name == file));
    match found {
        Some((_, content_type, content)) => page(content_type, content),
        None => (StatusCode::NOT_FOUND, "no such file in the web UI\n").into_response(),
    }
}

fn page(content_type: &'static str, content: &'static str) -> Response {
    let mut response = ([(header::CONTENT_TYPE, content_type)], content).into_response();
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        HeaderName::from_static("referrer-policy"),
        HeaderValue::from_static("no-referrer"),
    );
    // The files change with the binary; the browser asks again rather than keep an old UI.
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
