//! `segment.compare`: who moved between segments since the last successful run of the same
//! pipeline — a migration matrix, each segment's share change, the adjusted Rand index, and
//! thresholds that warn or fail the step.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use datafusion::prelude::ParquetReadOptions;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::input::{self, Loaded};
use super::rand_index::adjusted_rand_index;
use crate::data::{Column, MAIN_DATASET};
use crate::report::{Chart, Report, Table};
use crate::spec::deserialize::FieldError;
use crate::spec::yaml_path::YamlPath;
use crate::steps::{CheckContext, Kind, StepContext, StepError, StepOutput};

pub struct SegmentCompare;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct CompareConfig {
    /// The table whose segments are compared: a step in `needs` (its main dataset) or
    /// `step.name`. The same step's dataset in the last successful run is the baseline.
    /// Default: the only step in `needs`.
    #[serde(default)]
    pub input: Option<String>,
    /// The column identifying the customer.
    pub customer: String,
    /// The column holding the segment (default `segment`).
    #[serde(default = "default_segment")]
    pub segment: String,
    /// Limits that warn or fail the step.
    #[serde(default)]
    pub thresholds: Thresholds,
}

#[derive(Debug, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Thresholds {
    /// Share of the customers present in both runs whose segment changed (0.3 = 30%): warn or
    /// fail above it.
    #[serde(default)]
    pub moved: Option<Bound>,
    /// The largest change of one segment's share of customers, in share points (0.05 = 5
    /// points): warn or fail above it.
    #[serde(default)]
    pub share_change: Option<Bound>,
    /// Adjusted Rand index between the two assignments: warn or fail below it.
    #[serde(default)]
    pub ari: Option<Bound>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Bound {
    /// Past this value the step logs a warning and lists it in its `warnings` output.
    #[serde(default)]
    pub warn: Option<f64>,
    /// Past this value the step fails (its report and dataset are still written).
    #[serde(default)]
    pub fail: Option<f64>,
}

fn default_segment() -> String {
    "segment".into()
}

/// Labels for customers present in one run only.
const NEW: &str = "(new)";
const GONE: &str = "(gone)";

