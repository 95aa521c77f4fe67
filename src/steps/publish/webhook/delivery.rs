//! Sending one batch: signed, rate-limited, retried with exponential backoff and jitter on
//! timeouts, connection errors, 5xx and 429 (honouring `Retry-After` and `X-RateLimit-Reset`);
//! any other 4xx is final and the batch goes to the dead letters.
//!
//! A batch counts as delivered only once the whole answer was read: a connection dropped after
//! the status line is a failure, and the batch is sent again under the same idempotency key.

use std::num::NonZeroU32;
use std::sync::Mutex;
use std::time::Duration;

use bytes::Bytes;
use chrono::Utc;
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use rand::Rng;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue};
use reqwest::{Method, StatusCode};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::signing::Signer;

/// How hard to try one batch.
#[derive(Debug, Clone, Copy)]
pub struct RetrySettings {
    pub attempts: u32,
    pub delay: Duration,
    pub max_delay: Duration,
    /// The longest `Retry-After` / `X-RateLimit-Reset` wait obeyed; longer asks fail the try.
    pub max_wait: Duration,
}

/// A request rate: `per_second` on average, and up to `burst` at once after a quiet spell.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub per_second: f64,
    pub burst: u32,
}

impl Rate {
    /// `per_second`, bursting up to one second's worth (at least one request).
    pub fn steady(per_second: f64) -> Self {
        Rate {
            per_second,
            burst: per_second.round().clamp(1.0, u32::MAX as f64) as u32,
        }
    }

    fn quota(self) -> Quota {
        // Governor counts in nanoseconds: more than 10^9 requests a second is no limit.
        let period =
            Duration::from_secs_f64(1.0 / self.per_second.max(1e-6)).max(Duration::from_nanos(1));
        Quota::with_period(period)
            .expect("the period is positive")
            .allow_burst(NonZeroU32::new(self.burst).unwrap_or(NonZeroU32::MIN))
    }
}

/// How one batch ended.
#[derive(Debug)]
pub enum Delivery {
    /// 2xx, answer read in full.
    Acked {
        status: u16,
        response: Bytes,
    },
    /// A 4xx other than 408/429: sending it again cannot help.
    Rejected {
        status: u16,
        response: Bytes,
        /// 401, 403, 404, 405, 410: the endpoint or credentials are wrong, not this batch.
        endpoint_level: bool,
    },
    /// Every try failed with something retryable.
    GaveUp {
        attempts: u32,
        last: String,
    },
    Cancelled,
}

pub struct Sender {
    client: reqwest::Client,
    headers: HeaderMap,
    signer: Option<Signer>,
    limiter: Option<DefaultDirectRateLimiter>,
    retry: RetrySettings,
    /// After a 429 every worker waits until then, not just the one that was told.
    pause_until: Mutex<Option<Instant>>,
}

