//! [`HostedServer`]: one `[[servers]]` entry, loaded (program found and
//! digested, directories checked) and, once started, a sandboxed process
//! airlock speaks MCP to as a client over its stdio.

use super::egress::ServerEgress;
use super::process::{LineCap, MAX_MESSAGE_BYTES, StderrTail, log_stderr, plan};
use super::program::Program;
use super::progress::{ProgressRoutes, ProgressSink};
use super::{ServerConfig, ServerError};
use crate::kernel::Kernel;
use crate::native::Granted;
use airlock_sandbox::{Backend, NetworkMode, Spawned};
use rmcp::model::{
    CallToolRequest, CallToolRequestParams, CallToolResult, ClientRequest,
    ProgressNotificationParam, ServerResult, Tool,
};
use rmcp::service::{NotificationContext, PeerRequestOptions, RunningService};
use rmcp::{ClientHandler, RoleClient, ServiceExt};
use std::path::PathBuf;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// How long a server whose output closed during the handshake gets to
/// exit on its own (so its own status is reported) before it is killed, and
/// how long its stderr then gets to drain.
const EXIT_GRACE: Duration = Duration::from_secs(2);

/// The error for a server that ended, or closed its output, before it
/// answered `initialize`: its exit status and its last stderr lines.
async fn ended_early(
    server: String,
    cause: String,
    mut process: Spawned,
    tail: Arc<StderrTail>,
) -> ServerError {
    let (how, stderr) = tokio::task::spawn_blocking(move || {
        let deadline = std::time::Instant::now() + EXIT_GRACE;
        let mut status = process.child.try_wait().ok().flatten();
        while status.is_none() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
            status = process.child.try_wait().ok().flatten();
        }
        let how = match status {
            Some(status) => described(status),
            None => {
                process.kill();
                "closed its output".to_string()
            }
        };
        (how, tail.lines(EXIT_GRACE))
    })
    .await
    .unwrap_or_else(|_| ("closed its output".to_string(), Vec::new()));
    ServerError::Exited {
        server,
        how,
        cause,
        stderr,
    }
}

/// The error for a server that did not answer in its `init_timeout`: it is
/// stopped first, so its stderr ends and all of it is quoted.
async fn timed_out(
    config: &ServerConfig,
    mut process: Spawned,
    tail: Arc<StderrTail>,
) -> ServerError {
    process.kill();
    let stderr = tokio::task::spawn_blocking(move || tail.lines(EXIT_GRACE))
        .await
        .unwrap_or_default();
    ServerError::InitTimeout {
        server: config.name.clone(),
        after: config.init_timeout,
        stderr,
    }
}

/// `exited with status 1`, `was killed by signal 9`.
fn described(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended ({status})"),
    }
}

/// Where a hosted server stands.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum State {
    /// Not started (lazy), or stopped.
    Stopped,
    /// Running, its tools listed.
    Running,
    /// It failed to start or died; the error says why.
    Failed,
}

/// What `airlock servers status` shows of one server.
#[derive(Clone, Debug, serde::Serialize)]
pub struct ServerStatus {
    /// The server's name.
    pub name: String,
    /// Where it stands.
    pub state: State,
    /// The sandbox's process id while it runs.
    pub pid: Option<u32>,
    /// How many times it was started.
    pub starts: u32,
    /// Why it last failed.
    pub last_error: Option<String>,
    /// How many tools it lists.
    pub tools: usize,
    /// Files of its command no grant shows, mounted read-only at their
    /// own paths (the links of a venv's interpreter, say).
    pub mounted: Vec<PathBuf>,
}

/// What airlock, as the server's client, does with what the server tells it:
/// progress goes to the call it belongs to; a changed tool list is noted.
/// One per session: a restarted server counts its progress tokens afresh.
struct Upstream {
    progress: Arc<ProgressRoutes>,
    list_changed: Arc<tokio::sync::Notify>,
}

impl ClientHandler for Upstream {
    async fn on_progress(
        &self,
        params: ProgressNotificationParam,
        _context: NotificationContext<RoleClient>,
    ) {
        if let Some(message) = params.message {
            self.progress.deliver(params.progress_token, message);
        }
    }

    async fn on_tool_list_changed(&self, _context: NotificationContext<RoleClient>) {
        self.list_changed.notify_one();
    }
}

