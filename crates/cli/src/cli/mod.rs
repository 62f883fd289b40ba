//! The `airlock` command line: parse flags (`args`), build a [`Host`], run the
//! command, map the result to an exit code. Commands only use the library's
//! public API.

/// `println!` for what a command prints: when the reader has gone
/// (`airlock … | head`), the command ends quietly with the status SIGPIPE
/// would give, as ripgrep does, instead of panicking.
macro_rules! outln {
    ($($arg:tt)*) => {{
        use std::io::Write as _;
        if let Err(error) = writeln!(std::io::stdout().lock(), $($arg)*) {
            $crate::cli::output_failed(&error);
        }
    }};
}

mod approvals;
mod args;
mod devices;
mod docs;
mod egress;
mod inspect;
mod journal;
mod lock;
mod new;
mod policy;
mod progress;
mod pull;
mod render;
mod replicas;
mod run;
mod serve;
mod servers;
mod vault;

use airlock::egress::{Resolver, StaticResolver, SystemResolver};
use airlock::policy::PolicyEngine;
use airlock::protected::ProtectedKind;
use airlock::{Config, ConfigError, Host, NetworkGrant, ToolConfig, exit_code};
use args::{Cli, Command, DnsArgs, EgressCommand, GrantSource};
use clap::{CommandFactory, FromArgMatches};
use std::process::ExitCode;
use std::sync::Arc;

/// Exit status of a process a SIGPIPE ended (128 + 13), which shells and
/// pipelines treat as "the reader stopped", not as a failure to report.
const BROKEN_PIPE_EXIT: i32 = 141;

/// Ends the process after stdout failed: quietly when the reader has gone.
pub(crate) fn output_failed(error: &std::io::Error) -> ! {
    if error.kind() == std::io::ErrorKind::BrokenPipe {
        std::process::exit(BROKEN_PIPE_EXIT);
    }
    eprintln!("airlock: output_failed: cannot write to standard output: {error}");
    std::process::exit(i32::from(exit_code::USAGE));
}

/// Runs the CLI and returns its exit code.
pub fn main() -> ExitCode {
    let args: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let parsed = Cli::command()
        .color(args::ColorArg::scan(&args).clap())
        .try_get_matches_from(&args)
        .and_then(|matches| Cli::from_arg_matches(&matches));
    let cli = match parsed {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and errors to stderr (exit 2).
            if let Err(error) = e.print() {
                output_failed(&error);
            }
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(exit_code::USAGE));
        }
    };
    init_tracing(cli.verbose, cli.color.for_stderr());
    let needs_state = !matches!(
        cli.command,
        Command::New(_)
            | Command::Version { .. }
            | Command::Completions { .. }
            | Command::Man { .. }
    );
    if needs_state && cli.state_dir.as_os_str().is_empty() {
        return ExitCode::from(fail(
            "state_dir_unknown",
            "no state directory: neither XDG_STATE_HOME nor HOME is an absolute path; pass --state-dir DIR (or set AIRLOCK_STATE_DIR)",
            exit_code::USAGE,
        ));
    }
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return ExitCode::from(fail(
                "runtime_failed",
                &format!("starting the async runtime failed: {e}"),
                exit_code::USAGE,
            ));
        }
    };
    let code = runtime.block_on(async {
        match &cli.command {
            Command::Serve(args) => serve::serve(&cli, args).await,
            Command::Agents(command) => serve::agents(&cli, command).await,
            Command::Devices(command) => devices::run(&cli, command).await,
            Command::Servers(command) => servers::run(&cli, command).await,
            Command::Replicas(command) => replicas::run(&cli, command).await,
            Command::Reload => serve::reload(&cli).await,
            Command::Status { json } => serve::status(&cli, *json).await,
            Command::Run(run) => run::run(&cli, run).await,
            Command::New(args) => new::new(args),
            Command::Inspect(inspect) => inspect::inspect(&cli, inspect).await,
            Command::Pull(args) => pull::pull(&cli, args).await,
            Command::Lock(args) => lock::lock(&cli, args).await,
            Command::Egress(EgressCommand::Check(check)) => egress::check(&cli, check).await,
            Command::Policy(command) => policy::run(&cli, command).await,
            Command::Approvals(command) => approvals::run(&cli, command).await,
            Command::Journal(command) => journal::run_journal(&cli, command).await,
            Command::Attest(command) => journal::run_attest(&cli, command),
            Command::Vault(command) => vault::run(&cli, command),
            Command::Version { json } => docs::version(*json),
            Command::Completions { shell } => docs::completions(*shell),
            Command::Man { dir } => docs::man(dir.as_deref()),
        }
    });
    ExitCode::from(code)
}

fn init_tracing(verbose: u8, ansi: bool) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(ansi)
        .init();
}

/// Prints `airlock: <reason code>: <message>` to stderr and returns `exit`.
pub(crate) fn fail(code: &str, message: &str, exit: u8) -> u8 {
    eprintln!("airlock: {code}: {message}");
    exit
}

/// A command that could not do what was asked: reason code, message, exit code.
pub(crate) struct Failure {
    pub code: &'static str,
    pub message: String,
    pub exit: u8,
}

impl Failure {
    pub(crate) fn usage(code: &'static str, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            exit: exit_code::USAGE,
        }
    }

    /// Prints it and returns the exit code.
    pub(crate) fn report(self) -> u8 {
        fail(self.code, &self.message, self.exit)
    }

    /// [`Failure::report`], and with `json` the error object on stdout too.
    pub(crate) fn report_json(self, json: bool) -> u8 {
        if json {
            outln!(
                "{}",
                render::error_json(self.code, &self.message, self.exit)
            );
        }
        self.report()
    }
}

