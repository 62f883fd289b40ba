//! Hosted MCP servers: existing stdio MCP servers (`npx …`, `uvx …`, a
//! binary) run by airlock in the platform sandbox, spoken to as an MCP
//! client, their tools re-exported as `SERVER.TOOL` and every call governed
//! like a tool's: Cedar, approvals, egress through the host's proxy, the
//! journal.
//!
//! - `config`: the `[[servers]]` entries of `airlock.toml`.
//! - `process`: the sandbox plan, stdout's message cap, stderr to the log.
//! - `program`: the command at its own path, its links made visible.
//! - `progress`: each server progress notification to the call it is for.
//! - [`HostedServer`]: one server, loaded, started, called, stopped.

mod config;
mod egress;
mod error;
mod hosted;
mod process;
mod program;
mod progress;
mod tool;

pub(crate) use config::RawServer;
pub use config::{ServerConfig, Start, ToolOverride};
pub use error::ServerError;
pub use hosted::{Called, HostedServer, ServerStatus, State};
pub(crate) use progress::ProgressSink;
pub use tool::HostedTool;
