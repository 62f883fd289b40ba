//! The words attestations, approvals and output share beyond the policy
//! vocabulary ([`World`], [`Capability`], from `airlock-policy`): what ran a
//! tool ([`ExecutorKind`]) and how it was confined ([`Enforcement`]). Each is an
//! enum here and a stable string everywhere else.

pub use airlock_policy::{Capability, World};

/// Whether `name` is a plain name: 1 to 64 ASCII letters, digits, `-`,
/// `_` or `.`. Agents, secrets and replicas are named so: safe in a file
/// name, a URL, a log line and a Cedar entity id alike.
pub fn is_plain_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'))
}

/// MCP's tool-name rule: 1 to 128 of `[A-Za-z0-9_.-]`.
pub fn valid_tool_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-' | '.'))
}

/// What ran a tool, as attestations name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ExecutorKind {
    /// A WASI component in wasmtime.
    WasmComponent,
    /// A native program under a platform sandbox backend.
    Native(airlock_sandbox::BackendKind),
    /// A native program without a sandbox (`tier = "none"`).
    NativeUnsandboxed,
    /// An MCP server airlock hosts in the platform sandbox.
    McpServer,
}

impl ExecutorKind {
    /// Stable name used in attestations.
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutorKind::WasmComponent => "wasm_component",
            ExecutorKind::Native(kind) => kind.executor(),
            ExecutorKind::NativeUnsandboxed => "native_unsandboxed",
            ExecutorKind::McpServer => "mcp_server",
        }
    }
}

/// How a tool was confined, as attestations name it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Enforcement {
    /// The wasmtime sandbox: only the imports its world links.
    WasmSandbox,
    /// A native sandbox whose network is the host's egress proxy.
    Strict,
    /// A native sandbox without a network.
    NetworkNone,
    /// Resource limits only: the backend confines neither files nor network
    /// (a Windows Job Object).
    LimitsOnly,
    /// Nothing (`tier = "none"`).
    None,
}

impl Enforcement {
    /// Stable name used in attestations.
    pub fn as_str(self) -> &'static str {
        match self {
            Enforcement::WasmSandbox => "wasm_sandbox",
            Enforcement::Strict => "strict",
            Enforcement::NetworkNone => "network_none",
            Enforcement::LimitsOnly => "limits_only",
            Enforcement::None => "none",
        }
    }
}
