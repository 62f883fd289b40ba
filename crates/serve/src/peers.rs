//! Local peers: who may be trusted on the other end of a Unix socket.
//!
//! `SO_PEERCRED` reports a peer's uid, gid and pid as the server's
//! namespaces see them. The uid alone proves little: unprivileged
//! bubblewrap maps a sandbox's user to the server's own uid, and a server
//! running as root runs its sandboxes as `nobody`, which other processes
//! share. So a peer counts as a person only when it also runs in the
//! server's own user and PID namespaces, which no airlock sandbox (and no
//! container) does. On other Unix systems there are no namespaces; there
//! the protected paths keep every sandbox away from the socket.

/// Why a peer is not one of this machine's own processes.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum PeerError {
    /// The kernel gave no pid: the peer's PID namespace is not below ours.
    #[error(
        "the caller's process is not visible from the server's PID namespace: a process in a sandbox or container is never an operator"
    )]
    Invisible,
    /// The peer runs in another namespace.
    #[error(
        "the caller (pid {pid}) runs in another {namespace} namespace than the server: a process in a sandbox or container is never an operator"
    )]
    OtherNamespace {
        /// The peer's pid, as the server sees it.
        pid: i32,
        /// `user` or `pid`.
        namespace: &'static str,
    },
    /// The process with the peer's pid started after the connection was
    /// accepted: the peer is gone and its pid was given to another.
    #[error(
        "the caller (pid {pid}) is gone and its pid belongs to a process started since: refused"
    )]
    Replaced {
        /// The pid.
        pid: i32,
    },
    /// Its namespaces could not be read.
    #[error("the caller's namespaces (pid {pid}) could not be read ({detail}): refused")]
    Unreadable {
        /// The peer's pid.
        pid: i32,
        /// Why.
        detail: String,
    },
}

impl PeerError {
    /// Stable reason code.
    pub(crate) fn code(&self) -> &'static str {
        match self {
            Self::Invisible | Self::OtherNamespace { .. } | Self::Replaced { .. } => {
                "foreign_namespace"
            }
            Self::Unreadable { .. } => "peer_unknown",
        }
    }
}

/// When a connection was accepted, in the clock process start times are
/// counted in (ticks since boot); `None` where that cannot be read.
pub(crate) fn accepted_now() -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        let uptime = std::fs::read_to_string("/proc/uptime").ok()?;
        let seconds: f64 = uptime.split_whitespace().next()?.parse().ok()?;
        let ticks = rustix::param::clock_ticks_per_second();
        // Whole ticks: uptime is printed to the hundredth of a second.
        Some((seconds * ticks as f64) as u64)
    }
    #[cfg(not(target_os = "linux"))]
    {
        None
    }
}

/// When process `pid` started, in ticks since boot (`/proc/PID/stat`).
#[cfg(target_os = "linux")]
fn started(pid: i32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name, which may hold spaces and ')'; the
    // start time is the 22nd field overall, the 20th after the name.
    let after = stat.rsplit_once(')')?.1;
    after.split_whitespace().nth(19)?.parse().ok()
}

