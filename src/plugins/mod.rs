//! Plugins: step kinds in any language, from `plugins/NAME/plugin.yaml` and a program beside it.
//!
//! segflow starts the program, writes one JSON request on its stdin (the step's `with`, the
//! upstream datasets as file paths, an output folder, run information), streams its stderr into
//! the step's log, and reads one JSON result from its stdout (outputs and the datasets it wrote).
//! docs/plugins.md is the plugin author's guide to it.

mod config_schema;
mod datasets;
#[cfg(test)]
mod fuzz;
mod kind;
mod load;
pub mod manifest;
pub mod protocol;

pub use config_schema::ConfigSchema;
pub use kind::PluginKind;
pub use load::{KindSpec, MANIFEST_FILE, Plugin, Plugins, display_path, load_dir, load_plugin};
pub use protocol::PROTOCOL_VERSION;

use std::path::Path;

/// The folder of a project's plugins.
pub const PLUGINS_DIR: &str = "plugins";

/// Loads the plugins of a project folder (the one holding `pipelines/`).
pub fn load_project(project_dir: &Path) -> Plugins {
    load_dir(&project_dir.join(PLUGINS_DIR))
}
