//! When a cron line fires in a timezone, right across DST changes.
//!
//! The `cron` crate, given a chrono-tz time, leaves out a wall time that falls in a
//! spring-forward gap (a daily 02:30 in Europe/Berlin does not run on the last Sunday of March)
//! and yields a time of the repeated fall-back hour twice, out of order. segflow reads the line
//! as wall-clock times (the crate over naive times) and maps each to real instants itself:
//!
//! - A line with fixed hours (`30 2 * * *`, `0 6 * * 1`) fires once per wall-clock time: a time
//!   in the gap fires once, at the end of the gap (02:30 → 03:00); a time in the repeated hour
//!   fires once, the first time it comes.
//! - A line that allows every hour (`0 * * * *`, `*/15 * * * *`, every second) keeps its pace in
//!   elapsed time, as Vixie cron does for such jobs: in the repeated hour it fires in both
//!   passes, and wall times of the gap, which never happen, are not made up.

use chrono::{DateTime, Duration, LocalResult, NaiveDateTime, Offset, TimeZone, Utc};
use chrono_tz::Tz;

use super::CronSchedule;

/// How DST changes are handled; chosen from the cron line (see the module comment).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DstRule {
    /// Once per wall-clock time: gap times fire at the end of the gap, repeated ones once.
    WallClock,
    /// Every instant whose local time matches: repeated times twice, gap times never.
    Elapsed,
}

/// How a fire time relates to a DST change, for people reading `segflow next`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DstShift {
    /// The wall time does not exist that day; the fire time is the end of the gap.
    Gap,
    /// The wall time happens twice that night; this is the first.
    FirstOfTwo,
    /// The wall time happens twice that night; this is the second.
    SecondOfTwo,
}

/// One fire time.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Fire {
    /// The instant it fires at.
    pub at: DateTime<Utc>,
    /// The wall-clock time the cron line names, in the schedule's timezone.
    pub wall: NaiveDateTime,
    /// Set when a DST change moves or repeats the wall time.
    pub shift: Option<DstShift>,
}

/// The fire times of a cron line in a timezone.
#[derive(Debug, Clone)]
pub struct FireTimes {
    cron: CronSchedule,
    timezone: Tz,
    rule: DstRule,
}

/// The largest jump of a UTC offset at one change, well above any real one (Samoa's 2011 day
/// skip is a gap, not a fold).
const MAX_FOLD: Duration = Duration::hours(3);
/// Wall times looked at for one answer before giving up (a year of hourly times; far more than
/// any real DST change needs even for every-second lines).
const MAX_STEPS: usize = 200_000;

impl FireTimes {
    pub fn new(cron: CronSchedule, timezone: Tz) -> Self {
        let rule = if cron.every_hour() {
            DstRule::Elapsed
        } else {
            DstRule::WallClock
        };
        FireTimes {
            cron,
            timezone,
            rule,
        }
    }

    /// Parses a cron line and an IANA timezone name, with the messages `segflow validate` gives.
    pub fn parse(cron: &str, timezone: &str) -> Result<Self, String> {
        let cron = CronSchedule::parse(cron)?;
        let timezone: Tz = timezone
            .parse()
            .map_err(|_| format!("`{timezone}` is not an IANA timezone"))?;
        Ok(FireTimes::new(cron, timezone))
    }

    /// The fire times of a pipeline's `schedule`.
    pub fn of(schedule: &crate::spec::model::Schedule) -> Result<Self, String> {
        FireTimes::parse(&schedule.cron, &schedule.timezone)
    }

    pub fn cron(&self) -> &CronSchedule {
        &self.cron
    }

    pub fn timezone(&self) -> Tz {
        self.timezone
    }

    pub fn rule(&self) -> DstRule {
        self.rule
    }

    /// The first fire time strictly after `after`.
    pub fn next_after(&self, after: DateTime<Utc>) -> Option<Fire> {
        match self.rule {
            DstRule::WallClock => self.next_wall_clock(after),
            DstRule::Elapsed => self.next_elapsed(after),
        }
    }

