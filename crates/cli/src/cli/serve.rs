//! `airlock serve`, and the operator commands that talk to a running
//! server through its socket: `airlock agents`, `airlock reload`.

use super::args::{Cli, DnsArgs};
use super::{Failure, host_builder};
use airlock::protected::ProtectedKind;
use airlock::store::StoreLocation;
use airlock::{Config, exit_code};
use airlock_serve::console::{CertSource, ConsoleListener, ConsoleTls};
use airlock_serve::http::{HttpListener, MCP_PATH};
use airlock_serve::operator::{OperatorListener, OperatorRequest, request};
use airlock_serve::state_watch::{StateDirGone, StateWatch};
use airlock_serve::{Agents, Server, Sources, operator_socket_path};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::net::SocketAddr;
use std::path::PathBuf;
use tokio::signal::unix::{SignalKind, signal};
use tokio_util::sync::CancellationToken;

/// `airlock serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The operator's configuration: tools, grants and `[serve]`.
    #[arg(long, value_name = "FILE", default_value = "airlock.toml")]
    pub config: PathBuf,
    /// Serve one MCP client on stdin/stdout (the client starts airlock).
    #[arg(long, conflicts_with = "listen")]
    pub stdio: bool,
    /// Serve MCP over streamable HTTP at ADDR (default: `[serve] listen`,
    /// else 127.0.0.1:7323); port 0 picks a free one.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<SocketAddr>,
    /// Serve the operator console over HTTPS at ADDR (default
    /// 127.0.0.1:7324; loopback unless you name another address). Browsers
    /// pair with `airlock devices pair`.
    #[arg(long, value_name = "ADDR", num_args = 0..=1, default_missing_value = "127.0.0.1:7324")]
    pub console: Option<SocketAddr>,
    /// The console's certificate chain (PEM) instead of the one airlock
    /// makes in the state directory; needs --console-key.
    #[arg(long, value_name = "FILE", requires_all = ["console", "console_key"])]
    pub console_cert: Option<PathBuf>,
    /// The private key (PEM) of --console-cert.
    #[arg(long, value_name = "FILE", requires_all = ["console", "console_cert"])]
    pub console_key: Option<PathBuf>,
    /// Refuse to serve (and to reload) unless `airlock.lock` beside
    /// --config pins every `oci://` tool as configured.
    #[arg(long)]
    pub locked: bool,
    #[command(flatten)]
    pub dns: DnsArgs,
}

