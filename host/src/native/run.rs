//! From a [`NativeSpec`] to a sandbox [`Plan`], and from the sandbox's
//! [`RunOutput`](airlock_sandbox::RunOutput) back to an [`Outcome`] in the
//! same terms as a component's.

use super::NativeSpec;
use crate::limits::Limits;
use crate::outcome::{LimitExceeded, Outcome, RunReport, ToolError, ToolErrorKind};
use crate::runtime::Captured;
use airlock_sandbox::{Access, Exit, Plan};
use std::path::{Path, PathBuf};

fn text(captured: &airlock_sandbox::CappedStream) -> Captured {
    Captured {
        text: String::from_utf8_lossy(&captured.bytes).into_owned(),
        dropped_bytes: captured.dropped,
    }
}

/// A call's limits for a native program (a tool run, or a hosted server's
/// call) under `process`: its wall clock and output cap over `base` (the
/// host's defaults).
pub(crate) fn call_limits(process: &airlock_sandbox::ProcessLimits, base: Limits) -> Limits {
    Limits {
        timeout: process.wall_clock,
        max_output_bytes: process.output_bytes,
        max_stdio_bytes: process.output_bytes,
        ..base
    }
}

/// `dirs`, comma-separated, for an approver to read.
pub(crate) fn listed_paths(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// What every native program's plan starts from: `program` with `args`,
/// the `files` it needs visible read-only at their own paths (the program
/// itself, or a hosted server's links no grant shows), the granted
/// directories at their host paths (the first writable one is the working
/// directory), a fixed `PATH` and locale and nothing else of the
/// environment, `limits`.
pub(crate) fn base_plan(
    program: &Path,
    files: &[PathBuf],
    args: &[String],
    limits: airlock_sandbox::ProcessLimits,
    fs_read: &[PathBuf],
    fs_write: &[PathBuf],
) -> Plan {
    let mut plan = Plan::new(program)
        .args(args.iter())
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .limits(limits);
    for file in files {
        plan = plan.mount(file, file, Access::ReadOnly);
    }
    for dir in fs_read {
        plan = plan.mount(dir, dir, Access::ReadOnly);
    }
    for dir in fs_write {
        plan = plan.mount(dir, dir, Access::ReadWrite);
    }
    if let Some(dir) = fs_write.first() {
        plan = plan.cwd(dir);
    }
    plan
}

/// The sandbox plan of a native tool's run, no network (a `strict` run
/// sets its proxy and bridge).
pub(super) fn plan_for(spec: &NativeSpec, limits: &Limits) -> Plan {
    base_plan(
        &spec.program,
        std::slice::from_ref(&spec.program),
        &spec.args,
        airlock_sandbox::ProcessLimits {
            wall_clock: limits.timeout,
            output_bytes: limits.max_output_bytes,
            ..spec.limits.clone()
        },
        &spec.fs_read,
        &spec.fs_write,
    )
}

/// What a finished native run means, in the same terms as a component's.
pub(super) fn outcome_of(
    output: airlock_sandbox::RunOutput,
    egress: Vec<crate::EgressRecord>,
    invocation_id: String,
    limits: Limits,
) -> Outcome {
    let report = RunReport {
        invocation_id,
        duration: output.duration,
        limits: limits.clone(),
        fuel_consumed: None,
        memory_peak_bytes: 0,
        stdout: text(&output.stdout),
        stderr: text(&output.stderr),
        egress,
    };
    let stderr_tail = || {
        let text = &report.stderr.text;
        let start = text.len().saturating_sub(400);
        text.get(start..).unwrap_or_default().trim().to_string()
    };
    match output.exit {
        Exit::TimedOut => Outcome::LimitExceeded {
            limit: LimitExceeded::Deadline {
                timeout: limits.timeout,
            },
            report,
        },
        Exit::Cancelled => Outcome::LimitExceeded {
            limit: LimitExceeded::Cancelled,
            report,
        },
        Exit::Code(0) if output.stdout.dropped > 0 => Outcome::LimitExceeded {
            limit: LimitExceeded::OutputTooLarge {
                limit: limits.max_output_bytes,
                actual: output.stdout.bytes.len() + output.stdout.dropped as usize,
            },
            report,
        },
        Exit::Code(0) => crate::invocation::completed(report.stdout.text.clone(), report),
        Exit::Code(code) => Outcome::ToolError {
            error: ToolError {
                kind: ToolErrorKind::Failed,
                message: format!("the program exited with status {code}: {}", stderr_tail()),
            },
            report,
        },
        Exit::Signal(signal) => Outcome::ToolError {
            error: ToolError {
                kind: ToolErrorKind::Failed,
                message: format!(
                    "the program was killed by signal {signal}{}",
                    if signal == 24 {
                        " (its CPU time limit)"
                    } else {
                        ""
                    }
                ),
            },
            report,
        },
    }
}
