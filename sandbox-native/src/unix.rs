//! Running a program on Unix under a sandbox program (`bwrap`,
//! `sandbox-exec`) or, for `tier = "none"`, under nothing but limits:
//! `setrlimit` between fork and exec (values computed before the fork; only
//! raw system calls after it), input on stdin, output captured up to a cap,
//! and the whole process group killed at the wall-clock limit.

use crate::SandboxError;
use crate::output::{Exit, RunOutput};
use crate::plan::{Plan, ProcessLimits};
use crate::supervise::supervise;
use std::os::unix::process::{CommandExt, ExitStatusExt};
use std::process::{Command, Stdio};
use std::time::Instant;

/// One resource limit, ready to apply after the fork.
pub(crate) struct Rlimit(rustix::process::Resource, u64);

/// The plan's limits as `setrlimit` calls; no core dumps either. The
/// process limit only with `nproc`: outside a fresh user namespace
/// RLIMIT_NPROC counts every process of the user, not the tool's.
pub(crate) fn rlimits(limits: &ProcessLimits, nproc: bool) -> Vec<Rlimit> {
    use rustix::process::Resource;
    let mut rlimits = vec![
        Rlimit(Resource::Cpu, limits.cpu_seconds),
        Rlimit(Resource::As, limits.address_space_bytes),
        Rlimit(Resource::Fsize, limits.file_size_bytes),
        Rlimit(Resource::Nofile, limits.open_files),
        Rlimit(Resource::Core, 0),
    ];
    if nproc {
        rlimits.push(Rlimit(Resource::Nproc, limits.processes));
    }
    rlimits
}

/// Runs `plan`'s program with no sandbox at all: only its explicit
/// environment, the limits, the wall clock and the output cap. For
/// `tier = "none"`, which airlock allows only when a policy permits it and
/// a human approved the run. Mounts, the network mode and the process
/// limit do not apply (without a user namespace RLIMIT_NPROC would count
/// all of the user's processes).
pub fn run_unsandboxed(plan: &Plan, input: &[u8]) -> Result<RunOutput, SandboxError> {
    let mut command = command(&plan.program);
    command
        .args(&plan.args)
        .envs(plan.env.iter().map(|(k, v)| (k, v)))
        .current_dir(plan.cwd.as_deref().unwrap_or(std::path::Path::new("/")));
    confine(
        &mut command,
        rlimits(&plan.limits, false),
        Confine::default(),
    );
    execute(command, plan, input)
}

/// A command for `program` that inherits no environment: only what is set
/// on it afterwards reaches the program.
pub(crate) fn command(program: impl AsRef<std::ffi::OsStr>) -> Command {
    let mut command = Command::new(program);
    command.env_clear();
    command
}

/// Spawns `command` (made with [`command`]; own process group), feeds
/// `input`, captures output up to the cap and enforces the wall clock.
pub(crate) fn execute(
    mut command: Command,
    plan: &Plan,
    input: &[u8],
) -> Result<RunOutput, SandboxError> {
    command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        // Its own process group, so a timeout kills everything it started.
        .process_group(0);
    let started = Instant::now();
    let child = command.spawn().map_err(|source| SandboxError::Spawn {
        detail: source.to_string(),
    })?;
    let pid = child.id();
    // bwrap dies with its group, its pid namespace with it (--die-with-parent).
    supervise(
        child,
        plan,
        input,
        started,
        || kill_group(pid),
        |status| match (status.code(), status.signal()) {
            (Some(code), _) => Exit::Code(code),
            (None, Some(signal)) => Exit::Signal(signal),
            (None, None) => Exit::Signal(0),
        },
    )
}

/// A backend that confines files and network by building one sandboxed
/// command per plan (bubblewrap, sandbox-exec): running a plan and leaving
/// one running are then the same for each, so [`TierCBackend`] is written
/// once for all of them. (Public in a private module: nameable only here.)
#[cfg(any(target_os = "linux", target_os = "macos"))]
pub trait Prepares: std::fmt::Debug + Send + Sync {
    /// Which mechanism it is.
    const KIND: crate::BackendKind;

    /// The command that runs `plan` confined, and what must outlive it.
    fn prepare(&self, plan: &Plan) -> Result<Prepared, SandboxError>;
}

