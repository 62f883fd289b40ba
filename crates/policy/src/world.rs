//! The words policies are written in: what a tool is ([`World`]) and what
//! it may do ([`Capability`]). Each is an enum here and a stable string
//! everywhere else (Cedar attributes, the journal, JSON output), so a
//! misspelt capability cannot slip through.

use std::fmt;

/// A tool's world: a capability world from `wit/worlds.wit`, or `native`
/// for a program run under the platform sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum World {
    /// Compute only.
    Pure,
    /// Outgoing HTTP through the egress policy.
    Network,
    /// Preopened directories, as granted.
    Files,
    /// Both `network` and `files`.
    NetworkFiles,
    /// A native program (not a component).
    Native,
    /// A tool of an MCP server airlock hosts (`[[servers]]`): its
    /// capabilities come from the server's grants.
    McpServer,
}

impl World {
    /// The worlds a component can be built against (all but `native`).
    pub const COMPONENTS: [World; 4] = [
        World::Pure,
        World::Network,
        World::Files,
        World::NetworkFiles,
    ];

    /// The world's name as written in WIT, policies and `airlock inspect`.
    pub fn as_str(self) -> &'static str {
        match self {
            World::Pure => "pure",
            World::Network => "network",
            World::Files => "files",
            World::NetworkFiles => "network-files",
            World::Native => "native",
            World::McpServer => "mcp-server",
        }
    }

    /// The capabilities every tool of this world has (a native tool gains
    /// `network` and directory access from its configuration).
    pub fn capabilities(self) -> &'static [Capability] {
        const FS: [Capability; 2] = [Capability::FilesystemRead, Capability::FilesystemWrite];
        match self {
            World::Pure => &[],
            World::Network => &[Capability::Network],
            World::Files => &FS,
            World::NetworkFiles => &[
                Capability::Network,
                Capability::FilesystemRead,
                Capability::FilesystemWrite,
            ],
            World::Native => &[Capability::ProcessExec],
            World::McpServer => &[],
        }
    }

    /// Whether components in this world can use network grants.
    pub fn uses_network(self) -> bool {
        matches!(self, World::Network | World::NetworkFiles)
    }

    /// Whether components in this world can use directory grants.
    pub fn uses_filesystem(self) -> bool {
        matches!(self, World::Files | World::NetworkFiles)
    }

    /// This world as it runs with or without directory grants. Toolchains
    /// import `wasi:filesystem` by default (Python, C and Go runtimes all
    /// do); with no directory granted those imports reach nothing, so a
    /// tool is `files` only when an operator gives it directories.
    pub fn with_directories(self, granted: bool) -> World {
        match (self, granted) {
            (World::Files, false) => World::Pure,
            (World::NetworkFiles, false) => World::Network,
            (world, _) => world,
        }
    }

    /// The component world that needs exactly these imports.
    pub fn from_needs(network: bool, filesystem: bool) -> World {
        match (network, filesystem) {
            (false, false) => World::Pure,
            (true, false) => World::Network,
            (false, true) => World::Files,
            (true, true) => World::NetworkFiles,
        }
    }
}

impl serde::Serialize for World {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for World {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Something a tool can do beyond computing. A component's come from its
/// imports (the author cannot claim fewer); a native tool's from its
/// configuration; `secrets` from credential bindings.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Capability {
    /// Outgoing HTTP (`wasi:http/outgoing-handler`, or a native tool's
    /// strict network).
    Network,
    /// Reading granted directories.
    FilesystemRead,
    /// Writing granted directories: the import allows it, whether it works
    /// depends on the grant.
    FilesystemWrite,
    /// Requests carry credentials the host injects from the vault.
    Secrets,
    /// Runs a native program.
    ProcessExec,
}

impl Capability {
    /// Stable name used in output, policies and journals.
    pub fn as_str(self) -> &'static str {
        match self {
            Capability::Network => "network",
            Capability::FilesystemRead => "filesystem_read",
            Capability::FilesystemWrite => "filesystem_write",
            Capability::Secrets => "secrets",
            Capability::ProcessExec => "process_exec",
        }
    }

    /// Whether having it makes a tool sensitive: its runs need an approval
    /// under the default policies.
    pub fn is_sensitive(self) -> bool {
        !matches!(self, Capability::FilesystemRead)
    }
}

impl serde::Serialize for Capability {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

impl fmt::Display for Capability {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_reading_granted_directories_is_not_sensitive() {
        let sensitive: Vec<&str> = [
            Capability::Network,
            Capability::FilesystemRead,
            Capability::FilesystemWrite,
            Capability::Secrets,
            Capability::ProcessExec,
        ]
        .into_iter()
        .filter(|c| c.is_sensitive())
        .map(Capability::as_str)
        .collect();
        assert_eq!(
            sensitive,
            ["network", "filesystem_write", "secrets", "process_exec"]
        );
    }
}
