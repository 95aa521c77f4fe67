//! `segment.kmeans`: clusters customers on numeric features, with k given or chosen by
//! silhouette over a range.

use std::sync::Arc;

use async_trait::async_trait;
use datafusion::arrow::array::{ArrayRef, Float64Array, RecordBatch, StringArray, UInt64Array};
use datafusion::arrow::datatypes::{DataType, Field, Schema};
use schemars::JsonSchema;
use serde::Deserialize;
use serde_json::{Value, json};

use super::input;
use super::kmeans_fit::{self, Clustering, FitError, Matrix, Params};
use super::silhouette::{sample_rows, silhouette};
use super::standardize::{Scaler, Scaling};
use crate::data::{Column, MAIN_DATASET};
use crate::report::{Chart, Report, Table};
use crate::spec::deserialize::FieldError;
use crate::spec::yaml_path::YamlPath;
use crate::steps::{CheckContext, Kind, StepContext, StepError, StepOutput};

pub struct SegmentKmeans;

#[derive(Debug, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KmeansConfig {
    /// The table to read: a step in `needs` (its main dataset) or `step.name`. Default: the
    /// only step in `needs`.
    #[serde(default)]
    pub input: Option<String>,
    /// The numeric columns to cluster on.
    pub features: Vec<String>,
    /// The number of clusters, or `auto` to pick it from `k_range` by silhouette.
    pub k: KChoice,
    /// With `k: auto`, the smallest and largest k to try (default [2, 10]).
    #[serde(default = "default_k_range")]
    pub k_range: [usize; 2],
    /// How features are put on one scale first: `zscore` (default), `minmax` or `none`.
    #[serde(default)]
    pub standardize: Scaling,
    /// Runs from different k-means++ starts; the lowest inertia wins (default 1).
    #[serde(default = "default_n_init")]
    pub n_init: usize,
    /// The most Lloyd iterations per run (default 300).
    #[serde(default = "default_max_iter")]
    pub max_iter: usize,
    /// Convergence tolerance, relative to the mean feature variance (default 0.0001).
    #[serde(default = "default_tol")]
    pub tol: f64,
    /// The random seed: the same seed and data give the same clusters (default 0).
    #[serde(default)]
    pub seed: u64,
    /// What to do with a customer missing a feature: `error` (default), `drop` (the customer
    /// gets no cluster, an empty segment) or `mean` (use the feature's mean).
    #[serde(default)]
    pub nulls: NullPolicy,
    /// The column the cluster is written to (default `segment`); its distance to the cluster's
    /// centre goes to `<column>_distance`.
    #[serde(default = "default_column")]
    pub column: String,
    /// How many customers the silhouette is computed on (default 10000; drawn with the seed).
    #[serde(default = "default_sample")]
    pub silhouette_sample: usize,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(untagged)]
pub enum KChoice {
    Fixed(usize),
    Auto(AutoWord),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum AutoWord {
    Auto,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize, JsonSchema)]
#[serde(rename_all = "snake_case")]
pub enum NullPolicy {
    #[default]
    Error,
    Drop,
    Mean,
}

fn default_k_range() -> [usize; 2] {
    [2, 10]
}
fn default_n_init() -> usize {
    1
}
fn default_max_iter() -> usize {
    300
}
fn default_tol() -> f64 {
    1e-4
}
fn default_column() -> String {
    "segment".into()
}
fn default_sample() -> usize {
    10_000
}

/// The name of cluster `i` (0-based, clusters ordered by size, largest first).
pub fn cluster_name(i: usize) -> String {
    format!("cluster_{}", i + 1)
}

