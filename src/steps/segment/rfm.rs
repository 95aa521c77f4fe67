//! `segment.rfm`: recency, frequency and monetary value per customer from transactions, 1–N
//! quantile scores, the score string and named segments from an ordered table.

use std::collections::BTreeMap;
use std::sync::Arc;

use async_trait::async_trait;
use chrono::NaiveDate;
use datafusion::arrow::array::{
    Array, ArrayRef, AsArray, Float64Array, Int32Array, Int64Array, RecordBatch, StringArray,
};
use datafusion::arrow::compute::{cast, concat};
use datafusion::arrow::datatypes::{DataType, Date32Type, Field, Float64Type, Int64Type, Schema};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::input;
use super::quantile_score;
use super::rfm_table::{self, DEFAULT_TABLE_BINS, RfmSegment};
use super::sql_condition::{identifier, literal};
use crate::data::{Column, MAIN_DATASET};
use crate::report::{Chart, Report, Table};
use crate::spec::deserialize::FieldError;
use crate::spec::yaml_path::YamlPath;
use crate::steps::{CheckContext, Kind, StepContext, StepError, StepOutput};

pub struct SegmentRfm;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RfmConfig {
    /// The table of transactions to read: a step in `needs` (its main dataset) or `step.name`.
    /// Default: the only step in `needs`.
    #[serde(default)]
    pub input: Option<String>,
    /// The column identifying the customer.
    pub customer: String,
    /// The column with the transaction's date (a date, a timestamp or `YYYY-MM-DD` text).
    pub date: String,
    /// The column with the transaction's amount.
    pub amount: String,
    /// The day recency is counted to, `YYYY-MM-DD`; transactions after it are left out.
    /// Default: the day after the latest transaction.
    #[serde(default)]
    pub as_of: Option<String>,
    /// A column identifying the order: frequency counts its distinct values. Default: every
    /// row is one order.
    #[serde(default)]
    pub order_id: Option<String>,
    /// Monetary value: the `sum` (default) or the `mean` of the customer's amounts.
    #[serde(default)]
    pub monetary: Monetary,
    /// How many quantile scores each of R, F and M gets (2–9, default 5).
    #[serde(default = "default_bins")]
    pub bins: u8,
    /// The segment table, checked top to bottom (the first match wins). Default: the standard
    /// table (Champions, Loyal Customers, … Hibernating), which needs 5 bins.
    #[serde(default)]
    pub segments: Option<Vec<RfmSegment>>,
    /// The segment of customers no row of the table matches (default `Others`).
    #[serde(default = "default_segment")]
    pub default_segment: String,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum Monetary {
    #[default]
    Sum,
    Mean,
}

fn default_bins() -> u8 {
    5
}

fn default_segment() -> String {
    "Others".into()
}

/// The columns the step writes after the customer column.
const OUTPUT_COLUMNS: [(&str, DataType); 10] = [
    ("first_order", DataType::Date32),
    ("last_order", DataType::Date32),
    ("recency_days", DataType::Int64),
    ("frequency", DataType::Int64),
    ("monetary", DataType::Float64),
    ("r_score", DataType::Int32),
    ("f_score", DataType::Int32),
    ("m_score", DataType::Int32),
    ("rfm_score", DataType::Utf8),
    ("segment", DataType::Utf8),
];

pub fn parse_date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d").ok()
}

fn epoch() -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("a valid date")
}

