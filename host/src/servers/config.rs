//! A hosted MCP server's `[[servers]]` entry in `airlock.toml`, checked
//! into a [`ServerConfig`] with every mistake pointed at its line.
//!
//! ```toml
//! [[servers]]
//! name = "files"                  # its tools are served as files.TOOL
//! command = "npx"                 # a path (relative to this file) or a name on PATH
//! args = ["-y", "@modelcontextprotocol/server-filesystem", "./workspace"]
//! env = { NODE_ENV = "production" }   # its whole environment: nothing is inherited
//! fs_read = ["./node_modules"]    # visible at the same path, read-only
//! fs_write = ["./workspace"]      # read-write; the working directory
//! hide_airlock_files = false       # true: a grant may contain airlock's own files,
//!                                  # hidden in the sandbox
//! start = "eager"                 # or "lazy": at the first call
//! init_timeout = "30s"            # to answer `initialize`
//! pin = true                      # false: follow its program and tool
//!                                 # definitions unpinned (logged, journaled)
//! limits = { memory = "16GiB", cpu = "1h", timeout = "60s", output = "4MiB" }
//!
//! [servers.network]               # strict egress under this grant (same keys as
//! [[servers.network.allow]]       # a tool's); `network = "none"` or absent: none
//! host = "api.example.com"
//!
//! [[servers.credentials]]         # the proxy adds the vault secret; the
//! secret = "example"              # server never holds it (same keys as a
//! header = "authorization"        # tool's)
//! format = "Bearer {secret}"
//! hosts = ["api.example.com"]
//!
//! [servers.tools.write_file]
//! sensitive = true                # needs an approval
//! [servers.tools.move_file]
//! enabled = false                 # not served at all
//! ```

use crate::bindings::RawCredential;
use crate::egress::{NetworkGrant, RawGrant};
use crate::grants::Grants;
use crate::native::{RawLimits, config_path, parse_limits};
use crate::toml_file::{ConfigError, TomlText, timeout};
use serde::Deserialize;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// How long a server has to answer `initialize` unless configured.
pub(crate) const DEFAULT_INIT_TIMEOUT: Duration = Duration::from_secs(30);

/// A server's limits unless configured: a long-lived process needs more
/// CPU time in total than one tool run, and JavaScript runtimes reserve
/// address space far beyond what they use (Node's `fetch` compiles its
/// HTTP parser to WebAssembly, whose memory V8 reserves about 10 GiB of
/// address space for: under 8 GiB it crashes). `timeout` and `output`
/// bound each call.
pub(crate) const DEFAULT_SERVER_LIMITS: airlock_sandbox::ProcessLimits =
    airlock_sandbox::ProcessLimits {
        cpu_seconds: 3600,
        address_space_bytes: 16 << 30,
        processes: 64,
        file_size_bytes: 64 << 20,
        open_files: 256,
        wall_clock: Duration::from_secs(60),
        output_bytes: 4 << 20,
    };

/// When a server process starts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Start {
    /// With `airlock serve`, so its tools are listed from the start.
    Eager,
    /// At the first call or listing that needs it.
    Lazy,
}

/// The operator's word on one of a server's tools.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ToolOverride {
    /// Needs an approval whatever the server says.
    pub sensitive: bool,
    /// Left out of airlock's tool list and refused.
    pub disabled: bool,
}

/// One `[[servers]]` entry, checked.
#[derive(Clone, Debug)]
pub struct ServerConfig {
    /// The server's name: its tools are `NAME.TOOL`.
    pub name: String,
    /// The program, as configured (a bare name is searched on `PATH` at load).
    pub command: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Its whole environment.
    pub env: Vec<(String, String)>,
    /// Directories visible read-only.
    pub fs_read: Vec<PathBuf>,
    /// Directories visible read-write (the first is the working directory).
    pub fs_write: Vec<PathBuf>,
    /// The network grant when its egress is strict; `None`: no network.
    pub network: Option<Grants>,
    /// Process limits; `wall_clock` and `output_bytes` bound each call.
    pub limits: airlock_sandbox::ProcessLimits,
    /// When it starts.
    pub start: Start,
    /// How long it has to answer `initialize`.
    pub init_timeout: Duration,
    /// Per-tool overrides, by the server's own tool name.
    pub tools: BTreeMap<String, ToolOverride>,
    /// A granted directory may contain airlock's own files, which the
    /// sandbox then hides; otherwise such a grant is refused at load.
    pub hide_airlock_files: bool,
    /// Whether its program and tool definitions are pinned at first sight
    /// (a later change waits for an operator); `pin = false` follows
    /// whatever the server lists.
    pub pin: bool,
}