#[async_trait]
impl Kind for SegmentKmeans {
    const NAME: &'static str = "segment.kmeans";
    const DESCRIPTION: &'static str = "Clusters customers with k-means on standardized numeric features; k fixed or chosen by silhouette.";
    const OUTPUTS: &'static [&'static str] = &[
        "k",
        "inertia",
        "silhouette",
        "iterations",
        "customers",
        "unassigned",
        "inertia_curve",
    ];
    type Config = KmeansConfig;

    fn check(&self, config: &KmeansConfig, ctx: &CheckContext<'_>) -> Vec<FieldError> {
        let root = YamlPath::root();
        let mut errors = input::check_input(config.input.as_deref(), ctx);
        let columns = ctx.columns_of(config.input.as_deref());
        if config.features.is_empty() {
            errors.push(input::error(
                root.key("features"),
                "there are no features".into(),
                Some("list the numeric columns to cluster on, e.g. [recency_days, frequency, monetary]".into()),
            ));
        }
        for (i, feature) in config.features.iter().enumerate() {
            errors.extend(input::check_numeric_column(
                root.key("features").index(i),
                feature,
                columns,
            ));
            if config.features[..i].contains(feature) {
                errors.push(input::error(
                    root.key("features").index(i),
                    format!("`{feature}` is listed twice"),
                    None,
                ));
            }
        }
        match config.k {
            KChoice::Fixed(k) if k < 1 => errors.push(input::error(
                root.key("k"),
                "k must be at least 1".into(),
                Some("or write `k: auto` to choose it by silhouette".into()),
            )),
            KChoice::Auto(_) => {
                let [low, high] = config.k_range;
                if low < 2 || low > high {
                    errors.push(input::error(
                        root.key("k_range"),
                        format!("[{low}, {high}] cannot be searched"),
                        Some("write [low, high] with 2 <= low <= high (the silhouette needs 2 clusters), e.g. [2, 10]".into()),
                    ));
                }
            }
            _ => {}
        }
        for (key, value) in [
            ("n_init", config.n_init),
            ("max_iter", config.max_iter),
            ("silhouette_sample", config.silhouette_sample),
        ] {
            if value == 0 {
                errors.push(input::error(
                    root.key(key),
                    format!("`{key}` must be at least 1"),
                    None,
                ));
            }
        }
        if !(config.tol >= 0.0 && config.tol.is_finite()) {
            errors.push(input::error(
                root.key("tol"),
                "`tol` must be 0 or more".into(),
                None,
            ));
        }
        errors.extend(input::check_new_column(
            root.key("column"),
            &config.column,
            columns,
        ));
        errors.extend(input::check_new_column(
            root.key("column"),
            &format!("{}_distance", config.column),
            columns,
        ));
        errors
    }

    fn output_columns(&self, config: &KmeansConfig, ctx: &CheckContext<'_>) -> Option<Vec<Column>> {
        let mut columns = ctx.columns_of(config.input.as_deref())?.to_vec();
        columns.push(Column {
            name: config.column.clone(),
            data_type: DataType::Utf8.to_string(),
        });
        columns.push(Column {
            name: format!("{}_distance", config.column),
            data_type: DataType::Float64.to_string(),
        });
        Some(columns)
    }

    async fn run(&self, config: KmeansConfig, ctx: &StepContext) -> Result<StepOutput, StepError> {
        let table = input::input_table(config.input.as_deref(), ctx)?;
        let required: Vec<(&str, &str)> = config
            .features
            .iter()
            .map(|f| ("features", f.as_str()))
            .collect();
        let loaded = input::load(ctx, &table, &required).await?;
        let distance_column = format!("{}_distance", config.column);
        input::check_free(&table, &loaded.schema, "column", &config.column)?;
        input::check_free(&table, &loaded.schema, "column", &distance_column)?;
        let rows = loaded.rows();
        let d = config.features.len();
        let mut columns = Vec::with_capacity(d);
        for feature in &config.features {
            columns.push(loaded.numbers(feature, "features")?);
        }
        // Which rows are clustered, and their values (row-major).
        let (kept, mut data) = matrix(&config, &columns, rows, &ctx.step_id)?;
        if kept.len() < rows {
            ctx.warn(&format!(
                "{} customers miss a feature and get no cluster (nulls: drop)",
                rows - kept.len()
            ));
        }
        let scaler = Scaler::fit(config.standardize, &data, d);
        for &j in &scaler.constant {
            ctx.warn(&format!(
                "feature `{}` has the same value for every customer: it cannot separate clusters",
                config.features[j]
            ));
        }
        scaler.apply(&mut data);
        let cancel = ctx.cancel.clone();
        let sample_size = config.silhouette_sample;
        let k_choice = config.k;
        let k_range = config.k_range;
        let seed = config.seed;
        let base = Params {
            k: 1,
            n_init: config.n_init,
            max_iter: config.max_iter,
            tol: config.tol,
            seed,
        };
        let step_id = ctx.step_id.clone();
        let search = tokio::task::spawn_blocking(move || {
            let x = Matrix::new(&data, d);
            search(x, k_choice, k_range, &base, sample_size, &|| {
                cancel.is_cancelled()
            })
        })
        .await
        .map_err(|e| StepError::new(format!("the clustering thread stopped: {e}")))?;
        let found = match search {
            Ok(found) => found,
            Err(FitError::Cancelled) => return Err(StepError::new("cancelled")),
            Err(e) => return Err(StepError::permanent(format!("{step_id}: {e}"))),
        };
        let Search {
            fit,
            silhouette: score,
            curve,
        } = found;

        // Clusters ordered by size, largest first, so names are stable between runs.
        let mut sizes = vec![0u64; fit.k];
        for &l in &fit.labels {
            sizes[l as usize] += 1;
        }
        let mut order: Vec<usize> = (0..fit.k).collect();
        order.sort_by(|&a, &b| sizes[b].cmp(&sizes[a]).then(a.cmp(&b)));
        let mut rank = vec![0usize; fit.k];
        for (position, &cluster) in order.iter().enumerate() {
            rank[cluster] = position;
        }
        let mut segment: Vec<Option<String>> = vec![None; rows];
        let mut distance: Vec<Option<f64>> = vec![None; rows];
        for (i, &row) in kept.iter().enumerate() {
            segment[row] = Some(cluster_name(rank[fit.labels[i] as usize]));
            distance[row] = Some(fit.sq_distances[i].sqrt());
        }
        let (schema, batches) = loaded.with_columns(vec![
            (
                Arc::new(Field::new(&config.column, DataType::Utf8, true)),
                Arc::new(StringArray::from(segment)) as ArrayRef,
            ),
            (
                Arc::new(Field::new(&distance_column, DataType::Float64, true)),
                Arc::new(Float64Array::from(distance)) as ArrayRef,
            ),
        ])?;
        let written = ctx.write_dataset(MAIN_DATASET, schema, &batches)?;

        // Centroids in the features' own units.
        let mut centroids = fit.centroids.clone();
        scaler.invert(&mut centroids);
        let clustered = kept.len() as f64;
        let mut fields = vec![
            Field::new(&config.column, DataType::Utf8, false),
            Field::new("customers", DataType::UInt64, false),
            Field::new("share", DataType::Float64, false),
        ];
        fields.extend(
            config
                .features
                .iter()
                .map(|f| Field::new(f, DataType::Float64, false)),
        );
        let centroid_schema = Arc::new(Schema::new(fields));
        let mut centroid_columns: Vec<ArrayRef> = vec![
            Arc::new(StringArray::from_iter_values((0..fit.k).map(cluster_name))),
            Arc::new(UInt64Array::from_iter_values(
                order.iter().map(|&c| sizes[c]),
            )),
            Arc::new(Float64Array::from_iter_values(
                order.iter().map(|&c| sizes[c] as f64 / clustered),
            )),
        ];
        for j in 0..d {
            centroid_columns.push(Arc::new(Float64Array::from_iter_values(
                order.iter().map(|&c| centroids[c * d + j]),
            )));
        }
        let centroid_batch = RecordBatch::try_new(centroid_schema.clone(), centroid_columns)?;
        ctx.write_dataset("centroids", centroid_schema, &[centroid_batch])?;

        let report = report(&config, &fit, &order, &sizes, &centroids, score, &curve);
        ctx.write_report(&report)?;
        ctx.info(&format!(
            "{} customers in {} clusters (inertia {:.1}, silhouette {})",
            kept.len(),
            fit.k,
            fit.inertia,
            score.map_or("n/a".into(), |s| format!("{s:.3}"))
        ));
        let curve_json: Vec<Value> = curve
            .iter()
            .map(|p| json!({ "k": p.k, "inertia": p.inertia, "silhouette": p.silhouette }))
            .collect();
        Ok(StepOutput::default()
            .with("k", fit.k)
            .with("inertia", fit.inertia)
            .with("silhouette", score.map_or(Value::Null, Value::from))
            .with("iterations", fit.iterations)
            .with("customers", written.rows)
            .with("unassigned", rows - kept.len())
            .with("inertia_curve", Value::Array(curve_json)))
    }
}

