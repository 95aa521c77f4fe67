//! `validate.holdout`: splits customers into control and treatment (or named arms) by hashing a
//! salt with the customer id — deterministic, sticky across runs, independent between salts —
//! and checks the split it produced in every segment with a sample-ratio test.
//!
//! Datasets: `main` is the input with a `group` column added (what publish steps filter on);
//! `assignment` is `customer_id, segment, group` (text), kept with the run so a later
//! `validate.ab` joins exactly what was sent.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{Array, ArrayRef, RecordBatch, StringArray};
use datafusion::arrow::datatypes::{DataType, Field, Schema, SchemaRef};
use futures::StreamExt;
use indexmap::IndexMap;
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Map, Value, json};

use super::bucket::Arms;
use super::columns;
use super::split_report::{SegmentSplit, split_report};
use crate::data::{Column, MAIN_DATASET};
use crate::spec::deserialize::FieldError;
use crate::spec::yaml_path::YamlPath;
use crate::stats::srm;
use crate::steps::segment::input;
use crate::steps::{CheckContext, Kind, StepContext, StepError, StepOutput};

/// The name of the dataset with one row per customer: `customer_id`, `segment`, `group`.
pub const ASSIGNMENT_DATASET: &str = "assignment";
/// The segment label of customers whose segment column is empty.
pub const NO_SEGMENT: &str = "(no segment)";
/// More distinct values than this in `stratify_by` is not a segment column (an id, a date…):
/// every segment becomes an output and a report row.
pub const MAX_SEGMENTS: usize = 1000;

pub struct Holdout;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct HoldoutConfig {
    /// The share of customers held out as `control` (0 to 1); everyone else is `treatment`.
    /// Give this or `arms`.
    #[serde(default)]
    pub fraction: Option<f64>,
    /// Named arms with weights that sum to 1, e.g. `{ control: 0.1, email_a: 0.45, email_b: 0.45 }`.
    /// The order matters: each arm takes the next slice of the hash range.
    #[serde(default)]
    pub arms: Option<IndexMap<String, f64>>,
    /// Mixed into the hash: the same salt keeps every customer in the same group run after run;
    /// a new salt draws an independent split (use one per experiment).
    pub salt: String,
    /// The column with the customer id (integers or text; default `customer_id`).
    #[serde(default = "default_customer")]
    pub customer: String,
    /// The column with each customer's segment: the split and its sample-ratio check are
    /// reported per segment. Without it the customers form one group.
    #[serde(default)]
    pub stratify_by: Option<String>,
    /// The upstream step whose dataset is split (default: the only step in `needs`).
    #[serde(default)]
    pub input: Option<String>,
    /// The column added to the main dataset with each customer's group (default `group`).
    #[serde(default = "default_group_column")]
    pub group_column: String,
    /// A split whose sample-ratio p-value falls below this fails the check (default 0.001, as GrowthBook).
    #[serde(default = "default_srm_threshold")]
    pub srm_threshold: f64,
}

fn default_customer() -> String {
    "customer_id".into()
}

fn default_group_column() -> String {
    "group".into()
}

fn default_srm_threshold() -> f64 {
    srm::DEFAULT_THRESHOLD
}

impl HoldoutConfig {
    /// Everything wrong with the config that its shape does not catch.
    fn problems(&self) -> Vec<FieldError> {
        let mut problems = Vec::new();
        let mut problem = |key: &str, message: String, hint: Option<&str>| {
            problems.push(FieldError {
                path: YamlPath::root().key(key),
                message,
                hint: hint.map(str::to_string),
                at_key: false,
            })
        };
        match (&self.fraction, &self.arms) {
            (Some(_), Some(_)) => problem(
                "arms",
                "`fraction` and `arms` both given".into(),
                Some("keep `fraction` for control/treatment, or `arms` for named arms"),
            ),
            (None, None) => problem(
                "fraction",
                "missing `fraction` (or `arms`)".into(),
                Some("e.g. `fraction: 0.1` holds out 10% of each segment as control"),
            ),
            (Some(f), None) if !(0.0..=1.0).contains(f) => problem(
                "fraction",
                format!("`fraction` is {f}; it must be between 0 and 1"),
                Some("0.1 holds out 10% as control"),
            ),
            (None, Some(arms)) => {
                if arms.len() < 2 {
                    problem(
                        "arms",
                        format!("`arms` has {} arm; give at least 2", arms.len()),
                        Some("e.g. `arms: { control: 0.1, treatment: 0.9 }`"),
                    );
                }
                for (name, weight) in arms {
                    if name.trim().is_empty() {
                        problem("arms", "an arm has an empty name".into(), None);
                    }
                    if !(0.0..=1.0).contains(weight) {
                        problem(
                            "arms",
                            format!(
                                "arm `{name}` has weight {weight}; weights are between 0 and 1"
                            ),
                            None,
                        );
                    }
                }
                let sum: f64 = arms.values().sum();
                if (sum - 1.0).abs() > 1e-6 {
                    problem(
                        "arms",
                        format!("the arm weights sum to {sum}; they must sum to 1"),
                        None,
                    );
                }
            }
            _ => {}
        }
        if self.salt.trim().is_empty() {
            problem(
                "salt",
                "`salt` is empty".into(),
                Some("name it after the experiment, e.g. `salt: weekly-rfm-2026`"),
            );
        }
        if self.group_column.trim().is_empty() {
            problem("group_column", "`group_column` is empty".into(), None);
        }
        if !(self.srm_threshold > 0.0 && self.srm_threshold < 1.0) {
            problem(
                "srm_threshold",
                format!(
                    "`srm_threshold` is {}; it must be between 0 and 1",
                    self.srm_threshold
                ),
                Some("GrowthBook uses 0.001"),
            );
        }
        problems
    }

