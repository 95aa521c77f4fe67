//! The RFM segment table: named segments from score bounds, first match wins.

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// One named segment: inclusive bounds on the R, F and M scores (a missing bound allows any).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RfmSegment {
    /// The segment's name.
    pub name: String,
    /// Recency score bounds `[low, high]`, inclusive (5 = bought most recently).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub r: Option<[u8; 2]>,
    /// Frequency score bounds `[low, high]`, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub f: Option<[u8; 2]>,
    /// Monetary score bounds `[low, high]`, inclusive.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub m: Option<[u8; 2]>,
}

impl RfmSegment {
    fn new(name: &str, r: [u8; 2], f: [u8; 2], m: [u8; 2]) -> Self {
        RfmSegment {
            name: name.into(),
            r: Some(r),
            f: Some(f),
            m: Some(m),
        }
    }

    pub fn matches(&self, r: u8, f: u8, m: u8) -> bool {
        let within = |bounds: Option<[u8; 2]>, score: u8| {
            bounds.is_none_or(|[low, high]| (low..=high).contains(&score))
        };
        within(self.r, r) && within(self.f, f) && within(self.m, m)
    }
}

/// The default table, for 5 bins, checked top to bottom.
///
/// The bounds are the R package `rfm`'s documented table (rsquaredacademy, `rfm_segment`
/// examples). Its order is not kept: the first match wins (as in current versions of `rfm`), and
/// in the documented order New Customers and Promising lie inside Potential Loyalist and Can't
/// Lose Them inside At Risk, so they would stay empty (on CDNOW: 0 customers each). Narrower
/// rows therefore come before the wider rows that hold them. `rfm`'s last row, Lost (R, F and M
/// all 1–2), would leave no room for Hibernating, so both follow Putler's RFM segment table
/// ("RFM Analysis For Successful Customer Segmentation"): Lost is "the lowest recency,
/// frequency and monetary scores" (1-1-1), checked first as the narrower rule; Hibernating is
/// "last purchase long ago, low spenders, few orders" (R, F and M 1–2). Customers no row
/// matches are Others.
pub fn default_table() -> Vec<RfmSegment> {
    vec![
        RfmSegment::new("Champions", [4, 5], [4, 5], [4, 5]),
        RfmSegment::new("Loyal Customers", [2, 5], [3, 5], [3, 5]),
        RfmSegment::new("New Customers", [4, 5], [1, 1], [1, 1]),
        RfmSegment::new("Promising", [3, 4], [1, 1], [1, 1]),
        RfmSegment::new("Potential Loyalist", [3, 5], [1, 3], [1, 3]),
        RfmSegment::new("Need Attention", [2, 3], [2, 3], [2, 3]),
        RfmSegment::new("About To Sleep", [2, 3], [1, 2], [1, 2]),
        RfmSegment::new("Can't Lose Them", [1, 1], [4, 5], [4, 5]),
        RfmSegment::new("At Risk", [1, 2], [2, 5], [2, 5]),
        RfmSegment::new("Lost", [1, 1], [1, 1], [1, 1]),
        RfmSegment::new("Hibernating", [1, 2], [1, 2], [1, 2]),
    ]
}

/// The bins the default table is written for.
pub const DEFAULT_TABLE_BINS: u8 = 5;

/// The first segment whose bounds hold the scores, else `fallback`.
pub fn segment_of<'a>(table: &'a [RfmSegment], fallback: &'a str, r: u8, f: u8, m: u8) -> &'a str {
    table
        .iter()
        .find(|s| s.matches(r, f, m))
        .map_or(fallback, |s| s.name.as_str())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(r: u8, f: u8, m: u8) -> &'static str {
        let table = default_table();
        let found = segment_of(&table, "Others", r, f, m).to_string();
        Box::leak(found.into_boxed_str())
    }

    #[test]
    fn the_default_table_follows_the_published_rules_in_order() {
        assert_eq!(name(5, 5, 5), "Champions");
        // Loyal Customers comes before Potential Loyalist: 533 is loyal.
        assert_eq!(name(5, 3, 3), "Loyal Customers");
        // New Customers and Promising come before Potential Loyalist, which holds them.
        assert_eq!(name(5, 1, 1), "New Customers");
        assert_eq!(name(3, 1, 1), "Promising");
        assert_eq!(name(5, 2, 1), "Potential Loyalist");
        assert_eq!(name(2, 2, 2), "Need Attention");
        assert_eq!(name(2, 1, 2), "About To Sleep");
        assert_eq!(name(1, 5, 5), "Can't Lose Them");
        assert_eq!(name(1, 3, 4), "At Risk");
        assert_eq!(name(1, 5, 1), "Others");
    }

    #[test]
    fn lost_and_hibernating_are_both_reachable() {
        assert_eq!(name(1, 1, 1), "Lost");
        assert_eq!(name(1, 1, 2), "Hibernating");
        assert_eq!(name(1, 2, 1), "Hibernating");
    }

    #[test]
    fn every_named_segment_holds_some_score() {
        let table = default_table();
        for segment in &table {
            let reachable = (1..=5).any(|r| {
                (1..=5)
                    .any(|f| (1..=5).any(|m| segment_of(&table, "Others", r, f, m) == segment.name))
            });
            assert!(reachable, "{} is shadowed by earlier rows", segment.name);
        }
    }
}