/// The rows to cluster and their feature values (row-major), after the null policy.
fn matrix(
    config: &KmeansConfig,
    columns: &[Vec<Option<f64>>],
    rows: usize,
    step: &str,
) -> Result<(Vec<usize>, Vec<f64>), StepError> {
    let d = columns.len();
    for (j, column) in columns.iter().enumerate() {
        if let Some(i) = column
            .iter()
            .position(|v| v.is_some_and(|v| !v.is_finite()))
        {
            return Err(StepError::permanent(format!(
                "{step}: feature `{}` is not a finite number in row {}; clean it first",
                config.features[j],
                i + 1
            )));
        }
    }
    let missing: Vec<(usize, usize, usize)> = columns
        .iter()
        .enumerate()
        .filter_map(|(j, c)| {
            let n = c.iter().filter(|v| v.is_none()).count();
            let first = c.iter().position(Option::is_none)?;
            Some((j, n, first))
        })
        .collect();
    if !missing.is_empty() && config.nulls == NullPolicy::Error {
        let list: Vec<String> = missing
            .iter()
            .map(|(j, n, first)| {
                format!(
                    "`{}` is empty in {n} rows (first: row {})",
                    config.features[*j],
                    first + 1
                )
            })
            .collect();
        return Err(StepError::permanent(format!(
            "{step}: {}; set `nulls: drop` to leave those customers unclustered, `nulls: mean` to use the feature's mean, or fill them in a `clean` step",
            list.join(", ")
        )));
    }
    let means: Vec<f64> = columns
        .iter()
        .map(|c| {
            let (sum, n) = c
                .iter()
                .flatten()
                .fold((0.0, 0usize), |(s, n), v| (s + v, n + 1));
            if n == 0 { 0.0 } else { sum / n as f64 }
        })
        .collect();
    let mut kept = Vec::with_capacity(rows);
    let mut data = Vec::with_capacity(rows * d);
    for i in 0..rows {
        if config.nulls == NullPolicy::Drop && columns.iter().any(|c| c[i].is_none()) {
            continue;
        }
        kept.push(i);
        for (j, column) in columns.iter().enumerate() {
            data.push(column[i].unwrap_or(means[j]));
        }
    }
    Ok((kept, data))
}

