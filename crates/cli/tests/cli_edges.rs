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

/// The `airlock …` commands the README shows, from its `sh` blocks (with
/// any `$ ` prompt, pipe into it, trailing comment or pipe out of it
/// removed).
fn readme_commands() -> Vec<String> {
    let readme = include_str!("../../../README.md");
    let mut commands = Vec::new();
    let mut in_shell = false;
    for line in readme.lines() {
        if line.starts_with("```") {
            in_shell = line == "```sh";
            continue;
        }
        if !in_shell {
            continue;
        }
        let line = line.trim_start_matches("$ ");
        let Some(start) = line.find("airlock ") else {
            continue;
        };
        // `airlock` as the command itself (first word, or after a pipe).
        let before = line[..start].trim_end();
        if !(before.is_empty() || before.ends_with('|')) {
            continue;
        }
        let command = line[start..]
            .split(" # ")
            .next()
            .and_then(|c| c.split(" | ").next())
            .and_then(|c| c.split(" > ").next())
            .unwrap_or_default();
        commands.push(command.trim().to_string());
    }
    commands
}

/// Words split as a shell would for these simple lines (quotes group).
fn words(command: &str) -> Vec<String> {
    let (mut words, mut word, mut quote) = (Vec::new(), String::new(), None);
    for c in command.chars() {
        match (quote, c) {
            (None, '\'' | '"') => quote = Some(c),
            (Some(q), c) if c == q => quote = None,
            (None, ' ') if !word.is_empty() => words.push(std::mem::take(&mut word)),
            (None, ' ') => {}
            (_, c) => word.push(c),
        }
    }
    if !word.is_empty() {
        words.push(word);
    }
    words
}

/// The subcommands `help` lists.
fn subcommands(help: &str) -> Vec<String> {
    help.lines()
        .skip_while(|line| !line.starts_with("Commands:"))
        .skip(1)
        .take_while(|line| !line.is_empty())
        .filter_map(|line| line.strip_prefix("  "))
        .filter(|line| !line.starts_with(' '))
        .filter_map(|line| line.split_whitespace().next())
        .map(str::to_string)
        .collect()
}

fn help_of(path: &[String]) -> String {
    let mut args: Vec<&str> = path.iter().map(String::as_str).collect();
    args.push("--help");
    let out = run(&args);
    assert_eq!(code(&out), 0, "airlock {path:?} --help: {}", stderr(&out));
    stdout(&out)
}

/// Checks that `command` (`airlock …`) names real subcommands and only
/// flags they (or the global options) have.
fn check_shape(command: &str, global: &str) {
    let words = words(command);
    let mut path: Vec<String> = Vec::new();
    let mut help = global.to_string();
    for word in words.iter().skip(1) {
        if word.starts_with('-') {
            let flag = word.split('=').next().unwrap_or(word);
            assert!(
                help.contains(flag) || global.contains(flag),
                "`{command}`: `airlock {}` has no {flag}",
                path.join(" ")
            );
        } else if subcommands(&help).contains(word) {
            path.push(word.clone());
            help = help_of(&path);
        }
    }
    assert!(!path.is_empty(), "`{command}` names a subcommand");
}

#[test]
fn every_command_the_readme_shows_exists_with_those_flags() {
    let commands = readme_commands();
    assert!(
        commands.len() > 40,
        "the README shows its commands: {commands:?}"
    );
    let global = help_of(&[]);
    for command in &commands {
        check_shape(command, &global);
    }
}

#[test]
fn every_command_has_help_and_working_examples() {
    let global = help_of(&[]);
    let mut pending = vec![Vec::<String>::new()];
    let mut leaves = 0;
    while let Some(path) = pending.pop() {
        let help = help_of(&path);
        let children: Vec<String> = subcommands(&help)
            .into_iter()
            .filter(|n| n != "help")
            .collect();
        if children.is_empty() && !path.is_empty() {
            leaves += 1;
            let examples: Vec<&str> = help
                .lines()
                .skip_while(|line| *line != "Examples:")
                .skip(1)
                .map(|line| line.trim())
                .filter(|line| line.starts_with("airlock ") || line.contains("| airlock "))
                .collect();
            assert!(
                !examples.is_empty(),
                "`airlock {}` --help ends with examples",
                path.join(" ")
            );
            for example in examples {
                // The pipeline stage that is airlock, without redirection.
                let stage = example
                    .split(" | ")
                    .find_map(|stage| stage.find("airlock ").map(|at| &stage[at..]))
                    .unwrap_or(example);
                check_shape(stage.split(" > ").next().unwrap_or(stage), &global);
            }
        }
        for name in children {
            let mut child = path.clone();
            child.push(name);
            pending.push(child);
        }
    }
    assert!(leaves > 25, "{leaves} commands");
}

#[test]
fn colour_is_what_color_says_and_quiet_is_accepted_everywhere() {
    let help = |color: &str| {
        let out = run(&["--color", color, "approvals", "--help"]);
        assert_eq!(code(&out), 0, "{}", stderr(&out));
        stdout(&out).contains('\u{1b}')
    };
    assert!(help("always"), "--color always colours help");
    assert!(!help("never"), "--color never does not");
    let mut auto = airlock(&["--color=auto", "approvals", "--help"]);
    auto.env("NO_COLOR", "1");
    let out = auto.output().expect("run");
    assert!(!stdout(&out).contains('\u{1b}'), "NO_COLOR is honoured");

    let out = run(&["run", "-q", guest_path("echo"), "--input", "[1]"]);
    assert_eq!(
        (code(&out), stdout(&out).as_str()),
        (0, "[1]\n"),
        "{}",
        stderr(&out)
    );
}
