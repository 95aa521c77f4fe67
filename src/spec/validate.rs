//! Semantic checks of a pipeline that has the right shape: names, references, the DAG,
//! expressions, schedules, params and each step's `with`.

use std::collections::HashMap;
use std::path::Path;
use std::str::FromStr;

use serde_json::Value;

use super::diagnostic::Diagnostics;
use super::expr::{self, Part, ROOTS, RUN_FIELDS};
use super::model::{Condition, ParamType, Pipeline, Trigger};
use super::params;
use super::source::{Source, Span};
use super::suggest;
use super::yaml_path::YamlPath;
use crate::data::Column;
use crate::plan::{Plan, PlanError};
use crate::schedule::CronSchedule;
use crate::steps::{CheckContext, Registry};

/// Step ids are identifiers so that `steps.ID.outputs` and SQL table names work unquoted.
pub fn is_identifier(text: &str) -> bool {
    let mut chars = text.chars();
    matches!(chars.next(), Some(c) if c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

pub fn check(
    pipeline: &Pipeline,
    broken_steps: &[usize],
    registry: &Registry,
    base_dir: &Path,
    source: &Source,
    diags: &mut Diagnostics<'_>,
) {
    let root = YamlPath::root();
    check_name(pipeline, diags);
    if pipeline.concurrency == Some(0) {
        diags.error(
            &root.key("concurrency"),
            "`concurrency` must be at least 1",
            None,
        );
    }
    if pipeline.steps.is_empty() {
        diags.error(
            &root.key("steps"),
            "the pipeline has no steps",
            Some("add at least one step with `id` and `uses`".into()),
        );
    }
    check_schedule(pipeline, diags);
    check_params(pipeline, source, diags);
    check_retry(pipeline, diags);
    check_ids(pipeline, diags);
    let plan = check_graph(pipeline, diags);
    let needed = crate::plan::NeededSteps::new(pipeline);
    // In plan order, so each step's check sees the columns its inputs will have.
    let order: Vec<usize> = match &plan {
        Some(plan) => plan.order().to_vec(),
        None => (0..pipeline.steps.len()).collect(),
    };
    let mut known_columns: HashMap<String, Vec<Column>> = HashMap::new();
    for i in order {
        let step = &pipeline.steps[i];
        if broken_steps.contains(&i) {
            continue;
        }
        let path = root.key("steps").index(i);
        if let Some(columns) = check_kind(pipeline, i, registry, base_dir, &known_columns, diags) {
            known_columns.insert(step.id.clone(), columns);
        }
        let ancestors = needed.of(i);
        let mut expressions: Vec<(YamlPath, String)> = Vec::new();
        if let Some(Condition::Expression(text)) = &step.when {
            // `when` may be written bare, without `${{ }}`.
            let text = if expr::has_expression(text) {
                text.clone()
            } else {
                format!("${{{{ {text} }}}}")
            };
            expressions.push((path.key("when"), text));
        }
        let mut in_with = Vec::new();
        expr::expression_strings(&step.with, &path.key("with"), &mut in_with);
        expressions.extend(in_with.into_iter().map(|(p, s)| (p, s.to_string())));
        for (expr_path, text) in expressions {
            check_expression(
                pipeline, registry, &ancestors, &expr_path, &text, source, diags,
            );
        }
        if step.trigger == Trigger::OneFailed && step.needs.is_empty() {
            diags.warning(
                &path.key("trigger"),
                "a `one_failed` step with no `needs` never runs",
                Some("list the steps whose failure it handles under `needs`".into()),
            );
        }
    }
}

fn check_name(pipeline: &Pipeline, diags: &mut Diagnostics<'_>) {
    let name = &pipeline.name;
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.')
        && !name.starts_with('.');
    if !ok {
        diags.error(
            &YamlPath::root().key("name"),
            format!("`{name}` cannot be a pipeline name"),
            Some("use letters, digits, `-` and `_`, like `weekly-rfm`".into()),
        );
    }
}

fn check_schedule(pipeline: &Pipeline, diags: &mut Diagnostics<'_>) {
    let Some(schedule) = &pipeline.schedule else {
        return;
    };
    let path = YamlPath::root().key("schedule");
    if let Err(message) = CronSchedule::parse(&schedule.cron) {
        diags.error(
            &path.key("cron"),
            message,
            Some("5 fields: minute hour day-of-month month day-of-week, e.g. \"0 6 * * 1\" for Mondays at 06:00".into()),
        );
    }
    if chrono_tz::Tz::from_str(&schedule.timezone).is_err() {
        let names = chrono_tz::TZ_VARIANTS.iter().map(|tz| tz.name());
        diags.error(
            &path.key("timezone"),
            format!("`{}` is not an IANA timezone", schedule.timezone),
            suggest::closest(&schedule.timezone, names)
                .map(|best| format!("did you mean `{best}`?"))
                .or_else(|| {
                    Some("use a name like `Europe/Berlin`, `America/New_York` or `UTC`".into())
                }),
        );
    }
}

fn check_params(pipeline: &Pipeline, source: &Source, diags: &mut Diagnostics<'_>) {
    let base = YamlPath::root().key("params");
    for (name, spec) in &pipeline.params {
        let path = base.key(name.clone());
        if !is_identifier(name) {
            diags.error_at_key(
                &path,
                format!("`{name}` cannot be a param name"),
                Some("use letters, digits and `_`, starting with a letter".into()),
            );
        }
        let numeric = matches!(spec.kind, ParamType::Integer | ParamType::Number);
        for (bound, value) in [("min", spec.min), ("max", spec.max)] {
            if value.is_some() && !numeric {
                diags.error_at_key(
                    &path.key(bound),
                    format!(
                        "`{bound}` applies to integer and number params, not {}",
                        spec.kind.name()
                    ),
                    None,
                );
            }
        }
        if let (Some(min), Some(max)) = (spec.min, spec.max)
            && min > max
        {
            diags.error(
                &path.key("max"),
                format!("`max` ({max}) is below `min` ({min})"),
                None,
            );
        }
        match (spec.kind, &spec.values) {
            (ParamType::Enum, None) => diags.error_at_key(
                &path,
                format!("enum param `{name}` lists no `values`"),
                Some("add `values: [a, b]`".into()),
            ),
            (ParamType::Enum, Some(values)) if values.is_empty() => {
                diags.error(&path.key("values"), "`values` is empty", None)
            }
            (ParamType::Enum, _) | (_, None) => {}
            (_, Some(_)) => diags.error_at_key(
                &path.key("values"),
                "`values` applies to enum params only",
                Some("set `type: enum`".into()),
            ),
        }
        let Some(default) = &spec.default else {
            continue;
        };
        match default {
            Value::String(text) if expr::has_expression(text) => {
                // A default is computed before any step runs: it may read `run.*` and `env.*` only.
                let mut refs = Vec::new();
                collect_references(text, &path.key("default"), source, diags, &mut refs);
                for (reference, span) in refs {
                    let root = reference.split('.').next().unwrap_or_default();
                    if root != "run" && root != "env" {
                        diags.push(
                            super::diagnostic::Diagnostic::error(format!(
                                "a param default can read `run.*` and `env.*` only, not `{reference}`"
                            )),
                            &path.key("default"),
                            super::diagnostic::Anchor::Value,
                        );
                        if let Some(last) = diags.items.last_mut() {
                            last.span = span.or(last.span);
                        }
                    } else if root == "run" {
                        check_run_field(&reference, &path.key("default"), span, diags);
                    }
                }
            }
            _ => {
                if let Err(message) = params::coerce(name, spec, default) {
                    diags.error(
                        &path.key("default"),
                        format!("the default is not valid: {message}"),
                        None,
                    );
                }
            }
        }
    }
}

fn check_retry(pipeline: &Pipeline, diags: &mut Diagnostics<'_>) {
    let root = YamlPath::root();
    let mut policies = vec![(
        root.key("defaults").key("retry"),
        pipeline.defaults.retry.as_ref(),
    )];
    for (i, step) in pipeline.steps.iter().enumerate() {
        policies.push((root.key("steps").index(i).key("retry"), step.retry.as_ref()));
    }
    for (path, policy) in policies {
        let Some(policy) = policy else { continue };
        if policy.attempts == 0 {
            diags.error(
                &path.key("attempts"),
                "`attempts` counts every try, the first included: it must be at least 1",
                None,
            );
        }
        if let Some(max) = policy.max_delay
            && max < policy.delay
        {
            diags.error(
                &path.key("max_delay"),
                format!(
                    "`max_delay` ({max}) is shorter than `delay` ({})",
                    policy.delay
                ),
                None,
            );
        }
    }
}

fn check_ids(pipeline: &Pipeline, diags: &mut Diagnostics<'_>) {
    let mut first_seen: HashMap<&str, usize> = HashMap::new();
    for (i, step) in pipeline.steps.iter().enumerate() {
        let path = YamlPath::root().key("steps").index(i).key("id");
        if step.id.starts_with('#') {
            continue; // a placeholder for a step that could not be read; already reported
        }
        if !is_identifier(&step.id) {
            let suggestion: String = step
                .id
                .chars()
                .map(|c| if c.is_ascii_alphanumeric() { c } else { '_' })
                .collect();
            diags.error(
                &path,
                format!("`{}` cannot be a step id", step.id),
                Some(format!(
                    "ids are letters, digits and `_`, starting with a letter (so `steps.ID.outputs` and SQL can name them): try `{suggestion}`"
                )),
            );
        }
        if let Some(first) = first_seen.insert(&step.id, i) {
            diags.error(
                &path,
                format!("duplicate step id `{}`", step.id),
                Some(format!(
                    "step {} already uses it; ids must be unique",
                    first + 1
                )),
            );
            first_seen.insert(&pipeline.steps[first].id, first);
        }
    }
}

fn check_graph(pipeline: &Pipeline, diags: &mut Diagnostics<'_>) -> Option<Plan> {
    let steps = YamlPath::root().key("steps");
    match Plan::build(pipeline) {
        Ok(plan) => Some(plan),
        Err(errors) => {
            for error in errors {
                match error {
                    PlanError::UnknownNeed { step, need, name } => {
                        let hint = suggest::hint(
                            &name,
                            pipeline
                                .steps
                                .iter()
                                .filter(|s| s.id != pipeline.steps[step].id)
                                .map(|s| s.id.as_str()),
                        );
                        diags.error(
                            &steps.index(step).key("needs").index(need),
                            format!(
                                "step `{}` needs `{name}`, but there is no such step",
                                pipeline.steps[step].id
                            ),
                            hint,
                        );
                    }
                    PlanError::Cycle(cycle) => {
                        let names: Vec<&str> = cycle
                            .iter()
                            .map(|&i| pipeline.steps[i].id.as_str())
                            .collect();
                        let first = cycle[0];
                        let message = if cycle.len() == 2 {
                            format!("step `{}` needs itself: {}", names[0], names.join(" -> "))
                        } else {
                            format!(
                                "the steps depend on each other in a cycle: {}",
                                names.join(" -> ")
                            )
                        };
                        let need_index = pipeline.steps[first]
                            .needs
                            .iter()
                            .position(|n| *n == pipeline.steps[cycle[1]].id)
                            .unwrap_or(0);
                        diags.error(
                            &steps.index(first).key("needs").index(need_index),
                            message,
                            Some("each arrow reads \"needs\"; remove one of these needs to break the cycle".into()),
                        );
                    }
                }
            }
            None
        }
    }
}

/// Checks a step's kind and `with`; returns the columns of the dataset the step will write,
/// when they can be known now.
fn check_kind(
    pipeline: &Pipeline,
    index: usize,
    registry: &Registry,
    base_dir: &Path,
    known_columns: &HashMap<String, Vec<Column>>,
    diags: &mut Diagnostics<'_>,
) -> Option<Vec<Column>> {
    let step = &pipeline.steps[index];
    let path = YamlPath::root().key("steps").index(index);
    let Some(kind) = registry.get(&step.uses) else {
        let hint = if let Some(rest) = step.uses.strip_prefix("plugin.") {
            let plugin = rest.split('.').next().unwrap_or_default();
            let known: Vec<&str> = registry
                .names()
                .filter(|n| n.starts_with("plugin."))
                .collect();
            suggest::closest(&step.uses, known.iter().copied())
                .map(|best| format!("did you mean `{best}`?"))
                .or_else(|| Some(format!("no plugin in plugins/ provides it; check plugins/{plugin}/plugin.yaml, or run `segflow plugins list`")))
        } else {
            suggest::hint(
                &step.uses,
                registry.names().filter(|n| !n.starts_with("plugin.")),
            )
        };
        diags.error(
            &path.key("uses"),
            format!("unknown step kind `{}`", step.uses),
            hint,
        );
        return None;
    };
    if !step.with.is_object() {
        diags.error(
            &path.key("with"),
            "`with` must be a mapping of settings",
            Some("write it as `with: { key: value }` or as indented `key: value` lines".into()),
        );
        return None;
    }
    let (static_with, dynamic) = static_view(&step.with, pipeline);
    let ctx = CheckContext {
        step_id: &step.id,
        needs: &step.needs,
        base_dir,
        dynamic,
        input_columns: known_columns,
    };
    let errors = kind.check(&static_with, &ctx);
    let columns = if errors.is_empty() {
        kind.output_columns(&static_with, &ctx)
    } else {
        None
    };
    for error in errors {
        let error_path = path.key("with").join(&error.path);
        let diagnostic = super::diagnostic::Diagnostic::error(format!(
            "{} (in `{}` config)",
            error.message, step.uses
        ))
        .with_hint_opt(error.hint);
        let anchor = if error.at_key {
            super::diagnostic::Anchor::Key
        } else {
            super::diagnostic::Anchor::Value
        };
        diags.push(diagnostic, &error_path, anchor);
    }
    columns
}

/// `with` as far as it is known before the run: a lone `${{ params.x }}` becomes the param's
/// literal default; other expressions are returned as paths whose type is checked at run time.
fn static_view(with: &Value, pipeline: &Pipeline) -> (Value, Vec<YamlPath>) {
    let mut value = with.clone();
    let mut found = Vec::new();
    expr::expression_strings(with, &YamlPath::root(), &mut found);
    let mut dynamic = Vec::new();
    for (path, text) in found {
        let default = expr::single_expression(text)
            .and_then(|e| e.strip_prefix("params."))
            .and_then(|name| pipeline.params.get(name.trim()))
            .and_then(|spec| spec.default.as_ref())
            .filter(|d| !matches!(d, Value::String(s) if expr::has_expression(s)));
        match default {
            Some(default) => set(&mut value, &path, default.clone()),
            None if expr::single_expression(text).is_some() => dynamic.push(path),
            None => {} // text around expressions: a string whatever the values
        }
    }
    (value, dynamic)
}

fn set(value: &mut Value, path: &YamlPath, new: Value) {
    use super::yaml_path::Segment;
    let mut current = value;
    for segment in &path.0 {
        current = match (current, segment) {
            (Value::Object(map), Segment::Key(k)) => match map.get_mut(k) {
                Some(v) => v,
                None => return,
            },
            (Value::Array(items), Segment::Index(i)) => match items.get_mut(*i) {
                Some(v) => v,
                None => return,
            },
            _ => return,
        };
    }
    *current = new;
}

/// The dotted references of every expression in `text`, each with the span of its expression.
fn collect_references(
    text: &str,
    path: &YamlPath,
    source: &Source,
    diags: &mut Diagnostics<'_>,
    out: &mut Vec<(String, Option<Span>)>,
) {
    let parts = match expr::parts(text) {
        Ok(parts) => parts,
        Err(e) => {
            diags.error(
                path,
                e.to_string(),
                Some("close every `${{` with `}}`".into()),
            );
            return;
        }
    };
    for part in parts {
        let Part::Expr(expression, _) = part else {
            continue;
        };
        let span = expression_span(diags, path, source, expression);
        match expr::references(expression) {
            Ok(refs) => out.extend(refs.into_iter().map(|r| (r, span))),
            Err(e) => {
                diags.error(
                    path,
                    e.to_string(),
                    Some("expressions use Jinja syntax, e.g. `${{ params.holdout * 2 }}`".into()),
                );
                if let Some(last) = diags.items.last_mut() {
                    last.span = span.or(last.span);
                }
            }
        }
    }
}

/// Points at the expression inside its string when it can be found on the string's line.
fn expression_span(
    diags: &Diagnostics<'_>,
    path: &YamlPath,
    source: &Source,
    expression: &str,
) -> Option<Span> {
    let value_span = diags_value_span(diags, path)?;
    let line = source.line(value_span.line)?;
    let from: usize = line
        .char_indices()
        .nth(value_span.column - 1)
        .map_or(0, |(b, _)| b);
    let found = line[from..].find(expression)? + from;
    let column = line[..found].chars().count() + 1;
    Some(Span::new(
        value_span.line,
        column,
        expression.chars().count(),
    ))
}

fn diags_value_span(diags: &Diagnostics<'_>, path: &YamlPath) -> Option<Span> {
    diags.map().value_span(path)
}

#[allow(clippy::too_many_arguments)]
fn check_expression(
    pipeline: &Pipeline,
    registry: &Registry,
    ancestors: &[usize],
    path: &YamlPath,
    text: &str,
    source: &Source,
    diags: &mut Diagnostics<'_>,
) {
    let mut refs = Vec::new();
    collect_references(text, path, source, diags, &mut refs);
    for (reference, span) in refs {
        let error = reference_error(pipeline, registry, ancestors, &reference);
        if let Some((message, hint)) = error {
            diags.error(path, message, hint);
            if let Some(last) = diags.items.last_mut() {
                last.span = span.or(last.span);
            }
        }
    }
}

fn check_run_field(
    reference: &str,
    path: &YamlPath,
    span: Option<Span>,
    diags: &mut Diagnostics<'_>,
) {
    if let Some(field) = reference.split('.').nth(1)
        && !RUN_FIELDS.contains(&field)
    {
        diags.error(
            path,
            format!("`run` has no field `{field}`"),
            suggest::hint(field, RUN_FIELDS),
        );
        if let Some(last) = diags.items.last_mut() {
            last.span = span.or(last.span);
        }
    }
}

/// What is wrong with one dotted reference, if anything.
fn reference_error(
    pipeline: &Pipeline,
    registry: &Registry,
    ancestors: &[usize],
    reference: &str,
) -> Option<(String, Option<String>)> {
    let segments: Vec<&str> = reference.split('.').collect();
    let root = segments[0];
    match root {
        "params" => {
            let name = segments.get(1)?;
            if pipeline.params.contains_key(*name) {
                return None;
            }
            Some((
                format!("there is no param `{name}`"),
                suggest::hint(name, pipeline.params.keys().map(String::as_str))
                    .or_else(|| Some("declare it under `params:`".into())),
            ))
        }
        "run" => {
            let field = segments.get(1)?;
            if RUN_FIELDS.contains(field) {
                return None;
            }
            Some((
                format!("`run` has no field `{field}`"),
                suggest::hint(field, RUN_FIELDS),
            ))
        }
        "env" | "secrets" => None,
        "steps" => {
            let id = segments.get(1)?;
            let Some(position) = pipeline.steps.iter().position(|s| s.id == *id) else {
                return Some((
                    format!("there is no step `{id}`"),
                    suggest::hint(id, pipeline.steps.iter().map(|s| s.id.as_str())),
                ));
            };
            if !ancestors.contains(&position) {
                return Some((
                    format!(
                        "step `{id}` does not run before this step, so its outputs are not known here"
                    ),
                    Some(format!("add `{id}` to this step's `needs`")),
                ));
            }
            match segments.get(2).copied() {
                None | Some("state") => None,
                Some("outputs") => {
                    let name = segments.get(3)?;
                    let upstream = &pipeline.steps[position];
                    let declared = registry.get(&upstream.uses)?.outputs(&upstream.with)?;
                    if declared.iter().any(|d| d == name) {
                        return None;
                    }
                    let hint = if declared.is_empty() {
                        Some(format!("`{}` steps set no outputs", upstream.uses))
                    } else {
                        suggest::hint(name, declared.iter().map(String::as_str))
                    };
                    Some((
                        format!("step `{id}` ({}) has no output `{name}`", upstream.uses),
                        hint,
                    ))
                }
                Some(other) => Some((
                    format!("`steps.{id}.{other}` is not something a step has"),
                    Some(format!(
                        "use `steps.{id}.outputs.NAME` or `steps.{id}.state`"
                    )),
                )),
            }
        }
        other => Some((
            format!("unknown name `{other}` in expression"),
            suggest::closest(other, ROOTS)
                .map(|best| format!("did you mean `{best}`?"))
                .or_else(|| {
                    Some("expressions start with params., env., secrets., steps. or run.".into())
                }),
        )),
    }
}

#[cfg(test)]
mod tests {
    use async_trait::async_trait;
    use schemars::JsonSchema;
    use serde::Deserialize;

    use crate::data::Column;
    use crate::spec::deserialize::FieldError;
    use crate::spec::source::Source;
    use crate::spec::yaml_path::YamlPath;
    use crate::steps::{CheckContext, Kind, Registry, StepContext, StepError, StepOutput, Typed};

    /// A kind that reads one column of its input and hands its input's columns on.
    struct PassThrough;

    #[derive(Deserialize, JsonSchema)]
    #[serde(deny_unknown_fields)]
    struct PassThroughConfig {
        column: String,
    }

    #[async_trait]
    impl Kind for PassThrough {
        const NAME: &'static str = "test.pass";
        const DESCRIPTION: &'static str = "test";
        type Config = PassThroughConfig;

        fn check(&self, config: &PassThroughConfig, ctx: &CheckContext<'_>) -> Vec<FieldError> {
            match ctx.columns_of(None) {
                Some(columns) if !columns.iter().any(|c| c.name == config.column) => {
                    vec![FieldError {
                        path: YamlPath::root().key("column"),
                        message: format!("no column `{}`", config.column),
                        hint: None,
                        at_key: false,
                    }]
                }
                _ => Vec::new(),
            }
        }

        fn output_columns(
            &self,
            _config: &PassThroughConfig,
            ctx: &CheckContext<'_>,
        ) -> Option<Vec<Column>> {
            ctx.columns_of(None).map(<[Column]>::to_vec)
        }

        async fn run(
            &self,
            _: PassThroughConfig,
            _: &StepContext,
        ) -> Result<StepOutput, StepError> {
            Ok(StepOutput::default())
        }
    }

    fn errors(yaml: &str, dir: &std::path::Path) -> Vec<String> {
        let mut registry = Registry::builtin();
        registry.add(Typed(PassThrough));
        match crate::spec::load_source(Source::new("p.yaml", yaml), &registry, dir) {
            Ok(_) => Vec::new(),
            Err(failed) => failed.diagnostics.into_iter().map(|d| d.message).collect(),
        }
    }

    #[test]
    fn a_step_is_checked_against_the_columns_its_inputs_will_have() {
        let dir = tempfile::tempdir().expect("temp dir");
        std::fs::write(dir.path().join("people.csv"), "id,age\n1,30\n").expect("csv");
        // Written out of order: the walk follows `needs`, not the file.
        let yaml = r#"
name: p
steps:
  - id: second
    uses: test.pass
    needs: [first]
    with: { column: ag }
  - id: first
    uses: test.pass
    needs: [people]
    with: { column: age }
  - id: people
    uses: gather.csv
    with: { path: people.csv }
"#;
        let found = errors(yaml, dir.path());
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].contains("no column `ag`"), "{found:?}");
    }

    #[test]
    fn unknown_columns_are_not_reported_when_the_input_is_unknown() {
        let dir = tempfile::tempdir().expect("temp dir");
        let yaml = r#"
name: p
steps:
  - id: people
    uses: gather.csv
    with: { path: missing.csv }
  - id: first
    uses: test.pass
    needs: [people]
    with: { column: anything }
"#;
        assert!(errors(yaml, dir.path()).is_empty());
    }
}