#[async_trait]
impl Kind for SegmentRfm {
    const NAME: &'static str = "segment.rfm";
    const DESCRIPTION: &'static str =
        "Scores customers by recency, frequency and monetary value and names their RFM segment.";
    const OUTPUTS: &'static [&'static str] = &[
        "customers",
        "transactions",
        "as_of",
        "segments",
        "left_out_after_as_of",
    ];
    type Config = RfmConfig;

    fn check(&self, config: &RfmConfig, ctx: &CheckContext<'_>) -> Vec<FieldError> {
        let root = YamlPath::root();
        let mut errors = input::check_input(config.input.as_deref(), ctx);
        let columns = ctx.columns_of(config.input.as_deref());
        for (key, name) in [
            ("customer", Some(&config.customer)),
            ("date", Some(&config.date)),
            ("amount", Some(&config.amount)),
            ("order_id", config.order_id.as_ref()),
        ] {
            if let Some(name) = name {
                errors.extend(input::check_column(root.key(key), name, columns));
            }
        }
        if let Some(as_of) = &config.as_of
            && parse_date(as_of).is_none()
        {
            errors.push(input::error(
                root.key("as_of"),
                format!("`{as_of}` is not a date"),
                Some("write it as YYYY-MM-DD, e.g. 1998-07-01".into()),
            ));
        }
        if !(2..=9).contains(&config.bins) {
            errors.push(input::error(
                root.key("bins"),
                format!("{} bins cannot be used", config.bins),
                Some("use 2 to 9 bins (5 is the usual)".into()),
            ));
            return errors;
        }
        match &config.segments {
            None if config.bins != DEFAULT_TABLE_BINS => errors.push(input::error(
                root.key("bins"),
                format!(
                    "the standard segment table is written for 5 bins, not {}",
                    config.bins
                ),
                Some("give your own `segments` table for these bins, or use 5 bins".into()),
            )),
            None => {}
            Some(table) => errors.extend(check_table(table, config.bins)),
        }
        errors
    }

    fn output_columns(&self, config: &RfmConfig, ctx: &CheckContext<'_>) -> Option<Vec<Column>> {
        let columns = ctx.columns_of(config.input.as_deref())?;
        let customer = columns.iter().find(|c| c.name == config.customer)?.clone();
        let mut out = vec![customer];
        out.extend(OUTPUT_COLUMNS.iter().map(|(name, data_type)| Column {
            name: name.to_string(),
            data_type: data_type.to_string(),
        }));
        Some(out)
    }

    async fn run(&self, config: RfmConfig, ctx: &StepContext) -> Result<StepOutput, StepError> {
        let table_name = input::input_table(config.input.as_deref(), ctx)?;
        let session = ctx.session().await?;
        let frame = session.table(table_name.as_str()).await.map_err(|_| {
            StepError::permanent(format!(
                "there is no dataset `{table_name}` among this step's inputs"
            ))
        })?;
        let mut required = vec![
            ("customer", config.customer.as_str()),
            ("date", config.date.as_str()),
            ("amount", config.amount.as_str()),
        ];
        if let Some(order) = &config.order_id {
            required.push(("order_id", order.as_str()));
        }
        input::check_columns(&table_name, frame.schema().as_arrow(), &required)?;
        let segments = config
            .segments
            .clone()
            .unwrap_or_else(rfm_table::default_table);
        let table_errors = check_table(&segments, config.bins);
        if let Some(error) = table_errors.first() {
            return Err(StepError::permanent(format!(
                "segments: {} at {}",
                error.message, error.path
            )));
        }

        let customer = identifier(&config.customer);
        let date = format!("TRY_CAST({} AS DATE)", identifier(&config.date));
        let amount = format!("TRY_CAST({} AS DECIMAL(38, 6))", identifier(&config.amount));
        let raw_date = identifier(&config.date);
        let raw_amount = identifier(&config.amount);
        let source = table_sql(&table_name);

        // What cannot be scored is counted first, so the error can say how much and why.
        let checks = session
            .sql(&format!(
                "SELECT COUNT(*) AS total,
                    SUM(CASE WHEN {customer} IS NULL THEN 1 ELSE 0 END) AS no_customer,
                    SUM(CASE WHEN {raw_date} IS NULL THEN 1 ELSE 0 END) AS no_date,
                    SUM(CASE WHEN {raw_date} IS NOT NULL AND {date} IS NULL THEN 1 ELSE 0 END) AS bad_date,
                    SUM(CASE WHEN {raw_amount} IS NULL THEN 1 ELSE 0 END) AS no_amount,
                    SUM(CASE WHEN {raw_amount} IS NOT NULL AND {amount} IS NULL THEN 1 ELSE 0 END) AS bad_amount,
                    MAX({date}) AS last_date
                 FROM {source}"
            ))
            .await
            .map_err(|e| StepError::permanent(format!("cannot read `{table_name}`: {e}")))?
            .collect()
            .await?;
        let check = checks
            .first()
            .ok_or_else(|| StepError::new("the row count query returned nothing"))?;
        let count = |i: usize| -> i64 {
            let column = check.column(i);
            match cast(column, &DataType::Int64) {
                Ok(array) => {
                    let ints = array.as_primitive::<Int64Type>();
                    if ints.is_null(0) { 0 } else { ints.value(0) }
                }
                Err(_) => 0,
            }
        };
        let total = count(0);
        if total == 0 {
            return Err(StepError::permanent(format!(
                "`{table_name}` has no transactions to score"
            )));
        }
        let problems = [
            (
                count(1),
                format!("have no {}", config.customer),
                "drop them in a `clean` step (`drop_missing`)",
            ),
            (
                count(2),
                format!("have no {}", config.date),
                "drop them in a `clean` step (`drop_missing`)",
            ),
            (
                count(3),
                format!("have a value in {} that is not a date", config.date),
                "cast or fix the dates in a `clean` step",
            ),
            (
                count(4),
                format!("have no {}", config.amount),
                "drop or fill them in a `clean` step",
            ),
            (
                count(5),
                format!("have a value in {} that is not a number", config.amount),
                "cast or fix the amounts in a `clean` step",
            ),
        ];
        let found: Vec<String> = problems
            .iter()
            .filter(|(n, _, _)| *n > 0)
            .map(|(n, what, fix)| format!("{n} of {total} rows {what} ({fix})"))
            .collect();
        if !found.is_empty() {
            return Err(StepError::permanent(format!(
                "cannot score `{table_name}`: {}",
                found.join("; ")
            )));
        }
        let last_date = {
            let array = check.column(6);
            let dates = array.as_primitive::<Date32Type>();
            (!dates.is_null(0)).then(|| dates.value(0))
        };
        let as_of = match &config.as_of {
            Some(text) => parse_date(text).ok_or_else(|| {
                StepError::permanent(format!("as_of: `{text}` is not a date (YYYY-MM-DD)"))
            })?,
            None => {
                let last =
                    last_date.ok_or_else(|| StepError::permanent("no transaction has a date"))?;
                epoch() + chrono::Days::new(last as u64 + 1)
            }
        };
        let as_of_days = (as_of - epoch()).num_days();
        let as_of_sql = literal(&as_of.format("%Y-%m-%d").to_string());

        let frequency = match &config.order_id {
            Some(order) => format!("COUNT(DISTINCT {})", identifier(order)),
            None => "COUNT(*)".to_string(),
        };
        let aggregated = session
            .sql(&format!(
                "SELECT {customer} AS customer, MIN({date}) AS first_order, MAX({date}) AS last_order,
                    {frequency} AS frequency, SUM({amount}) AS total, COUNT(*) AS rows
                 FROM {source}
                 WHERE {date} <= CAST({as_of_sql} AS DATE)
                 GROUP BY {customer}
                 ORDER BY {customer}"
            ))
            .await
            .map_err(|e| StepError::permanent(format!("cannot aggregate `{table_name}`: {e}")))?
            .collect()
            .await?;
        if ctx.cancel.is_cancelled() {
            return Err(StepError::new("cancelled"));
        }
        let column = |i: usize| -> Result<ArrayRef, StepError> {
            let arrays: Vec<&dyn Array> = aggregated.iter().map(|b| b.column(i).as_ref()).collect();
            if arrays.is_empty() {
                return Err(StepError::permanent(format!(
                    "no transaction of `{table_name}` is on or before as_of {as_of}"
                )));
            }
            Ok(concat(&arrays)?)
        };
        let customers = column(0)?;
        let first_order = column(1)?;
        let last_order = column(2)?;
        let frequency = cast(&column(3)?, &DataType::Int64)?;
        let spent = cast(&column(4)?, &DataType::Float64)?;
        let rows_used: i64 = cast(&column(5)?, &DataType::Int64)?
            .as_primitive::<Int64Type>()
            .iter()
            .flatten()
            .sum();
        let n = customers.len();
        if n == 0 {
            return Err(StepError::permanent(format!(
                "no transaction of `{table_name}` is on or before as_of {as_of}"
            )));
        }
        let left_out = (total - rows_used).max(0);
        if left_out > 0 {
            ctx.warn(&format!(
                "{left_out} transactions after as_of {as_of} are left out"
            ));
        }

        let last = last_order.as_primitive::<Date32Type>();
        let recency: Vec<i64> = last
            .iter()
            .map(|d| as_of_days - i64::from(d.unwrap_or_default()))
            .collect();
        let frequency: Vec<i64> = frequency
            .as_primitive::<Int64Type>()
            .iter()
            .map(Option::unwrap_or_default)
            .collect();
        let total: Vec<f64> = spent
            .as_primitive::<Float64Type>()
            .iter()
            .map(Option::unwrap_or_default)
            .collect();
        let monetary: Vec<f64> = match config.monetary {
            Monetary::Sum => total.clone(),
            Monetary::Mean => total
                .iter()
                .zip(&frequency)
                .map(|(t, f)| t / (*f).max(1) as f64)
                .collect(),
        };
        let r_values: Vec<f64> = recency.iter().map(|&d| d as f64).collect();
        let f_values: Vec<f64> = frequency.iter().map(|&f| f as f64).collect();
        let r = quantile_score::reversed_scores(&r_values, config.bins);
        let f = quantile_score::scores(&f_values, config.bins);
        let m = quantile_score::scores(&monetary, config.bins);
        let names: Vec<&str> = (0..n)
            .map(|i| rfm_table::segment_of(&segments, &config.default_segment, r[i], f[i], m[i]))
            .collect();

        let mut fields = vec![Field::new(
            &config.customer,
            customers.data_type().clone(),
            true,
        )];
        fields.extend(
            OUTPUT_COLUMNS
                .iter()
                .map(|(name, data_type)| Field::new(*name, data_type.clone(), false)),
        );
        let schema = Arc::new(Schema::new(fields));
        let score = |s: &[u8]| {
            Arc::new(Int32Array::from_iter_values(
                s.iter().map(|&v| i32::from(v)),
            ))
        };
        let columns: Vec<ArrayRef> = vec![
            customers,
            first_order.clone(),
            last_order.clone(),
            Arc::new(Int64Array::from(recency.clone())),
            Arc::new(Int64Array::from(frequency.clone())),
            Arc::new(Float64Array::from(monetary.clone())),
            score(&r),
            score(&f),
            score(&m),
            Arc::new(StringArray::from_iter_values(
                (0..n).map(|i| format!("{}{}{}", r[i], f[i], m[i])),
            )),
            Arc::new(StringArray::from_iter_values(names.iter().copied())),
        ];
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        let dataset = ctx.write_dataset(MAIN_DATASET, schema, &[batch])?;

        let summary = SegmentSummary::build(
            &segments,
            &config.default_segment,
            &names,
            &recency,
            &frequency,
            &total,
        );
        ctx.write_report(&summary.report(n, as_of, config.monetary))?;
        ctx.info(&format!(
            "scored {} customers from {rows_used} transactions as of {as_of}",
            dataset.rows
        ));
        Ok(StepOutput::default()
            .with("customers", dataset.rows)
            .with("transactions", rows_used)
            .with("as_of", as_of.format("%Y-%m-%d").to_string())
            .with("segments", summary.counts_json())
            .with("left_out_after_as_of", left_out))
    }
}

