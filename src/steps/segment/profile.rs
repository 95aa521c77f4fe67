//! `segment.profile`: personas. For each segment its size and share, the mean and median of each
//! numeric feature with an index against all customers (100 = average), the top values of each
//! categorical feature, and a plain-language line; as a dataset and as a report.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::input::{self, Loaded};
use super::persona::{self, CategoricalContrast, NumericContrast};
use crate::data::{Column, MAIN_DATASET};
use crate::report::{Chart, Report, Table, format_number};
use crate::spec::deserialize::FieldError;
use crate::spec::yaml_path::YamlPath;
use crate::steps::{CheckContext, Kind, StepContext, StepError, StepOutput};

pub struct SegmentProfile;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ProfileConfig {
    /// The table to read: a step in `needs` (its main dataset) or `step.name`. Default: the
    /// only step in `needs`.
    #[serde(default)]
    pub input: Option<String>,
    /// The column holding each customer's segment (default `segment`).
    #[serde(default = "default_segment")]
    pub segment: String,
    /// Numeric features to describe. Default: every numeric column not in `exclude`.
    #[serde(default)]
    pub numeric: Option<Vec<String>>,
    /// Categorical features to describe. Default: every text column not in `exclude` with at
    /// most `max_categories` distinct values.
    #[serde(default)]
    pub categorical: Option<Vec<String>>,
    /// Columns never described (ids, emails…).
    #[serde(default)]
    pub exclude: Vec<String>,
    /// How many top values of each categorical feature to show (default 3).
    #[serde(default = "default_top")]
    pub top: usize,
    /// With the default `categorical`, text columns with more distinct values are left out
    /// (default 50).
    #[serde(default = "default_max_categories")]
    pub max_categories: usize,
    /// Words for a numeric feature's low and high side in the plain-language line, e.g.
    /// `age: [younger, older]`. Without them: "high income", "2.3x average spend".
    #[serde(default)]
    pub words: BTreeMap<String, [String; 2]>,
}

fn default_segment() -> String {
    "segment".into()
}
fn default_top() -> usize {
    3
}
fn default_max_categories() -> usize {
    50
}

/// Segment label for customers whose segment is empty.
const NO_SEGMENT: &str = "(no segment)";

