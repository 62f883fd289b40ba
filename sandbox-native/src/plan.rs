//! [`Plan`]: what to run and under which confinement, the same for every
//! platform. Backends turn a plan into their mechanism (bubblewrap
//! arguments, an SBPL profile, Job Object limits).

use std::ffi::OsString;
use std::path::PathBuf;
use std::time::Duration;

/// The user a sandboxed tool runs as (`nobody`): bubblewrap maps it inside
/// its user namespace, and a host running as root drops to it.
pub const SANDBOX_UID: u32 = 65534;
/// Its group.
pub const SANDBOX_GID: u32 = 65534;

/// A path inside a read-write workspace that stays read-only, and cannot
/// be created, renamed or replaced either, because writing it makes code
/// run later, outside the sandbox.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Persistent {
    /// Relative to the workspace.
    pub path: &'static str,
    /// A directory (else a file), for the stand-in a missing one gets.
    pub dir: bool,
}

impl Persistent {
    const fn file(path: &'static str) -> Self {
        Self { path, dir: false }
    }

    const fn dir(path: &'static str) -> Self {
        Self { path, dir: true }
    }
}

/// The persistence paths: the whole `.git` (hooks, `core.fsmonitor` and
/// friends in its config run commands on the host), shell and session
/// start-up files, direnv's `.envrc`, editor task configs and start-up
/// files, a project's `.cargo` (its config names runners and linkers),
/// `.npmrc`, yarn's and pnpm's (`yarnPath`, `.pnpmfile.cjs`), mise's
/// tasks and hooks, commit-hook runners' configs (`pre-commit`, husky),
/// and,
/// for a workspace that is a home directory, `.ssh` (`authorized_keys`,
/// `config`'s `ProxyCommand`), `.config` (user systemd units, autostart
/// entries, many programs' hooks), `.local` (`.local/bin` is on `PATH`),
/// `.gitconfig`, and the credential helpers' configs of `.kube`, `.aws`
/// and `.docker` (each can name a command to run).
///
/// This is a list of the places known to run code later, not a proof that
/// nothing else does: a build file a user runs (a `Makefile`, a
/// `package.json` script) is the workspace's own content, and a nested
/// repository's `.git` below the top is not covered, and neither is
/// `rust-toolchain.toml` (its `path` names a toolchain to run; an empty
/// stand-in would break every `cargo` run in the project meanwhile). Grant
/// a workspace you would review before running anything from it.
pub const PERSISTENCE_PATHS: &[Persistent] = &[
    Persistent::dir(".git"),
    Persistent::file(".bashrc"),
    Persistent::file(".bash_profile"),
    Persistent::file(".profile"),
    Persistent::file(".zshrc"),
    Persistent::file(".zprofile"),
    Persistent::file(".envrc"),
    Persistent::dir(".vscode"),
    Persistent::dir(".idea"),
    Persistent::file(".bash_aliases"),
    Persistent::file(".bash_login"),
    Persistent::file(".bash_logout"),
    Persistent::file(".gitconfig"),
    Persistent::dir(".ssh"),
    Persistent::dir(".config"),
    Persistent::dir(".local"),
    Persistent::file(".zshenv"),
    Persistent::file(".zlogin"),
    Persistent::file(".zlogout"),
    Persistent::file(".xprofile"),
    Persistent::file(".xsessionrc"),
    Persistent::file(".pam_environment"),
    Persistent::file(".vimrc"),
    Persistent::dir(".emacs.d"),
    Persistent::file(".tmux.conf"),
    Persistent::dir(".cargo"),
    Persistent::file(".npmrc"),
    Persistent::file(".pre-commit-config.yaml"),
    Persistent::dir(".husky"),
    Persistent::file(".yarnrc.yml"),
    Persistent::file(".pnpmfile.cjs"),
    Persistent::file("mise.toml"),
    Persistent::file(".mise.toml"),
    Persistent::dir(".kube"),
    Persistent::dir(".aws"),
    Persistent::dir(".docker"),
];

/// How a mount may be used.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Read only.
    ReadOnly,
    /// Read and write (known persistence paths inside stay read-only).
    ReadWrite,
}