/// `airlock agents`.
#[derive(Debug, Subcommand)]
pub enum AgentsCommand {
    /// Register an agent and print its bearer token (shown once; only its
    /// hash is kept).
    #[command(after_help = "Examples:\n  airlock agents add claude")]
    Add {
        /// The agent's name: its principal is `Agent::"NAME"`.
        name: String,
    },
    /// The registered agents (never their tokens).
    #[command(after_help = "Examples:\n  airlock agents list\n  airlock agents list --json")]
    List {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Remove an agent: its token stops working at once.
    #[command(after_help = "Examples:\n  airlock agents remove claude")]
    Remove {
        /// The agent's name.
        name: String,
    },
}

impl From<airlock_serve::ServeError> for Failure {
    fn from(e: airlock_serve::ServeError) -> Self {
        Failure::usage(e.code(), e.to_string())
    }
}

impl From<airlock_serve::operator::OperatorError> for Failure {
    fn from(e: airlock_serve::operator::OperatorError) -> Self {
        let exit = match e.code.as_str() {
            "not_an_operator" | "policy_denied" => exit_code::DENIED,
            _ => exit_code::USAGE,
        };
        Failure {
            code: "operator_refused",
            message: e.to_string(),
            exit,
        }
    }
}

/// The operator socket the CLI talks to: `--socket`, else the state
/// directory's (a server with another `operator_socket` needs `--socket`).
pub(crate) fn socket(cli: &Cli) -> PathBuf {
    cli.socket
        .clone()
        .unwrap_or_else(|| operator_socket_path(&Default::default(), &cli.state_dir))
}

/// Asks the running server, if one answers on the socket.
pub(crate) async fn ask(cli: &Cli, what: &OperatorRequest) -> Result<Option<Value>, Failure> {
    Ok(request(&socket(cli), what).await?)
}

pub async fn serve(cli: &Cli, args: &ServeArgs) -> u8 {
    match run(cli, args).await {
        Ok(()) => exit_code::OK,
        Err(failure) => failure.report(),
    }
}

async fn run(cli: &Cli, args: &ServeArgs) -> Result<(), Failure> {
    let config = Config::from_file(&args.config)?;
    if args.locked {
        config.check_locked()?;
    }
    let needs_vault = config
        .tools()
        .iter()
        .any(|t| !t.grants().credentials().is_empty())
        || config.servers().iter().any(|s| {
            s.network
                .as_ref()
                .is_some_and(|grants| !grants.credentials().is_empty())
        })
        || config.registries().iter().any(|r| r.login().is_some());
    let vault = if needs_vault {
        Some(super::vault::open(&super::vault::place(
            cli,
            Some(config.store()),
        )?)?)
    } else {
        None
    };
    let resolver = args.dns.is_set().then(|| args.dns.resolver());
    // airlock's own files, out of every tool's sight (see
    // `airlock::protected`). The operator socket is bound before any tool
    // or hosted server starts, so a sandbox whose grant holds its path on
    // purpose finds it covered.
    let socket_path = operator_socket_path(config.serve(), &cli.state_dir);
    let mut builder = host_builder(cli, false, resolver, vault)?
        .protect(ProtectedKind::Config, &args.config)
        .protect(ProtectedKind::OperatorSocket, &socket_path);
    // The lockfile and the keys and roots signatures are checked with.
    for file in config.companion_files() {
        builder = builder.protect(ProtectedKind::Config, file);
    }
    for file in [&args.console_cert, &args.console_key]
        .into_iter()
        .flatten()
    {
        builder = builder.protect(ProtectedKind::ConsoleKey, file);
    }
    if let StoreLocation::Postgres(settings) = config.store()
        && let Some(file) = settings.password_file()
    {
        builder = builder.protect(ProtectedKind::DatabasePassword, file);
    }
    let mut builder = builder
        .journal_commit(config.journal_commit())
        .store(config.store().clone())
        .registries(config.registries().to_vec())
        .trust_upstream(config.egress_roots().to_vec())
        .max_concurrent_instances(config.serve().instance_slots());
    if let Some(telemetry) = config.telemetry() {
        builder = builder.telemetry(telemetry.clone());
    }
    let host = builder.build()?;
    let operator = OperatorListener::bind(&socket_path, config.serve()).await?;
    let server = Server::start(
        host,
        Sources {
            config: args.config.clone(),
            policies: cli.policies.clone(),
            state_dir: cli.state_dir.clone(),
            locked: args.locked,
        },
    )
    .await?;
    let settings = server.settings();
    let shutdown = CancellationToken::new();
    let state = StateWatch::new(&cli.state_dir);

    eprintln!(
        "airlock: operators: {} ({} tools)",
        operator.path().display(),
        server.tool_names().len()
    );
    let operator_task = tokio::spawn(operator.serve(server.clone(), shutdown.clone()));
    let console_task = match args.console {
        Some(address) => Some(start_console(cli, args, address, &server, &shutdown).await?),
        None => None,
    };

    let signals = Signals::new()?;
    let gone = if args.stdio {
        airlock_serve::stdio::serve(&server, signals.until_stop(&server, state))
            .await
            .map_err(|e| Failure::usage(e.code(), e.to_string()))?
            .flatten()
    } else {
        let address = args.listen.unwrap_or(settings.listen);
        let listener = HttpListener::bind(address).await?;
        eprintln!(
            "airlock: serving MCP at http://{}{MCP_PATH}",
            listener.local_addr()
        );
        let http = tokio::spawn(listener.serve(server.clone(), shutdown.clone()));
        let gone = signals.until_stop(&server, state).await;
        shutdown.cancel();
        let _ = http.await;
        gone
    };
    shutdown.cancel();
    let _ = operator_task.await;
    if let Some(console) = console_task {
        let _ = console.await;
    }
    if let Some(gone) = gone {
        // The journal went with the directory: say why, not that the
        // shutdown could not be journaled.
        let _ = server.shutdown().await;
        return Err(Failure::usage(gone.code(), gone.to_string()));
    }
    server.shutdown().await?;
    eprintln!("airlock: stopped");
    Ok(())
}

/// Binds the console and serves it on its own task.
async fn start_console(
    cli: &Cli,
    args: &ServeArgs,
    address: SocketAddr,
    server: &Server,
    shutdown: &CancellationToken,
) -> Result<tokio::task::JoinHandle<()>, Failure> {
    let source = match (&args.console_cert, &args.console_key) {
        (Some(cert), Some(key)) => CertSource::Files {
            cert: cert.clone(),
            key: key.clone(),
        },
        _ => CertSource::Generated {
            state_dir: cli.state_dir.clone(),
        },
    };
    let tls = ConsoleTls::load(&source, address.ip())
        .map_err(|e| Failure::usage(e.code(), e.to_string()))?;
    let console = ConsoleListener::bind(address, tls).await?;
    let tls = console.tls();
    eprintln!(
        "airlock: console at {} (certificate {}, SHA-256 {})",
        console.url(),
        tls.cert_path.display(),
        tls.fingerprint
    );
    if let Some(spki) = &tls.spki_sha256 {
        eprintln!(
            "airlock: console key pin (Chromium --ignore-certificate-errors-spki-list): {spki}"
        );
    }
    eprintln!("airlock: pair a browser with `airlock devices pair`");
    let (server, shutdown) = (server.clone(), shutdown.clone());
    Ok(tokio::spawn(async move {
        if let Err(error) = console.serve(server, shutdown).await {
            tracing::error!(code = error.code(), %error, "the console stopped");
        }
    }))
}

/// SIGINT and SIGTERM stop the server; SIGHUP reloads it.
struct Signals {
    interrupt: tokio::signal::unix::Signal,
    terminate: tokio::signal::unix::Signal,
    hangup: tokio::signal::unix::Signal,
}

impl Signals {
    fn new() -> Result<Self, Failure> {
        let install = |kind| {
            signal(kind).map_err(|e| {
                Failure::usage("serve_failed", format!("installing a signal handler: {e}"))
            })
        };
        Ok(Self {
            interrupt: install(SignalKind::interrupt())?,
            terminate: install(SignalKind::terminate())?,
            hangup: install(SignalKind::hangup())?,
        })
    }

