//! The macOS backend: `sandbox-exec` with an SBPL profile generated from
//! the [`Plan`]. Deny by default; system directories readable; each mount
//! readable or writable as granted, known persistence paths inside writable
//! mounts still read-only; a private temporary directory; and in `strict`
//! mode network only to the local egress bridge's port.
//!
//! macOS has no network namespaces, so in `strict` mode the bridge runs on
//! the host, on an ephemeral loopback port, and the profile allows only
//! that port. Another local process could use the port during the run; it
//! would get no more than this tool's grant.

use crate::plan::{Access, NetworkMode, PERSISTENCE_PATHS, Plan};
use std::ffi::OsString;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};

/// Directories every program needs to read: the system, its libraries and
/// the dynamic linker's caches. No `/Users`, no `/private/etc/master.passwd`.
const SYSTEM_READ: &[&str] = &[
    "/usr",
    "/bin",
    "/sbin",
    "/System",
    "/Library/Apple",
    "/private/var/db/dyld",
    "/private/var/db/timezone",
    "/private/etc/ssl",
];

/// Single files read by common programs (name service, TLS, time zone).
const SYSTEM_FILES: &[&str] = &[
    "/",
    "/private/etc/hosts",
    "/private/etc/resolv.conf",
    "/private/etc/localtime",
    "/private/etc/passwd",
    "/private/etc/group",
    "/dev/null",
    "/dev/zero",
    "/dev/random",
    "/dev/urandom",
];

/// An SBPL string literal: quotes and backslashes escaped.
fn quoted(path: &Path) -> String {
    let text = path.to_string_lossy();
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out.push('"');
    out
}

/// Why a plan cannot be expressed as a profile.
fn unsupported(detail: String) -> crate::SandboxError {
    crate::SandboxError::Unsupported { detail }
}

/// The profile for `plan`. `tmp` is the run's private temporary directory;
/// `bridge_port` is the loopback port of the host-side bridge in `strict`
/// mode. A mount whose sandbox path differs from its host path cannot be
/// expressed (`sandbox-exec` does not remap paths) and is refused.
pub fn profile(
    plan: &Plan,
    tmp: &Path,
    bridge_port: Option<u16>,
) -> Result<String, crate::SandboxError> {
    let mut p = String::from("(version 1)\n(deny default)\n");
    p.push_str("(allow process-fork)\n(allow signal (target same-sandbox))\n");
    p.push_str("(allow sysctl-read)\n(allow file-read-metadata)\n");
    let mut readable: Vec<PathBuf> = SYSTEM_READ.iter().map(PathBuf::from).collect();
    let mut writable: Vec<PathBuf> = vec![tmp.to_path_buf()];
    for mount in &plan.mounts {
        if mount.host != mount.sandbox {
            return Err(unsupported(format!(
                "sandbox-exec cannot show {} at {}: mount it at the same path",
                mount.host.display(),
                mount.sandbox.display()
            )));
        }
        match mount.access {
            Access::ReadOnly => readable.push(mount.host.clone()),
            Access::ReadWrite => writable.push(mount.host.clone()),
        }
    }
    p.push_str("(allow file-read* process-exec");
    for dir in &readable {
        let _ = write!(p, "\n    (subpath {})", quoted(dir));
    }
    for file in SYSTEM_FILES {
        let _ = write!(p, "\n    (literal {})", quoted(Path::new(file)));
    }
    // No remapping here: a program's links are the host's own, read as they
    // are.
    for (at, _) in &plan.links {
        let _ = write!(p, "\n    (literal {})", quoted(at));
    }
    let _ = write!(p, "\n    (literal {}))\n", quoted(&plan.program));
    p.push_str("(allow file-read* file-write* process-exec");
    for dir in &writable {
        let _ = write!(p, "\n    (subpath {})", quoted(dir));
    }
    p.push_str(")\n(allow file-write-data\n    (literal \"/dev/null\"))\n");
    // Later rules win in SBPL: these undo the writable mounts' grant.
    let persistent: Vec<PathBuf> = plan
        .mounts
        .iter()
        .filter(|m| m.access == Access::ReadWrite)
        .flat_map(|m| PERSISTENCE_PATHS.iter().map(|p| m.host.join(p.path)))
        .collect();
    if !persistent.is_empty() {
        p.push_str("(deny file-write*");
        for path in &persistent {
            let _ = write!(p, "\n    (subpath {})", quoted(path));
        }
        p.push_str(")\n");
    }
    // The host's own files inside a grant: nothing at all, not even
    // metadata or a connect.
    if !plan.hidden.is_empty() {
        p.push_str("(deny file* network-outbound");
        for hidden in &plan.hidden {
            let filter = if hidden.dir { "subpath" } else { "literal" };
            let _ = write!(p, "\n    ({filter} {})", quoted(&hidden.host));
        }
        p.push_str(")\n");
    }
    // After the hidden paths' denials (later rules win): the bundle may sit
    // in the state directory a grant hides.
    if let NetworkMode::Strict {
        trust: Some(trust), ..
    } = &plan.network
    {
        let _ = writeln!(p, "(allow file-read* (literal {}))", quoted(trust));
    }
    match (&plan.network, bridge_port) {
        (NetworkMode::None, _) => {}
        (NetworkMode::Strict { .. }, Some(port)) => {
            let _ = writeln!(
                p,
                "(allow network-outbound (remote ip \"localhost:{port}\"))"
            );
        }
        (NetworkMode::Strict { .. }, None) => {
            return Err(unsupported(
                "strict network needs the bridge's port; none was given".into(),
            ));
        }
    }
    Ok(p)
}

