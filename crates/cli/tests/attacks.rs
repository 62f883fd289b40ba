//! Issue 26, finding 4, as the attacker did it: while a strict native tool
//! runs, another process of the sandbox's own uid, outside the sandbox,
//! looks for the tool's egress proxy and tries to fetch through its grant.
//! The proxy has no path to find (the sandbox inherits a channel), so
//! nothing reaches the upstream but the tool's own request. Run as root
//! (the sandbox is `nobody`, the intruder another `nobody` process) and as
//! an ordinary user (the sandbox maps to that user; the intruder is that
//! user).
#![cfg(target_os = "linux")]

mod common;
#[path = "serve/users.rs"]
#[allow(dead_code)]
mod users;

use airlock_tests::net::{Behaviour, TestServer};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SVC: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// How long a step may take before the test gives up on it.
const PATIENCE: Duration = Duration::from_secs(60);

/// Tries every Unix socket path on the machine (from /proc/net/unix) and
/// every socket file under /tmp (the test's own directories included) with
/// an absolute-form request through the tool's grant; prints each path it
/// could connect to.
const INTRUDER: &str = r#"
import os, socket, sys
url, host = sys.argv[1], sys.argv[2]
paths = set()
with open("/proc/net/unix") as table:
    for line in table.readlines()[1:]:
        fields = line.split()
        if len(fields) >= 8 and fields[7].startswith("/"):
            paths.add(fields[7])
for root, dirs, files in os.walk("/tmp"):
    for name in files:
        path = os.path.join(root, name)
        try:
            if os.path.stat.S_ISSOCK(os.lstat(path).st_mode):
                paths.add(path)
        except OSError:
            pass
print(f"looked at {len(paths)} socket paths")
for path in sorted(paths):
    try:
        conn = socket.socket(socket.AF_UNIX)
        conn.settimeout(3)
        conn.connect(path)
        print(f"connected {path}", flush=True)
        conn.sendall(f"GET {url} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
        print(f"  answered {conn.recv(200).decode(errors='replace').splitlines()[:1]}")
    except OSError:
        pass
"#;

/// `airlock --state-dir STATE run --config CONFIG --tool TOOL --input {}`
/// with the permit-all policies, as `runner` (None: the test's own user).
fn airlock_run(state: &Path, config: &Path, tool: &str, runner: Option<&users::User>) -> Command {
    let mut run = Command::new(env!("CARGO_BIN_EXE_airlock"));
    run.env_remove("RUST_LOG")
        .arg("--state-dir")
        .arg(state)
        .args(["run", "--config"])
        .arg(config)
        .args(["--tool", tool, "--input", "{}", "--policies"])
        .arg(common::permit_all());
    if let Some(user) = runner {
        users::as_user(&mut run, user);
    }
    run
}

/// Waits until `path` exists.
fn wait_for(path: &Path, what: &str) {
    let started = Instant::now();
    while !path.exists() {
        assert!(started.elapsed() < PATIENCE, "{what} never happened");
        std::thread::yield_now();
    }
}

/// One attempt: the tool runs under `airlock run` started as `runner`
/// (None: the test's own user), the intruder as `intruder_uid`.
fn a_same_uid_process_cannot_use_the_proxy(
    runner: Option<&users::User>,
    intruder_uid: u32,
    intruder_gid: u32,
) {
    let runtime = tokio::runtime::Runtime::new().expect("runtime");
    let upstream = runtime
        .block_on(TestServer::start(SVC, 0, Behaviour::Echo))
        .expect("upstream");
    let port = upstream.addr().port();
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("work");
    let state = dir.path().join("state");
    {
        use std::os::unix::fs::PermissionsExt;
        // The sandbox's user (whoever it is) writes its signal files here.
        std::fs::set_permissions(&work, std::fs::Permissions::from_mode(0o777)).expect("chmod");
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
    }
    if let Some(user) = runner {
        std::os::unix::fs::chown(dir.path(), Some(user.uid), Some(user.gid)).expect("chown");
    }
    // The tool fetches once through its proxy, says it is ready, and waits
    // (while the intruder tries) until the test lets it finish.
    let script = format!(
        "curl -s -m 10 http://svc.test:{port}/from-the-tool > /dev/null; \
         touch {ready}; while [ ! -e {go} ]; do sleep 0.05; done; echo '{{}}'",
        ready = work.join("ready").display(),
        go = work.join("go").display(),
    );
    let config = dir.path().join("airlock.toml");
    std::fs::write(
        &config,
        format!(
            "[[tools]]\nname = \"waiter\"\n[tools.native]\nprogram = \"/bin/sh\"\nargs = [\"-c\", {script:?}]\nnetwork = \"strict\"\nfs_write = [{:?}]\n[[tools.network.allow]]\nhost = \"svc.test\"\nprivate = true\nports = [{port}]\n",
            work.display().to_string()
        ),
    )
    .expect("config");
    let mut run = airlock_run(&state, &config, "waiter", runner);
    run.args(["--no-dns", "--resolve", &format!("svc.test={SVC}")])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let tool = run.spawn().expect("airlock run");
    wait_for(&work.join("ready"), "the tool's start");

    // A socket of the intruder's own beside the tool's files: it must find
    // and reach that one, or its finding nothing proves nothing.
    let control = work.join("control.sock");
    let _listening = std::os::unix::net::UnixListener::bind(&control).expect("control socket");
    std::os::unix::fs::chown(&control, Some(intruder_uid), Some(intruder_gid)).expect("chown");
    let mut intruder = Command::new("python3");
    intruder
        .args(["-c", INTRUDER])
        .arg(format!("http://svc.test:{port}/from-the-intruder"))
        .arg(format!("svc.test:{port}"));
    std::os::unix::process::CommandExt::uid(&mut intruder, intruder_uid);
    std::os::unix::process::CommandExt::gid(&mut intruder, intruder_gid);
    let tried = intruder.output().expect("the intruder");
    let said = String::from_utf8_lossy(&tried.stdout).to_string();
    std::fs::write(work.join("go"), "").expect("go");
    let finished = tool.wait_with_output().expect("airlock run");
    assert!(
        finished.status.success(),
        "{}{}",
        String::from_utf8_lossy(&finished.stdout),
        String::from_utf8_lossy(&finished.stderr)
    );
    assert!(
        tried.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&tried.stderr)
    );
    assert!(
        said.contains(&format!("connected {}", control.display())),
        "the intruder reaches sockets it may: {said}"
    );

    let seen: Vec<String> = upstream
        .requests()
        .iter()
        .map(|r| r.target.clone())
        .collect();
    assert_eq!(
        seen,
        ["/from-the-tool"],
        "only the tool's own request passed its proxy; the intruder said: {said}"
    );
}

