//! The `[serve]` table of `airlock.toml`: how `airlock serve` listens, who
//! its stdio client is, who its operators are, and how much runs at once.
//!
//! ```toml
//! [serve]
//! principal = 'Agent::"desktop"'        # the stdio client's principal
//! listen = "127.0.0.1:7323"             # streamable HTTP (loopback by default)
//! allowed_origins = ["http://localhost:6274"]   # browsers that may call
//! approval_wait = "2m"                  # how long a sensitive call waits
//! max_concurrent = 16                   # invocations at once, all tools (sizes the instance pool)
//! max_concurrent_per_tool = 4
//! queue_wait = "30s"                    # then `host_busy`
//! shutdown_grace = "10s"                # running calls may finish
//! max_approval_window = "30d"           # the longest `--allow until=` operators may grant
//! approvals = "operator"                # or "client": also ask the human at the MCP client
//! operator_socket = "/run/airlock/operator.sock"   # default: in the state dir
//! max_sessions_per_agent = 64           # open MCP sessions of one agent
//! max_sessions = 1024                   # open MCP sessions, all agents
//! session_idle = "5m"                   # a session unused this long ends
//!
//! [[serve.operators]]                   # default: the user running the server
//! name = "alice"
//! user = "alice"                        # or `uid = 1000`, or `group = "ops"`
//! ```

use crate::policy::Principal;
use crate::toml_file::{ConfigError, TomlText, positive_count, timeout};
use serde::Deserialize;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;
use toml::Spanned;

/// The default streamable-HTTP address: loopback only.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:7323";
/// How long a sensitive call waits for an operator before it returns the
/// pending approval's id.
pub const DEFAULT_APPROVAL_WAIT: Duration = Duration::from_secs(120);
/// Invocations running at once across all tools: two cores run a handful of
/// CPU-bound tools well; more mostly queue in the kernel.
pub const DEFAULT_MAX_CONCURRENT: usize = 16;
/// Invocations of one tool at once, so one busy tool cannot take every slot.
pub const DEFAULT_MAX_CONCURRENT_PER_TOOL: usize = 4;
/// How long a call waits for a free slot before `host_busy`.
pub const DEFAULT_QUEUE_WAIT: Duration = Duration::from_secs(30);
/// How long running calls may finish after SIGINT/SIGTERM.
pub const DEFAULT_SHUTDOWN_GRACE: Duration = Duration::from_secs(10);
/// The stdio client's principal when the config names none.
pub const DEFAULT_STDIO_PRINCIPAL: &str = "stdio";
/// Open streamable-HTTP sessions one agent may hold. A client keeps one
/// session per connection to the server, so an agent identity rarely
/// needs more than a few. An open session costs about 43 KiB in a release
/// build (the security review's 15,000 sessions took about 650 MB) and
/// about 140 KiB in a debug build (measured by the serve tests' flood), so
/// one agent opening sessions in a loop stops at about 3 MiB (9 MiB in a
/// debug build).
pub const DEFAULT_MAX_SESSIONS_PER_AGENT: usize = 64;
/// Open streamable-HTTP sessions across all agents: with the costs above,
/// at most about 44 MiB (140 MiB in a debug build) however many agents
/// misbehave at once.
pub const DEFAULT_MAX_SESSIONS: usize = 1024;
/// How long a streamable-HTTP session may go unused before it ends (and
/// with it its "allow for this session" approvals): rmcp's own default,
/// long enough for a person to read a tool's answer and think.
pub const DEFAULT_SESSION_IDLE: Duration = Duration::from_secs(300);

/// Who may decide a call's pending approval besides the operators.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ApprovalDeciders {
    /// Only operators, over the operator socket.
    #[default]
    Operator,
    /// Operators, and the human at the MCP client that made the call,
    /// asked through MCP elicitation (which the model cannot answer).
    Client,
}

