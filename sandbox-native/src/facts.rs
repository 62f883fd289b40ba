//! What this machine's sandbox can do, probed rather than assumed: a
//! replica attests to it before it serves (see airlock's `[fleet]`).

use std::ffi::OsString;

/// The sandbox facts of this machine.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct SandboxFacts {
    /// `bwrap` is on `PATH`.
    pub bubblewrap: bool,
    /// bubblewrap ran a program in fresh user (and all other) namespaces,
    /// as the sandbox runs every native tool and hosted server.
    pub user_namespaces: bool,
    /// The kernel filters system calls with seccomp.
    pub seccomp: bool,
}

impl SandboxFacts {
    /// Probes this machine, with `path` as the `PATH` to find `bwrap` in.
    pub fn probe(path: Option<OsString>) -> Self {
        let bwrap = crate::find_program("bwrap".as_ref(), path);
        let user_namespaces = bwrap.as_ref().is_some_and(|bwrap| {
            std::process::Command::new(bwrap)
                .args(["--unshare-all", "--ro-bind", "/", "/", "--", "/bin/true"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .status()
                .is_ok_and(|status| status.success())
        });
        Self {
            bubblewrap: bwrap.is_some(),
            user_namespaces,
            seccomp: seccomp_available(),
        }
    }
}

/// Whether the kernel filters system calls with seccomp (BPF filters and
/// the errno action the sandbox's filter returns): Linux lists the actions
/// it supports in `actions_avail` when it has filters at all.
fn seccomp_available() -> bool {
    std::fs::read_to_string("/proc/sys/kernel/seccomp/actions_avail")
        .is_ok_and(|actions| actions.split_whitespace().any(|action| action == "errno"))
}

#[cfg(test)]
mod tests {
    use super::SandboxFacts;

    #[test]
    fn without_bwrap_on_path_nothing_runs_in_namespaces() {
        let dir = tempfile::tempdir().expect("tempdir");
        let facts = SandboxFacts::probe(Some(dir.path().as_os_str().to_owned()));
        assert!(!facts.bubblewrap && !facts.user_namespaces);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn this_machine_has_the_sandbox_the_tests_run_in() {
        let facts = SandboxFacts::probe(std::env::var_os("PATH"));
        assert_eq!(
            facts,
            SandboxFacts {
                bubblewrap: true,
                user_namespaces: true,
                seccomp: true
            },
            "the test set-up installs bubblewrap (bash .ci/test)"
        );
    }
}
