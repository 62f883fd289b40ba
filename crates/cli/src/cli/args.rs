//! Command-line flags, parsed and validated; nothing here touches a component.

mod values;

use airlock::approvals::OperatorDecision;
use airlock::policy::Principal;
use airlock::{DirGrant, Limits};
use clap::{Args, Parser, Subcommand};
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;
use values::{
    parse_allow, parse_dir_ro, parse_dir_rw, parse_duration, parse_principal, parse_resolve,
    parse_size,
};

/// Run AI-agent tools as WASI 0.2 components behind a deny-by-default host.
#[derive(Debug, Parser)]
#[command(name = "airlock", version, about, after_help = EXIT_CODES)]
pub struct Cli {
    /// Where airlock keeps its state (the compile cache lives in `cache/`).
    /// The default is the user's XDG state directory, outside any project a
    /// tool may be granted.
    #[arg(
        long,
        global = true,
        env = "AIRLOCK_STATE_DIR",
        default_value_os_t = default_state_dir()
    )]
    pub state_dir: PathBuf,

    /// Compile every time instead of using the on-disk compile cache.
    #[arg(long, global = true)]
    pub no_cache: bool,

    /// Cedar policy directory (`*.cedar`, optional `schema.cedarschema` and
    /// `entities.json`); default: the shipped policies.
    #[arg(long, global = true, env = "AIRLOCK_POLICIES", value_name = "DIR")]
    pub policies: Option<PathBuf>,

    /// The operator socket of a running `airlock serve` (default: the one
    /// in the state directory). Operator commands (`approvals`, `agents`,
    /// `reload`) go through it when a server answers there.
    #[arg(long, global = true, env = "AIRLOCK_SOCKET", value_name = "PATH")]
    pub socket: Option<PathBuf>,

    /// Log more (repeat for more detail); `RUST_LOG` overrides.
    #[arg(short, long, global = true, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// No progress indicators or prompts' hints on stderr.
    #[arg(short, long, global = true)]
    pub quiet: bool,

    /// When to colour help, errors and logs (`auto`: on a terminal, unless
    /// `NO_COLOR` is set).
    #[arg(long, global = true, value_enum, default_value_t = ColorArg::Auto, value_name = "WHEN")]
    pub color: ColorArg,

    #[command(subcommand)]
    pub command: Command,
}

/// `$XDG_STATE_HOME/airlock`, else `~/.local/state/airlock`: a per-user
/// place no project directory contains, so granting a tool `.` never
/// grants it airlock's keys, journal or operator socket. Empty when
/// neither variable gives an absolute path (then `--state-dir` is needed).
pub fn default_state_dir() -> PathBuf {
    let absolute = |name: &str| {
        std::env::var_os(name)
            .map(PathBuf::from)
            .filter(|p| p.is_absolute())
    };
    absolute("XDG_STATE_HOME")
        .or_else(|| absolute("HOME").map(|home| home.join(".local/state")))
        .map(|base| base.join("airlock"))
        .unwrap_or_default()
}

