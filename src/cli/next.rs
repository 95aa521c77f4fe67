//! `segflow next PIPELINE [-n 5]`: the next fire times of a pipeline's schedule, in its
//! timezone and in UTC, with a note where a DST change moves or repeats one.

use std::process::ExitCode;
use std::sync::Arc;

use chrono::{DateTime, NaiveDate, NaiveDateTime, Utc};
use chrono_tz::Tz;
use serde_json::json;

use super::Global;
use super::common::{load_pipeline_with_registry, print_diagnostics};
use crate::schedule::{DstRule, DstShift, Fire, FireTimes, wall_to_instant};
use crate::spec::LoadedPipeline;
use crate::steps::Registry;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A pipeline file, or a pipeline's name in pipelines/.
    pub pipeline: String,
    /// How many fire times to print.
    #[arg(short = 'n', long = "count", default_value_t = 5, value_parser = clap::value_parser!(u32).range(1..=1000))]
    pub count: u32,
    /// List the fire times after this time instead of after now: RFC 3339
    /// (`2026-03-28T12:00:00Z`), or `YYYY-MM-DD [HH:MM[:SS]]` in the pipeline's timezone.
    #[arg(long, value_name = "TIME")]
    pub after: Option<String>,
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    let Some((_, loaded, times)) = load_scheduled(&args.pipeline)? else {
        return Ok(ExitCode::FAILURE);
    };
    let after = match &args.after {
        Some(text) => parse_time(text, times.timezone())?,
        None => Utc::now(),
    };
    let fires: Vec<Fire> = times.after(after).take(args.count as usize).collect();
    if args.json {
        let items: Vec<_> = fires
            .iter()
            .map(|f| {
                json!({
                    "at": f.at,
                    "local": times.local(f.at).to_rfc3339(),
                    "dst": f.shift.map(shift_name),
                })
            })
            .collect();
        out!("{}", serde_json::to_string_pretty(&items)?);
        return Ok(ExitCode::SUCCESS);
    }
    out!(
        "{}: \"{}\" in {}",
        loaded.pipeline.name,
        times.cron().text(),
        times.timezone().name()
    );
    if fires.is_empty() {
        out!(
            "  no fire time after {}: the cron line never fires again",
            after.to_rfc3339()
        );
    }
    for fire in &fires {
        let local = times.local(fire.at);
        let note = fire
            .shift
            .map(|s| format!("  ({})", explain(s, times.rule(), fire)))
            .unwrap_or_default();
        out!(
            "  {}  {}{note}",
            local.format("%a %Y-%m-%d %H:%M:%S %Z"),
            fire.at.format("%Y-%m-%dT%H:%M:%SZ")
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A pipeline given by path or name, with its fire times. `None` when it does not load (its
/// diagnostics are printed); an error when it has no schedule.
pub(super) fn load_scheduled(
    given: &str,
) -> anyhow::Result<Option<(Arc<Registry>, LoadedPipeline, FireTimes)>> {
    let (registry, loaded) = load_pipeline_with_registry(given)?;
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            print_diagnostics(&diagnostics);
            return Ok(None);
        }
    };
    let Some(schedule) = &loaded.pipeline.schedule else {
        anyhow::bail!(
            "pipeline `{}` ({}) has no schedule\n  add one, e.g. `schedule: {{ cron: \"0 6 * * 1\", timezone: Europe/Berlin }}`",
            loaded.pipeline.name,
            loaded.source.path.display()
        );
    };
    let times = FireTimes::of(schedule).map_err(anyhow::Error::msg)?;
    Ok(Some((registry, loaded, times)))
}

/// RFC 3339, or a wall-clock date and time in `timezone`.
fn parse_time(text: &str, timezone: Tz) -> anyhow::Result<DateTime<Utc>> {
    let text = text.trim();
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        return Ok(at.with_timezone(&Utc));
    }
    for format in [
        "%Y-%m-%d %H:%M:%S",
        "%Y-%m-%d %H:%M",
        "%Y-%m-%dT%H:%M:%S",
        "%Y-%m-%dT%H:%M",
    ] {
        if let Ok(wall) = NaiveDateTime::parse_from_str(text, format) {
            return Ok(wall_to_instant(timezone, wall));
        }
    }
    if let Ok(day) = NaiveDate::parse_from_str(text, "%Y-%m-%d") {
        return Ok(wall_to_instant(
            timezone,
            day.and_time(chrono::NaiveTime::MIN),
        ));
    }
    anyhow::bail!(
        "`{text}` is not a time for --after\n  write it as RFC 3339 (2026-03-28T12:00:00Z) or as YYYY-MM-DD [HH:MM[:SS]] in the pipeline's timezone ({})",
        timezone.name()
    )
}

fn shift_name(shift: DstShift) -> &'static str {
    match shift {
        DstShift::Gap => "gap",
        DstShift::FirstOfTwo => "first_of_two",
        DstShift::SecondOfTwo => "second_of_two",
    }
}

fn explain(shift: DstShift, rule: DstRule, fire: &Fire) -> String {
    let wall = fire.wall.format("%H:%M");
    match (shift, rule) {
        (DstShift::Gap, _) => {
            format!("{wall} does not exist that day: the clocks move forward; it runs right after")
        }
        (DstShift::FirstOfTwo, DstRule::WallClock) => {
            format!(
                "{wall} comes twice that night: the clocks go back; it runs the first time only"
            )
        }
        (DstShift::FirstOfTwo, DstRule::Elapsed) => {
            format!("{wall} comes twice that night: the clocks go back; this is the first")
        }
        (DstShift::SecondOfTwo, _) => format!("{wall} again: the clocks went back"),
    }
}
