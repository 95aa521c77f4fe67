//! `segflow graph PIPELINE`: the DAG as Mermaid or Graphviz dot.

use std::process::ExitCode;

use super::Global;
use super::common::{load_pipeline_with_registry, print_diagnostics};
use crate::plan::Plan;

#[derive(Debug, Clone, Copy, clap::ValueEnum)]
pub enum Format {
    Mermaid,
    Dot,
}

#[derive(Debug, clap::Args)]
pub struct Args {
    /// A pipeline file, or a pipeline's name in pipelines/.
    pub pipeline: String,
    #[arg(long, value_enum, default_value = "mermaid")]
    pub format: Format,
}

pub fn run(args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    let (_, loaded) = load_pipeline_with_registry(&args.pipeline)?;
    let loaded = match loaded {
        Ok(loaded) => loaded,
        Err(diagnostics) => {
            print_diagnostics(&diagnostics);
            return Ok(ExitCode::FAILURE);
        }
    };
    let plan =
        Plan::build(&loaded.pipeline).map_err(|_| anyhow::anyhow!("the steps form a cycle"))?;
    let text = match args.format {
        Format::Mermaid => plan.to_mermaid(&loaded.pipeline),
        Format::Dot => plan.to_dot(&loaded.pipeline),
    };
    out_raw!("{text}");
    Ok(ExitCode::SUCCESS)
}
