//! `gather.http`: GETs a paged JSON API into the step's main dataset.
//!
//! The records are the array at a JSON pointer in each answer (`records: /data`). Pages follow
//! a next link (in the body or the `Link` header), a cursor field, or a page number. A 429 answer
//! is retried after its `Retry-After`; 5xx answers and network errors a few times with backoff,
//! then the step's own retry policy takes over. All pages are gathered before the columns are
//! inferred, so every record counts (APIs page at a few hundred records; keep to exports of up
//! to about a million).

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use datafusion::arrow::datatypes::{Field, Schema};
use datafusion::arrow::error::ArrowError;
use datafusion::arrow::json::ReaderBuilder;
use indexmap::IndexMap;
use reqwest::header::{HeaderMap, HeaderName, HeaderValue, LINK, RETRY_AFTER};
use reqwest::{StatusCode, Url};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::overrides::apply_overrides;
use crate::data::{ColumnType, MAIN_DATASET};
use crate::spec::deserialize::FieldError;
use crate::spec::duration::HumanDuration;
use crate::spec::yaml_path::YamlPath;
use crate::steps::streaming::cancelled;
use crate::steps::{CheckContext, Kind, StepContext, StepError, StepOutput};

pub struct GatherHttp;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GatherHttpConfig {
    /// The first page's URL.
    pub url: String,
    /// Request headers, e.g. `{ Authorization: "Bearer ${{ secrets.CRM_TOKEN }}" }`.
    #[serde(default)]
    pub headers: IndexMap<String, String>,
    /// Query parameters added to every request.
    #[serde(default)]
    pub query: IndexMap<String, Value>,
    /// JSON pointer to the records array in an answer, e.g. `/data` (default: the answer is the array).
    #[serde(default)]
    pub records: String,
    /// How to get the next page (default: there is one page).
    #[serde(default)]
    pub pagination: Option<Pagination>,
    /// The most pages read (default 1000).
    #[serde(default = "default_max_pages")]
    #[schemars(range(min = 1))]
    pub max_pages: usize,
    /// What to do when the API has more pages than `max_pages`: `fail` the step (the default:
    /// a partial customer list is worse than none), or `stop` and keep what was read.
    #[serde(default)]
    pub on_max_pages: OnMaxPages,
    /// Column types that override the inferred ones.
    #[serde(default)]
    pub types: IndexMap<String, ColumnType>,
    /// How long one request may take (default 30s).
    #[serde(default)]
    pub request_timeout: Option<HumanDuration>,
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields, rename_all = "snake_case")]
pub enum Pagination {
    /// The next page's URL is in the answer: at a JSON pointer (`{ pointer: /links/next }`), or
    /// in the `Link: <…>; rel="next"` header (`{ header: true }`).
    NextLink {
        #[serde(default)]
        pointer: Option<String>,
        #[serde(default)]
        header: bool,
    },
    /// The answer holds a cursor at `pointer`; it is sent back as the query parameter `param`.
    /// A missing, null or empty cursor ends the pages.
    Cursor { pointer: String, param: String },
    /// Pages are numbered by the query parameter `param`, from `start` (default 1); an empty
    /// page ends them. `size_param` and `size` set the page size when given.
    Page {
        param: String,
        #[serde(default = "default_start")]
        start: u64,
        #[serde(default)]
        size_param: Option<String>,
        #[serde(default)]
        size: Option<u64>,
    },
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum OnMaxPages {
    #[default]
    Fail,
    Stop,
}

fn default_max_pages() -> usize {
    1000
}

fn default_start() -> u64 {
    1
}

/// Tries per page for 429, 5xx and network errors before the step fails (and its retry policy decides).
const TRIES_PER_PAGE: u32 = 5;
/// The longest a `Retry-After` is honoured for; longer waits fail the step.
const MAX_RETRY_AFTER: Duration = Duration::from_secs(300);

#[async_trait]
impl Kind for GatherHttp {
    const NAME: &'static str = "gather.http";
    const DESCRIPTION: &'static str =
        "GETs a paged JSON API (next link, cursor or page number) into a dataset.";
    const OUTPUTS: &'static [&'static str] = &["rows", "pages"];
    type Config = GatherHttpConfig;

