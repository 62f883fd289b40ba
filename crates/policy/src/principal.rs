//! Who asks: the principal of a request, and the context it arrives in.

use std::fmt;
use std::str::FromStr;

/// The kind of a principal, as in the Cedar schema.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum PrincipalKind {
    /// A person.
    User,
    /// An AI agent acting on someone's behalf.
    Agent,
    /// A device (e.g. a phone paired with the host).
    Device,
    /// A channel (e.g. a chat room the request came through).
    Channel,
    /// An operator of `airlock serve`, identified by the operator socket's
    /// peer credentials; decides approvals. Never the principal of a tool
    /// call, so it does not parse from a `--principal` or config text.
    Operator,
}

impl PrincipalKind {
    /// The Cedar entity type name, without namespace.
    pub fn as_str(self) -> &'static str {
        match self {
            PrincipalKind::User => "User",
            PrincipalKind::Agent => "Agent",
            PrincipalKind::Device => "Device",
            PrincipalKind::Channel => "Channel",
            PrincipalKind::Operator => "Operator",
        }
    }
}

/// The principal of a request: `User::"alice"`, `Agent::"claude"`, ...
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Principal {
    kind: PrincipalKind,
    id: String,
}

impl Principal {
    /// A principal of `kind` with `id`.
    pub fn new(kind: PrincipalKind, id: impl Into<String>) -> Self {
        Self {
            kind,
            id: id.into(),
        }
    }

    /// `User::"id"`.
    pub fn user(id: impl Into<String>) -> Self {
        Self::new(PrincipalKind::User, id)
    }

    /// `Agent::"id"`.
    pub fn agent(id: impl Into<String>) -> Self {
        Self::new(PrincipalKind::Agent, id)
    }

    /// `Operator::"id"`.
    pub fn operator(id: impl Into<String>) -> Self {
        Self::new(PrincipalKind::Operator, id)
    }

    /// The kind.
    pub fn kind(&self) -> PrincipalKind {
        self.kind
    }

    /// The id.
    pub fn id(&self) -> &str {
        &self.id
    }
}

impl fmt::Display for Principal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}::{:?}", self.kind.as_str(), self.id)
    }
}

/// A principal written as `Kind::"id"` (optionally `Airlock::Kind::"id"`)
/// could not be parsed.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "`{0}` is not a principal: write `User::\"alice\"`, `Agent::\"claude\"`, \
     `Device::\"phone\"` or `Channel::\"ops\"`"
)]
pub struct PrincipalParseError(pub String);

impl FromStr for Principal {
    type Err = PrincipalParseError;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || PrincipalParseError(text.to_string());
        let rest = text.trim().strip_prefix("Airlock::").unwrap_or(text.trim());
        let (kind, id) = rest.split_once("::").ok_or_else(bad)?;
        let kind = match kind {
            "User" => PrincipalKind::User,
            "Agent" => PrincipalKind::Agent,
            "Device" => PrincipalKind::Device,
            "Channel" => PrincipalKind::Channel,
            _ => return Err(bad()),
        };
        let id = id
            .strip_prefix('"')
            .and_then(|s| s.strip_suffix('"'))
            .filter(|s| !s.is_empty() && !s.contains('"'))
            .ok_or_else(bad)?;
        Ok(Self::new(kind, id))
    }
}

/// How a request reached airlock: Cedar's `context.channel`. airlock's own
/// ways in are variants; a name a caller gives (`airlock run --channel`, an
/// embedder) is [`Channel::Named`] unless it spells one of them.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub enum Channel {
    /// None given (`""`).
    #[default]
    Unnamed,
    /// An MCP client over stdio (`mcp-stdio`).
    McpStdio,
    /// An MCP client over streamable HTTP (`mcp-http`).
    McpHttp,
    /// A hosted MCP server's own requests, between calls (`mcp-server`).
    McpServer,
    /// An operator on the operator socket deciding an approval
    /// (`operator-socket`).
    OperatorSocket,
    /// The human at the MCP client deciding an approval (`mcp-client`).
    McpClient,
    /// A browser paired with the console deciding an approval (`console`).
    Console,
    /// A name the caller gave.
    Named(String),
}

impl Channel {
    /// `name` as a channel: one of airlock's own when it spells one.
    pub fn named(name: impl Into<String>) -> Self {
        let name = name.into();
        match name.as_str() {
            "" => Channel::Unnamed,
            "mcp-stdio" => Channel::McpStdio,
            "mcp-http" => Channel::McpHttp,
            "mcp-server" => Channel::McpServer,
            "operator-socket" => Channel::OperatorSocket,
            "mcp-client" => Channel::McpClient,
            "console" => Channel::Console,
            _ => Channel::Named(name),
        }
    }

    /// The string policies compare `context.channel` with.
    pub fn as_str(&self) -> &str {
        match self {
            Channel::Unnamed => "",
            Channel::McpStdio => "mcp-stdio",
            Channel::McpHttp => "mcp-http",
            Channel::McpServer => "mcp-server",
            Channel::OperatorSocket => "operator-socket",
            Channel::McpClient => "mcp-client",
            Channel::Console => "console",
            Channel::Named(name) => name,
        }
    }
}

impl fmt::Display for Channel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Where a request comes from, beyond the principal: given to policies as
/// `context`.
#[derive(Clone, Debug, Default, PartialEq, Eq, Hash)]
pub struct RequestContext {
    /// The agent run the request belongs to.
    pub run_id: String,
    /// The conversation or session; session-scoped approvals key on it.
    pub session_id: String,
    /// The device the request came from, if any.
    pub device_id: String,
    /// The channel the request came through.
    pub channel: Channel,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn principals_round_trip() {
        for text in [
            "User::\"alice\"",
            "Agent::\"claude code\"",
            "Airlock::Device::\"phone-1\"",
        ] {
            let principal: Principal = text.parse().expect("valid");
            assert_eq!(principal.to_string(), text.trim_start_matches("Airlock::"));
        }
        for bad in [
            "alice",
            "Robot::\"x\"",
            "User::alice",
            "User::\"\"",
            "User::\"a\"b\"",
        ] {
            assert!(bad.parse::<Principal>().is_err(), "{bad}");
        }
    }
}
