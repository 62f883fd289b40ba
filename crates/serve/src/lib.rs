//! `airlock serve`: the tools of one `airlock.toml`, loaded once and served
//! to agents over MCP, with the operator's authority held by the server.
//!
//! - `mcp`: the MCP handler (`tools/list`, `tools/call`), a thin
//!   translation onto [`Server::call`]; every decision happens in the one
//!   invoke path of [`Host`].
//! - [`http`]: streamable HTTP with bearer tokens ([`Agents`]) and an
//!   `Origin` check. Each session belongs to the agent that opened it
//!   (`sessions`).
//! - [`stdio`]: one client on stdin and stdout, as the principal the
//!   config names.
//! - [`operator`]: the operator socket (peer credentials) for approvals,
//!   agents, devices and reloads.
//! - [`console`]: the web console over HTTPS for paired devices
//!   ([`Devices`]): live approvals, the journal, tools.
//! - bounded concurrency per tool and in all; arguments checked against
//!   each tool's input schema before a call takes a slot.

#![deny(missing_docs)]
// `pub` means part of the crate's API; anything else says `pub(crate)`.
#![warn(unreachable_pub)]

mod agents;
mod arguments;
mod call;
mod catalog;
pub mod console;
mod decide;
pub mod definitions;
mod devices;
mod elicit;
pub mod fleet;
mod hosting;
pub mod http;
mod mcp;
pub mod operator;
mod peers;
mod replica;
mod session_manager;
mod sessions;
mod slots;
pub mod state_watch;
pub mod stdio;

pub use agents::{Agent, AgentError, AgentToken, Agents, BearerSecret, TOKEN_PREFIX};
pub use airlock::config::serve::{
    ApprovalDeciders, DEFAULT_APPROVAL_WAIT, DEFAULT_LISTEN, DEFAULT_MAX_CONCURRENT,
    DEFAULT_MAX_CONCURRENT_PER_TOOL, DEFAULT_MAX_SESSIONS, DEFAULT_MAX_SESSIONS_PER_AGENT,
    DEFAULT_QUEUE_WAIT, DEFAULT_SESSION_IDLE, DEFAULT_SHUTDOWN_GRACE, DEFAULT_STDIO_PRINCIPAL,
    Operator, OperatorMatch, ServeSettings, current_uid,
};
pub use airlock::valid_tool_name;
pub use arguments::Mismatch;
pub use call::{Answered, AskClient, Call, CallError, ClientAsk, Progress};
pub use decide::{DecideError, Decider};
pub use devices::{
    ATTEMPT_WINDOW, COOKIE_PREFIX, Device, DeviceCookie, DeviceError, Devices, MAX_WRONG_CODES,
    PAIRING_CODE_LIFETIME, PairingCode,
};
pub use elicit::SealError;

use airlock::ConfigError;
use airlock::Host;
use airlock::config::Config;
use airlock::journal::{EntryKind, Journal};
use airlock::policy::{PolicyEngine, PolicyError};
use airlock::store::{Store, StoreError};
use airlock::telemetry::Telemetry;
use airlock::{ConfiguredError, ConfiguredTool};
use catalog::{Catalog, load_catalog};
use serde_json::json;
use slots::Slots;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// How long a listener waits after a failed `accept` (e.g. no file
/// descriptors left) before trying again, instead of spinning.
const ACCEPT_BACKOFF: std::time::Duration = std::time::Duration::from_millis(50);

/// The next connection `accept` yields, or `None` once `shutdown` fires. A
/// failed accept is logged (`what` names the listener) and retried after
/// [`ACCEPT_BACKOFF`].
async fn accept_next<T, F>(
    shutdown: &CancellationToken,
    what: &str,
    mut accept: impl FnMut() -> F,
) -> Option<T>
where
    F: std::future::Future<Output = std::io::Result<T>>,
{
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return None,
            accepted = accept() => accepted,
        };
        match accepted {
            Ok(connection) => return Some(connection),
            Err(error) => {
                tracing::warn!(%error, "accepting {what} failed");
                tokio::time::sleep(ACCEPT_BACKOFF).await;
            }
        }
    }
}

/// The operator socket's file name in the state directory.
pub const OPERATOR_SOCKET: &str = "operator.sock";