/// One point of the k search.
#[derive(Debug, Clone)]
pub struct CurvePoint {
    pub k: usize,
    pub inertia: f64,
    pub silhouette: Option<f64>,
}

pub struct Search {
    pub fit: Clustering,
    pub silhouette: Option<f64>,
    /// Every k tried (one point for a fixed k).
    pub curve: Vec<CurvePoint>,
}

/// Fits k, or every k of the range and keeps the best silhouette (the smaller k on a tie).
pub fn search(
    x: Matrix<'_>,
    k: KChoice,
    k_range: [usize; 2],
    base: &Params,
    sample_size: usize,
    cancelled: &(dyn Fn() -> bool + Sync),
) -> Result<Search, FitError> {
    let sample = sample_rows(x.rows, sample_size, base.seed);
    let candidates: Vec<usize> = match k {
        KChoice::Fixed(k) => vec![k],
        KChoice::Auto(_) => {
            let high = k_range[1].min(x.rows.saturating_sub(1));
            (k_range[0]..=high).collect()
        }
    };
    if candidates.is_empty() {
        return Err(FitError::TooFewRows {
            rows: x.rows,
            k: k_range[0] + 1,
        });
    }
    let mut best: Option<(Clustering, Option<f64>)> = None;
    let mut curve = Vec::new();
    for k in candidates {
        let params = Params { k, ..base.clone() };
        let fit = kmeans_fit::fit(x, &params, cancelled)?;
        let score = if k >= 2 {
            silhouette(x, &fit.labels, k, &sample)
        } else {
            None
        };
        curve.push(CurvePoint {
            k,
            inertia: fit.inertia,
            silhouette: score,
        });
        let better = match (&best, score) {
            (None, _) => true,
            (Some((_, Some(b))), Some(s)) => s > *b,
            (Some((_, None)), Some(_)) => true,
            _ => false,
        };
        if better {
            best = Some((fit, score));
        }
    }
    let (fit, silhouette) = best.expect("at least one k");
    Ok(Search {
        fit,
        silhouette,
        curve,
    })
}

