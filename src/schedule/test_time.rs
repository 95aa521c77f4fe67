//! Instants written as RFC 3339 text, for the schedule tests.

use chrono::{DateTime, Utc};

/// `utc("2026-03-29T01:30:00Z")`; the text must be valid.
pub fn utc(text: &str) -> DateTime<Utc> {
    DateTime::parse_from_rfc3339(text)
        .expect("a valid RFC 3339 time")
        .with_timezone(&Utc)
}
