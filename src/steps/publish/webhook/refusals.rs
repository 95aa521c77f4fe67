//! Contacts a 2xx answer still refused. Mailchimp's batch subscribe answers 200 with an
//! `errors` list (each naming the member by `email_address`) beside `new_members` and
//! `updated_members`; Braze's `users/track` answers 201 with `errors`, each pointing at an
//! attribute object by `index`. Only the refused contacts go to the dead letters, and only
//! the accepted ones count as sent and are recorded as synced.
//!
//! When an answer reports errors it does not tie to a contact, every contact the answer does
//! not confirm is taken as refused: a contact is recorded as synced only when nothing says it
//! was refused, so `mode: diff` tries the doubtful ones again (an upsert is safe to repeat).

use std::collections::{BTreeMap, HashSet};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::batches::Member;
use super::preset::{Action, Preset};

/// A contact of an acknowledged batch that the endpoint refused.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Refusal {
    /// The contact's position in the batch.
    pub index: usize,
    /// The platform's reason. It may quote the contact: it goes to the dead letters only,
    /// never to a log line or an error.
    pub reason: String,
    /// What the answer said about this contact (the error object, as JSON).
    pub detail: String,
}

/// The refused contacts of a 2xx answer to a batch of `members`, by position.
pub fn refusals(
    preset: Preset,
    action: Action,
    response: &[u8],
    members: &[Member],
) -> Vec<Refusal> {
    if action != Action::Upsert || response.is_empty() {
        return Vec::new();
    }
    match preset {
        Preset::Mailchimp => mailchimp(response, members),
        Preset::Braze => braze(response, members.len()),
        Preset::Generic | Preset::Klaviyo | Preset::Sendgrid => Vec::new(),
    }
}

fn email_of(member: &Member) -> Option<String> {
    let identity: Value = serde_json::from_str(&member.identity).ok()?;
    identity
        .get("email")
        .and_then(Value::as_str)
        .map(|e| e.trim().to_lowercase())
}

/// The answer's `errors` array (empty when there is none), as both platforms name it.
fn errors_of(answer: &Value) -> &[Value] {
    answer
        .get("errors")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
}

fn text(value: &Value, key: &str) -> Option<String> {
    value
        .get(key)
        .and_then(Value::as_str)
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(str::to_string)
}

/// Mailchimp: `{"new_members": [...], "updated_members": [...], "errors": [{"email_address",
/// "error", "error_code", "field", "field_message"}], "error_count": N}`.
fn mailchimp(response: &[u8], members: &[Member]) -> Vec<Refusal> {
    let Ok(answer) = serde_json::from_slice::<Value>(response) else {
        return Vec::new();
    };
    let errors = errors_of(&answer);
    let error_count = answer
        .get("error_count")
        .and_then(Value::as_u64)
        .map_or(errors.len(), |n| n as usize);
    if errors.is_empty() && error_count == 0 {
        return Vec::new();
    }
    let emails: Vec<Option<String>> = members.iter().map(email_of).collect();
    let mut refused: BTreeMap<usize, Refusal> = BTreeMap::new();
    let mut unnamed: Vec<&Value> = Vec::new();
    let mut named = 0usize;
    for error in errors {
        let reason = mailchimp_reason(error);
        let hits: Vec<usize> = match text(error, "email_address").map(|e| e.to_lowercase()) {
            Some(address) => (0..members.len())
                .filter(|&i| emails[i].as_deref() == Some(address.as_str()))
                .collect(),
            None => Vec::new(),
        };
        if hits.is_empty() {
            unnamed.push(error);
            continue;
        }
        named += 1;
        for index in hits {
            refused.entry(index).or_insert_with(|| Refusal {
                index,
                reason: reason.clone(),
                detail: error.to_string(),
            });
        }
    }
    let unexplained = error_count.max(errors.len()).saturating_sub(named);
    if unexplained > 0 {
        // Which contacts the errors are about is not said: every contact Mailchimp did not
        // confirm as created or updated is taken as refused.
        let listed = ["new_members", "updated_members"]
            .iter()
            .any(|k| answer.get(k).is_some_and(Value::is_array));
        let confirmed: HashSet<String> = ["new_members", "updated_members"]
            .iter()
            .filter_map(|k| answer.get(k).and_then(Value::as_array))
            .flatten()
            .filter_map(|m| text(m, "email_address"))
            .map(|e| e.to_lowercase())
            .collect();
        let said = unnamed
            .first()
            .map(|e| mailchimp_reason(e))
            .unwrap_or_else(|| "no reason given".into());
        let detail = unnamed
            .first()
            .map(|e| e.to_string())
            .unwrap_or_else(|| Value::Null.to_string());
        for (index, email) in emails.iter().enumerate() {
            let is_confirmed = listed && email.as_ref().is_some_and(|e| confirmed.contains(e));
            if is_confirmed || refused.contains_key(&index) {
                continue;
            }
            refused.insert(
                index,
                Refusal {
                    index,
                    reason: format!(
                        "Mailchimp reported {unexplained} error(s) without naming the member and did not confirm this one as created or updated: {said}"
                    ),
                    detail: detail.clone(),
                },
            );
        }
    }
    refused.into_values().collect()
}

fn mailchimp_reason(error: &Value) -> String {
    let mut parts: Vec<String> = Vec::new();
    if let Some(code) = text(error, "error_code") {
        parts.push(code);
    }
    if let Some(message) = text(error, "error") {
        parts.push(message);
    }
    if let Some(field) = text(error, "field") {
        let message = text(error, "field_message").unwrap_or_default();
        parts.push(format!("field {field} {message}").trim_end().to_string());
    }
    if parts.is_empty() {
        "refused (no reason given)".into()
    } else {
        parts.join(": ")
    }
}

