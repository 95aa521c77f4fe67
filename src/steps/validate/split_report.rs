//! The report of `validate.holdout`: how many customers each arm got, per segment, and whether
//! that matches the weights (sample-ratio check).

use serde_json::{Value, json};

use super::bucket::Arms;
use crate::report::{Chart, Report, Table, format_number};
use crate::stats::Undefined;
use crate::stats::srm::SrmTest;

/// Customers per arm in one segment (or overall), and the sample-ratio check of that split.
#[derive(Debug, Clone)]
pub struct SegmentSplit {
    pub label: String,
    pub counts: Vec<u64>,
    pub srm: Option<Result<SrmTest, Undefined>>,
}

impl SegmentSplit {
    pub fn total(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// "ok", "mismatch" or why it was not judged.
    pub fn verdict(&self, threshold: f64) -> String {
        match &self.srm {
            Some(Ok(test)) if test.ok(threshold) => "ok".into(),
            Some(Ok(_)) => "mismatch".into(),
            Some(Err(why)) => format!("not judged: {why}"),
            None => "not judged".into(),
        }
    }
}

pub fn split_report(
    salt: &str,
    arms: &Arms,
    overall: &SegmentSplit,
    segments: &[SegmentSplit],
    threshold: f64,
) -> Report {
    let mut report = Report::new("validate.holdout", "Holdout split");
    let shares: Vec<String> = arms
        .names()
        .iter()
        .zip(arms.weights())
        .map(|(n, w)| format!("{n} {}%", format_number(w * 100.0)))
        .collect();
    report.summary.push(format!(
        "{} customers split by salt `{salt}`: {}.",
        overall.total(),
        shares.join(", ")
    ));
    let mismatched: Vec<&str> = segments
        .iter()
        .chain(std::iter::once(overall))
        .filter(|s| matches!(&s.srm, Some(Ok(t)) if !t.ok(threshold)))
        .map(|s| s.label.as_str())
        .collect();
    if mismatched.is_empty() {
        report.summary.push(format!(
            "No sample-ratio mismatch (chi-square test, threshold p < {}).",
            format_number(threshold)
        ));
    } else {
        report.summary.push(format!(
            "Sample-ratio mismatch (p < {}) in: {}.",
            format_number(threshold),
            mismatched.join(", ")
        ));
    }
    let unjudged = segments
        .iter()
        .filter(|s| matches!(&s.srm, Some(Err(_))))
        .count();
    if unjudged > 0 {
        report.summary.push(format!(
            "{unjudged} segment(s) too small to judge the split (fewer than 8 customers in an arm)."
        ));
    }

    let rows: Vec<&SegmentSplit> = std::iter::once(overall).chain(segments).collect();
    // With two arms the second share is the complement of the first: one chart says it all.
    let charted = if arms.len() == 2 { 1 } else { arms.len() };
    for (index, (name, weight)) in arms
        .names()
        .iter()
        .zip(arms.weights())
        .enumerate()
        .take(charted)
    {
        report.charts.push(Chart::Bar {
            title: format!(
                "Share of customers in {name} (expected {}%)",
                format_number(weight * 100.0)
            ),
            labels: rows.iter().map(|s| s.label.clone()).collect(),
            values: rows
                .iter()
                .map(|s| share(s.counts[index], s.total()))
                .collect(),
            unit: Some("share".into()),
        });
    }

    let mut columns = vec!["segment".to_string(), "customers".to_string()];
    for name in arms.names() {
        columns.push(name.clone());
        columns.push(format!("{name} share"));
    }
    columns.extend(["SRM p".to_string(), "split".to_string()]);
    let table_rows = rows
        .iter()
        .map(|s| {
            let mut row = vec![json!(s.label), json!(s.total())];
            for index in 0..arms.len() {
                row.push(json!(s.counts[index]));
                row.push(json!(share(s.counts[index], s.total())));
            }
            row.push(match &s.srm {
                Some(Ok(test)) => json!(test.p_value),
                _ => Value::Null,
            });
            row.push(json!(s.verdict(threshold)));
            row
        })
        .collect();
    report.tables.push(Table {
        title: "Split per segment".into(),
        columns,
        rows: table_rows,
    });
    report
}

/// `part / total`, 0 for an empty segment (never NaN).
fn share(part: u64, total: u64) -> f64 {
    if total == 0 {
        0.0
    } else {
        part as f64 / total as f64
    }
}
