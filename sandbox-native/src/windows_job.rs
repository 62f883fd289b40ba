//! The Windows backend: a Job Object around the program. It limits memory
//! (per process and for the whole job), CPU time and rate (one core's
//! worth), the number of live processes, applies every UI restriction
//! (desktop, clipboard, global atoms, display and system settings, other
//! processes' window handles, logoff), and kills everything in the job when
//! the run ends or times out.
//!
//! A Job Object confines resources, not files or the network: its
//! [`Confinement`](crate::Confinement) is `LIMITS_ONLY`, so airlock treats a
//! run under it as unsandboxed (a policy and an approval), and refuses
//! `strict` network mode, which it could not enforce.

use crate::plan::{NetworkMode, Plan};

/// A UI restriction of the job (`JOB_OBJECT_UILIMIT_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UiRestriction {
    /// No switching or creating desktops.
    Desktop,
    /// No changing display settings.
    DisplaySettings,
    /// No logging off or shutting down.
    ExitWindows,
    /// Its own global atom table.
    GlobalAtoms,
    /// No use of windows owned by processes outside the job.
    Handles,
    /// No reading the clipboard.
    ReadClipboard,
    /// No changing system parameters.
    SystemParameters,
    /// No writing the clipboard.
    WriteClipboard,
}

/// Every restriction: a tool has no business with the user's desktop.
pub const UI_RESTRICTIONS: &[UiRestriction] = &[
    UiRestriction::Desktop,
    UiRestriction::DisplaySettings,
    UiRestriction::ExitWindows,
    UiRestriction::GlobalAtoms,
    UiRestriction::Handles,
    UiRestriction::ReadClipboard,
    UiRestriction::SystemParameters,
    UiRestriction::WriteClipboard,
];

/// The Job Object settings for a plan.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct JobLimits {
    /// Committed memory of one process, bytes.
    pub process_memory_bytes: u64,
    /// Committed memory of the whole job, bytes.
    pub job_memory_bytes: u64,
    /// Processes alive at once.
    pub active_processes: u32,
    /// User-mode CPU time of the whole job, in 100 ns units.
    pub job_cpu_time_100ns: i64,
    /// Hard cap on CPU use, in 1/100 of a percent of the machine.
    pub cpu_rate: u32,
    /// Everything in the job dies when the job's handle closes.
    pub kill_on_close: bool,
    /// A crash ends the process instead of showing an error dialog.
    pub die_on_unhandled_exception: bool,
    /// UI restrictions.
    pub ui: &'static [UiRestriction],
}

/// The job settings for `plan` on a machine with `cpus` logical CPUs.
/// Refuses `strict` network mode, which a job cannot enforce.
pub fn job_limits(plan: &Plan, cpus: usize) -> Result<JobLimits, crate::SandboxError> {
    if matches!(plan.network, NetworkMode::Strict { .. }) {
        return Err(crate::SandboxError::Unsupported {
            detail: "a Job Object cannot confine the network, so `strict` mode cannot be enforced on Windows: use network \"none\" or run the tool as a component".into(),
        });
    }
    let limits = &plan.limits;
    // One core's worth of the machine, at least 1/100 of a percent.
    let cpu_rate = u32::try_from(10_000 / cpus.max(1)).unwrap_or(10_000).max(1);
    Ok(JobLimits {
        process_memory_bytes: limits.address_space_bytes,
        job_memory_bytes: limits.address_space_bytes,
        active_processes: u32::try_from(limits.processes).unwrap_or(u32::MAX),
        job_cpu_time_100ns: i64::try_from(limits.cpu_seconds.saturating_mul(10_000_000))
            .unwrap_or(i64::MAX),
        cpu_rate,
        kill_on_close: true,
        die_on_unhandled_exception: true,
        ui: UI_RESTRICTIONS,
    })
}

/// The Job Object backend.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct WindowsJobObject;

