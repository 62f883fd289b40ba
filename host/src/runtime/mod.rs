//! The component executor: static inspection and world classification, the
//! serving engine, the compile cache, linking with empty grants, loading a
//! component as a [`Tool`], and running one invocation under limits.

mod bindings;
pub(crate) mod cache;
pub(crate) mod engine;
mod executor;
mod inspect;
pub(crate) mod linker;
mod load;
pub(crate) mod run;
pub(crate) mod state;
mod stdio;
mod tool;
pub(crate) mod world;

pub(crate) use bindings::ToolPre;
pub use cache::CacheError;
pub use inspect::{ComponentInfo, InspectError, Sha256Digest, inspect};
pub use load::CompileEvent;
pub(crate) use load::{CompileCallback, Components};
pub use tool::{
    Descriptor, LoadError, MAX_COMPONENT_BYTES, Provenance, Source, Tool, read_component,
};
pub use world::{ClassifyError, Import, ImportRole, RefusedImport};