impl Sender {
    pub fn new(
        headers: HeaderMap,
        signer: Option<Signer>,
        rate: Option<Rate>,
        timeout: Duration,
        concurrency: usize,
        retry: RetrySettings,
    ) -> Result<Self, String> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout.min(Duration::from_secs(10)))
            .pool_max_idle_per_host(concurrency)
            .user_agent(concat!("segflow/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| format!("cannot set up the HTTP client: {e}"))?;
        Ok(Sender {
            client,
            headers,
            signer,
            limiter: rate.map(|r| RateLimiter::direct(r.quota())),
            retry,
            pause_until: Mutex::new(None),
        })
    }

    /// Sends one batch until it is acknowledged, rejected, given up on or stopped.
    ///
    /// `stop` keeps a new try from starting and ends the waits between tries, but lets a
    /// request already on the wire finish, so an answer the endpoint sends is still heard
    /// (and the batch recorded). `cancel` (Ctrl-C, run cancellation) also drops the request
    /// in flight. Cancelling `cancel` must cancel `stop` too (a child token).
    pub async fn deliver(
        &self,
        method: &Method,
        url: &str,
        body: Bytes,
        idempotency_key: &str,
        stop: &CancellationToken,
        cancel: &CancellationToken,
    ) -> Delivery {
        let mut last = String::new();
        for attempt in 1..=self.retry.attempts {
            if stop.is_cancelled() || !self.wait_turn(stop).await {
                return Delivery::Cancelled;
            }
            let request = self.request(method, url, body.clone(), idempotency_key);
            let answer = tokio::select! {
                _ = cancel.cancelled() => return Delivery::Cancelled,
                answer = send(request) => answer,
            };
            let hint = match answer {
                Ok((status, _, response)) if status.is_success() => {
                    return Delivery::Acked {
                        status: status.as_u16(),
                        response,
                    };
                }
                Ok((status, _, response)) if !retryable(status) => {
                    return Delivery::Rejected {
                        status: status.as_u16(),
                        response,
                        endpoint_level: matches!(status.as_u16(), 401 | 403 | 404 | 405 | 410),
                    };
                }
                Ok((status, headers, _)) => {
                    last = format!("HTTP {}", status.as_u16());
                    let hint = wait_hint(&headers);
                    if status == StatusCode::TOO_MANY_REQUESTS {
                        let pause = hint.unwrap_or(self.backoff(attempt));
                        self.pause_all(pause.min(self.retry.max_wait));
                    }
                    hint
                }
                Err(error) => {
                    last = error;
                    None
                }
            };
            if attempt == self.retry.attempts {
                break;
            }
            let wait = match hint {
                Some(hint) if hint > self.retry.max_wait => {
                    last = format!(
                        "{last} (the endpoint asked to wait {}, more than the {} allowed)",
                        humantime::format_duration(hint),
                        humantime::format_duration(self.retry.max_wait)
                    );
                    break;
                }
                // A little jitter on top, so workers told the same time do not all come back at once.
                Some(hint) => hint + jitter(Duration::from_millis(100)),
                None => self.backoff(attempt),
            };
            tokio::select! {
                _ = stop.cancelled() => return Delivery::Cancelled,
                _ = tokio::time::sleep(wait) => {}
            }
        }
        Delivery::GaveUp {
            attempts: self.retry.attempts,
            last,
        }
    }

    fn request(
        &self,
        method: &Method,
        url: &str,
        body: Bytes,
        idempotency_key: &str,
    ) -> reqwest::RequestBuilder {
        let headers = self.headers_for(idempotency_key, &body);
        self.client
            .request(method.clone(), url)
            .headers(headers)
            .body(body)
    }

    /// Every header of one try: the fixed ones, the idempotency key (also the Standard
    /// Webhooks `webhook-id`), the timestamp and, with a secret, the signature.
    pub fn headers_for(&self, idempotency_key: &str, body: &[u8]) -> HeaderMap {
        let timestamp = Utc::now().timestamp();
        let mut headers = self.headers.clone();
        let key = HeaderValue::from_str(idempotency_key).expect("keys are ASCII hex");
        headers.insert(HeaderName::from_static("idempotency-key"), key.clone());
        headers.insert(HeaderName::from_static("webhook-id"), key);
        headers.insert(
            HeaderName::from_static("webhook-timestamp"),
            HeaderValue::from(timestamp),
        );
        if let Some(signer) = &self.signer {
            let signature = signer.sign(idempotency_key, timestamp, body);
            headers.insert(
                HeaderName::from_static("webhook-signature"),
                HeaderValue::from_str(&signature).expect("signatures are base64"),
            );
        }
        headers
    }

    /// Waits for a shared pause (after a 429) and the rate limit. False when stopped.
    async fn wait_turn(&self, cancel: &CancellationToken) -> bool {
        loop {
            let until = *self.pause_until.lock().unwrap_or_else(|e| e.into_inner());
            match until {
                Some(until) if until > Instant::now() => {
                    tokio::select! {
                        _ = cancel.cancelled() => return false,
                        _ = tokio::time::sleep_until(until) => {}
                    }
                }
                _ => break,
            }
        }
        if let Some(limiter) = &self.limiter {
            tokio::select! {
                _ = cancel.cancelled() => return false,
                _ = limiter.until_ready() => {}
            }
        }
        true
    }

    fn pause_all(&self, wait: Duration) {
        let until = Instant::now() + wait;
        let mut pause = self.pause_until.lock().unwrap_or_else(|e| e.into_inner());
        if pause.is_none_or(|p| p < until) {
            *pause = Some(until);
        }
    }

    /// `delay` doubled per failed try, capped, then taken at random between half and all of it.
    fn backoff(&self, failed_tries: u32) -> Duration {
        let doubled = self
            .retry
            .delay
            .saturating_mul(2u32.saturating_pow(failed_tries.saturating_sub(1).min(20)));
        let capped = doubled.min(self.retry.max_delay);
        capped / 2 + jitter(capped / 2)
    }
}