    /// The fire times strictly after `after`, in order.
    pub fn after(&self, after: DateTime<Utc>) -> impl Iterator<Item = Fire> + '_ {
        let mut cursor = after;
        std::iter::from_fn(move || {
            let fire = self.next_after(cursor)?;
            cursor = fire.at;
            Some(fire)
        })
    }

    /// The fire times in `(after, until]`, in order.
    pub fn between(
        &self,
        after: DateTime<Utc>,
        until: DateTime<Utc>,
    ) -> impl Iterator<Item = Fire> + '_ {
        self.after(after).take_while(move |f| f.at <= until)
    }

    /// The instant's time on the schedule's wall clock.
    pub fn local(&self, at: DateTime<Utc>) -> DateTime<Tz> {
        at.with_timezone(&self.timezone)
    }

    /// The instant on the schedule's wall clock as people read it: `2026-03-29 03:00:00 CEST`.
    pub fn local_text(&self, at: DateTime<Utc>) -> String {
        self.local(at).format("%Y-%m-%d %H:%M:%S %Z").to_string()
    }

    /// Wall times map to instants in order (first occurrence, end of gap), so the first one
    /// past `after` is the answer.
    fn next_wall_clock(&self, after: DateTime<Utc>) -> Option<Fire> {
        let mut cursor = self.local(after).naive_local();
        for _ in 0..MAX_STEPS {
            let wall = self.cron.next_wall_time(cursor)?;
            let at = wall_to_instant(self.timezone, wall);
            let shift = match self.timezone.from_local_datetime(&wall) {
                LocalResult::Single(_) => None,
                LocalResult::Ambiguous(..) => Some(DstShift::FirstOfTwo),
                LocalResult::None => Some(DstShift::Gap),
            };
            if at > after {
                return Some(Fire { at, wall, shift });
            }
            cursor = wall;
        }
        None
    }

    /// In a repeated hour the second pass has wall times earlier than the first pass's, so when
    /// a fold is near the search starts that much earlier and keeps the smallest instant; it
    /// stops at the first wall time that exists once, as every later one comes later.
    fn next_elapsed(&self, after: DateTime<Utc>) -> Option<Fire> {
        let offset_now = self.offset_at(after);
        let offset_soon = self.offset_at(after + MAX_FOLD);
        let fold_ahead = (offset_now - offset_soon).max(Duration::zero());
        let mut cursor = self.local(after).naive_local() - fold_ahead;
        let mut best: Option<Fire> = None;
        let keep = |candidate: Fire, best: &mut Option<Fire>| {
            if candidate.at > after && best.is_none_or(|b| candidate.at < b.at) {
                *best = Some(candidate);
            }
        };
        for _ in 0..MAX_STEPS {
            let Some(wall) = self.cron.next_wall_time(cursor) else {
                return best;
            };
            cursor = wall;
            match self.timezone.from_local_datetime(&wall) {
                LocalResult::Single(t) => {
                    let at = t.with_timezone(&Utc);
                    if at > after {
                        keep(
                            Fire {
                                at,
                                wall,
                                shift: None,
                            },
                            &mut best,
                        );
                        return best;
                    }
                }
                LocalResult::Ambiguous(first, second) => {
                    for (t, shift) in [
                        (first, DstShift::FirstOfTwo),
                        (second, DstShift::SecondOfTwo),
                    ] {
                        keep(
                            Fire {
                                at: t.with_timezone(&Utc),
                                wall,
                                shift: Some(shift),
                            },
                            &mut best,
                        );
                    }
                    // With no second pass ahead of `after`, later wall times come later.
                    if fold_ahead.is_zero() && best.is_some() {
                        return best;
                    }
                }
                LocalResult::None => {}
            }
        }
        best
    }

    fn offset_at(&self, at: DateTime<Utc>) -> Duration {
        let seconds = self
            .timezone
            .offset_from_utc_datetime(&at.naive_utc())
            .fix()
            .local_minus_utc();
        Duration::seconds(seconds.into())
    }
}

/// The first instant at or after a wall-clock time: the time itself, its first occurrence in a
/// repeated hour, or the end of the DST gap it falls in.
pub fn wall_to_instant(timezone: Tz, wall: NaiveDateTime) -> DateTime<Utc> {
    match timezone.from_local_datetime(&wall) {
        LocalResult::Single(t) => t.with_timezone(&Utc),
        LocalResult::Ambiguous(first, _) => first.with_timezone(&Utc),
        LocalResult::None => gap_end(timezone, wall),
    }
}