    /// Reloads on each SIGHUP until SIGINT or SIGTERM, or until the state
    /// directory goes (then says so).
    async fn until_stop(mut self, server: &Server, state: StateWatch) -> Option<StateDirGone> {
        let gone = state.gone();
        tokio::pin!(gone);
        loop {
            tokio::select! {
                _ = self.interrupt.recv() => return None,
                _ = self.terminate.recv() => return None,
                gone = &mut gone => {
                    tracing::error!(code = gone.code(), %gone, "stopping");
                    return Some(gone);
                }
                _ = self.hangup.recv() => match server.reload().await {
                    Ok(tools) => eprintln!("airlock: reloaded: {}", tools.join(", ")),
                    Err(e) => eprintln!("airlock: {}: reload failed, the previous tools keep serving: {e}", e.code()),
                },
            }
        }
    }
}

/// `airlock status`: what the running server serves.
pub async fn status(cli: &Cli, json: bool) -> u8 {
    match ask(cli, &OperatorRequest::Status).await {
        Ok(Some(answer)) => {
            if json {
                outln!("{answer}");
            } else {
                outln!(
                    "config:   {}",
                    answer["config"].as_str().unwrap_or_default()
                );
                outln!("tools:    {}", names(&answer["tools"]));
                outln!("running:  {}", answer["running"]);
                print_replicas(&answer["shared"]);
                let telemetry = &answer["telemetry"];
                if let Some(endpoint) = telemetry["endpoint"].as_str() {
                    outln!(
                        "telemetry: {endpoint}: {} spans and {} denial records exported, {} dropped",
                        telemetry["spans_exported"],
                        telemetry["logs_exported"],
                        telemetry["dropped"]
                    );
                }
            }
            exit_code::OK
        }
        Ok(None) => not_running(cli).report(),
        Err(failure) => failure.report(),
    }
}

/// With a shared store: the database, every replica, and warnings.
fn print_replicas(shared: &Value) {
    let Some(replicas) = shared["replicas"].as_array() else {
        return;
    };
    outln!(
        "store:    {} (this is replica {})",
        shared["store"].as_str().unwrap_or_default(),
        shared["replica"].as_str().unwrap_or_default()
    );
    for r in replicas {
        let digest = |key: &str| {
            r[key]
                .as_str()
                .unwrap_or_default()
                .chars()
                .take(12)
                .collect::<String>()
        };
        outln!(
            "replica:  {:<12} {:<8} policies {}  config {}  heartbeat {}s ago{}",
            r["name"].as_str().unwrap_or_default(),
            r["version"].as_str().unwrap_or_default(),
            digest("policy_digest"),
            digest("config_digest"),
            r["last_heartbeat_ms_ago"].as_i64().unwrap_or_default() / 1000,
            if r["stale"] == Value::Bool(true) {
                " (stale)"
            } else {
                ""
            }
        );
    }
    for warning in shared["warnings"].as_array().into_iter().flatten() {
        eprintln!("airlock: warning: {}", warning.as_str().unwrap_or_default());
    }
}

/// `airlock reload`: the running server re-reads its configuration.
pub async fn reload(cli: &Cli) -> u8 {
    match ask(cli, &OperatorRequest::Reload).await {
        Ok(Some(answer)) => {
            outln!("reloaded: {}", names(&answer["tools"]));
            exit_code::OK
        }
        Ok(None) => not_running(cli).report(),
        Err(failure) => failure.report(),
    }
}

fn names(list: &Value) -> String {
    list.as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .collect::<Vec<_>>()
                .join(", ")
        })
        .unwrap_or_default()
}