fn report(
    config: &KmeansConfig,
    fit: &Clustering,
    order: &[usize],
    sizes: &[u64],
    centroids: &[f64],
    silhouette: Option<f64>,
    curve: &[CurvePoint],
) -> Report {
    let d = config.features.len();
    let total: u64 = sizes.iter().sum();
    let mut report = Report::new(SegmentKmeans::NAME, "k-means clusters");
    let how = match config.k {
        KChoice::Fixed(_) => "k was given".to_string(),
        KChoice::Auto(_) => format!(
            "k chosen by the best silhouette for k from {} to {}",
            config.k_range[0], config.k_range[1]
        ),
    };
    report.summary.push(format!(
        "{total} customers in {} clusters on {} ({how}).",
        fit.k,
        config.features.join(", ")
    ));
    report.summary.push(format!(
        "Inertia {:.1}; silhouette {} (from -1 to 1, higher is better separated).",
        fit.inertia,
        silhouette.map_or("n/a".into(), |s| format!("{s:.3}"))
    ));
    report.charts.push(Chart::Bar {
        title: "Customers per cluster".into(),
        labels: (0..fit.k).map(cluster_name).collect(),
        values: order.iter().map(|&c| sizes[c] as f64).collect(),
        unit: Some("customers".into()),
    });
    if curve.len() > 1 {
        report.charts.push(Chart::Bar {
            title: "Inertia by k".into(),
            labels: curve.iter().map(|p| format!("k={}", p.k)).collect(),
            values: curve.iter().map(|p| p.inertia).collect(),
            unit: Some("inertia".into()),
        });
        // k = 1 has no silhouette: only the k that have one are drawn.
        let scored: Vec<(usize, f64)> = curve
            .iter()
            .filter_map(|p| p.silhouette.map(|s| (p.k, s)))
            .collect();
        report.charts.push(Chart::Bar {
            title: "Silhouette by k".into(),
            labels: scored.iter().map(|(k, _)| format!("k={k}")).collect(),
            values: scored.iter().map(|(_, s)| *s).collect(),
            unit: Some("silhouette".into()),
        });
    }
    let mut columns = vec!["cluster".to_string(), "customers".into(), "share".into()];
    columns.extend(config.features.iter().map(|f| format!("{f} (centre)")));
    report.tables.push(Table {
        title: "Cluster centres in the features' units".into(),
        columns,
        rows: order
            .iter()
            .enumerate()
            .map(|(position, &c)| {
                let mut row = vec![
                    json!(cluster_name(position)),
                    json!(sizes[c]),
                    json!(sizes[c] as f64 / total.max(1) as f64),
                ];
                row.extend((0..d).map(|j| json!(centroids[c * d + j])));
                row
            })
            .collect(),
    });
    report
}