/// Who may use the operator socket, matched on the connecting process's
/// peer credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum OperatorMatch {
    /// A user id.
    Uid(u32),
    /// Members of a group (primary or supplementary).
    Group {
        /// The group id.
        gid: u32,
        /// Its member user names, for supplementary membership.
        members: Vec<String>,
    },
}

/// One operator: the name decisions are recorded under, and who they are.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Operator {
    /// The name (`Operator::"alice"` to Cedar, `alice` in the journal).
    pub name: String,
    /// Which peers are this operator.
    pub matches: OperatorMatch,
}

/// The checked `[serve]` table.
#[derive(Clone, Debug)]
pub struct ServeSettings {
    /// The principal of the stdio client.
    pub stdio_principal: Principal,
    /// The streamable-HTTP address.
    pub listen: SocketAddr,
    /// Browser origins allowed to call (an `Origin` outside them is 403).
    pub allowed_origins: Vec<String>,
    /// How long a sensitive call waits for a decision.
    pub approval_wait: Duration,
    /// Invocations at once, all tools; also sizes the instance pool
    /// ([`ServeSettings::instance_slots`]).
    pub max_concurrent: usize,
    /// Invocations at once, per tool.
    pub max_concurrent_per_tool: usize,
    /// How long a call waits for a slot.
    pub queue_wait: Duration,
    /// How long running calls may finish at shutdown.
    pub shutdown_grace: Duration,
    /// The operator socket, if not the state directory's.
    pub operator_socket: Option<PathBuf>,
    /// The operators; empty means the user running the server.
    pub operators: Vec<Operator>,
    /// The longest `until` window an operator may grant.
    pub max_approval_window: Duration,
    /// Who besides the operators may decide approvals.
    pub approvals: ApprovalDeciders,
    /// Open MCP sessions one agent may hold.
    pub max_sessions_per_agent: usize,
    /// Open MCP sessions across all agents.
    pub max_sessions: usize,
    /// How long an unused MCP session lives.
    pub session_idle: Duration,
}

impl ServeSettings {
    /// The instance pool's slots the server reserves at start: one per
    /// concurrent invocation, and one per tool being loaded at once (a
    /// reload's `describe()` calls run beside the running calls). Each slot
    /// reserves address space (a 4 GiB memory with its guard, its tables,
    /// its stack); resident memory is only what running instances touch,
    /// plus up to 64 KiB per table and stack kept for reuse.
    pub fn instance_slots(&self) -> u32 {
        let loading = std::thread::available_parallelism().map_or(2, usize::from);
        u32::try_from(self.max_concurrent.saturating_add(loading)).unwrap_or(u32::MAX)
    }
}

impl Default for ServeSettings {
    fn default() -> Self {
        Self {
            stdio_principal: Principal::agent(DEFAULT_STDIO_PRINCIPAL),
            listen: DEFAULT_LISTEN
                .parse()
                .unwrap_or_else(|_| SocketAddr::from((std::net::Ipv4Addr::LOCALHOST, 7323))),
            allowed_origins: Vec::new(),
            approval_wait: DEFAULT_APPROVAL_WAIT,
            max_concurrent: DEFAULT_MAX_CONCURRENT,
            max_concurrent_per_tool: DEFAULT_MAX_CONCURRENT_PER_TOOL,
            queue_wait: DEFAULT_QUEUE_WAIT,
            shutdown_grace: DEFAULT_SHUTDOWN_GRACE,
            operator_socket: None,
            operators: Vec::new(),
            max_approval_window: crate::approvals::DEFAULT_MAX_APPROVAL_WINDOW,
            approvals: ApprovalDeciders::Operator,
            max_sessions_per_agent: DEFAULT_MAX_SESSIONS_PER_AGENT,
            max_sessions: DEFAULT_MAX_SESSIONS,
            session_idle: DEFAULT_SESSION_IDLE,
        }
    }
}