/// The `sandbox-exec` arguments: the profile, then the program and its
/// arguments.
pub fn arguments(profile: &str, plan: &Plan) -> Vec<OsString> {
    let mut args: Vec<OsString> = vec!["-p".into(), profile.into()];
    args.push(plan.program.clone().into());
    args.extend(plan.args.iter().cloned());
    args
}

/// The `sandbox-exec` backend.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct MacosSandboxExec {
    /// The `sandbox-exec` executable.
    pub program: PathBuf,
}

#[cfg(target_os = "macos")]
impl crate::unix::Prepares for MacosSandboxExec {
    const KIND: crate::BackendKind = crate::BackendKind::MacosSandboxExec;

    /// `sandbox-exec` with the plan's profile, its private temporary
    /// directory, the egress bridge when strict, and the limits.
    fn prepare(&self, plan: &Plan) -> Result<crate::unix::Prepared, crate::SandboxError> {
        use crate::unix::{Confine, Prepared, command, confine, rlimits};
        if rustix::process::geteuid().is_root() {
            // A root process inside the profile could still read root-only
            // files the system directories hold; there is no user namespace
            // to drop into.
            return Err(unsupported(
                "native tools do not run as root on macOS: run airlock as an ordinary user".into(),
            ));
        }
        let tmp = TempDir::new()?;
        let bridge = match &plan.network {
            NetworkMode::Strict { channel_fd, .. } => {
                let failed = |e: std::io::Error| crate::SandboxError::Spawn {
                    detail: format!("starting the egress bridge: {e}"),
                };
                let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(failed)?;
                let channel = crate::channel::duplicate(*channel_fd).map_err(failed)?;
                Some(crate::bridge::serve(listener, std::sync::Arc::new(channel)))
            }
            NetworkMode::None => None,
        };
        let port = bridge.as_ref().and_then(|b| b.addr()).map(|a| a.port());
        let profile = profile(plan, &tmp.0, port)?;
        let mut command = command(&self.program);
        command
            .args(arguments(&profile, plan))
            .envs(plan.env.iter().map(|(k, v)| (k, v)))
            .env("TMPDIR", &tmp.0)
            .current_dir(plan.cwd.as_deref().unwrap_or(Path::new("/")));
        if let Some(port) = port {
            command.envs(crate::bridge::proxy_environment(&format!(
                "http://127.0.0.1:{port}"
            )));
        }
        if let NetworkMode::Strict {
            trust: Some(trust), ..
        } = &plan.network
        {
            for key in crate::plan::TRUST_VARIABLES {
                command.env(key, trust);
            }
        }
        // No process limit: RLIMIT_NPROC counts all of the user's processes on macOS.
        confine(
            &mut command,
            rlimits(&plan.limits, false),
            Confine::default(),
        );
        let mut keep: Vec<Box<dyn std::any::Any + Send>> = vec![Box::new(tmp)];
        if let Some(bridge) = bridge {
            keep.push(Box::new(bridge));
        }
        Ok(Prepared { command, keep })
    }
}

/// The run's private temporary directory, removed afterwards.
#[cfg(target_os = "macos")]
struct TempDir(PathBuf);

#[cfg(target_os = "macos")]
impl TempDir {
    fn new() -> Result<Self, crate::SandboxError> {
        use std::sync::atomic::{AtomicU64, Ordering};
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let name = format!(
            "airlock-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        let dir = std::env::temp_dir().join(name);
        std::fs::create_dir(&dir)
            .and_then(|()| dir.canonicalize())
            .map(Self)
            .map_err(|e| crate::SandboxError::Spawn {
                detail: format!("creating the sandbox's temporary directory: {e}"),
            })
    }
}

#[cfg(target_os = "macos")]
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

// Generated-text tests only: they check the SBPL profile and the
// `sandbox-exec` arguments built for a plan, and run on Linux like the rest
// of the suite. CI only builds and lints this backend for macOS (`.ci/run`,
// `--target x86_64-apple-darwin`): nothing runs a program under it, so none
// of its runtime behaviour is tested.
#[cfg(test)]
mod tests {
    use super::*;

