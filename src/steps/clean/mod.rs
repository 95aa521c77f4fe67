//! Clean steps: `clean` (ordered cleaning operations, rejected rows kept with a reason) and
//! `transform.sql` (SQL over the upstream datasets).

mod cast;
mod clip;
pub mod config;
mod dedupe;
mod email;
mod filter;
mod input;
mod missing;
mod standardize;
mod stats;
pub mod step;
mod table;
mod text;
pub mod transform_sql;
