//! `segflow data RUN STEP`: prints or exports one dataset of a run.

use std::io::Write;
use std::process::ExitCode;

use anyhow::bail;
use datafusion::arrow::record_batch::RecordBatch;
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
    let step = crate::store::find_step(&steps, &run_id, &args.step)?;
    let dataset = match crate::store::find_dataset(step, &run_id, &args.dataset) {
        Ok(dataset) => dataset,
        Err(error @ crate::store::LookupError::NoDataset { .. }) => {
            bail!("{error} (pick one with --dataset NAME)")
        }
        Err(error) => return Err(error.into()),
    };
    let path = dataset.path(&store.runs_dir().join(&run_id));
    let head = match (args.head, args.format) {
        (Some(n), _) => Some(n),
        (None, Format::Table) => Some(TABLE_ROWS),
        (None, _) => None,
    };
    let mut stream = crate::data::read_dataset(&path, head).await?;
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