    fn arms(&self) -> Arms {
        match (&self.arms, self.fraction) {
            (Some(arms), _) => Arms::new(arms.iter().map(|(n, w)| (n.clone(), *w))),
            (None, fraction) => Arms::holdout(fraction.unwrap_or(0.0)),
        }
    }
}

/// The upstream step a validate step reads: the one named, or the only one it needs.
pub fn input_step(named: Option<&str>, needs: &[String]) -> Result<String, String> {
    match (named, needs) {
        (Some(name), _) if needs.iter().any(|n| n == name) => Ok(name.to_string()),
        (Some(name), _) => Err(format!(
            "`input` names `{name}`, which is not in this step's `needs`; add it there"
        )),
        (None, [only]) => Ok(only.clone()),
        (None, []) => {
            Err("this step needs an upstream step with the customers: add it to `needs`".into())
        }
        (None, _) => Err(format!(
            "this step needs {} steps; say which one holds the customers with `input:`",
            needs.len()
        )),
    }
}

#[async_trait]
impl Kind for Holdout {
    const NAME: &'static str = "validate.holdout";
    const DESCRIPTION: &'static str = "Splits customers into control and treatment groups by a salted hash of their id (sticky, stratified per segment) and checks the split.";
    const OUTPUTS: &'static [&'static str] = &[
        "srm_ok",
        "srm_p",
        "srm_failed",
        "counts",
        "segments",
        "rows",
        "arms",
        "salt",
    ];
    type Config = HoldoutConfig;

    fn check(&self, config: &HoldoutConfig, ctx: &CheckContext<'_>) -> Vec<FieldError> {
        let mut problems = config.problems();
        if let Err(message) = input_step(config.input.as_deref(), ctx.needs) {
            problems.push(FieldError {
                path: YamlPath::root().key("input"),
                message,
                hint: None,
                at_key: false,
            });
        }
        // When the input's columns are known before the run, check the ones named here.
        let columns = ctx.columns_of(config.input.as_deref());
        let root = YamlPath::root();
        problems.extend(input::check_column(
            root.key("customer"),
            &config.customer,
            columns,
        ));
        if let Some(segment) = &config.stratify_by {
            problems.extend(input::check_column(
                root.key("stratify_by"),
                segment,
                columns,
            ));
        }
        problems.extend(input::check_new_column(
            root.key("group_column"),
            &config.group_column,
            columns,
        ));
        problems
    }

    fn output_columns(
        &self,
        config: &HoldoutConfig,
        ctx: &CheckContext<'_>,
    ) -> Option<Vec<Column>> {
        let mut columns = ctx.columns_of(config.input.as_deref())?.to_vec();
        columns.push(Column {
            name: config.group_column.clone(),
            data_type: DataType::Utf8.to_string(),
        });
        Some(columns)
    }

    async fn run(&self, config: HoldoutConfig, ctx: &StepContext) -> Result<StepOutput, StepError> {
        let problems = config.problems();
        if !problems.is_empty() {
            let lines: Vec<String> = problems
                .iter()
                .map(|p| format!("with.{}: {}", p.path, p.message))
                .collect();
            return Err(StepError::permanent(lines.join("; ")));
        }
        let needs: Vec<String> = ctx.inputs.iter().map(|i| i.id.clone()).collect();
        let input = input_step(config.input.as_deref(), &needs).map_err(StepError::permanent)?;
        let upstream = ctx.input(&input).expect("input_step picks a needed step");
        if upstream.main().is_none() {
            return Err(StepError::permanent(format!(
                "step `{input}` has no dataset to split; point `input` at a step that produces customers"
            )));
        }
        let arms = config.arms();
        let split = assign(&config, &arms, &input, ctx).await?;

        let threshold = config.srm_threshold;
        let mut overall = split.overall();
        let overall_srm = srm::test(&overall.counts, arms.weights());
        overall.srm = Some(overall_srm.clone());
        let mut segments: Vec<SegmentSplit> = split.segments.values().cloned().collect();
        for segment in &mut segments {
            segment.srm = Some(srm::test(&segment.counts, arms.weights()));
        }
        let failed: Vec<String> = segments
            .iter()
            .chain(std::iter::once(&overall))
            .filter(|s| matches!(&s.srm, Some(Ok(t)) if !t.ok(threshold)))
            .map(|s| s.label.clone())
            .collect();
        let srm_ok = failed.is_empty();
        for label in &failed {
            ctx.warn(&format!(
                "sample-ratio mismatch in {label}: the split differs from the weights (p < {threshold})"
            ));
        }
        ctx.info(&format!(
            "assigned {} customers: {}",
            split.rows,
            arms.names()
                .iter()
                .zip(&overall.counts)
                .map(|(n, c)| format!("{n} {c}"))
                .collect::<Vec<_>>()
                .join(", ")
        ));

        let report = split_report(&config.salt, &arms, &overall, &segments, threshold);
        ctx.write_report(&report)?;

        let counts: Map<String, Value> = arms
            .names()
            .iter()
            .zip(&overall.counts)
            .map(|(n, c)| (n.clone(), json!(c)))
            .collect();
        let per_segment: Map<String, Value> = segments
            .iter()
            .map(|s| {
                let counts: Map<String, Value> = arms
                    .names()
                    .iter()
                    .zip(&s.counts)
                    .map(|(n, c)| (n.clone(), json!(c)))
                    .collect();
                (s.label.clone(), Value::Object(counts))
            })
            .collect();
        let weights: Map<String, Value> = arms
            .names()
            .iter()
            .zip(arms.weights())
            .map(|(n, w)| (n.clone(), json!(w)))
            .collect();
        let srm_p = overall_srm.as_ref().ok().map(|t| t.p_value);
        Ok(StepOutput::default()
            .with("srm_ok", srm_ok)
            .with("srm_p", srm_p.map_or(Value::Null, |p| json!(p)))
            .with("srm_failed", failed)
            .with("counts", Value::Object(counts))
            .with("segments", Value::Object(per_segment))
            .with("rows", split.rows)
            .with("arms", Value::Object(weights))
            .with("salt", config.salt.clone()))
    }
}

