//! `segflow backfill PIPELINE --from DATE --to DATE`: runs a pipeline for each of its past fire
//! times in a range of days, each run with `run.scheduled_for` set to its fire time.

use std::process::ExitCode;
use std::sync::Arc;

use chrono::{Days, NaiveDate, NaiveTime, Utc};
use indexmap::IndexMap;
use tokio_util::sync::CancellationToken;

use super::Global;
use super::common::{cancel_on_signal, open_store, secrets};
use super::next::load_scheduled;
use super::progress::Progress;
use crate::engine::Engine;
use crate::schedule::{Fire, FireTimes, wall_to_instant};
use crate::spec::params::parse_assignment;
use crate::store::{RunRecord, RunState, RunTrigger};

/// More runs than this need `--yes`.
pub const CONFIRM_ABOVE: usize = 100;
/// One backfill creates at most this many runs; a longer range is split.
pub const MAX_BACKFILL_RUNS: usize = 10_000;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A pipeline file, or a pipeline's name in pipelines/.
    pub pipeline: String,
    /// The first day, in the pipeline's timezone (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub from: NaiveDate,
    /// The last day, included (YYYY-MM-DD).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub to: NaiveDate,
    /// How many runs go at once (1: one after another, oldest first).
    #[arg(long, value_name = "N", default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub concurrency: u16,
    /// Go ahead with more than 100 runs.
    #[arg(long)]
    pub yes: bool,
    /// Print the fire times and run nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Set a param for every run: -p holdout=0.2 (repeatable).
    #[arg(short = 'p', long = "param", value_name = "NAME=VALUE", value_parser = parse_assignment)]
    pub params: Vec<(String, String)>,
}

fn parse_date(text: &str) -> Result<NaiveDate, String> {
    NaiveDate::parse_from_str(text.trim(), "%Y-%m-%d")
        .map_err(|_| format!("`{text}` is not a date; write it as YYYY-MM-DD, e.g. 2026-03-01"))
}

pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    if args.from > args.to {
        anyhow::bail!(
            "--from {} is after --to {}; give the earlier day first",
            args.from,
            args.to
        );
    }
    let Some((registry, loaded, times)) = load_scheduled(&args.pipeline)? else {
        return Ok(ExitCode::FAILURE);
    };
    let name = loaded.pipeline.name.clone();
    let fires = past_fires(&times, args.from, args.to)?;
    if fires.len() > CONFIRM_ABOVE && !args.yes && !args.dry_run {
        anyhow::bail!(
            "this backfill would create {} runs of `{name}` (more than {CONFIRM_ABOVE}); add --yes to go ahead, or narrow the range",
            fires.len()
        );
    }
    let zone = times.timezone();
    out!(
        "backfill {name}: {} run{} for \"{}\" in {}, {} to {}",
        fires.len(),
        if fires.len() == 1 { "" } else { "s" },
        times.cron().text(),
        zone.name(),
        times.local_text(fires[0].at),
        times.local_text(fires[fires.len() - 1].at),
    );
    if args.dry_run {
        for fire in &fires {
            out!("  {}  {}", times.local_text(fire.at), fire.at.to_rfc3339());
        }
        return Ok(ExitCode::SUCCESS);
    }

    let params: IndexMap<String, String> = args.params.into_iter().collect();
    let state = open_store(global, Some(&loaded.source.path))?;
    let secrets = secrets(global, &state.dir)?;
    let engine = Arc::new(Engine::new(
        registry.clone(),
        state.store.clone(),
        secrets.clone(),
    ));
    let cancel = CancellationToken::new();
    let signals = tokio::spawn(cancel_on_signal(cancel.clone()));
    let mut finished: Vec<RunRecord> = Vec::new();
    let mut created = 0;
    let mut first_error = None;
    let concurrency = usize::from(args.concurrency);
    let mut pending = fires.iter();
    let mut running = tokio::task::JoinSet::new();
    loop {
        while running.len() < concurrency && !cancel.is_cancelled() && first_error.is_none() {
            let Some(fire) = pending.next() else {
                break;
            };
            let run = match engine.create_run(&loaded, &params, RunTrigger::Backfill, Some(fire.at))
            {
                Ok(run) => run,
                Err(error) => {
                    first_error = Some(error.to_string());
                    break;
                }
            };
            created += 1;
            out!("run {} for {} started", run.id, times.local_text(fire.at));
            let (engine, progress) = if concurrency == 1 {
                // One run at a time: its steps' progress, as `segflow run` shows it.
                let (sink, events) = tokio::sync::mpsc::unbounded_channel();
                let progress = tokio::spawn(Progress::new().render(events));
                let engine = Engine::new(registry.clone(), state.store.clone(), secrets.clone())
                    .with_events(sink);
                (Arc::new(engine), Some(progress))
            } else {
                (engine.clone(), None)
            };
            let cancel = cancel.clone();
            running.spawn(async move {
                let result = engine.execute(&run.id, cancel).await;
                drop(engine);
                if let Some(progress) = progress {
                    let _ = progress.await;
                }
                result
            });
        }
        let Some(joined) = running.join_next().await else {
            break;
        };
        match joined {
            Ok(Ok(run)) => {
                out!("{}", super::common::run_line(&run));
                finished.push(run);
            }
            Ok(Err(error)) => first_error = first_error.or(Some(error.to_string())),
            Err(error) => first_error = first_error.or(Some(format!("a run crashed: {error}"))),
        }
    }
    signals.abort();

    let succeeded = finished
        .iter()
        .filter(|r| r.state == RunState::Succeeded)
        .count();
    let not_started = fires.len() - created;
    out!(
        "backfill {name}: {succeeded} of {} run{} succeeded",
        fires.len(),
        if fires.len() == 1 { "" } else { "s" }
    );
    let unfinished: Vec<&RunRecord> = finished
        .iter()
        .filter(|r| r.state != RunState::Succeeded)
        .collect();
    if !unfinished.is_empty() {
        eprintln!(
            "to finish the runs that did not succeed: {}",
            unfinished
                .iter()
                .map(|r| format!("segflow resume {}", r.id))
                .collect::<Vec<_>>()
                .join("; ")
        );
    }
    if not_started > 0
        && let Some(next) = fires.get(created)
    {
        eprintln!(
            "{not_started} fire time{} not run; to run them: segflow backfill {} --from {} --to {}",
            if not_started == 1 { "" } else { "s" },
            args.pipeline,
            times.local(next.at).date_naive(),
            args.to
        );
    }
    if let Some(error) = first_error {
        anyhow::bail!("the backfill stopped: {error}");
    }
    Ok(if succeeded == fires.len() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The fire times whose local day is in `from..=to` and that have come, oldest first; an error
/// that says why when there is none or too many.
fn past_fires(times: &FireTimes, from: NaiveDate, to: NaiveDate) -> anyhow::Result<Vec<Fire>> {
    let zone = times.timezone();
    let start = wall_to_instant(zone, from.and_time(NaiveTime::MIN));
    let end = to
        .checked_add_days(Days::new(1))
        .map(|day| wall_to_instant(zone, day.and_time(NaiveTime::MIN)))
        .ok_or_else(|| anyhow::anyhow!("--to {to} is too far in the future"))?;
    let now = Utc::now();
    let until = end.min(now);
    let before_start = start - chrono::Duration::nanoseconds(1);
    let mut fires = Vec::new();
    for fire in times.after(before_start).take_while(|f| f.at < until) {
        if fires.len() == MAX_BACKFILL_RUNS {
            anyhow::bail!(
                "the range {from} to {to} holds more than {MAX_BACKFILL_RUNS} fire times of \"{}\"; one backfill runs at most {MAX_BACKFILL_RUNS}, so split the range",
                times.cron().text()
            );
        }
        fires.push(fire);
    }
    if fires.is_empty() {
        let upcoming = times.after(before_start).next().filter(|f| f.at < end);
        match upcoming {
            Some(fire) => anyhow::bail!(
                "no fire time of \"{}\" between {from} and {to} ({}) has come yet: the first is {}, and `segflow serve` runs it then",
                times.cron().text(),
                zone.name(),
                times.local_text(fire.at)
            ),
            None => anyhow::bail!(
                "no fire time of \"{}\" falls between {from} and {to} ({}); `segflow next PIPELINE --after {from}` shows when it fires",
                times.cron().text(),
                zone.name()
            ),
        }
    }
    Ok(fires)
}
