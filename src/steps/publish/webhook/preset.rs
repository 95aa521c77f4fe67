//! The shape of each email platform's bulk API: endpoint, headers, body and batch limits
//! (facts from REFERENCE.md and the official request schemas in shared/specs).
//!
//! A preset turns mapped contacts into request bodies. Each contact is serialized on its own
//! (a "fragment"), and a batch body is the preset's envelope around the fragments, so batching
//! by count and by bytes needs no re-serialization.

use base64::Engine as _;
use md5::{Digest as _, Md5};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

pub use super::delivery::Rate;

/// Which platform's API a publish step speaks.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, Serialize, JsonSchema)]
#[serde(rename_all = "lowercase")]
pub enum Preset {
    /// `{"action": "upsert"|"remove", "records": [...]}` POSTed to `url`.
    #[default]
    Generic,
    /// Klaviyo bulk profile import (`POST /api/profile-bulk-import-jobs`), 10,000 profiles or 5 MB.
    Klaviyo,
    /// Mailchimp batch subscribe (`POST /3.0/lists/{list_id}`), 500 members per call.
    Mailchimp,
    /// SendGrid `PUT /v3/marketing/contacts`, 30,000 contacts or 6 MB.
    Sendgrid,
    /// Braze `POST /users/track`, 75 attribute objects per request.
    Braze,
}

/// Whether a batch adds/updates contacts or takes them out of the audience (`mode: diff`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Action {
    Upsert,
    Remove,
}

impl Action {
    pub fn name(self) -> &'static str {
        match self {
            Action::Upsert => "upsert",
            Action::Remove => "remove",
        }
    }
}

/// What a platform accepts in one request.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_records: usize,
    pub max_bytes: Option<usize>,
    pub default_batch: usize,
    /// The request rate when the config sets none (the platform's documented limit).
    pub default_rate: Option<Rate>,
    pub max_concurrency: Option<usize>,
}

/// Klaviyo's standard profile attributes; every other mapped field is a custom property.
const KLAVIYO_ATTRIBUTES: &[&str] = &[
    "email",
    "phone_number",
    "external_id",
    "first_name",
    "last_name",
    "organization",
    "locale",
    "title",
    "image",
];
/// SendGrid's reserved contact fields; every other mapped field goes to `custom_fields`.
const SENDGRID_FIELDS: &[&str] = &[
    "email",
    "phone_number_id",
    "external_id",
    "anonymous_id",
    "first_name",
    "last_name",
    "address_line_1",
    "address_line_2",
    "alternate_emails",
    "city",
    "country",
    "postal_code",
    "state_province_region",
];
/// Braze's standard user attributes: kept on removal (only custom attributes are cleared).
const BRAZE_STANDARD: &[&str] = &[
    "external_id",
    "braze_id",
    "user_alias",
    "email",
    "phone",
    "first_name",
    "last_name",
    "dob",
    "country",
    "home_city",
    "language",
    "gender",
    "time_zone",
    "email_subscribe",
    "push_subscribe",
];
/// Mailchimp member fields that sit beside `merge_fields`.
const MAILCHIMP_MEMBER: &[&str] = &["email_type", "language", "vip"];

pub const DEFAULT_KLAVIYO_REVISION: &str = "2026-07-15";

