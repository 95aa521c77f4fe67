//! Crontab lines as people write them, over the `cron` crate.
//!
//! The `cron` crate wants a seconds field and numbers Sunday as 1. This layer accepts the
//! POSIX 5-field form (Sunday = 0 or 7), the 6-field form with seconds first, and the `@daily`
//! family, checks every field with a clear message, and keeps POSIX's rule that when both
//! day-of-month and day-of-week are restricted, a day matching either fires.

use std::collections::BTreeSet;
use std::str::FromStr;

use chrono::{DateTime, NaiveDateTime, TimeZone, Utc};

#[derive(Debug, Clone)]
pub struct CronSchedule {
    text: String,
    /// One schedule, or two when day-of-month and day-of-week are both restricted (either fires).
    schedules: Vec<cron::Schedule>,
    /// The hour field allows every hour (`*`, `@hourly`, every second…): such a line fires on
    /// elapsed time across DST changes rather than once per wall-clock time.
    every_hour: bool,
}

const DAY_NAMES: [&str; 7] = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];
const MONTH_NAMES: [&str; 12] = [
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC",
];

struct FieldSpec {
    name: &'static str,
    min: u32,
    max: u32,
}

const SECOND: FieldSpec = FieldSpec {
    name: "second",
    min: 0,
    max: 59,
};
const MINUTE: FieldSpec = FieldSpec {
    name: "minute",
    min: 0,
    max: 59,
};
const HOUR: FieldSpec = FieldSpec {
    name: "hour",
    min: 0,
    max: 23,
};
const DAY_OF_MONTH: FieldSpec = FieldSpec {
    name: "day of month",
    min: 1,
    max: 31,
};
const MONTH: FieldSpec = FieldSpec {
    name: "month",
    min: 1,
    max: 12,
};
/// 0 and 7 are both Sunday.
const DAY_OF_WEEK: FieldSpec = FieldSpec {
    name: "day of week",
    min: 0,
    max: 7,
};

/// A parsed field: the values it allows, and whether it was `*` (matters for day fields).
struct Field {
    values: BTreeSet<u32>,
    any: bool,
}

