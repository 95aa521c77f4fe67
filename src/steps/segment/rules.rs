//! `segment.rules`: segments from an ordered list of SQL conditions over the input's columns
//! (demographic, geographic, psychographic, behavioural or firmographic fields alike).

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, BooleanArray, ListBuilder, RecordBatch, StringArray, StringBuilder,
};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::StreamExt;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::Value;

use super::input;
use super::sql_condition;
use crate::data::{Column, MAIN_DATASET};
use crate::spec::deserialize::FieldError;
use crate::spec::yaml_path::YamlPath;
use crate::steps::{CheckContext, Kind, StepContext, StepError, StepOutput};

pub struct SegmentRules;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RulesConfig {
    /// The table to read: a step in `needs` (its main dataset) or `step.name` for another of
    /// its datasets. Default: the only step in `needs`.
    #[serde(default)]
    pub input: Option<String>,
    /// The rules, in order. With `mode: first` a customer gets the first rule that matches.
    pub rules: Vec<Rule>,
    /// `first` (default): one segment per customer, the first matching rule's. `all`: also a
    /// list of every matching segment, in rule order.
    #[serde(default)]
    pub mode: Mode,
    /// The segment of customers no rule matches (default `Others`).
    #[serde(default = "default_segment")]
    pub default: String,
    /// The column the segment is written to (default `segment`).
    #[serde(default = "default_column")]
    pub column: String,
    /// With `mode: all`, the list column of every matching segment (default `segments`).
    #[serde(default = "default_list_column")]
    pub list_column: String,
}

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Rule {
    /// The segment's name.
    pub segment: String,
    /// A SQL condition over the input's columns, e.g. `age < 30 AND city_tier = 'urban'`.
    /// A condition that is NULL for a customer (a missing value) does not match.
    pub when: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    #[default]
    First,
    All,
}

fn default_segment() -> String {
    "Others".into()
}

fn default_column() -> String {
    "segment".into()
}

fn default_list_column() -> String {
    "segments".into()
}