impl Preset {
    pub fn name(self) -> &'static str {
        match self {
            Preset::Generic => "generic",
            Preset::Klaviyo => "klaviyo",
            Preset::Mailchimp => "mailchimp",
            Preset::Sendgrid => "sendgrid",
            Preset::Braze => "braze",
        }
    }

    pub fn limits(self) -> Limits {
        match self {
            Preset::Generic => Limits {
                max_records: 100_000,
                max_bytes: None,
                default_batch: 500,
                default_rate: None,
                max_concurrency: None,
            },
            Preset::Klaviyo => Limits {
                max_records: 10_000,
                max_bytes: Some(5_000_000),
                default_batch: 1_000,
                // Bulk import: 150 requests a minute steady, 10 a second in bursts. Bursts of
                // 8, plus the 2 that 2.5/s adds within the same second, keep every second
                // within 10.
                default_rate: Some(Rate {
                    per_second: 2.5,
                    burst: 8,
                }),
                max_concurrency: None,
            },
            Preset::Mailchimp => Limits {
                max_records: 500,
                max_bytes: None,
                default_batch: 500,
                default_rate: None,
                max_concurrency: Some(10),
            },
            Preset::Sendgrid => Limits {
                max_records: 30_000,
                max_bytes: Some(6_000_000),
                default_batch: 1_000,
                default_rate: None,
                max_concurrency: None,
            },
            Preset::Braze => Limits {
                max_records: 75,
                max_bytes: None,
                default_batch: 75,
                // 3,000 requests per 3 seconds.
                default_rate: Some(Rate {
                    per_second: 1_000.0,
                    burst: 1_000,
                }),
                max_concurrency: None,
            },
        }
    }

    /// Mapped fields that identify a contact on the platform; a contact needs at least one.
    pub fn identifiers(self) -> &'static [&'static str] {
        match self {
            Preset::Generic => &[],
            Preset::Klaviyo => &["email", "phone_number", "external_id"],
            Preset::Mailchimp => &["email"],
            Preset::Sendgrid => &["email", "phone_number_id", "external_id", "anonymous_id"],
            Preset::Braze => &["external_id", "braze_id", "user_alias", "email"],
        }
    }

    /// The public API base when the config gives no `url`.
    pub fn default_base(self, api_key: Option<&str>) -> Option<String> {
        match self {
            Preset::Klaviyo => Some("https://a.klaviyo.com".into()),
            Preset::Sendgrid => Some("https://api.sendgrid.com".into()),
            // The key's data-centre suffix (`…-us6`) picks the host.
            Preset::Mailchimp => api_key
                .and_then(|k| k.rsplit_once('-'))
                .map(|(_, dc)| dc)
                .filter(|dc| !dc.is_empty() && dc.chars().all(|c| c.is_ascii_alphanumeric()))
                .map(|dc| format!("https://{dc}.api.mailchimp.com")),
            Preset::Generic | Preset::Braze => None,
        }
    }

    /// Method and path (joined to the base URL) of a batch of `action`.
    pub fn endpoint(self, action: Action, list_id: Option<&str>) -> (reqwest::Method, String) {
        use reqwest::Method;
        let list = list_id.unwrap_or_default();
        match (self, action) {
            (Preset::Generic, _) => (Method::POST, String::new()),
            (Preset::Klaviyo, _) => (Method::POST, "/api/profile-bulk-import-jobs".into()),
            (Preset::Mailchimp, Action::Upsert) => (Method::POST, format!("/3.0/lists/{list}")),
            (Preset::Mailchimp, Action::Remove) => (Method::POST, "/3.0/batches".into()),
            (Preset::Sendgrid, _) => (Method::PUT, "/v3/marketing/contacts".into()),
            (Preset::Braze, _) => (Method::POST, "/users/track".into()),
        }
    }

    pub fn content_type(self) -> &'static str {
        match self {
            Preset::Klaviyo => "application/vnd.api+json",
            _ => "application/json",
        }
    }

    /// The platform's auth (and version) headers for an API key.
    pub fn auth_headers(self, api_key: &str, revision: Option<&str>) -> Vec<(String, String)> {
        match self {
            Preset::Generic => vec![("authorization".into(), format!("Bearer {api_key}"))],
            Preset::Klaviyo => vec![
                ("authorization".into(), format!("Klaviyo-API-Key {api_key}")),
                (
                    "revision".into(),
                    revision.unwrap_or(DEFAULT_KLAVIYO_REVISION).to_string(),
                ),
            ],
            Preset::Mailchimp => {
                let basic =
                    base64::engine::general_purpose::STANDARD.encode(format!("segflow:{api_key}"));
                vec![("authorization".into(), format!("Basic {basic}"))]
            }
            Preset::Sendgrid | Preset::Braze => {
                vec![("authorization".into(), format!("Bearer {api_key}"))]
            }
        }
    }

    /// Klaviyo needs its `revision` header even without a key (tests, proxies).
    pub fn version_headers(self, revision: Option<&str>) -> Vec<(String, String)> {
        match self {
            Preset::Klaviyo => vec![(
                "revision".into(),
                revision.unwrap_or(DEFAULT_KLAVIYO_REVISION).to_string(),
            )],
            _ => Vec::new(),
        }
    }

    /// The custom (non-standard, non-identifier) fields among `targets`: what a removal clears.
    pub fn custom_fields(self, targets: &[String]) -> Vec<&str> {
        let standard: &[&str] = match self {
            Preset::Generic => &[],
            Preset::Klaviyo => KLAVIYO_ATTRIBUTES,
            Preset::Mailchimp => &["email"],
            Preset::Sendgrid => SENDGRID_FIELDS,
            Preset::Braze => BRAZE_STANDARD,
        };
        targets
            .iter()
            .map(String::as_str)
            .filter(|t| !standard.contains(t) && !t.starts_with("location."))
            .map(|t| t.strip_prefix("properties.").unwrap_or(t))
            .collect()
    }
}

