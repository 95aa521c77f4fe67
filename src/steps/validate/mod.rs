//! Validate steps: hold customers out of a campaign (`validate.holdout`) and measure whether the
//! campaign worked (`validate.ab`).

pub mod ab;
mod ab_report;
mod analysis;
pub mod assignment;
pub mod bucket;
mod columns;
mod gates;
pub mod holdout;
pub mod outcomes;
mod split_report;
