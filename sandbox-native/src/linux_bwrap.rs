//! The Linux backend: the arguments `bwrap` gets for a [`Plan`]. Every
//! namespace is unshared, capabilities are dropped, the system directories
//! and a short list of `/etc` files are visible read-only, and nothing else
//! of the host is: no home, no `/etc/shadow`, no host `/proc` or `/dev`.

use crate::plan::{
    Access, NetworkMode, PERSISTENCE_PATHS, Plan, TRUST_IN_SANDBOX, TRUST_VARIABLES,
};
use std::ffi::OsString;
use std::path::{Path, PathBuf};

/// System directories every program needs, read-only when they exist.
const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// `/etc` entries dynamic programs and TLS clients read; nothing with
/// secrets (`shadow`, `sudoers`, `ssh/`) is on the list.
const ETC_FILES: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/alternatives",
    "/etc/ssl/certs",
    "/etc/ca-certificates",
    "/etc/passwd",
    "/etc/group",
    "/etc/nsswitch.conf",
    "/etc/localtime",
];

pub use crate::plan::{SANDBOX_GID, SANDBOX_UID};

/// The first argument of the bridge: the `airlock` binary acts as the
/// bridge when started with it (the `airlock-bridge` program ignores it).
pub const BRIDGE_COMMAND: &str = "__bridge";
/// Where the bridge listens inside the sandbox (its own loopback).
pub const BRIDGE_LISTEN: &str = "127.0.0.1:3128";
/// `prlimit` (util-linux), which sets the process limit inside the
/// sandbox. RLIMIT_NPROC set before `bwrap` would also count every process
/// the calling user has outside (the kernel checks it at each user-namespace
/// level), so an ordinary user with more processes than the limit could not
/// start a sandbox at all; set inside, it counts only the sandbox's own.
pub const PRLIMIT: &str = "/usr/bin/prlimit";

/// Whether the process limit is set inside the sandbox (by [`PRLIMIT`]);
/// otherwise the runner sets it before `bwrap` starts.
pub fn limits_processes_inside(existing: &dyn Fn(&Path) -> bool) -> bool {
    existing(Path::new(PRLIMIT))
}

/// Where the bridge program appears inside the sandbox.
pub const BRIDGE_IN_SANDBOX: &str = "/run/airlock/bridge";

fn push(args: &mut Vec<OsString>, parts: &[&str]) {
    args.extend(parts.iter().map(OsString::from));
}

fn bind(args: &mut Vec<OsString>, flag: &str, host: &Path, inside: &Path) {
    args.push(flag.into());
    args.push(host.into());
    args.push(inside.into());
}

/// Binds host path `host` at `inside`: by the descriptor it was opened as
/// when there is one (every mount, pin and persistence path at spawn: see
/// [`crate::pinned`]), else by path (the system directories, the bridge).
fn bind_host(
    args: &mut Vec<OsString>,
    access: Access,
    host: &Path,
    inside: &Path,
    pinned: &dyn Fn(&Path) -> Option<i32>,
) {
    let read_only = access == Access::ReadOnly;
    match pinned(host) {
        Some(fd) => {
            let flag = if read_only {
                "--ro-bind-fd"
            } else {
                "--bind-fd"
            };
            push(args, &[flag, &fd.to_string()]);
            args.push(inside.into());
        }
        None => bind(
            args,
            if read_only { "--ro-bind" } else { "--bind" },
            host,
            inside,
        ),
    }
}

/// The full `bwrap` argument list for `plan`, ending with `--`, the program
/// and its arguments, binding every host path by path. `existing` says
/// whether a host path exists (a parameter so the list can be tested
/// without touching the file system); `seccomp_fd` is the descriptor bwrap
/// reads the seccomp filter from. A run binds the descriptors the paths
/// were opened as instead ([`arguments_pinned`]).
pub fn arguments(
    plan: &Plan,
    existing: &dyn Fn(&Path) -> bool,
    seccomp_fd: Option<i32>,
) -> Vec<OsString> {
    arguments_pinned(plan, existing, seccomp_fd, &|_| None, None)
}