/// Everything a preset needs besides the contacts.
#[derive(Debug, Clone)]
pub struct Shape {
    pub preset: Preset,
    pub list_id: Option<String>,
    /// Mailchimp member status for upserts.
    pub status: String,
    pub update_existing: bool,
    /// The mapped target field names, in mapping order.
    pub targets: Vec<String>,
}

impl Shape {
    /// Whether an upsert fragment is the mapped fields exactly as they are (the generic preset
    /// without dotted names), so the bytes already serialized for the content hash can be sent.
    pub fn sends_fields_as_they_are(&self) -> bool {
        self.preset == Preset::Generic && !self.targets.iter().any(|t| t.contains('.'))
    }

    /// One contact of an upsert batch. `fields` are the mapped values (nulls left out).
    pub fn upsert_fragment(&self, fields: &Map<String, Value>) -> Value {
        match self.preset {
            Preset::Generic => nest(fields),
            Preset::Klaviyo => {
                let mut attributes = Map::new();
                let mut properties = Map::new();
                let mut location = Map::new();
                for (target, value) in fields {
                    if KLAVIYO_ATTRIBUTES.contains(&target.as_str()) {
                        attributes.insert(target.clone(), text(value));
                    } else if let Some(part) = target.strip_prefix("location.") {
                        location.insert(part.to_string(), value.clone());
                    } else {
                        let name = target.strip_prefix("properties.").unwrap_or(target);
                        properties.insert(name.to_string(), value.clone());
                    }
                }
                if !location.is_empty() {
                    attributes.insert("location".into(), Value::Object(location));
                }
                if !properties.is_empty() {
                    attributes.insert("properties".into(), Value::Object(properties));
                }
                json!({ "type": "profile", "attributes": attributes })
            }
            Preset::Mailchimp => {
                let mut member = Map::new();
                let mut merge = Map::new();
                for (target, value) in fields {
                    match target.as_str() {
                        "email" => {
                            member.insert("email_address".into(), value.clone());
                        }
                        t if MAILCHIMP_MEMBER.contains(&t) => {
                            member.insert(t.to_string(), value.clone());
                        }
                        t => {
                            let name = t.strip_prefix("merge_fields.").unwrap_or(t);
                            merge.insert(name.to_string(), value.clone());
                        }
                    }
                }
                member.insert("status".into(), Value::String(self.status.clone()));
                if !merge.is_empty() {
                    member.insert("merge_fields".into(), Value::Object(merge));
                }
                Value::Object(member)
            }
            Preset::Sendgrid => {
                let mut contact = Map::new();
                let mut custom = Map::new();
                for (target, value) in fields {
                    if SENDGRID_FIELDS.contains(&target.as_str()) {
                        let value = if target == "alternate_emails" {
                            value.clone()
                        } else {
                            text(value)
                        };
                        contact.insert(target.clone(), value);
                    } else {
                        let name = target.strip_prefix("custom_fields.").unwrap_or(target);
                        custom.insert(name.to_string(), value.clone());
                    }
                }
                if !custom.is_empty() {
                    contact.insert("custom_fields".into(), Value::Object(custom));
                }
                Value::Object(contact)
            }
            Preset::Braze => {
                let mut user = fields.clone();
                for id in ["external_id", "braze_id", "email"] {
                    if let Some(value) = user.get_mut(id) {
                        *value = text(value);
                    }
                }
                nest(&user)
            }
        }
    }