impl ServerConfig {
    /// What its tools may do, from its grants: the network (a non-empty
    /// grant), reading files (any directory), writing them (`fs_write`).
    pub fn capabilities(&self) -> Vec<crate::vocabulary::Capability> {
        use crate::vocabulary::Capability;
        let mut capabilities = Vec::new();
        if self
            .network
            .as_ref()
            .is_some_and(|grants| !grants.network().is_empty())
        {
            capabilities.push(Capability::Network);
        }
        if !self.fs_read.is_empty() || !self.fs_write.is_empty() {
            capabilities.push(Capability::FilesystemRead);
        }
        if !self.fs_write.is_empty() {
            capabilities.push(Capability::FilesystemWrite);
        }
        if self
            .network
            .as_ref()
            .is_some_and(|grants| !grants.credentials().is_empty())
        {
            capabilities.push(Capability::Secrets);
        }
        capabilities
    }

    /// The override for tool `name` (none: defaults).
    pub fn tool(&self, name: &str) -> ToolOverride {
        self.tools.get(name).copied().unwrap_or_default()
    }
}

/// The entry as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServer {
    name: Spanned<String>,
    command: Spanned<String>,
    #[serde(default)]
    args: Vec<String>,
    #[serde(default)]
    env: BTreeMap<String, String>,
    #[serde(default)]
    fs_read: Vec<String>,
    #[serde(default)]
    fs_write: Vec<String>,
    network: Option<Spanned<RawNetwork>>,
    #[serde(default)]
    credentials: Vec<Spanned<RawCredential>>,
    start: Option<Spanned<String>>,
    init_timeout: Option<Spanned<String>>,
    limits: Option<RawLimits>,
    #[serde(default)]
    tools: BTreeMap<String, Spanned<RawToolOverride>>,
    #[serde(default)]
    hide_airlock_files: bool,
    pin: Option<bool>,
}

/// `network = "none"`, or a `[servers.network]` grant table (strict
/// egress under it). Read by hand: serde's untagged enums buffer the value
/// and lose the positions errors point at.
enum RawNetwork {
    Mode(String),
    Grant(Box<RawGrant>),
}

impl<'de> Deserialize<'de> for RawNetwork {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct Either;
        impl<'de> serde::de::Visitor<'de> for Either {
            type Value = RawNetwork;

            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("\"none\" or a [servers.network] table of rules")
            }

            fn visit_str<E: serde::de::Error>(self, mode: &str) -> Result<RawNetwork, E> {
                Ok(RawNetwork::Mode(mode.to_string()))
            }

            fn visit_map<A: serde::de::MapAccess<'de>>(
                self,
                map: A,
            ) -> Result<RawNetwork, A::Error> {
                RawGrant::deserialize(serde::de::value::MapAccessDeserializer::new(map))
                    .map(|grant| RawNetwork::Grant(Box::new(grant)))
            }
        }
        deserializer.deserialize_any(Either)
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawToolOverride {
    #[serde(default)]
    sensitive: bool,
    enabled: Option<bool>,
}

/// Whether `name` can prefix tool names (`NAME.TOOL`): letters, digits,
/// `_` and `-`, no dot (the dot separates it from the tool).
fn valid_server_name(name: &str) -> bool {
    (1..=64).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '_' | '-'))
}

impl RawServer {
    /// The name as written, and where the entry is.
    pub(crate) fn name(&self) -> &Spanned<String> {
        &self.name
    }