/// A host directory made visible inside the sandbox.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Mount {
    /// The host path: canonical (no symbolic link on it). The Linux
    /// backend opens it without following links and binds what it opened;
    /// a link that appeared since refuses the run (`grant_changed`).
    pub host: PathBuf,
    /// Where it appears inside the sandbox.
    pub sandbox: PathBuf,
    /// Read-only or read-write.
    pub access: Access,
}

/// A host path inside a mount that the sandbox must not see: one of the
/// host's own files (its state directory, operator socket, configuration).
/// Backends cover it after the mounts: an empty, inaccessible directory or
/// an empty read-only file, so nothing in it can be read, listed, written,
/// replaced or connected to.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Hidden {
    /// The host path (canonical).
    pub host: PathBuf,
    /// Where a mount shows it inside the sandbox.
    pub sandbox: PathBuf,
    /// A directory (covered by an empty directory); else a file or socket
    /// (covered by an empty file).
    pub dir: bool,
}

/// The tool's network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NetworkMode {
    /// No network at all: an empty network namespace.
    None,
    /// An empty network namespace whose only way out is the host's egress
    /// proxy: the `airlock-bridge` program (bind-mounted in) runs first
    /// inside the sandbox, listens on its loopback and carries connections
    /// to the proxy over the inherited [`channel`](crate::channel); the
    /// tool gets `HTTP_PROXY` and `HTTPS_PROXY` pointing at it.
    Strict {
        /// The sandbox's end of the proxy's channel: a descriptor of this
        /// process, open while the sandbox runs. The sandbox inherits it
        /// under the same number.
        channel_fd: i32,
        /// The `airlock-bridge` executable on the host.
        bridge: PathBuf,
        /// The certificates (a PEM file on the host) the tool must trust
        /// for the TLS the proxy terminates: shown read-only inside (at
        /// [`TRUST_IN_SANDBOX`] on Linux) and named by every variable of
        /// [`TRUST_VARIABLES`]. `None`: the proxy terminates no TLS.
        trust: Option<PathBuf>,
    },
}

/// Where a Linux sandbox sees the proxy's trust bundle.
pub const TRUST_IN_SANDBOX: &str = "/run/airlock/trust.pem";

/// The variables common runtimes read a CA bundle from, each set to the
/// trust bundle: OpenSSL and what links it (Python's `ssl` and `httpx`,
/// Ruby, PHP, Go on Linux, rustls-native-certs), Python `requests`, Node,
/// curl, git, Deno, the AWS SDKs and pip.
pub const TRUST_VARIABLES: [&str; 8] = [
    "SSL_CERT_FILE",
    "REQUESTS_CA_BUNDLE",
    "NODE_EXTRA_CA_CERTS",
    "CURL_CA_BUNDLE",
    "GIT_SSL_CAINFO",
    "DENO_CERT",
    "AWS_CA_BUNDLE",
    "PIP_CERT",
];

/// Resource limits, applied with `setrlimit` before the program starts and
/// by the runner (wall clock, output).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProcessLimits {
    /// CPU time (RLIMIT_CPU), seconds.
    pub cpu_seconds: u64,
    /// Address space (RLIMIT_AS), bytes.
    pub address_space_bytes: u64,
    /// Processes and threads of the sandbox's user (RLIMIT_NPROC).
    pub processes: u64,
    /// Largest file the tool may write (RLIMIT_FSIZE), bytes.
    pub file_size_bytes: u64,
    /// Open file descriptors (RLIMIT_NOFILE).
    pub open_files: u64,
    /// Wall-clock time before the whole sandbox is killed.
    pub wall_clock: Duration,
    /// Standard output kept (more is counted and dropped); also for stderr.
    pub output_bytes: usize,
}

/// The defaults: enough for a CLI tool, small enough that a fork bomb or a
/// runaway writer stops quickly.
pub const DEFAULT_LIMITS: ProcessLimits = ProcessLimits {
    cpu_seconds: 10,
    address_space_bytes: 1 << 30,
    processes: 64,
    file_size_bytes: 64 << 20,
    open_files: 256,
    wall_clock: Duration::from_secs(30),
    output_bytes: 1 << 20,
};

impl Default for ProcessLimits {
    fn default() -> Self {
        DEFAULT_LIMITS
    }
}