/// The table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawServe {
    principal: Option<Spanned<String>>,
    listen: Option<Spanned<String>>,
    #[serde(default)]
    allowed_origins: Vec<String>,
    approval_wait: Option<Spanned<String>>,
    max_concurrent: Option<Spanned<usize>>,
    max_concurrent_per_tool: Option<Spanned<usize>>,
    queue_wait: Option<Spanned<String>>,
    shutdown_grace: Option<Spanned<String>>,
    operator_socket: Option<String>,
    #[serde(default)]
    operators: Vec<Spanned<RawOperator>>,
    max_approval_window: Option<Spanned<String>>,
    approvals: Option<Spanned<String>>,
    max_sessions_per_agent: Option<Spanned<usize>>,
    max_sessions: Option<Spanned<usize>>,
    session_idle: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawOperator {
    name: String,
    uid: Option<u32>,
    user: Option<String>,
    group: Option<String>,
}

fn positive(
    value: Option<Spanned<usize>>,
    default: usize,
    key: &str,
    source: &TomlText<'_>,
) -> Result<usize, ConfigError> {
    positive_count(value, default, key, "would refuse every call", source)
}

/// What a session cap of zero would do.
const NO_SESSIONS: &str = "would refuse every MCP session over HTTP";

impl RawServe {
    /// Checks the table; relative paths are taken from `base`.
    pub(crate) fn into_settings(
        self,
        base: &Path,
        source: &TomlText<'_>,
    ) -> Result<ServeSettings, ConfigError> {
        let defaults = ServeSettings::default();
        let stdio_principal = match self.principal {
            None => defaults.stdio_principal,
            Some(text) => {
                let principal: Principal = text.get_ref().parse().map_err(|_| {
                    source.error(
                        text.span(),
                        "`principal` must look like 'Agent::\"name\"' (User, Agent, Device or Channel)",
                    )
                })?;
                principal
            }
        };
        let listen = match self.listen {
            None => defaults.listen,
            Some(text) => text.get_ref().parse().map_err(|_| {
                source.error(
                    text.span(),
                    format!(
                        "`listen` must be an IP address and port, e.g. \"{DEFAULT_LISTEN}\" or \"[::1]:7323\""
                    ),
                )
            })?,
        };
        let approvals = match self.approvals {
            None => ApprovalDeciders::default(),
            Some(text) => match text.get_ref().as_str() {
                "operator" => ApprovalDeciders::Operator,
                "client" => ApprovalDeciders::Client,
                other => {
                    return Err(source.error(
                        text.span(),
                        format!(
                            "`approvals = \"{other}\"`: write \"operator\" (the default) or \"client\""
                        ),
                    ));
                }
            },
        };
        let mut operators = Vec::with_capacity(self.operators.len());
        for raw in self.operators {
            let span = raw.span();
            operators.push(operator(raw.into_inner()).map_err(|m| source.error(span, m))?);
        }
        Ok(ServeSettings {
            stdio_principal,
            listen,
            allowed_origins: self.allowed_origins,
            approval_wait: timeout(
                self.approval_wait,
                DEFAULT_APPROVAL_WAIT,
                "approval_wait",
                source,
            )?,
            max_concurrent: positive(
                self.max_concurrent,
                DEFAULT_MAX_CONCURRENT,
                "max_concurrent",
                source,
            )?,
            max_concurrent_per_tool: positive(
                self.max_concurrent_per_tool,
                DEFAULT_MAX_CONCURRENT_PER_TOOL,
                "max_concurrent_per_tool",
                source,
            )?,
            queue_wait: timeout(self.queue_wait, DEFAULT_QUEUE_WAIT, "queue_wait", source)?,
            shutdown_grace: timeout(
                self.shutdown_grace,
                DEFAULT_SHUTDOWN_GRACE,
                "shutdown_grace",
                source,
            )?,
            operator_socket: self.operator_socket.map(|p| base.join(p)),
            operators,
            max_approval_window: timeout(
                self.max_approval_window,
                crate::approvals::DEFAULT_MAX_APPROVAL_WINDOW,
                "max_approval_window",
                source,
            )?,
            approvals,
            max_sessions_per_agent: positive_count(
                self.max_sessions_per_agent,
                DEFAULT_MAX_SESSIONS_PER_AGENT,
                "max_sessions_per_agent",
                NO_SESSIONS,
                source,
            )?,
            max_sessions: positive_count(
                self.max_sessions,
                DEFAULT_MAX_SESSIONS,
                "max_sessions",
                NO_SESSIONS,
                source,
            )?,
            session_idle: timeout(
                self.session_idle,
                DEFAULT_SESSION_IDLE,
                "session_idle",
                source,
            )?,
        })
    }
}

