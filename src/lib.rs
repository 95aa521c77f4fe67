//! segflow: a workflow orchestrator for customer-segmentation pipelines.
//!
//! A pipeline file (`spec`) becomes a DAG (`plan`) that the `engine` runs, step by step, with
//! each step's kind found in the `steps` registry; every state change is kept in the `store`,
//! and datasets flow between steps as Parquet files (`data`).

pub mod cli;
pub mod data;
pub mod engine;
pub mod logging;
pub mod plan;
pub mod plugins;
pub mod project;
pub mod redact;
pub mod report;
pub mod schedule;
pub mod secrets;
pub mod server;
pub mod service;
pub mod spec;
pub mod stats;
pub mod steps;
pub mod store;
