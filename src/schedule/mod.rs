//! Schedules: cron lines in a timezone, their fire times across DST changes, catching up on
//! missed ones, what to do when a run is still going, and the clock the scheduler reads.

pub mod catchup;
pub mod clock;
pub mod cron_expr;
pub mod fire_times;
pub mod mark;
pub mod overlap;
#[cfg(test)]
pub(crate) mod test_time;

pub use catchup::{DEFAULT_CATCHUP_WINDOW, latest_fires, missed_fires};
pub use clock::{Clock, ManualClock, SystemClock};
pub use cron_expr::CronSchedule;
pub use fire_times::{DstRule, DstShift, Fire, FireTimes, wall_to_instant};
pub use mark::ScheduleMark;
pub use overlap::{FireDecision, FireQueue};
