//! A webhook receiver for tests: axum on 127.0.0.1:0 in its own thread and runtime. It keeps
//! every request, checks Standard Webhooks signatures, and can fail at random with a fixed
//! seed: 500s, 429 with Retry-After, slow answers, and connections dropped before or after the
//! batch was processed.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, StatusCode, Uri};
use axum::response::Response;
use base64::Engine as _;
use hmac::{Hmac, KeyInit, Mac};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use serde_json::Value;
use sha2::Sha256;

/// How often each fault happens (probabilities per request; the rest succeed).
#[derive(Debug, Clone, Default)]
pub struct Faults {
    pub seed: u64,
    /// Answer 500 without processing.
    pub server_error: f64,
    /// Answer 429 with `Retry-After: retry_after_secs`, without processing.
    pub too_many: f64,
    pub retry_after_secs: u64,
    /// Process, then answer after `slow_for` (longer than the client's timeout: the client
    /// never hears the answer).
    pub slow: f64,
    pub slow_for: Duration,
    /// Process, then drop the connection in the middle of the answer.
    pub drop_after: f64,
    /// Drop the connection without processing.
    pub drop_before: f64,
}

/// What the receiver did with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Ok,
    Status(u16),
    TooMany,
    Slow,
    DroppedAfter,
    DroppedBefore,
}