#[async_trait]
impl Kind for SegmentProfile {
    const NAME: &'static str = "segment.profile";
    const DESCRIPTION: &'static str = "Describes each segment: size, share, feature means and medians indexed against everyone, top values, a plain-language persona.";
    const OUTPUTS: &'static [&'static str] = &["segments", "customers"];
    type Config = ProfileConfig;

    fn check(&self, config: &ProfileConfig, ctx: &CheckContext<'_>) -> Vec<FieldError> {
        let root = YamlPath::root();
        let mut errors = input::check_input(config.input.as_deref(), ctx);
        let columns = ctx.columns_of(config.input.as_deref());
        errors.extend(input::check_column(
            root.key("segment"),
            &config.segment,
            columns,
        ));
        for (key, list) in [
            ("numeric", config.numeric.as_deref()),
            ("categorical", config.categorical.as_deref()),
            ("exclude", Some(config.exclude.as_slice())),
        ] {
            for (i, name) in list.unwrap_or_default().iter().enumerate() {
                errors.extend(input::check_column(root.key(key).index(i), name, columns));
            }
        }
        if config.top == 0 {
            errors.push(input::error(
                root.key("top"),
                "`top` must be at least 1".into(),
                None,
            ));
        }
        if let Some(numeric) = &config.numeric {
            for feature in config.words.keys() {
                if !numeric.contains(feature) {
                    errors.push(input::error(
                        root.key("words").key(feature.clone()),
                        format!("`{feature}` is not one of the numeric features"),
                        Some("words describe features listed under `numeric`".into()),
                    ));
                }
            }
        }
        errors
    }

    fn output_columns(
        &self,
        config: &ProfileConfig,
        ctx: &CheckContext<'_>,
    ) -> Option<Vec<Column>> {
        let columns = ctx.columns_of(config.input.as_deref())?;
        let numeric = match &config.numeric {
            Some(list) => list.clone(),
            None => columns
                .iter()
                .filter(|c| input::is_numeric_type(&c.data_type) && describable(config, &c.name))
                .map(|c| c.name.clone())
                .collect(),
        };
        // Default categorical features depend on the data (distinct values): unknown here.
        let categorical = config.categorical.clone()?;
        let mut out: Vec<Column> = [
            ("segment", "Utf8"),
            ("customers", "UInt64"),
            ("share", "Float64"),
            ("summary", "Utf8"),
        ]
        .iter()
        .map(|(n, t)| Column {
            name: n.to_string(),
            data_type: t.to_string(),
        })
        .collect();
        for feature in &numeric {
            for suffix in ["mean", "median", "index"] {
                out.push(Column {
                    name: format!("{feature}_{suffix}"),
                    data_type: "Float64".into(),
                });
            }
        }
        for feature in &categorical {
            out.push(Column {
                name: format!("{feature}_top"),
                data_type: "Utf8".into(),
            });
        }
        Some(out)
    }

    async fn run(&self, config: ProfileConfig, ctx: &StepContext) -> Result<StepOutput, StepError> {
        let table = input::input_table(config.input.as_deref(), ctx)?;
        let mut required = vec![("segment", config.segment.as_str())];
        for (key, list) in [
            ("numeric", config.numeric.as_deref()),
            ("categorical", config.categorical.as_deref()),
        ] {
            required.extend(list.unwrap_or_default().iter().map(|c| (key, c.as_str())));
        }
        let loaded = input::load(ctx, &table, &required).await?;
        let (numeric, categorical) = features(&config, &loaded)?;
        if numeric.is_empty() && categorical.is_empty() {
            return Err(StepError::permanent(format!(
                "`{table}` has no feature to describe besides `{}`; list `numeric` or `categorical` columns",
                config.segment
            )));
        }
        let labels: Vec<String> = loaded
            .strings(&config.segment)?
            .into_iter()
            .map(|s| s.unwrap_or_else(|| NO_SEGMENT.to_string()))
            .collect();
        let rows = labels.len();
        if rows == 0 {
            return Err(StepError::permanent(format!(
                "`{table}` has no customers to profile"
            )));
        }
        let mut numeric_values = Vec::new();
        for feature in &numeric {
            numeric_values.push(loaded.numbers(feature, "numeric")?);
        }
        let mut categorical_values = Vec::new();
        for feature in &categorical {
            categorical_values.push(loaded.strings(feature)?);
        }
        let profile = Profile::build(
            &labels,
            &numeric,
            &numeric_values,
            &categorical,
            &categorical_values,
            config.top,
            &config.words,
        );
        let (schema, batch) = profile.batch()?;
        ctx.write_dataset(MAIN_DATASET, schema, &[batch])?;
        ctx.write_report(&profile.report())?;
        ctx.info(&format!(
            "profiled {} segments of {rows} customers on {} numeric and {} categorical features",
            profile.segments.len(),
            numeric.len(),
            categorical.len()
        ));
        let personas: serde_json::Map<String, Value> = profile
            .segments
            .iter()
            .map(|s| (s.name.clone(), Value::from(s.summary.clone())))
            .collect();
        Ok(StepOutput::default()
            .with("segments", Value::Object(personas))
            .with("customers", rows))
    }
}

fn describable(config: &ProfileConfig, column: &str) -> bool {
    column != config.segment && !config.exclude.iter().any(|e| e == column)
}