#[test]
fn a_process_of_the_sandbox_s_uid_outside_it_cannot_use_a_tool_s_proxy() {
    users::require_root("running the sandbox and the intruder as other users");
    // As root: the sandbox runs as `nobody`, and so does the intruder.
    a_same_uid_process_cannot_use_the_proxy(None, users::NOBODY, users::NOBODY);
    // As an ordinary user: the sandbox maps to that user, the intruder is
    // that user.
    let user = users::server_user().expect("run as root, the tests have a server user");
    a_same_uid_process_cannot_use_the_proxy(Some(user), user.uid, user.gid);
}

/// Runs native tool `tool` of `config` as `user`; it must succeed and
/// print one JSON object (what it tried, and whether it worked), returned.
fn sandbox_report(
    state: &Path,
    config: &Path,
    tool: &str,
    user: &users::User,
) -> serde_json::Value {
    let out = airlock_run(state, config, tool, Some(user))
        .output()
        .expect("airlock run");
    let said = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{said}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_str(said.trim()).expect("JSON")
}

/// The review's first way in: with a parent of the state directory granted
/// on purpose (`hide_airlock_files = true`), a tool renames a directory
/// above the covered state directory, so that a later sandbox, finding
/// nothing at the protected path, covers nothing. Every directory on the
/// way is a mount point in the sandbox: the renames fail, and the state
/// directory stays covered.
#[test]
fn the_way_to_a_covered_state_directory_cannot_be_renamed() {
    users::require_root("running airlock as its ordinary test user");
    let user = users::server_user().expect("run as root, the tests have a server user");
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let state = home.join("a/b/state");
    std::fs::create_dir_all(home.join("a/b")).expect("dirs");
    std::fs::write(home.join("decoy.txt"), "decoy").expect("decoy");
    for path in [
        dir.path(),
        &home,
        &home.join("a"),
        &home.join("a/b"),
        &home.join("decoy.txt"),
    ] {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).expect("chown");
    }
    let h = home.display();
    let script = format!(
        "r() {{ \"$@\" >/dev/null 2>&1 && echo ok || echo refused; }}; \
         printf '{{\"rename a\": \"%s\", \"rename b\": \"%s\", \"read host.key\": \"%s\", \"read decoy\": \"%s\"}}' \
         \"$(r mv {h}/a {h}/a.x)\" \"$(r mv {h}/a/b {h}/a/b.x)\" \"$(r cat {h}/a/b/state/host.key)\" \"$(r cat {h}/decoy.txt)\""
    );
    let config = dir.path().join("airlock.toml");
    std::fs::write(
        &config,
        format!(
            "[[tools]]\nname = \"mover\"\n[tools.native]\nprogram = \"/bin/sh\"\nargs = [\"-c\", {script:?}]\nfs_write = [{:?}]\nhide_airlock_files = true\n",
            home.display().to_string()
        ),
    )
    .expect("config");
    for attempt in 0..2 {
        let report = sandbox_report(&state, &config, "mover", user);
        assert_eq!(report["read decoy"], "ok", "the grant works: {report}");
        for refused in ["rename a", "rename b", "read host.key"] {
            assert_eq!(
                report[refused], "refused",
                "attempt {attempt}: {refused}: {report}"
            );
        }
        assert!(
            state.join("host.key").exists(),
            "the state directory stayed where it was"
        );
    }
}

