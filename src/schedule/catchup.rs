//! Fire times missed while segflow was down, and which of them to run (`catchup`).

use std::collections::VecDeque;

use chrono::{DateTime, Duration, Utc};

use super::{Fire, FireTimes};
use crate::spec::model::{Catchup, Schedule};

/// How far back missed fire times are caught up when `catchup_window` is not set.
pub const DEFAULT_CATCHUP_WINDOW: Duration = Duration::days(7);

/// `catchup: all` runs at most this many missed fire times (the latest ones): an every-minute
/// schedule down for a week would otherwise queue 10,080 runs.
pub const MAX_CATCHUP_RUNS: usize = 1000;

/// The missed fire times to run, and how many were passed over.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Missed {
    /// Oldest first.
    pub to_run: Vec<Fire>,
    /// Missed fire times that will not run (catchup `none` or `latest`, outside the window, or
    /// over [`MAX_CATCHUP_RUNS`]). `None` when not counted (`catchup: none` does not look).
    pub passed_over: Option<usize>,
    /// Whether any fire time was missed inside the window.
    pub any: bool,
}

/// The window of a schedule.
pub fn window_of(schedule: &Schedule) -> Duration {
    schedule
        .catchup_window
        .as_ref()
        .and_then(|w| Duration::from_std(w.0).ok())
        .unwrap_or(DEFAULT_CATCHUP_WINDOW)
}

/// The fire times in `(handled_until, now]` that are inside the window `(now - window, now]`,
/// filtered by the policy.
pub fn missed_fires(
    times: &FireTimes,
    policy: Catchup,
    window: Duration,
    handled_until: DateTime<Utc>,
    now: DateTime<Utc>,
) -> Missed {
    let from = handled_until.max(now - window);
    match policy {
        Catchup::None => Missed {
            to_run: Vec::new(),
            passed_over: None,
            any: times.next_after(from).is_some_and(|f| f.at <= now),
        },
        Catchup::Latest => {
            let mut count = 0usize;
            let latest = times.between(from, now).inspect(|_| count += 1).last();
            Missed {
                passed_over: Some(count.saturating_sub(1)),
                any: latest.is_some(),
                to_run: latest.into_iter().collect(),
            }
        }
        Catchup::All => {
            let (to_run, dropped) = latest_fires(times.between(from, now));
            Missed {
                any: !to_run.is_empty(),
                passed_over: Some(dropped),
                to_run,
            }
        }
    }
}

/// The last [`MAX_CATCHUP_RUNS`] of `fires` (oldest first), and how many earlier ones were
/// dropped to stay within it.
pub fn latest_fires(fires: impl IntoIterator<Item = Fire>) -> (Vec<Fire>, usize) {
    let mut kept = VecDeque::new();
    let mut dropped = 0;
    for fire in fires {
        if kept.len() == MAX_CATCHUP_RUNS {
            kept.pop_front();
            dropped += 1;
        }
        kept.push_back(fire);
    }
    (kept.into(), dropped)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::test_time::utc;

    fn run_times(missed: &Missed) -> Vec<String> {
        missed.to_run.iter().map(|f| f.at.to_rfc3339()).collect()
    }

    #[test]
    fn catchup_policies_over_a_downtime() {
        // Daily at 06:00 UTC; last handled on the 1st, back on the 4th at noon.
        let times = FireTimes::parse("0 6 * * *", "UTC").unwrap();
        let last = utc("2026-05-01T06:00:00Z");
        let now = utc("2026-05-04T12:00:00Z");
        let week = DEFAULT_CATCHUP_WINDOW;

        let none = missed_fires(&times, Catchup::None, week, last, now);
        assert!(none.to_run.is_empty() && none.any);

        let latest = missed_fires(&times, Catchup::Latest, week, last, now);
        assert_eq!(run_times(&latest), ["2026-05-04T06:00:00+00:00"]);
        assert_eq!(latest.passed_over, Some(2));

        let all = missed_fires(&times, Catchup::All, week, last, now);
        assert_eq!(
            run_times(&all),
            [
                "2026-05-02T06:00:00+00:00",
                "2026-05-03T06:00:00+00:00",
                "2026-05-04T06:00:00+00:00"
            ]
        );
        assert_eq!(all.passed_over, Some(0));
    }

    #[test]
    fn the_window_bounds_how_far_back() {
        let times = FireTimes::parse("0 6 * * *", "UTC").unwrap();
        let last = utc("2026-04-01T06:00:00Z");
        let now = utc("2026-05-04T12:00:00Z");
        // The default window: the 7 days before now.
        let all = missed_fires(&times, Catchup::All, DEFAULT_CATCHUP_WINDOW, last, now);
        assert_eq!(all.to_run.len(), 7);
        assert_eq!(all.to_run[0].at, utc("2026-04-28T06:00:00Z"));
        // A 2-day window.
        let all = missed_fires(&times, Catchup::All, Duration::days(2), last, now);
        assert_eq!(
            run_times(&all),
            ["2026-05-03T06:00:00+00:00", "2026-05-04T06:00:00+00:00"]
        );
        // Nothing missed inside a 1-hour window.
        let latest = missed_fires(&times, Catchup::Latest, Duration::hours(1), last, now);
        assert!(!latest.any && latest.to_run.is_empty());
    }

    #[test]
    fn nothing_is_missed_when_up_to_date() {
        let times = FireTimes::parse("0 6 * * *", "UTC").unwrap();
        let last = utc("2026-05-04T06:00:00Z");
        let now = utc("2026-05-04T12:00:00Z");
        for policy in [Catchup::None, Catchup::Latest, Catchup::All] {
            let missed = missed_fires(&times, policy, DEFAULT_CATCHUP_WINDOW, last, now);
            assert!(!missed.any, "{policy:?}");
            assert!(missed.to_run.is_empty(), "{policy:?}");
        }
    }

    #[test]
    fn catchup_all_keeps_the_latest_within_the_cap() {
        let times = FireTimes::parse("* * * * *", "UTC").unwrap();
        let now = utc("2026-05-04T12:00:00Z");
        let all = missed_fires(
            &times,
            Catchup::All,
            DEFAULT_CATCHUP_WINDOW,
            now - Duration::days(2),
            now,
        );
        assert_eq!(all.to_run.len(), MAX_CATCHUP_RUNS);
        assert_eq!(all.to_run.last().unwrap().at, now);
        assert_eq!(all.passed_over, Some(2 * 24 * 60 - MAX_CATCHUP_RUNS));
    }

    #[test]
    fn missed_times_across_a_dst_change_in_the_schedule_timezone() {
        // Daily 02:30 Berlin, down over the spring-forward night: it runs for 03:00 CEST.
        let times = FireTimes::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let latest = missed_fires(
            &times,
            Catchup::Latest,
            DEFAULT_CATCHUP_WINDOW,
            utc("2026-03-28T01:30:00Z"),
            utc("2026-03-29T08:00:00Z"),
        );
        assert_eq!(run_times(&latest), ["2026-03-29T01:00:00+00:00"]);
    }
}
