//! Finding and checking the plugins of a project: every `plugins/NAME/plugin.yaml`, each problem
//! reported with the file, line and column (the same diagnostics as pipeline files).

use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use super::config_schema::ConfigSchema;
use super::kind::PluginKind;
use super::manifest::{InputsManifest, Manifest};
use super::protocol::PROTOCOL_VERSION;
use crate::spec::deserialize::deserialize_lenient;
use crate::spec::diagnostic::{Diagnostic, Diagnostics};
use crate::spec::load::{parse_document, report};
use crate::spec::locate::SourceMap;
use crate::spec::source::Source;
use crate::spec::validate::is_identifier;
use crate::spec::yaml_path::YamlPath;
use crate::spec::{FileDiagnostics, Severity};
use crate::steps::Registry;

pub const MANIFEST_FILE: &str = "plugin.yaml";

/// A plugin that passed every check.
#[derive(Debug)]
pub struct Plugin {
    pub name: String,
    pub version: String,
    pub description: Option<String>,
    /// The plugin's folder, symlinks resolved.
    pub dir: PathBuf,
    /// Its plugin.yaml, as found.
    pub manifest_path: PathBuf,
    pub kinds: Vec<Arc<KindSpec>>,
}

/// One step kind of a plugin, ready to run.
#[derive(Debug)]
pub struct KindSpec {
    /// The name within the plugin (`score`).
    pub name: String,
    pub description: String,
    /// The program as plugin.yaml gives it (relative to the plugin's folder).
    pub executable: String,
    /// The program's path, symlinks resolved; always inside the plugin's folder.
    pub program: PathBuf,
    pub args: Vec<String>,
    pub schema: ConfigSchema,
    pub inputs: InputsManifest,
    pub writes: Vec<String>,
    pub outputs: Option<Vec<String>>,
}

impl Plugin {
    /// What a pipeline writes in `uses:` for one of its kinds.
    pub fn uses(&self, kind: &str) -> String {
        format!("plugin.{}.{kind}", self.name)
    }
}

/// The plugins of a project, and the problems of those that did not load.
#[derive(Debug, Default)]
pub struct Plugins {
    pub plugins: Vec<Arc<Plugin>>,
    /// One entry per plugin.yaml with problems (a plugin with an error is left out whole).
    pub problems: Vec<FileDiagnostics>,
}

impl Plugins {
    /// Adds every kind of every plugin to the registry as `plugin.NAME.KIND`.
    pub fn register(&self, registry: &mut Registry) {
        for plugin in &self.plugins {
            for kind in &plugin.kinds {
                registry.add_arc(Arc::new(PluginKind::new(plugin.clone(), kind.clone())));
            }
        }
    }

    pub fn error_count(&self) -> usize {
        self.problems.iter().map(FileDiagnostics::error_count).sum()
    }
}

