//! Running a [`Plan`] on Linux: `bwrap` with the plan's arguments, limits
//! set with `setrlimit` between fork and exec (values computed before the
//! fork; only raw system calls after it), root dropped to `nobody` first,
//! input on stdin, output captured up to a cap, and the whole process group
//! killed at the wall-clock limit.

use crate::linux_bwrap::{SANDBOX_GID, SANDBOX_UID, arguments};
use crate::plan::{Limits, Plan};
use crate::{Backend, SandboxError};
use std::io::{Read, Write};
use std::os::fd::AsRawFd;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

/// How the sandboxed program ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// A signal ended it (e.g. SIGXCPU for the CPU limit, SIGKILL).
    Signal(i32),
    /// The wall-clock limit ended it; the whole sandbox was killed.
    TimedOut,
}

/// Up to the cap of what a stream carried.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Captured {
    /// The bytes kept.
    pub bytes: Vec<u8>,
    /// Bytes beyond the cap, counted and dropped.
    pub dropped: u64,
}

/// What one sandboxed run produced.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunOutput {
    /// How it ended.
    pub exit: Exit,
    /// Standard output.
    pub stdout: Captured,
    /// Standard error.
    pub stderr: Captured,
    /// Wall-clock time.
    pub duration: Duration,
}

/// One resource limit, ready to apply after the fork.
struct Rlimit(rustix::process::Resource, u64);

fn rlimits(limits: &Limits) -> Vec<Rlimit> {
    use rustix::process::Resource;
    vec![
        Rlimit(Resource::Cpu, limits.cpu_seconds),
        Rlimit(Resource::As, limits.address_space_bytes),
        Rlimit(Resource::Nproc, limits.processes),
        Rlimit(Resource::Fsize, limits.file_size_bytes),
        Rlimit(Resource::Nofile, limits.open_files),
        Rlimit(Resource::Core, 0),
    ]
}

/// Reads `stream` to its end, keeping `cap` bytes.
fn capture(mut stream: impl Read, cap: usize) -> Captured {
    let mut captured = Captured::default();
    let mut chunk = [0u8; 8192];
    loop {
        match stream.read(&mut chunk) {
            Ok(0) | Err(_) => return captured,
            Ok(n) => {
                let room = cap.saturating_sub(captured.bytes.len()).min(n);
                captured.bytes.extend_from_slice(&chunk[..room]);
                captured.dropped += (n - room) as u64;
            }
        }
    }
}

/// Runs `plan` under `backend` (bubblewrap), with `input` on stdin.
pub fn run(backend: &Backend, plan: &Plan, input: &[u8]) -> Result<RunOutput, SandboxError> {
    let program = backend
        .program
        .clone()
        .ok_or(SandboxError::UnsupportedPlatform)?;
    let filter = seccomp_filter()?;
    let filter_fd = filter.as_raw_fd();
    let mut command = Command::new(program);
    command.args(arguments(plan, &|p| p.exists(), Some(filter_fd)));
    confine(&mut command, rlimits(&plan.limits), Some(filter_fd), true);
    let started = execute(command, plan, input);
    drop(filter);
    started
}

/// Runs `plan`'s program with no sandbox at all: only its explicit
/// environment, the limits, the wall clock and the output cap. For
/// `tier = "none"`, which airlock allows only when a policy permits it and
/// a human approved the run. Mounts and the network mode do not apply.
pub fn run_unsandboxed(plan: &Plan, input: &[u8]) -> Result<RunOutput, SandboxError> {
    let mut command = Command::new(&plan.program);
    command
        .args(&plan.args)
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .current_dir(plan.cwd.as_deref().unwrap_or(std::path::Path::new("/")));
    confine(&mut command, rlimits(&plan.limits), None, false);
    execute(command, plan, input)
}