#[cfg(any(target_os = "linux", target_os = "macos"))]
impl<T: Prepares> crate::TierCBackend for T {
    fn kind(&self) -> crate::BackendKind {
        T::KIND
    }

    fn confinement(&self) -> crate::Confinement {
        crate::Confinement::FULL
    }

    fn run(&self, plan: &Plan, input: &[u8]) -> Result<RunOutput, SandboxError> {
        self.prepare(plan)?.run(plan, input)
    }

    fn spawn(&self, plan: &Plan) -> Result<crate::Spawned, SandboxError> {
        self.prepare(plan)?.spawn()
    }
}

/// A command ready to start under a sandbox, and what must outlive the
/// start (a descriptor the sandbox program reads) or the whole run
/// (stand-ins, a bridge, a temporary directory).
pub struct Prepared {
    pub command: Command,
    pub keep: Vec<Box<dyn std::any::Any + Send>>,
}

impl Prepared {
    /// Runs it to its end, as [`execute`].
    pub(crate) fn run(self, plan: &Plan, input: &[u8]) -> Result<RunOutput, SandboxError> {
        let output = execute(self.command, plan, input);
        drop(self.keep);
        output
    }

    /// Starts it and leaves it running, standard streams piped, in its own
    /// process group (killed whole when the [`Spawned`] drops).
    pub(crate) fn spawn(mut self) -> Result<crate::Spawned, SandboxError> {
        self.command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        let child = self.command.spawn().map_err(|source| SandboxError::Spawn {
            detail: source.to_string(),
        })?;
        let pid = child.id();
        Ok(crate::Spawned::new(
            child,
            move || kill_group(pid),
            self.keep,
        ))
    }
}

/// Kills process group `pid` (the sandbox program's) and, on Linux, waits
/// until what it started is gone.
fn kill_group(pid: u32) {
    #[cfg(target_os = "linux")]
    let children = children_of(pid);
    if let Some(pid) = i32::try_from(pid)
        .ok()
        .and_then(rustix::process::Pid::from_raw)
    {
        let _ = rustix::process::kill_process_group(pid, rustix::process::Signal::KILL);
    }
    #[cfg(target_os = "linux")]
    await_end(&children);
}

/// One process as `/proc/PID/stat` shows it.
#[cfg(target_os = "linux")]
struct ProcStat {
    pid: u32,
    parent: u32,
    /// Start time in clock ticks: tells a reused pid from the original.
    start: u64,
    zombie: bool,
}

/// `/proc/PID/stat` of `pid`, if that process exists.
#[cfg(target_os = "linux")]
fn proc_stat(pid: &str) -> Option<ProcStat> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // After the command name's closing parenthesis: state, ppid, then
    // nineteen more fields up to the start time.
    let mut fields = stat[stat.rfind(')')? + 1..].split_whitespace();
    let state = fields.next()?;
    let parent = fields.next()?.parse().ok()?;
    let start = fields.nth(17)?.parse().ok()?;
    Some(ProcStat {
        pid: pid.parse().ok()?,
        parent,
        start,
        zombie: matches!(state, "Z" | "X"),
    })
}

/// The live children of `pid`: for bwrap, its pid namespace's init, which
/// may sit in its own session (`--new-session`) out of the group's reach.
#[cfg(target_os = "linux")]
fn children_of(pid: u32) -> Vec<ProcStat> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    entries
        .filter_map(Result::ok)
        .filter_map(|e| proc_stat(e.file_name().to_str()?))
        .filter(|p| p.parent == pid && !p.zombie)
        .collect()
}

/// Waits (up to five seconds) until none of `processes` is alive. SIGKILL
/// lands asynchronously, and a pid namespace's init turns zombie only
/// after the kernel has reaped every process of its namespace, so once it
/// is gone so is everything the run started.
#[cfg(target_os = "linux")]
fn await_end(processes: &[ProcStat]) {
    let deadline = Instant::now() + std::time::Duration::from_secs(5);
    let alive = |p: &ProcStat| {
        proc_stat(&p.pid.to_string()).is_some_and(|now| now.start == p.start && !now.zombie)
    };
    while processes.iter().any(alive) && Instant::now() < deadline {
        std::thread::sleep(std::time::Duration::from_millis(1));
    }
}

