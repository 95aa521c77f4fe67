//! Publishing: publish.webhook (presets, delivery, exactly once through failures and a
//! SIGKILL, diff mode, dead letters, dry run), publish.file and notify.webhook.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::support;
use crate::support::receiver::{Answer, Faults, Receiver, Rule};
use crate::support::{Project, step_states};

const SECRET: &str = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw";

/// Customers `0..n` as CSV; every tenth is in the control group. `segment_of` may change a
/// customer's segment; `None` leaves the customer out.
fn customers(n: usize, segment_of: impl Fn(usize) -> Option<String>) -> String {
    let mut csv = String::from("customer_id,email,first_name,segment,group\n");
    for i in 0..n {
        let Some(segment) = segment_of(i) else {
            continue;
        };
        let group = if i % 10 == 0 { "control" } else { "treatment" };
        csv.push_str(&format!(
            "{i},customer{i}@example.test,Name{i},{segment},{group}\n"
        ));
    }
    csv
}

fn default_segment(i: usize) -> Option<String> {
    Some(["Champions", "Loyal", "At Risk"][i % 3].to_string())
}

/// A pipeline: gather.csv → one publish step configured by `with` (YAML, indented 6).
fn publish_pipeline(name: &str, with: &str) -> String {
    format!(
        r#"name: {name}
steps:
  - id: customers
    uses: gather.csv
    with: {{ path: data/customers.csv }}
  - id: sync
    uses: publish.webhook
    needs: [customers]
    with:
{with}
"#
    )
}

/// The customer ids in the records of a generic-preset body.
fn record_ids(body: &Value) -> Vec<i64> {
    body["records"]
        .as_array()
        .map(|records| {
            records
                .iter()
                .map(|r| r["customer_id"].as_i64().expect("customer_id"))
                .collect()
        })
        .unwrap_or_default()
}

fn latest_run_id(project: &Project) -> String {
    let listed = project.segflow(&["runs", "list", "--json"]).ok().json();
    listed[0]["id"].as_str().expect("a run").to_string()
}

/// The acknowledgements segflow recorded, by idempotency key, with when they were recorded.
fn recorded_acks(project: &Project) -> HashMap<String, SystemTime> {
    let store = segflow::store::SledStore::open(&project.path(".segflow")).expect("the store");
    use segflow::store::StateStore;
    store
        .kv_scan("publish.acks", "")
        .expect("acks")
        .into_iter()
        .map(|(_, value)| {
            let ack: Value = serde_json::from_slice(&value).unwrap();
            let at: chrono::DateTime<chrono::Utc> =
                serde_json::from_value(ack["at"].clone()).unwrap();
            (
                ack["idempotency_key"].as_str().unwrap().to_string(),
                SystemTime::from(at),
            )
        })
        .collect()
}

#[test]
fn every_customer_arrives_once_through_failures_and_a_sigkill() {
    let faults = Faults {
        seed: 20261123,
        server_error: 0.10,
        too_many: 0.03,
        retry_after_secs: 1,
        slow: 0.04,
        slow_for: Duration::from_millis(1500),
        drop_after: 0.05,
        drop_before: 0.03,
    };
    let receiver = Receiver::with(faults, Some(SECRET), Vec::new());
    let project = Project::new();
    let total = 3000;
    project.write("data/customers.csv", &customers(total, default_segment));
    project.pipeline(
        "sync",
        &publish_pipeline(
            "sync",
            r#"      url: "${{ env.ESP_WEBHOOK_URL }}"
      filter: "group = 'treatment'"
      secret: "${{ secrets.WEBHOOK_SECRET }}"
      fields: { customer_id: customer_id, email: email, segment: segment }
      batch_size: 20
      concurrency: 4
      rate_limit: 40
      timeout: 1s
      delivery: { attempts: 30, delay: 50ms, max_delay: 500ms }"#,
        ),
    );
    let treatment: BTreeSet<i64> = (0..total as i64).filter(|i| i % 10 != 0).collect();
    let batches = treatment.len().div_ceil(20);

    let mut child = project
        .command(&["run", "sync"])
        .env("ESP_WEBHOOK_URL", &receiver.url)
        .env("SEGFLOW_SECRET_WEBHOOK_SECRET", SECRET)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("segflow starts");
    // Kill segflow once the receiver has processed a third of the batches.
    let started = Instant::now();
    while receiver.unique().len() < batches / 3 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "segflow finished before it could be killed"
        );
        assert!(
            started.elapsed() < Duration::from_secs(120),
            "the receiver saw too few batches"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().expect("SIGKILL");
    child.wait().unwrap();
    let killed_at = SystemTime::now();
    let seen_at_kill = receiver.unique().len();
    assert!(
        seen_at_kill < batches,
        "the kill came after every batch was sent"
    );

    let run_id = latest_run_id(&project);
    let resumed = project
        .command(&["resume", &run_id])
        .env("ESP_WEBHOOK_URL", &receiver.url)
        .env("SEGFLOW_SECRET_WEBHOOK_SECRET", SECRET)
        .output()
        .unwrap();
    assert!(
        resumed.status.success(),
        "resume failed:\n{}",
        String::from_utf8_lossy(&resumed.stderr)
    );
    let out = project.outputs(&run_id, "sync");
    assert!(
        out["already_sent"].as_u64().unwrap() > 0,
        "the resumed step sent everything again: {out}"
    );
    assert_eq!(
        out["sent"].as_u64().unwrap() + out["already_sent"].as_u64().unwrap(),
        treatment.len() as u64,
        "{out}"
    );

    // What a receiver that deduplicates by idempotency key keeps: every customer, once.
    let unique = receiver.unique();
    let mut arrived: BTreeMap<i64, usize> = BTreeMap::new();
    for request in unique.values() {
        for id in record_ids(&request.body) {
            *arrived.entry(id).or_default() += 1;
        }
    }
    let arrived_ids: BTreeSet<i64> = arrived.keys().copied().collect();
    assert_eq!(
        arrived_ids, treatment,
        "not every treatment customer arrived"
    );
    assert!(
        arrived.values().all(|&n| n == 1),
        "a customer arrived in two different batches"
    );
    assert_eq!(unique.len(), batches);

    // Every request was signed with the secret (Standard Webhooks).
    let requests = receiver.requests();
    assert!(
        requests.iter().all(|r| r.signature_ok == Some(true)),
        "a request had a missing or wrong signature"
    );

    // No acknowledged batch was sent again: no request for a key arrived after segflow had
    // recorded that key's acknowledgement.
    let acks = recorded_acks(&project);
    assert_eq!(acks.len(), batches, "every batch has an acknowledgement");
    for request in &requests {
        if let Some(acked_at) = acks.get(request.webhook_id()) {
            assert!(
                request.at <= *acked_at,
                "batch {} was sent again after it was acknowledged",
                request.webhook_id()
            );
        }
    }
    // Raw duplicates are deliveries the receiver processed but whose answer segflow never
    // got: the connection dropped mid-answer, the answer came after the client's timeout, or
    // segflow was killed before it recorded the ack. The same key and body came again, which
    // is what the idempotency key is for.
    let mut processed: BTreeMap<&str, Vec<&crate::support::receiver::Request>> = BTreeMap::new();
    for request in requests.iter().filter(|r| r.answer.processed()) {
        processed
            .entry(request.webhook_id())
            .or_default()
            .push(request);
    }
    let mut raw_duplicates = 0;
    for deliveries in processed.values().filter(|d| d.len() > 1) {
        raw_duplicates += deliveries.len() - 1;
        for pair in deliveries.windows(2) {
            assert_eq!(pair[0].raw, pair[1].raw, "a retried batch changed content");
        }
        // Every delivery but the last lost its answer by design, or was in flight when
        // segflow was killed (processed, but the ack never recorded).
        for earlier in &deliveries[..deliveries.len() - 1] {
            let explained = matches!(earlier.answer, Answer::DroppedAfter | Answer::Slow)
                || (earlier.answer == Answer::Ok && earlier.at <= killed_at);
            assert!(
                explained,
                "batch {} arrived twice without a lost answer: {:?}",
                earlier.webhook_id(),
                earlier.answer
            );
        }
    }
    let lost_answers = requests
        .iter()
        .filter(|r| matches!(r.answer, Answer::DroppedAfter | Answer::Slow))
        .count();
    eprintln!(
        "{} requests, {} batches, {raw_duplicates} raw duplicates (processed but unacknowledged: {lost_answers} answers lost by design, plus in-flight at the kill); killed after {seen_at_kill} batches",
        requests.len(),
        batches
    );

    // No personal data in the logs.
    let logs = project.segflow(&["logs", &run_id]).ok();
    assert!(!logs.stdout.contains("@example.test"), "{}", logs.stdout);
    assert!(!logs.stdout.contains(SECRET));
}