/// The instant a DST gap containing `wall` ends: the first instant whose local time is past
/// `wall`. Local time only moves forward around a gap, so a binary search over seconds finds it.
fn gap_end(timezone: Tz, wall: NaiveDateTime) -> DateTime<Utc> {
    // UTC offsets lie within -12h..+14h, so these bracket the instant.
    let mut low = (wall - Duration::hours(15)).and_utc().timestamp();
    let mut high = (wall + Duration::hours(13)).and_utc().timestamp();
    let local = |seconds: i64| {
        DateTime::from_timestamp(seconds, 0)
            .map(|t| timezone.from_utc_datetime(&t.naive_utc()).naive_local())
    };
    while high - low > 1 {
        let middle = low + (high - low) / 2;
        match local(middle) {
            Some(t) if t >= wall => high = middle,
            _ => low = middle,
        }
    }
    DateTime::from_timestamp(high, 0).unwrap_or_else(|| wall.and_utc())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::schedule::test_time::utc;

    /// The next `n` fire times after `after`, as local RFC 3339 times.
    fn fires(cron: &str, timezone: &str, after: &str, n: usize) -> Vec<String> {
        let times = FireTimes::parse(cron, timezone).unwrap();
        times
            .after(utc(after))
            .take(n)
            .map(|f| times.local(f.at).to_rfc3339())
            .collect()
    }

    #[test]
    fn the_cron_crate_alone_gets_dst_wrong() {
        // Why this layer exists: the crate skips the gap day and repeats the fall-back time.
        let cron = CronSchedule::parse("30 2 * * *").unwrap();
        let berlin = chrono_tz::Europe::Berlin;
        let before_gap = utc("2026-03-28T12:00:00Z").with_timezone(&berlin);
        let next = cron.next_after(&before_gap).unwrap();
        assert_eq!(next.to_rfc3339(), "2026-03-30T02:30:00+02:00");
        let in_repeated_hour = utc("2026-10-25T01:10:00Z").with_timezone(&berlin); // 02:10 CET
        let next = cron.next_after(&in_repeated_hour).unwrap();
        assert!(
            next < in_repeated_hour,
            "the crate answers a time before the one asked: {next}"
        );
    }

    #[test]
    fn a_time_in_the_spring_gap_fires_once_at_the_end_of_the_gap() {
        // Europe/Berlin: 2026-03-29 02:00 CET jumps to 03:00 CEST.
        assert_eq!(
            fires("30 2 * * *", "Europe/Berlin", "2026-03-27T12:00:00Z", 3),
            [
                "2026-03-28T02:30:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-30T02:30:00+02:00"
            ]
        );
        // America/New_York: 2026-03-08 02:00 EST jumps to 03:00 EDT.
        assert_eq!(
            fires("15 2 * * *", "America/New_York", "2026-03-07T12:00:00Z", 3),
            [
                "2026-03-08T03:00:00-04:00",
                "2026-03-09T02:15:00-04:00",
                "2026-03-10T02:15:00-04:00"
            ]
        );
        let times = FireTimes::parse("30 2 * * *", "Europe/Berlin").unwrap();
        let fire = times.next_after(utc("2026-03-28T12:00:00Z")).unwrap();
        assert_eq!(fire.shift, Some(DstShift::Gap));
        assert_eq!(fire.wall.to_string(), "2026-03-29 02:30:00");
    }

    #[test]
    fn several_gap_times_fire_once_together() {
        // 02:00, 02:30 and 03:00 are all "just after the gap": one fire at 03:00.
        assert_eq!(
            fires("0,30 2,3 * * *", "Europe/Berlin", "2026-03-29T00:00:00Z", 3),
            [
                "2026-03-29T03:00:00+02:00",
                "2026-03-29T03:30:00+02:00",
                "2026-03-30T02:00:00+02:00"
            ]
        );
    }

    #[test]
    fn a_time_in_the_repeated_hour_fires_once_the_first_time() {
        // Europe/Berlin: 2026-10-25 03:00 CEST goes back to 02:00 CET.
        assert_eq!(
            fires("30 2 * * *", "Europe/Berlin", "2026-10-24T12:00:00Z", 3),
            [
                "2026-10-25T02:30:00+02:00",
                "2026-10-26T02:30:00+01:00",
                "2026-10-27T02:30:00+01:00"
            ]
        );
        // America/New_York: 2026-11-01 02:00 EDT goes back to 01:00 EST.
        assert_eq!(
            fires("30 1 * * *", "America/New_York", "2026-10-31T12:00:00Z", 2),
            ["2026-11-01T01:30:00-04:00", "2026-11-02T01:30:00-05:00"]
        );
        // Asked during the second pass, after the first 02:30: not again that night.
        assert_eq!(
            fires("30 2 * * *", "Europe/Berlin", "2026-10-25T01:10:00Z", 1),
            ["2026-10-26T02:30:00+01:00"]
        );
    }

    #[test]
    fn hourly_lines_keep_their_pace_across_the_fall_back_hour() {
        // Every real hour, 02:00 twice.
        assert_eq!(
            fires("0 * * * *", "Europe/Berlin", "2026-10-24T23:30:00Z", 4),
            [
                "2026-10-25T02:00:00+02:00",
                "2026-10-25T02:00:00+01:00",
                "2026-10-25T03:00:00+01:00",
                "2026-10-25T04:00:00+01:00"
            ]
        );
        // Every 30 minutes, asked in the middle of the first pass.
        assert_eq!(
            fires(
                "*/30 * * * *",
                "America/New_York",
                "2026-11-01T05:10:00Z",
                5
            ),
            [
                "2026-11-01T01:30:00-04:00",
                "2026-11-01T01:00:00-05:00",
                "2026-11-01T01:30:00-05:00",
                "2026-11-01T02:00:00-05:00",
                "2026-11-01T02:30:00-05:00"
            ]
        );
        // Asked in the second pass.
        assert_eq!(
            fires(
                "*/30 * * * *",
                "America/New_York",
                "2026-11-01T06:10:00Z",
                2
            ),
            ["2026-11-01T01:30:00-05:00", "2026-11-01T02:00:00-05:00"]
        );
    }

    #[test]
    fn hourly_lines_keep_their_pace_across_the_spring_gap() {
        // 02:00 never happens; the next real hour is 03:00.
        assert_eq!(
            fires("0 * * * *", "Europe/Berlin", "2026-03-28T23:30:00Z", 3),
            [
                "2026-03-29T01:00:00+01:00",
                "2026-03-29T03:00:00+02:00",
                "2026-03-29T04:00:00+02:00"
            ]
        );
        assert_eq!(
            fires(
                "*/20 * * * *",
                "America/New_York",
                "2026-03-08T06:30:00Z",
                3
            ),
            [
                "2026-03-08T01:40:00-05:00",
                "2026-03-08T03:00:00-04:00",
                "2026-03-08T03:20:00-04:00"
            ]
        );
    }

    #[test]
    fn every_second_lines_never_repeat_or_go_backwards_across_dst() {
        let times = FireTimes::parse("* * * * * *", "Europe/Berlin").unwrap();
        for start in ["2026-10-25T00:59:58Z", "2026-03-29T00:59:58Z"] {
            let got: Vec<DateTime<Utc>> = times.after(utc(start)).take(4).map(|f| f.at).collect();
            let expected: Vec<DateTime<Utc>> =
                (1..=4).map(|s| utc(start) + Duration::seconds(s)).collect();
            assert_eq!(got, expected, "from {start}");
        }
    }

    #[test]
    fn weekdays_0_and_7_are_sunday_in_a_timezone() {
        // 2026-03-29 (a Sunday) is Berlin's spring-forward day.
        for cron in ["30 2 * * 0", "30 2 * * 7", "30 2 * * SUN"] {
            assert_eq!(
                fires(cron, "Europe/Berlin", "2026-03-23T00:00:00Z", 2),
                ["2026-03-29T03:00:00+02:00", "2026-04-05T02:30:00+02:00"],
                "{cron}"
            );
        }
        assert_eq!(
            fires("0 9 * * 1-5", "America/New_York", "2026-11-06T15:00:00Z", 2),
            ["2026-11-09T09:00:00-05:00", "2026-11-10T09:00:00-05:00"]
        );
        assert_eq!(
            fires("0 9 * * 6,7", "America/New_York", "2026-11-06T15:00:00Z", 2),
            ["2026-11-07T09:00:00-05:00", "2026-11-08T09:00:00-05:00"]
        );
    }

    #[test]
    fn between_is_inclusive_of_the_end() {
        let times = FireTimes::parse("@daily", "UTC").unwrap();
        let got: Vec<_> = times
            .between(utc("2026-01-01T00:00:00Z"), utc("2026-01-03T00:00:00Z"))
            .map(|f| f.at.to_rfc3339())
            .collect();
        assert_eq!(
            got,
            ["2026-01-02T00:00:00+00:00", "2026-01-03T00:00:00+00:00"]
        );
    }
}