    fn strict(plan: Plan) -> Plan {
        Plan {
            network: NetworkMode::Strict {
                channel_fd: 9,
                bridge: "/usr/local/bin/airlock".into(),
                trust: None,
            },
            ..plan
        }
    }

    #[test]
    fn denies_by_default_and_grants_only_the_plan() {
        let plan = Plan::new("/usr/local/bin/tool")
            .mount("/Users/me/data", "/Users/me/data", Access::ReadOnly)
            .mount("/Users/me/repo", "/Users/me/repo", Access::ReadWrite);
        let profile = profile(&plan, Path::new("/private/tmp/airlock-1"), None).expect("profile");
        assert!(profile.starts_with("(version 1)\n(deny default)\n"));
        let (_, after) = profile
            .split_once("(allow file-read* process-exec")
            .expect("read rule");
        let (read, rest) = after
            .split_once("(allow file-read* file-write*")
            .expect("write rule");
        assert!(read.contains("(subpath \"/usr\")"));
        assert!(read.contains("(subpath \"/Users/me/data\")"));
        assert!(read.contains("(literal \"/usr/local/bin/tool\")"));
        assert!(
            !read.contains("/Users/me/repo"),
            "read-write is in its own rule"
        );
        let (write, rest) = rest.split_once("(allow file-write-data").expect("dev null");
        assert!(write.contains("(subpath \"/Users/me/repo\")"));
        assert!(write.contains("(subpath \"/private/tmp/airlock-1\")"));
        assert!(
            !write.contains("/Users/me/data"),
            "read-only stays read-only"
        );
        let deny = rest.split_once("(deny file-write*").expect("persistence").1;
        for path in [".git", ".envrc", ".bashrc", ".vscode"] {
            assert!(
                deny.contains(&format!("(subpath \"/Users/me/repo/{path}\")")),
                "{path}: {deny}"
            );
        }
        assert!(!profile.contains("network"), "no network at all: {profile}");
        assert!(!profile.contains("/Users/me\""), "not the home directory");
    }

    #[test]
    fn hidden_paths_are_denied_after_every_grant() {
        let plan = Plan::new("/usr/local/bin/tool")
            .mount("/Users/me/repo", "/Users/me/repo", Access::ReadWrite)
            .hide("/Users/me/repo/.airlock", "/Users/me/repo/.airlock", true)
            .hide(
                "/Users/me/repo/operator.sock",
                "/Users/me/repo/operator.sock",
                false,
            );
        let profile = profile(&plan, Path::new("/tmp/t"), None).expect("profile");
        let grant = profile
            .find("(allow file-read* file-write*")
            .expect("the grant");
        let deny = profile
            .find("(deny file* network-outbound")
            .expect("the hidden paths");
        assert!(deny > grant, "later rules win: {profile}");
        let rule = &profile[deny..];
        assert!(
            rule.contains("(subpath \"/Users/me/repo/.airlock\")"),
            "{rule}"
        );
        assert!(
            rule.contains("(literal \"/Users/me/repo/operator.sock\")"),
            "{rule}"
        );
    }

    #[test]
    fn strict_network_reaches_only_the_bridge_port() {
        let plan = strict(Plan::new("/usr/bin/curl"));
        let profile = profile(&plan, Path::new("/tmp/t"), Some(41234)).expect("profile");
        let network: Vec<&str> = profile.lines().filter(|l| l.contains("network")).collect();
        assert_eq!(
            network,
            ["(allow network-outbound (remote ip \"localhost:41234\"))"]
        );
        let missing = super::profile(&plan, Path::new("/tmp/t"), None).expect_err("no port");
        assert_eq!(missing.code(), "sandbox_unsupported");
    }

    #[test]
    fn paths_are_quoted_and_remapping_is_refused() {
        let plan = Plan::new("/opt/odd\"name\\tool");
        let profile = profile(&plan, Path::new("/tmp/t"), None).expect("profile");
        assert!(
            profile.contains(r#"(literal "/opt/odd\"name\\tool")"#),
            "{profile}"
        );
        let remapped = Plan::new("/bin/ls").mount("/Users/me/x", "/workspace", Access::ReadOnly);
        let err = super::profile(&remapped, Path::new("/tmp/t"), None).expect_err("remap");
        assert!(err.to_string().contains("same path"), "{err}");
    }

    #[test]
    fn arguments_carry_the_profile_then_the_program() {
        let plan = Plan::new("/bin/echo").args(["hi", "there"]);
        let args = arguments("(version 1)", &plan);
        assert_eq!(args, ["-p", "(version 1)", "/bin/echo", "hi", "there"]);
    }
}
