//! What `validate.ab` hands on: the results dataset (one row per segment, metric and treatment
//! group) and the report (lift with its interval per segment, a table per segment, the
//! verdicts). Undefined numbers are null with the reason beside them, never NaN.

use std::sync::Arc;

use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use datafusion::arrow::error::ArrowError;
use serde_json::{Value, json};

use super::analysis::{Analysis, Comparison, Population, Settings};
use super::gates::{Judgement, OnFail, Verdict, p_phrase};
use super::outcomes::MetricType;
use crate::data::Column;
use crate::report::{Chart, IntervalRow, Report, Table, format_number};
use crate::stats::finite;

/// What the report says besides the analysis.
pub struct ReportContext<'a> {
    pub origin: &'a str,
    pub customers: usize,
    pub outcome_rows: u64,
    pub unmatched_rows: u64,
    pub settings: &'a Settings,
    pub srm_threshold: f64,
    pub gate_metric: usize,
    pub gates_set: bool,
    pub passed: bool,
    pub on_fail: OnFail,
}

/// A number for JSON: null unless finite.
fn num(value: Option<f64>) -> Value {
    value.and_then(finite).map_or(Value::Null, |x| json!(x))
}

fn ok<T: Copy>(value: &Result<T, crate::stats::Undefined>) -> Option<T> {
    value.as_ref().ok().copied()
}

/// Why the numbers of a comparison are missing, for the note column.
fn note(comparison: &Comparison) -> String {
    let mut notes: Vec<String> = Vec::new();
    if let Some(why) = &comparison.insufficient {
        notes.push(format!("insufficient data: {why}"));
    }
    for (what, result) in [
        ("relative lift", comparison.relative.as_ref().err()),
        ("power", comparison.power.as_ref().err()),
        ("MDE", comparison.mde.as_ref().err()),
    ] {
        if let Some(why) = result {
            let line = format!("no {what}: {why}");
            if !notes.iter().any(|n| n.ends_with(&why.to_string())) {
                notes.push(line);
            }
        }
    }
    notes.join("; ")
}

pub fn results_dataset(
    analysis: &Analysis,
    judgements: &[Judgement],
    gate_metric: usize,
) -> Result<RecordBatch, ArrowError> {
    let mut segment = Vec::new();
    let mut metric = Vec::new();
    let mut metric_type = Vec::new();
    let mut group = Vec::new();
    let mut control_n = Vec::new();
    let mut group_n = Vec::new();
    let mut floats: [Vec<Option<f64>>; 14] = Default::default();
    let mut verdict = Vec::new();
    let mut notes = Vec::new();
    for (population, judgement) in analysis.populations.iter().zip(judgements) {
        let srm_p = match &population.srm {
            Some(Ok(test)) => Some(test.p_value),
            _ => None,
        };
        for (m, result) in population.metrics.iter().enumerate() {
            let control = &result.groups[analysis.groups.control];
            for (c, comparison) in result.comparisons.iter().enumerate() {
                let treatment = &result.groups[comparison.group];
                segment.push(population.segment.clone());
                metric.push(analysis.metrics[m].0.clone());
                metric_type.push(analysis.metrics[m].1.name());
                group.push(analysis.groups.names[comparison.group].clone());
                control_n.push(control.n);
                group_n.push(treatment.n);
                let absolute = ok(&comparison.absolute);
                let relative = ok(&comparison.relative);
                let mde = ok(&comparison.mde);
                let values = [
                    (control.n > 0).then_some(control.mean),
                    (treatment.n > 0).then_some(treatment.mean),
                    absolute.map(|i| i.estimate),
                    absolute.map(|i| i.low),
                    absolute.map(|i| i.high),
                    relative.map(|i| i.estimate),
                    relative.map(|i| i.low),
                    relative.map(|i| i.high),
                    ok(&comparison.p_value),
                    comparison.p_adjusted,
                    ok(&comparison.power),
                    mde.map(|m| m.absolute),
                    mde.and_then(|m| m.relative),
                    srm_p,
                ];
                for (column, value) in floats.iter_mut().zip(values) {
                    column.push(value.and_then(finite));
                }
                verdict.push(
                    (m == gate_metric)
                        .then(|| judgement.per_group.get(c).map(|v| v.as_str()))
                        .flatten(),
                );
                notes.push(note(comparison));
            }
        }
    }
    let schema = results_schema();
    let mut columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from(segment)),
        Arc::new(StringArray::from(metric)),
        Arc::new(StringArray::from(metric_type)),
        Arc::new(StringArray::from(group)),
        Arc::new(UInt64Array::from(control_n)),
        Arc::new(UInt64Array::from(group_n)),
    ];
    for column in floats {
        columns.push(Arc::new(Float64Array::from(column)));
    }
    columns.push(Arc::new(StringArray::from(verdict)));
    columns.push(Arc::new(StringArray::from(notes)));
    RecordBatch::try_new(schema, columns)
}