    /// One contact of a removal batch, from the identifiers kept in the sync state.
    pub fn remove_fragment(&self, identity: &Map<String, Value>) -> Value {
        let custom = self.preset.custom_fields(&self.targets);
        let identity: Map<String, Value> = match self.preset {
            Preset::Generic => identity.clone(),
            _ => identity.iter().map(|(k, v)| (k.clone(), text(v))).collect(),
        };
        let identity = &identity;
        match self.preset {
            Preset::Generic => Value::Object(identity.clone()),
            // The profile loses the segment's custom properties (`meta.patch_properties.unset`).
            Preset::Klaviyo => json!({
                "type": "profile",
                "attributes": identity,
                "meta": { "patch_properties": { "unset": custom } },
            }),
            // Archive the member: a DELETE of `/lists/{id}/members/{md5(lowercase email)}`.
            Preset::Mailchimp => {
                let email = identity
                    .get("email")
                    .and_then(Value::as_str)
                    .unwrap_or_default();
                json!({
                    "method": "DELETE",
                    "path": format!(
                        "/lists/{}/members/{}",
                        self.list_id.as_deref().unwrap_or_default(),
                        subscriber_hash(email)
                    ),
                })
            }
            // SendGrid removes from lists only by its own contact ids; clear the custom fields.
            Preset::Sendgrid => {
                let mut contact = identity.clone();
                if !custom.is_empty() {
                    let cleared: Map<String, Value> = custom
                        .iter()
                        .map(|c| {
                            let name = c.strip_prefix("custom_fields.").unwrap_or(c);
                            (name.to_string(), Value::String(String::new()))
                        })
                        .collect();
                    contact.insert("custom_fields".into(), Value::Object(cleared));
                }
                Value::Object(contact)
            }
            // Braze removes an attribute that is set to null.
            Preset::Braze => {
                let mut user = identity.clone();
                for name in custom {
                    user.insert(name.to_string(), Value::Null);
                }
                Value::Object(user)
            }
        }
    }

    /// The body of a batch: the preset's envelope around the serialized contacts.
    pub fn body(&self, action: Action, fragments: &[Vec<u8>]) -> Vec<u8> {
        let size: usize = fragments.iter().map(|f| f.len() + 1).sum();
        let (prefix, suffix) = self.envelope(action);
        let mut body = Vec::with_capacity(prefix.len() + size + suffix.len());
        body.extend_from_slice(prefix.as_bytes());
        for (i, fragment) in fragments.iter().enumerate() {
            if i > 0 {
                body.push(b',');
            }
            body.extend_from_slice(fragment);
        }
        body.extend_from_slice(suffix.as_bytes());
        body
    }

    /// Bytes the envelope adds to a batch (for the byte limit).
    pub fn envelope_len(&self, action: Action) -> usize {
        let (prefix, suffix) = self.envelope(action);
        prefix.len() + suffix.len()
    }