#[test]
fn diff_mode_sends_changes_and_removals_only() {
    let receiver = Receiver::start();
    let project = Project::new();
    project.write("data/customers.csv", &customers(100, default_segment));
    project.pipeline(
        "diff",
        &publish_pipeline(
            "diff",
            &format!(
                r#"      url: "{}/hook"
      mode: diff
      key: customer_id
      fields: {{ customer_id: customer_id, email: email, segment: segment }}
      batch_size: 50"#,
                receiver.url
            ),
        ),
    );
    let first = project.segflow(&["run", "diff"]).ok().run_id();
    assert_eq!(project.outputs(&first, "sync")["sent"], 100);
    assert_eq!(receiver.requests().len(), 2);

    // Customers 1..=5 change segment, 90..=92 leave, 100 and 101 join.
    project.write(
        "data/customers.csv",
        &customers(102, |i| match i {
            1..=5 => Some("Lost".into()),
            90..=92 => None,
            _ => default_segment(i),
        }),
    );
    let second = project.segflow(&["run", "diff"]).ok().run_id();
    let out = project.outputs(&second, "sync");
    assert_eq!(out["sent"], 7, "{out}");
    assert_eq!(out["unchanged"], 92, "{out}");
    assert_eq!(out["removed"], 3, "{out}");
    let requests = receiver.requests();
    let new: Vec<&Value> = requests[2..].iter().map(|r| &r.body).collect();
    let upserts: BTreeSet<i64> = new
        .iter()
        .filter(|b| b["action"] == "upsert")
        .flat_map(|b| record_ids(b))
        .collect();
    assert_eq!(upserts, BTreeSet::from([1, 2, 3, 4, 5, 100, 101]));
    let removals: Vec<&Value> = new
        .iter()
        .filter(|b| b["action"] == "remove")
        .copied()
        .collect();
    assert_eq!(removals.len(), 1);
    assert_eq!(
        removals[0]["records"],
        json!([{"customer_id": 90}, {"customer_id": 91}, {"customer_id": 92}])
    );

    // Nothing changed: nothing is sent.
    let third = project.segflow(&["run", "diff"]).ok().run_id();
    let out = project.outputs(&third, "sync");
    assert_eq!(out["batches"], 0, "{out}");
    assert_eq!(receiver.requests().len(), requests.len());
}

#[test]
fn rejected_batches_go_to_the_dead_letters_without_retries() {
    let rules = vec![Rule {
        when_body_contains: Some("customer13@example.test".into()),
        status: 422,
        body: "{\"error\":\"invalid profile customer13@example.test\"}".into(),
    }];
    let receiver = Receiver::with(Faults::default(), None, rules);
    let project = Project::new();
    project.write("data/customers.csv", &customers(40, default_segment));
    project.pipeline(
        "dead",
        &publish_pipeline(
            "dead",
            &format!(
                r#"      url: "{}"
      fields: {{ customer_id: customer_id, email: email }}
      batch_size: 10
      max_rejected_batches: 1"#,
                receiver.url
            ),
        ),
    );
    let run = project.segflow(&["run", "dead"]).ok();
    let run_id = run.run_id();
    let requests = receiver.requests();
    assert_eq!(requests.len(), 4, "a 422 is not retried");
    let shown = project.show(&run_id);
    let sync = support::step(&shown, "sync");
    assert_eq!(sync["outputs"]["rejected"], 10);
    assert_eq!(sync["outputs"]["sent"], 30);
    let dead = sync["datasets"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["name"] == "dead_letter")
        .expect("a dead_letter dataset");
    assert_eq!(dead["rows"], 1);
    // The answer is kept in the dataset, never in the logs.
    let logs = project.segflow(&["logs", &run_id]).ok();
    assert!(logs.stdout.contains("HTTP 422"), "{}", logs.stdout);
    assert!(!logs.stdout.contains("@example.test"), "{}", logs.stdout);
    assert!(!run.stderr.contains("@example.test"), "{}", run.stderr);

    // Over the limit the step fails, and says where the answers are.
    project.pipeline(
        "strict",
        &publish_pipeline(
            "strict",
            &format!(
                r#"      url: "{}"
      fields: {{ customer_id: customer_id, email: email }}
      batch_size: 10"#,
                receiver.url
            ),
        ),
    );
    let failed = project.segflow(&["run", "strict"]).failed();
    let shown = project.show(&failed.run_id());
    let reason = shown["steps"][1]["reason"].as_str().unwrap().to_string();
    assert!(
        reason.contains("rejected 1 batches") && reason.contains("dead_letter.parquet"),
        "{reason}"
    );
    assert!(!reason.contains("@example.test"));
}

