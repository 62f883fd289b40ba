//! Helpers shared by the CLI test binaries: run `airlock` and read what it
//! printed.
#![allow(dead_code)] // each test binary uses its own subset

use serde_json::Value;
use std::io::Write;
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
