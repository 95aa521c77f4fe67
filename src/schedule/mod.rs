//! Schedules: cron lines in a timezone.

pub mod cron_expr;

pub use cron_expr::CronSchedule;