/// What else happens between fork and exec, besides the limits.
#[derive(Clone, Debug, Default)]
pub(crate) struct Confine {
    /// Descriptors the child must inherit (the seccomp program for bwrap,
    /// the egress proxy's channel in strict mode, the bound paths).
    pub inherited_fds: Vec<i32>,
    /// Drop to `nobody` when airlock runs as root.
    #[cfg(target_os = "linux")]
    pub drop_root: bool,
}

/// Applies the limits and, on Linux when airlock runs as root and `how`
/// asks, drops to `nobody` between fork and exec: as root, the sandbox's
/// user namespace would map to root outside and root-owned files
/// (`/etc/shadow`, keys) would open by ownership alone.
#[allow(unsafe_code)]
pub(crate) fn confine(command: &mut Command, limits: Vec<Rlimit>, how: Confine) {
    let inherited_fds = how.inherited_fds;
    #[cfg(target_os = "linux")]
    let drop_root = how.drop_root && rustix::process::geteuid().is_root();
    #[cfg(target_os = "linux")]
    let (uid, gid) = (
        rustix::process::Uid::from_raw(crate::plan::SANDBOX_UID),
        rustix::process::Gid::from_raw(crate::plan::SANDBOX_GID),
    );
    // SAFETY: the closure runs in the forked child before exec. It only
    // makes raw system calls through rustix (fcntl, setrlimit, setgroups,
    // setgid, setuid) on values prepared above: no allocation, no locks,
    // nothing that is not async-signal-safe. The child is single-threaded,
    // so the per-thread credential calls change the whole process. The
    // descriptor stays open in the parent until spawn returns.
    unsafe {
        command.pre_exec(move || {
            // Nothing of airlock's is inherited by accident (a descriptor
            // someone left without close-on-exec, one a library re-made):
            // every descriptor above stderr is closed at exec, then the
            // ones the sandbox program needs are let through.
            #[cfg(target_os = "linux")]
            close_on_exec_from(3);
            for &fd in &inherited_fds {
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
            #[cfg(target_os = "linux")]
            if drop_root {
                rustix::thread::set_thread_groups(&[])?;
                rustix::thread::set_thread_res_gid(gid, gid, gid)?;
                rustix::thread::set_thread_res_uid(uid, uid, uid)?;
            }
            Ok(())
        });
    }
}

/// Marks every descriptor from `first` up close-on-exec: `close_range`
/// where the kernel has it (5.11), else one `fcntl` a number. Runs between
/// fork and exec: system calls only.
#[cfg(target_os = "linux")]
#[allow(unsafe_code)]
fn close_on_exec_from(first: u32) {
    const CLOSE_RANGE_CLOEXEC: libc::c_uint = 1 << 2;
    // SAFETY: a plain system call on integers; no memory is passed.
    let done = unsafe {
        libc::syscall(
            libc::SYS_close_range,
            first,
            libc::c_uint::MAX,
            CLOSE_RANGE_CLOEXEC,
        )
    } == 0;
    if !done {
        for fd in first..65536 {
            // SAFETY: as above; a number that is no descriptor is EBADF.
            unsafe {
                libc::fcntl(fd as libc::c_int, libc::F_SETFD, libc::FD_CLOEXEC);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(target_os = "linux")]
    #[test]
    fn a_stray_descriptor_does_not_reach_the_program() {
        use std::os::fd::AsRawFd;
        // A descriptor without close-on-exec, as a careless library leaves.
        let stray = std::fs::File::open("/dev/null").expect("open");
        rustix::io::fcntl_setfd(&stray, rustix::io::FdFlags::empty()).expect("inheritable");
        let fd = stray.as_raw_fd();
        let plan = Plan::new("/bin/sh").args([
            "-c",
            &format!("if [ -e /proc/$$/fd/{fd} ]; then echo leaked; else echo clean; fi"),
        ]);
        let out = run_unsandboxed(&plan, b"").expect("runs");
        assert_eq!(String::from_utf8_lossy(&out.stdout.bytes).trim(), "clean");
    }

    #[test]
    fn an_unsandboxed_run_sees_exactly_the_plan_s_environment() {
        let plan = Plan::new("/bin/sh")
            .args(["-c", "printf '%s|%s' \"$GREETING\" \"$HOME\""])
            .env("GREETING", "hi");
        let out = run_unsandboxed(&plan, b"").expect("runs");
        assert_eq!(out.exit, Exit::Code(0));
        assert_eq!(String::from_utf8_lossy(&out.stdout.bytes), "hi|");
    }
}
