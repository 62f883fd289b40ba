//! airlock runs AI-agent tools as WASI 0.2 components behind a host that
//! grants nothing by default.
//!
//! A tool is a component exporting `airlock:tool/tool` (see `wit/tool.wit`).
//! [`Host::load`] inspects it, derives its capability [`World`] from what it
//! imports, refuses imports the host does not provide, compiles it (through an
//! integrity-checked on-disk cache) and pre-links it against WASI with empty
//! grants. [`Host::invoke`] then runs it in a fresh instance under [`Limits`]:
//! a wall-clock deadline, optional fuel, memory and table caps, input and
//! output caps. Every way an invocation can end has a stable reason code.
//!
//! # Example
//!
//! ```no_run
//! use airlock::{Grants, Host, Invocation, Outcome};
//!
//! # async fn demo() -> Result<(), Box<dyn std::error::Error>> {
//! let host = Host::builder().cache_dir(".airlock/cache").build()?;
//! let tool = host.load(std::path::Path::new("echo.wasm"), Grants::none()).await?;
//! assert_eq!(tool.world(), airlock::World::Pure);
//!
//! match host.invoke(&tool, Invocation::new(r#"{"hello": "world"}"#)).await? {
//!     Outcome::Completed { output, report } => {
//!         println!("{output} in {:?}", report.duration);
//!     }
//!     other => eprintln!("{}: {}", other.code(), other.message().unwrap_or_default()),
//! }
//! # Ok(()) }
//! ```
//!
//! # What airlock does not protect against
//!
//! Side channels between tools on one machine (timing, cache), denial of
//! service beyond the per-invocation limits (a flood of invocations is the
//! embedder's to rate-limit), and whatever a tool legitimately does with what
//! it was granted.

#![deny(missing_docs)]
// `pub` means part of the crate's API; anything else says `pub(crate)`.
#![warn(unreachable_pub)]

// The README's Rust snippets are compiled with the doc tests, so that what
// it teaches embedders keeps compiling.
#[cfg(doctest)]
#[doc = include_str!("../../README.md")]
struct ReadmeSnippets;

pub mod approvals;
mod bindings;
/// Attestations and their offline proofs (the `airlock-journal` crate's).
pub use airlock_journal::attest;
/// Authorization with Cedar (the `airlock-policy` crate).
pub use airlock_policy as policy;
pub mod build_info;
pub mod config;
/// Egress: the network door (the `airlock-egress` crate).
pub use airlock_egress as egress;
/// Components from OCI registries (the `airlock-oci` crate).
pub use airlock_oci as oci;
mod gate;
mod grants;
mod host;
mod input;
mod invocation;
pub mod journal;
mod kernel;
mod limits;
pub mod native;
mod outcome;
pub mod protected;
mod runtime;
pub mod servers;
pub mod store;
pub mod telemetry;
use airlock_toml as toml_file;
mod trail;
pub mod vault;
mod vocabulary;

/// What this machine's native sandbox can do (a replica's statement).
pub use airlock_sandbox::SandboxFacts;
pub use config::{Config, ToolConfig};
pub use egress::{EgressRecord, NetworkGrant};
pub use grants::{DirAccess, DirGrant, GrantError, Grants};
pub use host::{ANY_OBJECT_SCHEMA, ConfiguredError, ConfiguredTool, ToolSource};
pub use host::{BuildError, Host, HostBuilder, RegistryError};
pub use input::check as check_input;
pub use invocation::{DEFAULT_PRINCIPAL, Invocation, Wait};
pub use limits::{
    DEFAULT_MAX_INPUT_BYTES, DEFAULT_MAX_MEMORY_BYTES, DEFAULT_MAX_OUTPUT_BYTES,
    DEFAULT_MAX_STDIO_BYTES, DEFAULT_MAX_TABLE_ELEMENTS, DEFAULT_TIMEOUT, Limits,
};
pub use outcome::{
    Captured, DenialReason, GuestFault, InvokeError, LimitExceeded, Outcome, PendingApproval,
    PolicyDenial, RunReport, ToolError, ToolErrorKind, exit_code,
};
pub use runtime::engine::{EPOCH_TICK, MAX_WASM_STACK};
pub use runtime::{
    CacheError, ClassifyError, CompileEvent, ComponentInfo, Descriptor, Import, ImportRole,
    InspectError, LoadError, MAX_COMPONENT_BYTES, Provenance, RefusedImport, Sha256Digest, Source,
    Tool, inspect, read_component,
};
/// Cancels an invocation ([`Invocation::cancel_on`]).
pub use tokio_util::sync::CancellationToken;
pub use toml_file::ConfigError;
pub use vocabulary::{
    Capability, Enforcement, ExecutorKind, World, is_plain_name, valid_tool_name,
};