/// One operator entry: exactly one of `uid`, `user`, `group`; names are
/// looked up now, so a typo fails the load rather than locking everyone out.
fn operator(raw: RawOperator) -> Result<Operator, String> {
    let name = raw.name.trim().to_string();
    if name.is_empty() {
        return Err("an operator needs a `name`, e.g. `name = \"alice\"`".into());
    }
    let matches = match (raw.uid, raw.user, raw.group) {
        (Some(uid), None, None) => OperatorMatch::Uid(uid),
        (None, Some(user), None) => OperatorMatch::Uid(
            peer::uid_of_user(&user)
                .ok_or_else(|| format!("operator `{name}`: no user `{user}` on this machine"))?,
        ),
        (None, None, Some(group)) => {
            let (gid, members) = peer::group(&group)
                .ok_or_else(|| format!("operator `{name}`: no group `{group}` on this machine"))?;
            OperatorMatch::Group { gid, members }
        }
        _ => {
            return Err(format!(
                "operator `{name}` needs exactly one of `uid`, `user` or `group`"
            ));
        }
    };
    Ok(Operator { name, matches })
}

/// User and group look-ups.
pub(crate) mod peer {
    /// The uid of user `name`.
    #[cfg(unix)]
    pub(crate) fn uid_of_user(name: &str) -> Option<u32> {
        nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .map(|u| u.uid.as_raw())
    }

    /// The gid and member names of group `name`.
    #[cfg(unix)]
    pub(crate) fn group(name: &str) -> Option<(u32, Vec<String>)> {
        nix::unistd::Group::from_name(name)
            .ok()
            .flatten()
            .map(|g| (g.gid.as_raw(), g.mem))
    }

    /// The name of user `uid`, if it has one.
    #[cfg(unix)]
    pub(crate) fn user_name(uid: u32) -> Option<String> {
        nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
            .ok()
            .flatten()
            .map(|u| u.name)
    }

    #[cfg(not(unix))]
    pub(crate) fn uid_of_user(_: &str) -> Option<u32> {
        None
    }

    #[cfg(not(unix))]
    pub(crate) fn group(_: &str) -> Option<(u32, Vec<String>)> {
        None
    }

    #[cfg(not(unix))]
    pub(crate) fn user_name(_: u32) -> Option<String> {
        None
    }
}

impl Operator {
    /// Whether a peer with `uid` and primary `gid` is this operator.
    pub(crate) fn admits(&self, uid: u32, gid: u32) -> bool {
        match &self.matches {
            OperatorMatch::Uid(want) => *want == uid,
            OperatorMatch::Group { gid: want, members } => {
                *want == gid || peer::user_name(uid).is_some_and(|name| members.contains(&name))
            }
        }
    }
}

impl ServeSettings {
    /// The operator a peer is, if any. With no operators configured, the
    /// user running the server is the one operator.
    pub fn operator_for(&self, uid: u32, gid: u32) -> Option<String> {
        if self.operators.is_empty() {
            let own = current_uid();
            return (uid == own)
                .then(|| peer::user_name(uid).unwrap_or_else(|| format!("uid{uid}")));
        }
        self.operators
            .iter()
            .find(|o| o.admits(uid, gid))
            .map(|o| o.name.clone())
    }
}