/// As [`arguments`], each host path that `pinned` has a descriptor for
/// bound by that descriptor, and the trust bundle copied from `trust_fd`
/// when there is one.
pub fn arguments_pinned(
    plan: &Plan,
    existing: &dyn Fn(&Path) -> bool,
    seccomp_fd: Option<i32>,
    pinned: &dyn Fn(&Path) -> Option<i32>,
    trust_fd: Option<i32>,
) -> Vec<OsString> {
    let mut args = Vec::new();
    push(
        &mut args,
        &[
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup",
            "--unshare-net",
            "--die-with-parent",
            "--new-session",
            "--disable-userns",
            "--cap-drop",
            "ALL",
            "--clearenv",
        ],
    );
    if let Some(fd) = seccomp_fd {
        push(&mut args, &["--seccomp", &fd.to_string()]);
    }
    push(
        &mut args,
        &[
            "--uid",
            &SANDBOX_UID.to_string(),
            "--gid",
            &SANDBOX_GID.to_string(),
        ],
    );
    push(&mut args, &["--hostname", "airlock-sandbox"]);
    for dir in SYSTEM_DIRS.iter().chain(ETC_FILES) {
        let path = Path::new(dir);
        if existing(path) {
            bind(&mut args, "--ro-bind", path, path);
        }
    }
    push(
        &mut args,
        &["--proc", "/proc", "--dev", "/dev", "--tmpfs", "/tmp"],
    );
    for dir in &plan.dirs {
        args.push("--dir".into());
        args.push(dir.into());
    }
    for (at, target) in &plan.links {
        args.push("--symlink".into());
        args.push(target.into());
        args.push(at.into());
    }
    for bound in binds_in_order(plan) {
        bind_host(&mut args, bound.access, &bound.host, &bound.sandbox, pinned);
    }
    for mount in plan.mounts.iter().filter(|m| m.access == Access::ReadWrite) {
        // Read-only over whatever is bound beneath: missing ones got
        // stand-ins before the run (see `persistence`); in a run, only the
        // ones opened are bound (`pinned` decides, not a second look).
        for host in persistence_paths(mount) {
            let inside = mount
                .sandbox
                .join(host.strip_prefix(&mount.host).unwrap_or(&host));
            // A grant of its own at the same place already: bound as
            // granted, once. (Granted elsewhere too, it is still covered
            // here.)
            if plan
                .mounts
                .iter()
                .any(|m| m.host == host && m.sandbox == inside)
            {
                continue;
            }
            let present = match pinned(&host) {
                Some(_) => true,
                None => existing(&host) && pinned(&mount.host).is_none(),
            };
            if present {
                bind_host(&mut args, Access::ReadOnly, &host, &inside, pinned);
            }
        }
    }
    hide(&mut args, plan);
    if let NetworkMode::Strict { bridge, .. } = &plan.network {
        bind(&mut args, "--ro-bind", bridge, Path::new(BRIDGE_IN_SANDBOX));
    }
    for (key, value) in &plan.env {
        push(&mut args, &["--setenv", key, value]);
    }
    // After the plan's own variables, so a configured value cannot point
    // the runtimes elsewhere.
    if let NetworkMode::Strict {
        trust: Some(trust), ..
    } = &plan.network
    {
        match trust_fd {
            // Copied in by bwrap from a descriptor: it resolves paths as
            // the sandbox's user, who may not reach the file's directory.
            Some(fd) => push(
                &mut args,
                &[
                    "--perms",
                    "0444",
                    "--ro-bind-data",
                    &fd.to_string(),
                    TRUST_IN_SANDBOX,
                ],
            ),
            None => bind(&mut args, "--ro-bind", trust, Path::new(TRUST_IN_SANDBOX)),
        }
        for key in TRUST_VARIABLES {
            push(&mut args, &["--setenv", key, TRUST_IN_SANDBOX]);
        }
    }
    let cwd = plan.cwd.clone().unwrap_or_else(|| PathBuf::from("/"));
    args.push("--chdir".into());
    args.push(cwd.into());
    args.push("--".into());
    if limits_processes_inside(existing) {
        let nproc = format!("--nproc={}", plan.limits.processes);
        push(&mut args, &[PRLIMIT, &nproc, "--"]);
    }
    if let NetworkMode::Strict { channel_fd, .. } = plan.network {
        push(
            &mut args,
            &[
                BRIDGE_IN_SANDBOX,
                BRIDGE_COMMAND,
                "--listen",
                BRIDGE_LISTEN,
                "--channel-fd",
                &channel_fd.to_string(),
                "--",
            ],
        );
    }
    args.push(plan.program.clone().into());
    args.extend(plan.args.iter().cloned());
    args
}