    /// Checks the entry; relative paths are taken from `base`.
    pub(crate) fn into_config(
        self,
        base: &Path,
        source: &TomlText<'_>,
    ) -> Result<ServerConfig, ConfigError> {
        let name = self.name.get_ref().trim().to_string();
        if !valid_server_name(&name) {
            return Err(source.error(
                self.name.span(),
                format!(
                    "server name `{name}` is not allowed: use 1-64 letters, digits, `_` or `-` (its tools are served as NAME.TOOL)"
                ),
            ));
        }
        let command = self.command.get_ref().trim();
        if command.is_empty() {
            return Err(source.error(
                self.command.span(),
                "`command` is empty: give the program that starts the server, e.g. `command = \"npx\"`",
            ));
        }
        let network = match self.network {
            None => None,
            Some(network) => {
                let span = network.span();
                match network.into_inner() {
                    RawNetwork::Mode(mode) if mode == "none" => None,
                    RawNetwork::Mode(other) => {
                        return Err(source.error(
                            span,
                            format!(
                                "network `{other}` is not a grant: write \"none\" (or leave it out) for no network, or the rules as a [servers.network] table with [[servers.network.allow]] entries for strict egress"
                            ),
                        ));
                    }
                    RawNetwork::Grant(grant) => Some(
                        Grants::none()
                            .named(name.clone())
                            .with_network(NetworkGrant::from_raw(*grant, source)?),
                    ),
                }
            }
        };
        let network = match (network, self.credentials.first()) {
            (None, Some(first)) => {
                return Err(source.error(
                    first.span(),
                    format!(
                        "server `{name}` has credentials but no network: the host injects them in its egress proxy, so give it a [servers.network] grant that allows their origins"
                    ),
                ));
            }
            (None, None) => None,
            (Some(mut grants), _) => {
                let span = self.credentials.first().map(Spanned::span);
                for credential in self.credentials {
                    let binding =
                        crate::bindings::bound(credential, &grants, "servers", &name, source)?;
                    grants = grants.with_credential(binding);
                }
                if let Some(span) = span {
                    crate::native::injectable(&grants, true)
                        .map_err(|message| source.error(span, message))?;
                }
                Some(grants)
            }
        };
        let start = match self
            .start
            .as_ref()
            .map(|s| (s.get_ref().as_str(), s.span()))
        {
            None | Some(("eager", _)) => Start::Eager,
            Some(("lazy", _)) => Start::Lazy,
            Some((other, span)) => {
                return Err(source.error(
                    span,
                    format!(
                        "start `{other}` does not exist: write \"eager\" (the default) or \"lazy\""
                    ),
                ));
            }
        };
        let limits = match self.limits {
            Some(raw) => parse_limits(raw, DEFAULT_SERVER_LIMITS, source)?,
            None => DEFAULT_SERVER_LIMITS,
        };
        let mut tools = BTreeMap::new();
        for (tool, raw) in self.tools {
            if !crate::vocabulary::valid_tool_name(&tool) {
                return Err(source.error(
                    raw.span(),
                    format!("`{tool}` is not a tool name a server can have"),
                ));
            }
            let raw = raw.into_inner();
            tools.insert(
                tool,
                ToolOverride {
                    sensitive: raw.sensitive,
                    disabled: raw.enabled == Some(false),
                },
            );
        }
        Ok(ServerConfig {
            command: config_path(base, command, true),
            args: self.args,
            env: self.env.into_iter().collect(),
            fs_read: self
                .fs_read
                .iter()
                .map(|p| config_path(base, p, false))
                .collect(),
            fs_write: self
                .fs_write
                .iter()
                .map(|p| config_path(base, p, false))
                .collect(),
            network,
            limits,
            start,
            init_timeout: timeout(
                self.init_timeout,
                DEFAULT_INIT_TIMEOUT,
                "init_timeout",
                source,
            )?,
            tools,
            hide_airlock_files: self.hide_airlock_files,
            pin: self.pin.unwrap_or(true),
            name,
        })
    }
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use std::path::Path;

    fn parse(text: &str) -> Result<Config, String> {
        Config::from_toml(text, "airlock.toml", Path::new("/srv")).map_err(|e| e.to_string())
    }