fn jitter(up_to: Duration) -> Duration {
    if up_to.is_zero() {
        return Duration::ZERO;
    }
    up_to.mul_f64(rand::rng().random_range(0.0..=1.0))
}

fn retryable(status: StatusCode) -> bool {
    status.is_server_error()
        || status == StatusCode::TOO_MANY_REQUESTS
        || status == StatusCode::REQUEST_TIMEOUT
}

/// Sends and reads the whole answer. Errors name the kind of failure, never the URL or body.
async fn send(request: reqwest::RequestBuilder) -> Result<(StatusCode, HeaderMap, Bytes), String> {
    let response = request.send().await.map_err(describe)?;
    let status = response.status();
    let headers = response.headers().clone();
    let body = response.bytes().await.map_err(|e| {
        format!(
            "the connection broke while reading the answer (HTTP {}): {}",
            status.as_u16(),
            describe(e)
        )
    })?;
    Ok((status, headers, body))
}

fn describe(error: reqwest::Error) -> String {
    let kind = if error.is_timeout() {
        "timed out"
    } else if error.is_connect() {
        "could not connect"
    } else if error.is_body() || error.is_decode() {
        "broken answer"
    } else if error.is_request() {
        "request failed"
    } else {
        "HTTP error"
    };
    let error = error.without_url();
    let mut detail = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(inner) = source {
        detail.push_str(": ");
        detail.push_str(&inner.to_string());
        source = inner.source();
    }
    format!("{kind} ({detail})")
}