/// Covers the plan's hidden paths, after every mount so no bind uncovers
/// them: a directory with an empty tmpfs no one may enter (mode 0000,
/// remounted read-only so its owner cannot chmod it open), a file or
/// socket with `/dev/null` (bound `nodev`: it cannot be opened, and a
/// `connect` to it is refused). A covered path is a mount point, so it
/// cannot be renamed or removed from inside either.
fn hide(args: &mut Vec<OsString>, plan: &Plan) {
    for hidden in &plan.hidden {
        if hidden.dir {
            push(args, &["--perms", "0000", "--tmpfs"]);
            args.push(hidden.sandbox.clone().into());
            args.push("--remount-ro".into());
            args.push(hidden.sandbox.clone().into());
        } else {
            bind(args, "--ro-bind", Path::new("/dev/null"), &hidden.sandbox);
        }
    }
}

/// The persistence paths of writable `mount`, on the host.
fn persistence_paths(mount: &crate::plan::Mount) -> impl Iterator<Item = PathBuf> + '_ {
    PERSISTENCE_PATHS
        .iter()
        .map(|persistent| mount.host.join(persistent.path))
}

/// The mounts and the pins (directories on the way to a covered path,
/// bound over themselves: as mount points they cannot be renamed, so a
/// covered path cannot be carried away from its cover), parents before
/// what lies inside them, so a read-only grant nested in a writable one
/// stays read-only. A pin that is a mount or a persistence path already
/// (the same host path at the same place inside) is a mount point, and is
/// not bound twice.
fn binds_in_order(plan: &Plan) -> Vec<crate::plan::Mount> {
    let persistence: Vec<(PathBuf, PathBuf)> = plan
        .mounts
        .iter()
        .filter(|m| m.access == Access::ReadWrite)
        .flat_map(|mount| {
            PERSISTENCE_PATHS
                .iter()
                .map(|p| (mount.host.join(p.path), mount.sandbox.join(p.path)))
        })
        .collect();
    let mut binds: Vec<crate::plan::Mount> = plan.mounts.clone();
    for pin in &plan.pins {
        let bound = binds
            .iter()
            .any(|b| b.host == pin.host && b.sandbox == pin.sandbox)
            || persistence
                .iter()
                .any(|(host, sandbox)| *host == pin.host && *sandbox == pin.sandbox);
        if !bound {
            binds.push(pin.clone());
        }
    }
    binds.sort_by_key(|b| b.sandbox.components().count());
    binds
}

/// The bubblewrap backend: `bwrap` at `program`, with the arguments above,
/// a seccomp filter, the plan's limits, and root dropped first.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LinuxBubblewrap {
    /// The `bwrap` executable.
    pub program: PathBuf,
}

#[cfg(target_os = "linux")]
impl crate::unix::Prepares for LinuxBubblewrap {
    const KIND: crate::BackendKind = crate::BackendKind::LinuxBubblewrap;