const FLOAT_COLUMNS: [&str; 14] = [
    "control_value",
    "group_value",
    "abs_lift",
    "abs_lift_low",
    "abs_lift_high",
    "rel_lift",
    "rel_lift_low",
    "rel_lift_high",
    "p_value",
    "p_adjusted",
    "power",
    "mde_abs",
    "mde_rel",
    "srm_p",
];

/// One row per segment (null: overall), metric and treatment group.
fn results_schema() -> SchemaRef {
    let mut fields = vec![
        Field::new("segment", DataType::Utf8, true),
        Field::new("metric", DataType::Utf8, false),
        Field::new("metric_type", DataType::Utf8, false),
        Field::new("group", DataType::Utf8, false),
        Field::new("control_customers", DataType::UInt64, false),
        Field::new("group_customers", DataType::UInt64, false),
    ];
    fields.extend(
        FLOAT_COLUMNS
            .iter()
            .map(|n| Field::new(*n, DataType::Float64, true)),
    );
    fields.push(Field::new("verdict", DataType::Utf8, true));
    fields.push(Field::new("note", DataType::Utf8, false));
    Arc::new(Schema::new(fields))
}

/// The results dataset's columns, for `segflow validate`.
pub fn results_columns() -> Vec<Column> {
    crate::data::columns_of(&results_schema())
}

pub fn report(
    analysis: &Analysis,
    judgements: &[Judgement],
    context: &ReportContext<'_>,
) -> Report {
    let (gate_name, _) = &analysis.metrics[context.gate_metric];
    let mut report = Report::new("validate.ab", format!("A/B evaluation: {gate_name}"));
    let confidence = format_number((1.0 - context.settings.alpha) * 100.0);
    summary(&mut report, analysis, judgements, context);

    let control_name = &analysis.groups.names[analysis.groups.control];
    for (m, (metric, _)) in analysis.metrics.iter().enumerate() {
        let comparisons = analysis.populations[0].metrics[m].comparisons.len();
        for c in 0..comparisons {
            let group = analysis.populations[0].metrics[m].comparisons[c].group;
            let rows: Vec<IntervalRow> = analysis
                .populations
                .iter()
                .filter_map(|p| {
                    let lift = p.metrics[m].comparisons[c].relative.as_ref().ok()?;
                    Some(IntervalRow {
                        label: p.label().to_string(),
                        estimate: finite(lift.estimate)?,
                        low: finite(lift.low)?,
                        high: finite(lift.high)?,
                    })
                })
                .collect();
            if rows.is_empty() {
                continue;
            }
            report.charts.push(Chart::Interval {
                title: format!(
                    "Relative lift in {metric}, {} vs {control_name} ({confidence}% interval)",
                    analysis.groups.names[group]
                ),
                rows,
                unit: Some("relative lift".into()),
            });
        }
    }

    report.tables.push(Table {
        title: format!("Verdicts on {gate_name}"),
        columns: vec![
            "segment".into(),
            "customers".into(),
            "verdict".into(),
            "reasons".into(),
        ],
        rows: analysis
            .populations
            .iter()
            .zip(judgements)
            .map(|(p, j)| {
                vec![
                    json!(p.label()),
                    json!(p.assigned.iter().sum::<u64>()),
                    json!(j.verdict.as_str()),
                    json!(j.reasons.join("; ")),
                ]
            })
            .collect(),
    });
    for population in &analysis.populations {
        report
            .tables
            .push(population_table(analysis, population, context));
    }
    report.data = data(analysis, judgements, context);
    report
}