pub(crate) fn not_running(cli: &Cli) -> Failure {
    Failure::usage(
        "server_not_running",
        format!(
            "no airlock serve answers on {}: start one, or give its socket with --socket",
            socket(cli).display()
        ),
    )
}

/// `airlock agents ...`: through the running server, else the state
/// directory's database directly.
pub async fn agents(cli: &Cli, command: &AgentsCommand) -> u8 {
    match agents_command(cli, command).await {
        Ok(()) => exit_code::OK,
        Err(failure) => failure.report(),
    }
}

async fn agents_command(cli: &Cli, command: &AgentsCommand) -> Result<(), Failure> {
    let direct = || -> Result<Agents, Failure> { Ok(Agents::in_store(&super::open_state(cli)?)) };
    let agent_failure = |e: airlock_serve::AgentError| Failure::usage(e.code(), e.to_string());
    match command {
        AgentsCommand::Add { name } => {
            let request = OperatorRequest::AgentsAdd { name: name.clone() };
            let token = match ask(cli, &request).await? {
                Some(answer) => answer["token"].as_str().unwrap_or_default().to_string(),
                None => direct()?
                    .add(name)
                    .map_err(agent_failure)?
                    .1
                    .expose()
                    .to_string(),
            };
            eprintln!(
                "airlock: agent `{name}` added; its token (shown once, only its hash is kept):"
            );
            outln!("{token}");
        }
        AgentsCommand::List { json } => {
            let list = match ask(cli, &OperatorRequest::AgentsList).await? {
                Some(answer) => answer,
                None => serde_json::to_value(direct()?.list()?)
                    .map_err(|e| Failure::usage("internal", e.to_string()))?,
            };
            if *json {
                outln!("{list}");
            } else if list.as_array().is_none_or(Vec::is_empty) {
                outln!("no agents: `airlock agents add NAME` registers one");
            } else {
                for agent in list.as_array().into_iter().flatten() {
                    outln!(
                        "{}  (added {})",
                        agent["name"].as_str().unwrap_or_default(),
                        agent["created"].as_str().unwrap_or_default()
                    );
                }
            }
        }
        AgentsCommand::Remove { name } => {
            let request = OperatorRequest::AgentsRemove { name: name.clone() };
            if ask(cli, &request).await?.is_none() {
                direct()?.remove(name).map_err(agent_failure)?;
            }
            eprintln!("airlock: agent `{name}` removed");
        }
    }
    Ok(())
}