impl CronSchedule {
    pub fn parse(text: &str) -> Result<Self, String> {
        let trimmed = text.trim();
        let expanded = match trimmed.to_lowercase().as_str() {
            "@yearly" | "@annually" => "0 0 1 1 *".to_string(),
            "@monthly" => "0 0 1 * *".to_string(),
            "@weekly" => "0 0 * * 0".to_string(),
            "@daily" | "@midnight" => "0 0 * * *".to_string(),
            "@hourly" => "0 * * * *".to_string(),
            other if other.starts_with('@') => {
                return Err(format!(
                    "`{trimmed}` is not a known shortcut; use @hourly, @daily, @weekly, @monthly or @yearly"
                ));
            }
            _ => trimmed.to_string(),
        };
        let fields: Vec<&str> = expanded.split_whitespace().collect();
        let (second, rest) = match fields.len() {
            5 => ("0", &fields[..]),
            6 => (fields[0], &fields[1..]),
            n => {
                return Err(format!(
                    "a cron line has 5 fields (minute hour day-of-month month day-of-week) or 6 with seconds first; `{trimmed}` has {n}"
                ));
            }
        };
        let second = parse_field(second, &SECOND, &[])?;
        let minute = parse_field(rest[0], &MINUTE, &[])?;
        let hour = parse_field(rest[1], &HOUR, &[])?;
        let dom = parse_field(rest[2], &DAY_OF_MONTH, &[])?;
        let month = parse_field(rest[3], &MONTH, &MONTH_NAMES)?;
        let mut dow = parse_field(rest[4], &DAY_OF_WEEK, &DAY_NAMES)?;
        if dow.values.remove(&7) {
            dow.values.insert(0);
        }

        let list = |f: &Field| join(f.values.iter().map(u32::to_string));
        let days = |f: &Field| join(f.values.iter().map(|&d| DAY_NAMES[d as usize].to_string()));
        let prefix = format!("{} {} {}", list(&second), list(&minute), list(&hour));
        let lines = if !dom.any && !dow.any {
            vec![
                format!("{prefix} {} {} *", list(&dom), list(&month)),
                format!("{prefix} * {} {}", list(&month), days(&dow)),
            ]
        } else {
            let dom_text = if dom.any { "*".to_string() } else { list(&dom) };
            let dow_text = if dow.any { "*".to_string() } else { days(&dow) };
            vec![format!("{prefix} {dom_text} {} {dow_text}", list(&month))]
        };
        let schedules = lines
            .iter()
            .map(|line| {
                cron::Schedule::from_str(line)
                    .map_err(|e| format!("`{trimmed}` is not a valid cron line: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        if schedules
            .iter()
            .all(|s| s.upcoming(chrono::Utc).next().is_none())
        {
            return Err(format!("`{trimmed}` never fires (no such date)"));
        }
        Ok(CronSchedule {
            text: trimmed.to_string(),
            schedules,
            every_hour: hour.values.len() == 24,
        })
    }

    pub fn text(&self) -> &str {
        &self.text
    }

    /// True when the hour field allows every hour of the day.
    pub fn every_hour(&self) -> bool {
        self.every_hour
    }

    /// The first wall-clock time strictly after `after` that the line names, with no timezone:
    /// whether that time exists (or exists twice) on a given day is the caller's concern.
    pub fn next_wall_time(&self, after: NaiveDateTime) -> Option<NaiveDateTime> {
        self.next_after(&Utc.from_utc_datetime(&after))
            .map(|t| t.naive_utc())
    }

    /// The first fire time strictly after `after`, in `after`'s timezone, as the `cron` crate
    /// sees it: a time in a DST gap is left out and one in a repeated hour may come twice.
    /// [`crate::schedule::FireTimes`] gives the times segflow fires at.
    pub fn next_after<Z: TimeZone>(&self, after: &DateTime<Z>) -> Option<DateTime<Z>> {
        self.schedules
            .iter()
            .filter_map(|s| s.after(after).next())
            .min()
    }
}

fn join(items: impl Iterator<Item = String>) -> String {
    items.collect::<Vec<_>>().join(",")
}

/// Parses one field: `*`, `n`, `a-b`, `*/s`, `a-b/s`, `a/s` and names, separated by commas.
fn parse_field(text: &str, spec: &FieldSpec, names: &[&str]) -> Result<Field, String> {
    let mut values = BTreeSet::new();
    let mut any = false;
    for item in text.split(',') {
        let (range, step) = match item.split_once('/') {
            Some((range, step)) => {
                let step: u32 = step.parse().ok().filter(|s| *s > 0).ok_or_else(|| {
                    format!(
                        "`{item}` in the {} field: the step after `/` must be a positive number",
                        spec.name
                    )
                })?;
                (range, Some(step))
            }
            None => (item, None),
        };
        let (low, high) = if range == "*" || range == "?" {
            if step.is_none() && item == range {
                any = true;
            }
            // Sunday counts once in `*`, as 0.
            let max = if spec.max == 7 { 6 } else { spec.max };
            (spec.min, max)
        } else if let Some((a, b)) = range.split_once('-') {
            (value(a, spec, names)?, value(b, spec, names)?)
        } else {
            let v = value(range, spec, names)?;
            // `5/15` means from 5 to the end, every 15.
            (v, if step.is_some() { spec.max } else { v })
        };
        if low > high {
            return Err(format!(
                "`{item}` in the {} field: the range runs backwards",
                spec.name
            ));
        }
        values.extend((low..=high).step_by(step.unwrap_or(1) as usize));
    }
    Ok(Field { values, any })
}

fn value(text: &str, spec: &FieldSpec, names: &[&str]) -> Result<u32, String> {
    let upper = text.to_uppercase();
    if let Some(i) = names.iter().position(|n| *n == upper) {
        return Ok(i as u32 + if spec.name == "month" { 1 } else { 0 });
    }
    let number: u32 = text.parse().map_err(|_| {
        format!(
            "`{text}` is not a valid {} (expected {}-{}{})",
            spec.name,
            spec.min,
            spec.max,
            if names.is_empty() { "" } else { " or a name" }
        )
    })?;
    if number < spec.min || number > spec.max {
        return Err(format!(
            "{number} is out of range for the {} field ({}-{})",
            spec.name, spec.min, spec.max
        ));
    }
    Ok(number)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn next(cron: &str, after: &str) -> String {
        let after = DateTime::parse_from_rfc3339(after)
            .unwrap()
            .with_timezone(&Utc);
        CronSchedule::parse(cron)
            .unwrap()
            .next_after(&after)
            .unwrap()
            .to_rfc3339()
    }

    #[test]
    fn reads_posix_weekdays() {
        // 2026-11-23 is a Monday.
        assert_eq!(
            next("0 6 * * 1", "2026-11-23T07:00:00Z"),
            "2026-11-30T06:00:00+00:00"
        );
        assert_eq!(
            next("0 6 * * 0", "2026-11-23T07:00:00Z"),
            "2026-11-29T06:00:00+00:00"
        );
        assert_eq!(
            next("0 6 * * 7", "2026-11-23T07:00:00Z"),
            "2026-11-29T06:00:00+00:00"
        );
        assert_eq!(
            next("0 6 * * 5-7", "2026-11-23T07:00:00Z"),
            "2026-11-27T06:00:00+00:00"
        );
        assert_eq!(
            next("@daily", "2026-11-23T07:00:00Z"),
            "2026-11-24T00:00:00+00:00"
        );
        assert_eq!(
            next("30 0 6 * * mon", "2026-11-23T07:00:00Z"),
            "2026-11-30T06:00:30+00:00"
        );
    }

    #[test]
    fn either_day_field_fires_when_both_are_set() {
        // The 1st of the month or any Friday.
        assert_eq!(
            next("0 0 1 * 5", "2026-11-23T00:00:00Z"),
            "2026-11-27T00:00:00+00:00"
        );
        assert_eq!(
            next("0 0 1 * 5", "2026-11-28T00:00:00Z"),
            "2026-12-01T00:00:00+00:00"
        );
    }

    #[test]
    fn explains_bad_lines() {
        assert!(
            CronSchedule::parse("61 * * * *")
                .unwrap_err()
                .contains("out of range for the minute field")
        );
        assert!(CronSchedule::parse("* * *").unwrap_err().contains("has 3"));
        assert!(
            CronSchedule::parse("0 0 30 2 *")
                .unwrap_err()
                .contains("never fires")
        );
        assert!(CronSchedule::parse("@sometimes").is_err());
    }
}