    #[test]
    fn a_server_entry_is_checked_whole() {
        let config = parse(
            r#"
[[servers]]
name = "files"
command = "npx"
args = ["-y", "server"]
env = { A = "1" }
fs_write = ["work"]
start = "lazy"
init_timeout = "5s"
limits = { memory = "2GiB" }
[servers.network]
[[servers.network.allow]]
host = "api.example.com"
[[servers.credentials]]
secret = "example"
header = "Authorization"
format = "Bearer {secret}"
hosts = ["api.example.com"]
[servers.tools.write_file]
sensitive = true
[servers.tools.move_file]
enabled = false
"#,
        )
        .expect("valid");
        let server = &config.servers()[0];
        assert_eq!(server.name, "files");
        assert_eq!(
            server.command,
            Path::new("npx"),
            "a bare name is searched on PATH"
        );
        assert_eq!(server.fs_write, [Path::new("/srv/work")]);
        assert_eq!(server.env, [("A".to_string(), "1".to_string())]);
        assert_eq!(server.start, super::Start::Lazy);
        assert_eq!(server.limits.address_space_bytes, 2 << 30);
        assert_eq!(
            server.limits.cpu_seconds, 3600,
            "server defaults fill the rest"
        );
        let grants = server.network.as_ref().expect("a grant");
        assert_eq!(grants.credentials()[0].secret(), "example");
        assert!(
            server
                .capabilities()
                .contains(&crate::vocabulary::Capability::Secrets)
        );
        assert!(server.tool("write_file").sensitive);
        assert!(server.tool("move_file").disabled);
        assert_eq!(server.tool("read_file"), super::ToolOverride::default());
        let none = parse("[[servers]]\nname = \"a\"\ncommand = \"x\"\nnetwork = \"none\"\n")
            .expect("valid");
        assert!(none.servers()[0].network.is_none());
    }

    #[test]
    fn mistakes_point_at_their_line() {
        for (text, line, says) in [
            (
                "[[servers]]\nname = \"a.b\"\ncommand = \"x\"\n",
                2,
                "not allowed",
            ),
            (
                "[[servers]]\nname = \"a\"\ncommand = \"\"\n",
                3,
                "`command` is empty",
            ),
            (
                "[[servers]]\nname = \"a\"\ncommand = \"x\"\nnetwork = \"strict\"\n",
                4,
                "not a grant",
            ),
            (
                "[[servers]]\nname = \"a\"\ncommand = \"x\"\n[servers.network]\n[[servers.network.allow]]\nhost = \"a.example\"\nschemes = [\"ftp\"]\n",
                7,
                "ftp",
            ),
            (
                "[[servers]]\nname = \"a\"\ncommand = \"x\"\n[[servers.credentials]]\nsecret = \"k\"\nheader = \"authorization\"\nhosts = [\"a.example\"]\n",
                4,
                "has credentials but no network",
            ),
            (
                "[[servers]]\nname = \"a\"\ncommand = \"x\"\n[servers.network]\n[[servers.network.allow]]\nhost = \"a.example\"\n[[servers.credentials]]\nsecret = \"k\"\nheader = \"authorization\"\nhosts = [\"b.example\"]\n",
                10,
                "which server `a`'s network grant does not allow",
            ),
            (
                "[[servers]]\nname = \"a\"\ncommand = \"x\"\n[servers.network]\n[[servers.network.allow]]\nhost = \"a.example\"\nintercept = false\n[[servers.credentials]]\nsecret = \"k\"\nheader = \"authorization\"\nhosts = [\"a.example\"]\n",
                8,
                "intercept = false",
            ),
            (
                "[[servers]]\nname = \"a\"\ncommand = \"x\"\nstart = \"later\"\n",
                4,
                "eager",
            ),
            (
                "[[servers]]\nname = \"a\"\ncommand = \"x\"\nshell = true\n",
                4,
                "shell",
            ),
            (
                "[[servers]]\nname = \"a\"\ncommand = \"x\"\n[[servers]]\nname = \"a\"\ncommand = \"y\"\n",
                4,
                "twice",
            ),
        ] {
            let error = parse(text).expect_err(text);
            assert!(
                error.contains(&format!("airlock.toml:{line}:")),
                "{text}: {error}"
            );
            assert!(error.contains(says), "{text}: {error}");
        }
    }
}