#[async_trait]
impl Kind for SegmentCompare {
    const NAME: &'static str = "segment.compare";
    const DESCRIPTION: &'static str = "Compares segments with the last successful run: migration matrix, share changes, adjusted Rand index, thresholds.";
    const OUTPUTS: &'static [&'static str] = &[
        "compared",
        "previous_run",
        "customers",
        "moved",
        "moved_share",
        "max_share_change",
        "ari",
        "new",
        "gone",
        "warnings",
    ];
    type Config = CompareConfig;

    fn check(&self, config: &CompareConfig, ctx: &CheckContext<'_>) -> Vec<FieldError> {
        let root = YamlPath::root();
        let mut errors = input::check_input(config.input.as_deref(), ctx);
        let columns = ctx.columns_of(config.input.as_deref());
        errors.extend(input::check_column(
            root.key("customer"),
            &config.customer,
            columns,
        ));
        errors.extend(input::check_column(
            root.key("segment"),
            &config.segment,
            columns,
        ));
        let t = &config.thresholds;
        for (key, bound) in [
            ("moved", t.moved),
            ("share_change", t.share_change),
            ("ari", t.ari),
        ] {
            let Some(bound) = bound else { continue };
            let path = root.key("thresholds").key(key);
            let range = if key == "ari" { -1.0..=1.0 } else { 0.0..=1.0 };
            for (level, value) in [("warn", bound.warn), ("fail", bound.fail)] {
                if let Some(v) = value
                    && !range.contains(&v)
                {
                    errors.push(input::error(
                        path.key(level),
                        format!("{v} is out of range"),
                        Some(format!(
                            "`{key}` is between {} and {}",
                            range.start(),
                            range.end()
                        )),
                    ));
                }
            }
        }
        errors
    }

    fn output_columns(
        &self,
        config: &CompareConfig,
        ctx: &CheckContext<'_>,
    ) -> Option<Vec<Column>> {
        ctx.columns_of(config.input.as_deref())?;
        Some(
            [&config.customer, "previous_segment", "segment", "status"]
                .iter()
                .map(|name| Column {
                    name: name.to_string(),
                    data_type: "Utf8".into(),
                })
                .collect(),
        )
    }

    async fn run(&self, config: CompareConfig, ctx: &StepContext) -> Result<StepOutput, StepError> {
        let table = input::input_table(config.input.as_deref(), ctx)?;
        let required = [
            ("customer", config.customer.as_str()),
            ("segment", config.segment.as_str()),
        ];
        let current = input::load(ctx, &table, &required).await?;
        let now = pairs(&current, &config)?;
        check_unique(&now, "this run")?;

        let (step, name) = table
            .split_once('.')
            .unwrap_or((table.as_str(), MAIN_DATASET));
        let previous_run = ctx.last_successful_run(&ctx.pipeline)?;
        let baseline = match &previous_run {
            Some(run) => ctx.dataset_of_run(&run.id, step, name)?.map(|d| (run, d)),
            None => None,
        };
        let Some((run, (_, path))) = baseline else {
            let note = match previous_run {
                None => format!(
                    "This is the first successful run of `{}`: there is nothing to compare with yet. The next run will be compared with this one.",
                    ctx.pipeline
                ),
                Some(run) => format!(
                    "The last successful run ({}) has no dataset `{table}`: there is nothing to compare with yet.",
                    run.id
                ),
            };
            ctx.info(&note);
            let rows: Vec<Row> = now
                .iter()
                .map(|(c, s)| Row {
                    customer: c.clone(),
                    previous: None,
                    current: Some(s.clone()),
                })
                .collect();
            write_rows(ctx, &config, &rows)?;
            let mut report =
                Report::new(SegmentCompare::NAME, "Segment changes since the last run");
            report.summary.push(note);
            ctx.write_report(&report)?;
            return Ok(StepOutput::default()
                .with("compared", false)
                .with("previous_run", Value::Null)
                .with("customers", now.len())
                .with("moved", 0)
                .with("moved_share", Value::Null)
                .with("max_share_change", Value::Null)
                .with("ari", Value::Null)
                .with("new", now.len())
                .with("gone", 0)
                .with("warnings", Value::Array(Vec::new())));
        };

        let session = ctx.session().await?;
        let frame = session
            .read_parquet(
                path.to_string_lossy().as_ref(),
                ParquetReadOptions::default(),
            )
            .await
            .map_err(|e| {
                StepError::permanent(format!(
                    "cannot read `{table}` of the last successful run {}: {e}",
                    run.id
                ))
            })?;
        let schema = Arc::new(frame.schema().as_arrow().clone());
        input::check_columns(&format!("{table} (run {})", run.id), &schema, &required)?;
        let previous = Loaded {
            table: table.clone(),
            schema,
            batches: frame.collect().await?,
        };
        let before = pairs(&previous, &config)?;
        check_unique(&before, "the last successful run")?;

        let comparison = Comparison::build(&before, &now);
        write_rows(ctx, &config, &comparison.rows)?;
        let verdict = comparison.judge(&config.thresholds);
        ctx.write_report(&comparison.report(&run.id, &verdict))?;
        for warning in &verdict.warnings {
            ctx.warn(warning);
        }
        if !verdict.failures.is_empty() {
            return Err(StepError::permanent(format!(
                "segments changed too much since run {}: {}",
                run.id,
                verdict.failures.join("; ")
            )));
        }
        ctx.info(&format!(
            "compared with run {}: {} of {} customers changed segment",
            run.id, comparison.moved, comparison.both
        ));
        Ok(StepOutput::default()
            .with("compared", true)
            .with("previous_run", run.id.clone())
            .with("customers", now.len())
            .with("moved", comparison.moved)
            .with(
                "moved_share",
                comparison.moved_share().map_or(Value::Null, Value::from),
            )
            .with("max_share_change", comparison.max_share_change())
            .with("ari", comparison.ari.map_or(Value::Null, Value::from))
            .with("new", comparison.new)
            .with("gone", comparison.gone)
            .with(
                "warnings",
                Value::Array(verdict.warnings.into_iter().map(Value::from).collect()),
            ))
    }
}

/// (customer, segment) in row order; customers without an id cannot be followed and are refused.
fn pairs(
    loaded: &Loaded,
    config: &CompareConfig,
) -> Result<Vec<(String, Option<String>)>, StepError> {
    let customers = loaded.strings(&config.customer)?;
    let segments = loaded.strings(&config.segment)?;
    if let Some(i) = customers.iter().position(Option::is_none) {
        return Err(StepError::permanent(format!(
            "`{}` has no {} in row {}; customers are followed between runs by it",
            loaded.table,
            config.customer,
            i + 1
        )));
    }
    Ok(customers.into_iter().flatten().zip(segments).collect())
}

