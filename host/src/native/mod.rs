//! Native tools: programs that cannot be WASI components, run in the
//! platform's sandbox (`airlock-sandbox`) under the same policies,
//! approvals, egress decision, journal and attestations as components.
//!
//! A native tool reads its JSON input on stdin and writes its JSON output on
//! stdout. In `strict` network mode its only way out is the egress proxy: the
//! same check as `wasi:http` (grant, one resolution, every address
//! classified, Cedar), then the pinned address.

mod config;
mod digested;
mod executor;
mod run;
mod trust;

pub(crate) use config::{RawLimits, RawNative, limits as parse_limits, path as config_path};
pub(crate) use digested::Digested;
pub use digested::ProgramChanged;
pub use digested::file_sha256;
pub(crate) use run::{Granted, Visible, base_plan, listed_paths};
pub(crate) use trust::TrustFile;

use crate::approvals::GrantBinding;
use crate::grants::Grants;
use crate::kernel::Kernel;
use crate::limits::Limits;
use crate::policy::ToolFacts;
use crate::protected::{ProtectedError, ProtectedPaths};
use crate::vocabulary::{Capability, ExecutorKind, World};
use airlock_sandbox::{Backend, Plan};
use run::plan_for;
use std::path::{Path, PathBuf};

/// How a native tool is confined.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Tier {
    /// The platform sandbox (bubblewrap on Linux).
    Sandbox,
    /// No sandbox at all: only where Cedar permits `process.exec` of an
    /// unsandboxed program, and always after a human approval.
    None,
}

/// The network of a native tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NativeNetwork {
    /// Nothing.
    None,
    /// Only through airlock's egress proxy, under the tool's network grant.
    Strict,
}

/// What an operator configures for a native tool.
#[derive(Clone, Debug)]
pub struct NativeSpec {
    /// The executable on the host.
    pub program: PathBuf,
    /// Its arguments.
    pub args: Vec<String>,
    /// Sandbox or none.
    pub tier: Tier,
    /// Network mode.
    pub network: NativeNetwork,
    /// Host directories visible read-only, at the same path inside.
    pub fs_read: Vec<PathBuf>,
    /// Host directories visible read-write (persistence paths stay read-only).
    pub fs_write: Vec<PathBuf>,
    /// Process limits (CPU, memory, processes, files, wall clock, output).
    pub limits: airlock_sandbox::ProcessLimits,
    /// A granted directory may contain airlock's own files, which the
    /// sandbox then hides (`hide_airlock_files = true`); otherwise such a
    /// grant is refused at load.
    pub hide_airlock_files: bool,
}

/// A loaded native tool.
#[derive(Clone, Debug)]
pub struct NativeTool {
    facts: ToolFacts,
    spec: NativeSpec,
    grants: Grants,
    backend: Option<Backend>,
    protected: ProtectedPaths,
    /// The program as it was digested, checked again before every run.
    digested: Digested,
    /// The bridge program a `strict` run starts inside its sandbox.
    bridge: Option<PathBuf>,
}

impl NativeTool {
    /// What an approval of this tool binds: its grants, and the program,
    /// arguments, tier, network mode, mounts and limits it runs with (the
    /// program's digest is the tool's own). Another `args` or mount list
    /// needs a new approval.
    pub fn binding(&self) -> GrantBinding {
        let spec = &self.spec;
        let parts = ProgramBinding {
            program: format!("program {}", spec.program.display()),
            args: &spec.args,
            how: vec![
                format!("tier {:?}", spec.tier),
                format!("network {:?}", spec.network),
            ],
            fs_read: &spec.fs_read,
            fs_write: &spec.fs_write,
            limits: &spec.limits,
            hide_airlock_files: spec.hide_airlock_files,
        }
        .parts(&self.grants);
        let summary = format!(
            "run {} {:?} (tier {:?}, network {:?}, read [{}], write [{}]); {}",
            spec.program.display(),
            spec.args,
            spec.tier,
            spec.network,
            listed_paths(&spec.fs_read),
            listed_paths(&spec.fs_write),
            self.grants.summary()
        );
        GrantBinding::new(summary, parts)
    }

    /// What policies see.
    pub fn facts(&self) -> &ToolFacts {
        &self.facts
    }

    /// Whether the tool runs under a sandbox that confines its files and
    /// network. A Job Object (Windows) only limits resources, so a tool under
    /// it is treated like `tier = "none"`: a policy and an approval.
    pub fn sandboxed(&self) -> bool {
        self.backend
            .as_ref()
            .is_some_and(|b| b.confinement().is_full())
    }

