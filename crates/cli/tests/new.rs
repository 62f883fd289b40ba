//! `airlock new` in every language: the project it writes builds offline
//! with the installed toolchains (`guests/toolchains/install`), inspects,
//! and runs - a greeter in the `pure` world, a fetcher in the `network`
//! world against a loopback server it is granted.

mod common;

use common::{airlock, code, permit_all, stderr, stdout};
use serde_json::Value;
use std::io::{Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;

/// `airlock ARGS` run in `dir`, to completion.
fn airlock_in(dir: &Path, args: &[&str]) -> std::process::Output {
    airlock(args)
        .current_dir(dir)
        .output()
        .expect("run airlock")
}

/// Creates `name` in `lang` and `world` under `parent` and builds it.
fn scaffold_and_build(parent: &Path, lang: &str, world: &str, name: &str) -> std::path::PathBuf {
    let out = airlock_in(parent, &["new", "--lang", lang, "--world", world, name]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert!(stdout(&out).contains("./build"), "{}", stdout(&out));
    let dir = parent.join(name);
    for file in [
        "build",
        "README.md",
        "input.json",
        "wit/tool.wit",
        "wit/deps/http.wit",
    ] {
        assert!(dir.join(file).is_file(), "{lang}: {file} missing");
    }
    let readme = std::fs::read_to_string(dir.join("README.md")).expect("README");
    for command in ["./build", "airlock inspect", "airlock run"] {
        assert!(readme.contains(command), "{lang}: README lacks `{command}`");
    }

    let wasm = build(&dir, name, &format!("{lang}/{world}"));

    let inspected = airlock(&["inspect", "--json", wasm.to_str().expect("utf-8")])
        .output()
        .expect("inspect");
    assert_eq!(code(&inspected), 0, "{}", stderr(&inspected));
    let info: Value = serde_json::from_str(&stdout(&inspected)).expect("inspect JSON");
    assert_eq!(info["descriptor"]["name"], name);
    // With nothing granted it runs in the world it was built for, whatever
    // filesystem imports the toolchain added.
    assert_eq!(info["world"], world, "{lang}");
    dir
}

/// Runs a project's `./build` offline and returns the component it made.
fn build(dir: &Path, name: &str, what: &str) -> std::path::PathBuf {
    // Offline: cargo may only use what it has; nothing else downloads.
    let built = Command::new(dir.join("build"))
        .current_dir(dir)
        .env("CARGO_NET_OFFLINE", "true")
        .env(
            "CARGO_TARGET_DIR",
            airlock_tests::workspace_root().join("target/new-projects"),
        )
        .output()
        .expect("run ./build");
    assert!(
        built.status.success(),
        "{what}: ./build failed:\n{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let wasm = dir.join(format!("{name}.wasm"));
    assert!(wasm.is_file(), "{what}: no {name}.wasm");
    wasm
}

fn greeter(lang: &str) {
    let parent = tempfile::tempdir().expect("tempdir");
    let name = format!("greet-{lang}");
    let dir = scaffold_and_build(parent.path(), lang, "pure", &name);
    let out = airlock_in(
        &dir,
        &["run", &format!("{name}.wasm"), "--input-file", "input.json"],
    );
    assert_eq!(code(&out), 0, "{lang}: {}", stderr(&out));
    let output: Value = serde_json::from_str(&stdout(&out)).expect("JSON output");
    assert_eq!(output["greeting"], "Hello, world!", "{lang}");

    let out = airlock_in(&dir, &["run", &format!("{name}.wasm"), "--input", "[1]"]);
    assert!(
        stderr(&out).contains("tool_invalid_input"),
        "{lang}: {}",
        stderr(&out)
    );
}

/// A server on 127.0.0.1 answering every request with `hello`.
fn hello_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        for stream in listener.incoming().flatten() {
            let mut stream = stream;
            let mut request = [0u8; 4096];
            let _ = stream.read(&mut request);
            let _ = stream.write_all(
                b"HTTP/1.1 200 OK\r\ncontent-length: 5\r\nconnection: close\r\n\r\nhello",
            );
        }
    });
    port
}

fn fetcher(lang: &str) {
    let parent = tempfile::tempdir().expect("tempdir");
    let name = format!("fetch-{lang}");
    let dir = scaffold_and_build(parent.path(), lang, "network", &name);
    assert!(dir.join("grant.toml").is_file());
    let port = hello_server();
    let grant = dir.join("loopback.toml");
    std::fs::write(
        &grant,
        format!("[[allow]]\nhost = \"svc.test\"\nprivate = true\nports = [{port}]\n"),
    )
    .expect("grant");
    let wasm = format!("{name}.wasm");
    let granted = airlock_in(
        &dir,
        &[
            "run",
            &wasm,
            "--policies",
            &permit_all(),
            "--grant",
            "loopback.toml",
            "--resolve",
            "svc.test=127.0.0.1",
            "--input",
            &format!("{{\"url\": \"http://svc.test:{port}/\"}}"),
        ],
    );
    assert_eq!(code(&granted), 0, "{lang}: {}", stderr(&granted));
    let output: Value = serde_json::from_str(&stdout(&granted)).expect("JSON output");
    assert_eq!(
        (output["status"].as_u64(), output["body"].as_str()),
        (Some(200), Some("hello")),
        "{lang}"
    );

    // The scaffold's own input names example.com: with the loopback grant
    // it is denied before any lookup or connection.
    let denied = airlock_in(
        &dir,
        &[
            "run",
            &wasm,
            "--policies",
            &permit_all(),
            "--grant",
            "loopback.toml",
            "--no-dns",
            "--input-file",
            "input.json",
        ],
    );
    assert!(
        stderr(&denied).contains("tool_denied"),
        "{lang}: {}",
        stderr(&denied)
    );
}