impl Answer {
    /// Whether the receiver processed (stored) the batch.
    pub fn processed(self) -> bool {
        match self {
            Answer::Ok | Answer::Slow | Answer::DroppedAfter => true,
            // A rule answering 2xx (e.g. a 200 listing some refused members) processed it.
            Answer::Status(status) => (200..300).contains(&status),
            Answer::TooMany | Answer::DroppedBefore => false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct Request {
    pub method: String,
    pub path: String,
    pub headers: BTreeMap<String, String>,
    pub body: Value,
    pub raw: Bytes,
    pub at: SystemTime,
    pub answer: Answer,
    /// The signature checked out (None: no secret to check with, or no signature sent).
    pub signature_ok: Option<bool>,
}

impl Request {
    pub fn webhook_id(&self) -> &str {
        self.headers
            .get("webhook-id")
            .map(String::as_str)
            .unwrap_or("")
    }
}

/// A fixed answer for requests whose body contains a marker (or all requests).
#[derive(Debug, Clone)]
pub struct Rule {
    pub when_body_contains: Option<String>,
    pub status: u16,
    pub body: String,
}

struct Inner {
    faults: Faults,
    rng: StdRng,
    secret: Option<Vec<u8>>,
    rules: Vec<Rule>,
    /// How long a successful answer takes (within the client's timeout: it is heard).
    ok_delay: Duration,
    /// A rule's answer waits until this many requests have arrived (so the batches meant
    /// to be in flight when it comes really are, however slowly the client starts them).
    rule_answers_wait_for: usize,
    requests: Vec<Request>,
}

#[derive(Clone)]
struct Shared(Arc<Mutex<Inner>>);

pub struct Receiver {
    pub url: String,
    shared: Shared,
    _shutdown: tokio::sync::oneshot::Sender<()>,
}

impl Receiver {
    /// A receiver that accepts everything.
    pub fn start() -> Self {
        Self::with(Faults::default(), None, Vec::new())
    }

    /// `secret` is the `whsec_…` secret signatures are checked with.
    pub fn with(faults: Faults, secret: Option<&str>, rules: Vec<Rule>) -> Self {
        let key = secret.map(|s| {
            base64::engine::general_purpose::STANDARD
                .decode(s.trim_start_matches("whsec_"))
                .expect("a base64 secret")
        });
        let shared = Shared(Arc::new(Mutex::new(Inner {
            rng: StdRng::seed_from_u64(faults.seed),
            faults,
            secret: key,
            rules,
            ok_delay: Duration::ZERO,
            rule_answers_wait_for: 0,
            requests: Vec::new(),
        })));
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1:0");
        listener.set_nonblocking(true).expect("non-blocking");
        let url = format!("http://{}", listener.local_addr().expect("address"));
        let (shutdown, stop) = tokio::sync::oneshot::channel::<()>();
        let app = Router::new().fallback(handle).with_state(shared.clone());
        std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_multi_thread()
                .worker_threads(2)
                .enable_all()
                .build()
                .expect("a runtime");
            runtime.block_on(async move {
                let listener = tokio::net::TcpListener::from_std(listener).expect("listener");
                let _ = axum::serve(listener, app)
                    .with_graceful_shutdown(async {
                        let _ = stop.await;
                    })
                    .await;
            });
        });
        Receiver {
            url,
            shared,
            _shutdown: shutdown,
        }
    }

    /// Every request so far, in arrival order.
    pub fn requests(&self) -> Vec<Request> {
        self.shared.0.lock().unwrap().requests.clone()
    }

    /// Requests the receiver processed, first one per webhook id: what a receiver that
    /// deduplicates by idempotency key keeps.
    pub fn unique(&self) -> BTreeMap<String, Request> {
        let mut unique = BTreeMap::new();
        for request in self.requests() {
            if request.answer.processed() {
                unique
                    .entry(request.webhook_id().to_string())
                    .or_insert(request);
            }
        }
        unique
    }

    pub fn processed_count(&self) -> usize {
        self.shared
            .0
            .lock()
            .unwrap()
            .requests
            .iter()
            .filter(|r| r.answer.processed())
            .count()
    }

    /// How many times the receiver processed each webhook id (idempotency key): what a
    /// receiver that does not deduplicate would have done twice is counted twice.
    pub fn deliveries(&self) -> BTreeMap<String, usize> {
        let mut counts = BTreeMap::new();
        for request in self.requests() {
            if request.answer.processed() {
                *counts.entry(request.webhook_id().to_string()).or_default() += 1;
            }
        }
        counts
    }

    /// Processes every request at once but answers a success only after `delay` (shorter
    /// than the client's timeout, so the answer is heard): batches stay in flight a while.
    pub fn delay_answers(&self, delay: Duration) {
        self.shared.0.lock().unwrap().ok_delay = delay;
    }

    /// Holds each answer a rule gives until `requests` requests have arrived (at most ten
    /// seconds): the failure comes only once that many batches are in flight.
    pub fn hold_rule_answers_until(&self, requests: usize) {
        self.shared.0.lock().unwrap().rule_answers_wait_for = requests;
    }

    /// Answers by these rules from now on (instead of the ones it was started with).
    pub fn set_rules(&self, rules: Vec<Rule>) {
        self.shared.0.lock().unwrap().rules = rules;
    }

    /// Stops failing (and delaying answers) from now on.
    pub fn heal(&self) {
        let mut inner = self.shared.0.lock().unwrap();
        inner.faults = Faults::default();
        inner.rules.clear();
        inner.ok_delay = Duration::ZERO;
        inner.rule_answers_wait_for = 0;
    }
}

fn verify(key: &[u8], headers: &BTreeMap<String, String>, body: &[u8]) -> Option<bool> {
    let id = headers.get("webhook-id")?;
    let timestamp = headers.get("webhook-timestamp")?;
    let signatures = headers.get("webhook-signature")?;
    let fresh = timestamp.parse::<i64>().is_ok_and(|t| {
        let now = SystemTime::now()
            .duration_since(SystemTime::UNIX_EPOCH)
            .unwrap()
            .as_secs() as i64;
        (now - t).abs() <= 300
    });
    let mut mac = Hmac::<Sha256>::new_from_slice(key).unwrap();
    mac.update(format!("{id}.{timestamp}.").as_bytes());
    mac.update(body);
    let expected = base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes());
    let matches = signatures
        .split(' ')
        .filter_map(|s| s.strip_prefix("v1,"))
        .any(|s| s == expected);
    Some(fresh && matches)
}