    /// The sandbox plan a run starts from: program, arguments, environment,
    /// mounts and limits. A `strict` run adds its own proxy socket and the
    /// bridge.
    pub fn sandbox_plan(&self) -> Result<Plan, ProtectedError> {
        self.plan(&self.limits(Limits::default()))
    }

    /// The program it runs.
    pub fn program(&self) -> &Path {
        &self.spec.program
    }

    /// The plan of a run under `limits`, airlock's own files hidden.
    fn plan(&self, limits: &Limits) -> Result<Plan, ProtectedError> {
        self.protected.hide_in(plan_for(&self.spec, limits))
    }

    /// The run's limits: the operator's wall clock and output cap over
    /// `base` (the host's defaults).
    pub(crate) fn limits(&self, base: Limits) -> Limits {
        crate::limits::call_limits(&self.spec.limits, base)
    }
}

/// What an approval of a native program binds, the same for a native tool
/// and a hosted server: its grants, the program, its arguments, how it runs,
/// its mounts and limits.
pub(crate) struct ProgramBinding<'a> {
    /// The program (and, for a hosted server, its digest).
    pub program: String,
    /// Its arguments.
    pub args: &'a [String],
    /// What else says how it runs (a tool's tier and network; a server's
    /// environment).
    pub how: Vec<String>,
    /// Directories it reads.
    pub fs_read: &'a [PathBuf],
    /// Directories it writes.
    pub fs_write: &'a [PathBuf],
    /// Its process limits.
    pub limits: &'a airlock_sandbox::ProcessLimits,
    /// Whether airlock's own files are hidden in its grants.
    pub hide_airlock_files: bool,
}

impl ProgramBinding<'_> {
    /// The parts an approval digests, after `grants`' own.
    pub(crate) fn parts(self, grants: &Grants) -> Vec<String> {
        let mut parts = grants.binding_parts();
        parts.push(self.program);
        parts.push(format!("args {:?}", self.args));
        parts.extend(self.how);
        parts.extend([
            format!("fs_read {:?}", self.fs_read),
            format!("fs_write {:?}", self.fs_write),
            format!("limits {:?}", self.limits),
            format!("hide_airlock_files {}", self.hide_airlock_files),
        ]);
        parts
    }
}

/// Why a native tool cannot load.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum NativeError {
    /// The program cannot be read.
    #[error("native program {}: {source}", path.display())]
    Program {
        /// The path.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A granted directory does not exist or is not a directory.
    #[error("granted directory {}: {source}; create it or fix `fs_read`/`fs_write`", path.display())]
    Directory {
        /// The path as configured.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// No sandbox on this machine.
    #[error(transparent)]
    Sandbox(#[from] airlock_sandbox::SandboxError),
    /// A credential binding the proxy could not inject: the tool has no
    /// `strict` network, or the binding reaches an origin whose rule says
    /// `intercept = false`.
    #[error("{0}")]
    Credentials(String),
    /// `strict` network needs a sandbox that confines the network.
    #[error(
        "`network = \"strict\"` needs a sandbox that confines the network, and {executor} does not: the tool could bypass the proxy; use `network = \"none\"`"
    )]
    UnsandboxedNetwork {
        /// What would have run the tool.
        executor: &'static str,
    },
    /// The tool cannot be described to the policies (as a component's
    /// load says `invalid_descriptor`).
    #[error("the tool cannot be described to the policies: {0}")]
    Describe(#[from] crate::policy::PolicyError),
    /// A granted directory is, lies inside or contains airlock's own files.
    #[error(transparent)]
    Protected(#[from] ProtectedError),
}

impl NativeError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            NativeError::Program { .. } => "native_program_unreadable",
            NativeError::Describe(_) => "invalid_descriptor",
            NativeError::Sandbox(e) => e.code(),
            NativeError::Protected(e) => e.code(),
            NativeError::Directory { .. }
            | NativeError::Credentials(_)
            | NativeError::UnsandboxedNetwork { .. } => "grant_invalid",
        }
    }
}

/// Whether the egress proxy of a program with `grants` can inject each of
/// its credentials: it has a proxy (`strict`), and no binding reaches an
/// origin whose rule keeps TLS a blind tunnel. The message says what to
/// change.
pub(crate) fn injectable(grants: &Grants, strict: bool) -> Result<(), String> {
    let Some(first) = grants.credentials().first() else {
        return Ok(());
    };
    if !strict {
        return Err(format!(
            "secret `{}` is bound, but the program has no network: the host injects credentials in its egress proxy, so give it `network = \"strict\"`",
            first.secret()
        ));
    }
    for binding in grants.credentials() {
        if let Some(origin) = binding.not_intercepted(grants.network()) {
            return Err(format!(
                "secret `{}` is bound to {origin}, whose rule says `intercept = false`: the proxy never sees inside that TLS, so it cannot add the secret",
                binding.secret()
            ));
        }
    }
    Ok(())
}

