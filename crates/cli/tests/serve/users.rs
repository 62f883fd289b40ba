//! Who the serve tests run `airlock serve` and the operator commands as.
//!
//! The README recommends running the server as its own ordinary user, so
//! the tests do too: run as root (CI), they start the server, and run the
//! operator commands, as [`SERVER_USER`], which the test command's set-up
//! creates (`.ci/install`); run as an ordinary user, that user is the
//! server's. A test about another user (root, `nobody`) says so with
//! [`require_root`] and fails, never skips, where it cannot switch users.

use std::os::unix::process::CommandExt;
use std::path::Path;
use std::process::Command;
use std::sync::OnceLock;

/// The ordinary user the tests run the server as when they run as root.
pub const SERVER_USER: &str = "airlock-test";

/// The user `nobody`, whom tests about a stranger on the host use.
pub const NOBODY: u32 = 65534;

/// A local user.
#[derive(Clone, Debug)]
pub struct User {
    /// Its name.
    pub name: String,
    /// Its uid.
    pub uid: u32,
    /// Its primary group.
    pub gid: u32,
    /// Its home directory, as the password database has it.
    pub home: String,
}

impl User {
    fn from(user: nix::unistd::User) -> Self {
        User {
            name: user.name,
            uid: user.uid.as_raw(),
            gid: user.gid.as_raw(),
            home: user.dir.display().to_string(),
        }
    }
}

/// The user with `uid`, its group the one of the same number (as for
/// `nobody` and for users made with `--user-group`).
pub fn with_uid(uid: u32) -> User {
    let found = nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
        .ok()
        .flatten()
        .map(User::from);
    User {
        name: found
            .as_ref()
            .map_or_else(|| format!("uid{uid}"), |u| u.name.clone()),
        uid,
        gid: uid,
        home: found.map_or_else(|| "/".into(), |u| u.home),
    }
}

/// The user and group owning `path`, when it exists and that is not the
/// test's own user (whom commands run as anyway).
pub fn owner_of(path: &Path) -> Option<User> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    (meta.uid() != nix::unistd::getuid().as_raw()).then(|| User {
        gid: meta.gid(),
        ..with_uid(meta.uid())
    })
}

/// Whether the tests run as root.
pub fn is_root() -> bool {
    nix::unistd::geteuid().is_root()
}

/// The user running the tests.
pub fn current() -> User {
    let uid = nix::unistd::getuid();
    nix::unistd::User::from_uid(uid)
        .ok()
        .flatten()
        .map(User::from)
        .unwrap_or_else(|| User {
            name: format!("uid{uid}"),
            uid: uid.as_raw(),
            gid: nix::unistd::getgid().as_raw(),
            home: "/".into(),
        })
}

/// Fails the test, saying why, unless it runs as root: `what` needs a
/// second user (root, `nobody`) beside the server's. The test command runs
/// the suite as root.
pub fn require_root(what: &str) {
    assert!(
        is_root(),
        "{what} needs root, to run processes as other users: run the suite as root \
         (`sudo bash .ci/test`, as CI does); this test never skips"
    );
}

/// Who the server runs as: [`SERVER_USER`] when the tests run as root,
/// `None` (the test's own user) otherwise. Fails the test, saying what to
/// do, when that user is missing or cannot run what the server runs.
pub fn server_user() -> Option<&'static User> {
    static USER: OnceLock<Option<User>> = OnceLock::new();
    USER.get_or_init(|| is_root().then(checked_server_user))
        .as_ref()
}

/// The user whom operator commands run as unless a test says otherwise:
/// the server's.
pub fn operator() -> User {
    server_user().cloned().unwrap_or_else(current)
}

fn checked_server_user() -> User {
    let user = nix::unistd::User::from_name(SERVER_USER)
        .ok()
        .flatten()
        .map(User::from)
        .unwrap_or_else(|| {
            panic!(
                "the serve tests run `airlock serve` as the ordinary user `{SERVER_USER}` when \
                 they run as root, and it does not exist: create it with \
                 `useradd --system --user-group --no-create-home --shell /usr/sbin/nologin \
                 {SERVER_USER}` (the test command, `bash .ci/test`, does)"
            )
        });
    // The binary under test, from where cargo built it.
    let version = run_as(&user, env!("CARGO_BIN_EXE_airlock"), &["--version"]);
    assert!(
        version.status.success(),
        "`{SERVER_USER}` cannot run {}: every directory above it must be traversable by other \
         users (chmod o+x): {}",
        env!("CARGO_BIN_EXE_airlock"),
        String::from_utf8_lossy(&version.stderr)
    );
    // Hosted servers run in bubblewrap started by the server: as an
    // ordinary user that needs unprivileged user namespaces.
    let bwrap = run_as(
        &user,
        "bwrap",
        &["--unshare-all", "--ro-bind", "/", "/", "true"],
    );
    assert!(
        bwrap.status.success(),
        "bubblewrap does not run as `{SERVER_USER}`: {}. It needs unprivileged user \
         namespaces (sysctl user.max_user_namespaces > 0; on Debian \
         kernel.unprivileged_userns_clone=1; on Ubuntu \
         kernel.apparmor_restrict_unprivileged_userns=0)",
        String::from_utf8_lossy(&bwrap.stderr)
    );
    user
}

fn run_as(user: &User, program: &str, args: &[&str]) -> std::process::Output {
    let mut command = Command::new(program);
    command.args(args);
    as_user(&mut command, user);
    command
        .output()
        .unwrap_or_else(|e| panic!("run {program} as {}: {e}", user.name))
}

/// Runs `command` as `user` (its uid, primary group and no other groups),
/// with that user's `HOME`, `USER` and `LOGNAME`, and without the test
/// user's session bus and runtime directory, which it could not use.
pub fn as_user<'c>(command: &'c mut Command, user: &User) -> &'c mut Command {
    command
        .uid(user.uid)
        .gid(user.gid)
        .env("HOME", &user.home)
        .env("USER", &user.name)
        .env("LOGNAME", &user.name)
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .env_remove("XDG_RUNTIME_DIR")
}

/// Runs `command` as the server's user when that is not the test's own
/// (see [`server_user`]).
pub fn as_server_user(command: &mut Command) -> &mut Command {
    match server_user() {
        Some(user) => as_user(command, user),
        None => command,
    }
}

/// Hands `path` to the server's user when that is not the test's own, so
/// the server can use what the test made for it.
pub fn give_to_server_user(path: &Path) {
    if let Some(user) = server_user() {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid))
            .unwrap_or_else(|e| panic!("chown {} to {}: {e}", path.display(), user.name));
    }
}

/// Says once per test binary, on the test's stderr even when output is
/// captured, which uid the first server ran as (read from /proc, so the
/// log shows what happened, not what was asked).
pub fn announce_server_uid(pid: u32) {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        use std::io::Write as _;
        let uid = uid_of(pid);
        let _ = writeln!(
            std::io::stderr(),
            "serve tests: `airlock serve` runs as uid {uid} ({}); the tests run as uid {}",
            nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid))
                .ok()
                .flatten()
                .map_or_else(|| "no name".to_string(), |u| u.name),
            nix::unistd::getuid()
        );
    });
}

/// The real uid of process `pid`, from /proc.
pub fn uid_of(pid: u32) -> u32 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_else(|e| panic!("/proc/{pid}/status: {e}"));
    status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|l| l.split_whitespace().next())
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("no Uid line in /proc/{pid}/status"))
}
