//! `segflow schema`: the JSON Schema of pipeline files, from the model and every step kind's
//! config, so editors can complete and check `with` blocks too.

use serde_json::{Value, json};

use super::model::Pipeline;
use crate::steps::Registry;

pub fn pipeline_schema(registry: &Registry) -> Value {
    let mut schema =
        serde_json::to_value(schemars::schema_for!(Pipeline)).expect("schemas serialize");
    schema["$id"] = json!("https://segflow.dev/schema/pipeline.json");
    schema["title"] = json!("segflow pipeline");
    let names: Vec<&str> = registry.names().collect();
    let step = &mut schema["$defs"]["Step"];
    step["properties"]["uses"] = json!({
        "description": "The step kind: a built-in or `plugin.NAME.KIND`.",
        "anyOf": [
            { "enum": names },
            { "type": "string", "pattern": "^plugin\\.[A-Za-z0-9_-]+\\.[A-Za-z0-9_.-]+$" }
        ]
    });
    let per_kind: Vec<Value> = registry
        .kinds()
        .map(|kind| {
            let mut with = kind.config_schema();
            if let Some(map) = with.as_object_mut() {
                map.remove("$schema");
                map.insert("description".into(), json!(kind.description()));
            }
            json!({
                "if": { "properties": { "uses": { "const": kind.name() } }, "required": ["uses"] },
                "then": { "properties": { "with": with } }
            })
        })
        .collect();
    step["allOf"] = Value::Array(per_kind);
    schema
}