    fn check(&self, config: &GatherHttpConfig, ctx: &CheckContext<'_>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let url_is_dynamic = ctx
            .dynamic
            .iter()
            .any(|p| YamlPath::root().key("url").starts_with(p));
        if !url_is_dynamic && !config.url.contains("${{") && Url::parse(&config.url).is_err() {
            errors.push(FieldError {
                path: YamlPath::root().key("url"),
                message: "not a valid URL".into(),
                hint: Some("write it in full, like https://api.example.com/v1/customers".into()),
                at_key: false,
            });
        }
        let pointers = [Some(("records", config.records.as_str()))]
            .into_iter()
            .chain(match &config.pagination {
                Some(Pagination::NextLink {
                    pointer: Some(p), ..
                }) => Some(Some(("pagination", p.as_str()))),
                Some(Pagination::Cursor { pointer, .. }) => {
                    Some(Some(("pagination", pointer.as_str())))
                }
                _ => None,
            })
            .flatten();
        for (key, pointer) in pointers {
            if !pointer.is_empty() && !pointer.starts_with('/') {
                errors.push(FieldError {
                    path: YamlPath::root().key(key),
                    message: format!("`{pointer}` is not a JSON pointer"),
                    hint: Some(format!("JSON pointers start with `/`: `/{pointer}`")),
                    at_key: false,
                });
            }
        }
        if let Some(Pagination::NextLink {
            pointer: None,
            header: false,
        }) = &config.pagination
        {
            errors.push(FieldError {
                path: YamlPath::root().key("pagination"),
                message: "say where the next link is".into(),
                hint: Some(
                    "`next_link: { pointer: /links/next }` or `next_link: { header: true }`".into(),
                ),
                at_key: false,
            });
        }
        errors
    }