/// Why the server could not start or reload.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServeError {
    /// `airlock.toml` is invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// `--locked`, and the lockfile does not pin every registry tool.
    #[error(transparent)]
    Lock(#[from] airlock::config::LockError),
    /// The reloaded configuration names files that decide what runs (keys,
    /// trusted roots) which were not protected when the server started.
    #[error("the configuration now names {} that no tool may rewrite but that the server did not protect when it started: restart the server to use {}", files.join(", "), if files.len() == 1 { "it" } else { "them" })]
    Unprotected {
        /// The files.
        files: Vec<String>,
    },
    /// The policies are invalid.
    #[error(transparent)]
    Policy(#[from] PolicyError),
    /// A tool did not load.
    #[error(transparent)]
    Tool(#[from] ConfiguredError),
    /// A tool's name is not a valid MCP tool name.
    #[error(
        "tool name `{name}` is not a valid MCP tool name: use 1-128 letters, digits, `_`, `-` or `.`"
    )]
    ToolName {
        /// The name.
        name: String,
    },
    /// A tool's input schema is not a JSON object schema.
    #[error("tool `{name}`'s input schema is not a JSON object schema: {message}")]
    Schema {
        /// The tool.
        name: String,
        /// What is wrong.
        message: String,
    },
    /// Two served tools have one name (a hosted server's `SERVER.TOOL`
    /// and another tool).
    #[error("two tools are named `{name}`: rename the tool, or the server whose tool it is")]
    Duplicate {
        /// The name.
        name: String,
    },
    /// A hosted server did not load.
    #[error(transparent)]
    Server(#[from] airlock::servers::ServerError),
    /// No hosted server of that name.
    #[error("no hosted server named `{name}`: `airlock servers list` shows them")]
    NoServer {
        /// The name asked for.
        name: String,
    },
    /// The server needs a state directory (journal, approvals, agents).
    #[error(
        "`airlock serve` needs a state directory: the journal, approvals and agents live there"
    )]
    NoState,
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// This replica's statement does not meet the `[fleet]` policy.
    #[error("replica `{replica}` may not serve under [fleet]: {reasons}")]
    Fleet {
        /// The replica.
        replica: String,
        /// Each failure, with its code.
        reasons: String,
    },
    /// A hosted server's definitions could not be held to their pins.
    #[error(transparent)]
    Definition(#[from] definitions::DefinitionError),
    /// The key that seals client-approval state could not be made.
    #[error(transparent)]
    Seal(#[from] elicit::SealError),
    /// A socket could not be bound or served.
    #[error("{what} {}: {source}", path.display())]
    Io {
        /// What was being done.
        what: &'static str,
        /// Where.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
}

impl ServeError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            ServeError::Config(e) => e.code(),
            ServeError::Lock(e) => e.code(),
            ServeError::Unprotected { .. } => "restart_required",
            ServeError::Policy(e) => e.code(),
            ServeError::Tool(e) => e.code(),
            ServeError::ToolName { .. } => "tool_name_invalid",
            ServeError::Duplicate { .. } => "tool_name_taken",
            ServeError::Server(e) => e.code(),
            ServeError::NoServer { .. } => "server_not_found",
            ServeError::Schema { .. } => "invalid_descriptor",
            ServeError::NoState => "state_dir_required",
            ServeError::Store(e) => e.code(),
            ServeError::Definition(e) => e.code(),
            ServeError::Fleet { .. } => "fleet_policy_unmet",
            ServeError::Seal(_) | ServeError::Io { .. } => "serve_failed",
        }
    }
}

/// Where the server reads its configuration and policies from, so that a
/// reload reads them again.
#[derive(Clone, Debug)]
pub struct Sources {
    /// `airlock.toml`.
    pub config: PathBuf,
    /// The policies directory; `None` for the shipped policies.
    pub policies: Option<PathBuf>,
    /// The state directory (journal, approvals, agents, operator socket).
    pub state_dir: PathBuf,
    /// `--locked`: every registry tool must be pinned by `airlock.lock`,
    /// at start and at every reload.
    pub locked: bool,
}

impl Sources {
    /// The configuration, held to the lockfile under `--locked`.
    fn read_config(&self) -> Result<Config, ServeError> {
        let config = Config::from_file(&self.config)?;
        if self.locked {
            config.check_locked()?;
        }
        Ok(config)
    }
}

/// One served tool.
pub(crate) struct Served {
    pub(crate) tool: ConfiguredTool,
    /// The input schema as JSON (checked to be an object schema).
    pub(crate) schema: serde_json::Value,
}