/// What the assignment pass counted.
struct Split {
    rows: u64,
    /// Per segment (empty without `stratify_by`), by name.
    segments: BTreeMap<String, SegmentSplit>,
    /// Customers per arm, all segments together.
    counts: Vec<u64>,
}

impl Split {
    fn overall(&self) -> SegmentSplit {
        SegmentSplit {
            label: "overall".into(),
            counts: self.counts.clone(),
            srm: None,
        }
    }
}

/// Streams the input once: hashes every customer, writes `main` (input + group) and
/// `assignment`, and counts customers per segment and arm.
async fn assign(
    config: &HoldoutConfig,
    arms: &Arms,
    input: &str,
    ctx: &StepContext,
) -> Result<Split, StepError> {
    let session = ctx.session().await?;
    let frame = session.table(input).await?;
    let schema: Schema = frame.schema().as_arrow().clone();
    let dataset = format!("the dataset of step `{input}`");
    let id_index = columns::find(&schema, &config.customer, &dataset, "customer")?;
    let id_type = schema.field(id_index).data_type();
    if !columns::is_id_type(id_type) {
        return Err(columns::type_error(
            &dataset,
            &config.customer,
            id_type,
            "integers or text",
            "; customer ids are hashed as text, so cast it to an integer or a string first",
        ));
    }
    let segment_index = match &config.stratify_by {
        Some(column) => {
            let index = columns::find(&schema, column, &dataset, "stratify_by")?;
            let data_type = schema.field(index).data_type();
            if !columns::is_label_type(data_type) {
                return Err(columns::type_error(
                    &dataset,
                    column,
                    data_type,
                    "segment labels (text, integers or booleans)",
                    "",
                ));
            }
            Some(index)
        }
        None => None,
    };
    if schema.index_of(&config.group_column).is_ok() {
        return Err(StepError::permanent(format!(
            "{dataset} already has a column `{}`; name the new one with `group_column:`",
            config.group_column
        )));
    }

    let mut main_fields: Vec<Arc<Field>> = schema.fields().iter().cloned().collect();
    main_fields.push(Arc::new(Field::new(
        &config.group_column,
        DataType::Utf8,
        false,
    )));
    let main_schema: SchemaRef = Arc::new(Schema::new(main_fields));
    let mut main = ctx.dataset_writer(MAIN_DATASET, Arc::clone(&main_schema))?;
    let assignment_schema = assignment_schema();
    let mut assignment = ctx.dataset_writer(ASSIGNMENT_DATASET, Arc::clone(&assignment_schema))?;

    let salt = config.salt.as_str();
    let mut seen: HashMap<String, u64> = HashMap::new();
    let mut segments: BTreeMap<String, SegmentSplit> = BTreeMap::new();
    let mut rows: u64 = 0;
    let mut counts = vec![0u64; arms.len()];
    let mut stream = frame.execute_stream().await?;
    while let Some(batch) = stream.next().await {
        if ctx.cancel.is_cancelled() {
            return Err(StepError::permanent("cancelled"));
        }
        let batch = batch?;
        let ids = columns::as_text(batch.column(id_index))?;
        let labels = match segment_index {
            Some(index) => Some(columns::as_text(batch.column(index))?),
            None => None,
        };
        let mut groups = Vec::with_capacity(batch.num_rows());
        let mut segment_values: Vec<Option<String>> = Vec::with_capacity(batch.num_rows());
        for row in 0..batch.num_rows() {
            let row_number = rows + row as u64 + 1;
            if ids.is_null(row) || ids.value(row).trim().is_empty() {
                return Err(StepError::permanent(format!(
                    "row {row_number} of {dataset} has no customer id (column `{}`); drop such rows first, e.g. with clean's `drop_missing`",
                    config.customer
                )));
            }
            let id = ids.value(row);
            if let Some(first) = seen.insert(id.to_string(), row_number) {
                return Err(StepError::permanent(format!(
                    "row {row_number} of {dataset} repeats the customer id of row {first}; each customer must appear once (dedupe on `{}` first)",
                    config.customer
                )));
            }
            let arm = arms.assign(salt, id);
            groups.push(arms.names()[arm].as_str());
            let label = labels.as_ref().map(|l| {
                if l.is_null(row) {
                    NO_SEGMENT.to_string()
                } else {
                    l.value(row).to_string()
                }
            });
            counts[arm] += 1;
            if let Some(label) = &label
                && !segments.contains_key(label)
                && segments.len() == MAX_SEGMENTS
            {
                return Err(StepError::permanent(format!(
                    "column `{}` of {dataset} has more than {MAX_SEGMENTS} distinct values; `stratify_by` must name a segment column",
                    config.stratify_by.as_deref().unwrap_or_default()
                )));
            }
            if let Some(label) = &label {
                segments
                    .entry(label.clone())
                    .or_insert_with(|| SegmentSplit {
                        label: label.clone(),
                        counts: vec![0; arms.len()],
                        srm: None,
                    })
                    .counts[arm] += 1;
            }
            segment_values.push(label);
        }
        rows += batch.num_rows() as u64;
        let group_array: ArrayRef = Arc::new(StringArray::from(groups));
        let mut main_columns: Vec<ArrayRef> = batch.columns().to_vec();
        main_columns.push(Arc::clone(&group_array));
        main.write(&RecordBatch::try_new(
            Arc::clone(&main_schema),
            main_columns,
        )?)?;
        let assignment_columns: Vec<ArrayRef> = vec![
            Arc::new(ids),
            Arc::new(StringArray::from(segment_values)),
            group_array,
        ];
        assignment.write(&RecordBatch::try_new(
            Arc::clone(&assignment_schema),
            assignment_columns,
        )?)?;
    }
    ctx.finish_dataset(main)?;
    ctx.finish_dataset(assignment)?;
    Ok(Split {
        rows,
        segments,
        counts,
    })
}

/// `customer_id, segment, group`: the shape of every assignment segflow writes and reads.
pub fn assignment_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("customer_id", DataType::Utf8, false),
        Field::new("segment", DataType::Utf8, true),
        Field::new("group", DataType::Utf8, false),
    ]))
}
