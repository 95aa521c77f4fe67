//! `segflow serve`'s HTTP API, driven over loopback: every endpoint's answers and errors, the
//! token rule, and /metrics after a run.

use std::time::Duration;

use serde_json::Value;

use crate::support::serve::Server;
use crate::support::{Project, step};

const RUN_TIME: Duration = Duration::from_secs(120);

/// 240 customers with demographic columns.
fn customers_csv() -> String {
    let mut out = String::from("customer_id,email,age,income,city_tier\n");
    for i in 1..=240 {
        let tier = if i % 3 == 0 { "rural" } else { "urban" };
        out.push_str(&format!(
            "{i},customer-{i}@example.com,{},{},{tier}\n",
            18 + (i * 7) % 50,
            20_000 + (i * 3571) % 100_000
        ));
    }
    out
}

/// A project with `shop` (rules → holdout → dry-run publish), `nap` (one sleep) and a file that
/// does not load.
pub fn shop_project() -> Project {
    let project = Project::new();
    project.write("data/customers.csv", &customers_csv());
    project.pipeline(
        "shop",
        r#"name: shop
description: Demographic segments with a holdout, sent to a webhook as a dry run.
params:
  holdout: { type: number, default: 0.2, min: 0, max: 0.5 }
steps:
  - id: customers
    uses: gather.csv
    with: { path: data/customers.csv }
  - id: segments
    uses: segment.rules
    needs: [customers]
    with:
      rules:
        - { segment: Young urban, when: "age < 30 AND city_tier = 'urban'" }
        - { segment: High income, when: "income >= 90000" }
      default: Everyone else
  - id: split
    uses: validate.holdout
    needs: [segments]
    with: { fraction: "${{ params.holdout }}", salt: shop-test, stratify_by: segment }
  - id: sync
    uses: publish.webhook
    needs: [split]
    with:
      url: http://127.0.0.1:9/hook
      filter: "group = 'treatment'"
      fields: { email: email, segment: segment }
      dry_run: true
"#,
    );
    project.pipeline(
        "nap",
        "name: nap\nsteps:\n  - id: wait\n    uses: sleep\n    with: { duration: 30s }\n  - id: after\n    uses: noop\n    needs: [wait]\n",
    );
    project.pipeline(
        "broken",
        "name: broken\nsteps:\n  - id: a\n    uses: no.such.kind\n",
    );
    project
}

fn trigger(server: &Server, pipeline: &str, body: &str) -> String {
    let answer = server
        .post(&format!("/api/pipelines/{pipeline}/runs"), Some(body))
        .expect(201);
    let location = answer.header("location").map(str::to_string);
    let body = answer.json();
    let run = body["run"].as_str().expect("a run id").to_string();
    assert_eq!(
        location.as_deref(),
        Some(format!("/api/runs/{run}").as_str())
    );
    run
}

