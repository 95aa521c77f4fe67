//! Segment steps: turn a customer table into segments a marketer can act on.

pub mod compare;
pub mod input;
pub mod kmeans;
pub mod kmeans_fit;
pub mod persona;
pub mod profile;
pub mod quantile_score;
pub mod rand_index;
pub mod rfm;
pub mod rfm_table;
pub mod rules;
pub mod silhouette;
pub mod sql_condition;
pub mod standardize;