#[async_trait]
impl Kind for SegmentRules {
    const NAME: &'static str = "segment.rules";
    const DESCRIPTION: &'static str = "Assigns segments from an ordered list of SQL conditions; first match wins, or every match.";
    const OUTPUTS: &'static [&'static str] = &["customers", "segments", "unmatched"];
    type Config = RulesConfig;

    fn check(&self, config: &RulesConfig, ctx: &CheckContext<'_>) -> Vec<FieldError> {
        let mut errors = input::check_input(config.input.as_deref(), ctx);
        let columns = ctx.columns_of(config.input.as_deref());
        let root = YamlPath::root();
        if config.rules.is_empty() {
            errors.push(input::error(
                root.key("rules"),
                "there are no rules".into(),
                Some("add rules like `- { segment: Young, when: \"age < 30\" }`".into()),
            ));
        }
        for (i, rule) in config.rules.iter().enumerate() {
            let path = root.key("rules").index(i);
            if rule.segment.trim().is_empty() {
                errors.push(input::error(
                    path.key("segment"),
                    "the segment name is empty".into(),
                    None,
                ));
            }
            match sql_condition::columns(&rule.when) {
                Err(message) => errors.push(input::error(
                    path.key("when"),
                    format!("this is not a SQL condition: {message}"),
                    Some("write a condition like `age >= 30 AND region = 'north'`".into()),
                )),
                Ok(referenced) => {
                    for column in referenced {
                        if let Some(mut error) =
                            input::check_column(path.key("when"), &column.name, columns)
                        {
                            if column.double_quoted {
                                error.hint = Some(format!(
                                    "in SQL, double quotes name a column; write text in single quotes: '{}'",
                                    column.name
                                ));
                            }
                            errors.push(error);
                        }
                    }
                }
            }
        }
        errors.extend(input::check_new_column(
            root.key("column"),
            &config.column,
            columns,
        ));
        if config.mode == Mode::All {
            errors.extend(input::check_new_column(
                root.key("list_column"),
                &config.list_column,
                columns,
            ));
            if config.list_column == config.column {
                errors.push(input::error(
                    root.key("list_column"),
                    "`list_column` and `column` name the same column".into(),
                    None,
                ));
            }
        }
        errors
    }

    fn output_columns(&self, config: &RulesConfig, ctx: &CheckContext<'_>) -> Option<Vec<Column>> {
        let mut columns = ctx.columns_of(config.input.as_deref())?.to_vec();
        columns.push(Column {
            name: config.column.clone(),
            data_type: DataType::Utf8.to_string(),
        });
        if config.mode == Mode::All {
            columns.push(Column {
                name: config.list_column.clone(),
                data_type: list_type().to_string(),
            });
        }
        Some(columns)
    }

    async fn run(&self, config: RulesConfig, ctx: &StepContext) -> Result<StepOutput, StepError> {
        let table = input::input_table(config.input.as_deref(), ctx)?;
        let session = ctx.session().await?;
        let mut frame = session.table(table.as_str()).await.map_err(|_| {
            StepError::permanent(format!(
                "there is no dataset `{table}` among this step's inputs"
            ))
        })?;
        let input_schema: SchemaRef = Arc::new(frame.schema().as_arrow().clone());
        input::check_free(&table, &input_schema, "column", &config.column)?;
        if config.mode == Mode::All {
            input::check_free(&table, &input_schema, "list_column", &config.list_column)?;
        }
        for (i, rule) in config.rules.iter().enumerate() {
            let describe = |e: datafusion::error::DataFusionError| {
                StepError::permanent(format!(
                    "rules[{i}] (`{}`): the condition `{}` does not work on `{table}`: {e}",
                    rule.segment, rule.when
                ))
            };
            let condition = frame.parse_sql_expr(&rule.when).map_err(describe)?;
            frame = frame
                .with_column(&format!("__segflow_rule_{i}"), condition.is_true())
                .map_err(describe)?;
        }
        let mut fields: Vec<_> = input_schema.fields().iter().cloned().collect();
        fields.push(Arc::new(Field::new(&config.column, DataType::Utf8, false)));
        if config.mode == Mode::All {
            fields.push(Arc::new(Field::new(
                &config.list_column,
                list_type(),
                false,
            )));
        }
        let schema = Arc::new(Schema::new(fields));
        let mut writer = ctx.dataset_writer(MAIN_DATASET, schema.clone())?;
        let mut counts: BTreeMap<String, u64> = BTreeMap::new();
        let failed = |e: datafusion::error::DataFusionError| {
            StepError::permanent(format!(
                "the rules could not be evaluated on `{table}`: {}; a condition probably compares a column with a value of another type (text with a number, say): check each rule's `when` against the column types (`segflow data RUN STEP` shows them)",
                crate::data::message_of(&e)
            ))
        };
        let mut stream = frame.execute_stream().await.map_err(failed)?;
        let width = input_schema.fields().len();
        while let Some(batch) = stream.next().await {
            if ctx.cancel.is_cancelled() {
                return Err(StepError::new("cancelled"));
            }
            let batch = batch.map_err(failed)?;
            let matches: Vec<&BooleanArray> = (0..config.rules.len())
                .map(|i| batch.column(width + i).as_boolean())
                .collect();
            let (segments, lists) = assign(&config, &matches, batch.num_rows(), &mut counts);
            let mut columns: Vec<ArrayRef> = batch.columns()[..width].to_vec();
            columns.push(Arc::new(segments));
            if let Some(lists) = lists {
                columns.push(lists);
            }
            writer.write(&RecordBatch::try_new(schema.clone(), columns)?)?;
        }
        let dataset = ctx.finish_dataset(writer)?;
        let unmatched = counts.get(&config.default).copied().unwrap_or(0);
        let mut ordered: Vec<(String, u64)> = Vec::new();
        for rule in &config.rules {
            if !ordered.iter().any(|(name, _)| *name == rule.segment) {
                let n = counts.get(&rule.segment).copied().unwrap_or(0);
                ordered.push((rule.segment.clone(), n));
            }
        }
        if !ordered.iter().any(|(name, _)| *name == config.default) {
            ordered.push((config.default.clone(), unmatched));
        }
        let summary: Vec<String> = ordered
            .iter()
            .map(|(name, n)| format!("{name}: {n}"))
            .collect();
        ctx.info(&format!(
            "{} customers segmented ({})",
            dataset.rows,
            summary.join(", ")
        ));
        let segments: serde_json::Map<String, Value> = ordered
            .into_iter()
            .map(|(name, n)| (name, Value::from(n)))
            .collect();
        Ok(StepOutput::default()
            .with("customers", dataset.rows)
            .with("segments", Value::Object(segments))
            .with("unmatched", unmatched))
    }
}