/// Braze: `{"message": "success", "errors": [{"type": "…", "input_array": "attributes",
/// "index": 3}]}`; a minor error may also be a bare string.
fn braze(response: &[u8], members: usize) -> Vec<Refusal> {
    let Ok(answer) = serde_json::from_slice::<Value>(response) else {
        return Vec::new();
    };
    let errors = errors_of(&answer);
    let mut refused: BTreeMap<usize, Refusal> = BTreeMap::new();
    let mut unnamed: Vec<&Value> = Vec::new();
    for error in errors {
        let reason = match error {
            Value::String(s) => s.clone(),
            other => text(other, "type")
                .or_else(|| text(other, "message"))
                .unwrap_or_else(|| "refused (no reason given)".into()),
        };
        let array = text(error, "input_array");
        // Only attribute objects are sent; an error about events or purchases is not ours.
        if array.as_deref().is_some_and(|a| a != "attributes") {
            continue;
        }
        match error
            .get("index")
            .and_then(Value::as_u64)
            .map(|i| i as usize)
        {
            Some(index) if index < members => {
                refused.entry(index).or_insert_with(|| Refusal {
                    index,
                    reason,
                    detail: error.to_string(),
                });
            }
            _ => unnamed.push(error),
        }
    }
    // A 2xx whose `message` is not "success" is a fatal error: nothing was taken.
    let fatal = text(&answer, "message").filter(|m| m != "success");
    if fatal.is_some() || !unnamed.is_empty() {
        let said = fatal.clone().unwrap_or_else(|| match unnamed[0] {
            Value::String(s) => s.clone(),
            other => text(other, "type").unwrap_or_else(|| other.to_string()),
        });
        let detail = match &fatal {
            Some(_) => answer.to_string(),
            None => unnamed[0].to_string(),
        };
        for index in 0..members {
            refused.entry(index).or_insert_with(|| Refusal {
                index,
                reason: format!(
                    "Braze reported an error that names no attribute object, so this one may not have been updated: {said}"
                ),
                detail: detail.clone(),
            });
        }
    }
    refused.into_values().collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn members(emails: &[&str]) -> Vec<Member> {
        emails
            .iter()
            .enumerate()
            .map(|(i, e)| Member {
                key: i.to_string(),
                hash: String::new(),
                identity: serde_json::json!({ "email": e }).to_string(),
            })
            .collect()
    }

    fn indexes(refusals: &[Refusal]) -> Vec<usize> {
        refusals.iter().map(|r| r.index).collect()
    }

    #[test]
    fn mailchimp_names_refused_members_by_email() {
        let batch = members(&["a@x.test", "B@x.test", "c@x.test"]);
        let answer = br#"{"new_members":[{"email_address":"a@x.test"}],"updated_members":[{"email_address":"c@x.test"}],
            "errors":[{"email_address":"b@x.test","error":"b@x.test looks fake or invalid","error_code":"ERROR_GENERIC"}],
            "total_created":1,"total_updated":1,"error_count":1}"#;
        let refused = refusals(Preset::Mailchimp, Action::Upsert, answer, &batch);
        assert_eq!(indexes(&refused), [1]);
        assert_eq!(
            refused[0].reason,
            "ERROR_GENERIC: b@x.test looks fake or invalid"
        );
        let clean = br#"{"new_members":[],"errors":[],"error_count":0}"#;
        assert!(refusals(Preset::Mailchimp, Action::Upsert, clean, &batch).is_empty());
    }

    #[test]
    fn mailchimp_errors_without_an_email_refuse_the_unconfirmed_members() {
        let batch = members(&["a@x.test", "b@x.test", "c@x.test"]);
        // The lists confirm a and c: b is the one refused.
        let answer = br#"{"new_members":[{"email_address":"a@x.test"}],"updated_members":[{"email_address":"c@x.test"}],
            "errors":[{"error":"Invalid merge field","field":"BIRTHDAY"}],"error_count":1}"#;
        assert_eq!(
            indexes(&refusals(Preset::Mailchimp, Action::Upsert, answer, &batch)),
            [1]
        );
        // Without the lists nobody is confirmed: none is taken as synced.
        let answer = br#"{"errors":[{"error":"Something went wrong"}],"error_count":1}"#;
        assert_eq!(
            indexes(&refusals(Preset::Mailchimp, Action::Upsert, answer, &batch)),
            [0, 1, 2]
        );
    }

    #[test]
    fn braze_points_at_attribute_objects_by_index() {
        let answer = br#"{"message":"success","attributes_processed":2,"errors":[
            {"type":"'external_id' or 'braze_id' or 'user_alias' is required","input_array":"attributes","index":1},
            {"type":"'price' is not valid","input_array":"purchases","index":0}]}"#;
        let refused = refusals(
            Preset::Braze,
            Action::Upsert,
            answer,
            &members(&["a", "b", "c"]),
        );
        assert_eq!(indexes(&refused), [1]);
        assert!(refused[0].reason.contains("is required"));
        let minor = br#"{"message":"success","errors":["something odd"]}"#;
        assert_eq!(
            indexes(&refusals(
                Preset::Braze,
                Action::Upsert,
                minor,
                &members(&["a", "b"])
            )),
            [0, 1]
        );
        let fine = br#"{"message":"success","attributes_processed":3}"#;
        assert!(
            refusals(
                Preset::Braze,
                Action::Upsert,
                fine,
                &members(&["a", "b", "c"])
            )
            .is_empty()
        );
    }
}