/// `step` or `step.name` as a SQL table reference.
fn table_sql(table: &str) -> String {
    table
        .split('.')
        .map(identifier)
        .collect::<Vec<_>>()
        .join(".")
}

/// Checks a segment table's bounds against the bins.
fn check_table(table: &[RfmSegment], bins: u8) -> Vec<FieldError> {
    let mut errors = Vec::new();
    if table.is_empty() {
        errors.push(input::error(
            YamlPath::root().key("segments"),
            "the segment table is empty".into(),
            Some("leave `segments` out for the standard table".into()),
        ));
    }
    for (i, segment) in table.iter().enumerate() {
        let path = YamlPath::root().key("segments").index(i);
        if segment.name.trim().is_empty() {
            errors.push(input::error(
                path.key("name"),
                "the name is empty".into(),
                None,
            ));
        }
        for (key, bounds) in [("r", segment.r), ("f", segment.f), ("m", segment.m)] {
            if let Some([low, high]) = bounds
                && (low < 1 || high > bins || low > high)
            {
                errors.push(input::error(
                    path.key(key),
                    format!("[{low}, {high}] is not a range of scores 1 to {bins}"),
                    Some(format!("write [low, high] with 1 <= low <= high <= {bins}")),
                ));
            }
        }
    }
    errors
}

