//! The command line as a Unix citizen: output into a closed pipe ends
//! quietly, input sources agree on what the tool receives, and shell
//! completions and manual pages are generated from the real flags.

mod common;

use airlock_tests::guest_path;
use common::{airlock, code, run, run_stdin, stderr, stdout};
use std::process::{Command, Stdio};

/// Exit status of a process a SIGPIPE ended: what `| head` leaves behind.
const BROKEN_PIPE: i32 = 141;

#[test]
fn output_into_a_closed_pipe_ends_quietly() {
    for args in [
        vec!["inspect", guest_path("echo")],
        vec!["man"],
        vec!["completions", "bash"],
        vec!["run", guest_path("echo"), "--input", "[1]"],
        vec!["--help"],
    ] {
        // The reader is gone before the command writes anything, as after
        // `| head -0`: every write fails with EPIPE.
        let (reader, writer) = std::io::pipe().expect("pipe");
        drop(reader);
        let out = airlock(&args)
            .stdout(Stdio::from(writer))
            .stderr(Stdio::piped())
            .output()
            .expect("run airlock");
        assert_eq!(code(&out), BROKEN_PIPE, "{args:?}: {}", stderr(&out));
        assert_eq!(stderr(&out), "", "{args:?} ends without a message");
    }
}

#[test]
fn every_input_source_hands_the_tool_the_same_json() {
    // `echo` adds a newline; the tool gets the JSON value exactly.
    let from_stdin = run_stdin(&["run", guest_path("echo")], b"  [42]\n");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("input.json");
    std::fs::write(&file, "[42]\r\n").expect("write");
    let from_file = run(&[
        "run",
        guest_path("echo"),
        "--input-file",
        file.to_str().expect("utf-8"),
    ]);
    let from_flag = run(&["run", guest_path("echo"), "--input", "\t[42] "]);
    for out in [from_stdin, from_file, from_flag] {
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        assert_eq!(stdout(&out), "[42]\n");
    }
}

#[test]
fn completions_are_valid_scripts_for_every_shell() {
    for shell in ["bash", "zsh", "fish", "powershell", "elvish"] {
        let out = run(&["completions", shell]);
        assert_eq!(code(&out), 0, "{shell}: {}", stderr(&out));
        let script = stdout(&out);
        for command in ["approvals", "journal", "serve", "vault"] {
            assert!(script.contains(command), "{shell} completes `{command}`");
        }
        if shell == "bash" {
            let dir = tempfile::tempdir().expect("tempdir");
            let path = dir.path().join("airlock.bash");
            std::fs::write(&path, &script).expect("write");
            let syntax = Command::new("bash")
                .arg("-n")
                .arg(&path)
                .output()
                .expect("bash -n");
            assert!(
                syntax.status.success(),
                "bash -n: {}",
                String::from_utf8_lossy(&syntax.stderr)
            );
        }
    }
    let unknown = run(&["completions", "cmd.exe"]);
    assert_eq!(code(&unknown), 2, "an unknown shell is a usage error");
}

#[test]
fn manual_pages_render_with_man() {
    let out = run(&["man"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let dir = tempfile::tempdir().expect("tempdir");
    let page = dir.path().join("airlock.1");
    std::fs::write(&page, &out.stdout).expect("write");
    let rendered = Command::new("man")
        .arg("-l")
        .arg(&page)
        .env("MANPAGER", "cat")
        .env("MANWIDTH", "100")
        .output()
        .expect("man -l");
    assert!(
        rendered.status.success(),
        "man -l: {}",
        String::from_utf8_lossy(&rendered.stderr)
    );
    let text = String::from_utf8_lossy(&rendered.stdout);
    assert!(text.contains("airlock"), "{text}");
    assert!(text.contains("approvals"), "subcommands are listed: {text}");

    let pages = dir.path().join("man1");
    let out = run(&["man", "--dir", pages.to_str().expect("utf-8")]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    for name in [
        "airlock.1",
        "airlock-run.1",
        "airlock-journal.1",
        "airlock-journal-verify.1",
    ] {
        assert!(pages.join(name).is_file(), "{name} written");
    }
}

#[test]
fn version_names_the_engines_it_was_built_with() {
    let out = run(&["version", "--json"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let versions: serde_json::Value = serde_json::from_slice(&out.stdout).expect("json");
    assert_eq!(versions["airlock"], env!("CARGO_PKG_VERSION"));
    assert!(
        versions["wasmtime"]
            .as_str()
            .is_some_and(|v| v.starts_with("48.")),
        "{versions}"
    );
    for part in ["cedar-policy", "rmcp"] {
        assert!(
            versions[part]
                .as_str()
                .is_some_and(|v| v.split('.').count() == 3 && v != "unknown"),
            "{part}: {versions}"
        );
    }
    assert_eq!(versions["tool-interface"], "airlock:tool/tool@0.1.x");
    assert_eq!(versions["wasi"], "0.2.0 to 0.2.12");
    let text = run(&["version"]);
    assert!(stdout(&text).contains("wasmtime"), "{}", stdout(&text));
}