pub const EXIT_CODES: &str = "\
Exit codes:
  0  the tool returned output
  1  the tool failed: returned an error, crashed (trap), exited, or returned non-JSON
  2  usage or host error: bad arguments or input, unreadable or invalid component
  3  denied: by policy, by an operator, or the component imports something airlock does not provide
  4  a limit ended the invocation (deadline, fuel, memory, table, stack, input, output)
  5  the request waits for a human approval (the approval id is printed)";

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Serve the configured tools to AI agents over MCP (stdio or HTTP).
    #[command(
        after_help = "Examples:\n  airlock serve --config airlock.toml\n  airlock serve --config airlock.toml --listen 127.0.0.1:7323 --console"
    )]
    Serve(Box<super::serve::ServeArgs>),
    /// Register agents and their bearer tokens (the operator's side).
    #[command(subcommand)]
    Agents(super::serve::AgentsCommand),
    /// The hosted MCP servers of the running server: list, status, restart.
    #[command(subcommand)]
    Servers(super::servers::ServersCommand),
    /// The replicas of a shared store and their signed statements; this
    /// replica's key, to register under `[fleet.replicas]`.
    #[command(subcommand)]
    Replicas(super::replicas::ReplicasCommand),
    /// Pair browsers with the operator console, list and revoke them.
    #[command(subcommand)]
    Devices(super::devices::DevicesCommand),
    /// Make the running server re-read its configuration and policies.
    #[command(after_help = "Examples:\n  airlock reload")]
    Reload,
    /// What the running server serves, and how many calls it runs.
    #[command(after_help = "Examples:\n  airlock status\n  airlock status --json")]
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Run a tool component once and print its output.
    #[command(
        after_help = "Examples:\n  airlock run tool.wasm --input '{\"q\": 1}'\n  echo '\"hi\"' | airlock run --config airlock.toml --tool shout"
    )]
    Run(Box<RunArgs>),
    /// Start a tool project in Rust, Python, JavaScript, C or Go.
    #[command(
        after_help = "Examples:\n  airlock new --lang python weather\n  airlock new --lang js --world network fetch-page"
    )]
    New(super::new::NewArgs),
    /// Show what a component is: digest, imports, exports, world, capabilities.
    #[command(
        after_help = "Examples:\n  airlock inspect tool.wasm\n  airlock inspect --json tool.wasm"
    )]
    Inspect(InspectArgs),
    /// Fetch a component from an OCI registry into the state directory,
    /// by digest (the tag is resolved once).
    #[command(
        after_help = "Examples:\n  airlock pull oci://ghcr.io/acme/echo:1.0\n  airlock pull --config airlock.toml --json oci://127.0.0.1:5000/tools/echo@sha256:…"
    )]
    Pull(PullArgs),
    /// Pin every `oci://` tool of a configuration to a digest in
    /// `airlock.lock` beside it; `--update [TOOL]` moves pins.
    #[command(
        after_help = "Examples:\n  airlock lock --config airlock.toml\n  airlock lock --config airlock.toml --update echo"
    )]
    Lock(LockArgs),
    /// Explain egress decisions without sending anything.
    #[command(subcommand)]
    Egress(EgressCommand),
    /// Check and explain Cedar policies.
    #[command(subcommand)]
    Policy(PolicyCommand),
    /// List, show and decide human approvals (the operator's side).
    #[command(subcommand)]
    Approvals(ApprovalsCommand),
    /// Verify and read the tamper-evident journal.
    #[command(subcommand)]
    Journal(JournalCommand),
    /// Verify or export the proof of one execution.
    #[command(subcommand)]
    Attest(AttestCommand),
    /// Store secrets the host injects into tools' requests (tools never see them).
    Vault(VaultArgs),
    /// The versions this build is made of (wasmtime, Cedar, rmcp, the tool
    /// interface and WASI it speaks).
    #[command(after_help = "Examples:\n  airlock version\n  airlock version --json")]
    Version {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Print a shell completion script.
    #[command(
        after_help = "Examples:\n  airlock completions bash > /etc/bash_completion.d/airlock\n  airlock completions zsh > \"${fpath[1]}/_airlock\""
    )]
    Completions {
        /// The shell.
        #[arg(value_enum)]
        shell: clap_complete::Shell,
    },
    /// Print the manual page (roff), or write one page per command.
    #[command(
        after_help = "Examples:\n  airlock man | man -l -\n  airlock man --dir /usr/local/share/man/man1"
    )]
    Man {
        /// Write airlock.1 and airlock-COMMAND.1 pages into DIR.
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
    },
}

/// `--color`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorArg {
    /// On a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

impl ColorArg {
    /// `--color WHEN` or `--color=WHEN` among `args`, before clap parses
    /// them (so help and errors are coloured as asked too).
    pub fn scan(args: &[std::ffi::OsString]) -> Self {
        let mut words = args.iter().filter_map(|a| a.to_str());
        let mut found = ColorArg::Auto;
        while let Some(word) = words.next() {
            let value = match word.strip_prefix("--color") {
                Some("") => words.next(),
                Some(rest) => rest.strip_prefix('='),
                None => None,
            };
            found = match value {
                Some("always") => ColorArg::Always,
                Some("never") => ColorArg::Never,
                Some(_) => ColorArg::Auto,
                None => found,
            };
        }
        found
    }