/// The running server: a [`Host`] and the tools it serves. Cheap to clone.
#[derive(Clone)]
pub struct Server {
    inner: Arc<Inner>,
}

/// A [`Server`] that does not keep it alive (for its own background tasks).
pub(crate) struct Weak(std::sync::Weak<Inner>);

impl Weak {
    fn upgrade(&self) -> Option<Server> {
        self.0.upgrade().map(|inner| Server { inner })
    }
}

struct Inner {
    host: Host,
    sources: Sources,
    catalog: RwLock<Arc<Catalog>>,
    slots: Slots,
    agents: Agents,
    devices: Devices,
    /// The console's URL, once it listens.
    console: RwLock<Option<String>>,
    /// Fired at shutdown after the grace period: cancels what still runs.
    stop: CancellationToken,
    /// Told when the tool list changed (MCP sessions subscribe).
    list_changed: tokio::sync::broadcast::Sender<()>,
    /// Serialises reloads.
    reloading: tokio::sync::Mutex<()>,
    /// Follow the hosted servers' `tools/list_changed` (replaced on reload).
    followers: std::sync::Mutex<Vec<AbortOnDropHandle<()>>>,
    /// Calls served since the start, for the shutdown record.
    calls: AtomicU64,
    /// Seals the approval a 2026-07-28 `input_required` answer is for.
    seal: elicit::Seal,
    /// The open MCP sessions over HTTP, and whose they are.
    sessions: Arc<sessions::Sessions>,
    /// Which refused sessions were logged and journaled.
    refusals: sessions::RefusalReports,
    /// Held (shared) while a closing session is ended; the shutdown takes
    /// it exclusively, so that no session it did not see ends after it.
    ending: tokio::sync::RwLock<()>,
    /// Signs the journal's tree head when entries wait longer than the
    /// cadence allows, even if nothing else is journaled.
    _heads: AbortOnDropHandle<()>,
    /// A replica's heartbeat in the shared store.
    _heartbeat: Option<AbortOnDropHandle<()>>,
}

impl Server {
    /// Loads every tool of `sources.config` into `host` (which must keep a
    /// state directory), with the policies `host` already has.
    pub async fn start(host: Host, sources: Sources) -> Result<Self, ServeError> {
        if host.journal().is_none() || host.approvals().is_none() {
            return Err(ServeError::NoState);
        }
        let config = sources.read_config()?;
        fleet::admit(
            &host,
            &config,
            &sources.config,
            &host.policies().digest(),
            fleet::Moment::Start,
        )?;
        let catalog = load_catalog(&host, &config).await?;
        catalog
            .publish_statement(&host, &config, &sources.config)
            .await?;
        let settings = catalog.settings.clone();
        let Some(store) = host.store() else {
            return Err(ServeError::NoState);
        };
        let agents = Agents::serving_store(store)?;
        let devices = Devices::in_store(store);
        let (list_changed, _) = tokio::sync::broadcast::channel(16);
        let heads = AbortOnDropHandle::new(tokio::spawn(sign_heads(host.clone())));
        let heartbeat = store
            .shared()
            .map(|shared| AbortOnDropHandle::new(tokio::spawn(replica::beat(Arc::clone(shared)))));
        let server = Self {
            inner: Arc::new(Inner {
                host,
                sources,
                catalog: RwLock::new(Arc::new(catalog)),
                slots: Slots::new(settings.max_concurrent, settings.max_concurrent_per_tool),
                agents,
                devices,
                console: RwLock::new(None),
                stop: CancellationToken::new(),
                list_changed,
                reloading: tokio::sync::Mutex::new(()),
                followers: std::sync::Mutex::new(Vec::new()),
                calls: AtomicU64::new(0),
                seal: elicit::Seal::new()?,
                sessions: Arc::default(),
                refusals: sessions::RefusalReports::default(),
                ending: tokio::sync::RwLock::new(()),
                _heads: heads,
                _heartbeat: heartbeat,
            }),
        };
        server.follow();
        replica::report(&server);
        server.journal(
            "started",
            json!({ "tools": server.tool_names(), "unpinned_servers": server.unpinned_servers() }),
        )?;
        Ok(server)
    }

    /// The hosted servers with `pin = false`: recorded where an auditor
    /// looks.
    fn unpinned_servers(&self) -> Vec<String> {
        self.servers()
            .iter()
            .filter(|hosted| !hosted.config().pin)
            .map(|hosted| hosted.name().to_string())
            .collect()
    }

