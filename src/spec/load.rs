//! Reading a pipeline file: YAML syntax, then shape (every unknown key and wrong type), then the
//! semantic checks of `validate`. Every problem of the file is reported in one go.

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use super::deserialize::{FieldError, deserialize_lenient};
use super::diagnostic::{Anchor, Diagnostic, Diagnostics};
use super::locate::SourceMap;
use super::model::{Pipeline, Step};
use super::source::{Source, Span};
use super::validate;
use super::yaml_path::YamlPath;
use crate::steps::Registry;

/// A pipeline file that passed every check.
#[derive(Debug, Clone)]
pub struct LoadedPipeline {
    pub source: Source,
    pub map: SourceMap,
    pub pipeline: Pipeline,
    /// The project folder: relative paths in the file are read from here.
    pub base_dir: PathBuf,
    pub warnings: Vec<Diagnostic>,
}

/// The problems of one file, ready to print.
#[derive(Debug, Clone)]
pub struct FileDiagnostics {
    pub source: Source,
    pub diagnostics: Vec<Diagnostic>,
}

impl FileDiagnostics {
    pub fn render(&self, color: bool) -> String {
        self.diagnostics
            .iter()
            .map(|d| d.render(&self.source, color))
            .collect::<Vec<_>>()
            .join("\n")
    }

    pub fn error_count(&self) -> usize {
        self.diagnostics.iter().filter(|d| d.is_error()).count()
    }
}

/// The project folder of a pipeline file: the folder above `pipelines/` when the file sits in
/// one, else the file's own folder.
pub fn project_dir(path: &Path) -> PathBuf {
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    let parent = std::path::absolute(parent).unwrap_or_else(|_| parent.to_path_buf());
    if parent.file_name().is_some_and(|n| n == "pipelines") {
        parent.parent().map(Path::to_path_buf).unwrap_or(parent)
    } else {
        parent
    }
}

/// Reads and checks a pipeline file.
pub fn load(path: &Path, registry: &Registry) -> Result<LoadedPipeline, FileDiagnostics> {
    let source = match Source::read(path) {
        Ok(source) => source,
        Err(e) => {
            let hint = match e.kind() {
                std::io::ErrorKind::NotFound => Some("check the path; pipeline files end in .yaml"),
                std::io::ErrorKind::InvalidData => Some("pipeline files are UTF-8 text"),
                _ => None,
            };
            return Err(FileDiagnostics {
                source: Source::new(path, ""),
                diagnostics: vec![
                    Diagnostic::error(format!("cannot read the pipeline file: {e}"))
                        .with_hint_opt(hint.map(str::to_string)),
                ],
            });
        }
    };
    load_source(source, registry, &project_dir(path))
}

/// Checks a pipeline's text.
pub fn load_source(
    source: Source,
    registry: &Registry,
    base_dir: &Path,
) -> Result<LoadedPipeline, FileDiagnostics> {
    let map = SourceMap::build(&source.text);
    let mut diags = Diagnostics::new(&map);
    let parsed = parse(&source, &mut diags);
    if let Some(parsed) = &parsed {
        validate::check(
            &parsed.pipeline,
            &parsed.broken_steps,
            registry,
            base_dir,
            &source,
            &mut diags,
        );
    }
    let has_errors = diags.has_errors();
    let mut diagnostics = diags.items;
    // In file order, as a reader goes through it; problems without a position come first.
    diagnostics.sort_by_key(|d| d.span.map(|s| (s.line, s.column)));
    match parsed {
        Some(parsed) if !has_errors => Ok(LoadedPipeline {
            source,
            map,
            pipeline: parsed.pipeline,
            base_dir: base_dir.to_path_buf(),
            warnings: diagnostics,
        }),
        _ => Err(FileDiagnostics {
            source,
            diagnostics,
        }),
    }
}

/// What could be read of the file, with the steps that could not (kept as placeholders so the
/// steps that need them are not reported too).
pub struct Parsed {
    pub pipeline: Pipeline,
    pub broken_steps: Vec<usize>,
}

fn parse(source: &Source, diags: &mut Diagnostics<'_>) -> Option<Parsed> {
    let root = YamlPath::root();
    let document = parse_document(
        source,
        diags,
        "a pipeline needs at least `name:` and `steps:`",
    )?;
    let Value::Object(mut top) = document else {
        diags.error(
            &root,
            "a pipeline file is a mapping of keys (name, steps, …)",
            Some("start the file with `name: my-pipeline`".into()),
        );
        return None;
    };

    let raw_steps = top.insert("steps".into(), Value::Array(Vec::new()));
    let lenient = deserialize_lenient::<Pipeline>(&Value::Object(top), &[]);
    report(diags, &root, lenient.errors);
    let mut pipeline = lenient.value?;

    let steps_path = root.key("steps");
    let raw_steps = match raw_steps {
        None => {
            diags.error(
                &root,
                "missing required key `steps`",
                Some("add `steps:` with at least one step".into()),
            );
            return None;
        }
        Some(Value::Array(items)) => items,
        Some(_) => {
            diags.error(
                &steps_path,
                "`steps` must be a list of steps",
                Some("write each step as `- id: …` on its own line under `steps:`".into()),
            );
            return None;
        }
    };
    let mut broken_steps = Vec::new();
    for (i, raw) in raw_steps.iter().enumerate() {
        let path = steps_path.index(i);
        let lenient = deserialize_lenient::<Step>(raw, &[]);
        report(diags, &path, lenient.errors);
        match lenient.value {
            Some(step) => pipeline.steps.push(step),
            None => {
                broken_steps.push(i);
                pipeline.steps.push(placeholder_step(raw, i));
            }
        }
    }
    Some(Parsed {
        pipeline,
        broken_steps,
    })
}

