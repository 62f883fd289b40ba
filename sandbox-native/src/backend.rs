//! The seam between a [`Plan`] and a platform's sandbox: [`TierCBackend`],
//! which mechanism exists where ([`BackendKind`]), what each confines
//! ([`Confinement`]), and finding the one this machine has ([`detect`]).

use crate::output::RunOutput;
use crate::plan::Plan;
use std::ffi::OsString;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// The sandbox mechanism for native tools on one platform.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BackendKind {
    /// `bwrap` (bubblewrap) with namespaces and seccomp.
    LinuxBubblewrap,
    /// `sandbox-exec` with a generated SBPL profile.
    MacosSandboxExec,
    /// A Job Object with limits and UI restrictions.
    WindowsJobObject,
}

impl BackendKind {
    /// The backend for the platform this was compiled for, if any.
    pub fn for_this_platform() -> Option<Self> {
        if cfg!(target_os = "linux") {
            Some(Self::LinuxBubblewrap)
        } else if cfg!(target_os = "macos") {
            Some(Self::MacosSandboxExec)
        } else if cfg!(windows) {
            Some(Self::WindowsJobObject)
        } else {
            None
        }
    }

    /// The executor name used in attestations, e.g. `native_linux_bubblewrap`.
    pub fn executor(self) -> &'static str {
        match self {
            Self::LinuxBubblewrap => "native_linux_bubblewrap",
            Self::MacosSandboxExec => "native_macos_sandbox_exec",
            Self::WindowsJobObject => "native_windows_job_object",
        }
    }

    /// The program the backend runs, if it is an external program.
    fn program(self) -> Option<&'static str> {
        match self {
            Self::LinuxBubblewrap => Some("bwrap"),
            Self::MacosSandboxExec => Some("sandbox-exec"),
            Self::WindowsJobObject => None,
        }
    }

    /// How to get the program where it is missing.
    fn install_hint(self) -> &'static str {
        match self {
            Self::LinuxBubblewrap => {
                "install the `bubblewrap` package (Debian/Ubuntu: `apt-get install bubblewrap`, \
                 Fedora: `dnf install bubblewrap`)"
            }
            Self::MacosSandboxExec => "`/usr/bin/sandbox-exec` ships with macOS; check the PATH",
            Self::WindowsJobObject => "Job Objects are part of Windows",
        }
    }
}

impl fmt::Display for BackendKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.executor())
    }
}

/// What a backend confines beyond resource limits. A caller that needs
/// more than a backend gives must treat the run as unsandboxed (airlock
/// then asks for a policy and an approval, as for `tier = "none"`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Confinement {
    /// Only the plan's mounts (and system directories, read-only) are
    /// visible.
    pub filesystem: bool,
    /// The network mode is enforced: nothing, or only the egress proxy.
    pub network: bool,
}

impl Confinement {
    /// Files and network both confined (bubblewrap, `sandbox-exec`).
    pub const FULL: Self = Self {
        filesystem: true,
        network: true,
    };
    /// Only resource limits (a Job Object).
    pub const LIMITS_ONLY: Self = Self {
        filesystem: false,
        network: false,
    };

    /// Whether both files and network are confined.
    pub fn is_full(self) -> bool {
        self.filesystem && self.network
    }
}

/// A Tier-C sandbox: runs a [`Plan`] with `input` on stdin under one
/// platform's mechanism, applying the plan's limits; at the wall-clock
/// limit everything the program started is killed.
///
/// "Tier C" is this crate's place in airlock: the fallback for tools that
/// cannot be WASM components, an operating-system sandbox around a native
/// process. It confines less than a component, which holds nothing but
/// what it imports, so native tools need an approval by default.
pub trait TierCBackend: fmt::Debug + Send + Sync {
    /// Which mechanism this is.
    fn kind(&self) -> BackendKind;
    /// What it confines.
    fn confinement(&self) -> Confinement;
    /// Runs `plan` to its end (or the wall clock's).
    fn run(&self, plan: &Plan, input: &[u8]) -> Result<RunOutput, SandboxError>;

    /// Starts `plan` and leaves it running with its standard streams piped
    /// (a long-lived server spoken to over stdio). The wall clock does not
    /// apply; the other limits do. Dropping the [`Spawned`] kills
    /// everything it started.
    fn spawn(&self, plan: &Plan) -> Result<Spawned, SandboxError> {
        let _ = plan;
        Err(SandboxError::Unsupported {
            detail: format!(
                "{} cannot keep a program running confined; run it as a native tool instead",
                self.kind()
            ),
        })
    }
}

/// A sandboxed program left running ([`TierCBackend::spawn`]).
pub struct Spawned {
    /// The sandbox's process; its stdin, stdout and stderr are the
    /// program's, piped.
    pub child: std::process::Child,
    kill: Box<dyn FnMut() + Send>,
    /// What must live as long as the program (stand-ins, a bridge, a
    /// temporary directory).
    _keep: Vec<Box<dyn std::any::Any + Send>>,
}

impl Spawned {
    /// Wraps a started `child`; `kill` ends everything it started.
    #[cfg(unix)]
    pub(crate) fn new(
        child: std::process::Child,
        kill: impl FnMut() + Send + 'static,
        keep: Vec<Box<dyn std::any::Any + Send>>,
    ) -> Self {
        Self {
            child,
            kill: Box::new(kill),
            _keep: keep,
        }
    }

    /// Kills everything the program started and reaps the sandbox.
    pub fn kill(&mut self) {
        (self.kill)();
        let _ = self.child.wait();
    }
}