    /// `bwrap` with the plan's arguments, the seccomp filter it inherits,
    /// stand-ins for missing persistence paths, and the limits.
    fn prepare(&self, plan: &Plan) -> Result<crate::unix::Prepared, crate::SandboxError> {
        use crate::unix::{Confine, Prepared, command, confine, rlimits};
        use std::os::fd::AsRawFd;
        let filter = seccomp_filter()?;
        let filter_fd = filter.as_raw_fd();
        let existing = |p: &Path| p.exists();
        // Everything bound from a grant is opened now, without following
        // a link, and bound by descriptor: what runs sees what was checked.
        let mut pinned = crate::pinned::Pinned::default();
        for bound in binds_in_order(plan) {
            pinned.open(&bound.host)?;
        }
        let trust = match &plan.network {
            NetworkMode::Strict {
                trust: Some(trust), ..
            } => Some(trust_copy(trust)?),
            _ => None,
        };
        let trust_fd = trust.as_ref().map(|fd| fd.as_raw_fd());
        // Stand-ins are made through the grants' descriptors (never through
        // a link swapped in), and then every persistence path is opened.
        let stand_ins = crate::persistence::StandIns::create(plan, &pinned)?;
        for mount in plan.mounts.iter().filter(|m| m.access == Access::ReadWrite) {
            for host in persistence_paths(mount) {
                pinned.open(&host)?;
            }
        }
        let mut command = command(&self.program);
        command.args(arguments_pinned(
            plan,
            &existing,
            Some(filter_fd),
            &|p| pinned.fd(p),
            trust_fd,
        ));
        let nproc_outside = !limits_processes_inside(&existing);
        let mut inherited = pinned.numbers();
        inherited.push(filter_fd);
        inherited.extend(trust_fd);
        inherited.extend(channel_fd(plan));
        confine(
            &mut command,
            rlimits(&plan.limits, nproc_outside),
            Confine {
                inherited_fds: inherited,
                drop_root: true,
            },
        );
        Ok(Prepared {
            command,
            keep: vec![
                Box::new(filter),
                Box::new(stand_ins),
                Box::new(pinned),
                Box::new(trust),
            ],
        })
    }
}

/// The proxy channel's descriptor a strict plan's sandbox inherits.
#[cfg(target_os = "linux")]
pub(crate) fn channel_fd(plan: &Plan) -> Option<i32> {
    match plan.network {
        NetworkMode::Strict { channel_fd, .. } => Some(channel_fd),
        NetworkMode::None => None,
    }
}

/// The trust bundle at `path` in a memory file, at offset 0, for `bwrap
/// --ro-bind-data`.
#[cfg(target_os = "linux")]
fn trust_copy(path: &Path) -> Result<std::os::fd::OwnedFd, crate::SandboxError> {
    let failed = |e: std::io::Error| crate::SandboxError::Spawn {
        detail: format!("reading the trust bundle {}: {e}", path.display()),
    };
    let bundle = std::fs::read(path).map_err(failed)?;
    memory_file("airlock-trust", &bundle).map_err(failed)
}

/// `bytes` in a new memory file, at offset 0 (what bwrap reads a
/// descriptor's content from).
#[cfg(target_os = "linux")]
fn memory_file(name: &str, bytes: &[u8]) -> std::io::Result<std::os::fd::OwnedFd> {
    use rustix::fs::{MemfdFlags, SeekFrom, memfd_create, seek};
    use std::io::Write;
    let mut file = std::fs::File::from(memfd_create(name, MemfdFlags::CLOEXEC)?);
    file.write_all(bytes)?;
    seek(&file, SeekFrom::Start(0))?;
    Ok(file.into())
}