/// One native tool run: program, arguments, an explicit environment
/// (nothing is inherited), working directory, mounts, limits, network.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Plan {
    /// The program, as a path inside the sandbox.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<OsString>,
    /// Its whole environment.
    pub env: Vec<(String, String)>,
    /// Working directory inside the sandbox (default `/`).
    pub cwd: Option<PathBuf>,
    /// Host directories made visible.
    pub mounts: Vec<Mount>,
    /// Symbolic links made inside the sandbox (where, what it points to):
    /// a program's links that no mount shows, made from what they read when
    /// checked, so nothing on the host is followed at run time.
    pub links: Vec<(PathBuf, PathBuf)>,
    /// Empty directories made inside the sandbox before any mount: where a
    /// path written with `..` passes (`/a/b/../c` needs `/a/b` to walk).
    pub dirs: Vec<PathBuf>,
    /// Host paths inside the mounts that stay hidden.
    pub hidden: Vec<Hidden>,
    /// Directories between a writable mount and a hidden path, bound over
    /// themselves so that, as mount points, none of them can be renamed
    /// (which would carry a hidden path out from under its cover).
    pub pins: Vec<Mount>,
    /// Resource limits.
    pub limits: ProcessLimits,
    /// The network.
    pub network: NetworkMode,
    /// Ends the run early when fired (like the wall clock, reported as
    /// [`Exit::Cancelled`](crate::Exit::Cancelled)).
    pub cancel: Option<crate::Cancel>,
}

impl Plan {
    /// Runs `program` with nothing granted: no mounts beyond the system's
    /// read-only directories, no environment, no network, default limits.
    pub fn new(program: impl Into<PathBuf>) -> Self {
        Self {
            program: program.into(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: None,
            mounts: Vec::new(),
            links: Vec::new(),
            dirs: Vec::new(),
            hidden: Vec::new(),
            pins: Vec::new(),
            limits: ProcessLimits::default(),
            network: NetworkMode::None,
            cancel: None,
        }
    }

    /// Adds arguments.
    pub fn args<I, S>(mut self, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<OsString>,
    {
        self.args.extend(args.into_iter().map(Into::into));
        self
    }

    /// Sets one environment variable.
    pub fn env(mut self, key: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.push((key.into(), value.into()));
        self
    }

    /// Adds a mount.
    pub fn mount(
        mut self,
        host: impl Into<PathBuf>,
        sandbox: impl Into<PathBuf>,
        access: Access,
    ) -> Self {
        self.mounts.push(Mount {
            host: host.into(),
            sandbox: sandbox.into(),
            access,
        });
        self
    }

    /// Hides `host`, which a mount shows at `sandbox`, from the sandbox.
    pub fn hide(
        mut self,
        host: impl Into<PathBuf>,
        sandbox: impl Into<PathBuf>,
        dir: bool,
    ) -> Self {
        self.hidden.push(Hidden {
            host: host.into(),
            sandbox: sandbox.into(),
            dir,
        });
        self
    }

    /// Makes a symbolic link at `at` inside the sandbox, pointing to
    /// `target`.
    pub fn link(mut self, at: impl Into<PathBuf>, target: impl Into<PathBuf>) -> Self {
        self.links.push((at.into(), target.into()));
        self
    }

    /// Makes an empty directory at `at` inside the sandbox (on Linux; a
    /// macOS sandbox sees the host's own paths).
    pub fn dir(mut self, at: impl Into<PathBuf>) -> Self {
        self.dirs.push(at.into());
        self
    }

    /// Binds `host` (a directory inside a mount) over itself at `sandbox`,
    /// so that it cannot be renamed from inside.
    pub fn pin(
        mut self,
        host: impl Into<PathBuf>,
        sandbox: impl Into<PathBuf>,
        access: Access,
    ) -> Self {
        self.pins.push(Mount {
            host: host.into(),
            sandbox: sandbox.into(),
            access,
        });
        self
    }

    /// Sets the working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        self.cwd = Some(dir.into());
        self
    }

    /// Sets the limits.
    pub fn limits(mut self, limits: ProcessLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Lets `cancel` end the run early.
    pub fn cancel_on(mut self, cancel: crate::Cancel) -> Self {
        self.cancel = Some(cancel);
        self
    }
}