#[test]
fn a_refused_endpoint_stops_publishing_at_once() {
    let rules = vec![Rule {
        when_body_contains: None,
        status: 401,
        body: "{\"error\":\"bad key\"}".into(),
    }];
    let receiver = Receiver::with(Faults::default(), None, rules);
    let project = Project::new();
    project.write("data/customers.csv", &customers(100, default_segment));
    project.pipeline(
        "refused",
        &publish_pipeline(
            "refused",
            &format!(
                r#"      url: "{}"
      api_key: "sk-test-1234567890"
      batch_size: 10
      concurrency: 1"#,
                receiver.url
            ),
        ),
    );
    let run = project.segflow(&["run", "refused"]).failed();
    assert_eq!(
        receiver.requests().len(),
        1,
        "publishing went on after a 401"
    );
    let shown = project.show(&run.run_id());
    let reason = shown["steps"][1]["reason"].as_str().unwrap();
    assert!(reason.contains("HTTP 401"), "{reason}");
    assert_eq!(
        receiver.requests()[0].headers["authorization"],
        "Bearer sk-test-1234567890"
    );
}

/// An OpenAPI component schema as a JSON Schema validator: OpenAPI 3.0's `nullable` becomes a
/// `null` type, and `$ref`s resolve inside the document.
fn openapi_validator(file: &str, pointer: &str) -> jsonschema::Validator {
    fn nullable(value: &mut Value) {
        match value {
            Value::Object(map) => {
                if map.remove("nullable") == Some(Value::Bool(true)) {
                    if let Some(Value::String(t)) = map.get("type").cloned() {
                        map.insert("type".into(), json!([t, "null"]));
                    } else {
                        let inner = Value::Object(std::mem::take(map));
                        map.insert("anyOf".into(), json!([inner, {"type": "null"}]));
                    }
                }
                map.values_mut().for_each(nullable);
            }
            Value::Array(items) => items.iter_mut().for_each(nullable),
            _ => {}
        }
    }
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/specs")
        .join(file);
    let mut document: Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    nullable(&mut document);
    document["$ref"] = Value::String(pointer.to_string());
    document["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
    jsonschema::draft202012::new(&document).expect("a valid schema")
}

fn assert_valid(validator: &jsonschema::Validator, body: &Value, what: &str) {
    let errors: Vec<String> = validator
        .iter_errors(body)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "{what} does not match the platform's schema: {errors:#?}"
    );
}

#[test]
fn presets_shape_requests_as_each_platform_expects() {
    let receiver = Receiver::start();
    let project = Project::new();
    project.write("data/customers.csv", &customers(160, default_segment));
    let url = &receiver.url;
    project.pipeline(
        "presets",
        &format!(
            r#"name: presets
steps:
  - id: customers
    uses: gather.csv
    with: {{ path: data/customers.csv }}
  - id: klaviyo
    uses: publish.webhook
    needs: [customers]
    with:
      preset: klaviyo
      url: "{url}"
      api_key: pk_test_klaviyo_key
      list_id: VRgFBd
      fields: {{ email: email, first_name: first_name, external_id: customer_id, segment: segment, location.city: group }}
  - id: sendgrid
    uses: publish.webhook
    needs: [customers]
    with:
      preset: sendgrid
      url: "{url}"
      api_key: SG.test-sendgrid-key
      list_id: ca7a3796-e8a8-4029-9ccb-df8937940562
      fields: {{ email: email, first_name: first_name, external_id: customer_id, e1_T: segment }}
  - id: mailchimp
    uses: publish.webhook
    needs: [customers]
    with:
      preset: mailchimp
      url: "{url}"
      api_key: mc-test-key-us6
      list_id: a1b2c3
      fields: {{ email: email, FNAME: first_name, SEGMENT: segment }}
  - id: braze
    uses: publish.webhook
    needs: [customers]
    with:
      preset: braze
      url: "{url}"
      api_key: braze-rest-key
      fields: {{ external_id: customer_id, email: email, rfm_segment: segment }}
"#
        ),
    );
    project.segflow(&["run", "presets"]).ok();
    let requests = receiver.requests();
    let on = |path: &str| -> Vec<&crate::support::receiver::Request> {
        requests.iter().filter(|r| r.path == path).collect()
    };

    let klaviyo = on("/api/profile-bulk-import-jobs");
    assert_eq!(klaviyo.len(), 1);
    let k = klaviyo[0];
    assert_eq!(k.method, "POST");
    assert_eq!(
        k.headers["authorization"],
        "Klaviyo-API-Key pk_test_klaviyo_key"
    );
    assert_eq!(k.headers["revision"], "2026-07-15");
    assert_eq!(k.headers["content-type"], "application/vnd.api+json");
    assert_eq!(
        k.body["data"]["attributes"]["profiles"]["data"]
            .as_array()
            .unwrap()
            .len(),
        160
    );
    assert_eq!(
        k.body["data"]["attributes"]["profiles"]["data"][1]["attributes"],
        // Klaviyo's identifiers are strings.
        json!({"email": "customer1@example.test", "first_name": "Name1", "external_id": "1",
               "location": {"city": "treatment"}, "properties": {"segment": "Loyal"}}),
        "{}",
        k.body["data"]["attributes"]["profiles"]["data"][1]
    );
    assert_eq!(
        k.body["data"]["relationships"]["lists"]["data"],
        json!([{"type": "list", "id": "VRgFBd"}])
    );
    assert_valid(
        &openapi_validator(
            "klaviyo_bulk_import_profiles.openapi.json",
            "#/components/schemas/ProfileImportJobCreateQuery",
        ),
        &k.body,
        "the Klaviyo body",
    );

    let sendgrid = on("/v3/marketing/contacts");
    assert_eq!(sendgrid.len(), 1);
    let s = sendgrid[0];
    assert_eq!(s.method, "PUT");
    assert_eq!(s.headers["authorization"], "Bearer SG.test-sendgrid-key");
    assert_eq!(
        s.body["list_ids"],
        json!(["ca7a3796-e8a8-4029-9ccb-df8937940562"])
    );
    assert_eq!(
        s.body["contacts"][2],
        json!({"email": "customer2@example.test", "first_name": "Name2", "external_id": "2",
               "custom_fields": {"e1_T": "At Risk"}})
    );
    assert_valid(
        &openapi_validator(
            "sendgrid_marketing_contacts.openapi.json",
            "#/paths/~1v3~1marketing~1contacts/put/requestBody/content/application~1json/schema",
        ),
        &s.body,
        "the SendGrid body",
    );

    let mailchimp = on("/3.0/lists/a1b2c3");
    assert_eq!(mailchimp.len(), 1);
    let m = mailchimp[0];
    // HTTP Basic with the API key as password.
    assert_eq!(
        m.headers["authorization"],
        "Basic c2VnZmxvdzptYy10ZXN0LWtleS11czY="
    );
    assert_eq!(m.body["update_existing"], true);
    assert_eq!(
        m.body["members"][0],
        json!({"email_address": "customer0@example.test", "status": "subscribed",
               "merge_fields": {"FNAME": "Name0", "SEGMENT": "Champions"}})
    );

    // Braze takes 75 attribute objects per request.
    let braze = on("/users/track");
    let sizes: Vec<usize> = braze
        .iter()
        .map(|r| r.body["attributes"].as_array().unwrap().len())
        .collect();
    assert_eq!(sizes.iter().sum::<usize>(), 160);
    assert!(sizes.iter().all(|&n| n <= 75), "{sizes:?}");
    assert!(
        braze
            .iter()
            .all(|r| r.headers["authorization"] == "Bearer braze-rest-key")
    );
    // Batches go out concurrently: find the one that starts with customer 0.
    let first = braze
        .iter()
        .find(|r| r.body["attributes"][0]["external_id"] == "0")
        .expect("the first batch");
    assert_eq!(
        first.body["attributes"][0],
        json!({"external_id": "0", "email": "customer0@example.test", "rfm_segment": "Champions"})
    );
}