    async fn run(
        &self,
        config: GatherHttpConfig,
        ctx: &StepContext,
    ) -> Result<StepOutput, StepError> {
        let mut headers = HeaderMap::new();
        for (name, value) in &config.headers {
            let name = HeaderName::from_bytes(name.as_bytes()).map_err(|_| {
                StepError::permanent(format!("`{name}` is not a valid header name"))
            })?;
            let mut value = HeaderValue::from_str(value).map_err(|_| {
                StepError::permanent(format!(
                    "the value of header `{name}` is not valid in a header"
                ))
            })?;
            value.set_sensitive(true);
            headers.insert(name, value);
        }
        let timeout = config
            .request_timeout
            .map_or(Duration::from_secs(30), |t| t.0);
        // The headers (credentials, often) go with each request, never as client defaults:
        // `fetch` only sends them to the origin of `url`.
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .user_agent(concat!("segflow/", env!("CARGO_PKG_VERSION")))
            .build()?;
        let first = Url::parse(&config.url)
            .map_err(|e| StepError::permanent(format!("`url` is not a valid URL: {e}")))?;
        let request = Request {
            client: &client,
            headers: &headers,
            origin: first.origin(),
        };

        let mut records: Vec<Value> = Vec::new();
        let mut next = Some(with_query(first.clone(), &config.query, &[]));
        let mut page_number = match &config.pagination {
            Some(Pagination::Page { start, .. }) => *start,
            _ => 1,
        };
        let mut pages = 0;
        // Every page URL asked for: an API that hands back a cursor or link it gave before
        // would otherwise be read in a loop until max_pages, its records repeated.
        let mut seen: std::collections::HashSet<Url> = std::collections::HashSet::new();
        while let Some(url) = next.take() {
            if pages == config.max_pages {
                if config.on_max_pages == OnMaxPages::Fail {
                    return Err(StepError::permanent(format!(
                        "the API has more than max_pages = {} pages; raise `max_pages`, or set `on_max_pages: stop` to keep the first {} pages",
                        config.max_pages, config.max_pages
                    )));
                }
                ctx.warn(&format!(
                    "stopped after max_pages = {} pages, as `on_max_pages: stop` says; the API has more",
                    config.max_pages
                ));
                break;
            }
            let url = match &config.pagination {
                Some(Pagination::Page {
                    param,
                    size_param,
                    size,
                    ..
                }) => {
                    let mut extra = vec![(param.clone(), page_number.to_string())];
                    if let (Some(p), Some(s)) = (size_param, size) {
                        extra.push((p.clone(), s.to_string()));
                    }
                    with_query(first.clone(), &config.query, &extra)
                }
                _ => url,
            };
            if !seen.insert(url.clone()) {
                return Err(StepError::permanent(format!(
                    "page {}: the API pointed back at a page it already gave ({}); its cursor or next link repeats, so the pages would never end",
                    pages + 1,
                    without_query(&url)
                )));
            }
            let (body, link_header) = fetch(&request, &url, ctx).await?;
            pages += 1;
            let page = records_of(&body, &config.records, pages)?;
            let count = page.len();
            ctx.info(&format!("page {pages}: {count} records"));
            records.extend(page);
            next = match &config.pagination {
                None => None,
                Some(Pagination::Page { size, .. }) => {
                    page_number += 1;
                    let short = size.is_some_and(|s| (count as u64) < s);
                    (count > 0 && !short).then(|| url.clone())
                }
                Some(Pagination::Cursor { pointer, param }) => match body.pointer(pointer) {
                    Some(Value::String(c)) if !c.is_empty() => Some(with_query(
                        first.clone(),
                        &config.query,
                        &[(param.clone(), c.clone())],
                    )),
                    Some(Value::Number(n)) => Some(with_query(
                        first.clone(),
                        &config.query,
                        &[(param.clone(), n.to_string())],
                    )),
                    _ => None,
                },
                Some(Pagination::NextLink { pointer, header }) => {
                    let link = match pointer {
                        Some(p) => body.pointer(p).and_then(Value::as_str).map(str::to_string),
                        None => None,
                    }
                    .or_else(|| if *header { link_header.clone() } else { None })
                    .filter(|l| !l.is_empty());
                    match link {
                        Some(link) => Some(url.join(&link).map_err(|e| {
                            StepError::permanent(format!(
                                "page {pages}: the next link is not a URL: {e}"
                            ))
                        })?),
                        None => None,
                    }
                }
            };
        }

        let objects: Vec<&serde_json::Map<String, Value>> = records
            .iter()
            .enumerate()
            .map(|(i, r)| {
                r.as_object().ok_or_else(|| {
                    StepError::permanent(format!("record {} is not a JSON object", i + 1))
                })
            })
            .collect::<Result<_, _>>()?;
        let schema = Arc::new(apply_overrides(
            &infer(&objects)?,
            &config.types,
            "the API's records",
        )?);
        let mut writer = ctx.dataset_writer(MAIN_DATASET, schema.clone())?;
        for chunk in objects.chunks(8192) {
            let mut decoder = ReaderBuilder::new(schema.clone())
                .with_coerce_primitive(true)
                .with_batch_size(chunk.len())
                .build_decoder()?;
            decoder.serialize(chunk).map_err(|e| {
                StepError::permanent(format!("the records do not fit their columns: {e}"))
            })?;
            if let Some(batch) = decoder.flush()? {
                writer.write(&batch)?;
            }
        }
        let dataset = ctx.finish_dataset(writer)?;
        ctx.info(&format!("read {} records from {pages} pages", dataset.rows));
        Ok(StepOutput::default()
            .with("rows", dataset.rows)
            .with("pages", pages))
    }
}

/// Columns in the order keys first appear, types inferred by Arrow over every record.
fn infer(objects: &[&serde_json::Map<String, Value>]) -> Result<Schema, StepError> {
    let mut order: IndexMap<&str, ()> = IndexMap::new();
    for object in objects {
        for key in object.keys() {
            order.entry(key.as_str()).or_insert(());
        }
    }
    let inferred = datafusion::arrow::json::reader::infer_json_schema_from_iterator(
        objects
            .iter()
            .map(|o| Ok::<_, ArrowError>(Value::Object((*o).clone()))),
    )?;
    let fields: Vec<Field> = order
        .keys()
        .filter_map(|name| inferred.field_with_name(name).ok())
        .map(|f| f.clone().with_nullable(true))
        .collect();
    Ok(Schema::new(fields))
}

