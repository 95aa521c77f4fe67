//! gather.http against a local test server: pagination, headers from secrets, 429, failures.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use axum::Json;
use axum::extract::Query;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};

use crate::data_gather::rows;
use crate::support::Project;
use crate::support::http_server::TestServer;

const TOKEN: &str = "tok-4f9a1c2e";

fn customers(from: usize, count: usize) -> Vec<Value> {
    (from..from + count)
        .map(|i| json!({ "id": i, "email": format!("c{i}@example.com"), "spend": i as f64 * 1.5 }))
        .collect()
}

fn authorised(headers: &HeaderMap) -> bool {
    headers.get("authorization").and_then(|v| v.to_str().ok()) == Some(&format!("Bearer {TOKEN}"))
}

fn api(hits: Arc<AtomicUsize>) -> axum::Router {
    let paged_hits = hits.clone();
    axum::Router::new()
        // Page numbers: 3 full pages of 2, then an empty one.
        .route(
            "/paged",
            get(
                move |headers: HeaderMap, Query(q): Query<HashMap<String, String>>| {
                    let hits = paged_hits.clone();
                    async move {
                        hits.fetch_add(1, Ordering::SeqCst);
                        if !authorised(&headers) {
                            return (
                                StatusCode::UNAUTHORIZED,
                                Json(json!({ "message": "bad token" })),
                            )
                                .into_response();
                        }
                        let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
                        let items = if page <= 3 {
                            customers((page - 1) * 2, 2)
                        } else {
                            vec![]
                        };
                        Json(json!({ "data": items })).into_response()
                    }
                },
            ),
        )
        // A cursor field, ended by null.
        .route(
            "/cursor",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                match q.get("after").map(String::as_str) {
                    None => Json(json!({ "items": customers(0, 3), "meta": { "next": "c3" } })),
                    Some("c3") => {
                        Json(json!({ "items": customers(3, 1), "meta": { "next": null } }))
                    }
                    Some(_) => Json(json!({ "items": [] })),
                }
            }),
        )
        // Next links: one in the body (relative), then one in a Link header.
        .route(
            "/linked",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let response: Response = match q.get("p").map(String::as_str) {
                    None => Json(json!({ "results": customers(0, 1), "next": "/linked?p=2" }))
                        .into_response(),
                    Some("2") => (
                        [("link", "</linked?p=3>; rel=\"next\"")],
                        Json(json!({ "results": customers(1, 1), "next": null })),
                    )
                        .into_response(),
                    _ => Json(json!({ "results": customers(2, 1) })).into_response(),
                };
                response
            }),
        )
        // Rate limited once, then fine.
        .route(
            "/limited",
            get(move || {
                let hits = hits.clone();
                async move {
                    if hits.fetch_add(1, Ordering::SeqCst) == 0 {
                        return (
                            StatusCode::TOO_MANY_REQUESTS,
                            [("retry-after", "1")],
                            "slow down",
                        )
                            .into_response();
                    }
                    Json(customers(0, 2)).into_response()
                }
            }),
        )
        .route("/broken", get(|| async { StatusCode::BAD_GATEWAY }))
        // Rate limited whatever happens.
        .route(
            "/always-limited",
            get(|| async { (StatusCode::TOO_MANY_REQUESTS, [("retry-after", "0")], "no") }),
        )
        // A cursor that never changes: read naively, the same page forever.
        .route(
            "/stuck",
            get(|| async { Json(json!({ "items": customers(0, 1), "next": "same" })) }),
        )
        // Pages that never run out.
        .route(
            "/endless",
            get(|Query(q): Query<HashMap<String, String>>| async move {
                let page: usize = q.get("page").and_then(|p| p.parse().ok()).unwrap_or(1);
                Json(customers(page * 10, 1))
            }),
        )
        // A next link to another site (another name for this machine, never visited).
        .route(
            "/elsewhere",
            get(|headers: HeaderMap| async move {
                let port = headers
                    .get("host")
                    .and_then(|h| h.to_str().ok())
                    .and_then(|h| h.rsplit(':').next())
                    .unwrap_or("80")
                    .to_string();
                Json(json!({ "items": customers(0, 1), "next": format!("http://localhost:{port}/paged") }))
            }),
        )
}

fn run(project: &Project, with: &str) -> String {
    project.write(".segflow/secrets.env", &format!("API_TOKEN={TOKEN}\n"));
    project.pipeline(
        "p",
        &format!("name: p\nsteps:\n  - id: api\n    uses: gather.http\n    with:\n{with}"),
    );
    project.segflow(&["run", "p"]).run_id()
}

#[test]
fn http_page_numbers_with_a_secret_header() {
    let hits = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start(api(hits.clone()));
    let project = Project::new();
    let run_id = run(
        &project,
        &format!(
            "      url: {}/paged\n      headers: {{ Authorization: \"Bearer ${{{{ secrets.API_TOKEN }}}}\" }}\n      records: /data\n      pagination: {{ page: {{ param: page }} }}\n",
            server.url
        ),
    );
    let out = project.outputs(&run_id, "api");
    assert_eq!(
        (out["rows"].clone(), out["pages"].clone()),
        (json!(6), json!(4))
    );
    let data = rows(&project, &run_id, "api", "main");
    let ids: Vec<i64> = data.iter().map(|r| r["id"].as_i64().unwrap()).collect();
    assert_eq!(ids, [0, 1, 2, 3, 4, 5]);
    assert_eq!(data[3]["spend"], 4.5);
    assert_eq!(hits.load(Ordering::SeqCst), 4);
    let logs = project.segflow(&["logs", &run_id]).ok();
    assert!(!logs.stdout.contains(TOKEN));

    // Without the token the API refuses, and the error says what to check.
    let project = Project::new();
    project.pipeline(
        "p",
        &format!(
            "name: p\nsteps:\n  - id: api\n    uses: gather.http\n    with: {{ url: \"{}/paged\", records: /data }}\n",
            server.url
        ),
    );
    let run_id = project.segflow(&["run", "p"]).failed().run_id();
    let shown = project.show(&run_id);
    let reason = shown["steps"][0]["reason"].as_str().unwrap();
    assert!(
        reason
            .contains("answered 401 Unauthorized: bad token (check the credentials in `headers`)"),
        "{reason}"
    );
}

