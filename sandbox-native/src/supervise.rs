//! Watching a sandboxed program to its end, the same on every platform:
//! its input fed, its output captured up to the cap, the wall-clock limit
//! and cancellation enforced by the backend's `kill`.

use crate::cancel::Waited;
use crate::output::{CappedStream, Exit, RunOutput, capture};
use std::io::Read;

/// Watches a started `child` to its end: feeds `input`, captures stdout
/// and stderr up to the plan's cap and, at the wall-clock limit or when the
/// plan's [`Cancel`](crate::Cancel) fires, calls `kill` (which must end
/// everything the program started) and waits for the child. `exit_of` says
/// what a normal end means on this platform.
pub(crate) fn supervise(
    mut child: std::process::Child,
    plan: &crate::plan::Plan,
    input: &[u8],
    started: std::time::Instant,
    kill: impl FnOnce(),
    exit_of: impl FnOnce(std::process::ExitStatus) -> Exit,
) -> Result<RunOutput, crate::SandboxError> {
    let cap = plan.limits.output_bytes;
    let stdout = capture_in_background(child.stdout.take(), cap);
    let stderr = capture_in_background(child.stderr.take(), cap);
    feed(child.stdin.take(), input);
    let (done, waited) = std::sync::mpsc::channel();
    if let Some(cancel) = &plan.cancel {
        cancel.notify(done.clone());
    }
    let ended = until_ended(&child);
    std::thread::spawn(move || {
        let _ = done.send(Waited::Exited(ended()));
    });
    let end_early = |exit: Exit| {
        kill();
        // The cancel signal may still be queued before the child's end.
        while let Ok(message) = waited.recv() {
            if let Waited::Exited(_) = message {
                break;
            }
        }
        exit
    };
    let failed = |e: std::io::Error| crate::SandboxError::Spawn {
        detail: format!("waiting for the program failed: {e}"),
    };
    let exit = match waited.recv_timeout(plan.limits.wall_clock) {
        Ok(Waited::Exited(Ok(()))) => exit_of(child.wait().map_err(failed)?),
        Ok(Waited::Exited(Err(e))) => return Err(failed(e)),
        Ok(Waited::Cancelled) => end_early(Exit::Cancelled),
        Err(_) => end_early(Exit::TimedOut),
    };
    // Reaped only now: until here the pid stayed taken, so `kill` could
    // not reach a process that reused it.
    let _ = child.wait();
    Ok(RunOutput {
        exit,
        stdout: join(stdout),
        stderr: join(stderr),
        duration: started.elapsed(),
    })
}

/// A blocking wait for `child`'s end that leaves it unreaped: its pid
/// stays taken until the supervisor's own `wait`.
#[cfg(unix)]
fn until_ended(
    child: &std::process::Child,
) -> impl FnOnce() -> std::io::Result<()> + Send + 'static {
    use rustix::process::{WaitId, WaitIdOptions, waitid};
    let pid = rustix::process::Pid::from_child(child);
    move || loop {
        match waitid(
            WaitId::Pid(pid),
            WaitIdOptions::EXITED | WaitIdOptions::NOWAIT,
        ) {
            Err(rustix::io::Errno::INTR) => {}
            ended => return ended.map(drop).map_err(std::io::Error::from),
        }
    }
}

/// A blocking wait for `child`'s end on a handle of its own (the child's
/// handle keeps its id from being reused until the supervisor drops it).
#[cfg(windows)]
#[allow(unsafe_code)]
fn until_ended(
    child: &std::process::Child,
) -> impl FnOnce() -> std::io::Result<()> + Send + 'static {
    use std::os::windows::io::{AsHandle, AsRawHandle};
    use windows_sys::Win32::System::Threading::{INFINITE, WaitForSingleObject};
    let handle = child.as_handle().try_clone_to_owned();
    move || {
        let handle = handle?;
        // SAFETY: `handle` is an open process handle owned by this closure.
        unsafe { WaitForSingleObject(handle.as_raw_handle() as _, INFINITE) };
        Ok(())
    }
}

/// Starts capturing a child's stream on its own thread.
fn capture_in_background(
    stream: Option<impl Read + Send + 'static>,
    cap: usize,
) -> Option<std::thread::JoinHandle<CappedStream>> {
    stream.map(|s| std::thread::spawn(move || capture(s, cap)))
}

/// What a capture thread kept (nothing if it could not be joined).
fn join(handle: Option<std::thread::JoinHandle<CappedStream>>) -> CappedStream {
    handle.and_then(|h| h.join().ok()).unwrap_or_default()
}

/// Writes `input` to a child's stdin on its own thread, so a program that
/// never reads its input cannot block the runner.
fn feed(stdin: Option<impl std::io::Write + Send + 'static>, input: &[u8]) {
    if let Some(mut stdin) = stdin {
        let input = input.to_vec();
        std::thread::spawn(move || {
            let _ = stdin.write_all(&input);
        });
    }
}
