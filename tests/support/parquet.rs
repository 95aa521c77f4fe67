//! Reading the Parquet datasets a run wrote, to check what a step handed on.

use std::collections::BTreeMap;
use std::path::Path;

use datafusion::arrow::array::{Array, AsArray};
use datafusion::arrow::compute::cast;
use datafusion::arrow::datatypes::{DataType, Float64Type};
use datafusion::parquet::arrow::arrow_reader::ParquetRecordBatchReaderBuilder;

/// A dataset's rows as column name → cell, numbers as `f64`, text as `String`, nulls as `None`.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Number(f64),
    Text(String),
}

impl Cell {
    pub fn text(&self) -> &str {
        match self {
            Cell::Text(t) => t,
            other => panic!("expected text, found {other:?}"),
        }
    }

    pub fn number(&self) -> Option<f64> {
        match self {
            Cell::Number(n) => Some(*n),
            Cell::Null => None,
            other => panic!("expected a number, found {other:?}"),
        }
    }
}

pub type Row = BTreeMap<String, Cell>;

pub fn read_rows(path: &Path) -> Vec<Row> {
    let file = std::fs::File::open(path).unwrap_or_else(|e| panic!("open {}: {e}", path.display()));
    let reader = ParquetRecordBatchReaderBuilder::try_new(file)
        .expect("a Parquet file")
        .build()
        .expect("a reader");
    let mut rows = Vec::new();
    for batch in reader {
        let batch = batch.expect("a batch");
        let schema = batch.schema();
        // Each column once as numbers or as text.
        let columns: Vec<(String, bool, _)> = schema
            .fields()
            .iter()
            .zip(batch.columns())
            .map(|(field, column)| {
                let numeric = field.data_type().is_numeric();
                let target = if numeric {
                    DataType::Float64
                } else {
                    DataType::Utf8
                };
                (
                    field.name().clone(),
                    numeric,
                    cast(column, &target).expect("cast"),
                )
            })
            .collect();
        for row in 0..batch.num_rows() {
            let mut cells = Row::new();
            for (name, numeric, column) in &columns {
                let cell = if column.is_null(row) {
                    Cell::Null
                } else if *numeric {
                    Cell::Number(column.as_primitive::<Float64Type>().value(row))
                } else {
                    Cell::Text(column.as_string::<i32>().value(row).to_string())
                };
                cells.insert(name.clone(), cell);
            }
            rows.push(cells);
        }
    }
    rows
}

/// The rows of dataset `name` that step `step` wrote in run `run_id` of `project`.
pub fn dataset(project: &super::Project, run_id: &str, step: &str, name: &str) -> Vec<Row> {
    let shown = project.show(run_id);
    let record = super::step(&shown, step);
    let file = record["datasets"]
        .as_array()
        .expect("datasets")
        .iter()
        .find(|d| d["name"] == name)
        .unwrap_or_else(|| panic!("step {step} wrote no dataset {name}: {record}"))["file"]
        .as_str()
        .expect("a file")
        .to_string();
    read_rows(&project.path(".segflow/runs").join(run_id).join(file))
}