fn check_unique(pairs: &[(String, Option<String>)], which: &str) -> Result<(), StepError> {
    let mut seen = std::collections::HashSet::with_capacity(pairs.len());
    for (i, (customer, _)) in pairs.iter().enumerate() {
        if !seen.insert(customer.as_str()) {
            return Err(StepError::permanent(format!(
                "in {which}, row {} repeats a customer id: segments can only be compared with one row per customer (dedupe first)",
                i + 1
            )));
        }
    }
    Ok(())
}

/// One customer of either run.
struct Row {
    customer: String,
    /// `None`: not in the previous run; `Some(segment)`: in it (the segment may be empty).
    previous: Option<Option<String>>,
    /// `None`: not in this run.
    current: Option<Option<String>>,
}

impl Row {
    fn status(&self) -> &'static str {
        match (&self.previous, &self.current) {
            (None, _) => "new",
            (Some(_), None) => "gone",
            (Some(p), Some(c)) if p == c => "stayed",
            _ => "moved",
        }
    }
}

fn write_rows(ctx: &StepContext, config: &CompareConfig, rows: &[Row]) -> Result<(), StepError> {
    let schema = Arc::new(Schema::new(vec![
        Field::new(&config.customer, DataType::Utf8, false),
        Field::new("previous_segment", DataType::Utf8, true),
        Field::new("segment", DataType::Utf8, true),
        Field::new("status", DataType::Utf8, false),
    ]));
    let columns: Vec<ArrayRef> = vec![
        Arc::new(StringArray::from_iter_values(
            rows.iter().map(|r| r.customer.as_str()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.previous.clone().flatten()),
        )),
        Arc::new(StringArray::from_iter(
            rows.iter().map(|r| r.current.clone().flatten()),
        )),
        Arc::new(StringArray::from_iter_values(rows.iter().map(Row::status))),
    ];
    let batch = RecordBatch::try_new(schema.clone(), columns)?;
    ctx.write_dataset(MAIN_DATASET, schema, &[batch])?;
    Ok(())
}

fn label(segment: &Option<String>) -> String {
    segment.clone().unwrap_or_else(|| "(no segment)".into())
}

struct Comparison {
    rows: Vec<Row>,
    /// Customers in both runs, and how many of them changed segment.
    both: usize,
    moved: usize,
    new: usize,
    gone: usize,
    ari: Option<f64>,
    /// Segment -> (customers before, customers now).
    sizes: BTreeMap<String, (u64, u64)>,
    before_total: usize,
    now_total: usize,
    /// (from, to) -> customers; `(new)` and `(gone)` for customers in one run only.
    migration: BTreeMap<(String, String), u64>,
}

impl Comparison {
    fn build(before: &[(String, Option<String>)], now: &[(String, Option<String>)]) -> Self {
        let previous: HashMap<&str, &Option<String>> =
            before.iter().map(|(c, s)| (c.as_str(), s)).collect();
        let mut rows = Vec::with_capacity(now.len());
        let mut sizes: BTreeMap<String, (u64, u64)> = BTreeMap::new();
        let mut migration: BTreeMap<(String, String), u64> = BTreeMap::new();
        let (mut both, mut moved, mut new) = (0, 0, 0);
        let mut pairs_a: Vec<String> = Vec::new();
        let mut pairs_b: Vec<String> = Vec::new();
        let present: std::collections::HashSet<&str> =
            now.iter().map(|(c, _)| c.as_str()).collect();
        for (customer, segment) in before {
            sizes.entry(label(segment)).or_default().0 += 1;
            if !present.contains(customer.as_str()) {
                *migration.entry((label(segment), GONE.into())).or_default() += 1;
            }
        }
        for (customer, segment) in now {
            sizes.entry(label(segment)).or_default().1 += 1;
            let before = previous.get(customer.as_str()).copied();
            let from = match before {
                Some(b) => {
                    both += 1;
                    if b != segment {
                        moved += 1;
                    }
                    pairs_a.push(label(b));
                    pairs_b.push(label(segment));
                    label(b)
                }
                None => {
                    new += 1;
                    NEW.to_string()
                }
            };
            *migration.entry((from, label(segment))).or_default() += 1;
            rows.push(Row {
                customer: customer.clone(),
                previous: before.cloned(),
                current: Some(segment.clone()),
            });
        }
        let mut gone = 0;
        for (customer, segment) in before {
            if !present.contains(customer.as_str()) {
                gone += 1;
                rows.push(Row {
                    customer: customer.clone(),
                    previous: Some(segment.clone()),
                    current: None,
                });
            }
        }
        let a: Vec<&str> = pairs_a.iter().map(String::as_str).collect();
        let b: Vec<&str> = pairs_b.iter().map(String::as_str).collect();
        Comparison {
            rows,
            both,
            moved,
            new,
            gone,
            ari: adjusted_rand_index(&a, &b),
            sizes,
            before_total: before.len(),
            now_total: now.len(),
            migration,
        }
    }