#[test]
fn http_cursor_and_next_links() {
    let server = TestServer::start(api(Arc::new(AtomicUsize::new(0))));
    let project = Project::new();
    let run_id = run(
        &project,
        &format!(
            "      url: {}/cursor\n      records: /items\n      pagination: {{ cursor: {{ pointer: /meta/next, param: after }} }}\n",
            server.url
        ),
    );
    assert_eq!(project.outputs(&run_id, "api")["rows"], 4);

    let run_id = run(
        &project,
        &format!(
            "      url: {}/linked\n      records: /results\n      pagination: {{ next_link: {{ pointer: /next, header: true }} }}\n      types: {{ id: string }}\n",
            server.url
        ),
    );
    let data = rows(&project, &run_id, "api", "main");
    let ids: Vec<&str> = data.iter().map(|r| r["id"].as_str().unwrap()).collect();
    assert_eq!(ids, ["0", "1", "2"]);
}

#[test]
fn http_429_waits_for_retry_after_and_failures_are_clear() {
    let hits = Arc::new(AtomicUsize::new(0));
    let server = TestServer::start(api(hits.clone()));
    let project = Project::new();
    let started = std::time::Instant::now();
    let run_id = run(&project, &format!("      url: {}/limited\n", server.url));
    assert_eq!(project.outputs(&run_id, "api")["rows"], 2);
    // Asked twice: the 429, then after the one second Retry-After asked for.
    assert_eq!(hits.load(Ordering::SeqCst), 2);
    assert!(started.elapsed() >= std::time::Duration::from_secs(1));
    let logs = project.segflow(&["logs", &run_id]).ok();
    assert!(
        logs.stdout.contains("rate limited (429); waiting 1s"),
        "{}",
        logs.stdout
    );

    let run_id = run(&project, &format!("      url: {}/broken\n", server.url));
    let shown = project.show(&run_id);
    let reason = shown["steps"][0]["reason"].as_str().unwrap();
    assert!(
        reason.ends_with("/broken answered 502 Bad Gateway 5 times"),
        "{reason}"
    );

    let run_id = run(
        &project,
        &format!("      url: {}/cursor\n      records: /nope\n", server.url),
    );
    let shown = project.show(&run_id);
    let reason = shown["steps"][0]["reason"].as_str().unwrap();
    assert!(
        reason.contains("page 1: the answer has nothing at `/nope`"),
        "{reason}"
    );
}

#[test]
fn http_endless_pages_loops_rate_limits_and_other_sites_fail_clearly() {
    let server = TestServer::start(api(Arc::new(AtomicUsize::new(0))));
    let project = Project::new();
    let reason_of = |project: &Project, run_id: &str| {
        project.show(run_id)["steps"][0]["reason"]
            .as_str()
            .unwrap()
            .to_string()
    };

    // Rate limited on every try: the step fails with why, it does not crash.
    let run_id = run(
        &project,
        &format!("      url: {}/always-limited\n", server.url),
    );
    let reason = reason_of(&project, &run_id);
    assert!(
        reason.contains("/always-limited was rate limited (429) 5 times in a row"),
        "{reason}"
    );

    // A cursor that repeats is caught on the second page, not read 1,000 times.
    let run_id = run(
        &project,
        &format!(
            "      url: {}/stuck\n      records: /items\n      pagination: {{ cursor: {{ pointer: /next, param: after }} }}\n",
            server.url
        ),
    );
    let reason = reason_of(&project, &run_id);
    assert!(
        reason.contains("page 3: the API pointed back at a page it already gave"),
        "{reason}"
    );

    // More pages than max_pages: a partial list fails the step unless asked to stop.
    let endless = format!(
        "      url: {}/endless\n      pagination: {{ page: {{ param: page }} }}\n      max_pages: 3\n",
        server.url
    );
    let run_id = run(&project, &endless);
    let reason = reason_of(&project, &run_id);
    assert!(
        reason.contains("the API has more than max_pages = 3 pages; raise `max_pages`"),
        "{reason}"
    );
    let run_id = run(&project, &format!("{endless}      on_max_pages: stop\n"));
    assert_eq!(project.outputs(&run_id, "api")["rows"], 3);

    // The token is never sent to another site a next link names.
    let run_id = run(
        &project,
        &format!(
            "      url: {}/elsewhere\n      headers: {{ Authorization: \"Bearer ${{{{ secrets.API_TOKEN }}}}\" }}\n      records: /items\n      pagination: {{ next_link: {{ pointer: /next }} }}\n",
            server.url
        ),
    );
    let reason = reason_of(&project, &run_id);
    assert!(
        reason.contains("the next page is on another site (http://localhost:"),
        "{reason}"
    );
    assert!(!reason.contains(TOKEN), "{reason}");
}