impl fmt::Debug for Spawned {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Spawned")
            .field("pid", &self.child.id())
            .finish_non_exhaustive()
    }
}

impl Drop for Spawned {
    fn drop(&mut self) {
        self.kill();
    }
}

/// The sandbox found on this machine.
pub type Backend = Arc<dyn TierCBackend>;

/// Why no sandbox can be used.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SandboxError {
    /// The platform's sandbox program is not installed.
    #[error("sandbox_unavailable: `{program}` ({kind}) was not found on PATH: {hint}")]
    Unavailable {
        /// The backend that is missing.
        kind: BackendKind,
        /// The program looked for.
        program: &'static str,
        /// What to install.
        hint: &'static str,
    },
    /// The sandbox could not be started or waited for.
    #[error("sandbox_failed: {detail}")]
    Spawn {
        /// What the operating system said.
        detail: String,
    },
    /// The plan asks for something this backend cannot enforce.
    #[error("sandbox_unsupported: {detail}")]
    Unsupported {
        /// What cannot be enforced, and what to do instead.
        detail: String,
    },
    /// A path a sandbox was to bind is no longer the one airlock checked:
    /// a symbolic link appeared on it, or it is gone.
    #[error(
        "grant_changed: {} is not what airlock checked when the tool loaded ({detail}): the run is refused; see who can write above it, then reload",
        path.display()
    )]
    GrantChanged {
        /// The host path.
        path: std::path::PathBuf,
        /// What changed.
        detail: String,
    },
    /// airlock has no native sandbox for this platform.
    #[error(
        "sandbox_unavailable: airlock has no native sandbox for this platform; run the tool as a WASI component"
    )]
    UnsupportedPlatform,
}

impl SandboxError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            SandboxError::Spawn { .. } => "sandbox_failed",
            SandboxError::Unsupported { .. } => "sandbox_unsupported",
            SandboxError::GrantChanged { .. } => "grant_changed",
            _ => "sandbox_unavailable",
        }
    }
}

/// Finds this platform's sandbox using the process's `PATH`.
pub fn detect() -> Result<Backend, SandboxError> {
    detect_in(std::env::var_os("PATH"))
}

/// Finds this platform's sandbox in the directories of `path` (a `PATH`
/// value).
pub fn detect_in(path: Option<OsString>) -> Result<Backend, SandboxError> {
    let kind = BackendKind::for_this_platform().ok_or(SandboxError::UnsupportedPlatform)?;
    let program = locate(kind, path)?;
    match (kind, program) {
        #[cfg(target_os = "linux")]
        (BackendKind::LinuxBubblewrap, Some(program)) => {
            Ok(Arc::new(crate::LinuxBubblewrap { program }))
        }
        #[cfg(target_os = "macos")]
        (BackendKind::MacosSandboxExec, Some(program)) => {
            Ok(Arc::new(crate::MacosSandboxExec { program }))
        }
        #[cfg(windows)]
        (BackendKind::WindowsJobObject, _) => Ok(Arc::new(crate::WindowsJobObject)),
        _ => Err(SandboxError::UnsupportedPlatform),
    }
}

/// The program `kind` runs, found in `path`; `None` when it needs none.
fn locate(kind: BackendKind, path: Option<OsString>) -> Result<Option<PathBuf>, SandboxError> {
    let Some(program) = kind.program() else {
        return Ok(None);
    };
    match find_program(program.as_ref(), path) {
        Some(found) => Ok(Some(found)),
        None => Err(SandboxError::Unavailable {
            kind,
            program,
            hint: kind.install_hint(),
        }),
    }
}

/// The first executable file named `name` in the directories of `path` (a
/// `PATH` value), as a shell would find it.
pub fn find_program(name: &std::ffi::OsStr, path: Option<OsString>) -> Option<PathBuf> {
    path.iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

#[cfg(unix)]
fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
}

#[cfg(not(unix))]
fn is_executable(path: &Path) -> bool {
    path.is_file()
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    #[test]
    fn missing_program_names_the_package() {
        let empty = tempfile::tempdir().expect("tempdir");
        let Some(kind) = BackendKind::for_this_platform() else {
            assert_eq!(
                detect_in(None).err(),
                Some(SandboxError::UnsupportedPlatform)
            );
            return;
        };
        let err = detect_in(Some(empty.path().into())).expect_err("nothing on PATH");
        assert_eq!(err.code(), "sandbox_unavailable");
        if kind == BackendKind::LinuxBubblewrap {
            assert!(
                err.to_string().contains("apt-get install bubblewrap"),
                "{err}"
            );
        }
    }

    /// Only where the backend is an external program: compiled out
    /// elsewhere rather than skipped at run time.
    #[cfg(any(target_os = "linux", target_os = "macos"))]
    #[test]
    fn finds_an_executable_program_and_skips_plain_files() {
        use std::os::unix::fs::PermissionsExt;
        let kind = BackendKind::for_this_platform().expect("Linux and macOS have a backend");
        let program = kind.program().expect("external program");
        let plain = tempfile::tempdir().expect("tempdir");
        std::fs::write(plain.path().join(program), "").expect("write");
        let bin = tempfile::tempdir().expect("tempdir");
        let path = bin.path().join(program);
        std::fs::write(&path, "#!/bin/sh\n").expect("write");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");

        let search = std::env::join_paths([plain.path(), bin.path()]).expect("join");
        assert_eq!(locate(kind, Some(search.clone())), Ok(Some(path)));
        let backend = detect_in(Some(search)).expect("found");
        assert_eq!(backend.kind(), kind);
    }
}