/// Spawns `command` (environment cleared, own process group), feeds
/// `input`, captures output up to the cap and enforces the wall clock.
fn execute(mut command: Command, plan: &Plan, input: &[u8]) -> Result<RunOutput, SandboxError> {
    command
        .env_clear()
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills everything it started.
        .process_group(0);
    let started = Instant::now();
    let mut child = command.spawn().map_err(|source| SandboxError::Spawn {
        detail: source.to_string(),
    })?;
    let pid = child.id();
    let cap = plan.limits.output_bytes;
    let stdout = child
        .stdout
        .take()
        .map(|s| std::thread::spawn(move || capture(s, cap)));
    let stderr = child
        .stderr
        .take()
        .map(|s| std::thread::spawn(move || capture(s, cap)));
    if let Some(mut stdin) = child.stdin.take() {
        let input = input.to_vec();
        // A tool that never reads its input must not block the runner.
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
    let (done, waited) = mpsc::channel();
    std::thread::spawn(move || {
        let _ = done.send(child.wait());
    });
    let exit = match waited.recv_timeout(plan.limits.wall_clock) {
        Ok(Ok(status)) => match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            (None, None) => Exit::Signal(0),
        },
        Ok(Err(e)) => {
            return Err(SandboxError::Spawn {
                detail: format!("waiting for the sandbox failed: {e}"),
            });
        }
        Err(_) => {
            kill_group(pid);
            // bwrap dies, its pid namespace with it (--die-with-parent).
            let _ = waited.recv();
            Exit::TimedOut
        }
    };
    let join = |handle: Option<std::thread::JoinHandle<Captured>>| {
        handle.and_then(|h| h.join().ok()).unwrap_or_default()
    };
    Ok(RunOutput {
        exit,
        stdout: join(stdout),
        stderr: join(stderr),
        duration: started.elapsed(),
    })
}

/// The seccomp program in a sealed-off memory file, at offset 0.
fn seccomp_filter() -> Result<std::os::fd::OwnedFd, SandboxError> {
    use rustix::fs::{MemfdFlags, SeekFrom, memfd_create, seek};
    let failed = |detail: String| SandboxError::Spawn {
        detail: format!("preparing the seccomp filter: {detail}"),
    };
    let program = crate::seccomp::program().map_err(|e| failed(e.to_string()))?;
    let fd =
        memfd_create("airlock-seccomp", MemfdFlags::CLOEXEC).map_err(|e| failed(e.to_string()))?;
    let mut file = std::fs::File::from(fd);
    file.write_all(&program)
        .map_err(|e| failed(e.to_string()))?;
    seek(&file, SeekFrom::Start(0)).map_err(|e| failed(e.to_string()))?;
    Ok(file.into())
}

fn kill_group(pid: u32) {
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
}

/// Applies the limits and, when airlock runs as root, drops to
/// `nobody` between fork and exec: as root, the sandbox's user namespace
/// would map to root outside and root-owned files (`/etc/shadow`, keys)
/// would open by ownership alone.
#[allow(unsafe_code)]
fn confine(
    command: &mut Command,
    limits: Vec<Rlimit>,
    inherited_fd: Option<i32>,
    drop_root_if_root: bool,
) {
    let drop_root = drop_root_if_root && rustix::process::geteuid().is_root();
    let uid = rustix::process::Uid::from_raw(SANDBOX_UID);
    let gid = rustix::process::Gid::from_raw(SANDBOX_GID);
    // SAFETY: the closure runs in the forked child before exec. It only
    // makes raw system calls through rustix (fcntl, setrlimit, setgroups,
    // setgid, setuid) on values prepared above: no allocation, no locks,
    // nothing that is not async-signal-safe. The child is single-threaded,
    // so the per-thread credential calls change the whole process. The
    // descriptor stays open in the parent until spawn returns.
    unsafe {
        command.pre_exec(move || {
            // Only bwrap, in this child, inherits the seccomp program.
            if let Some(fd) = inherited_fd {
                let fd = std::os::fd::BorrowedFd::borrow_raw(fd);
                rustix::io::fcntl_setfd(fd, rustix::io::FdFlags::empty())?;
            }
            for Rlimit(resource, value) in &limits {
                rustix::process::setrlimit(
                    *resource,
                    rustix::process::Rlimit {
                        current: Some(*value),
                        maximum: Some(*value),
                    },
                )?;
            }
            if drop_root {
                rustix::thread::set_thread_groups(&[])?;
                rustix::thread::set_thread_res_gid(gid, gid, gid)?;
                rustix::thread::set_thread_res_uid(uid, uid, uid)?;
            }
            Ok(())
        });
    }
}
