//! From a [`NativeSpec`] to a sandbox [`Plan`], and from the sandbox's
//! [`RunOutput`](airlock_sandbox::RunOutput) back to an [`Outcome`] in the
//! same terms as a component's.

use super::NativeSpec;
use crate::limits::Limits;
use crate::outcome::Captured;
use crate::outcome::{LimitExceeded, Outcome, RunReport, ToolError, ToolErrorKind};
use airlock_sandbox::{Access, Exit, Plan};
use std::path::{Path, PathBuf};

fn text(captured: &airlock_sandbox::CappedStream) -> Captured {
    Captured {
        text: String::from_utf8_lossy(&captured.bytes).into_owned(),
        dropped_bytes: captured.dropped,
    }
}

/// `dirs`, comma-separated, for an approver to read.
pub(crate) fn listed_paths(dirs: &[PathBuf]) -> String {
    dirs.iter()
        .map(|d| d.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}

/// A granted directory: where it is on the host (canonical, as checked at
/// load; the sandbox binds exactly that) and where the program sees it (as
/// configured).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Granted {
    pub(crate) host: PathBuf,
    pub(crate) sandbox: PathBuf,
    /// Where the path as configured passes before each `..` (made inside
    /// the sandbox, so that the program, told the configured path, walks
    /// it there as on the host).
    pub(crate) passes: Vec<PathBuf>,
}

impl Granted {
    /// `dir` as configured, resolved on the host.
    pub(crate) fn resolve(dir: &Path) -> std::io::Result<Self> {
        let host = dir.canonicalize()?;
        if !host.is_dir() {
            return Err(std::io::Error::other("not a directory"));
        }
        let mut passes = Vec::new();
        let mut walked = PathBuf::new();
        for part in dir.components() {
            if part == std::path::Component::ParentDir {
                passes.push(crate::protected::path::lexical(&walked));
            }
            walked.push(part);
        }
        // Mounted at the place the path names (a mount written with `..`
        // would be ordered and compared by its spelling).
        Ok(Self {
            host,
            sandbox: crate::protected::path::lexical(dir),
            passes,
        })
    }
}

/// What a native program sees beyond the system: `files` read-only at
/// their own paths (the program itself, a hosted server's interpreter no
/// grant shows), `links` made again inside (a hosted server's command's
/// links), the granted directories (the first writable one is the working
/// directory).
pub(crate) struct Visible<'a> {
    pub(crate) files: &'a [PathBuf],
    pub(crate) links: &'a [(PathBuf, PathBuf)],
    pub(crate) read: &'a [Granted],
    pub(crate) write: &'a [Granted],
}

/// What every native program's plan starts from: `program` with `args`,
/// what is `visible`, a fixed `PATH` and locale and nothing else of the
/// environment, `limits`.
pub(crate) fn base_plan(
    program: &Path,
    visible: &Visible<'_>,
    args: &[String],
    limits: airlock_sandbox::ProcessLimits,
) -> Plan {
    let mut plan = Plan::new(program)
        .args(args.iter())
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("LANG", "C.UTF-8")
        .limits(limits);
    for file in visible.files {
        plan = plan.mount(file, file, Access::ReadOnly);
    }
    for (at, target) in visible.links {
        plan = plan.link(at, target);
    }
    for pass in visible
        .read
        .iter()
        .chain(visible.write)
        .flat_map(|d| &d.passes)
    {
        plan = plan.dir(pass);
    }
    for dir in visible.read {
        plan = plan.mount(&dir.host, &dir.sandbox, Access::ReadOnly);
    }
    for dir in visible.write {
        plan = plan.mount(&dir.host, &dir.sandbox, Access::ReadWrite);
    }
    if let Some(dir) = visible.write.first() {
        plan = plan.cwd(&dir.sandbox);
    }
    plan
}

/// The sandbox plan of a native tool's run, no network (a `strict` run
/// sets its proxy and bridge).
pub(super) fn plan_for(spec: &NativeSpec, limits: &Limits) -> Plan {
    // Loaded, a native tool's directories are canonical already.
    let at_home = |dirs: &[PathBuf]| -> Vec<Granted> {
        dirs.iter()
            .map(|dir| Granted {
                host: dir.clone(),
                sandbox: dir.clone(),
                passes: Vec::new(),
            })
            .collect()
    };
    base_plan(
        &spec.program,
        &Visible {
            files: std::slice::from_ref(&spec.program),
            links: &[],
            read: &at_home(&spec.fs_read),
            write: &at_home(&spec.fs_write),
        },
        &spec.args,
        airlock_sandbox::ProcessLimits {
            wall_clock: limits.timeout,
            output_bytes: limits.max_output_bytes,
            ..spec.limits.clone()
        },
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
        Exit::Code(0) => crate::outcome::completed(report.stdout.text.clone(), report),
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_grant_written_with_dot_dot_is_mounted_where_it_names_and_walkable_as_written() {
        let dir = tempfile::tempdir().expect("tempdir");
        let root = dir.path().canonicalize().expect("canonical");
        std::fs::create_dir_all(root.join("a/b")).expect("a/b");
        std::fs::create_dir(root.join("c")).expect("c");
        let granted = Granted::resolve(&root.join("a/b/../../c")).expect("resolves");
        assert_eq!(granted.sandbox, root.join("c"), "mounted where it names");
        assert_eq!(granted.passes, [root.join("a/b"), root.join("a")]);
        let plan = base_plan(
            Path::new("/bin/true"),
            &Visible {
                files: &[],
                links: &[],
                read: std::slice::from_ref(&granted),
                write: &[],
            },
            &[],
            airlock_sandbox::ProcessLimits::default(),
        );
        assert_eq!(
            plan.dirs, granted.passes,
            "made inside, so `a/b/../..` walks"
        );
    }
}