    /// The JSON before and after the comma-separated contacts.
    fn envelope(&self, action: Action) -> (String, String) {
        match (self.preset, action) {
            (Preset::Generic, action) => (
                format!("{{\"action\":\"{}\",\"records\":[", action.name()),
                "]}".into(),
            ),
            (Preset::Klaviyo, action) => {
                let relationships = match (&self.list_id, action) {
                    (Some(list), Action::Upsert) => format!(
                        ",\"relationships\":{{\"lists\":{{\"data\":[{}]}}}}",
                        json!({ "type": "list", "id": list })
                    ),
                    _ => String::new(),
                };
                (
                    "{\"data\":{\"type\":\"profile-bulk-import-job\",\"attributes\":{\"profiles\":{\"data\":[".into(),
                    format!("]}}}}{relationships}}}}}"),
                )
            }
            (Preset::Mailchimp, Action::Upsert) => (
                "{\"members\":[".into(),
                format!("],\"update_existing\":{}}}", self.update_existing),
            ),
            (Preset::Mailchimp, Action::Remove) => ("{\"operations\":[".into(), "]}".into()),
            (Preset::Sendgrid, action) => {
                let lists = match (&self.list_id, action) {
                    (Some(list), Action::Upsert) => format!("\"list_ids\":{},", json!([list])),
                    _ => String::new(),
                };
                (format!("{{{lists}\"contacts\":["), "]}".into())
            }
            (Preset::Braze, _) => ("{\"attributes\":[".into(), "]}".into()),
        }
    }

    /// The contacts of a batch body, in order (to keep one contact's request in the dead
    /// letters).
    pub fn contacts_of(&self, action: Action, body: &[u8]) -> Option<Vec<Value>> {
        let body: Value = serde_json::from_slice(body).ok()?;
        let list = match (self.preset, action) {
            (Preset::Generic, _) => body.get("records"),
            (Preset::Klaviyo, _) => body.pointer("/data/attributes/profiles/data"),
            (Preset::Mailchimp, Action::Upsert) => body.get("members"),
            (Preset::Mailchimp, Action::Remove) => body.get("operations"),
            (Preset::Sendgrid, _) => body.get("contacts"),
            (Preset::Braze, _) => body.get("attributes"),
        };
        list.and_then(Value::as_array).cloned()
    }
}

/// The MD5 of the lowercased email: how Mailchimp addresses a member.
pub fn subscriber_hash(email: &str) -> String {
    hex(&Md5::digest(email.trim().to_lowercase().as_bytes()))
}

pub fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(DIGITS[(b >> 4) as usize] as char);
        out.push(DIGITS[(b & 15) as usize] as char);
    }
    out
}

/// Platforms take identifiers and standard fields as text: numbers and booleans are written
/// as strings.
fn text(value: &Value) -> Value {
    match value {
        Value::Number(n) => Value::String(n.to_string()),
        Value::Bool(b) => Value::String(b.to_string()),
        other => other.clone(),
    }
}