/// A running process and the MCP session with it.
struct Live {
    client: RunningService<RoleClient, Upstream>,
    tools: Vec<Tool>,
    process: Spawned,
}

impl Live {
    /// Whether the session is open (it closes when the process ends).
    fn is_open(&self) -> bool {
        !self.client.is_closed() && !self.client.peer().is_transport_closed()
    }
}

/// How one call ended at the server.
pub enum Called {
    /// The server answered (an `isError` result included).
    Answered(CallToolResult),
    /// The caller cancelled; the server was told.
    Cancelled,
    /// The call's deadline passed; the server was told.
    TimedOut,
}

/// One hosted server. Cheap to clone.
#[derive(Clone)]
pub struct HostedServer {
    inner: Arc<Inner>,
}

struct Inner {
    config: ServerConfig,
    program: Program,
    /// The program's file as digested at load, checked at every start.
    digested: crate::native::Digested,
    /// Its directories, resolved at load.
    read: Vec<Granted>,
    write: Vec<Granted>,
    sha256: String,
    backend: Backend,
    /// airlock's own files, hidden from its sandbox.
    protected: crate::protected::ProtectedPaths,
    /// Its proxy, when its egress is strict; and the bridge program.
    egress: Option<(Arc<ServerEgress>, PathBuf)>,
    live: tokio::sync::Mutex<Option<Live>>,
    status: Mutex<ServerStatus>,
    list_changed: Arc<tokio::sync::Notify>,
    /// Consecutive failed starts, and when the next may be tried.
    backoff: Mutex<(u32, Option<std::time::Instant>)>,
}

/// The longest wait between restarts of a server that keeps failing.
pub(crate) const MAX_RESTART_BACKOFF: Duration = Duration::from_secs(60);

impl HostedServer {
    /// Checks `config` on this machine: the program exists (a bare name
    /// is found on `PATH`) and is digested, the directories exist, a
    /// sandbox that confines files and network is installed; with a
    /// network grant, starts the server's egress proxy.
    pub(crate) fn load(kernel: &Kernel, config: ServerConfig) -> Result<Self, ServerError> {
        let backend = kernel.native_sandbox().map_err(|e| ServerError::Start {
            server: config.name.clone(),
            message: e.to_string(),
        })?;
        if !backend.confinement().is_full() {
            return Err(ServerError::Unconfined {
                server: config.name.clone(),
                executor: backend.kind().executor(),
            });
        }
        let program = if config.command.components().count() == 1 {
            airlock_sandbox::find_program(config.command.as_os_str(), std::env::var_os("PATH"))
                .ok_or_else(|| ServerError::Program {
                    server: config.name.clone(),
                    path: config.command.clone(),
                    message: "not found on PATH".into(),
                })?
        } else {
            config.command.clone()
        };
        let granted: Vec<PathBuf> = config
            .fs_read
            .iter()
            .chain(&config.fs_write)
            .cloned()
            .collect();
        let unreadable = |path: &std::path::Path, e: std::io::Error| ServerError::Program {
            server: config.name.clone(),
            path: path.to_path_buf(),
            message: e.to_string(),
        };
        let program =
            super::program::resolve(&program, &granted).map_err(|e| unreadable(&program, e))?;
        // The digest is of what runs: the file the links end in.
        let digested = crate::native::Digested::read(&program.target)
            .map_err(|e| unreadable(&program.target, e))?;
        // Resolved once: the sandbox binds these very directories (see
        // `airlock_sandbox::pinned`) wherever the server expects them.
        let resolve = |dirs: &[PathBuf]| -> Result<Vec<Granted>, ServerError> {
            dirs.iter()
                .map(|dir| {
                    Granted::resolve(dir).map_err(|_| ServerError::Directory {
                        server: config.name.clone(),
                        path: dir.clone(),
                    })
                })
                .collect()
        };
        let (read, write) = (resolve(&config.fs_read)?, resolve(&config.fs_write)?);
        let extra = program.extra();
        kernel
            .protected()
            .check_sandboxed(
                read.iter().chain(&write).map(|dir| dir.host.as_path()),
                config.hide_airlock_files,
            )
            .and_then(|()| {
                kernel.protected().check(
                    extra.iter().map(PathBuf::as_path),
                    crate::protected::Containing::Refuse,
                )
            })
            .map_err(|source| ServerError::Protected {
                server: config.name.clone(),
                source,
            })?;
        let sha256 = digested.sha256().to_string();
        let egress = match &config.network {
            None => None,
            Some(grants) => {
                crate::native::injectable(grants, true).map_err(|message| ServerError::Start {
                    server: config.name.clone(),
                    message,
                })?;
                let bridge = kernel.native_bridge().ok_or_else(|| ServerError::Start {
                    server: config.name.clone(),
                    message: "strict egress needs the bridge program: HostBuilder::native_bridge, or run from the airlock binary".into(),
                })?;
                let facts = crate::policy::ToolFacts::derive(
                    &config.name,
                    crate::vocabulary::World::McpServer,
                    config.capabilities(),
                    &sha256,
                    false,
                );
                let egress = ServerEgress::start(kernel, &facts, grants.clone()).map_err(|e| {
                    ServerError::Start {
                        server: config.name.clone(),
                        message: format!("starting its egress proxy failed: {e}"),
                    }
                })?;
                Some((Arc::new(egress), bridge))
            }
        };
        let status = ServerStatus {
            name: config.name.clone(),
            state: State::Stopped,
            pid: None,
            starts: 0,
            last_error: None,
            tools: 0,
            mounted: extra,
        };
        Ok(Self {
            inner: Arc::new(Inner {
                sha256,
                program,
                digested,
                read,
                write,
                backend,
                protected: kernel.protected().clone(),
                egress,
                config,
                live: tokio::sync::Mutex::new(None),
                status: Mutex::new(status),
                list_changed: Arc::default(),
                backoff: Mutex::new((0, None)),
            }),
        })
    }