/// The uid this process runs as.
#[cfg(unix)]
pub fn current_uid() -> u32 {
    nix::unistd::getuid().as_raw()
}

/// The uid this process runs as (no uids off Unix).
#[cfg(not(unix))]
pub fn current_uid() -> u32 {
    0
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<ServeSettings, ConfigError> {
        let raw: RawServe = toml::from_str(text).expect("toml");
        raw.into_settings(
            Path::new("/etc/airlock"),
            &TomlText {
                text,
                origin: "airlock.toml",
            },
        )
    }

    #[test]
    fn defaults_listen_on_loopback_and_wait_two_minutes() {
        let settings = parse("").expect("valid");
        assert!(settings.listen.ip().is_loopback());
        assert_eq!(settings.listen.port(), 7323);
        assert_eq!(settings.approval_wait, Duration::from_secs(120));
        assert_eq!(settings.stdio_principal.to_string(), "Agent::\"stdio\"");
        assert_eq!(settings.approvals, ApprovalDeciders::Operator);
        let client = parse("approvals = \"client\"").expect("valid");
        assert_eq!(client.approvals, ApprovalDeciders::Client);
    }

    #[test]
    fn the_instance_pool_holds_every_call_and_the_loads_beside_them() {
        let loading = std::thread::available_parallelism().map_or(2, usize::from);
        for (text, calls) in [("", DEFAULT_MAX_CONCURRENT), ("max_concurrent = 100", 100)] {
            let settings = parse(text).expect("valid");
            assert_eq!(
                settings.instance_slots() as usize,
                calls + loading,
                "{text}"
            );
        }
    }

    #[test]
    fn session_caps_and_idle_have_defaults_and_can_be_set() {
        let defaults = parse("").expect("valid");
        assert_eq!(
            (
                defaults.max_sessions_per_agent,
                defaults.max_sessions,
                defaults.session_idle
            ),
            (
                DEFAULT_MAX_SESSIONS_PER_AGENT,
                DEFAULT_MAX_SESSIONS,
                DEFAULT_SESSION_IDLE
            )
        );
        let set = parse("max_sessions_per_agent = 2\nmax_sessions = 3\nsession_idle = \"90s\"")
            .expect("valid");
        assert_eq!((set.max_sessions_per_agent, set.max_sessions), (2, 3));
        assert_eq!(set.session_idle, Duration::from_secs(90));
    }

    #[test]
    fn operators_match_uids_and_groups() {
        let settings = parse(
            "[[operators]]\nname = \"root\"\nuid = 0\n[[operators]]\nname = \"admins\"\ngroup = \"root\"\n",
        )
        .expect("valid");
        assert_eq!(settings.operator_for(0, 0).as_deref(), Some("root"));
        assert_eq!(settings.operator_for(4242, 0).as_deref(), Some("admins"));
        assert_eq!(settings.operator_for(4242, 4242), None);
    }

    #[test]
    fn mistakes_are_pointed_at() {
        for (text, hint) in [
            ("listen = \"localhost\"", "IP address and port"),
            ("principal = \"claude\"", "Agent::"),
            ("max_concurrent = 0", "positive"),
            ("approvals = \"agent\"", "\"operator\""),
            ("[[operators]]\nname = \"x\"\n", "exactly one of"),
            (
                "[[operators]]\nname = \"x\"\nuser = \"no-such-user-here\"\n",
                "no user",
            ),
            ("approval_wait = \"soon\"", "positive duration"),
            ("approval_wait = \"400days\"", "longer than a year"),
            ("max_sessions = 0", "would refuse every MCP session"),
            (
                "max_sessions_per_agent = 0",
                "would refuse every MCP session",
            ),
            (
                "session_idle = \"0s\"",
                "`session_idle` must be a positive duration",
            ),
            (
                "session_idle = \"a while\"",
                "`session_idle` must be a positive duration",
            ),
        ] {
            let message = parse(text).expect_err(text).to_string();
            assert!(message.contains(hint), "{text}: {message}");
        }
    }
}