async fn handle(
    State(shared): State<Shared>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let headers: BTreeMap<String, String> = headers
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_string(),
                v.to_str().unwrap_or_default().to_string(),
            )
        })
        .collect();
    let (answer, fixed, retry_after, slow_for, ok_delay) = {
        let mut inner = shared.0.lock().unwrap();
        let text = String::from_utf8_lossy(&body);
        let fixed = inner
            .rules
            .iter()
            .find(|r| {
                r.when_body_contains
                    .as_ref()
                    .is_none_or(|m| text.contains(m.as_str()))
            })
            .cloned();
        let faults = inner.faults.clone();
        let roll: f64 = inner.rng.random_range(0.0..1.0);
        let answer = if let Some(rule) = &fixed {
            Answer::Status(rule.status)
        } else {
            let mut edge = faults.server_error;
            if roll < edge {
                Answer::Status(500)
            } else if roll < {
                edge += faults.too_many;
                edge
            } {
                Answer::TooMany
            } else if roll < {
                edge += faults.slow;
                edge
            } {
                Answer::Slow
            } else if roll < {
                edge += faults.drop_after;
                edge
            } {
                Answer::DroppedAfter
            } else if roll < {
                edge += faults.drop_before;
                edge
            } {
                Answer::DroppedBefore
            } else {
                Answer::Ok
            }
        };
        let signature_ok = inner
            .secret
            .as_ref()
            .and_then(|key| verify(key, &headers, &body));
        inner.requests.push(Request {
            method: method.to_string(),
            path: uri.path().to_string(),
            headers: headers.clone(),
            body: serde_json::from_slice(&body).unwrap_or(Value::Null),
            raw: body.clone(),
            at: SystemTime::now(),
            answer,
            signature_ok,
        });
        (
            answer,
            fixed,
            faults.retry_after_secs,
            faults.slow_for,
            inner.ok_delay,
        )
    };
    match answer {
        Answer::Ok => {
            tokio::time::sleep(ok_delay).await;
            json_response(StatusCode::ACCEPTED, "{\"ok\":true}".into())
        }
        Answer::Status(status) => {
            if fixed.is_some() {
                wait_for_requests(&shared).await;
            }
            json_response(
                StatusCode::from_u16(status).unwrap(),
                fixed
                    .map(|r| r.body)
                    .unwrap_or_else(|| "{\"error\":\"boom\"}".into()),
            )
        }
        Answer::TooMany => Response::builder()
            .status(StatusCode::TOO_MANY_REQUESTS)
            .header("retry-after", retry_after.to_string())
            .body(Body::from("{\"error\":\"slow down\"}"))
            .unwrap(),
        Answer::Slow => {
            tokio::time::sleep(slow_for).await;
            json_response(StatusCode::ACCEPTED, "{\"ok\":true}".into())
        }
        Answer::DroppedAfter | Answer::DroppedBefore => {
            // Headers go out, then the body fails: the connection is cut mid-answer.
            let broken = futures::stream::once(async {
                Err::<Bytes, std::io::Error>(std::io::Error::other("connection dropped"))
            });
            Response::builder()
                .status(StatusCode::OK)
                .body(Body::from_stream(broken))
                .unwrap()
        }
    }
}

fn json_response(status: StatusCode, body: String) -> Response {
    Response::builder()
        .status(status)
        .header("content-type", "application/json")
        .body(Body::from(body))
        .unwrap()
}

/// Waits (at most ten seconds) until as many requests have arrived as
/// `hold_rule_answers_until` asked for.
async fn wait_for_requests(shared: &Shared) {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let (arrived, wanted) = {
            let inner = shared.0.lock().unwrap();
            (inner.requests.len(), inner.rule_answers_wait_for)
        };
        if arrived >= wanted || tokio::time::Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}