/// The numeric and categorical features to describe.
fn features(
    config: &ProfileConfig,
    loaded: &Loaded,
) -> Result<(Vec<String>, Vec<String>), StepError> {
    let numeric = match &config.numeric {
        Some(list) => list.clone(),
        None => loaded
            .schema
            .fields()
            .iter()
            .filter(|f| f.data_type().is_numeric() && describable(config, f.name()))
            .map(|f| f.name().clone())
            .collect(),
    };
    let categorical = match &config.categorical {
        Some(list) => list.clone(),
        None => {
            let mut found = Vec::new();
            for field in loaded.schema.fields() {
                if !input::is_text(field.data_type()) || !describable(config, field.name()) {
                    continue;
                }
                let values = loaded.strings(field.name())?;
                let mut distinct = std::collections::HashSet::new();
                let small = values.iter().flatten().all(|v| {
                    distinct.insert(v.as_str());
                    distinct.len() <= config.max_categories
                });
                if small {
                    found.push(field.name().clone());
                }
            }
            found
        }
    };
    Ok((numeric, categorical))
}

struct NumericStats {
    mean: Option<f64>,
    median: Option<f64>,
    /// Mean / everyone's mean x 100; `None` when everyone's mean is not positive.
    index: Option<f64>,
}

struct SegmentProfileRow {
    name: String,
    customers: u64,
    share: f64,
    summary: String,
    numeric: Vec<NumericStats>,
    /// Per categorical feature: (value, share in the segment), most common first.
    top: Vec<Vec<(String, f64)>>,
}

struct Profile {
    numeric: Vec<String>,
    categorical: Vec<String>,
    overall: Vec<NumericStats>,
    segments: Vec<SegmentProfileRow>,
    customers: usize,
}

fn mean_median(values: &mut [f64]) -> (Option<f64>, Option<f64>) {
    if values.is_empty() {
        return (None, None);
    }
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    values.sort_by(f64::total_cmp);
    let n = values.len();
    let median = if n % 2 == 1 {
        values[n / 2]
    } else {
        (values[n / 2 - 1] + values[n / 2]) / 2.0
    };
    (Some(mean), Some(median))
}

impl Profile {
    fn build(
        labels: &[String],
        numeric: &[String],
        numeric_values: &[Vec<Option<f64>>],
        categorical: &[String],
        categorical_values: &[Vec<Option<String>>],
        top: usize,
        words: &BTreeMap<String, [String; 2]>,
    ) -> Self {
        let rows = labels.len();
        let mut members: HashMap<&str, Vec<usize>> = HashMap::new();
        for (i, label) in labels.iter().enumerate() {
            members.entry(label.as_str()).or_default().push(i);
        }
        let mut names: Vec<&str> = members.keys().copied().collect();
        names.sort_by(|a, b| members[b].len().cmp(&members[a].len()).then(a.cmp(b)));

        let overall: Vec<NumericStats> = numeric_values
            .iter()
            .map(|values| {
                let mut present: Vec<f64> = values.iter().flatten().copied().collect();
                let (mean, median) = mean_median(&mut present);
                NumericStats {
                    mean,
                    median,
                    index: mean.map(|_| 100.0),
                }
            })
            .collect();
        let overall_shares: Vec<HashMap<String, f64>> = categorical_values
            .iter()
            .map(|values| {
                let n = values.iter().flatten().count().max(1) as f64;
                input::counts(values.iter().flatten().map(String::as_str))
                    .into_iter()
                    .map(|(v, c)| (v, c as f64 / n))
                    .collect()
            })
            .collect();

        let segments = names
            .iter()
            .map(|name| {
                let rows_of = &members[name];
                let stats: Vec<NumericStats> = numeric_values
                    .iter()
                    .zip(&overall)
                    .map(|(values, all)| {
                        let mut present: Vec<f64> =
                            rows_of.iter().filter_map(|&i| values[i]).collect();
                        let (mean, median) = mean_median(&mut present);
                        let index = match (mean, all.mean) {
                            (Some(m), Some(a)) if a > 0.0 => Some(100.0 * m / a),
                            _ => None,
                        };
                        NumericStats {
                            mean,
                            median,
                            index,
                        }
                    })
                    .collect();
                let tops: Vec<Vec<(String, f64)>> = categorical_values
                    .iter()
                    .map(|values| {
                        let present: Vec<&str> = rows_of
                            .iter()
                            .filter_map(|&i| values[i].as_deref())
                            .collect();
                        let n = present.len().max(1) as f64;
                        input::counts(present.into_iter())
                            .into_iter()
                            .take(top)
                            .map(|(v, c)| (v, c as f64 / n))
                            .collect()
                    })
                    .collect();
                let numeric_contrasts: Vec<NumericContrast<'_>> = numeric
                    .iter()
                    .zip(&stats)
                    .map(|(feature, s)| NumericContrast {
                        feature,
                        ratio: s.index.map(|i| i / 100.0),
                    })
                    .collect();
                let categorical_contrasts: Vec<CategoricalContrast<'_>> = tops
                    .iter()
                    .zip(&overall_shares)
                    .filter_map(|(top, all)| {
                        let (value, share) = top.first()?;
                        Some(CategoricalContrast {
                            value,
                            share: *share,
                            overall_share: all.get(value.as_str()).copied().unwrap_or(0.0),
                        })
                    })
                    .collect();
                SegmentProfileRow {
                    name: name.to_string(),
                    customers: rows_of.len() as u64,
                    share: rows_of.len() as f64 / rows as f64,
                    summary: persona::describe(&numeric_contrasts, &categorical_contrasts, words),
                    numeric: stats,
                    top: tops,
                }
            })
            .collect();
        Profile {
            numeric: numeric.to_vec(),
            categorical: categorical.to_vec(),
            overall,
            segments,
            customers: rows,
        }
    }