/// `a.b: 1` becomes `{"a": {"b": 1}}`; other names are kept as they are.
fn nest(fields: &Map<String, Value>) -> Value {
    if !fields.keys().any(|k| k.contains('.')) {
        return Value::Object(fields.clone());
    }
    let mut out = Map::new();
    for (target, value) in fields {
        let mut parts = target.split('.').peekable();
        let mut node = &mut out;
        while let Some(part) = parts.next() {
            if parts.peek().is_none() {
                node.insert(part.to_string(), value.clone());
            } else {
                let entry = node
                    .entry(part.to_string())
                    .or_insert_with(|| Value::Object(Map::new()));
                if !entry.is_object() {
                    *entry = Value::Object(Map::new());
                }
                node = entry.as_object_mut().expect("just made an object");
            }
        }
    }
    Value::Object(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape(preset: Preset, list: Option<&str>) -> Shape {
        Shape {
            preset,
            list_id: list.map(str::to_string),
            status: "subscribed".into(),
            update_existing: true,
            targets: vec!["email".into(), "first_name".into(), "segment".into()],
        }
    }

    fn contact() -> Map<String, Value> {
        let mut m = Map::new();
        m.insert("email".into(), json!("ada@example.com"));
        m.insert("first_name".into(), json!("Ada"));
        m.insert("segment".into(), json!("Champions"));
        m
    }

    fn body(shape: &Shape, action: Action, fragments: &[Value]) -> Value {
        let bytes: Vec<Vec<u8>> = fragments
            .iter()
            .map(|f| serde_json::to_vec(f).unwrap())
            .collect();
        serde_json::from_slice(&shape.body(action, &bytes)).expect("bodies are JSON")
    }

    #[test]
    fn mailchimp_subscriber_hash_is_md5_of_lowercase_email() {
        // Mailchimp's documented example address; the hash from Python `hashlib.md5`.
        assert_eq!(
            subscriber_hash("Urist.McVankab@freddiesjokes.com"),
            "62eeb292278cc15f5817cb78f7790b08"
        );
    }

    #[test]
    fn mailchimp_bodies() {
        let s = shape(Preset::Mailchimp, Some("abc123"));
        let b = body(&s, Action::Upsert, &[s.upsert_fragment(&contact())]);
        assert_eq!(
            b,
            json!({"members": [{"email_address": "ada@example.com", "status": "subscribed",
                "merge_fields": {"first_name": "Ada", "segment": "Champions"}}],
                "update_existing": true})
        );
        let mut id = Map::new();
        id.insert("email".into(), json!("Ada@Example.com"));
        let r = body(&s, Action::Remove, &[s.remove_fragment(&id)]);
        assert_eq!(
            r["operations"][0],
            json!({"method": "DELETE", "path": format!("/lists/abc123/members/{}", subscriber_hash("ada@example.com"))})
        );
    }

    #[test]
    fn braze_removal_nulls_custom_attributes_only() {
        let s = shape(Preset::Braze, None);
        let mut id = Map::new();
        id.insert("external_id".into(), json!("c-1"));
        let r = body(&s, Action::Remove, &[s.remove_fragment(&id)]);
        assert_eq!(
            r,
            json!({"attributes": [{"external_id": "c-1", "segment": null}]})
        );
    }

    #[test]
    fn generic_nests_dotted_names() {
        let s = shape(Preset::Generic, None);
        let mut m = Map::new();
        m.insert("id".into(), json!(7));
        m.insert("traits.segment".into(), json!("A"));
        let b = body(&s, Action::Upsert, &[s.upsert_fragment(&m)]);
        assert_eq!(
            b,
            json!({"action": "upsert", "records": [{"id": 7, "traits": {"segment": "A"}}]})
        );
    }

    #[test]
    fn generic_fields_without_dots_are_sent_as_serialized_for_the_hash() {
        let plain = shape(Preset::Generic, None);
        assert!(plain.sends_fields_as_they_are());
        assert_eq!(
            serde_json::to_vec(&plain.upsert_fragment(&contact())).unwrap(),
            serde_json::to_vec(&contact()).unwrap()
        );
        let mut dotted = shape(Preset::Generic, None);
        dotted.targets.push("traits.segment".into());
        assert!(!dotted.sends_fields_as_they_are());
        assert!(!shape(Preset::Klaviyo, None).sends_fields_as_they_are());
    }

    #[test]
    fn contacts_of_a_body_come_back_in_order() {
        let s = shape(Preset::Mailchimp, Some("l"));
        let fragments: Vec<Vec<u8>> = ["a@x.test", "b@x.test"]
            .iter()
            .map(|e| {
                let mut m = Map::new();
                m.insert("email".into(), json!(e));
                serde_json::to_vec(&s.upsert_fragment(&m)).unwrap()
            })
            .collect();
        let body = s.body(Action::Upsert, &fragments);
        let contacts = s.contacts_of(Action::Upsert, &body).unwrap();
        assert_eq!(contacts[1]["email_address"], "b@x.test");
    }
}
