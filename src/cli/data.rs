//! `segflow data RUN STEP`: prints or exports one dataset of a run.

use std::io::Write;
use std::process::ExitCode;

use anyhow::{Context as _, bail};
use datafusion::arrow::record_batch::RecordBatch;
use datafusion::prelude::ParquetReadOptions;
use futures::StreamExt;

use super::Global;
use super::common::open_store;
use crate::data::MAIN_DATASET;
use crate::engine::resolve_run_id;

/// Rows a table shows when `--head` is not given.
const TABLE_ROWS: usize = 20;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// The run id (or a unique prefix of it).
    pub run: String,
    /// The step whose dataset to show.
    pub step: String,
    /// Which of the step's datasets (default: its main one; e.g. `rejected`).
    #[arg(long, default_value = MAIN_DATASET)]
    pub dataset: String,
    /// Only the first N rows (a table shows 20 unless told otherwise; csv and json show all).
    #[arg(long, value_name = "N")]
    pub head: Option<usize>,
    #[arg(long, value_enum, default_value = "table")]
    pub format: Format,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Format {
    /// An aligned text table.
    Table,
    /// CSV with a header line.
    Csv,
    /// A JSON array of objects.
    Json,
    /// One JSON object per line.
    Ndjson,
}

pub async fn run(args: Args, global: &Global) -> anyhow::Result<ExitCode> {
    let state = open_store(global, None)?;
    let store = state.store.as_ref();
    let run_id = resolve_run_id(store, &args.run)?;
    let steps = store.get_steps(&run_id)?;
    let Some(step) = steps.iter().find(|s| s.id == args.step) else {
        let ids: Vec<&str> = steps.iter().map(|s| s.id.as_str()).collect();
        bail!(
            "run {run_id} has no step `{}`; its steps are: {}",
            args.step,
            ids.join(", ")
        );
    };
    let Some(dataset) = step.datasets.iter().find(|d| d.name == args.dataset) else {
        if step.datasets.is_empty() {
            bail!(
                "step `{}` of run {run_id} wrote no dataset (it is {})",
                step.id,
                step.state.name()
            );
        }
        let names: Vec<&str> = step.datasets.iter().map(|d| d.name.as_str()).collect();
        bail!(
            "step `{}` has no dataset `{}`; it has: {} (pick one with --dataset NAME)",
            step.id,
            args.dataset,
            names.join(", ")
        );
    };
    let path = dataset.path(&store.runs_dir().join(&run_id));
    if !path.is_file() {
        bail!(
            "the dataset file {} is gone (was the run folder cleaned up?)",
            path.display()
        );
    }
    let session = crate::data::ordered_session();
    let mut frame = session
        .read_parquet(
            path.to_string_lossy().as_ref(),
            ParquetReadOptions::default(),
        )
        .await
        .with_context(|| format!("cannot read {}", path.display()))?;
    let head = match (args.head, args.format) {
        (Some(n), _) => Some(n),
        (None, Format::Table) => Some(TABLE_ROWS),
        (None, _) => None,
    };
    if let Some(n) = head {
        frame = frame.limit(0, Some(n))?;
    }
    let mut stream = frame.execute_stream().await?;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    match args.format {
        Format::Table => {
            let mut batches: Vec<RecordBatch> = Vec::new();
            while let Some(batch) = stream.next().await {
                batches.push(batch?);
            }
            let shown: usize = batches.iter().map(RecordBatch::num_rows).sum();
            writeln!(
                out,
                "{}",
                datafusion::arrow::util::pretty::pretty_format_batches(&batches)?
            )?;
            if (shown as u64) < dataset.rows {
                writeln!(
                    out,
                    "{shown} of {} rows (--head N for more, --format csv for all)",
                    dataset.rows
                )?;
            } else {
                writeln!(out, "{} rows", dataset.rows)?;
            }
        }
        Format::Csv => {
            let mut writer = datafusion::arrow::csv::WriterBuilder::new()
                .with_header(true)
                .build(&mut out);
            while let Some(batch) = stream.next().await {
                writer.write(&batch?)?;
            }
        }
        Format::Json => {
            let mut writer = datafusion::arrow::json::ArrayWriter::new(&mut out);
            while let Some(batch) = stream.next().await {
                writer.write(&batch?)?;
            }
            writer.finish()?;
            drop(writer);
            writeln!(out)?;
        }
        Format::Ndjson => {
            let mut writer = datafusion::arrow::json::LineDelimitedWriter::new(&mut out);
            while let Some(batch) = stream.next().await {
                writer.write(&batch?)?;
            }
            writer.finish()?;
        }
    }
    out.flush()?;
    Ok(ExitCode::SUCCESS)
}