    /// clap's setting for this choice.
    pub fn clap(self) -> clap::ColorChoice {
        match self {
            ColorArg::Auto => clap::ColorChoice::Auto,
            ColorArg::Always => clap::ColorChoice::Always,
            ColorArg::Never => clap::ColorChoice::Never,
        }
    }

    /// Whether logs on stderr get ANSI colours.
    pub fn for_stderr(self) -> bool {
        match self {
            ColorArg::Always => true,
            ColorArg::Never => false,
            ColorArg::Auto => {
                std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
                    && std::io::IsTerminal::is_terminal(&std::io::stderr())
            }
        }
    }
}

/// Where a new vault keeps its master key.
#[derive(Clone, Copy, Debug, clap::ValueEnum)]
pub enum BackendArg {
    /// The OS credential store (Keychain, Credential Manager, Secret
    /// Service, or the Linux kernel keyring, which a reboot empties).
    Keyring,
    /// A passphrase (Argon2id) from AIRLOCK_VAULT_PASSPHRASE or a prompt.
    Passphrase,
}

/// `airlock vault`: which vault, and what to do with it.
#[derive(Debug, clap::Args)]
pub struct VaultArgs {
    /// The server's configuration: with `store = "postgres://…"` the
    /// vault is the one its replicas share (passphrase only).
    #[arg(long, global = true, value_name = "FILE")]
    pub config: Option<PathBuf>,
    #[command(subcommand)]
    pub command: VaultCommand,
}

#[derive(Debug, Subcommand)]
pub enum VaultCommand {
    /// Create the vault (`set` creates one too: keyring, or passphrase when
    /// AIRLOCK_VAULT_PASSPHRASE is set).
    #[command(
        after_help = "Examples:\n  airlock vault init\n  AIRLOCK_VAULT_PASSPHRASE=... airlock vault init --backend passphrase"
    )]
    Init {
        /// Where the master key lives.
        #[arg(long, value_enum, default_value = "keyring")]
        backend: BackendArg,
    },
    /// Store a secret; the value is read from stdin or a no-echo prompt.
    #[command(
        after_help = "Examples:\n  echo \"$KEY\" | airlock vault set github\n  airlock vault set github --scope tool:fetch"
    )]
    Set {
        /// The secret's name, as bindings refer to it.
        name: String,
        /// Who may use it: `global`, `tool:NAME` or `principal:KIND::"ID"`.
        #[arg(long, default_value = "global")]
        scope: String,
        /// Refused: values never come from the command line.
        #[arg(hide = true)]
        value_on_command_line: Option<String>,
    },
    /// Names, scopes and creation times (never values).
    #[command(after_help = "Examples:\n  airlock vault list\n  airlock vault list --json")]
    List {
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Remove a secret.
    #[command(after_help = "Examples:\n  airlock vault rm github")]
    Rm {
        /// The secret's name.
        name: String,
    },
    /// Where the master key lives and whether it is reachable.
    #[command(after_help = "Examples:\n  airlock vault status")]
    Status {
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Replace the master key and re-wrap every secret (safe to rerun).
    #[command(after_help = "Examples:\n  airlock vault rotate-master-key")]
    RotateMasterKey,
}

#[derive(Debug, Subcommand)]
pub enum PolicyCommand {
    /// Parse and validate the policies against the schema; print their ids.
    #[command(
        after_help = "Examples:\n  airlock policy validate\n  airlock --policies ./policies policy validate"
    )]
    Validate,
    /// Show the decision for one request: decision, deciding policies, and
    /// whether an approval could lift a deny.
    #[command(
        after_help = "Examples:\n  airlock policy explain --principal 'Agent::\"claude\"' --action tool.execute --tool tool.wasm"
    )]
    Explain(ExplainArgs),
}