/// Per segment: customers and their average recency, frequency and spend.
struct SegmentSummary {
    rows: Vec<(String, u64, f64, f64, f64, f64)>,
    revenue: f64,
}

impl SegmentSummary {
    fn build(
        table: &[RfmSegment],
        fallback: &str,
        names: &[&str],
        recency: &[i64],
        frequency: &[i64],
        total: &[f64],
    ) -> Self {
        let mut order: Vec<String> = table.iter().map(|s| s.name.clone()).collect();
        order.push(fallback.to_string());
        order.dedup();
        let mut sums: BTreeMap<&str, (u64, f64, f64, f64)> = BTreeMap::new();
        for i in 0..names.len() {
            let entry = sums.entry(names[i]).or_default();
            entry.0 += 1;
            entry.1 += recency[i] as f64;
            entry.2 += frequency[i] as f64;
            entry.3 += total[i];
        }
        let mut seen = std::collections::HashSet::new();
        let rows = order
            .into_iter()
            .filter(|name| seen.insert(name.clone()))
            .map(|name| {
                let (n, r, f, t) = sums.get(name.as_str()).copied().unwrap_or_default();
                let mean = |x: f64| if n == 0 { 0.0 } else { x / n as f64 };
                (name, n, mean(r), mean(f), mean(t), t)
            })
            .collect();
        SegmentSummary {
            rows,
            revenue: total.iter().sum(),
        }
    }

