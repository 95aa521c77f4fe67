//! `clean`: applies cleaning operations in the order written to one upstream dataset.
//!
//! Outputs: the cleaned main dataset; a `rejected` dataset with every row rejected for cause
//! (a missing required value, a value that does not cast, an invalid email), as it arrived, with
//! the `operation` and the `reason`; and row counts per operation. Rows removed by `dedupe`
//! (duplicates) and `filter` (out of scope) are counted as dropped, not rejected.

use std::time::Instant;

use async_trait::async_trait;
use serde_json::Value;

use super::config::{CleanConfig, ClipRule, Operation, Placed};
use super::input::read_all;
use super::table::{OperationStats, Table};
use super::text::TextOperation;
use super::{cast as cast_op, clip, dedupe, email, filter, missing, standardize, text};
use crate::data::{DatasetRef, MAIN_DATASET};
use crate::spec::deserialize::FieldError;
use crate::steps::gather::bad_rows::REJECTED_DATASET;
use crate::steps::{CheckContext, Kind, StepContext, StepError, StepOutput};

pub struct Clean;

#[async_trait]
impl Kind for Clean {
    const NAME: &'static str = "clean";
    const DESCRIPTION: &'static str = "Cleans a dataset: dedupe, drop_missing, fill, cast, trim, lowercase, email, filter, clip, standardize; rejected rows kept with a reason.";
    const OUTPUTS: &'static [&'static str] =
        &["rows_in", "rows", "rejected", "dropped", "operations"];
    type Config = CleanConfig;

    fn check(&self, config: &CleanConfig, ctx: &CheckContext<'_>) -> Vec<FieldError> {
        let mut errors = Vec::new();
        let error = |path, message: String, hint: Option<&str>| FieldError {
            path,
            message,
            hint: hint.map(str::to_string),
            at_key: false,
        };
        if config.operations.is_empty() {
            errors.push(error(
                crate::spec::yaml_path::YamlPath::root(),
                "no cleaning operation".into(),
                Some("add one, e.g. `dedupe: { key: [customer_id] }` or `drop_missing: [email]`"),
            ));
        }
        if let Some(input) = &config.input
            && !ctx.needs.contains(input)
        {
            errors.push(error(
                crate::spec::yaml_path::YamlPath::root().key("input"),
                format!("`{input}` is not in this step's `needs`"),
                Some("name one of the steps listed in `needs`"),
            ));
        }
        for Placed { path, operation } in &config.operations {
            match operation {
                Operation::Filter(condition) => {
                    if let Err(e) = filter::check_syntax(condition) {
                        errors.push(error(
                            path.clone(),
                            format!("not a SQL condition: {e}"),
                            Some("write it like `amount > 0 AND country = 'DE'`"),
                        ));
                    }
                }
                Operation::Clip(rules) => {
                    for (column, rule) in rules {
                        match rule {
                            ClipRule::Percentile([low, high])
                                if !(0.0 <= *low && low < high && *high <= 1.0) =>
                            {
                                errors.push(error(
                                    path.key(column),
                                    "percentile bounds must satisfy 0 <= low < high <= 1".into(),
                                    Some("e.g. `percentile: [0.01, 0.99]`"),
                                ));
                            }
                            ClipRule::Iqr(k) if k.is_nan() || *k < 0.0 => {
                                errors.push(error(
                                    path.key(column),
                                    "the IQR factor must be 0 or more".into(),
                                    Some("1.5 is usual; 3 keeps more"),
                                ));
                            }
                            _ => {}
                        }
                    }
                }
                Operation::Cast(rules) => {
                    for (column, rule) in rules {
                        if rule.format().is_some()
                            && !matches!(
                                rule.target(),
                                crate::data::ColumnType::Date | crate::data::ColumnType::Timestamp
                            )
                        {
                            errors.push(error(
                                path.key(column),
                                "`format` applies to dates and timestamps only".into(),
                                None,
                            ));
                        }
                    }
                }
                Operation::Dedupe(rule) if rule.key.as_ref().is_some_and(Vec::is_empty) => {
                    errors.push(error(path.key("key"), "`key` lists no column".into(), Some("name the columns that identify a row, or leave `key` out to compare whole rows")));
                }
                _ => {}
            }
        }
        errors
    }

    async fn run(&self, config: CleanConfig, ctx: &StepContext) -> Result<StepOutput, StepError> {
        let dataset = input_dataset(&config, ctx)?;
        let path = dataset.path(&ctx.run_dir);
        let started = Instant::now();
        let step = dataset.step;
        let input = tokio::task::spawn_blocking(move || read_all(&path, &step))
            .await
            .map_err(|e| StepError::permanent(format!("reading the input stopped: {e}")))??;
        tracing::debug!(
            rows = input.num_rows(),
            took_ms = started.elapsed().as_millis() as u64,
            "clean read its input"
        );
        let operations: Vec<Operation> =
            config.operations.into_iter().map(|p| p.operation).collect();
        let cancel = ctx.cancel.clone();
        let working = input.clone();
        let (table, stats) = tokio::task::spawn_blocking(move || {
            let mut table = Table::new(working);
            let mut stats: Vec<OperationStats> = Vec::new();
            for operation in &operations {
                if cancel.is_cancelled() {
                    return Err(crate::steps::streaming::cancelled());
                }
                table.begin(operation.name());
                apply(&mut table, operation)?;
                stats.push(table.end());
            }
            Ok((table, stats))
        })
        .await
        .map_err(|e| StepError::permanent(format!("cleaning stopped: {e}")))??;

        for s in &stats {
            ctx.info(&format!(
                "{}: {} → {} rows ({} rejected, {} dropped, {} values changed) in {} ms",
                s.operation,
                s.rows_in,
                s.rows_out,
                s.rejected,
                s.dropped,
                s.changed,
                s.took.as_millis()
            ));
        }
        let started = Instant::now();
        let rejected = table.rejected(&input)?;
        let rejected_count = table.rejected_count();
        let rows_in = input.num_rows();
        let cleaned = table.into_batch()?;
        let rows = cleaned.num_rows();
        ctx.write_dataset(MAIN_DATASET, cleaned.schema(), &[cleaned])?;
        ctx.write_dataset(REJECTED_DATASET, rejected.schema(), &[rejected])?;
        tracing::debug!(
            took_ms = started.elapsed().as_millis() as u64,
            "clean wrote its datasets"
        );
        let dropped: usize = stats.iter().map(|s| s.dropped).sum();
        Ok(StepOutput::default()
            .with("rows_in", rows_in)
            .with("rows", rows)
            .with("rejected", rejected_count)
            .with("dropped", dropped)
            .with(
                "operations",
                Value::Array(stats.iter().map(OperationStats::to_json).collect()),
            ))
    }
}