    fn moved_share(&self) -> Option<f64> {
        (self.both > 0).then(|| self.moved as f64 / self.both as f64)
    }

    fn share(count: u64, total: usize) -> f64 {
        if total == 0 {
            0.0
        } else {
            count as f64 / total as f64
        }
    }

    /// Per segment, largest now first: (name, before, share before, now, share now, change).
    fn segment_rows(&self) -> Vec<(String, u64, f64, u64, f64, f64)> {
        let mut out: Vec<_> = self
            .sizes
            .iter()
            .map(|(name, (b, n))| {
                let (sb, sn) = (
                    Self::share(*b, self.before_total),
                    Self::share(*n, self.now_total),
                );
                (name.clone(), *b, sb, *n, sn, sn - sb)
            })
            .collect();
        out.sort_by(|x, y| y.3.cmp(&x.3).then(y.1.cmp(&x.1)).then(x.0.cmp(&y.0)));
        out
    }

    fn max_share_change(&self) -> f64 {
        self.segment_rows()
            .iter()
            .map(|r| r.5.abs())
            .fold(0.0, f64::max)
    }

    fn judge(&self, thresholds: &Thresholds) -> Verdict {
        let mut verdict = Verdict::default();
        let pct = |v: f64| format!("{:.1}%", 100.0 * v);
        if let (Some(bound), Some(share)) = (thresholds.moved, self.moved_share()) {
            verdict.check_above(bound, share, |limit| {
                format!(
                    "more than {} of customers changed segment ({} did: {} of {})",
                    pct(limit),
                    pct(share),
                    self.moved,
                    self.both
                )
            });
        }
        if let Some(bound) = thresholds.share_change {
            let rows = self.segment_rows();
            if let Some(worst) = rows.iter().max_by(|a, b| a.5.abs().total_cmp(&b.5.abs())) {
                verdict.check_above(bound, worst.5.abs(), |limit| {
                    format!(
                        "segment {} changed its share by more than {:.1} points ({} to {})",
                        worst.0,
                        100.0 * limit,
                        pct(worst.2),
                        pct(worst.4)
                    )
                });
            }
        }
        if let (Some(bound), Some(ari)) = (thresholds.ari, self.ari) {
            for (level, limit) in [(true, bound.fail), (false, bound.warn)] {
                if let Some(limit) = limit
                    && ari < limit
                {
                    let message = format!("the adjusted Rand index {ari:.3} is below {limit}");
                    if level {
                        verdict.failures.push(message);
                    } else {
                        verdict.warnings.push(message);
                    }
                    break;
                }
            }
        }
        verdict
    }