#[derive(Debug, Args)]
pub struct ExplainArgs {
    /// The principal, e.g. `Agent::"claude"`.
    #[arg(long, value_parser = parse_principal)]
    pub principal: Principal,
    /// The action, e.g. `tool.execute`.
    #[arg(long)]
    pub action: String,
    /// The tool: a component file, or a tool name in --config.
    #[arg(long)]
    pub tool: String,
    /// Operator configuration (to find --tool by name, and its `sensitive` mark).
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// The request context as JSON (merged over empty defaults), e.g. `{"approved": true}`.
    #[arg(long, value_name = "JSON")]
    pub context: Option<String>,
    /// For `http.request`: the destination URL.
    #[arg(long)]
    pub url: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum ApprovalsCommand {
    /// Pending approvals (all with --all), newest first.
    #[command(
        after_help = "Examples:\n  airlock approvals list\n  airlock approvals list --all --json"
    )]
    List {
        /// Include decided ones.
        #[arg(long)]
        all: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// One approval in full, with its whole input and the input's SHA-256.
    #[command(
        after_help = "Examples:\n  airlock approvals show 01M80THDTA5Z2C744M3DJXW3AV\n  airlock approvals show 01M80THDTA5Z2C744M3DJXW3AV --json"
    )]
    Show {
        /// Its id.
        id: String,
        /// Kept for scripts: the whole input is always printed now (it
        /// once printed only the summary without `--full`).
        #[arg(long)]
        full: bool,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// Decide a pending approval.
    #[command(
        after_help = "Examples:\n  airlock approvals decide 01M80THDTA5Z2C744M3DJXW3AV --allow once\n  airlock approvals decide 01M80THDTA5Z2C744M3DJXW3AV --deny \"not this host\""
    )]
    Decide(DecideArgs),
}

#[derive(Debug, Args)]
#[command(group = clap::ArgGroup::new("decision").required(true).args(["allow", "deny"]))]
pub struct DecideArgs {
    /// The approval id.
    pub id: String,
    /// `once` (this exact request), `session` (this principal, session and
    /// tool build) or `until=DURATION` (this principal and tool build, e.g. `until=2h`).
    #[arg(long, value_name = "SCOPE", value_parser = parse_allow)]
    pub allow: Option<OperatorDecision>,
    /// Deny, with the reason the caller will see.
    #[arg(long, value_name = "REASON")]
    pub deny: Option<String>,
}

#[derive(Debug, Subcommand)]
pub enum JournalCommand {
    /// Check the hash chain and every signed tree head; name the first bad
    /// entry if any.
    #[command(
        after_help = "Examples:\n  airlock journal verify\n  airlock journal verify --key kept/host.pub --since kept/head.json"
    )]
    Verify {
        /// The public key to trust (hex, as in `host.pub`); default: the
        /// state directory's `host.pub`, which proves nothing against whoever
        /// can write that directory: keep a copy elsewhere and pass it here.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// A head exported earlier (`journal head --export`): prove the
        /// journal is an append-only extension of it (catches truncation
        /// and rewrites by someone holding the key).
        #[arg(long, value_name = "FILE")]
        since: Option<PathBuf>,
        /// Print JSON.
        #[arg(long)]
        json: bool,
    },
    /// The last entries.
    #[command(
        after_help = "Examples:\n  airlock journal tail -n 20\n  airlock journal tail --json"
    )]
    Tail {
        /// How many.
        #[arg(short = 'n', default_value_t = 10)]
        count: usize,
        /// Print JSON (one entry per line).
        #[arg(long)]
        json: bool,
    },
    /// The newest signed tree head (JSON), to keep off this machine.
    #[command(
        after_help = "Examples:\n  airlock journal head\n  airlock journal head --export kept/head.json"
    )]
    Head {
        /// Write it to FILE instead of printing it.
        #[arg(long, value_name = "FILE")]
        export: Option<PathBuf>,
    },
}

#[derive(Debug, Subcommand)]
pub enum AttestCommand {
    /// Verify an attestation by id (from the journal) or a proof file from
    /// `attest export` (offline): entry hash, inclusion in a signed tree
    /// head, the head's signature, and (by id) the egress digest.
    #[command(
        after_help = "Examples:\n  airlock attest verify 01M80THDTBX3NWJCJXCCDF5TF7 --output out.json\n  airlock attest verify proof.json --key kept/host.pub"
    )]
    Verify {
        /// An attestation id, or a proof file.
        target: String,
        /// The public key to trust (hex, as in `host.pub`); default: the
        /// state directory's `host.pub`.
        #[arg(long, value_name = "FILE")]
        key: Option<PathBuf>,
        /// Check the input's digest against this file.
        #[arg(long, value_name = "FILE")]
        input: Option<PathBuf>,
        /// Check the output's digest against this file.
        #[arg(long, value_name = "FILE")]
        output: Option<PathBuf>,
    },
    /// Print a self-contained proof of one attestation (JSON): its entry,
    /// an inclusion proof, and the signed tree head it leads to.
    #[command(
        after_help = "Examples:\n  airlock attest export 01M80THDTBX3NWJCJXCCDF5TF7 > proof.json"
    )]
    Export {
        /// The attestation id.
        id: String,
    },
}