/// Reads a YAML document as JSON, reporting syntax errors with their position. `empty_hint`
/// says what an empty file should hold. Shared by pipeline files and plugin manifests.
pub fn parse_document(
    source: &Source,
    diags: &mut Diagnostics<'_>,
    empty_hint: &str,
) -> Option<Value> {
    let root = YamlPath::root();
    let mut yaml: serde_yaml::Value = match serde_yaml::from_str(&source.text) {
        Ok(yaml) => yaml,
        Err(e) => {
            let span = e
                .location()
                .map(|l| source.clamp(Span::new(l.line(), l.column(), 1)));
            let message = e.to_string();
            let message = match message.find(" at line ") {
                Some(i) => message[..i].to_string(),
                None => message,
            };
            diags.items.push(
                Diagnostic::error(format!("this is not valid YAML: {message}"))
                    .with_hint("check the indentation and the quotes around this line")
                    .at(span),
            );
            return None;
        }
    };
    if yaml.is_null() {
        diags
            .items
            .push(Diagnostic::error("the file is empty").with_hint(empty_hint));
        return None;
    }
    if let Err(e) = yaml.apply_merge() {
        diags.error(
            &root,
            format!("a YAML merge key (<<) cannot be applied: {e}"),
            None,
        );
        return None;
    }
    yaml_to_json(&yaml, &root, diags)
}

/// Adds deserialization errors (relative to `base`) to the file's diagnostics.
pub fn report(diags: &mut Diagnostics<'_>, base: &YamlPath, errors: Vec<FieldError>) {
    for error in errors {
        let path = base.join(&error.path);
        let anchor = if error.at_key {
            Anchor::Key
        } else {
            Anchor::Value
        };
        diags.push(
            Diagnostic::error(error.message).with_hint_opt(error.hint),
            &path,
            anchor,
        );
    }
}

/// What can be salvaged of a step that does not deserialize: its id and needs.
fn placeholder_step(raw: &Value, index: usize) -> Step {
    let text = |key: &str| raw.get(key).and_then(Value::as_str).map(str::to_string);
    let needs = raw
        .get("needs")
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|v| v.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Step {
        id: text("id").unwrap_or_else(|| format!("#{}", index + 1)),
        uses: text("uses").unwrap_or_default(),
        description: None,
        needs,
        with: Value::Object(Map::new()),
        when: None,
        trigger: Default::default(),
        retry: None,
        timeout: None,
    }
}

/// YAML to JSON, keeping scalar keys (a YAML key may be a number or a boolean) as strings.
fn yaml_to_json(
    value: &serde_yaml::Value,
    path: &YamlPath,
    diags: &mut Diagnostics<'_>,
) -> Option<Value> {
    use serde_yaml::Value as Y;
    Some(match value {
        Y::Null => Value::Null,
        Y::Bool(b) => Value::Bool(*b),
        Y::Number(n) => {
            if let Some(i) = n.as_i64() {
                Value::from(i)
            } else if let Some(u) = n.as_u64() {
                Value::from(u)
            } else {
                match n.as_f64().and_then(serde_json::Number::from_f64) {
                    Some(f) => Value::Number(f),
                    None => {
                        diags.error(path, format!("the number {n} cannot be used here"), None);
                        return None;
                    }
                }
            }
        }
        Y::String(s) => Value::String(s.clone()),
        Y::Sequence(items) => Value::Array(
            items
                .iter()
                .enumerate()
                .map(|(i, item)| yaml_to_json(item, &path.index(i), diags))
                .collect::<Option<Vec<_>>>()?,
        ),
        Y::Mapping(mapping) => {
            let mut out = Map::new();
            for (key, item) in mapping {
                let key = match key {
                    Y::String(s) => s.clone(),
                    Y::Number(n) => n.to_string(),
                    Y::Bool(b) => b.to_string(),
                    _ => {
                        diags.error(
                            path,
                            "a key must be a plain word, not a list or mapping",
                            None,
                        );
                        return None;
                    }
                };
                let value = yaml_to_json(item, &path.key(key.clone()), diags)?;
                out.insert(key, value);
            }
            Value::Object(out)
        }
        Y::Tagged(tagged) => yaml_to_json(&tagged.value, path, diags)?,
    })
}