    fn report(&self, previous_run: &str, verdict: &Verdict) -> Report {
        let mut report = Report::new(SegmentCompare::NAME, "Segment changes since the last run");
        report.summary.push(format!(
            "Compared with run {previous_run}: {} customers in both runs, {} changed segment ({}).",
            self.both,
            self.moved,
            self.moved_share()
                .map_or("n/a".into(), |s| format!("{:.1}%", 100.0 * s))
        ));
        report.summary.push(format!(
            "{} new customers, {} gone; adjusted Rand index {} (1 = the same grouping).",
            self.new,
            self.gone,
            self.ari.map_or("n/a".into(), |a| format!("{a:.3}"))
        ));
        for failure in &verdict.failures {
            report.summary.push(format!("FAILED: {failure}."));
        }
        for warning in &verdict.warnings {
            report.summary.push(format!("Warning: {warning}."));
        }
        let segments: Vec<String> = self.segment_rows().into_iter().map(|r| r.0).collect();
        let mut from: Vec<String> = segments.clone();
        from.push(NEW.into());
        let mut to = segments;
        to.push(GONE.into());
        report.charts.push(Chart::Matrix {
            title: "Customers from segment (previous run) to segment (this run)".into(),
            values: from
                .iter()
                .map(|f| {
                    to.iter()
                        .map(|t| {
                            self.migration
                                .get(&(f.clone(), t.clone()))
                                .copied()
                                .unwrap_or(0) as f64
                        })
                        .collect()
                })
                .collect(),
            rows: from,
            columns: to,
        });
        let rows = self.segment_rows();
        report.charts.push(Chart::Bar {
            title: "Change of share per segment".into(),
            labels: rows.iter().map(|r| r.0.clone()).collect(),
            values: rows.iter().map(|r| 100.0 * r.5).collect(),
            unit: Some("share points".into()),
        });
        report.tables.push(Table {
            title: "Segment sizes".into(),
            columns: [
                "segment",
                "previous customers",
                "previous share",
                "customers",
                "share",
                "change (points)",
            ]
            .map(String::from)
            .to_vec(),
            rows: rows
                .iter()
                .map(|r| {
                    vec![
                        json!(r.0),
                        json!(r.1),
                        json!(r.2),
                        json!(r.3),
                        json!(r.4),
                        json!(100.0 * r.5),
                    ]
                })
                .collect(),
        });
        report
    }
}

#[derive(Default)]
struct Verdict {
    warnings: Vec<String>,
    failures: Vec<String>,
}

impl Verdict {
    /// Fails above `fail`, else warns above `warn`.
    fn check_above(&mut self, bound: Bound, value: f64, message: impl Fn(f64) -> String) {
        if let Some(limit) = bound.fail
            && value > limit
        {
            self.failures.push(message(limit));
        } else if let Some(limit) = bound.warn
            && value > limit
        {
            self.warnings.push(message(limit));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(list: &[(&str, &str)]) -> Vec<(String, Option<String>)> {
        list.iter()
            .map(|(c, s)| (c.to_string(), Some(s.to_string())))
            .collect()
    }

    #[test]
    fn counts_moves_new_and_gone_customers() {
        let before = pairs(&[("1", "A"), ("2", "A"), ("3", "B"), ("4", "B")]);
        let now = pairs(&[("1", "A"), ("2", "B"), ("3", "B"), ("5", "A")]);
        let c = Comparison::build(&before, &now);
        assert_eq!((c.both, c.moved, c.new, c.gone), (3, 1, 1, 1));
        assert_eq!(c.migration[&("A".to_string(), "B".to_string())], 1);
        assert_eq!(c.migration[&(NEW.to_string(), "A".to_string())], 1);
        assert_eq!(c.migration[&("B".to_string(), GONE.to_string())], 1);
        let statuses: Vec<&str> = c.rows.iter().map(Row::status).collect();
        assert_eq!(statuses, ["stayed", "moved", "stayed", "new", "gone"]);
        // A: 2/4 before, 2/4 now; B: 2/4 before, 2/4 now.
        assert_eq!(c.max_share_change(), 0.0);
    }

    #[test]
    fn thresholds_warn_then_fail() {
        let before = pairs(&[("1", "A"), ("2", "A"), ("3", "A"), ("4", "B")]);
        let now = pairs(&[("1", "B"), ("2", "B"), ("3", "A"), ("4", "B")]);
        let c = Comparison::build(&before, &now);
        let warn_only = Thresholds {
            moved: Some(Bound {
                warn: Some(0.3),
                fail: Some(0.6),
            }),
            ..Thresholds::default()
        };
        let verdict = c.judge(&warn_only);
        assert_eq!(verdict.failures.len(), 0);
        assert_eq!(
            verdict.warnings,
            ["more than 30.0% of customers changed segment (50.0% did: 2 of 4)"]
        );
        let failing = Thresholds {
            moved: Some(Bound {
                warn: None,
                fail: Some(0.3),
            }),
            share_change: Some(Bound {
                warn: Some(0.2),
                fail: None,
            }),
            ari: Some(Bound {
                warn: None,
                fail: Some(0.5),
            }),
        };
        let verdict = c.judge(&failing);
        assert_eq!(verdict.failures.len(), 2, "{:?}", verdict.failures);
        assert!(verdict.warnings[0].contains("changed its share by more than 20.0 points"));
    }
}
