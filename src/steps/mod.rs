//! Step kinds: the trait, the registry, and one module per kind.

pub mod context;
mod kind;
pub mod registry;

pub mod clean;
pub mod gather;
pub mod noop;
pub mod process;
pub mod publish;
pub mod segment;
pub mod shell;
pub mod sleep;
pub mod streaming;
pub mod validate;

pub use context::StepContext;
pub use kind::{CheckContext, Kind, StepError, StepKind, StepOutput, Typed};
pub use registry::Registry;
