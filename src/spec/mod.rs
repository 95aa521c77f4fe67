//! Pipeline files: the model, loading with positions, validation, diagnostics and JSON Schema.

pub mod deserialize;
pub mod diagnostic;
pub mod duration;
pub mod expr;
#[cfg(test)]
pub(crate) mod fuzz;
pub mod load;
pub mod locate;
pub mod model;
pub mod params;
pub mod schema;
pub mod source;
pub mod suggest;
pub mod validate;
pub mod yaml_path;

pub use diagnostic::{Diagnostic, Severity};
pub use load::{FileDiagnostics, LoadedPipeline, load, load_source, project_dir};
pub use model::Pipeline;
