//! `segflow plugins list`: the project's plugins and the step kinds they add.

use std::fmt::Write as _;
use std::io::Write as _;
use std::path::PathBuf;
use std::process::ExitCode;

use serde_json::json;

use super::Global;
use super::common::color_stderr;
use crate::plugins::{self, PROTOCOL_VERSION, Plugins};
use crate::project;

#[derive(Debug, clap::Args)]
pub struct Args {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, clap::Subcommand)]
pub enum Command {
    /// List the plugins in plugins/ and their step kinds; report the problems of any that do not load.
    List(ListArgs),
}

#[derive(Debug, clap::Args)]
pub struct ListArgs {
    /// The project folder (default: the one around the working folder, holding pipelines/).
    #[arg(long, value_name = "DIR")]
    pub project: Option<PathBuf>,
    /// Print the plugins as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    match args.command {
        Command::List(args) => list(args),
    }
}

fn list(args: ListArgs) -> anyhow::Result<ExitCode> {
    let project = args.project.unwrap_or_else(project::current_project_dir);
    let found = plugins::load_project(&project);
    let text = if args.json {
        format!("{}\n", serde_json::to_string_pretty(&as_json(&found))?)
    } else {
        human(&found, &project)
    };
    // `segflow plugins list | head` closes the pipe early: that is not an error.
    let mut stdout = std::io::stdout().lock();
    match stdout
        .write_all(text.as_bytes())
        .and_then(|()| stdout.flush())
    {
        Err(e) if e.kind() == std::io::ErrorKind::BrokenPipe => return Ok(ExitCode::SUCCESS),
        result => result?,
    }
    for problems in &found.problems {
        if !args.json {
            eprintln!("{}", problems.render(color_stderr()));
        }
    }
    let errors = found.error_count();
    if errors > 0 {
        if !args.json {
            eprintln!(
                "{errors} error{} in plugins: those plugins are not loaded",
                if errors == 1 { "" } else { "s" }
            );
        }
        return Ok(ExitCode::FAILURE);
    }
    Ok(ExitCode::SUCCESS)
}

fn human(found: &Plugins, project: &std::path::Path) -> String {
    let mut out = String::new();
    if found.plugins.is_empty() {
        let dir = project.join(plugins::PLUGINS_DIR);
        let _ = if found.problems.is_empty() {
            writeln!(
                out,
                "no plugins in {} (a plugin is a folder with a plugin.yaml; see docs/plugins.md)",
                dir.display()
            )
        } else {
            writeln!(
                out,
                "no plugin in {} loads (the problems follow)",
                dir.display()
            )
        };
        return out;
    }
    for (i, plugin) in found.plugins.iter().enumerate() {
        if i > 0 {
            let _ = writeln!(out);
        }
        let _ = writeln!(
            out,
            "{} {}  ({})",
            plugin.name,
            plugin.version,
            plugins::display_path(&plugin.manifest_path).display()
        );
        if let Some(description) = &plugin.description {
            let _ = writeln!(out, "  {description}");
        }
        let width = plugin
            .kinds
            .iter()
            .map(|k| plugin.uses(&k.name).len())
            .max()
            .unwrap_or(0);
        for kind in &plugin.kinds {
            let _ = writeln!(
                out,
                "  {:width$}  {}",
                plugin.uses(&kind.name),
                kind.description
            );
            let mut facts = vec![format!("runs {}", kind.executable)];
            let inputs = &kind.inputs;
            let count = match (inputs.min, inputs.max) {
                (_, Some(0)) => None,
                (1, Some(1)) => Some("1 dataset".to_string()),
                (min, Some(max)) if min == max => Some(format!("{min} datasets")),
                (min, Some(max)) => Some(format!("{min} to {max} datasets")),
                (0, None) => Some("any datasets".to_string()),
                (min, None) => Some(format!("{min} or more datasets")),
            };
            if let Some(count) = count {
                facts.push(format!("reads {count} as {}", inputs.format.name()));
            }
            if !kind.writes.is_empty() {
                facts.push(format!("writes {}", kind.writes.join(", ")));
            }
            if let Some(outputs) = &kind.outputs {
                facts.push(format!("outputs {}", outputs.join(", ")));
            }
            let keys = config_keys(&kind.schema.schema);
            if !keys.is_empty() {
                facts.push(format!("with: {}", keys.join(", ")));
            }
            let _ = writeln!(out, "  {:width$}  {}", "", facts.join("; "));
        }
    }
    out
}

/// The top-level keys of a `with` schema, required ones marked with `*`.
fn config_keys(schema: &serde_json::Value) -> Vec<String> {
    let required: Vec<&str> = schema
        .get("required")
        .and_then(|r| r.as_array())
        .map(|r| r.iter().filter_map(|v| v.as_str()).collect())
        .unwrap_or_default();
    schema
        .get("properties")
        .and_then(|p| p.as_object())
        .map(|properties| {
            properties
                .keys()
                .map(|k| {
                    if required.contains(&k.as_str()) {
                        format!("{k}*")
                    } else {
                        k.clone()
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

fn as_json(found: &Plugins) -> serde_json::Value {
    let plugins: Vec<_> = found
        .plugins
        .iter()
        .map(|plugin| {
            json!({
                "name": plugin.name,
                "version": plugin.version,
                "description": plugin.description,
                "protocol": PROTOCOL_VERSION,
                "dir": plugin.dir,
                "manifest": plugin.manifest_path,
                "kinds": plugin.kinds.iter().map(|kind| json!({
                    "uses": plugin.uses(&kind.name),
                    "name": kind.name,
                    "description": kind.description,
                    "executable": kind.executable,
                    "args": kind.args,
                    "inputs": kind.inputs,
                    "writes": kind.writes,
                    "outputs": kind.outputs,
                    "schema": kind.schema.schema,
                })).collect::<Vec<_>>(),
            })
        })
        .collect();
    let problems: Vec<_> = found
        .problems
        .iter()
        .map(|p| {
            json!({
                "file": p.source.path,
                "diagnostics": p.diagnostics.iter().map(|d| {
                    let mut value = serde_json::to_value(d).expect("diagnostics serialize");
                    if let Some(span) = d.span {
                        value["line"] = span.line.into();
                        value["column"] = span.column.into();
                    }
                    value
                }).collect::<Vec<_>>(),
            })
        })
        .collect();
    json!({ "plugins": plugins, "problems": problems })
}