/// Loads every plugin under `dir` (a project's `plugins/` folder); none when it does not exist.
pub fn load_dir(dir: &Path) -> Plugins {
    let mut found = Plugins::default();
    let Ok(entries) = std::fs::read_dir(dir) else {
        return found;
    };
    let mut folders: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .filter(|p| {
            !p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
        .collect();
    folders.sort();
    for folder in folders {
        let manifest = folder.join(MANIFEST_FILE);
        if !manifest.is_file() {
            found.problems.push(FileDiagnostics {
                source: Source::new(display_path(&folder), ""),
                diagnostics: vec![
                    Diagnostic::warning(format!(
                        "this folder has no {MANIFEST_FILE}, so it is not a plugin"
                    ))
                    .with_hint(format!(
                        "add {MANIFEST_FILE} (see docs/plugins.md), or move the folder out of plugins/"
                    )),
                ],
            });
            continue;
        }
        match load_plugin(&manifest) {
            Ok((plugin, warnings)) => {
                if !warnings.diagnostics.is_empty() {
                    found.problems.push(warnings);
                }
                found.plugins.push(Arc::new(plugin));
            }
            Err(problems) => found.problems.push(problems),
        }
    }
    found
}

/// Reads and checks one plugin.yaml; the warnings come back with the plugin.
pub fn load_plugin(manifest_path: &Path) -> Result<(Plugin, FileDiagnostics), FileDiagnostics> {
    let shown = display_path(manifest_path);
    let source = match Source::read(manifest_path) {
        Ok(source) => Source::new(&shown, source.text),
        Err(e) => {
            return Err(FileDiagnostics {
                source: Source::new(&shown, ""),
                diagnostics: vec![Diagnostic::error(format!("cannot read the file: {e}"))],
            });
        }
    };
    let map = SourceMap::build(&source.text);
    let mut diags = Diagnostics::new(&map);
    let plugin = check(manifest_path, &source, &mut diags);
    let mut diagnostics = diags.items;
    diagnostics.sort_by_key(|d| d.span.map(|s| (s.line, s.column)));
    let has_errors = diagnostics.iter().any(|d| d.severity == Severity::Error);
    let problems = FileDiagnostics {
        source,
        diagnostics,
    };
    match plugin {
        Some(plugin) if !has_errors => Ok((plugin, problems)),
        _ => Err(problems),
    }
}

fn check(manifest_path: &Path, source: &Source, diags: &mut Diagnostics<'_>) -> Option<Plugin> {
    let root = YamlPath::root();
    let document = parse_document(
        source,
        diags,
        "a plugin.yaml needs `name`, `version`, `protocol` and `kinds` (see docs/plugins.md)",
    )?;
    let lenient = deserialize_lenient::<Manifest>(&document, &[]);
    report(diags, &root, lenient.errors);
    let manifest = lenient.value?;

    let folder = manifest_path.parent().unwrap_or(Path::new("."));
    let folder_name = folder
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    if !is_plugin_name(&manifest.name) {
        diags.error(
            &root.key("name"),
            format!("`{}` cannot be a plugin name", manifest.name),
            Some("use letters, digits, `_` and `-`, like `churn`".into()),
        );
    } else if manifest.name != folder_name {
        diags.error(
            &root.key("name"),
            format!(
                "the plugin is named `{}` but its folder is `{folder_name}`",
                manifest.name
            ),
            Some(format!(
                "a plugin's name is its folder's name: write `name: {folder_name}`, or rename the folder"
            )),
        );
    }
    if manifest.version.trim().is_empty() {
        diags.error(
            &root.key("version"),
            "`version` is empty",
            Some("write the plugin's version, like `version: 0.1.0`".into()),
        );
    }
    if manifest.protocol != PROTOCOL_VERSION {
        diags.error(
            &root.key("protocol"),
            format!(
                "the plugin speaks protocol version {}, but this segflow speaks protocol version {PROTOCOL_VERSION}",
                manifest.protocol
            ),
            Some(if manifest.protocol > PROTOCOL_VERSION {
                "upgrade segflow, or use a version of the plugin made for this one".into()
            } else {
                format!(
                    "update the plugin to protocol {PROTOCOL_VERSION} (docs/plugins.md) and write `protocol: {PROTOCOL_VERSION}`"
                )
            }),
        );
    }
    if manifest.kinds.is_empty() {
        diags.error(
            &root.key("kinds"),
            "the plugin has no step kinds",
            Some("add at least one kind under `kinds:`".into()),
        );
    }

    let dir = match folder.canonicalize() {
        Ok(dir) => dir,
        Err(e) => {
            diags.error(
                &root,
                format!("cannot resolve the plugin's folder: {e}"),
                None,
            );
            return None;
        }
    };
    let mut kinds = Vec::new();
    for (name, kind) in &manifest.kinds {
        let path = root.key("kinds").key(name.clone());
        if !is_plugin_name(name) {
            diags.error_at_key(
                &path,
                format!("`{name}` cannot be a kind name"),
                Some("use letters, digits, `_` and `-`, like `score`".into()),
            );
        }
        let program = match resolve_executable(&dir, &kind.executable) {
            Ok(program) => Some(program),
            Err((message, hint)) => {
                diags.error(&path.key("executable"), message, hint);
                None
            }
        };
        let schema = match ConfigSchema::compile(kind.schema.clone()) {
            Ok(schema) => Some(schema),
            Err(message) => {
                diags.error(
                    &path.key("schema"),
                    format!("`schema` is not a valid JSON Schema: {message}"),
                    Some("see https://json-schema.org/understanding-json-schema/".into()),
                );
                None
            }
        };
        if kind.schema.get("type").and_then(Value::as_str) != Some("object") {
            diags.warning(
                &path.key("schema"),
                "the schema does not say `type: object`, but a step's `with` is always a mapping",
                Some("add `type: object` at the top of `schema`".into()),
            );
        }
        if let Some(max) = kind.inputs.max
            && max < kind.inputs.min
        {
            diags.error(
                &path.key("inputs").key("max"),
                format!("`max` ({max}) is below `min` ({})", kind.inputs.min),
                None,
            );
        }
        for (i, dataset) in kind.writes.iter().enumerate() {
            if !is_identifier(dataset) {
                diags.error(
                    &path.key("writes").index(i),
                    format!("`{dataset}` cannot be a dataset name"),
                    Some("use letters, digits and `_`, starting with a letter".into()),
                );
            } else if kind.writes[..i].contains(dataset) {
                diags.error(
                    &path.key("writes").index(i),
                    format!("`{dataset}` is listed twice"),
                    None,
                );
            }
        }
        if let Some(outputs) = &kind.outputs {
            for (i, output) in outputs.iter().enumerate() {
                if !is_identifier(output) {
                    diags.error(
                        &path.key("outputs").index(i),
                        format!("`{output}` cannot be an output name"),
                        Some("use letters, digits and `_`, starting with a letter, so `steps.ID.outputs.NAME` works".into()),
                    );
                }
            }
        }
        if let (Some(program), Some(schema)) = (program, schema) {
            kinds.push(Arc::new(KindSpec {
                name: name.clone(),
                description: kind.description.clone(),
                executable: kind.executable.clone(),
                program,
                args: kind.args.clone(),
                schema,
                inputs: kind.inputs.clone(),
                writes: kind.writes.clone(),
                outputs: kind.outputs.clone(),
            }));
        }
    }
    Some(Plugin {
        name: manifest.name,
        version: manifest.version,
        description: manifest.description,
        dir,
        manifest_path: manifest_path.to_path_buf(),
        kinds,
    })
}

/// Plugin and kind names: they sit in `plugin.NAME.KIND`, so no dots.
fn is_plugin_name(text: &str) -> bool {
    !text.is_empty()
        && text
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// The program of a kind: a file inside the plugin's folder (`dir`, symlinks resolved), even once
/// symlinks are followed, and executable. The error says what is wrong and how to fix it.
pub fn resolve_executable(
    dir: &Path,
    executable: &str,
) -> Result<PathBuf, (String, Option<String>)> {
    let given = Path::new(executable);
    if executable.trim().is_empty() {
        return Err((
            "`executable` is empty".into(),
            Some("name the program inside the plugin's folder, like `executable: run.sh`".into()),
        ));
    }
    if given.is_absolute() {
        return Err((
            format!("`{executable}` is an absolute path; a plugin's program must be inside its folder"),
            Some("put the program (or a small script that starts it) in the plugin's folder and name it relative to it, like `executable: bin/score`".into()),
        ));
    }
    if given
        .components()
        .any(|c| matches!(c, Component::ParentDir))
    {
        return Err((
            format!(
                "`{executable}` goes up with `..`; a plugin's program must be inside its folder"
            ),
            Some("move the program into the plugin's folder".into()),
        ));
    }
    let joined = dir.join(given);
    let program = match joined.canonicalize() {
        Ok(program) => program,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            let what = if joined.symlink_metadata().is_ok() {
                "is a symlink to nothing"
            } else {
                "does not exist"
            };
            return Err((
                format!("`{executable}` {what} in {}", dir.display()),
                Some("check the file name; it is relative to the plugin's folder".into()),
            ));
        }
        Err(e) => return Err((format!("cannot resolve `{executable}`: {e}"), None)),
    };
    if !program.starts_with(dir) {
        return Err((
            format!(
                "`{executable}` leads to {} through a symlink, outside the plugin's folder",
                program.display()
            ),
            Some("copy the program into the plugin's folder instead of linking to it".into()),
        ));
    }
    let metadata = std::fs::metadata(&program)
        .map_err(|e| (format!("cannot read `{executable}`: {e}"), None))?;
    if !metadata.is_file() {
        return Err((format!("`{executable}` is not a file"), None));
    }
    if metadata.permissions().mode() & 0o111 == 0 {
        return Err((
            format!("`{executable}` is not executable"),
            Some(format!(
                "run `chmod +x {}`; scripts start with a line like `#!/usr/bin/env python3`",
                display_path(&program).display()
            )),
        ));
    }
    Ok(program)
}

/// A path as people like to read it: relative to the working folder when it is under it.
pub fn display_path(path: &Path) -> PathBuf {
    let Ok(cwd) = std::env::current_dir() else {
        return path.to_path_buf();
    };
    let absolute = std::path::absolute(path).unwrap_or_else(|_| path.to_path_buf());
    let cwd = cwd.canonicalize().unwrap_or(cwd);
    match absolute.strip_prefix(&cwd) {
        Ok(relative) if !relative.as_os_str().is_empty() => relative.to_path_buf(),
        _ => path.to_path_buf(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    fn executable(path: &Path) {
        std::fs::write(path, "#!/bin/sh\n").unwrap();
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o755)).unwrap();
    }

    fn plugin_folder(root: &Path, name: &str, manifest: &str) -> PathBuf {
        let dir = root.join(name);
        std::fs::create_dir_all(&dir).unwrap();
        executable(&dir.join("run.sh"));
        std::fs::write(dir.join(MANIFEST_FILE), manifest).unwrap();
        dir.join(MANIFEST_FILE)
    }

    #[test]
    fn loads_a_manifest_and_reads_a_numeric_version_as_text() {
        let root = tempfile::tempdir().unwrap();
        let manifest = plugin_folder(
            root.path(),
            "score",
            "name: score\nversion: 2\nprotocol: 1\nkinds:\n  run:\n    description: d\n    executable: run.sh\n    schema: { properties: { x: { type: number } } }\n",
        );
        let (plugin, warnings) = load_plugin(&manifest).expect("it loads");
        assert_eq!(plugin.version, "2");
        assert_eq!(plugin.uses("run"), "plugin.score.run");
        assert_eq!(plugin.kinds[0].writes, ["main"]);
        // A schema without `type: object` loads, with a warning at its line.
        assert_eq!(warnings.diagnostics.len(), 1);
        assert_eq!(warnings.diagnostics[0].span.map(|s| s.line), Some(8));
    }

    #[test]
    fn reports_every_problem_of_a_manifest_with_its_line() {
        let root = tempfile::tempdir().unwrap();
        let manifest = plugin_folder(
            root.path(),
            "score",
            "name: scores\nversion: 1.0.0\nprotocol: 1\nkinds:\n  run:\n    description: d\n    executable: run.sh\n    inputs: { min: 2, max: 1 }\n    writes: [main, main, 9x]\n",
        );
        let problems = load_plugin(&manifest).expect_err("it does not load");
        let found: Vec<(usize, &str)> = problems
            .diagnostics
            .iter()
            .map(|d| (d.span.map_or(0, |s| s.line), d.message.as_str()))
            .collect();
        assert_eq!(
            found,
            [
                (1, "the plugin is named `scores` but its folder is `score`"),
                (8, "`max` (1) is below `min` (2)"),
                (9, "`main` is listed twice"),
                (9, "`9x` cannot be a dataset name"),
            ]
        );
    }

    #[test]
    fn a_program_stays_inside_its_plugin_folder() {
        let root = tempfile::tempdir().unwrap();
        let dir = root.path().join("p");
        std::fs::create_dir_all(dir.join("bin")).unwrap();
        let dir = dir.canonicalize().unwrap();
        executable(&dir.join("bin/run"));
        executable(&root.path().join("outside"));
        symlink(root.path().join("outside"), dir.join("escape")).unwrap();
        symlink("bin/run", dir.join("inner-link")).unwrap();
        std::fs::write(dir.join("plain"), "x").unwrap();

        assert_eq!(
            resolve_executable(&dir, "bin/run").unwrap(),
            dir.join("bin/run")
        );
        assert_eq!(
            resolve_executable(&dir, "inner-link").unwrap(),
            dir.join("bin/run")
        );
        let message = |e: &str| resolve_executable(&dir, e).unwrap_err().0;
        assert!(message("../outside").contains("`..`"));
        assert!(message("bin/../../outside").contains("`..`"));
        assert!(message("/bin/sh").contains("absolute"));
        assert!(message("escape").contains("outside the plugin's folder"));
        assert!(message("missing").contains("does not exist"));
        assert!(message("plain").contains("not executable"));
        assert!(message("bin").contains("not a file"));
    }
}