fn with_query(mut url: Url, query: &IndexMap<String, Value>, extra: &[(String, String)]) -> Url {
    let extra_names: Vec<&str> = extra.iter().map(|(k, _)| k.as_str()).collect();
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| !extra_names.contains(&k.as_ref()) && !query.contains_key(k.as_ref()))
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    {
        let mut pairs = url.query_pairs_mut();
        pairs.clear();
        for (k, v) in &kept {
            pairs.append_pair(k, v);
        }
        for (k, v) in query {
            let v = match v {
                Value::String(s) => s.clone(),
                other => other.to_string(),
            };
            pairs.append_pair(k, &v);
        }
        for (k, v) in extra {
            pairs.append_pair(k, v);
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    url
}

/// The records array of one answer.
fn records_of(body: &Value, pointer: &str, page: usize) -> Result<Vec<Value>, StepError> {
    let found = if pointer.is_empty() {
        Some(body)
    } else {
        body.pointer(pointer)
    };
    match found {
        Some(Value::Array(items)) => Ok(items.clone()),
        Some(Value::Null) => Ok(Vec::new()),
        Some(_) => Err(StepError::permanent(format!(
            "page {page}: `{}` is not an array of records",
            if pointer.is_empty() {
                "the answer"
            } else {
                pointer
            }
        ))),
        None => Err(StepError::permanent(format!(
            "page {page}: the answer has nothing at `{pointer}`; set `records` to the JSON pointer of the records array"
        ))),
    }
}

/// How pages are asked for: the client, and the headers that go only to `url`'s origin.
struct Request<'a> {
    client: &'a reqwest::Client,
    headers: &'a HeaderMap,
    origin: url::Origin,
}

/// One GET with the waiting and retrying a page deserves; returns the JSON body and the next
/// link from a `Link` header.
async fn fetch(
    request: &Request<'_>,
    url: &Url,
    ctx: &StepContext,
) -> Result<(Value, Option<String>), StepError> {
    let shown = without_query(url);
    if url.origin() != request.origin && !request.headers.is_empty() {
        return Err(StepError::permanent(format!(
            "the next page is on another site ({shown}) than `url`; segflow does not send your `headers` (credentials) anywhere else. Page with a link to the same site, or gather that site in a step of its own"
        )));
    }
    let mut backoff = Duration::from_millis(500);
    for attempt in 1..=TRIES_PER_PAGE {
        let get = request
            .client
            .get(url.clone())
            .headers(request.headers.clone());
        let sent = tokio::select! {
            sent = get.send() => sent,
            _ = ctx.cancel.cancelled() => return Err(cancelled()),
        };
        let wait = match sent {
            Ok(response) if response.status().is_success() => {
                let link = next_link_header(response.headers());
                let bytes = response.bytes().await.map_err(|e| {
                    StepError::new(format!(
                        "GET {shown}: the answer broke off: {}",
                        error_chain(e)
                    ))
                })?;
                let body: Value = serde_json::from_slice(&bytes).map_err(|e| {
                    StepError::permanent(format!("GET {shown}: the answer is not JSON ({e})"))
                })?;
                return Ok((body, link));
            }
            Ok(response) if response.status() == StatusCode::TOO_MANY_REQUESTS => {
                let wait = retry_after(response.headers()).unwrap_or(backoff);
                if attempt == TRIES_PER_PAGE {
                    return Err(StepError::new(format!(
                        "GET {shown} was rate limited (429) {TRIES_PER_PAGE} times in a row; the step's retry policy decides what next"
                    )));
                }
                if wait > MAX_RETRY_AFTER {
                    return Err(StepError::new(format!(
                        "GET {shown}: rate limited for {}s (Retry-After), longer than segflow waits",
                        wait.as_secs()
                    )));
                }
                ctx.info(&format!(
                    "GET {shown}: rate limited (429); waiting {}s",
                    wait.as_secs_f64()
                ));
                wait
            }
            Ok(response) if response.status().is_server_error() => {
                if attempt == TRIES_PER_PAGE {
                    return Err(StepError::new(format!(
                        "GET {shown} answered {} {TRIES_PER_PAGE} times",
                        response.status()
                    )));
                }
                ctx.warn(&format!(
                    "GET {shown} answered {}; trying again",
                    response.status()
                ));
                backoff
            }
            Ok(response) => {
                let status = response.status();
                let detail = response
                    .json::<Value>()
                    .await
                    .ok()
                    .and_then(|v| {
                        [
                            "/message",
                            "/error",
                            "/error/message",
                            "/detail",
                            "/errors/0/detail",
                        ]
                        .iter()
                        .find_map(|p| v.pointer(p).and_then(Value::as_str).map(str::to_string))
                    })
                    .map(|d| format!(": {}", d.chars().take(200).collect::<String>()))
                    .unwrap_or_default();
                let hint = match status {
                    StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => {
                        " (check the credentials in `headers`)"
                    }
                    StatusCode::NOT_FOUND => " (check `url`)",
                    _ => "",
                };
                return Err(StepError::permanent(format!(
                    "GET {shown} answered {status}{detail}{hint}"
                )));
            }
            Err(error) => {
                if attempt == TRIES_PER_PAGE {
                    return Err(StepError::new(format!(
                        "GET {shown} failed: {}",
                        error_chain(error)
                    )));
                }
                ctx.warn(&format!(
                    "GET {shown} failed ({}); trying again",
                    error_chain(error)
                ));
                backoff
            }
        };
        tokio::select! {
            _ = tokio::time::sleep(wait) => {}
            _ = ctx.cancel.cancelled() => return Err(cancelled()),
        }
        backoff = (backoff * 2).min(Duration::from_secs(30));
    }
    Err(StepError::new(format!(
        "GET {shown} did not succeed in {TRIES_PER_PAGE} tries"
    )))
}