    fn batch(&self) -> Result<(Arc<Schema>, RecordBatch), StepError> {
        let mut fields = vec![
            Field::new("segment", DataType::Utf8, false),
            Field::new("customers", DataType::UInt64, false),
            Field::new("share", DataType::Float64, false),
            Field::new("summary", DataType::Utf8, false),
        ];
        let mut columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values(
                self.segments.iter().map(|s| s.name.as_str()),
            )),
            Arc::new(UInt64Array::from_iter_values(
                self.segments.iter().map(|s| s.customers),
            )),
            Arc::new(Float64Array::from_iter_values(
                self.segments.iter().map(|s| s.share),
            )),
            Arc::new(StringArray::from_iter_values(
                self.segments.iter().map(|s| s.summary.as_str()),
            )),
        ];
        for (j, feature) in self.numeric.iter().enumerate() {
            type Pick = fn(&NumericStats) -> Option<f64>;
            let picks: [(&str, Pick); 3] = [
                ("mean", |s| s.mean),
                ("median", |s| s.median),
                ("index", |s| s.index),
            ];
            for (suffix, pick) in picks {
                fields.push(Field::new(
                    format!("{feature}_{suffix}"),
                    DataType::Float64,
                    true,
                ));
                columns.push(Arc::new(Float64Array::from_iter(
                    self.segments.iter().map(|s| pick(&s.numeric[j])),
                )));
            }
        }
        for (j, feature) in self.categorical.iter().enumerate() {
            fields.push(Field::new(format!("{feature}_top"), DataType::Utf8, false));
            columns.push(Arc::new(StringArray::from_iter_values(
                self.segments.iter().map(|s| top_text(&s.top[j])),
            )));
        }
        let schema = Arc::new(Schema::new(fields));
        let batch = RecordBatch::try_new(schema.clone(), columns)?;
        Ok((schema, batch))
    }

    fn report(&self) -> Report {
        let mut report = Report::new(SegmentProfile::NAME, "Segment personas");
        for s in &self.segments {
            report.summary.push(format!(
                "{} — {} customers ({:.1}%): {}",
                s.name,
                s.customers,
                100.0 * s.share,
                s.summary
            ));
        }
        report.charts.push(Chart::Bar {
            title: "Customers per segment".into(),
            labels: self.segments.iter().map(|s| s.name.clone()).collect(),
            values: self.segments.iter().map(|s| s.customers as f64).collect(),
            unit: Some("customers".into()),
        });
        report.tables.push(Table {
            title: "Personas".into(),
            columns: ["segment", "customers", "share", "persona"]
                .map(String::from)
                .to_vec(),
            rows: self
                .segments
                .iter()
                .map(|s| {
                    vec![
                        json!(s.name),
                        json!(s.customers),
                        json!(s.share),
                        json!(s.summary),
                    ]
                })
                .collect(),
        });
        if !self.numeric.is_empty() {
            let mut columns = vec!["segment".to_string()];
            for f in &self.numeric {
                columns.extend([
                    format!("{f} mean"),
                    format!("{f} median"),
                    format!("{f} index"),
                ]);
            }
            let row = |name: &str, stats: &[NumericStats]| {
                let mut row = vec![json!(name)];
                for s in stats {
                    row.extend([
                        json!(s.mean),
                        json!(s.median),
                        json!(s.index.map(f64::round)),
                    ]);
                }
                row
            };
            let mut rows: Vec<Vec<Value>> = self
                .segments
                .iter()
                .map(|s| row(&s.name, &s.numeric))
                .collect();
            rows.push(row(
                &format!("all {} customers", self.customers),
                &self.overall,
            ));
            report.tables.push(Table {
                title: "Numeric features (index: 100 = all customers)".into(),
                columns,
                rows,
            });
        }
        if !self.categorical.is_empty() {
            let mut columns = vec!["segment".to_string()];
            columns.extend(self.categorical.iter().map(|c| format!("top {c}")));
            report.tables.push(Table {
                title: "Categorical features".into(),
                columns,
                rows: self
                    .segments
                    .iter()
                    .map(|s| {
                        let mut row = vec![json!(s.name)];
                        row.extend(s.top.iter().map(|t| json!(top_text(t))));
                        row
                    })
                    .collect(),
            });
        }
        report
    }
}