#[derive(Debug, Subcommand)]
pub enum EgressCommand {
    /// Decide whether a URL is allowed, as the hook would at run time
    /// (request budget, grant, resolution, address classes, Cedar
    /// `http.request`), and print JSON: {"decision", "reason", "host",
    /// "port", "addresses", "rule", "message", "principal", "tool"}.
    /// Opens no connection. Exit 0 allow, 3 deny, 2 usage error.
    #[command(
        after_help = "Examples:\n  airlock egress check --grant network.toml https://api.example.com/\n  airlock egress check --config airlock.toml --tool fetch --principal 'Agent::\"claude\"' https://api.example.com/v1"
    )]
    Check(Box<EgressCheckArgs>),
}

#[derive(Debug, Args)]
pub struct EgressCheckArgs {
    /// The URL a tool would fetch.
    pub url: String,

    #[command(flatten)]
    pub grant: GrantSource,

    #[command(flatten)]
    pub dns: DnsArgs,

    /// Who the tool runs for, as Cedar sees it, e.g. `Agent::"claude"`
    /// (default: `User::"$USER"`).
    #[arg(long, value_parser = parse_principal)]
    pub principal: Option<Principal>,
}

/// Where a tool's network grant comes from.
#[derive(Debug, Args)]
pub struct GrantSource {
    /// Operator configuration file (with --tool).
    #[arg(long, value_name = "FILE", requires = "tool", conflicts_with = "grant")]
    pub config: Option<PathBuf>,

    /// The tool's name in --config.
    #[arg(long, value_name = "NAME", requires = "config")]
    pub tool: Option<String>,

    /// A grant file: the keys of a tool's `[tools.network]` table at top level.
    #[arg(long, value_name = "FILE")]
    pub grant: Option<PathBuf>,
}

#[derive(Debug, Args)]
pub struct DnsArgs {
    /// Answer HOST with these addresses instead of asking DNS (repeatable).
    #[arg(long, value_name = "HOST=IP[,IP...]", value_parser = parse_resolve)]
    pub resolve: Vec<(String, Vec<IpAddr>)>,

    /// Never ask DNS: names not given by --resolve fail with `dns_failed`.
    #[arg(long)]
    pub no_dns: bool,
}

#[derive(Debug, Args)]
pub struct RunArgs {
    /// The tool component (.wasm); optional with --config/--tool when the
    /// tool's entry names its component.
    #[arg(required_unless_present = "tool")]
    pub component: Option<PathBuf>,

    /// Input JSON. Without --input or --input-file, read from stdin.
    #[arg(long, conflicts_with = "input_file")]
    pub input: Option<String>,

    /// Read the input JSON from a file (`-` for stdin).
    #[arg(long, value_name = "PATH")]
    pub input_file: Option<PathBuf>,

    /// Print a JSON result object (output, reason code, duration, limits).
    #[arg(long)]
    pub json: bool,

    /// Refuse unless `airlock.lock` beside --config pins every `oci://`
    /// tool as configured (the locked digest is what loads).
    #[arg(long, requires = "config")]
    pub locked: bool,

    #[command(flatten)]
    pub limits: LimitArgs,

    #[command(flatten)]
    pub grants: GrantArgs,

    #[command(flatten)]
    pub source: GrantSource,

    #[command(flatten)]
    pub dns: DnsArgs,

    /// Who is asking, e.g. `Agent::"claude"` (default: `User::"$USER"`).
    #[arg(long, value_parser = parse_principal)]
    pub principal: Option<Principal>,

    /// The session (session-scoped approvals apply within it).
    #[arg(long, default_value = "")]
    pub session: String,

    /// The agent run this call belongs to (Cedar `context.run_id`).
    #[arg(long, value_name = "ID", default_value = "")]
    pub run_id: String,

    /// The device the request came from (Cedar `context.device_id`).
    #[arg(long, value_name = "ID", default_value = "")]
    pub device: String,