    /// Its egress proxy, when its egress is strict.
    pub(crate) fn egress(&self) -> Option<Arc<ServerEgress>> {
        self.inner
            .egress
            .as_ref()
            .map(|(egress, _)| Arc::clone(egress))
    }

    /// Its configuration.
    pub fn config(&self) -> &ServerConfig {
        &self.inner.config
    }

    /// Its name.
    pub fn name(&self) -> &str {
        &self.inner.config.name
    }

    /// SHA-256 of the program that runs it.
    pub fn sha256(&self) -> &str {
        &self.inner.sha256
    }

    /// The program, as found: the path it runs at.
    pub fn program(&self) -> &std::path::Path {
        &self.inner.program.run
    }

    /// The file the program's links end in, whose SHA-256 it is known by.
    pub fn program_target(&self) -> &std::path::Path {
        &self.inner.program.target
    }

    /// Where it stands.
    pub fn status(&self) -> ServerStatus {
        self.inner
            .status
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    fn set_status(&self, change: impl FnOnce(&mut ServerStatus)) {
        change(
            &mut self
                .inner
                .status
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
    }

    /// Fires when the server says its tool list changed.
    pub fn list_changed(&self) -> Arc<tokio::sync::Notify> {
        Arc::clone(&self.inner.list_changed)
    }

    /// Starts the process (if it does not run), with its proxy socket and
    /// the bridge when its egress is strict, and lists its tools.
    /// A server that does not answer `initialize` within its
    /// `init_timeout` is killed and reported.
    pub async fn start(&self) -> Result<Vec<Tool>, ServerError> {
        let mut live = self.inner.live.lock().await;
        if let Some(running) = live.as_ref().filter(|running| running.is_open()) {
            return Ok(running.tools.clone());
        }
        *live = None;
        self.set_status(|s| {
            s.starts += 1;
            s.state = State::Stopped;
            s.pid = None;
        });
        match self.connect().await {
            Ok(started) => {
                let tools = started.tools.clone();
                let pid = started.process.child.id();
                *live = Some(started);
                self.set_status(|s| {
                    s.state = State::Running;
                    s.pid = Some(pid);
                    s.tools = tools.len();
                    s.last_error = None;
                });
                Ok(tools)
            }
            Err(error) => {
                tracing::warn!(target: "airlock::servers", server = %self.name(), code = error.code(), %error, "the server did not start");
                self.set_status(|s| {
                    s.state = State::Failed;
                    s.last_error = Some(error.to_string());
                });
                Err(error)
            }
        }
    }

    async fn connect(&self) -> Result<Live, ServerError> {
        let config = &self.inner.config;
        self.inner
            .program
            .unchanged()
            .map_err(|message| ServerError::Program {
                server: config.name.clone(),
                path: self.inner.program.run.clone(),
                message: format!(
                    "program_changed: {message}; reload to take it (and its approvals anew)"
                ),
            })?;
        self.inner
            .digested
            .verify()
            .map_err(|e| ServerError::Program {
                server: config.name.clone(),
                path: e.path.clone(),
                message: e.to_string(),
            })?;
        let mut plan = self
            .inner
            .protected
            .hide_in(plan(
                config,
                &self.inner.program,
                &self.inner.read,
                &self.inner.write,
            ))
            .map_err(|source| ServerError::Protected {
                server: config.name.clone(),
                source,
            })?;
        if let Some((egress, bridge)) = &self.inner.egress {
            egress.renew_trust().map_err(|e| ServerError::Start {
                server: config.name.clone(),
                message: format!("renewing its egress CA failed: {e}"),
            })?;
            plan.network = NetworkMode::Strict {
                channel_fd: egress.channel_fd(),
                bridge: bridge.clone(),
                trust: egress.trust().map(std::path::Path::to_path_buf),
            };
        }
        let failed = |message: String| ServerError::Start {
            server: config.name.clone(),
            message,
        };
        let mut process = self
            .inner
            .backend
            .spawn(&plan)
            .map_err(|e| failed(e.to_string()))?;
        let (Some(stdin), Some(stdout), Some(stderr)) = (
            process.child.stdin.take(),
            process.child.stdout.take(),
            process.child.stderr.take(),
        ) else {
            return Err(failed("its standard streams were not piped".into()));
        };
        let tail = Arc::new(StderrTail::default());
        log_stderr(config.name.clone(), stderr, Arc::clone(&tail));
        let stdin =
            tokio::process::ChildStdin::from_std(stdin).map_err(|e| failed(e.to_string()))?;
        let stdout =
            tokio::process::ChildStdout::from_std(stdout).map_err(|e| failed(e.to_string()))?;
        let upstream = Upstream {
            progress: Arc::default(),
            list_changed: Arc::clone(&self.inner.list_changed),
        };
        let init = config.init_timeout;
        let stdout = LineCap::new(stdout, MAX_MESSAGE_BYTES);
        let flooded = stdout.tripped();
        let client = match tokio::time::timeout(init, upstream.serve((stdout, stdin))).await {
            Err(_) => return Err(timed_out(config, process, tail).await),
            Ok(Ok(client)) => client,
            Ok(Err(e)) => {
                let cause = if flooded.load(std::sync::atomic::Ordering::Relaxed) {
                    format!(
                        "it sent a message longer than {MAX_MESSAGE_BYTES} bytes and was cut off"
                    )
                } else {
                    format!("the MCP handshake failed: {e}")
                };
                return Err(ended_early(config.name.clone(), cause, process, tail).await);
            }
        };
        let tools = match tokio::time::timeout(init, client.peer().list_all_tools()).await {
            Err(_) => return Err(timed_out(config, process, tail).await),
            Ok(listed) => listed.map_err(|e| failed(format!("listing its tools failed: {e}")))?,
        };
        Ok(Live {
            client,
            tools,
            process,
        })
    }

    /// Whether the process runs and its connection is open.
    pub async fn is_running(&self) -> bool {
        self.inner
            .live
            .lock()
            .await
            .as_ref()
            .is_some_and(Live::is_open)
    }

    /// Starts the server again if it is not running; after failed starts, waits between tries (1 s, doubling, at most
    /// `MAX_RESTART_BACKOFF`, a minute) and refuses in between.
    pub async fn ensure_running(&self) -> Result<(), ServerError> {
        if self.is_running().await {
            return Ok(());
        }
        let now = std::time::Instant::now();
        let not_before = self
            .inner
            .backoff
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .1;
        if let Some(not_before) = not_before.filter(|t| *t > now) {
            return Err(ServerError::Restarting {
                server: self.name().to_string(),
                after: not_before - now,
            });
        }
        let started = self.start().await;
        let mut backoff = self
            .inner
            .backoff
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        match started {
            Ok(_) => *backoff = (0, None),
            Err(_) => {
                let failures = backoff.0.saturating_add(1);
                let wait = Duration::from_secs(1u64 << failures.min(6)).min(MAX_RESTART_BACKOFF);
                *backoff = (failures, Some(std::time::Instant::now() + wait));
            }
        }
        started.map(drop)
    }

    /// Lists the tools again (after the server said they changed).
    pub async fn relist(&self) -> Result<Vec<Tool>, ServerError> {
        let mut live = self.inner.live.lock().await;
        let Some(running) = live.as_mut() else {
            return Ok(Vec::new());
        };
        let tools =
            running
                .client
                .peer()
                .list_all_tools()
                .await
                .map_err(|e| ServerError::Start {
                    server: self.name().to_string(),
                    message: format!("listing its tools failed: {e}"),
                })?;
        running.tools = tools.clone();
        self.set_status(|s| s.tools = tools.len());
        Ok(tools)
    }

    /// The tools it listed last (none while it does not run).
    pub async fn tools(&self) -> Vec<Tool> {
        self.inner
            .live
            .lock()
            .await
            .as_ref()
            .map(|l| l.tools.clone())
            .unwrap_or_default()
    }

    /// Calls tool `name` (the server's own name) with `arguments`; passes the
    /// server's progress to `progress`; tells the server when `cancel`
    /// fires or `deadline` passes.
    pub async fn call(
        &self,
        name: &str,
        arguments: serde_json::Map<String, serde_json::Value>,
        progress: Option<ProgressSink>,
        cancel: &CancellationToken,
        deadline: Duration,
    ) -> Result<Called, ServerError> {
        let (peer, routes) = {
            let live = self.inner.live.lock().await;
            match live.as_ref().filter(|running| running.is_open()) {
                Some(running) => (
                    running.client.peer().clone(),
                    Arc::clone(&running.client.service().progress),
                ),
                None => return Err(self.gone("it is not running")),
            }
        };
        let request = ClientRequest::CallToolRequest(CallToolRequest::new(
            CallToolRequestParams::new(name.to_string()).with_arguments(arguments),
        ));
        let mut handle = peer
            .send_cancellable_request(request, PeerRequestOptions::no_options())
            .await
            .map_err(|e| self.gone(&e.to_string()))?;
        let route = progress.map(|sink| routes.route(handle.progress_token.clone(), sink));
        enum End {
            Answer(
                Box<
                    Result<
                        Result<ServerResult, rmcp::ServiceError>,
                        tokio::sync::oneshot::error::RecvError,
                    >,
                >,
            ),
            Cancelled,
            TimedOut,
        }
        let end = tokio::select! {
            answer = &mut handle.rx => End::Answer(Box::new(answer)),
            () = cancel.cancelled() => End::Cancelled,
            () = tokio::time::sleep(deadline) => End::TimedOut,
        };
        drop(route);
        match end {
            End::Answer(answer) => match *answer {
                Ok(Ok(ServerResult::CallToolResult(result))) => Ok(Called::Answered(result)),
                Ok(Ok(other)) => Err(ServerError::Protocol {
                    server: self.name().to_string(),
                    message: format!("it answered tools/call with {other:?}"),
                }),
                Ok(Err(rmcp::ServiceError::McpError(error))) => Err(ServerError::Refused {
                    server: self.name().to_string(),
                    message: error.message.to_string(),
                }),
                Ok(Err(error)) => Err(self.gone(&error.to_string())),
                Err(_) => Err(self.gone("it closed the connection during the call")),
            },
            End::Cancelled => {
                let _ = handle.cancel(Some("the caller cancelled".into())).await;
                Ok(Called::Cancelled)
            }
            End::TimedOut => {
                let _ = handle
                    .cancel(Some("airlock's deadline for the call passed".into()))
                    .await;
                Ok(Called::TimedOut)
            }
        }
    }

    /// The error for a server that went away, noted in its status.
    fn gone(&self, why: &str) -> ServerError {
        ServerError::Gone {
            server: self.name().to_string(),
            message: self.mark_gone(why),
        }
    }

    /// Notes in its status that the server went away (`why`); it is
    /// started again at the next call or check. Returns the message.
    pub fn mark_gone(&self, why: &str) -> String {
        let message = format!("the server is gone: {why}");
        self.set_status(|s| {
            s.state = State::Failed;
            s.pid = None;
            s.last_error = Some(message.clone());
        });
        message
    }

    /// Stops the process: the MCP session is closed, then everything the
    /// server started is killed.
    pub async fn stop(&self) {
        if let Some(running) = self.inner.live.lock().await.take() {
            let _ = tokio::time::timeout(Duration::from_secs(2), running.client.cancel()).await;
            drop(running.process);
        }
        self.set_status(|s| {
            s.state = State::Stopped;
            s.pid = None;
        });
    }
}
