//! `airlock-sandbox`: native (non-WASM) tool sandboxes for airlock.
//!
//! Tools that cannot be WASI components run under the strongest sandbox the
//! platform has: bubblewrap on Linux, `sandbox-exec` on macOS, a Job Object on
//! Windows. When it is missing the answer is a clear `sandbox_unavailable`
//! error naming what to install, never an unsandboxed run.
//!
//! A [`Plan`] says what to run and how confined, the same everywhere; a
//! [`TierCBackend`] turns it into its mechanism ([`linux_bwrap`] arguments,
//! a [`macos_sbpl`] profile, [`windows_job`] limits) and runs it with the
//! limits, a timeout that kills everything the program started, and capped
//! output. [`detect`] finds this platform's backend.

mod backend;
#[cfg(unix)]
pub mod bridge;
mod cancel;
#[cfg(unix)]
pub mod channel;
mod facts;
pub mod linux_bwrap;
pub mod macos_sbpl;
mod output;
#[cfg(target_os = "linux")]
mod persistence;
#[cfg(target_os = "linux")]
pub mod pinned;
mod plan;
#[cfg(target_os = "linux")]
pub mod seccomp;
mod supervise;
#[cfg(unix)]
mod unix;
pub mod windows_job;

pub use backend::{
    Backend, BackendKind, Confinement, SandboxError, Spawned, TierCBackend, detect, detect_in,
    find_program,
};
pub use cancel::Cancel;
pub use facts::SandboxFacts;
pub use linux_bwrap::LinuxBubblewrap;
pub use macos_sbpl::MacosSandboxExec;
pub use output::{CappedStream, Exit, RunOutput};
pub use plan::{
    Access, DEFAULT_LIMITS, Hidden, Mount, NetworkMode, PERSISTENCE_PATHS, Persistent, Plan,
    ProcessLimits, TRUST_IN_SANDBOX, TRUST_VARIABLES,
};
#[cfg(unix)]
pub use unix::run_unsandboxed;
pub use windows_job::WindowsJobObject;