#[test]
fn pipelines_are_listed_with_params_steps_and_load_errors() {
    let project = shop_project();
    let server = project.serve(&[], &[]);
    assert_eq!(server.get("/healthz").expect(200).body, "ok\n");

    let all = server.get("/api/pipelines").expect(200).json();
    let names: Vec<&str> = all["pipelines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["broken", "nap", "shop"]);
    let broken = &all["pipelines"][0];
    assert_eq!(broken["runnable"], false);
    assert!(
        broken["error"].as_str().unwrap().contains("no.such.kind"),
        "{broken}"
    );
    let shop = &all["pipelines"][2];
    assert_eq!(shop["params"]["holdout"]["type"], "number");
    assert_eq!(shop["steps"][2]["needs"], serde_json::json!(["segments"]));
    assert_eq!(shop["last_run"], Value::Null);

    let one = server.get("/api/pipelines/shop").expect(200).json();
    assert_eq!(one["name"], "shop");
    assert_eq!(one["runs"], serde_json::json!([]));
    let missing = server.get("/api/pipelines/shopp").expect_error(404);
    assert!(
        missing["error"].as_str().unwrap().contains("`shopp`"),
        "{missing}"
    );
    assert!(
        missing["hint"].as_str().unwrap().contains("`shop`"),
        "{missing}"
    );

    // A pipeline that does not load cannot run, and says why.
    let refused = server
        .post("/api/pipelines/broken/runs", None)
        .expect_error(400);
    assert!(
        refused["error"].as_str().unwrap().contains("does not load"),
        "{refused}"
    );
}

#[test]
fn a_triggered_run_succeeds_and_shows_its_steps_logs_datasets_report_and_metrics() {
    let project = shop_project();
    let server = project.serve(&[], &[]);

    // Bad params are refused with the param's name; a bad body says what shape to send.
    let too_big = server
        .post(
            "/api/pipelines/shop/runs",
            Some(r#"{"params": {"holdout": 0.9}}"#),
        )
        .expect_error(400);
    assert!(
        too_big["error"].as_str().unwrap().contains("holdout"),
        "{too_big}"
    );
    let unknown = server
        .post(
            "/api/pipelines/shop/runs",
            Some(r#"{"params": {"holdot": 0.1}}"#),
        )
        .expect_error(400);
    assert!(
        unknown["error"].as_str().unwrap().contains("holdot"),
        "{unknown}"
    );
    let not_json = server
        .post("/api/pipelines/shop/runs", Some("holdout=0.1"))
        .expect_error(400);
    assert!(
        not_json["hint"].as_str().unwrap().contains("\"params\""),
        "{not_json}"
    );
    server
        .post("/api/pipelines/nope/runs", Some("{}"))
        .expect_error(404);

    let id = trigger(&server, "shop", r#"{"params": {"holdout": 0.25}}"#);
    let run = server.wait_for_run(&id, RUN_TIME);
    assert_eq!(run["state"], "succeeded", "{run}\n{}", server.stderr());
    assert_eq!(run["trigger"], "api");
    assert_eq!(run["params"]["holdout"], 0.25);

    // Runs list, with filters; bad filters are errors, not empty lists.
    let runs = server.get("/api/runs").expect(200).json();
    assert_eq!(runs["runs"][0]["id"], id.as_str());
    let filtered = server
        .get("/api/runs?pipeline=shop&state=succeeded&limit=5")
        .expect(200)
        .json();
    assert_eq!(filtered["runs"].as_array().unwrap().len(), 1);
    let none = server.get("/api/runs?state=failed").expect(200).json();
    assert_eq!(none["runs"], serde_json::json!([]));
    let state = server.get("/api/runs?state=succeded").expect_error(400);
    assert!(
        state["hint"].as_str().unwrap().contains("succeeded"),
        "{state}"
    );
    server.get("/api/runs?limit=ten").expect_error(400);
    let typo = server.get("/api/runs?pipelin=shop").expect_error(400);
    assert!(
        typo["hint"].as_str().unwrap().contains("pipeline"),
        "{typo}"
    );

    // One run, by a prefix of its id: steps with attempts, timings, outputs, datasets, needs.
    let shown = server
        .get(&format!("/api/runs/{}", &id[..12]))
        .expect(200)
        .json();
    assert_eq!(shown["id"], id.as_str());
    let split = step(&shown, "split");
    assert_eq!(split["state"], "succeeded");
    assert_eq!(split["needs"], serde_json::json!(["segments"]));
    assert_eq!(split["attempts"].as_array().unwrap().len(), 1);
    assert!(split["duration_ms"].as_i64().is_some(), "{split}");
    assert!(
        split["datasets"]
            .as_array()
            .unwrap()
            .iter()
            .any(|d| d["name"] == "assignment")
    );
    assert!(shown["events"].as_array().is_some_and(|e| !e.is_empty()));
    assert!(
        shown.get("spec_text").is_none(),
        "the pipeline text is not part of the answer"
    );
    let unknown_run = server.get("/api/runs/zzzzzz").expect_error(404);
    assert!(unknown_run["error"].as_str().unwrap().contains("zzzzzz"));

    // Logs, all or one step's; an unknown step is named.
    let logs = server
        .get(&format!("/api/runs/{id}/logs"))
        .expect(200)
        .json();
    assert!(
        logs["lines"].as_array().is_some_and(|l| !l.is_empty()),
        "{logs}"
    );
    let sync_logs = server
        .get(&format!("/api/runs/{id}/logs?step=sync"))
        .expect(200)
        .json();
    let sync_lines = sync_logs["lines"].as_array().unwrap();
    assert!(!sync_lines.is_empty() && sync_lines.iter().all(|l| l["step"] == "sync"));
    let wrong = server
        .get(&format!("/api/runs/{id}/logs?step=synk"))
        .expect_error(404);
    assert!(
        wrong["error"]
            .as_str()
            .unwrap()
            .contains("did you mean `sync`?"),
        "{wrong}"
    );

    // A dataset's first rows, capped.
    let rows = server
        .get(&format!(
            "/api/runs/{id}/steps/segments/datasets/main?limit=3"
        ))
        .expect(200)
        .json();
    assert_eq!(rows["rows"], 240);
    assert_eq!(rows["data"].as_array().unwrap().len(), 3);
    assert_eq!(rows["data"][0]["customer_id"], 1);
    assert_eq!(rows["data"][0]["email"], "customer-1@example.com");
    assert!(
        rows["columns"]
            .as_array()
            .unwrap()
            .iter()
            .any(|c| c["name"] == "segment")
    );
    let capped = server
        .get(&format!(
            "/api/runs/{id}/steps/segments/datasets/main?limit=100000"
        ))
        .expect(200)
        .json();
    assert_eq!(capped["limit"], 1000);
    assert_eq!(capped["data"].as_array().unwrap().len(), 240);
    let no_dataset = server
        .get(&format!("/api/runs/{id}/steps/segments/datasets/rejected"))
        .expect_error(404);
    assert!(
        no_dataset["error"]
            .as_str()
            .unwrap()
            .contains("it has: main"),
        "{no_dataset}"
    );
    server
        .get(&format!("/api/runs/{id}/steps/nope/datasets/main"))
        .expect_error(404);
    server
        .get(&format!(
            "/api/runs/{id}/steps/segments/datasets/main?limit=0"
        ))
        .expect_error(400);

    // The report gathers the steps' reports with their charts.
    let report = server
        .get(&format!("/api/runs/{id}/report"))
        .expect(200)
        .json();
    let reports = report["reports"].as_array().unwrap();
    let kinds: Vec<&str> = reports
        .iter()
        .map(|r| r["kind"].as_str().unwrap())
        .collect();
    assert_eq!(kinds, ["validate.holdout"]);
    assert_eq!(reports[0]["step"], "split");
    let charts = reports[0]["report"]["charts"].as_array().unwrap();
    assert!(charts.iter().any(|c| c["type"] == "bar"), "{charts:?}");

    // A finished run cannot be cancelled or resumed.
    let cancel = server
        .post(&format!("/api/runs/{id}/cancel"), None)
        .expect_error(409);
    assert!(
        cancel["hint"].as_str().unwrap().contains("succeeded"),
        "{cancel}"
    );
    server
        .post(&format!("/api/runs/{id}/resume"), None)
        .expect_error(409);
    server
        .post("/api/runs/zzzzzz/cancel", None)
        .expect_error(404);

    // Metrics: the run by state, step durations, the records the dry run "sent".
    let sent = step(&shown, "sync")["outputs"]["sent"]
        .as_u64()
        .expect("sent");
    let treatment = server
        .get(&format!(
            "/api/runs/{id}/steps/split/datasets/main?limit=1000"
        ))
        .expect(200)
        .json()["data"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["group"] == "treatment")
        .count() as u64;
    assert_eq!(sent, treatment);
    let metrics = server.get("/metrics").expect(200);
    assert!(
        metrics
            .header("content-type")
            .unwrap()
            .starts_with("text/plain; version=0.0.4")
    );
    let text = metrics.body;
    assert!(
        text.contains("segflow_runs{pipeline=\"shop\",state=\"succeeded\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains("# TYPE segflow_step_duration_seconds histogram\n"),
        "{text}"
    );
    assert!(
        text.contains("segflow_step_duration_seconds_count{pipeline=\"shop\",step=\"split\"} 1\n"),
        "{text}"
    );
    assert!(
        text.contains(
            "segflow_step_duration_seconds_bucket{pipeline=\"shop\",step=\"split\",le=\"+Inf\"} 1\n"
        ),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "segflow_records_published_total{{pipeline=\"shop\",step=\"sync\",dry_run=\"true\"}} {sent}\n"
        )),
        "{text}"
    );
    assert!(
        text.contains("segflow_pipeline_load_error{pipeline=\"broken\"} 1\n"),
        "{text}"
    );
    // Every sample line is `name{labels} value` or `name value`.
    for line in text.lines().filter(|l| !l.starts_with('#')) {
        let (_, value) = line.rsplit_once(' ').unwrap_or_else(|| panic!("{line}"));
        assert!(value.parse::<f64>().is_ok() || value == "+Inf", "{line}");
    }

    // The pipeline now shows its last run.
    let shop = server.get("/api/pipelines/shop").expect(200).json();
    assert_eq!(shop["runs"][0]["id"], id.as_str());
}

#[test]
fn a_running_run_is_cancelled_and_resumed() {
    let project = shop_project();
    let server = project.serve(&[], &[]);
    let id = trigger(&server, "nap", "");
    server.wait_for_state(&id, "running", Duration::from_secs(30));
    // Resuming a run that is running is a conflict.
    server
        .post(&format!("/api/runs/{id}/resume"), None)
        .expect_error(409);
    let cancelled = server
        .post(&format!("/api/runs/{id}/cancel"), None)
        .expect(202)
        .json();
    assert_eq!(cancelled["run"], id.as_str());
    let run = server.wait_for_run(&id, RUN_TIME);
    assert_eq!(run["state"], "cancelled", "{run}");
    let resumed = server
        .post(&format!("/api/runs/{id}/resume"), None)
        .expect(202)
        .json();
    assert_eq!(resumed["run"], id.as_str());
    server.wait_for_state(&id, "running", Duration::from_secs(30));
    server
        .post(&format!("/api/runs/{id}/cancel"), None)
        .expect(202);
    server.wait_for_state(&id, "cancelled", RUN_TIME);
}

#[test]
fn unknown_routes_methods_and_odd_input_get_json_errors() {
    let project = shop_project();
    let server = project.serve(&[], &[]);
    server.get("/api/nope").expect_error(404);
    server
        .request("DELETE", "/api/runs", &[], None)
        .expect_error(405);
    // Not UTF-8 once decoded: a bad request, not a crash.
    server.get("/api/runs/%ff%fe").expect_error(400);
    server.get("/api/runs/a%2Fb/logs").expect_error(404);
    server.get("/api/runs?limit=-1").expect_error(400);
    server
        .get("/api/runs?limit=99999999999999999999999")
        .expect_error(400);
    for body in [
        "[]",
        "{\"params\": [1]}",
        "{\"params\": {\"holdout\": {\"x\": 1}}}",
        "{",
        "\u{0}",
    ] {
        server
            .post("/api/pipelines/shop/runs", Some(body))
            .expect_error(400);
    }
    // A cross-site browser request may not start anything; neither may a foreign Host.
    let cross = server
        .request(
            "POST",
            "/api/pipelines/shop/runs",
            &[("Origin", "http://evil.example")],
            None,
        )
        .expect_error(403);
    assert!(
        cross["error"].as_str().unwrap().contains("evil.example"),
        "{cross}"
    );
    server
        .request("GET", "/api/runs", &[("Host", "evil.example:8080")], None)
        .expect_error(403);
    // The OpenAPI file is served; the UI's page and files too.
    let openapi = server.get("/api/openapi.yaml").expect(200);
    assert!(openapi.body.starts_with("openapi: 3"));
    let page = server.get("/").expect(200);
    assert!(page.body.contains("/ui/app.js"));
    assert!(
        page.header("content-security-policy")
            .unwrap()
            .contains("default-src 'self'")
    );
    server.get("/ui/app.js").expect(200);
    server.get("/ui/nope.js").expect(404);
    // Nothing above brought the server down.
    assert_eq!(server.get("/healthz").expect(200).body, "ok\n");
}

#[test]
fn a_token_guards_the_api_but_not_healthz() {
    let project = shop_project();
    let mut server = project.serve(&[], &[("SEGFLOW_API_TOKEN", "s3cret-token")]);
    server.get("/healthz").expect(200);
    server.get("/").expect(200);
    let missing = server.get("/api/pipelines");
    assert_eq!(
        missing.header("www-authenticate"),
        Some("Bearer realm=\"segflow\"")
    );
    let missing = missing.expect_error(401);
    assert!(
        missing["error"].as_str().unwrap().contains("Authorization"),
        "{missing}"
    );
    server.get("/metrics").expect_error(401);
    server
        .post("/api/pipelines/shop/runs", None)
        .expect_error(401);
    let wrong = server
        .request(
            "GET",
            "/api/runs",
            &[("Authorization", "Bearer s3cret-tokem")],
            None,
        )
        .expect_error(401);
    assert!(
        wrong["error"].as_str().unwrap().contains("wrong"),
        "{wrong}"
    );
    assert!(
        !wrong.to_string().contains("s3cret"),
        "the token is never echoed: {wrong}"
    );
    server
        .request(
            "GET",
            "/api/runs",
            &[("Authorization", "Basic czNjcmV0")],
            None,
        )
        .expect_error(401);

    server.token = Some("s3cret-token".into());
    server.get("/api/pipelines").expect(200);
    server.get("/metrics").expect(200);
    let id = trigger(&server, "shop", "");
    assert_eq!(server.wait_for_run(&id, RUN_TIME)["state"], "succeeded");
    assert!(!server.stderr().contains("s3cret-token"));
}

#[test]
fn the_token_can_come_from_a_file() {
    let project = shop_project();
    let file = project.write("token.txt", "from-a-file\n");
    let mut server = project.serve(&["--token-file", file.to_str().unwrap()], &[]);
    server.get("/api/runs").expect_error(401);
    server.token = Some("from-a-file".into());
    server.get("/api/runs").expect(200);
}

#[test]
fn a_public_address_without_a_token_is_refused() {
    let project = shop_project();
    let refused = project
        .segflow(&["serve", "--pipelines", "pipelines", "--listen", "0.0.0.0:0"])
        .failed();
    assert!(
        refused
            .stderr
            .contains("refusing to listen on 0.0.0.0:0 without a token"),
        "{}",
        refused.stderr
    );
    assert!(
        refused.stderr.contains("SEGFLOW_API_TOKEN"),
        "{}",
        refused.stderr
    );
}