/// The URL for logs and errors: query strings can hold tokens.
fn without_query(url: &Url) -> String {
    let mut shown = url.clone();
    shown.set_query(None);
    shown.to_string()
}

fn error_chain(error: reqwest::Error) -> String {
    let error = error.without_url();
    let mut text = error.to_string();
    let mut source = std::error::Error::source(&error);
    while let Some(s) = source {
        text.push_str(&format!(": {s}"));
        source = s.source();
    }
    text
}

/// `Retry-After` as seconds or an HTTP date.
fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?.trim();
    if let Ok(seconds) = value.parse::<u64>() {
        return Some(Duration::from_secs(seconds));
    }
    let at = chrono::DateTime::parse_from_rfc2822(value).ok()?;
    let wait = at.with_timezone(&chrono::Utc) - chrono::Utc::now();
    Some(wait.to_std().unwrap_or(Duration::ZERO))
}

/// The `rel="next"` target of a `Link` header.
fn next_link_header(headers: &HeaderMap) -> Option<String> {
    let value = headers.get(LINK)?.to_str().ok()?;
    value.split(',').find_map(|part| {
        let (target, params) = part.split_once(';')?;
        let is_next = params
            .split(';')
            .any(|p| p.trim().replace(' ', "") == "rel=\"next\"" || p.trim() == "rel=next");
        is_next.then(|| {
            target
                .trim()
                .trim_start_matches('<')
                .trim_end_matches('>')
                .to_string()
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn link_headers_and_retry_after() {
        let mut headers = HeaderMap::new();
        headers.insert(
            LINK,
            HeaderValue::from_static(
                "<https://a/x?page=1>; rel=\"prev\", <https://a/x?page=3>; rel=\"next\"",
            ),
        );
        headers.insert(RETRY_AFTER, HeaderValue::from_static("7"));
        assert_eq!(
            next_link_header(&headers).as_deref(),
            Some("https://a/x?page=3")
        );
        assert_eq!(retry_after(&headers), Some(Duration::from_secs(7)));
    }
}