#[cfg(windows)]
mod imp {
    use super::{JobLimits, UiRestriction, WindowsJobObject, job_limits};
    use crate::output::{Exit, RunOutput};
    use crate::plan::Plan;
    use crate::supervise::supervise;
    use crate::{BackendKind, Confinement, SandboxError, TierCBackend};
    use std::os::windows::io::{AsRawHandle, FromRawHandle, OwnedHandle};
    use std::os::windows::process::CommandExt;
    use std::process::{Command, Stdio};
    use std::time::Instant;
    use windows_sys::Win32::Foundation::{HANDLE, INVALID_HANDLE_VALUE};
    use windows_sys::Win32::System::Diagnostics::ToolHelp::{
        CreateToolhelp32Snapshot, TH32CS_SNAPTHREAD, THREADENTRY32, Thread32First, Thread32Next,
    };
    use windows_sys::Win32::System::JobObjects::*;
    use windows_sys::Win32::System::Threading::{
        CREATE_NO_WINDOW, CREATE_SUSPENDED, OpenThread, ResumeThread, THREAD_SUSPEND_RESUME,
    };

    fn failed(what: &str) -> SandboxError {
        SandboxError::Spawn {
            detail: format!("{what}: {}", std::io::Error::last_os_error()),
        }
    }

    fn ui_flag(restriction: UiRestriction) -> u32 {
        match restriction {
            UiRestriction::Desktop => JOB_OBJECT_UILIMIT_DESKTOP,
            UiRestriction::DisplaySettings => JOB_OBJECT_UILIMIT_DISPLAYSETTINGS,
            UiRestriction::ExitWindows => JOB_OBJECT_UILIMIT_EXITWINDOWS,
            UiRestriction::GlobalAtoms => JOB_OBJECT_UILIMIT_GLOBALATOMS,
            UiRestriction::Handles => JOB_OBJECT_UILIMIT_HANDLES,
            UiRestriction::ReadClipboard => JOB_OBJECT_UILIMIT_READCLIPBOARD,
            UiRestriction::SystemParameters => JOB_OBJECT_UILIMIT_SYSTEMPARAMETERS,
            UiRestriction::WriteClipboard => JOB_OBJECT_UILIMIT_WRITECLIPBOARD,
        }
    }

    /// Sets one information class on the job.
    #[allow(unsafe_code)]
    fn set<T>(job: &OwnedHandle, class: JOBOBJECTINFOCLASS, info: &T) -> Result<(), SandboxError> {
        let size = u32::try_from(std::mem::size_of::<T>()).unwrap_or(u32::MAX);
        // SAFETY: `info` points at a live, initialised `T` of `size` bytes,
        // the structure `class` names; the job handle is open.
        let ok = unsafe {
            SetInformationJobObject(
                job.as_raw_handle() as HANDLE,
                class,
                (info as *const T).cast(),
                size,
            )
        };
        if ok == 0 {
            return Err(failed("configuring the Job Object"));
        }
        Ok(())
    }

