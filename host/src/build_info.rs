//! What this build of airlock is made of and speaks, for `airlock version`
//! and bug reports.

use crate::runtime::world::{TOOL_EXPORT, TOOL_VERSION_MINOR, WASI_MAX_PATCH};

/// airlock's own version.
pub const AIRLOCK: &str = env!("CARGO_PKG_VERSION");
/// The wasmtime it runs components on.
pub const WASMTIME: &str = env!("AIRLOCK_WASMTIME_VERSION");
/// The Cedar it authorizes with.
pub const CEDAR: &str = env!("AIRLOCK_CEDAR_VERSION");
/// The MCP SDK `airlock serve` speaks through.
pub const RMCP: &str = env!("AIRLOCK_RMCP_VERSION");

/// The interface a tool exports, e.g. `airlock:tool/tool@0.1.x`.
pub fn tool_interface() -> String {
    format!("{TOOL_EXPORT}@0.{TOOL_VERSION_MINOR}.x")
}

/// The WASI 0.2 releases a tool may import, e.g. `0.2.0 to 0.2.12`.
pub fn wasi() -> String {
    format!("0.2.0 to 0.2.{WASI_MAX_PATCH}")
}
