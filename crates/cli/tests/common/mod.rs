//! Helpers shared by the CLI test binaries: run `airlock` and read what it
//! printed.
#![allow(dead_code)] // each test binary uses its own subset

use airlock_tests::guest_path;
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;
use std::process::{Command, Output, Stdio};

/// `airlock ARGS` with the shared CLI state directory and no `RUST_LOG`.
pub fn airlock(args: &[&str]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_airlock"));
    cmd.env(
        "AIRLOCK_STATE_DIR",
        airlock_tests::test_cache_dir().join("cli-state"),
    )
    .env_remove("RUST_LOG")
    .args(args);
    cmd
}

/// Runs `airlock ARGS` to completion.
pub fn run(args: &[&str]) -> Output {
    airlock(args).output().expect("run airlock")
}

/// `--policies` for commands that run sensitive tools in tests that are not
/// about policy.
pub fn permit_all() -> String {
    airlock_tests::permit_all_dir().display().to_string()
}

/// Runs `airlock ARGS` with `stdin` as its standard input.
pub fn run_stdin(args: &[&str], stdin: &[u8]) -> Output {
    feed(airlock(args), stdin)
}

/// Runs `cmd` to completion with `stdin` as its standard input.
pub fn feed(mut cmd: std::process::Command, stdin: &[u8]) -> Output {
    let mut child = cmd
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn airlock");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin)
        .expect("write stdin");
    child.wait_with_output().expect("wait")
}

/// The exit code.
pub fn code(output: &Output) -> i32 {
    output.status.code().expect("exited normally")
}

/// Standard output, as text.
pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Standard error, as text.
pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

/// Standard output, parsed as one JSON value.
pub fn json_of(output: &Output) -> Value {
    serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {}", stdout(output)))
}

/// `airlock --state-dir STATE ARGS`.
pub fn in_state(state: &Path, args: &[&str]) -> Output {
    airlock(args)
        .arg("--state-dir")
        .arg(state)
        .output()
        .expect("run airlock")
}

/// Writes an `airlock.toml` in `dir` that marks `echo` sensitive; returns its path.
pub fn sensitive_echo_config(dir: &Path) -> String {
    let config = dir.join("airlock.toml");
    std::fs::write(
        &config,
        format!(
            "[[tools]]\nname = \"echo\"\ncomponent = {:?}\nsensitive = true\n",
            guest_path("echo")
        ),
    )
    .expect("config");
    config.display().to_string()
}

/// A state directory holding one completed run of `echo` (marked sensitive
/// by config and approved for the session): returns its attestation id.
pub fn state_with_one_run(state: &Path) -> (String, String) {
    let config = sensitive_echo_config(state);
    let run = |extra: &[&str]| {
        let args = [
            &[
                "run",
                "--config",
                &config,
                "--tool",
                "echo",
                "--session",
                "s1",
                "--input",
                "[42]",
            ][..],
            extra,
        ]
        .concat();
        in_state(state, &args)
    };
    let pending = run(&[]);
    assert_eq!(code(&pending), 5, "{}", stderr(&pending));
    let id = stdout(&pending).trim().to_string();
    let decided = in_state(state, &["approvals", "decide", &id, "--allow", "session"]);
    assert_eq!(code(&decided), 0, "{}", stderr(&decided));
    assert!(
        stdout(&decided).contains("airlock run --session s1"),
        "deciding for a session names it: {}",
        stdout(&decided)
    );
    // Every writer signs a head over what it journaled when it stops.
    let verdict = json_of(&in_state(state, &["journal", "verify", "--json"]));
    assert_eq!(verdict["unsealed"], 0, "{verdict}");
    let ran = run(&["--json"]);
    assert_eq!(code(&ran), 0, "{}", stderr(&ran));
    let result = json_of(&ran);
    assert_eq!(result["output"], json!([42]));
    (
        result["report"]["invocation_id"]
            .as_str()
            .expect("invocation id")
            .to_string(),
        id,
    )
}

/// The attestations in `state`'s journal, oldest first.
pub fn attestations(state: &Path) -> Vec<Value> {
    let out = in_state(state, &["journal", "tail", "-n", "1000", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    stdout(&out)
        .lines()
        .filter_map(|line| serde_json::from_str::<Value>(line).ok())
        .filter_map(|entry| entry["payload"].get("attestation").cloned())
        .collect()
}
