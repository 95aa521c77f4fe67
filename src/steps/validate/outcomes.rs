//! The outcomes `validate.ab` measures: a dataset with the customer id and metric columns,
//! aggregated per customer (several rows per customer are allowed: a proportion metric counts
//! a customer as converted when any row says so, a mean metric sums the rows).

use datafusion::arrow::array::Array;
use datafusion::arrow::datatypes::DataType;
use futures::StreamExt;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use super::assignment::Assignment;
use super::columns;
use crate::steps::{StepContext, StepError};

/// How a metric is summarised and tested.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum MetricType {
    /// 0/1 or true/false per customer: a conversion rate, two-proportion z-test.
    Proportion,
    /// Any number per customer (revenue, orders): a mean, Welch's t-test.
    Mean,
}

impl MetricType {
    pub fn name(self) -> &'static str {
        match self {
            MetricType::Proportion => "proportion",
            MetricType::Mean => "mean",
        }
    }
}

/// A metric: a column name, or `{ column, type }`.
#[derive(Debug, Clone, JsonSchema)]
#[serde(untagged)]
pub enum MetricSpec {
    /// The column; its type is guessed (booleans and 0/1 columns are proportions).
    Column(String),
    Typed(TypedMetric),
}

#[derive(Debug, Clone, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TypedMetric {
    pub column: String,
    /// `proportion` or `mean` (default: guessed from the values).
    #[serde(default, rename = "type")]
    pub metric_type: Option<MetricType>,
}

impl<'de> Deserialize<'de> for MetricSpec {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Value::deserialize(deserializer)? {
            serde_json::Value::String(column) => Ok(MetricSpec::Column(column)),
            value @ serde_json::Value::Object(_) => TypedMetric::deserialize(value)
                .map(MetricSpec::Typed)
                .map_err(serde::de::Error::custom),
            _ => Err(serde::de::Error::custom(
                "a metric is a column name (`converted`) or `{ column: revenue, type: mean }`",
            )),
        }
    }
}

impl MetricSpec {
    pub fn column(&self) -> &str {
        match self {
            MetricSpec::Column(c) => c,
            MetricSpec::Typed(t) => &t.column,
        }
    }

    fn declared_type(&self) -> Option<MetricType> {
        match self {
            MetricSpec::Column(_) => None,
            MetricSpec::Typed(t) => t.metric_type,
        }
    }
}

/// Each metric's value per assigned customer (`None`: no outcome row for them).
#[derive(Debug)]
pub struct Outcomes {
    pub metrics: Vec<Metric>,
    /// Outcome rows whose customer is not in the assignment (ignored).
    pub unmatched_rows: u64,
    pub rows: u64,
}

#[derive(Debug)]
pub struct Metric {
    pub name: String,
    pub metric_type: MetricType,
    /// Indexed like the assignment's customers.
    pub values: Vec<Option<f64>>,
}

/// Per customer, per metric: sum and max of the rows seen.
#[derive(Clone, Copy)]
struct Seen {
    sum: f64,
    max: f64,
}

/// Reads the outcomes of step `step` and lines them up with the assignment.
pub async fn load(
    step: &str,
    customer: &str,
    specs: &[MetricSpec],
    assignment: &Assignment,
    ctx: &StepContext,
) -> Result<Outcomes, StepError> {
    if ctx.input(step).and_then(|s| s.main()).is_none() {
        return Err(StepError::permanent(format!(
            "`outcomes` names step `{step}`, which {}",
            if ctx.input(step).is_some() {
                "wrote no dataset"
            } else {
                "is not in this step's `needs`; add it there"
            }
        )));
    }
    let session = ctx.session().await?;
    let frame = session.table(step).await?;
    let schema = frame.schema().as_arrow().clone();
    let what = format!("the outcomes of step `{step}`");
    let id_index = columns::find(&schema, customer, &what, "customer")?;
    if !columns::is_id_type(schema.field(id_index).data_type()) {
        return Err(columns::type_error(
            &what,
            customer,
            schema.field(id_index).data_type(),
            "integers or text",
            "",
        ));
    }
    let mut metric_indexes = Vec::with_capacity(specs.len());
    let mut boolean = Vec::with_capacity(specs.len());
    for spec in specs {
        let index = columns::find(&schema, spec.column(), &what, "metrics")?;
        let data_type = schema.field(index).data_type();
        if !columns::is_metric_type(data_type) {
            return Err(columns::type_error(
                &what,
                spec.column(),
                data_type,
                "numbers or true/false",
                "; cast it to a number first",
            ));
        }
        metric_indexes.push(index);
        boolean.push(matches!(data_type, DataType::Boolean));
    }

    let customers = assignment.len();
    let mut seen: Vec<Vec<Option<Seen>>> = vec![vec![None; customers]; specs.len()];
    // Whether every value of a metric so far was 0 or 1 (then it may be a proportion).
    let mut binary = vec![true; specs.len()];
    let mut rows: u64 = 0;
    let mut unmatched_rows: u64 = 0;
    let mut stream = frame.execute_stream().await?;
    while let Some(batch) = stream.next().await {
        if ctx.cancel.is_cancelled() {
            return Err(StepError::permanent("cancelled"));
        }
        let batch = batch?;
        let ids = columns::as_text(batch.column(id_index))?;
        let values = metric_indexes
            .iter()
            .map(|&i| columns::as_f64(batch.column(i)))
            .collect::<Result<Vec<_>, _>>()?;
        for row in 0..batch.num_rows() {
            rows += 1;
            let customer = if ids.is_null(row) {
                None
            } else {
                assignment.index.get(ids.value(row)).copied()
            };
            let Some(customer) = customer else {
                unmatched_rows += 1;
                continue;
            };
            for (m, column) in values.iter().enumerate() {
                if column.is_null(row) {
                    continue;
                }
                let x = column.value(row);
                if !x.is_finite() {
                    return Err(StepError::permanent(format!(
                        "row {rows} of {what} has a value that is not a number in `{}` (NaN or infinite); clean it first",
                        specs[m].column()
                    )));
                }
                if x != 0.0 && x != 1.0 {
                    if specs[m].declared_type() == Some(MetricType::Proportion) {
                        return Err(StepError::permanent(format!(
                            "row {rows} of {what}: `{}` is declared a proportion but holds a value other than 0 or 1; use `type: mean` or fix the data",
                            specs[m].column()
                        )));
                    }
                    binary[m] = false;
                }
                let slot = &mut seen[m][customer];
                *slot = Some(match *slot {
                    None => Seen { sum: x, max: x },
                    Some(s) => Seen {
                        sum: s.sum + x,
                        max: s.max.max(x),
                    },
                });
            }
        }
    }

    let metrics = specs
        .iter()
        .enumerate()
        .map(|(m, spec)| {
            let metric_type = spec.declared_type().unwrap_or(if boolean[m] || binary[m] {
                MetricType::Proportion
            } else {
                MetricType::Mean
            });
            let values = seen[m]
                .iter()
                .map(|s| {
                    s.map(|s| match metric_type {
                        MetricType::Proportion => s.max,
                        MetricType::Mean => s.sum,
                    })
                })
                .collect();
            Metric {
                name: spec.column().to_string(),
                metric_type,
                values,
            }
        })
        .collect();
    Ok(Outcomes {
        metrics,
        unmatched_rows,
        rows,
    })
}