/// The seccomp program in a memory file, at offset 0, for `bwrap --seccomp`.
#[cfg(target_os = "linux")]
fn seccomp_filter() -> Result<std::os::fd::OwnedFd, crate::SandboxError> {
    let failed = |detail: String| crate::SandboxError::Spawn {
        detail: format!("preparing the seccomp filter: {detail}"),
    };
    // The filter is the same for every run: compile it once.
    static PROGRAM: std::sync::OnceLock<Result<Vec<u8>, String>> = std::sync::OnceLock::new();
    let program = PROGRAM
        .get_or_init(|| crate::seccomp::program().map_err(|e| e.to_string()))
        .as_ref()
        .map_err(|e| failed(e.clone()))?;
    memory_file("airlock-seccomp", program).map_err(|e| failed(e.to_string()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Plan;

    fn text(args: &[OsString]) -> Vec<String> {
        args.iter()
            .map(|a| a.to_string_lossy().into_owned())
            .collect()
    }

    /// The index of `flag` followed by `values`, if the list has it.
    fn find(args: &[String], flag: &str, values: &[&str]) -> Option<usize> {
        args.windows(values.len() + 1)
            .position(|w| w[0] == flag && w[1..].iter().zip(values).all(|(a, b)| a == b))
    }

    #[test]
    fn every_namespace_is_unshared_and_nothing_is_inherited() {
        let plan = Plan::new("/usr/bin/tool").args(["--flag"]).env("LANG", "C");
        let args = text(&arguments(&plan, &|_| true, Some(7)));
        for flag in [
            "--unshare-user",
            "--unshare-pid",
            "--unshare-ipc",
            "--unshare-uts",
            "--unshare-cgroup",
            "--unshare-net",
            "--die-with-parent",
            "--new-session",
            "--disable-userns",
            "--clearenv",
        ] {
            assert!(args.iter().any(|a| a == flag), "{flag} missing: {args:?}");
        }
        assert!(find(&args, "--cap-drop", &["ALL"]).is_some());
        assert!(find(&args, "--seccomp", &["7"]).is_some());
        assert!(find(&args, "--setenv", &["LANG", "C"]).is_some());
        assert!(find(&args, "--ro-bind", &["/usr", "/usr"]).is_some());
        assert!(
            find(&args, "--bind", &["/usr", "/usr"]).is_none(),
            "system dirs are read-only"
        );
        assert!(
            !args
                .iter()
                .any(|a| a.contains("shadow") || a.contains("/home"))
        );
        let tail = &args[args.len() - 3..];
        assert_eq!(tail, ["--", "/usr/bin/tool", "--flag"]);
    }

    #[test]
    fn a_writable_workspace_keeps_persistence_paths_read_only() {
        let plan = Plan::new("/bin/true").mount("/work/repo", "/workspace", Access::ReadWrite);
        let present = |p: &Path| {
            let p = p.to_string_lossy();
            !p.starts_with("/work/repo") || p.ends_with(".git") || p.ends_with(".bashrc")
        };
        let args = text(&arguments(&plan, &present, None));
        let rw = find(&args, "--bind", &["/work/repo", "/workspace"]).expect("workspace bound");
        let git = find(&args, "--ro-bind", &["/work/repo/.git", "/workspace/.git"])
            .expect("the whole .git read-only");
        assert!(git > rw, "the read-only bind comes after, so it wins");
        assert!(
            find(
                &args,
                "--ro-bind",
                &["/work/repo/.bashrc", "/workspace/.bashrc"]
            )
            .is_some()
        );
        assert!(
            !args.iter().any(|a| a.ends_with(".vscode")),
            "absent paths are not bound"
        );
    }

    #[test]
    fn hidden_paths_are_covered_after_the_mounts_that_contain_them() {
        let plan = Plan::new("/bin/true")
            .mount("/home/me/project", "/workspace", Access::ReadWrite)
            .hide("/home/me/project/.airlock", "/workspace/.airlock", true)
            .hide(
                "/home/me/project/airlock.toml",
                "/workspace/airlock.toml",
                false,
            );
        let args = text(&arguments(&plan, &|_| true, None));
        let mount = find(&args, "--bind", &["/home/me/project", "/workspace"]).expect("the grant");
        let dir = find(
            &args,
            "--perms",
            &["0000", "--tmpfs", "/workspace/.airlock"],
        )
        .expect("the state directory covered");
        assert!(
            find(&args, "--remount-ro", &["/workspace/.airlock"]).is_some_and(|i| i > dir),
            "its cover is read-only: {args:?}"
        );
        let file = find(
            &args,
            "--ro-bind",
            &["/dev/null", "/workspace/airlock.toml"],
        )
        .expect("the config covered");
        assert!(dir > mount && file > mount, "covers come after the grant");
        let persistence = find(
            &args,
            "--ro-bind",
            &["/home/me/project/.git", "/workspace/.git"],
        )
        .expect("persistence path");
        assert!(dir > persistence, "and after every other bind: {args:?}");
    }

    #[test]
    fn a_pin_is_bound_unless_the_same_path_is_bound_at_the_same_place() {
        // The project is granted twice; the state directory inside it is
        // covered at both places, so its parent must be pinned at both.
        let plan = Plan::new("/bin/true")
            .mount("/home/me/project", "/workspace", Access::ReadWrite)
            .mount("/home/me/project", "/mirror", Access::ReadOnly)
            .pin("/home/me/project", "/workspace", Access::ReadWrite)
            .pin("/home/me/project", "/mirror/sub", Access::ReadOnly)
            .pin("/home/me/project/.git", "/mirror/.git", Access::ReadOnly);
        let args = text(&arguments(&plan, &|_| true, None));
        let count = |pair: &[&str]| {
            args.windows(pair.len())
                .filter(|w| w.iter().zip(pair).all(|(a, b)| a == b))
                .count()
        };
        assert_eq!(count(&["/home/me/project", "/workspace"]), 1, "{args:?}");
        assert_eq!(count(&["/home/me/project", "/mirror/sub"]), 1, "{args:?}");
        // A persistence path of the writable grant is bound at /workspace,
        // not at /mirror: the pin there is still bound.
        assert_eq!(count(&["/home/me/project/.git", "/mirror/.git"]), 1);
        assert_eq!(count(&["/home/me/project/.git", "/workspace/.git"]), 1);
        // The writable project's `.git` granted read-only elsewhere (by a
        // link's name) is still covered inside the writable grant.
        let plan = Plan::new("/bin/true")
            .mount("/home/me/project", "/home/me/project", Access::ReadWrite)
            .mount(
                "/home/me/project/.git",
                "/home/me/plink/.git",
                Access::ReadOnly,
            );
        let args = text(&arguments(&plan, &|_| true, None));
        let git = ["/home/me/project/.git", "/home/me/project/.git"];
        assert!(find(&args, "--ro-bind", &git).is_some(), "{args:?}");
    }

    #[test]
    fn a_trust_bundle_is_shown_read_only_and_named_by_every_variable_last() {
        let mut plan = Plan::new("/bin/true").env("SSL_CERT_FILE", "/elsewhere.pem");
        plan.network = NetworkMode::Strict {
            channel_fd: 9,
            bridge: "/opt/airlock/airlock-bridge".into(),
            trust: Some("/tmp/airlock-trust-1.pem".into()),
        };
        let args = text(&arguments(&plan, &|_| true, Some(7)));
        let bundle = ["/tmp/airlock-trust-1.pem", TRUST_IN_SANDBOX];
        assert!(find(&args, "--ro-bind", &bundle).is_some(), "{args:?}");
        for key in TRUST_VARIABLES {
            let at = find(&args, "--setenv", &[key, TRUST_IN_SANDBOX]).expect(key);
            let configured = find(&args, "--setenv", &["SSL_CERT_FILE", "/elsewhere.pem"]);
            assert!(
                configured.is_none_or(|c| c < at),
                "{key} set after the plan's own"
            );
        }
        // Without a bundle nothing is bound or set.
        plan.network = NetworkMode::Strict {
            channel_fd: 9,
            bridge: "/opt/airlock/airlock-bridge".into(),
            trust: None,
        };
        let args = text(&arguments(&plan, &|_| true, Some(7)));
        assert!(!args.iter().any(|a| a == TRUST_IN_SANDBOX), "{args:?}");
    }

    #[test]
    fn strict_network_mounts_only_the_bridge_and_hands_it_the_channel() {
        let mut plan = Plan::new("/bin/true");
        plan.network = NetworkMode::Strict {
            channel_fd: 9,
            bridge: "/opt/airlock/airlock-bridge".into(),
            trust: None,
        };
        let args = text(&arguments(&plan, &|_| true, Some(7)));
        assert!(
            !args
                .iter()
                .any(|a| a.contains("proxy") || a.contains(".sock")),
            "no proxy socket path exists to bind: {args:?}"
        );
        assert!(find(&args, "--channel-fd", &["9"]).is_some(), "{args:?}");
        let bridge = ["/opt/airlock/airlock-bridge", BRIDGE_IN_SANDBOX];
        assert!(find(&args, "--ro-bind", &bridge).is_some());
        assert!(args.iter().any(|a| a == "--unshare-net"));
        let command = args.iter().position(|a| a == "--").expect("--");
        assert_eq!(
            args[command + 1..command + 4],
            [PRLIMIT, "--nproc=64", "--"],
            "the process limit is set inside, first"
        );
        assert_eq!(
            args[command + 4],
            BRIDGE_IN_SANDBOX,
            "the bridge starts the tool"
        );
        assert_eq!(args.last().map(String::as_str), Some("/bin/true"));
    }
}