/// Checks that the peer with `pid` (from `SO_PEERCRED`) runs in this
/// process's user and PID namespaces, and that the pid is still the peer's:
/// a process that started after the connection was `accepted` (see
/// [`accepted_now`]) got the pid of a peer that has gone.
#[cfg(target_os = "linux")]
pub(crate) fn same_namespaces(pid: Option<i32>, accepted: Option<u64>) -> Result<(), PeerError> {
    let pid = match pid {
        Some(pid) if pid > 0 => pid,
        _ => return Err(PeerError::Invisible),
    };
    let still_the_peer = |pid| match (accepted, started(pid)) {
        // One tick of slack for the two clocks' rounding.
        (Some(accepted), Some(started)) => started <= accepted + 1,
        _ => false,
    };
    if !still_the_peer(pid) {
        return Err(PeerError::Replaced { pid });
    }
    for namespace in ["user", "pid"] {
        let verdict = same_namespace(pid, namespace);
        // Read again after: the namespaces read were the peer's only if the
        // pid was still its at the end.
        if !still_the_peer(pid) {
            return Err(PeerError::Replaced { pid });
        }
        match verdict {
            Ok(true) => {}
            Ok(false) => return Err(PeerError::OtherNamespace { pid, namespace }),
            // Another user's process (a configured operator) whose
            // namespace links we may not follow: decide from what any
            // process may read instead.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                if !same_by_public_files(pid, namespace)? {
                    return Err(PeerError::OtherNamespace { pid, namespace });
                }
            }
            Err(e) => {
                return Err(PeerError::Unreadable {
                    pid,
                    detail: e.to_string(),
                });
            }
        }
    }
    Ok(())
}

/// No namespaces to compare off Linux.
#[cfg(not(target_os = "linux"))]
pub fn same_namespaces(_pid: Option<i32>, _accepted: Option<u64>) -> Result<(), PeerError> {
    Ok(())
}

/// Whether `/proc/PID/ns/NAME` is the same namespace as ours (the links
/// resolve to one nsfs inode per namespace).
#[cfg(target_os = "linux")]
fn same_namespace(pid: i32, namespace: &str) -> std::io::Result<bool> {
    use std::os::unix::fs::MetadataExt;
    let ours = std::fs::metadata(format!("/proc/self/ns/{namespace}"))?;
    let theirs = std::fs::metadata(format!("/proc/{pid}/ns/{namespace}"))?;
    Ok(ours.dev() == theirs.dev() && ours.ino() == theirs.ino())
}

/// The same question from world-readable files: a process in a PID
/// namespace below ours has more `NSpid` entries than we do; one in another
/// user namespace shows another `uid_map` (relative to ours).
#[cfg(target_os = "linux")]
fn same_by_public_files(pid: i32, namespace: &str) -> Result<bool, PeerError> {
    let read = |path: String| {
        std::fs::read_to_string(&path).map_err(|e| PeerError::Unreadable {
            pid,
            detail: format!("{path}: {e}"),
        })
    };
    Ok(match namespace {
        "pid" => {
            let depth = |status: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix("NSpid:"))
                    .map(|pids| pids.split_whitespace().count())
            };
            let ours = depth(&read("/proc/self/status".into())?);
            ours.is_some() && ours == depth(&read(format!("/proc/{pid}/status"))?)
        }
        _ => read("/proc/self/uid_map".into())? == read(format!("/proc/{pid}/uid_map"))?,
    })
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[test]
    fn this_process_is_its_own_peer_and_pid_zero_is_nobody() {
        let now = accepted_now();
        assert!(now.is_some(), "the clock is readable");
        same_namespaces(Some(std::process::id() as i32), now).expect("ours");
        let refused = same_namespaces(Some(0), now).expect_err("invisible");
        assert_eq!(refused.code(), "foreign_namespace");
        assert!(matches!(
            same_namespaces(None, now),
            Err(PeerError::Invisible)
        ));
    }

    #[test]
    fn a_pid_given_to_a_process_started_after_the_connection_is_refused() {
        // As if the connection had been accepted before this process began.
        let before = started(std::process::id() as i32).expect("start time");
        let refused = same_namespaces(
            Some(std::process::id() as i32),
            Some(before.saturating_sub(5)),
        )
        .expect_err("started after");
        assert!(matches!(refused, PeerError::Replaced { .. }), "{refused}");
        assert_eq!(refused.code(), "foreign_namespace");
    }

    #[test]
    fn the_public_files_agree_with_the_links_for_our_own_process() {
        let pid = std::process::id() as i32;
        for namespace in ["user", "pid"] {
            assert!(
                same_by_public_files(pid, namespace).expect("readable"),
                "{namespace}"
            );
        }
    }
}
