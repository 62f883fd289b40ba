//! The component runtime: static inspection and world classification, the
//! serving engine, the compile cache, linking with empty grants, and running
//! one invocation under limits.

mod bindings;
pub(crate) mod cache;
pub(crate) mod engine;
mod inspect;
pub(crate) mod linker;
pub(crate) mod run;
pub(crate) mod state;
mod stdio;
pub(crate) mod world;

pub(crate) use bindings::{ToolPre, WitError};
pub use cache::CacheError;
pub use inspect::{ComponentInfo, InspectError, Sha256Digest, inspect};
pub use stdio::Captured;
pub use world::{ClassifyError, Import, ImportRole, RefusedImport};
