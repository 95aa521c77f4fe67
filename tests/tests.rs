//! segflow's integration tests: each module drives the real binary.

mod support;

mod cli_output;
mod cli_validate;
mod data_clean;
mod data_gather;
mod data_http;
mod data_sql;
mod engine_crash;
mod engine_run;
mod main_job;
mod plugins;
mod publish;
mod schedule_cli;
mod schedule_serve;
mod segment_kmeans;
mod segment_pipeline;
mod segment_rfm;
mod segment_rules;
mod server_api;
mod shipped_experiment;
mod validate_ab;
mod validate_holdout;
mod web_ui;