/// "urban 62%, suburban 30%".
fn top_text(top: &[(String, f64)]) -> String {
    top.iter()
        .map(|(v, s)| format!("{v} {}%", format_number((100.0 * s).round())))
        .collect::<Vec<_>>()
        .join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn profile() -> Profile {
        let labels: Vec<String> = ["a", "a", "b", "b", "b", "b"].map(String::from).to_vec();
        let spend = vec![
            Some(10.0),
            Some(30.0),
            Some(1.0),
            Some(2.0),
            Some(3.0),
            None,
        ];
        let city: Vec<Option<String>> = ["x", "x", "y", "y", "x", "y"]
            .map(|s| Some(s.to_string()))
            .to_vec();
        Profile::build(
            &labels,
            &["spend".into()],
            &[spend],
            &["city".into()],
            &[city],
            2,
            &BTreeMap::new(),
        )
    }

    #[test]
    fn sizes_means_medians_and_index() {
        let p = profile();
        // Largest segment first.
        assert_eq!(p.segments[0].name, "b");
        assert_eq!(p.segments[0].customers, 4);
        assert!((p.segments[0].share - 4.0 / 6.0).abs() < 1e-12);
        // Everyone's mean spend: (10 + 30 + 1 + 2 + 3) / 5 = 9.2 (the missing value is left out).
        assert_eq!(p.overall[0].mean, Some(9.2));
        let a = &p.segments[1];
        assert_eq!(a.numeric[0].mean, Some(20.0));
        assert_eq!(a.numeric[0].median, Some(20.0));
        assert!((a.numeric[0].index.unwrap() - 100.0 * 20.0 / 9.2).abs() < 1e-9);
        assert_eq!(p.segments[0].numeric[0].median, Some(2.0));
        assert_eq!(a.summary, "2.2x average spend, mostly x");
        assert_eq!(top_text(&p.segments[0].top[0]), "y 75%, x 25%");
    }

    #[test]
    fn the_dataset_has_one_row_per_segment() {
        let (schema, batch) = profile().batch().expect("a batch");
        assert_eq!(batch.num_rows(), 2);
        let names: Vec<&str> = schema.fields().iter().map(|f| f.name().as_str()).collect();
        assert_eq!(
            names,
            [
                "segment",
                "customers",
                "share",
                "summary",
                "spend_mean",
                "spend_median",
                "spend_index",
                "city_top"
            ]
        );
    }
}