#[test]
fn klaviyo_removals_unset_the_segment_properties() {
    let receiver = Receiver::start();
    let project = Project::new();
    project.write("data/customers.csv", &customers(20, default_segment));
    project.pipeline(
        "kdiff",
        &publish_pipeline(
            "kdiff",
            &format!(
                r#"      preset: klaviyo
      url: "{}"
      mode: diff
      key: customer_id
      fields: {{ email: email, segment: segment }}"#,
                receiver.url
            ),
        ),
    );
    project.segflow(&["run", "kdiff"]).ok();
    project.write(
        "data/customers.csv",
        &customers(20, |i| if i == 7 { None } else { default_segment(i) }),
    );
    project.segflow(&["run", "kdiff"]).ok();
    let requests = receiver.requests();
    assert_eq!(
        requests.len(),
        2,
        "only the removal is sent the second time"
    );
    let removal = &requests[1].body;
    assert_eq!(
        removal["data"]["attributes"]["profiles"]["data"],
        json!([{"type": "profile", "attributes": {"email": "customer7@example.test"},
                "meta": {"patch_properties": {"unset": ["segment"]}}}])
    );
    assert_valid(
        &openapi_validator(
            "klaviyo_bulk_import_profiles.openapi.json",
            "#/components/schemas/ProfileImportJobCreateQuery",
        ),
        removal,
        "the Klaviyo removal body",
    );
}

#[test]
fn dry_run_writes_the_exact_requests_and_sends_nothing() {
    let receiver = Receiver::start();
    let project = Project::new();
    project.write("data/customers.csv", &customers(30, default_segment));
    project.pipeline(
        "dry",
        &publish_pipeline(
            "dry",
            &format!(
                r#"      preset: sendgrid
      url: "{}"
      api_key: SG.very-secret-key-123
      secret: "{SECRET}"
      fields: {{ email: email }}
      batch_size: 10
      dry_run: true"#,
                receiver.url
            ),
        ),
    );
    let run_id = project.segflow(&["run", "dry"]).ok().run_id();
    assert!(receiver.requests().is_empty(), "a dry run sent requests");
    let file = project
        .path(".segflow/runs")
        .join(&run_id)
        .join("sync/dry-run-requests.ndjson");
    let text = std::fs::read_to_string(&file).expect("the dry-run file");
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    let first = &lines[0];
    assert_eq!(first["method"], "PUT");
    assert_eq!(
        first["url"],
        format!("{}/v3/marketing/contacts", receiver.url)
    );
    assert_eq!(first["headers"]["authorization"], "***");
    assert!(
        first["headers"]["webhook-signature"]
            .as_str()
            .unwrap()
            .starts_with("v1,")
    );
    assert!(
        first["headers"]["idempotency-key"]
            .as_str()
            .unwrap()
            .starts_with("msg_")
    );
    assert_eq!(first["body"]["contacts"].as_array().unwrap().len(), 10);
    assert!(!text.contains("very-secret-key"));
    let logs = project.segflow(&["logs", &run_id]).ok();
    assert!(
        logs.stdout.contains("dry-run-requests.ndjson"),
        "{}",
        logs.stdout
    );
    assert_eq!(project.outputs(&run_id, "sync")["dry_run"], true);
}