/// The program's canonical path: a bare name is looked up on `PATH`, as a
/// shell would, so `program = "curl"` works; the hash is of what was found.
fn locate(program: &Path) -> Result<PathBuf, NativeError> {
    let found = if program.components().count() == 1 && !program.is_absolute() {
        airlock_sandbox::find_program(program.as_os_str(), std::env::var_os("PATH"))
    } else {
        Some(program.to_path_buf())
    };
    let missing = || NativeError::Program {
        path: program.to_path_buf(),
        source: std::io::Error::new(
            std::io::ErrorKind::NotFound,
            "not found (a bare name is looked up on PATH; give a path otherwise)",
        ),
    };
    found
        .ok_or_else(missing)?
        .canonicalize()
        .map_err(|source| NativeError::Program {
            path: program.to_path_buf(),
            source,
        })
}

/// Granted directories, canonical: a missing one is an error at load rather
/// than a sandbox that fails to start on every run.
fn existing_dirs(dirs: &[PathBuf]) -> Result<Vec<PathBuf>, NativeError> {
    dirs.iter()
        .map(|dir| {
            dir.canonicalize()
                .and_then(|canonical| match canonical.is_dir() {
                    true => Ok(canonical),
                    false => Err(std::io::Error::other("not a directory")),
                })
                .map_err(|source| NativeError::Directory {
                    path: dir.clone(),
                    source,
                })
        })
        .collect()
}

impl NativeTool {
    /// Loads a native tool named `name`: hashes the program, finds the
    /// sandbox (or refuses with `sandbox_unavailable`), derives its facts
    /// (world `native`; `process_exec`, and `network` or filesystem
    /// capabilities as granted) and registers them with the policies.
    pub(crate) fn load(
        kernel: &Kernel,
        name: &str,
        spec: NativeSpec,
        grants: Grants,
    ) -> Result<NativeTool, NativeError> {
        injectable(&grants, spec.network == NativeNetwork::Strict)
            .map_err(NativeError::Credentials)?;
        let program = locate(&spec.program)?;
        let fs_read = existing_dirs(&spec.fs_read)?;
        let fs_write = existing_dirs(&spec.fs_write)?;
        kernel.protected().check_sandboxed(
            fs_read.iter().chain(&fs_write).map(PathBuf::as_path),
            spec.hide_airlock_files,
        )?;
        let digested = Digested::read(&program).map_err(|source| NativeError::Program {
            path: program.clone(),
            source,
        })?;
        let sha256 = digested.sha256().to_string();
        let backend = match spec.tier {
            Tier::Sandbox => Some(kernel.native_sandbox()?),
            Tier::None => None,
        };
        if spec.network == NativeNetwork::Strict
            && !backend.as_ref().is_some_and(|b| b.confinement().network)
        {
            return Err(NativeError::UnsandboxedNetwork {
                executor: backend
                    .as_ref()
                    .map_or(ExecutorKind::NativeUnsandboxed, |b| {
                        ExecutorKind::Native(b.kind())
                    })
                    .as_str(),
            });
        }
        let mut capabilities = World::Native.capabilities().to_vec();
        if spec.network == NativeNetwork::Strict && !grants.network().is_empty() {
            capabilities.push(Capability::Network);
        }
        if !spec.fs_read.is_empty() || !spec.fs_write.is_empty() {
            capabilities.push(Capability::FilesystemRead);
        }
        if !spec.fs_write.is_empty() {
            capabilities.push(Capability::FilesystemWrite);
        }
        if !grants.credentials().is_empty() {
            capabilities.push(Capability::Secrets);
        }
        let facts = ToolFacts::derive(
            name,
            World::Native,
            capabilities,
            &sha256,
            grants.is_marked_sensitive(),
        );
        kernel.policies().register_tool(&facts)?;
        Ok(NativeTool {
            facts,
            spec: NativeSpec {
                program,
                fs_read,
                fs_write,
                ..spec
            },
            grants,
            backend,
            protected: kernel.protected().clone(),
            bridge: kernel.native_bridge(),
            digested,
        })
    }
}