fn summary(
    report: &mut Report,
    analysis: &Analysis,
    judgements: &[Judgement],
    context: &ReportContext<'_>,
) {
    let lines = &mut report.summary;
    if !context.gates_set {
        lines.push("No gates set (`require`): the numbers below are for reading.".into());
    } else if context.passed {
        lines.push("Gates passed.".into());
    } else {
        let failed: Vec<&str> = judgements
            .iter()
            .filter(|j| j.verdict == Verdict::Fail)
            .map(|j| j.label())
            .collect();
        let action = match context.on_fail {
            OnFail::Fail => "the step fails",
            OnFail::Warn => "on_fail is warn, so the pipeline goes on",
        };
        if failed.is_empty() {
            lines.push(format!(
                "Gates not passed: nothing had enough data to judge; {action}."
            ));
        } else {
            lines.push(format!("Gates failed in: {}; {action}.", failed.join(", ")));
        }
    }
    let insufficient: Vec<&str> = judgements
        .iter()
        .filter(|j| j.verdict == Verdict::Insufficient)
        .map(|j| j.label())
        .collect();
    if !insufficient.is_empty() {
        lines.push(format!(
            "Insufficient data in: {}.",
            insufficient.join(", ")
        ));
    }
    lines.push(format!(
        "Assignment from {}: {} customers in groups {}.",
        context.origin,
        context.customers,
        analysis.groups.names.join(", ")
    ));
    let matched = context.outcome_rows - context.unmatched_rows;
    let mut outcome_line = format!(
        "{matched} of {} outcome rows matched an assigned customer",
        context.outcome_rows
    );
    if context.unmatched_rows > 0 {
        outcome_line.push_str(&format!(
            "; {} (customers outside the assignment) ignored",
            context.unmatched_rows
        ));
    }
    outcome_line.push_str(if context.settings.missing_as_zero {
        "; customers without an outcome count as 0."
    } else {
        "; customers without an outcome are left out."
    });
    lines.push(outcome_line);
    let srm_failed: Vec<&str> = analysis
        .populations
        .iter()
        .filter(|p| matches!(&p.srm, Some(Ok(t)) if !t.ok(context.srm_threshold)))
        .map(|p| p.label())
        .collect();
    match (&analysis.groups.weights, srm_failed.is_empty()) {
        (None, _) => lines.push("Sample ratio not checked: the expected split is unknown.".into()),
        (Some(_), true) => lines.push("No sample-ratio mismatch.".into()),
        (Some(_), false) => lines.push(format!(
            "Sample-ratio mismatch (p < {}) in: {}; the results there are not trustworthy.",
            format_number(context.srm_threshold),
            srm_failed.join(", ")
        )),
    }
    let tests: Vec<String> = analysis
        .metrics
        .iter()
        .map(|(name, t)| match t {
            MetricType::Proportion => format!("{name}: conversion rate, two-proportion z-test"),
            MetricType::Mean => format!("{name}: mean, Welch's t-test"),
        })
        .collect();
    lines.push(format!("Metrics: {}.", tests.join("; ")));
    lines.push(format!(
        "Intervals at {}%; segment p-values adjusted with {}; power at the observed effect; MDE at {}% power.",
        format_number((1.0 - context.settings.alpha) * 100.0),
        context.settings.correction.name(),
        format_number(context.settings.power * 100.0)
    ));
}