#[test]
fn validate_explains_bad_publish_configs() {
    let project = Project::new();
    project.write("data/customers.csv", &customers(5, default_segment));
    project.pipeline(
        "bad",
        r#"name: bad
steps:
  - id: customers
    uses: gather.csv
    with: { path: data/customers.csv }
  - id: braze
    uses: publish.webhook
    needs: [customers]
    with: { preset: braze, url: "http://127.0.0.1:9", batch_size: 100 }
  - id: mailchimp
    uses: publish.webhook
    needs: [customers]
    with: { preset: mailchimp, url: "http://127.0.0.1:9" }
  - id: filtered
    uses: publish.webhook
    needs: [customers]
    with: { url: "http://127.0.0.1:9", filter: "group = ", dataset: custmers }
  - id: signed
    uses: publish.webhook
    needs: [customers]
    with: { url: "http://127.0.0.1:9", secret: "not-a-webhook-secret" }
  - id: braze_from_env
    uses: publish.webhook
    needs: [customers]
    with: { preset: braze, url: "${{ env.BRAZE_URL }}", api_key: "${{ secrets.BRAZE_KEY }}", batch_size: 80 }
  - id: export
    uses: publish.file
    needs: [customers]
    with: { path: out/customers.xlsx }
"#,
    );
    let run = project
        .segflow(&["validate", "pipelines/bad.yaml"])
        .failed();
    let text = run.stderr;
    assert!(text.contains("1 to 75"), "{text}");
    // Checked even when the URL and key come from the environment and secrets.
    assert!(text.contains("`batch_size: 80`"), "{text}");
    assert!(text.contains("list_id"), "{text}");
    assert!(text.contains("`filter`"), "{text}");
    assert!(text.contains("did you mean `customers`?"), "{text}");
    assert!(text.contains("whsec_"), "{text}");
    assert!(!text.contains("not-a-webhook-secret\n"), "{text}");
    assert!(text.contains("format"), "{text}");
}

#[test]
fn publish_file_writes_whole_files_in_each_format() {
    let project = Project::new();
    project.write("data/customers.csv", &customers(50, default_segment));
    project.pipeline(
        "files",
        r#"name: files
steps:
  - id: customers
    uses: gather.csv
    with: { path: data/customers.csv }
  - id: csv
    uses: publish.file
    needs: [customers]
    with: { path: out/treatment.csv, filter: "\"group\" = 'treatment'", columns: [customer_id, segment] }
  - id: ndjson
    uses: publish.file
    needs: [customers]
    with: { path: out/all.ndjson }
  - id: parquet
    uses: publish.file
    needs: [customers]
    with: { path: out/all.data, format: parquet }
"#,
    );
    let run_id = project.segflow(&["run", "files"]).ok().run_id();
    let csv = project.read("out/treatment.csv");
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("customer_id,segment"));
    assert_eq!(lines.next(), Some("1,Loyal"));
    assert_eq!(csv.lines().count(), 1 + 45);
    let ndjson = project.read("out/all.ndjson");
    assert_eq!(ndjson.lines().count(), 50);
    let first: Value = serde_json::from_str(ndjson.lines().next().unwrap()).unwrap();
    assert_eq!(first["email"], "customer0@example.test");
    let file = std::fs::File::open(project.path("out/all.data")).unwrap();
    let reader =
        datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder::try_new(file)
            .unwrap()
            .build()
            .unwrap();
    let rows: usize = reader.map(|b| b.unwrap().num_rows()).sum();
    assert_eq!(rows, 50);
    // Nothing but the finished files is left in the folder.
    let mut names: Vec<String> = std::fs::read_dir(project.path("out"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["all.data", "all.ndjson", "treatment.csv"]);
    assert_eq!(project.outputs(&run_id, "csv")["rows"], 45);
}

#[test]
fn notify_webhook_posts_a_slack_summary_when_a_step_fails() {
    let receiver = Receiver::start();
    let project = Project::new();
    project.pipeline(
        "alerting",
        &format!(
            r#"name: alerting
steps:
  - id: score
    uses: shell
    with: {{ command: ["sh", "-c", "echo model missing >&2; exit 3"] }}
  - id: alert
    uses: notify.webhook
    needs: [score]
    trigger: one_failed
    with: {{ url: "{}/services/T000/B000/XXXX" }}
"#,
            receiver.url
        ),
    );
    let run = project.segflow(&["run", "alerting"]).failed();
    let run_id = run.run_id();
    let shown = project.show(&run_id);
    assert_eq!(
        step_states(&shown),
        [
            ("score".to_string(), "failed".to_string()),
            ("alert".to_string(), "succeeded".to_string())
        ]
    );
    let requests = receiver.requests();
    assert_eq!(requests.len(), 1);
    let message = &requests[0].body;
    assert_eq!(requests[0].path, "/services/T000/B000/XXXX");
    let text = message["text"].as_str().unwrap();
    assert!(
        text.contains("alerting") && text.contains(&run_id),
        "{text}"
    );
    assert!(
        text.contains("score") && text.contains("exited with code 3"),
        "{text}"
    );
    let blocks = message["blocks"].as_array().unwrap();
    assert!(blocks.iter().any(|b| {
        b["text"]["text"]
            .as_str()
            .is_some_and(|t| t.contains("`score` failed"))
    }));
    // The webhook URL is a credential: only its host is logged.
    let logs = project.segflow(&["logs", &run_id]).ok();
    assert!(!logs.stdout.contains("XXXX"), "{}", logs.stdout);
}

#[test]
fn a_resumed_run_sends_only_the_batches_that_were_not_acknowledged() {
    let rules = vec![Rule {
        when_body_contains: Some("customer13@example.test".into()),
        status: 503,
        body: "{\"error\":\"maintenance\"}".into(),
    }];
    let receiver = Receiver::with(Faults::default(), None, rules);
    let project = Project::new();
    project.write("data/customers.csv", &customers(40, default_segment));
    project.pipeline(
        "flaky",
        &publish_pipeline(
            "flaky",
            &format!(
                r#"      url: "{}"
      fields: {{ customer_id: customer_id, email: email }}
      batch_size: 10
      concurrency: 1
      delivery: {{ attempts: 3, delay: 10ms }}"#,
                receiver.url
            ),
        ),
    );
    let failed = project.segflow(&["run", "flaky"]).failed();
    let run_id = failed.run_id();
    let requests = receiver.requests();
    // A 503 is retried: the failing batch was tried 3 times; the step stopped there.
    let failing: Vec<_> = requests
        .iter()
        .filter(|r| r.answer == Answer::Status(503))
        .collect();
    assert_eq!(failing.len(), 3);
    assert!(
        failing
            .windows(2)
            .all(|w| w[0].webhook_id() == w[1].webhook_id()),
        "retries of a batch keep its idempotency key"
    );
    let reason = project.show(&run_id)["steps"][1]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(
        reason.contains("after 3 tries") && reason.contains("HTTP 503"),
        "{reason}"
    );
    let delivered_before: BTreeSet<String> = receiver.unique().keys().cloned().collect();

    receiver.heal();
    project.segflow(&["resume", &run_id]).ok();
    let out = project.outputs(&run_id, "sync");
    assert_eq!(
        out["already_sent"],
        delivered_before.len() as u64 * 10,
        "{out}"
    );
    let after: Vec<_> = receiver.requests()[requests.len()..].to_vec();
    assert_eq!(
        after.len(),
        4 - delivered_before.len(),
        "acknowledged batches were sent again"
    );
    assert!(
        after
            .iter()
            .all(|r| !delivered_before.contains(r.webhook_id()))
    );
    assert_eq!(after[0].webhook_id(), failing[0].webhook_id());
    let all: BTreeSet<i64> = receiver
        .unique()
        .values()
        .flat_map(|r| record_ids(&r.body))
        .collect();
    assert_eq!(all, (0..40).collect());
}