/// How long the endpoint asked to wait: `Retry-After` (seconds or an HTTP date), else
/// `X-RateLimit-Reset` (epoch seconds, or seconds from now when small).
pub fn wait_hint(headers: &HeaderMap) -> Option<Duration> {
    let text = |name: &str| {
        headers
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::trim)
    };
    if let Some(value) = text("retry-after") {
        if let Ok(seconds) = value.parse::<f64>() {
            return Some(Duration::from_secs_f64(seconds.clamp(0.0, 86_400.0)));
        }
        if let Ok(at) = chrono::DateTime::parse_from_rfc2822(value) {
            let wait = at.with_timezone(&Utc) - Utc::now();
            return Some(wait.to_std().unwrap_or_default());
        }
    }
    let reset = text("x-ratelimit-reset")?.parse::<f64>().ok()?;
    if reset > 1_000_000_000.0 {
        let now = Utc::now().timestamp_millis() as f64 / 1000.0;
        Some(Duration::from_secs_f64((reset - now).clamp(0.0, 86_400.0)))
    } else {
        Some(Duration::from_secs_f64(reset.clamp(0.0, 86_400.0)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn headers(pairs: &[(&'static str, String)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_str(value).unwrap());
        }
        map
    }

    #[test]
    fn reads_retry_after_and_rate_limit_reset() {
        assert_eq!(
            wait_hint(&headers(&[("retry-after", "3".into())])),
            Some(Duration::from_secs(3))
        );
        let in_ten = (Utc::now() + chrono::Duration::seconds(10)).to_rfc2822();
        let wait = wait_hint(&headers(&[("retry-after", in_ten)])).unwrap();
        assert!(
            wait > Duration::from_secs(8) && wait <= Duration::from_secs(10),
            "{wait:?}"
        );
        let reset = (Utc::now().timestamp() + 5).to_string();
        let wait = wait_hint(&headers(&[("x-ratelimit-reset", reset)])).unwrap();
        assert!(
            wait > Duration::from_secs(3) && wait <= Duration::from_secs(5),
            "{wait:?}"
        );
        assert_eq!(
            wait_hint(&headers(&[("x-ratelimit-reset", "2".into())])),
            Some(Duration::from_secs(2))
        );
        assert_eq!(wait_hint(&HeaderMap::new()), None);
    }

    /// When requests go out as fast as `rate` lets them, over `seconds`.
    fn greedy_sends(rate: Rate, seconds: u64) -> Vec<Duration> {
        let clock = governor::clock::FakeRelativeClock::default();
        let limiter = RateLimiter::direct_with_clock(rate.quota(), clock.clone());
        let step = Duration::from_millis(5);
        let mut now = Duration::ZERO;
        let mut sent = Vec::new();
        while now < Duration::from_secs(seconds) {
            while limiter.check().is_ok() {
                sent.push(now);
            }
            clock.advance(step);
            now += step;
        }
        sent
    }

    /// The most requests in any window of `length`.
    fn busiest(sent: &[Duration], length: Duration) -> usize {
        (0..sent.len())
            .map(|i| {
                sent[i..]
                    .iter()
                    .take_while(|t| **t < sent[i] + length)
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[test]
    fn klaviyo_default_rate_keeps_its_burst_and_steady_limits() {
        let rate = super::super::preset::Preset::Klaviyo
            .limits()
            .default_rate
            .expect("Klaviyo has a default rate");
        let sent = greedy_sends(rate, 600);
        // Klaviyo bulk import: at most 10 requests in any second…
        assert!(busiest(&sent, Duration::from_secs(1)) <= 10);
        // …it does burst, after a quiet spell…
        assert!(
            sent.iter()
                .filter(|t| **t < Duration::from_millis(10))
                .count()
                >= 8
        );
        // …and keeps to 150 a minute (2.5/s) steady: over ten minutes, at most the burst more.
        assert!(sent.len() <= 1_500 + 8, "{}", sent.len());
        assert!(sent.len() >= 1_490, "{}", sent.len());
    }

    #[test]
    fn an_explicit_rate_bursts_one_seconds_worth() {
        let sent = greedy_sends(Rate::steady(40.0), 10);
        assert!(busiest(&sent, Duration::from_secs(1)) <= 80);
        assert!(sent.len() <= 400 + 40, "{}", sent.len());
        let slow = greedy_sends(Rate::steady(0.5), 10);
        assert_eq!(slow.len(), 5, "{slow:?}");
    }

    #[test]
    fn backoff_doubles_up_to_the_cap_with_jitter() {
        let sender = Sender::new(
            HeaderMap::new(),
            None,
            None,
            Duration::from_secs(1),
            1,
            RetrySettings {
                attempts: 5,
                delay: Duration::from_secs(1),
                max_delay: Duration::from_secs(4),
                max_wait: Duration::from_secs(60),
            },
        )
        .unwrap();
        for (tries, full) in [(1, 1), (2, 2), (3, 4), (4, 4), (9, 4)] {
            let wait = sender.backoff(tries);
            let full = Duration::from_secs(full);
            assert!(wait >= full / 2 && wait <= full, "try {tries}: {wait:?}");
        }
    }
}