    fn downgrade(&self) -> Weak {
        Weak(Arc::downgrade(&self.inner))
    }

    /// Installs `catalog` and tells subscribers the tool list changed.
    fn swap_catalog(&self, catalog: Catalog) {
        *self
            .inner
            .catalog
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(catalog);
        let _ = self.inner.list_changed.send(());
    }

    /// Follows the current hosted servers' tool-list changes.
    fn follow(&self) {
        *self
            .inner
            .followers
            .lock()
            .unwrap_or_else(PoisonError::into_inner) = self.follow_servers();
    }

    /// The host every call runs through.
    pub fn host(&self) -> &Host {
        &self.inner.host
    }

    /// The registered agents.
    pub fn agents(&self) -> &Agents {
        &self.inner.agents
    }

    /// The paired devices, and the codes waiting to pair one.
    pub fn devices(&self) -> &Devices {
        &self.inner.devices
    }

    /// The console's URL, when it is served.
    pub fn console_url(&self) -> Option<String> {
        self.inner
            .console
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Records where the console is served (pairing answers name it).
    pub fn set_console_url(&self, url: String) {
        *self
            .inner
            .console
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Some(url);
    }

    /// Where the configuration, policies and state live.
    pub fn sources(&self) -> &Sources {
        &self.inner.sources
    }

    /// The settings in force (`[serve]` of the last good configuration).
    pub fn settings(&self) -> ServeSettings {
        self.catalog().settings.clone()
    }

    /// The operator socket's path.
    pub fn operator_socket(&self) -> PathBuf {
        operator_socket_path(&self.settings(), &self.inner.sources.state_dir)
    }

    pub(crate) fn catalog(&self) -> Arc<Catalog> {
        Arc::clone(
            &self
                .inner
                .catalog
                .read()
                .unwrap_or_else(PoisonError::into_inner),
        )
    }

    /// The names of the served tools, in configuration order.
    pub fn tool_names(&self) -> Vec<String> {
        self.catalog()
            .tools
            .iter()
            .map(|t| t.tool.name().to_string())
            .collect()
    }

    /// How many calls hold a slot (run, or wait for an approval) now.
    pub fn running(&self) -> usize {
        self.inner.slots.running()
    }

    /// Subscribes to tool-list changes (successful reloads).
    pub fn subscribe_list_changed(&self) -> tokio::sync::broadcast::Receiver<()> {
        self.inner.list_changed.subscribe()
    }

    /// Fired when the server stops: long waits end early.
    pub fn stopping(&self) -> CancellationToken {
        self.inner.stop.clone()
    }

    fn journal(&self, event: &str, mut detail: serde_json::Value) -> Result<(), StoreError> {
        if let Some(journal) = self.inner.host.journal() {
            detail["event"] = json!(event);
            journal.record(&[(EntryKind::Server, detail)])?;
        }
        Ok(())
    }

    /// Reads the configuration and policies again. On success the new tools
    /// replace the old (calls that started keep theirs) and subscribers are
    /// told; on failure the old set keeps serving. Either way it is
    /// journaled.
    pub async fn reload(&self) -> Result<Vec<String>, ServeError> {
        let _one_at_a_time = self.inner.reloading.lock().await;
        let host = &self.inner.host;
        let previous = host.policies();
        let attempt = async {
            let config = self.inner.sources.read_config()?;
            // A key or trusted root named since the start was not protected
            // when the sandboxes' views were set: a tool could rewrite it.
            let unprotected: Vec<String> = config
                .companion_files()
                .iter()
                .filter(|file| !host.protected().covers(file))
                .map(|file| file.display().to_string())
                .collect();
            if !unprotected.is_empty() {
                return Err(ServeError::Unprotected { files: unprotected });
            }
            let running = host.journal().map(Journal::commit_mode);
            if running.is_some_and(|mode| mode != config.journal_commit()) {
                tracing::warn!(
                    "the [journal] table changed; the commit mode takes effect when the server restarts"
                );
            }
            if host.store().map(Store::describe) != Some(config.store().describe()) {
                tracing::warn!(
                    "the store changed ({}); the server keeps its store until it restarts",
                    config.store().describe()
                );
            }
            if config.serve().session_idle != self.settings().session_idle {
                tracing::warn!(
                    "`session_idle` changed; open and new MCP sessions keep the old one until the server restarts"
                );
            }
            if host.telemetry().map(Telemetry::settings) != config.telemetry() {
                tracing::warn!(
                    "the [telemetry] table changed; the server keeps exporting as it started until it restarts"
                );
            }
            let policies = match &self.inner.sources.policies {
                Some(dir) => PolicyEngine::from_dir(dir)?,
                None => PolicyEngine::embedded(),
            };
            // Judged with the new policies before they are enforced.
            fleet::admit(
                host,
                &config,
                &self.inner.sources.config,
                &policies.digest(),
                fleet::Moment::Reload,
            )?;
            host.reload_policies(policies)?;
            let catalog = load_catalog(host, &config).await?;
            catalog
                .publish_statement(host, &config, &self.inner.sources.config)
                .await?;
            Ok(catalog)
        };
        match attempt.await {
            Ok(catalog) => {
                let previous = self.servers();
                self.swap_catalog(catalog);
                self.follow();
                for server in previous {
                    server.stop().await;
                }
                let names = self.tool_names();
                replica::report(self);
                self.journal(
                    "reloaded",
                    json!({ "tools": names, "unpinned_servers": self.unpinned_servers() }),
                )?;
                Ok(names)
            }
            Err(error) => {
                tracing::error!(code = error.code(), %error, "reload failed; the previous tools keep serving");
                if !Arc::ptr_eq(&previous, &host.policies()) {
                    host.set_policies(previous)?;
                }
                self.journal(
                    "reload_failed",
                    json!({ "code": error.code(), "error": error.to_string() }),
                )?;
                Err(error)
            }
        }
    }

    /// Stops: waits up to the grace period for running calls, then cancels
    /// what still runs, waits for those to end (each is journaled as
    /// cancelled) and journals a clean shutdown.
    pub async fn shutdown(&self) -> Result<(), StoreError> {
        let grace = self.settings().shutdown_grace;
        let running_at_start = self.inner.slots.running();
        let settled = tokio::time::timeout(grace, self.inner.slots.idle())
            .await
            .is_ok();
        let cancelled = if settled {
            0
        } else {
            let left = self.inner.slots.running();
            self.inner.stop.cancel();
            self.inner.slots.idle().await;
            left
        };
        self.stop_servers().await;
        // Sessions end with the server, and their approvals with them;
        // one that rmcp is closing meanwhile ends first.
        let _ended = self.inner.ending.write().await;
        for session in self.sessions().forget_all() {
            self.end_session_approvals(&session).await;
        }
        self.report_unreported_refusals();
        if let Some(journal) = self.inner.host.journal() {
            // Batched attestations first (at most a window's wait): the
            // stop is the last entry.
            journal.flush();
        }
        let calls = self.inner.calls.load(Ordering::Relaxed);
        self.journal(
            "stopped",
            json!({
                "clean": true,
                "running_at_stop": running_at_start,
                "cancelled_after_grace": cancelled,
                "calls": calls,
            }),
        )?;
        if let Some(journal) = self.inner.host.journal() {
            journal.seal()?;
        }
        Ok(())
    }
}

/// Signs a head whenever the journal's cadence says one is due.
async fn sign_heads(host: Host) {
    let Some(interval) = host.journal().map(|journal| journal.cadence().interval) else {
        return;
    };
    let mut tick = tokio::time::interval(interval);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if let Some(Err(error)) = host.journal().map(airlock::journal::Journal::seal_when_due) {
            tracing::warn!(code = error.code(), %error, "the journal's tree head was not signed");
        }
    }
}

/// The operator socket of a server with `settings` and `state_dir`.
pub fn operator_socket_path(settings: &ServeSettings, state_dir: &Path) -> PathBuf {
    settings
        .operator_socket
        .clone()
        .unwrap_or_else(|| state_dir.join(OPERATOR_SOCKET))
}

/// MCP tools take an object: a schema without a `type` gets `"object"`,
/// one of another type is refused.
fn object_schema(mut schema: serde_json::Value) -> Result<serde_json::Value, String> {
    let Some(object) = schema.as_object_mut() else {
        return Err("it is not a JSON object".into());
    };
    match object.get("type") {
        None => {
            object.insert("type".into(), json!("object"));
        }
        Some(t) if t == "object" => {}
        Some(other) => return Err(format!("its type is {other}, and MCP tools take an object")),
    }
    Ok(schema)
}