    /// The channel the request came through (Cedar `context.channel`).
    #[arg(long, default_value = "")]
    pub channel: String,

    /// Run under this (decided) approval; refused if it does not cover the request.
    #[arg(long, value_name = "ID")]
    pub approval: Option<String>,

    /// If an approval is needed, wait this long for an operator's decision.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub wait: Option<Duration>,
}

#[derive(Debug, Args)]
pub struct LimitArgs {
    /// Wall-clock deadline, e.g. `500ms`, `10s`.
    #[arg(long, value_name = "DURATION", value_parser = parse_duration)]
    pub timeout: Option<Duration>,

    /// Instruction budget (enables fuel metering).
    #[arg(long, value_name = "UNITS")]
    pub fuel: Option<u64>,

    /// Linear memory cap, e.g. `64MiB`.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub memory: Option<u64>,

    /// Table elements cap.
    #[arg(long, value_name = "COUNT")]
    pub max_table_elements: Option<u64>,

    /// Largest accepted input, e.g. `1MiB`.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_input: Option<u64>,

    /// Largest accepted output, e.g. `1MiB`.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_output: Option<u64>,

    /// Bytes of guest stdout and of stderr kept, e.g. `64KiB`.
    #[arg(long, value_name = "SIZE", value_parser = parse_size)]
    pub max_stdio: Option<u64>,
}

impl LimitArgs {
    /// `base` with every given flag applied.
    pub fn to_limits(&self, base: Limits) -> Result<Limits, String> {
        let mut limits = base;
        if let Some(timeout) = self.timeout {
            limits.timeout = timeout;
        }
        if self.fuel.is_some() {
            limits.fuel = self.fuel;
        }
        if let Some(memory) = self.memory {
            limits.max_memory_bytes = memory;
        }
        if let Some(count) = self.max_table_elements {
            limits.max_table_elements = count;
        }
        let usize_of = |flag: &str, value: u64| {
            usize::try_from(value)
                .map_err(|_| format!("--{flag} {value} is too large for this machine"))
        };
        if let Some(size) = self.max_input {
            limits.max_input_bytes = usize_of("max-input", size)?;
        }
        if let Some(size) = self.max_output {
            limits.max_output_bytes = usize_of("max-output", size)?;
        }
        if let Some(size) = self.max_stdio {
            limits.max_stdio_bytes = usize_of("max-stdio", size)?;
        }
        Ok(limits)
    }
}

#[derive(Debug, Args)]
pub struct GrantArgs {
    /// Grant a host directory read-only, as `HOST::GUEST` (e.g. `./data::/data`).
    #[arg(long = "dir", value_name = "HOST::GUEST", value_parser = parse_dir_ro)]
    pub dirs_ro: Vec<DirGrant>,

    /// Grant a host directory read-write, as `HOST::GUEST`.
    #[arg(long = "dir-rw", value_name = "HOST::GUEST", value_parser = parse_dir_rw)]
    pub dirs_rw: Vec<DirGrant>,
}

#[derive(Debug, Args)]
pub struct LockArgs {
    /// The configuration whose tools to pin; the lockfile is written
    /// beside it.
    #[arg(long, value_name = "FILE", default_value = "airlock.toml")]
    pub config: PathBuf,

    /// Resolve TOOL again (every tool without a name) and move its pin.
    #[arg(long, value_name = "TOOL", num_args = 0..=1)]
    pub update: Option<Option<String>>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct PullArgs {
    /// `oci://REGISTRY/REPOSITORY:TAG` or `…@sha256:DIGEST`.
    pub reference: String,

    /// Sign in as this configuration's `[registries]` tables say.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[derive(Debug, Args)]
pub struct InspectArgs {
    /// The component (.wasm), or `oci://…` to pull and inspect it.
    pub component: PathBuf,

    /// For `oci://…`: sign in, and require the signature, as this
    /// configuration's `[registries]` tables say.
    #[arg(long, value_name = "FILE")]
    pub config: Option<PathBuf>,

    /// Print JSON instead of text.
    #[arg(long)]
    pub json: bool,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cli_definition_is_consistent() {
        use clap::CommandFactory;
        Cli::command().debug_assert();
    }
}
