//! Gather steps: bring customer data into the run as a dataset.

pub mod bad_rows;
pub mod csv;
mod csv_checked;
mod csv_infer;
mod csv_pieces;
mod csv_plain;
pub mod files;
pub mod http;
pub mod json;
pub mod overrides;
pub mod parquet;
mod pg_arrow;
mod row_json;
pub mod sql;