/// One batch fails for good (with `status`: 500 exhausts the retries, 401 refuses the
/// endpoint) while three others are in flight, answered 200 after two seconds; the last two
/// batches are still queued. Then the receiver heals and the run is resumed.
fn one_batch_gives_up_while_others_are_in_flight(status: u16) {
    let rules = vec![Rule {
        when_body_contains: Some("customer0@example.test".into()),
        status,
        body: "{\"error\":\"nope\"}".into(),
    }];
    let receiver = Receiver::with(Faults::default(), None, rules);
    receiver.delay_answers(Duration::from_secs(2));
    // The failure is answered only once all four batches are on the wire.
    receiver.hold_rule_answers_until(4);
    let project = Project::new();
    project.write("data/customers.csv", &customers(60, default_segment));
    project.pipeline(
        "inflight",
        &publish_pipeline(
            "inflight",
            &format!(
                r#"      url: "{}"
      fields: {{ customer_id: customer_id, email: email }}
      batch_size: 10
      concurrency: 4
      timeout: 20s
      delivery: {{ attempts: 2, delay: 10ms }}"#,
                receiver.url
            ),
        ),
    );
    let run_id = project.segflow(&["run", "inflight"]).failed().run_id();
    let reason = project.show(&run_id)["steps"][1]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    // The three batches in flight were answered, heard and recorded.
    assert!(
        reason.contains("3 batches are delivered and recorded")
            || reason.contains("after 3 delivered batches"),
        "HTTP {status}: {reason}"
    );
    assert_eq!(recorded_acks(&project).len(), 3, "HTTP {status}: {reason}");
    // No batch was handed out after the failure: batches 4 and 5 were never sent.
    let first_run = receiver.requests();
    let sent_ids: BTreeSet<i64> = first_run.iter().flat_map(|r| record_ids(&r.body)).collect();
    assert_eq!(sent_ids, (0..40).collect(), "HTTP {status}");

    receiver.heal();
    project.segflow(&["resume", &run_id]).ok();
    let out = project.outputs(&run_id, "sync");
    assert_eq!(out["already_sent"], 30, "HTTP {status}: {out}");
    assert_eq!(out["sent"], 30, "HTTP {status}: {out}");
    // The receiver processed every batch exactly once, and got every customer.
    let deliveries = receiver.deliveries();
    assert_eq!(deliveries.len(), 6, "HTTP {status}: {deliveries:?}");
    assert!(
        deliveries.values().all(|&n| n == 1),
        "HTTP {status}: a batch the receiver had acknowledged was sent again: {deliveries:?}"
    );
    let all: BTreeSet<i64> = receiver
        .unique()
        .values()
        .flat_map(|r| record_ids(&r.body))
        .collect();
    assert_eq!(all, (0..60).collect(), "HTTP {status}");
}

#[test]
fn a_batch_that_gives_up_lets_the_batches_in_flight_finish_and_be_recorded() {
    one_batch_gives_up_while_others_are_in_flight(500);
}

#[test]
fn a_refused_endpoint_still_records_the_batches_in_flight() {
    one_batch_gives_up_while_others_are_in_flight(401);
}

/// The `dead_letter` rows of a run's step: (keys, reason).
fn dead_letters(project: &Project, run_id: &str, step: &str) -> Vec<(Vec<String>, String)> {
    project
        .dataset(run_id, step, "dead_letter")
        .into_iter()
        .map(|row| {
            let keys: Vec<String> = serde_json::from_str(row["keys"].as_str().unwrap()).unwrap();
            (keys, row["reason"].as_str().unwrap().to_string())
        })
        .collect()
}

/// No email address of the test customers anywhere a person reads: the run's reasons and
/// outputs (`runs show`), its logs, and what the command printed.
fn assert_no_customer_data(project: &Project, run_id: &str, printed: &str) {
    let shown = project.show(run_id).to_string();
    assert!(!shown.contains("@example.test"), "runs show: {shown}");
    let logs = project.segflow(&["logs", run_id]).ok();
    assert!(!logs.stdout.contains("@example.test"), "{}", logs.stdout);
    assert!(!printed.contains("@example.test"), "{printed}");
}