    /// A job with `limits` applied.
    #[allow(unsafe_code)]
    fn job(limits: &JobLimits) -> Result<OwnedHandle, SandboxError> {
        // SAFETY: null attributes and name ask for an anonymous job with
        // default security; the result is checked before use.
        let raw = unsafe { CreateJobObjectW(std::ptr::null(), std::ptr::null()) };
        if raw.is_null() {
            return Err(failed("creating a Job Object"));
        }
        // SAFETY: `raw` is a fresh handle this function owns.
        let job = unsafe { OwnedHandle::from_raw_handle(raw as _) };
        // SAFETY: all-zero is a valid value of this plain C structure.
        let mut extended: JOBOBJECT_EXTENDED_LIMIT_INFORMATION = unsafe { std::mem::zeroed() };
        let basic = &mut extended.BasicLimitInformation;
        basic.LimitFlags = JOB_OBJECT_LIMIT_PROCESS_MEMORY
            | JOB_OBJECT_LIMIT_JOB_MEMORY
            | JOB_OBJECT_LIMIT_ACTIVE_PROCESS
            | JOB_OBJECT_LIMIT_JOB_TIME;
        if limits.kill_on_close {
            basic.LimitFlags |= JOB_OBJECT_LIMIT_KILL_ON_JOB_CLOSE;
        }
        if limits.die_on_unhandled_exception {
            basic.LimitFlags |= JOB_OBJECT_LIMIT_DIE_ON_UNHANDLED_EXCEPTION;
        }
        basic.ActiveProcessLimit = limits.active_processes;
        basic.PerJobUserTimeLimit = limits.job_cpu_time_100ns;
        extended.ProcessMemoryLimit =
            usize::try_from(limits.process_memory_bytes).unwrap_or(usize::MAX);
        extended.JobMemoryLimit = usize::try_from(limits.job_memory_bytes).unwrap_or(usize::MAX);
        set(&job, JobObjectExtendedLimitInformation, &extended)?;
        let rate = JOBOBJECT_CPU_RATE_CONTROL_INFORMATION {
            ControlFlags: JOB_OBJECT_CPU_RATE_CONTROL_ENABLE | JOB_OBJECT_CPU_RATE_CONTROL_HARD_CAP,
            Anonymous: JOBOBJECT_CPU_RATE_CONTROL_INFORMATION_0 {
                CpuRate: limits.cpu_rate,
            },
        };
        set(&job, JobObjectCpuRateControlInformation, &rate)?;
        let ui = JOBOBJECT_BASIC_UI_RESTRICTIONS {
            UIRestrictionsClass: limits.ui.iter().fold(0, |flags, r| flags | ui_flag(*r)),
        };
        set(&job, JobObjectBasicUIRestrictions, &ui)?;
        Ok(job)
    }

    /// Resumes the threads of a process created suspended, once it is in
    /// the job (so nothing it starts can escape the job).
    #[allow(unsafe_code)]
    fn resume(pid: u32) -> Result<(), SandboxError> {
        // SAFETY: a thread snapshot of the system; checked before use and
        // owned (closed) by the `OwnedHandle`.
        let snapshot = unsafe { CreateToolhelp32Snapshot(TH32CS_SNAPTHREAD, 0) };
        if snapshot == INVALID_HANDLE_VALUE {
            return Err(failed("listing the program's threads"));
        }
        // SAFETY: `snapshot` is a valid handle this function owns.
        let snapshot = unsafe { OwnedHandle::from_raw_handle(snapshot as _) };
        // SAFETY: all-zero is valid; `dwSize` is set as the API requires.
        let mut entry: THREADENTRY32 = unsafe { std::mem::zeroed() };
        entry.dwSize = u32::try_from(std::mem::size_of::<THREADENTRY32>()).unwrap_or(0);
        let mut resumed = 0;
        // SAFETY: the snapshot handle is open and `entry` is a valid,
        // correctly sized out-parameter for each call.
        let mut more = unsafe { Thread32First(snapshot.as_raw_handle() as HANDLE, &mut entry) };
        while more != 0 {
            if entry.th32OwnerProcessID == pid {
                // SAFETY: opening a thread by id; checked, then closed.
                let thread = unsafe { OpenThread(THREAD_SUSPEND_RESUME, 0, entry.th32ThreadID) };
                if !thread.is_null() {
                    // SAFETY: `thread` is open with suspend/resume access.
                    let thread = unsafe { OwnedHandle::from_raw_handle(thread as _) };
                    // SAFETY: as above.
                    if unsafe { ResumeThread(thread.as_raw_handle() as HANDLE) } != u32::MAX {
                        resumed += 1;
                    }
                }
            }
            // SAFETY: as for `Thread32First`.
            more = unsafe { Thread32Next(snapshot.as_raw_handle() as HANDLE, &mut entry) };
        }
        if resumed == 0 {
            return Err(failed("starting the program's main thread"));
        }
        Ok(())
    }

    impl TierCBackend for WindowsJobObject {
        fn kind(&self) -> BackendKind {
            BackendKind::WindowsJobObject
        }