fn apply(table: &mut Table, operation: &Operation) -> Result<(), StepError> {
    match operation {
        Operation::Dedupe(rule) => dedupe::apply(table, rule),
        Operation::DropMissing(columns) => missing::drop_missing(table, columns),
        Operation::Fill(rules) => missing::fill(table, rules),
        Operation::Cast(rules) => cast_op::apply(table, rules),
        Operation::Trim(columns) => text::apply(table, columns, TextOperation::Trim),
        Operation::Lowercase(columns) => text::apply(table, columns, TextOperation::Lowercase),
        Operation::Email(rule) => email::apply(table, rule),
        Operation::Filter(condition) => filter::apply(table, condition),
        Operation::Clip(rules) => clip::apply(table, rules),
        Operation::Standardize(rules) => standardize::apply(table, rules),
    }
}

/// The dataset to clean: `input`, or the only upstream dataset.
pub fn input_dataset(config: &CleanConfig, ctx: &StepContext) -> Result<DatasetRef, StepError> {
    let with_data: Vec<_> = ctx.inputs.iter().filter(|i| i.main().is_some()).collect();
    let chosen = match &config.input {
        Some(id) => ctx.input(id).ok_or_else(|| {
            StepError::permanent(format!("`input: {id}` is not in this step's `needs`"))
        })?,
        None => match with_data.as_slice() {
            [one] => *one,
            [] => {
                return Err(StepError::permanent(
                    "clean needs a step that writes a dataset (e.g. gather.csv) in `needs`",
                ));
            }
            many => {
                let ids: Vec<&str> = many.iter().map(|i| i.id.as_str()).collect();
                return Err(StepError::permanent(format!(
                    "this step needs several datasets ({}); say which to clean with `input: {}`",
                    ids.join(", "),
                    ids[0]
                )));
            }
        },
    };
    chosen.main().cloned().ok_or_else(|| {
        StepError::permanent(format!("step `{}` wrote no dataset to clean", chosen.id))
    })
}