#[test]
fn mailchimp_members_refused_in_a_200_are_dead_lettered_alone_and_retried_by_diff() {
    let member = |i: usize| format!("{{\"email_address\":\"customer{i}@example.test\"}}");
    let list = |ids: &[usize]| ids.iter().map(|&i| member(i)).collect::<Vec<_>>().join(",");
    let rules = vec![
        // Batch 0: customer 2 is refused by email.
        Rule {
            when_body_contains: Some("customer2@example.test".into()),
            status: 200,
            body: format!(
                r#"{{"new_members":[{}],"updated_members":[{}],"errors":[{{"email_address":"customer2@example.test","error":"customer2@example.test looks fake or invalid, please enter a real email address.","error_code":"ERROR_GENERIC"}}],"total_created":3,"total_updated":1,"error_count":1}}"#,
                list(&[0, 1, 3]),
                list(&[4])
            ),
        },
        // Batch 1: the error names nobody; the lists leave customer 7 out.
        Rule {
            when_body_contains: Some("customer7@example.test".into()),
            status: 200,
            body: format!(
                r#"{{"new_members":[{}],"updated_members":[],"errors":[{{"error":"Your merge fields were invalid.","field":"FNAME","field_message":"Please enter a value"}}],"total_created":4,"total_updated":0,"error_count":1}}"#,
                list(&[5, 6, 8, 9])
            ),
        },
    ];
    let receiver = Receiver::with(Faults::default(), None, rules);
    let project = Project::new();
    project.write("data/customers.csv", &customers(10, default_segment));
    project.pipeline(
        "mc",
        &publish_pipeline(
            "mc",
            &format!(
                r#"      preset: mailchimp
      url: "{}"
      api_key: mc-test-key-us6
      list_id: a1b2c3
      mode: diff
      fields: {{ email: email, FNAME: first_name, SEGMENT: segment }}
      batch_size: 5
      concurrency: 1"#,
                receiver.url
            ),
        ),
    );
    let run = project.segflow(&["run", "mc"]).ok();
    let run_id = run.run_id();
    let out = project.outputs(&run_id, "sync");
    assert_eq!(out["sent"], 8, "{out}");
    assert_eq!(out["rejected"], 2, "{out}");
    let letters = dead_letters(&project, &run_id, "sync");
    assert_eq!(letters.len(), 2, "{letters:?}");
    assert_eq!(letters[0].0, ["customer2@example.test"]);
    assert!(
        letters[0].1.contains("looks fake or invalid"),
        "{letters:?}"
    );
    assert_eq!(letters[1].0, ["customer7@example.test"]);
    assert!(
        letters[1].1.contains("merge fields were invalid"),
        "{letters:?}"
    );
    // The dead letters keep the refused member's request, not the whole batch.
    let rows = project.dataset(&run_id, "sync", "dead_letter");
    let body: Value = serde_json::from_str(rows[0]["body"].as_str().unwrap()).unwrap();
    assert_eq!(body["email_address"], "customer2@example.test");
    // The platform's reasons quote the emails; they stay in the dataset.
    assert_no_customer_data(&project, &run_id, &format!("{}{}", run.stdout, run.stderr));

    // The refused members were not recorded as synced: the next diff sends them again.
    receiver.heal();
    let before = receiver.requests().len();
    let second = project.segflow(&["run", "mc"]).ok().run_id();
    let out = project.outputs(&second, "sync");
    assert_eq!(out["sent"], 2, "{out}");
    assert_eq!(out["unchanged"], 8, "{out}");
    let requests = receiver.requests();
    assert_eq!(requests.len(), before + 1);
    let emails: Vec<&str> = requests[before].body["members"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["email_address"].as_str().unwrap())
        .collect();
    assert_eq!(emails, ["customer2@example.test", "customer7@example.test"]);
}

#[test]
fn braze_objects_refused_in_a_201_are_dead_lettered_alone_and_retried_by_diff() {
    let rules = vec![Rule {
        when_body_contains: Some("customer1@example.test".into()),
        status: 201,
        body: r#"{"message":"success","attributes_processed":2,"errors":[{"type":"'email' is not a valid email: customer1@example.test","input_array":"attributes","index":1}]}"#.into(),
    }];
    let receiver = Receiver::with(Faults::default(), None, rules);
    let project = Project::new();
    project.write("data/customers.csv", &customers(6, default_segment));
    project.pipeline(
        "braze",
        &publish_pipeline(
            "braze",
            &format!(
                r#"      preset: braze
      url: "{}"
      api_key: braze-rest-key
      mode: diff
      key: customer_id
      fields: {{ external_id: customer_id, email: email, rfm_segment: segment }}
      batch_size: 3
      concurrency: 1"#,
                receiver.url
            ),
        ),
    );
    let run = project.segflow(&["run", "braze"]).ok();
    let run_id = run.run_id();
    let out = project.outputs(&run_id, "sync");
    assert_eq!(out["sent"], 5, "{out}");
    assert_eq!(out["rejected"], 1, "{out}");
    let letters = dead_letters(&project, &run_id, "sync");
    assert_eq!(letters.len(), 1, "{letters:?}");
    assert_eq!(letters[0].0, ["1"]);
    assert!(letters[0].1.contains("is not a valid email"), "{letters:?}");
    assert_no_customer_data(&project, &run_id, &format!("{}{}", run.stdout, run.stderr));

    receiver.heal();
    let before = receiver.requests().len();
    let second = project.segflow(&["run", "braze"]).ok().run_id();
    let out = project.outputs(&second, "sync");
    assert_eq!(out["sent"], 1, "{out}");
    let requests = receiver.requests();
    assert_eq!(requests.len(), before + 1);
    assert_eq!(
        requests[before].body["attributes"],
        json!([{"external_id": "1", "email": "customer1@example.test", "rfm_segment": "Loyal"}])
    );
}