        fn confinement(&self) -> Confinement {
            Confinement::LIMITS_ONLY
        }

        #[allow(unsafe_code)]
        fn run(&self, plan: &Plan, input: &[u8]) -> Result<RunOutput, SandboxError> {
            let cpus = std::thread::available_parallelism().map_or(1, usize::from);
            let limits = job_limits(plan, cpus)?;
            let job = job(&limits)?;
            let mut command = Command::new(&plan.program);
            command
                .env_clear()
                .envs(plan.env.iter().map(|(k, v)| (k, v)))
                .args(&plan.args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .creation_flags(CREATE_SUSPENDED | CREATE_NO_WINDOW);
            if let Some(cwd) = &plan.cwd {
                command.current_dir(cwd);
            }
            let started = Instant::now();
            let mut child = command.spawn().map_err(|e| SandboxError::Spawn {
                detail: e.to_string(),
            })?;
            // SAFETY: both handles are open: the job above, the child's
            // process handle owned by `child`.
            let assigned = unsafe {
                AssignProcessToJobObject(
                    job.as_raw_handle() as HANDLE,
                    child.as_raw_handle() as HANDLE,
                )
            };
            if assigned == 0 {
                let error = failed("putting the program in its Job Object");
                let _ = child.kill();
                return Err(error);
            }
            if let Err(error) = resume(child.id()) {
                let _ = child.kill();
                return Err(error);
            }
            let job_handle = job.as_raw_handle() as HANDLE;
            let output = supervise(
                child,
                plan,
                input,
                started,
                // SAFETY: the job handle stays open until after `supervise`.
                || unsafe {
                    TerminateJobObject(job_handle, 1);
                },
                |status| Exit::Code(status.code().unwrap_or(-1)),
            );
            // Closing the job kills what the program left running.
            drop(job);
            output
        }
    }
}

// Generated-text tests only: they check the Job Object limits built for a
// plan, and run on Linux like the rest of the suite. CI only builds and
// lints this backend for Windows (`.ci/run`, `--target
// x86_64-pc-windows-gnu`): nothing runs a program under it, so none of its
// runtime behaviour is tested.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::ProcessLimits;
    use std::time::Duration;

    #[test]
    fn the_plan_s_limits_become_job_limits() {
        let plan = Plan::new("C:\\tools\\tool.exe").limits(ProcessLimits {
            cpu_seconds: 3,
            address_space_bytes: 512 << 20,
            processes: 4,
            wall_clock: Duration::from_secs(9),
            ..ProcessLimits::default()
        });
        let job = job_limits(&plan, 8).expect("limits");
        assert_eq!(job.process_memory_bytes, 512 << 20);
        assert_eq!(job.job_memory_bytes, 512 << 20);
        assert_eq!(job.active_processes, 4);
        assert_eq!(job.job_cpu_time_100ns, 30_000_000);
        assert_eq!(job.cpu_rate, 1250, "one core of eight");
        assert!(job.kill_on_close && job.die_on_unhandled_exception);
        for restriction in [
            UiRestriction::Desktop,
            UiRestriction::Handles,
            UiRestriction::ReadClipboard,
            UiRestriction::WriteClipboard,
            UiRestriction::ExitWindows,
        ] {
            assert!(job.ui.contains(&restriction), "{restriction:?}");
        }
        assert_eq!(job_limits(&plan, 1).expect("limits").cpu_rate, 10_000);
        assert_eq!(job_limits(&plan, 0).expect("limits").cpu_rate, 10_000);
    }

    #[test]
    fn strict_network_is_refused_not_faked() {
        let mut plan = Plan::new("tool.exe");
        plan.network = NetworkMode::Strict {
            channel_fd: 3,
            bridge: "bridge.exe".into(),
            trust: None,
        };
        let err = job_limits(&plan, 4).expect_err("cannot enforce");
        assert_eq!(err.code(), "sandbox_unsupported");
        assert!(err.to_string().contains("cannot confine the network"));
    }
}