/// A tool granted the configuration's directory on purpose cannot rewrite
/// what decides which components run: the lockfile beside the
/// configuration, and the key a `verify` table names (a pin rolled back,
/// or its own key trusted, would let it choose the next component).
#[test]
fn a_tool_granted_the_configuration_directory_cannot_rewrite_pins_or_keys() {
    users::require_root("running airlock as its ordinary test user");
    let user = users::server_user().expect("run as root, the tests have a server user");
    let dir = tempfile::tempdir().expect("tempdir");
    let work = dir.path().join("work");
    std::fs::create_dir(&work).expect("work");
    let key = work.join("acme.pub");
    std::fs::copy(
        airlock_tests::workspace_root().join("fixtures/keys/test-signer.pub"),
        &key,
    )
    .expect("key");
    let lock = work.join("airlock.lock");
    std::fs::write(&lock, "version = 1\n").expect("lockfile");
    std::fs::write(work.join("decoy.txt"), "decoy").expect("decoy");
    for path in [dir.path(), &work, &key, &lock, &work.join("decoy.txt")] {
        std::os::unix::fs::chown(path, Some(user.uid), Some(user.gid)).expect("chown");
    }
    let w = work.display();
    let script = format!(
        "r() {{ \"$@\" >/dev/null 2>&1 && echo ok || echo refused; }}; \
         printf '{{\"write lock\": \"%s\", \"write key\": \"%s\", \"write decoy\": \"%s\"}}' \
         \"$(r sh -c 'echo x > {w}/airlock.lock')\" \"$(r sh -c 'echo x > {w}/acme.pub')\" \"$(r sh -c 'echo x > {w}/decoy.txt')\""
    );
    let config = work.join("airlock.toml");
    std::fs::write(
        &config,
        format!(
            "[[tools]]\nname = \"writer\"\n[tools.native]\nprogram = \"/bin/sh\"\nargs = [\"-c\", {script:?}]\nfs_write = [{:?}]\nhide_airlock_files = true\n\n[registries.\"registry.example/acme\"]\nverify = {{ key = \"acme.pub\" }}\n",
            w.to_string()
        ),
    )
    .expect("config");
    std::os::unix::fs::chown(&config, Some(user.uid), Some(user.gid)).expect("chown");
    let state = dir.path().join("state");
    let report = sandbox_report(&state, &config, "writer", user);
    assert_eq!(report["write decoy"], "ok", "the grant works: {report}");
    assert_eq!(report["write lock"], "refused", "{report}");
    assert_eq!(report["write key"], "refused", "{report}");
    assert_eq!(
        std::fs::read_to_string(&lock).expect("lock"),
        "version = 1\n"
    );
    assert!(
        std::fs::read_to_string(&key)
            .expect("key")
            .contains("BEGIN PUBLIC KEY")
    );
}