#[test]
fn a_new_diff_run_after_a_failed_one_sends_only_what_was_not_acknowledged() {
    let receiver = Receiver::start();
    let project = Project::new();
    project.write("data/customers.csv", &customers(100, default_segment));
    project.pipeline(
        "resync",
        &publish_pipeline(
            "resync",
            &format!(
                r#"      url: "{}"
      mode: diff
      key: customer_id
      fields: {{ customer_id: customer_id, email: email, segment: segment }}
      batch_size: 10
      concurrency: 1
      delivery: {{ attempts: 2, delay: 10ms }}"#,
                receiver.url
            ),
        ),
    );
    project.segflow(&["run", "resync"]).ok();
    let baseline = receiver.requests().len();

    // Customers 0..=29 change segment and 90..=99 leave; the upsert batch with customer 25
    // keeps failing, so the run fails after two upsert batches, before the removals.
    project.write(
        "data/customers.csv",
        &customers(100, |i| match i {
            0..=29 => Some("Lost".into()),
            90..=99 => None,
            _ => default_segment(i),
        }),
    );
    receiver.set_rules(vec![Rule {
        when_body_contains: Some("customer25@example.test".into()),
        status: 503,
        body: "{\"error\":\"maintenance\"}".into(),
    }]);
    let failed = project.segflow(&["run", "resync"]).failed().run_id();
    let reason = project.show(&failed)["steps"][1]["reason"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(reason.contains("2 batches are delivered"), "{reason}");
    let delivered: BTreeSet<i64> = receiver.requests()[baseline..]
        .iter()
        .filter(|r| r.answer.processed())
        .flat_map(|r| record_ids(&r.body))
        .collect();
    assert_eq!(delivered, (0..20).collect());

    // A new run (not a resume): what the failed run delivered is not sent again.
    receiver.heal();
    let before = receiver.requests().len();
    let third = project.segflow(&["run", "resync"]).ok().run_id();
    let out = project.outputs(&third, "sync");
    assert_eq!(out["sent"], 10, "{out}");
    assert_eq!(out["removed"], 10, "{out}");
    assert_eq!(out["unchanged"], 80, "{out}");
    let requests = receiver.requests();
    let upserts: BTreeSet<i64> = requests[before..]
        .iter()
        .filter(|r| r.body["action"] == "upsert")
        .flat_map(|r| record_ids(&r.body))
        .collect();
    assert_eq!(upserts, (20..30).collect());
    let removals: BTreeSet<i64> = requests[before..]
        .iter()
        .filter(|r| r.body["action"] == "remove")
        .flat_map(|r| record_ids(&r.body))
        .collect();
    assert_eq!(removals, (90..100).collect());

    // And the state it leaves is whole: nothing changed, nothing is sent.
    let fourth = project.segflow(&["run", "resync"]).ok().run_id();
    assert_eq!(project.outputs(&fourth, "sync")["batches"], 0);
}

/// The names in a folder, sorted.
fn folder_names(project: &Project, folder: &str) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(project.path(folder))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

#[test]
fn publish_file_never_replaces_a_file_with_overwrite_false() {
    let project = Project::new();
    project.write("data/customers.csv", &customers(20_000, default_segment));
    // Two steps of one run write the same path at the same time.
    let pipeline = |overwrite: bool| {
        format!(
            r#"name: files
steps:
  - id: customers
    uses: gather.csv
    with: {{ path: data/customers.csv }}
  - id: ids
    uses: publish.file
    needs: [customers]
    with: {{ path: out/customers.csv, columns: [customer_id], overwrite: {overwrite} }}
  - id: segments
    uses: publish.file
    needs: [customers]
    with: {{ path: out/customers.csv, columns: [customer_id, segment], overwrite: {overwrite} }}
"#
        )
    };
    let whole = |text: &str| {
        let header = text.lines().next().unwrap_or_default().to_string();
        assert!(
            header == "customer_id" || header == "customer_id,segment",
            "{header}"
        );
        let columns = header.split(',').count();
        assert_eq!(text.lines().count(), 20_001, "a partial file");
        assert!(
            text.lines().all(|l| l.split(',').count() == columns),
            "two writers' rows mixed in one file"
        );
    };

    // Replacing: both steps succeed (their temporary files do not collide) and the file is
    // one of the two, whole.
    project.pipeline("files", &pipeline(true));
    project.segflow(&["run", "files"]).ok();
    whole(&project.read("out/customers.csv"));
    assert_eq!(folder_names(&project, "out"), ["customers.csv"]);

    // With `overwrite: false` an existing file is kept, untouched.
    project.write("out/customers.csv", "keep me\n");
    project.pipeline("files", &pipeline(false));
    let run_id = project.segflow(&["run", "files"]).failed().run_id();
    assert_eq!(project.read("out/customers.csv"), "keep me\n");
    let shown = project.show(&run_id);
    for step in ["ids", "segments"] {
        let reason = support::step_reason(&shown, step);
        assert!(
            reason.contains("exists") && reason.contains("`overwrite: true`"),
            "{reason}"
        );
    }
    assert_eq!(folder_names(&project, "out"), ["customers.csv"]);

    // Two writers racing for a new file with `overwrite: false`: exactly one wins, and
    // nothing but its whole file is left.
    std::fs::remove_file(project.path("out/customers.csv")).unwrap();
    let run_id = project.segflow(&["run", "files"]).failed().run_id();
    let states: Vec<String> = step_states(&project.show(&run_id))
        .into_iter()
        .filter(|(id, _)| id != "customers")
        .map(|(_, state)| state)
        .collect();
    let mut sorted = states.clone();
    sorted.sort();
    assert_eq!(sorted, ["failed", "succeeded"], "{states:?}");
    whole(&project.read("out/customers.csv"));
    assert_eq!(folder_names(&project, "out"), ["customers.csv"]);
}

#[test]
fn reasons_and_logs_never_quote_the_customers() {
    // The endpoint refuses every batch with an answer quoting its emails.
    let rules = vec![Rule {
        when_body_contains: None,
        status: 400,
        body: "{\"error\":\"invalid: customer1@example.test, customer2@example.test\"}".into(),
    }];
    let receiver = Receiver::with(Faults::default(), None, rules);
    let project = Project::new();
    project.write("data/customers.csv", &customers(30, default_segment));
    project.pipeline(
        "private",
        &format!(
            r#"name: private
steps:
  - id: customers
    uses: gather.csv
    with: {{ path: data/customers.csv }}
  - id: refused
    uses: publish.webhook
    needs: [customers]
    with: {{ url: "{url}", fields: {{ customer_id: customer_id, email: email }}, batch_size: 10 }}
  - id: bad_filter
    uses: publish.webhook
    needs: [customers]
    with: {{ url: "{url}", filter: "email > 5", fields: {{ customer_id: customer_id, email: email }} }}
  - id: bad_export
    uses: publish.file
    needs: [customers]
    with: {{ path: out/customers.csv, filter: "email > 5" }}
"#,
            url = receiver.url
        ),
    );
    let run = project.segflow(&["run", "private"]).failed();
    let run_id = run.run_id();
    let shown = project.show(&run_id);
    let reason = |step: &str| support::step_reason(&shown, step);
    assert!(
        reason("refused").contains("rejected 3 batches"),
        "{}",
        reason("refused")
    );
    // A value that broke the filter is not quoted, but the error still says what to fix.
    for step in ["bad_filter", "bad_export"] {
        let reason = reason(step);
        assert!(
            reason.contains("reading dataset customers failed") && reason.contains("`filter`"),
            "{reason}"
        );
    }
    assert_no_customer_data(&project, &run_id, &format!("{}{}", run.stdout, run.stderr));
    // The answers are kept where they belong: the dead letters.
    let letters = project.dataset(&run_id, "refused", "dead_letter");
    assert!(
        letters[0]["response"]
            .as_str()
            .unwrap()
            .contains("customer1@example.test")
    );
}