    fn counts_json(&self) -> Value {
        Value::Object(
            self.rows
                .iter()
                .map(|(name, n, ..)| (name.clone(), Value::from(*n)))
                .collect(),
        )
    }

    fn report(&self, customers: usize, as_of: NaiveDate, monetary: Monetary) -> Report {
        let mut report = Report::new(SegmentRfm::NAME, "RFM segments");
        let largest = self.rows.iter().max_by_key(|r| r.1);
        report.summary.push(format!(
            "{customers} customers scored as of {as_of}; monetary value is the {} of their amounts.",
            match monetary {
                Monetary::Sum => "sum",
                Monetary::Mean => "mean",
            }
        ));
        if let Some((name, n, ..)) = largest {
            report.summary.push(format!(
                "The largest segment is {name} with {n} customers ({:.1}%).",
                100.0 * *n as f64 / customers.max(1) as f64
            ));
        }
        report.charts.push(Chart::Bar {
            title: "Customers per segment".into(),
            labels: self.rows.iter().map(|r| r.0.clone()).collect(),
            values: self.rows.iter().map(|r| r.1 as f64).collect(),
            unit: Some("customers".into()),
        });
        report.tables.push(Table {
            title: "Segments".into(),
            columns: [
                "segment",
                "customers",
                "share",
                "mean recency (days)",
                "mean orders",
                "mean spend",
                "share of revenue",
            ]
            .map(String::from)
            .to_vec(),
            rows: self
                .rows
                .iter()
                .map(|(name, n, r, f, t, revenue)| {
                    vec![
                        json!(name),
                        json!(n),
                        json!(*n as f64 / customers.max(1) as f64),
                        json!(r),
                        json!(f),
                        json!(t),
                        json!(if self.revenue == 0.0 {
                            0.0
                        } else {
                            revenue / self.revenue
                        }),
                    ]
                })
                .collect(),
        });
        report
    }
}
