//! Property tests: the loader never panics, whatever the text, and every diagnostic it gives
//! points inside the file. `PROPTEST_CASES` sets how many inputs each property tries (default
//! 256; the long run reported in the README's Tests section says how many it used).

use proptest::prelude::*;
use serde_json::{Value, json};

use super::load_source;
use super::source::Source;
use crate::steps::Registry;

const GOOD: &str = r#"name: weekly-rfm
schedule: { cron: "0 6 * * 1", timezone: Europe/Berlin, catchup: latest, overlap: skip }
params:
  as_of: { type: date, default: "${{ run.scheduled_date }}" }
  holdout: { type: number, default: 0.1, min: 0, max: 0.5 }
  mode: { type: enum, values: [a, b], default: a }
defaults:
  retry: { attempts: 3, backoff: exponential, delay: 2s, max_delay: 1m }
  timeout: 15m
steps:
  - id: orders
    uses: gather.csv
    with: { path: data/orders.csv }
  - id: count
    uses: shell
    needs: [orders]
    with: { command: ["echo", "${{ params.as_of }}"], outputs: [rows], env: { A: "1" } }
  - id: split
    uses: noop
    needs: [count]
    when: "${{ steps.count.outputs.rows > 0 and params.mode == 'a' }}"
    with: { outputs: { fraction: "${{ params.holdout }}" } }
  - id: alert
    uses: sleep
    needs: [split]
    trigger: one_failed
    with: { duration: 1s }
"#;

fn check(text: &str) {
    let registry = Registry::builtin();
    let source = Source::new("fuzz.yaml", text);
    let lines = Source::new("", text).lines().count();
    match load_source(source, &registry, std::path::Path::new(".")) {
        Ok(loaded) => {
            // A pipeline that loads always plans.
            crate::plan::Plan::build(&loaded.pipeline).expect("a loaded pipeline has a DAG");
        }
        Err(failed) => {
            assert!(
                !failed.diagnostics.is_empty(),
                "a failure without a diagnostic"
            );
            for diagnostic in &failed.diagnostics {
                if let Some(span) = diagnostic.span {
                    assert!(
                        span.line >= 1 && span.line <= lines,
                        "{diagnostic:?} outside {lines} lines"
                    );
                }
                // Rendering never panics either.
                let _ = diagnostic.render(&failed.source, true);
            }
        }
    }
}

/// Values that look like what pipelines hold, typos and expressions included.
fn value() -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::from),
        any::<i64>().prop_map(Value::from),
        (-1e6f64..1e6).prop_map(Value::from),
        "[a-z_.]{0,12}".prop_map(Value::from),
        prop_oneof![
            Just("${{ params.holdout }}"),
            Just("${{ steps.count.outputs.rows }}"),
            Just("${{ steps.nope.outputs.x }}"),
            Just("${{ run.scheduled_date }}"),
            Just("${{ secrets.KEY }}"),
            Just("${{ "),
            Just("${{ 1 + }}"),
            Just("x ${{ env.HOME }} y"),
            Just("0 6 * * 1"),
            Just("61 * * * *"),
            Just("Europe/Berln"),
            Just("2s"),
            Just("gather.csv"),
            Just("all_success"),
            Just("one_faild"),
        ]
        .prop_map(Value::from),
    ];
    leaf.prop_recursive(3, 24, 6, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(Value::Array),
            prop::collection::vec((key(), inner), 0..5)
                .prop_map(|pairs| Value::Object(pairs.into_iter().collect())),
        ]
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "id",
            "uses",
            "needs",
            "with",
            "when",
            "trigger",
            "retry",
            "timeout",
            "name",
            "steps",
            "params",
            "schedule",
            "cron",
            "timezone",
            "defaults",
            "attempts",
            "delay",
            "type",
            "default",
            "min",
            "max",
            "values",
            "command",
            "outputs",
            "duration",
            "neds",
            "concurrency",
        ])
        .prop_map(str::to_string),
        "[a-z]{1,6}",
    ]
}

/// A pipeline-shaped document: real keys, random values, steps that need each other.
fn pipeline() -> impl Strategy<Value = Value> {
    let step = (
        prop::sample::select(vec!["a", "b", "c", "d", "a-b", ""]),
        prop::sample::select(vec!["noop", "shell", "sleep", "gather.csv", "nope"]),
        prop::collection::vec(prop::sample::select(vec!["a", "b", "c", "d", "x"]), 0..3),
        value(),
        proptest::option::of(value()),
    )
        .prop_map(|(id, uses, needs, with, when)| {
            let mut step = json!({ "id": id, "uses": uses, "needs": needs, "with": with });
            if let Some(when) = when {
                step["when"] = when;
            }
            step
        });
    (
        prop::collection::vec(step, 0..6),
        proptest::option::of(value()),
        proptest::option::of(value()),
    )
        .prop_map(|(steps, params, schedule)| {
            let mut doc = json!({ "name": "fuzz", "steps": steps });
            if let Some(params) = params {
                doc["params"] = params;
            }
            if let Some(schedule) = schedule {
                doc["schedule"] = schedule;
            }
            doc
        })
}

/// An edit of the good pipeline's text: a character inserted, deleted or replaced.
/// A few random edits (insert, delete or replace a character) of a text `len` bytes long.
pub(crate) fn edits(len: usize) -> impl Strategy<Value = Vec<(usize, u8, char)>> {
    prop::collection::vec((0..len, 0..3u8, any::<char>()), 1..8)
}

/// `base` with the edits applied.
pub(crate) fn apply(base: &str, edits: &[(usize, u8, char)]) -> String {
    let mut chars: Vec<char> = base.chars().collect();
    for &(at, op, c) in edits {
        let at = at % (chars.len() + 1);
        match op {
            0 => chars.insert(at, c),
            1 if at < chars.len() => {
                chars.remove(at);
            }
            _ if at < chars.len() => chars[at] = c,
            _ => {}
        }
    }
    chars.into_iter().collect()
}

#[test]
fn the_good_pipeline_loads() {
    let registry = Registry::builtin();
    let loaded = load_source(
        Source::new("good.yaml", GOOD),
        &registry,
        std::path::Path::new("."),
    );
    assert!(
        loaded.is_ok(),
        "{}",
        loaded.err().map(|d| d.render(false)).unwrap_or_default()
    );
}

proptest! {
    #[test]
    fn arbitrary_text_never_panics(text in any::<String>()) {
        check(&text);
    }

    #[test]
    fn yaml_like_text_never_panics(text in "[ a-z:\\-\\[\\]{},'\"\n#&*!|>$.0-9]{0,200}") {
        check(&text);
    }

    #[test]
    fn pipeline_shaped_documents_never_panic(doc in pipeline()) {
        check(&serde_yaml::to_string(&doc).expect("JSON values serialize to YAML"));
    }

    #[test]
    fn edited_pipelines_never_panic(edits in edits(GOOD.len())) {
        check(&apply(GOOD, &edits));
    }
}
