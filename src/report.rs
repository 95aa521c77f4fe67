//! Step reports: what a segmentation or experiment step found, for people (Markdown) and for
//! the web UI (JSON). Every report has the same generic shape — charts and tables — so the UI
//! draws any step's report without knowing the step kind.

use std::fmt::Write as _;

use serde::{Deserialize, Serialize};
use serde_json::Value;

#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct Report {
    /// The step kind that wrote it (`segment.profile`, `validate.ab`…).
    pub kind: String,
    pub title: String,
    /// A few sentences in plain language.
    #[serde(default)]
    pub summary: Vec<String>,
    #[serde(default)]
    pub charts: Vec<Chart>,
    #[serde(default)]
    pub tables: Vec<Table>,
    /// Anything else the step wants to keep, in its own shape.
    #[serde(default, skip_serializing_if = "Value::is_null")]
    pub data: Value,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Chart {
    /// One bar per label (segment sizes, shares).
    Bar {
        title: String,
        labels: Vec<String>,
        values: Vec<f64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
    },
    /// An estimate with its confidence interval per row (lift per segment).
    Interval {
        title: String,
        rows: Vec<IntervalRow>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        unit: Option<String>,
    },
    /// Counts from a row label to a column label (migration between segments).
    Matrix {
        title: String,
        rows: Vec<String>,
        columns: Vec<String>,
        values: Vec<Vec<f64>>,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct IntervalRow {
    pub label: String,
    pub estimate: f64,
    pub low: f64,
    pub high: f64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Table {
    pub title: String,
    pub columns: Vec<String>,
    /// Cells as JSON values (numbers stay numbers for the UI to format).
    pub rows: Vec<Vec<Value>>,
}

impl Report {
    pub fn new(kind: &str, title: impl Into<String>) -> Self {
        Report {
            kind: kind.to_string(),
            title: title.into(),
            ..Report::default()
        }
    }

    pub fn to_json(&self) -> Value {
        serde_json::to_value(self).expect("reports serialize")
    }

    /// The report as Markdown: summary, then every table (charts appear as tables too).
    pub fn to_markdown(&self) -> String {
        let mut out = format!("## {}\n\n", self.title);
        for line in &self.summary {
            let _ = writeln!(out, "- {line}");
        }
        if !self.summary.is_empty() {
            out.push('\n');
        }
        for chart in &self.charts {
            out.push_str(&chart_table(chart).to_markdown());
        }
        for table in &self.tables {
            out.push_str(&table.to_markdown());
        }
        out
    }
}

impl Table {
    pub fn to_markdown(&self) -> String {
        let mut out = format!("### {}\n\n| {} |\n|", self.title, self.columns.join(" | "));
        for _ in &self.columns {
            out.push_str(" --- |");
        }
        out.push('\n');
        for row in &self.rows {
            let cells: Vec<String> = row.iter().map(cell).collect();
            let _ = writeln!(out, "| {} |", cells.join(" | "));
        }
        out.push('\n');
        out
    }
}

fn cell(value: &Value) -> String {
    match value {
        Value::String(s) => s.replace('|', "\\|"),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => format_number(f),
            _ => n.to_string(),
        },
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// Up to four significant decimals, without trailing zeros.
pub fn format_number(value: f64) -> String {
    if !value.is_finite() {
        return "n/a".into();
    }
    let text = format!("{value:.4}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn chart_table(chart: &Chart) -> Table {
    match chart {
        Chart::Bar {
            title,
            labels,
            values,
            unit,
        } => Table {
            title: title.clone(),
            columns: vec!["".into(), unit.clone().unwrap_or_else(|| "value".into())],
            rows: labels
                .iter()
                .zip(values)
                .map(|(l, v)| vec![Value::from(l.clone()), Value::from(*v)])
                .collect(),
        },
        Chart::Interval { title, rows, .. } => Table {
            title: title.clone(),
            columns: vec!["".into(), "estimate".into(), "low".into(), "high".into()],
            rows: rows
                .iter()
                .map(|r| {
                    vec![
                        Value::from(r.label.clone()),
                        Value::from(r.estimate),
                        Value::from(r.low),
                        Value::from(r.high),
                    ]
                })
                .collect(),
        },
        Chart::Matrix {
            title,
            rows,
            columns,
            values,
        } => {
            let mut header = vec!["from \\ to".to_string()];
            header.extend(columns.iter().cloned());
            Table {
                title: title.clone(),
                columns: header,
                rows: rows
                    .iter()
                    .zip(values)
                    .map(|(label, counts)| {
                        let mut row = vec![Value::from(label.clone())];
                        row.extend(counts.iter().map(|c| Value::from(*c)));
                        row
                    })
                    .collect(),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_markdown_tables() {
        let mut report = Report::new("segment.profile", "Segments");
        report.summary.push("3 segments".into());
        report.charts.push(Chart::Bar {
            title: "Size".into(),
            labels: vec!["A".into(), "B".into()],
            values: vec![10.0, 2.5],
            unit: Some("customers".into()),
        });
        let md = report.to_markdown();
        assert!(md.contains("## Segments"));
        assert!(md.contains("| A | 10 |"), "{md}");
        assert!(md.contains("| B | 2.5 |"), "{md}");
    }
}