fn population_table(
    analysis: &Analysis,
    population: &Population,
    context: &ReportContext<'_>,
) -> Table {
    let mut rows = Vec::new();
    let control = analysis.groups.control;
    for (m, result) in population.metrics.iter().enumerate() {
        let (metric, metric_type) = &analysis.metrics[m];
        let value_kind = match metric_type {
            MetricType::Proportion => "rate",
            MetricType::Mean => "mean",
        };
        let control_summary = &result.groups[control];
        let mut control_row = vec![
            json!(metric),
            json!(analysis.groups.names[control]),
            json!(control_summary.n),
            num((control_summary.n > 0).then_some(control_summary.mean)),
        ];
        control_row.extend(std::iter::repeat_n(Value::Null, 11));
        control_row.push(json!(format!("control ({value_kind})")));
        rows.push(control_row);
        for comparison in &result.comparisons {
            let summary = &result.groups[comparison.group];
            let absolute = ok(&comparison.absolute);
            let relative = ok(&comparison.relative);
            let mde = ok(&comparison.mde);
            let mut note = note(comparison);
            if let Some(p) = comparison.p_adjusted
                && population.segment.is_some()
                && p <= context.settings.alpha
            {
                if !note.is_empty() {
                    note.push_str("; ");
                }
                note.push_str(&format!("significant ({})", p_phrase(p)));
            }
            rows.push(vec![
                json!(metric),
                json!(analysis.groups.names[comparison.group]),
                json!(summary.n),
                num((summary.n > 0).then_some(summary.mean)),
                num(absolute.map(|i| i.estimate)),
                num(absolute.map(|i| i.low)),
                num(absolute.map(|i| i.high)),
                num(relative.map(|i| i.estimate)),
                num(relative.map(|i| i.low)),
                num(relative.map(|i| i.high)),
                num(ok(&comparison.p_value)),
                num(comparison.p_adjusted),
                num(ok(&comparison.power)),
                num(mde.map(|m| m.absolute)),
                num(mde.and_then(|m| m.relative)),
                json!(note),
            ]);
        }
    }
    let srm = match &population.srm {
        Some(Ok(test)) => format!(", sample ratio {}", p_phrase(test.p_value)),
        Some(Err(why)) => format!(", sample ratio not judged ({why})"),
        None => String::new(),
    };
    Table {
        title: format!(
            "{}: {} customers{srm}",
            population.label(),
            population.assigned.iter().sum::<u64>()
        ),
        columns: [
            "metric",
            "group",
            "customers",
            "value",
            "abs lift",
            "abs low",
            "abs high",
            "rel lift",
            "rel low",
            "rel high",
            "p",
            "p adjusted",
            "power",
            "MDE abs",
            "MDE rel",
            "note",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect(),
        rows,
    }
}

/// Everything, in one JSON shape for the web UI and scripts.
fn data(analysis: &Analysis, judgements: &[Judgement], context: &ReportContext<'_>) -> Value {
    let populations: Vec<Value> = analysis
        .populations
        .iter()
        .zip(judgements)
        .map(|(p, j)| {
            let metrics: Vec<Value> = p
                .metrics
                .iter()
                .enumerate()
                .map(|(m, result)| {
                    let groups: Vec<Value> = result
                        .groups
                        .iter()
                        .enumerate()
                        .map(|(g, s)| {
                            json!({
                                "group": analysis.groups.names[g],
                                "customers": s.n,
                                "value": num((s.n > 0).then_some(s.mean)),
                            })
                        })
                        .collect();
                    let comparisons: Vec<Value> = result
                        .comparisons
                        .iter()
                        .map(|c| {
                            let interval = |i: Option<crate::stats::lift::Interval>| match i {
                                Some(i) => json!({"estimate": num(Some(i.estimate)), "low": num(Some(i.low)), "high": num(Some(i.high))}),
                                None => Value::Null,
                            };
                            json!({
                                "group": analysis.groups.names[c.group],
                                "absolute_lift": interval(ok(&c.absolute)),
                                "relative_lift": interval(ok(&c.relative)),
                                "p_value": num(ok(&c.p_value)),
                                "p_adjusted": num(c.p_adjusted),
                                "power": num(ok(&c.power)),
                                "mde_abs": num(ok(&c.mde).map(|m| m.absolute)),
                                "mde_rel": num(ok(&c.mde).and_then(|m| m.relative)),
                                "insufficient": c.insufficient,
                                "note": note(c),
                            })
                        })
                        .collect();
                    json!({
                        "metric": analysis.metrics[m].0,
                        "type": analysis.metrics[m].1.name(),
                        "groups": groups,
                        "comparisons": comparisons,
                    })
                })
                .collect();
            json!({
                "segment": p.segment,
                "assigned": p.assigned,
                "srm_p": num(match &p.srm { Some(Ok(t)) => Some(t.p_value), _ => None }),
                "verdict": j.verdict.as_str(),
                "reasons": j.reasons,
                "metrics": metrics,
            })
        })
        .collect();
    json!({
        "assignment": context.origin,
        "groups": analysis.groups.names,
        "control": analysis.groups.names[analysis.groups.control],
        "weights": analysis.groups.weights,
        "gate_metric": analysis.metrics[context.gate_metric].0,
        "passed": context.passed,
        "alpha": context.settings.alpha,
        "correction": context.settings.correction.name(),
        "populations": populations,
    })
}
