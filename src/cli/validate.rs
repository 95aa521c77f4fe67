//! `segflow validate [PATH...]`: checks files and folders of pipelines, and the plugin.yaml of
//! their projects' plugins, reporting everything.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use super::Global;
use super::common::{color_stderr, registry_with_plugins};
use crate::project::pipeline_files;
use crate::spec::source::Source;
use crate::spec::{self, Diagnostic, Severity};
use crate::steps::Registry;

#[derive(Debug, clap::Args)]
pub struct Args {
    /// Pipeline files or folders of them (default: pipelines/).
    pub paths: Vec<PathBuf>,
    /// Print the findings as JSON on stdout.
    #[arg(long)]
    pub json: bool,
}

pub fn run(args: Args, _global: &Global) -> anyhow::Result<ExitCode> {
    let paths = if args.paths.is_empty() {
        let default = PathBuf::from("pipelines");
        if !default.is_dir() {
            anyhow::bail!(
                "pipelines does not exist here; give pipeline files or folders, or run from the project folder"
            );
        }
        vec![default]
    } else {
        args.paths
    };
    let mut files = Vec::new();
    for path in &paths {
        if path.is_dir() {
            let found = pipeline_files(path);
            if found.is_empty() {
                eprintln!("warning: no .yaml files in {}", path.display());
            }
            files.extend(found);
        } else {
            files.push(path.clone());
        }
    }
    let mut errors = 0;
    let mut warnings = 0;
    let mut report = Vec::new();
    // Each project's plugins are loaded once, and their plugin.yaml files checked with the rest.
    let mut registries: BTreeMap<PathBuf, Arc<Registry>> = BTreeMap::new();
    let mut checked: Vec<(PathBuf, Source, Vec<Diagnostic>)> = Vec::new();
    let mut plugin_files = 0;
    for file in &files {
        let project = spec::project_dir(file);
        let registry = match registries.get(&project) {
            Some(registry) => registry.clone(),
            None => {
                let (registry, plugins) = registry_with_plugins(&project);
                plugin_files += plugins.plugins.len()
                    + plugins
                        .problems
                        .iter()
                        .filter(|p| p.error_count() > 0)
                        .count();
                for problems in plugins.problems {
                    let path = problems.source.path.clone();
                    checked.push((path, problems.source, problems.diagnostics));
                }
                let registry = Arc::new(registry);
                registries.insert(project, registry.clone());
                registry
            }
        };
        let (source, diagnostics) = match spec::load(file, &registry) {
            Ok(loaded) => (loaded.source, loaded.warnings),
            Err(failed) => (failed.source, failed.diagnostics),
        };
        checked.push((file.clone(), source, diagnostics));
    }
    for (file, source, diagnostics) in &checked {
        for diagnostic in diagnostics {
            match diagnostic.severity {
                Severity::Error => errors += 1,
                Severity::Warning => warnings += 1,
            }
            if !args.json {
                eprintln!("{}", diagnostic.render(source, color_stderr()));
            }
        }
        report.push(serde_json::json!({
            "file": file,
            "ok": !diagnostics.iter().any(|d| d.is_error()),
            "diagnostics": diagnostics.iter().map(|d| {
                let mut value = serde_json::to_value(d).expect("diagnostics serialize");
                if let Some(span) = d.span {
                    value["line"] = span.line.into();
                    value["column"] = span.column.into();
                }
                value
            }).collect::<Vec<_>>(),
        }));
    }
    if args.json {
        out!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        let plural = |n: usize, word: &str| format!("{n} {word}{}", if n == 1 { "" } else { "s" });
        let summary = format!(
            "{} checked: {}, {}",
            plural(files.len() + plugin_files, "file"),
            plural(errors, "error"),
            plural(warnings, "warning")
        );
        if errors == 0 {
            out!("{summary}");
        } else {
            eprintln!("{summary}");
        }
    }
    Ok(if errors == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