fn list_type() -> DataType {
    DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)))
}

/// Each row's segment (the first match, or the default) and, with `mode: all`, the list of
/// every match (the default alone when none matches). `counts` gains each row's segment, or
/// with `mode: all` each of its matches.
fn assign(
    config: &RulesConfig,
    matches: &[&BooleanArray],
    rows: usize,
    counts: &mut BTreeMap<String, u64>,
) -> (StringArray, Option<ArrayRef>) {
    let mut first = StringBuilder::with_capacity(rows, rows * 8);
    let mut all = (config.mode == Mode::All).then(|| ListBuilder::new(StringBuilder::new()));
    for row in 0..rows {
        let mut chosen: Option<&str> = None;
        for (rule, matched) in config.rules.iter().zip(matches) {
            // `IS TRUE` never yields NULL, but a NULL here would not be a match either.
            if matched.is_valid(row) && matched.value(row) {
                chosen.get_or_insert(&rule.segment);
                match all.as_mut() {
                    Some(list) => {
                        list.values().append_value(&rule.segment);
                        *counts.entry(rule.segment.clone()).or_default() += 1;
                    }
                    None => break,
                }
            }
        }
        let segment = chosen.unwrap_or(&config.default);
        match all.as_mut() {
            Some(list) => {
                if chosen.is_none() {
                    list.values().append_value(&config.default);
                    *counts.entry(config.default.clone()).or_default() += 1;
                }
                list.append(true);
            }
            None => *counts.entry(segment.to_string()).or_default() += 1,
        }
        first.append_value(segment);
    }
    (
        first.finish(),
        all.map(|mut l| Arc::new(l.finish()) as ArrayRef),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(mode: Mode) -> RulesConfig {
        RulesConfig {
            input: None,
            rules: vec![
                Rule {
                    segment: "A".into(),
                    when: "x".into(),
                },
                Rule {
                    segment: "B".into(),
                    when: "y".into(),
                },
            ],
            mode,
            default: "Rest".into(),
            column: "segment".into(),
            list_column: "segments".into(),
        }
    }

    #[test]
    fn first_match_wins_and_the_rest_get_the_default() {
        let a = BooleanArray::from(vec![Some(true), Some(false), None, Some(true)]);
        let b = BooleanArray::from(vec![Some(true), Some(true), Some(false), Some(false)]);
        let mut counts = BTreeMap::new();
        let (first, lists) = assign(&config(Mode::First), &[&a, &b], 4, &mut counts);
        let names: Vec<&str> = first.iter().flatten().collect();
        assert_eq!(names, ["A", "B", "Rest", "A"]);
        assert!(lists.is_none());
        assert_eq!(counts.get("A"), Some(&2));
        assert_eq!(counts.get("Rest"), Some(&1));
    }

    #[test]
    fn mode_all_lists_every_match_in_rule_order() {
        let a = BooleanArray::from(vec![true, false, false]);
        let b = BooleanArray::from(vec![true, true, false]);
        let mut counts = BTreeMap::new();
        let (first, lists) = assign(&config(Mode::All), &[&a, &b], 3, &mut counts);
        let lists = lists.expect("a list column");
        let lists = lists.as_list::<i32>();
        let row = |i: usize| -> Vec<String> {
            lists
                .value(i)
                .as_string::<i32>()
                .iter()
                .flatten()
                .map(str::to_string)
                .collect()
        };
        assert_eq!(row(0), ["A", "B"]);
        assert_eq!(row(1), ["B"]);
        assert_eq!(row(2), ["Rest"]);
        assert_eq!(first.value(0), "A");
        assert_eq!(counts.get("B"), Some(&2), "every match counts in mode all");
    }
}
