//! The values `${{ … }}` expressions see: params, env, secrets, steps and run.

use std::sync::Arc;

use chrono::{DateTime, Utc};
use chrono_tz::Tz;
use indexmap::IndexMap;
use minijinja::Value as JinjaValue;
use minijinja::value::{Object, ObjectRepr};
use serde_json::{Map, Value, json};

use crate::secrets::Secrets;
use crate::store::{RunRecord, StepRecord};

fn to_jinja(value: impl serde::Serialize) -> JinjaValue {
    JinjaValue::from(minijinja::value::Serde(value))
}

/// `env.NAME`: process environment variables, looked up only when an expression reads one.
#[derive(Debug)]
struct EnvObject;

impl Object for EnvObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &JinjaValue) -> Option<JinjaValue> {
        std::env::var(key.as_str()?).ok().map(JinjaValue::from)
    }
}

/// `secrets.NAME`: read on demand; every value read is masked in logs from then on.
#[derive(Debug)]
struct SecretsObject(Arc<Secrets>);

impl Object for SecretsObject {
    fn repr(self: &Arc<Self>) -> ObjectRepr {
        ObjectRepr::Map
    }

    fn get_value(self: &Arc<Self>, key: &JinjaValue) -> Option<JinjaValue> {
        self.0.get(key.as_str()?).map(JinjaValue::from)
    }
}

/// The `run.*` values of a run.
pub fn run_values(run: &RunRecord, timezone: Option<Tz>) -> Value {
    let reference: DateTime<Utc> = run.scheduled_for.unwrap_or(run.created_at);
    let date = match timezone {
        Some(tz) => reference.with_timezone(&tz).date_naive(),
        None => reference.date_naive(),
    };
    json!({
        "id": run.id,
        "pipeline": run.pipeline,
        "started_at": run.started_at.unwrap_or(run.created_at).to_rfc3339(),
        "scheduled_for": run.scheduled_for.map(|t| t.to_rfc3339()),
        "scheduled_date": date.format("%Y-%m-%d").to_string(),
        "trigger": run.trigger,
        "attempt": run.resumes + 1,
    })
}

/// The full context for a step's `when` and `with`.
pub fn context(
    run: &Value,
    params: &IndexMap<String, Value>,
    steps: &[&StepRecord],
    secrets: &Arc<Secrets>,
) -> JinjaValue {
    let steps: Map<String, Value> = steps
        .iter()
        .map(|s| {
            (
                s.id.clone(),
                json!({ "outputs": s.outputs, "state": s.state.name() }),
            )
        })
        .collect();
    let mut map = std::collections::BTreeMap::new();
    map.insert("run", to_jinja(run));
    map.insert("params", to_jinja(params));
    map.insert("steps", to_jinja(&steps));
    map.insert("env", JinjaValue::from_object(EnvObject));
    map.insert(
        "secrets",
        JinjaValue::from_object(SecretsObject(Arc::clone(secrets))),
    );
    JinjaValue::from(map)
}

/// The context params' defaults are computed in: `run` and `env` only.
pub fn params_context(run: &Value) -> JinjaValue {
    let mut map = std::collections::BTreeMap::new();
    map.insert("run", to_jinja(run));
    map.insert("env", JinjaValue::from_object(EnvObject));
    JinjaValue::from(map)
}