#[test]
fn rust_projects_build_and_run() {
    greeter("rust");
    fetcher("rust");
}

/// The README's Rust walkthrough, as written there: its `src/lib.rs` in the
/// project `airlock new --lang rust shout` makes builds, and upper-cases a
/// JSON string as the README shows.
#[test]
fn the_readmes_rust_walkthrough_builds_and_runs_as_shown() {
    let readme = std::fs::read_to_string(airlock_tests::workspace_root().join("README.md"))
        .expect("README.md");
    let walkthrough = readme
        .split_once("replace `src/lib.rs` with this")
        .expect("the README's Rust walkthrough")
        .1;
    let source = walkthrough
        .split_once("```rs\n")
        .and_then(|(_, rest)| rest.split_once("\n```"))
        .expect("its src/lib.rs, fenced as rs")
        .0;
    let parent = tempfile::tempdir().expect("tempdir");
    let out = airlock_in(parent.path(), &["new", "--lang", "rust", "shout"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let dir = parent.path().join("shout");
    std::fs::write(dir.join("src/lib.rs"), source).expect("write src/lib.rs");
    build(&dir, "shout", "the README's shout");
    let out = airlock_in(&dir, &["run", "shout.wasm", "--input", "\"hello\""]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), "\"HELLO\"");
}

#[test]
fn python_projects_build_and_run() {
    greeter("python");
    fetcher("python");
}

#[test]
fn javascript_projects_build_and_run() {
    greeter("js");
    fetcher("js");
}

/// TypeScript: `app.ts` instead of `app.js`; `./build` type-checks and
/// compiles it with the pinned tsc first, and refuses a type error.
#[test]
fn typescript_projects_build_and_run() {
    let parent = tempfile::tempdir().expect("tempdir");
    let out = airlock_in(parent.path(), &["new", "--lang", "js", "greet-ts"]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let dir = parent.path().join("greet-ts");
    std::fs::remove_file(dir.join("app.js")).expect("remove app.js");
    let typed = |greeting: &str| {
        format!(
            "interface Descriptor {{ name: string; version: string; description: string; inputSchema: string }}\n\
             export const tool = {{\n\
             \x20 describe(): Descriptor {{ return {{ name: \"greet-ts\", version: \"0.1.0\", description: \"Greets.\", inputSchema: \"{{}}\" }}; }},\n\
             \x20 call(input: string): string {{\n\
             \x20   const query: {{ name?: unknown }} = JSON.parse(input);\n\
             \x20   if (typeof query.name !== \"string\") throw {{ tag: \"invalid-input\", val: \"give a name\" }};\n\
             \x20   const greeting: string = {greeting};\n\
             \x20   return JSON.stringify({{ greeting }});\n\
             \x20 }},\n}};\n"
        )
    };
    let build = || {
        Command::new(dir.join("build"))
            .current_dir(&dir)
            .output()
            .expect("run ./build")
    };

    std::fs::write(dir.join("app.ts"), typed("42")).expect("write app.ts");
    let refused = build();
    assert!(
        !refused.status.success(),
        "a type error must fail the build"
    );
    assert!(
        String::from_utf8_lossy(&refused.stdout).contains("error TS")
            || String::from_utf8_lossy(&refused.stderr).contains("error TS"),
        "{}",
        String::from_utf8_lossy(&refused.stderr)
    );

    std::fs::write(dir.join("app.ts"), typed("`Hello, ${query.name}!`")).expect("write app.ts");
    let built = build();
    assert!(
        built.status.success(),
        "{}",
        String::from_utf8_lossy(&built.stderr)
    );
    let out = airlock_in(
        &dir,
        &["run", "greet-ts.wasm", "--input-file", "input.json"],
    );
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out).trim(), r#"{"greeting":"Hello, world!"}"#);
}

#[test]
fn c_projects_build_and_run() {
    greeter("c");
    fetcher("c");
}

#[test]
fn go_projects_build_and_run() {
    greeter("go");
    fetcher("go");
}

#[test]
fn bad_names_and_occupied_directories_are_refused() {
    let parent = tempfile::tempdir().expect("tempdir");
    let out = airlock_in(parent.path(), &["new", "--lang", "python", "Bad_Name"]);
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("invalid_name"), "{}", stderr(&out));

    std::fs::create_dir(parent.path().join("taken")).expect("mkdir");
    std::fs::write(parent.path().join("taken/keep.txt"), "mine").expect("write");
    let out = airlock_in(parent.path(), &["new", "--lang", "go", "taken"]);
    assert!(
        stderr(&out).contains("directory_not_empty"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        std::fs::read_to_string(parent.path().join("taken/keep.txt")).expect("kept"),
        "mine",
        "nothing was overwritten"
    );

    let out = airlock_in(
        parent.path(),
        &["new", "--lang", "c", "--world", "native", "x"],
    );
    assert_eq!(code(&out), 2, "{}", stderr(&out));
    assert!(stderr(&out).contains("network-files"), "{}", stderr(&out));
}