macro_rules! failure_from {
    ($($error:ty),*) => {$(
        impl From<$error> for Failure {
            fn from(e: $error) -> Self {
                Failure::usage(e.code(), e.to_string())
            }
        }
    )*};
}
failure_from!(
    airlock::policy::PolicyError,
    airlock::store::StoreError,
    airlock::approvals::ApprovalError,
    airlock::attest::AttestError,
    airlock::attest::KeyError,
    airlock::ConfigError,
    airlock::RegistryError,
    airlock::config::LockError
);

impl From<airlock::BuildError> for Failure {
    fn from(e: airlock::BuildError) -> Self {
        Failure::usage("host_build_failed", e.to_string())
    }
}

/// The policies from `--policies`, or the shipped ones.
pub(crate) fn load_policies(cli: &Cli) -> Result<PolicyEngine, Failure> {
    match &cli.policies {
        Some(dir) => Ok(PolicyEngine::from_dir(dir)?),
        None => Ok(PolicyEngine::embedded()),
    }
}

/// The state directory's database (created on first use). Refused when
/// the directory's server keeps its state in a shared database: only a
/// running replica reads that one.
pub(crate) fn open_state(cli: &Cli) -> Result<airlock::store::Store, Failure> {
    if let Some(database) = airlock::store::shared_marker(&cli.state_dir) {
        return Err(Failure::usage(
            "shared_store",
            format!(
                "{} keeps its journal and approvals in the shared database {database}, which only a running replica reads: run this through a replica's operator socket (start `airlock serve`, or point --socket at one)",
                cli.state_dir.display()
            ),
        ));
    }
    Ok(airlock::store::Store::in_state_dir(&cli.state_dir)?)
}

/// A host configured from the global flags. Its default limits (which also
/// bound `describe()` at load) stay the built-in ones; a command's limit flags
/// apply to the invocation it runs.
pub(crate) fn build_host(
    cli: &Cli,
    fuel_metering: bool,
    resolver: Option<Arc<dyn Resolver>>,
    vault: Option<airlock::vault::Vault>,
) -> Result<Host, Failure> {
    Ok(host_builder(cli, fuel_metering, resolver, vault)?.build()?)
}

/// The builder behind [`build_host`], for commands that set more.
pub(crate) fn host_builder(
    cli: &Cli,
    fuel_metering: bool,
    resolver: Option<Arc<dyn Resolver>>,
    vault: Option<airlock::vault::Vault>,
) -> Result<airlock::HostBuilder, Failure> {
    let mut builder = Host::builder()
        .fuel_metering(fuel_metering)
        .state_dir(&cli.state_dir)
        .policies(load_policies(cli)?)
        .protect(ProtectedKind::OperatorSocket, serve::socket(cli));
    if let Some(dir) = &cli.policies {
        builder = builder.protect(ProtectedKind::Policies, dir);
    }
    // The program itself: a tool that could rewrite it would run as the
    // server next time.
    if let Ok(exe) = std::env::current_exe() {
        builder = builder.protect(ProtectedKind::Program, exe);
    }
    if !cli.quiet {
        builder = builder.on_compile(progress::compile_spinner());
    }
    if let Some(resolver) = resolver {
        builder = builder.resolver(resolver);
    }
    // This binary is also the bridge that strict native tools reach the
    // egress proxy through (`airlock __bridge`).
    if let Ok(exe) = std::env::current_exe() {
        builder = builder.native_bridge(exe);
    }
    if let Some(vault) = vault {
        builder = builder.vault(vault);
    }
    if !cli.no_cache {
        builder = builder.cache_dir(cli.state_dir.join("cache"));
    }
    Ok(builder)
}

impl GrantSource {
    /// The configured tool, when `--config` and `--tool` are given.
    pub(crate) fn tool(&self) -> Result<Option<ToolConfig>, ConfigError> {
        let (Some(path), Some(name)) = (&self.config, &self.tool) else {
            return Ok(None);
        };
        let config = Config::from_file(path)?;
        match config.tool(name) {
            Some(tool) => Ok(Some(tool.clone())),
            None => Err(ConfigError::Invalid {
                origin: path.display().to_string(),
                line: 1,
                column: 1,
                message: format!(
                    "no tool named `{name}`; configured: {}",
                    config
                        .tools()
                        .iter()
                        .map(|t| t.name())
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            }),
        }
    }

    /// The network grant from `--grant` or `--config`/`--tool`; empty
    /// (nothing reachable) when neither is given.
    pub(crate) fn network_grant(&self) -> Result<NetworkGrant, ConfigError> {
        if let Some(path) = &self.grant {
            return NetworkGrant::from_file(path);
        }
        Ok(self
            .tool()?
            .map(|tool| tool.grants().network().clone())
            .unwrap_or_default())
    }
}

impl DnsArgs {
    /// Whether the flags change how names resolve.
    pub(crate) fn is_set(&self) -> bool {
        self.no_dns || !self.resolve.is_empty()
    }

    /// `--resolve` answers first, then the system's DNS unless `--no-dns`.
    pub(crate) fn resolver(&self) -> Arc<dyn Resolver> {
        let mut resolver = StaticResolver::new();
        for (host, ips) in &self.resolve {
            resolver = resolver.with(host, ips.iter().copied());
        }
        if !self.no_dns {
            resolver = resolver.with_fallback(Arc::new(SystemResolver::from_system()));
        }
        Arc::new(resolver)
    }
}
