//! `airlock vault …` and `airlock run` with a bound secret: values only
//! from stdin, never printed; a tool calls an authenticated loopback API
//! without seeing the key.

mod common;

use airlock_tests::guest_path;
use airlock_tests::net::{Behaviour, TestServer};
use common::{airlock, code, feed, permit_all, stderr, stdout};
use std::path::Path;
use std::process::{Command, Output, Stdio};

const SECRET: &str = "sk-cli-test-9f8e7d6c5b4a";
const PASSPHRASE: &str = "cli test passphrase, long enough";

/// `airlock --state-dir STATE ARGS` with a passphrase vault, `stdin` fed.
fn vault_cmd(state: &Path, args: &[&str], stdin: &[u8]) -> Output {
    vault_cmd_with(airlock(&[]), state, args, stdin)
}

/// [`vault_cmd`] on a prepared command (extra environment).
fn vault_cmd_with(mut cmd: Command, state: &Path, args: &[&str], stdin: &[u8]) -> Output {
    cmd.args(args)
        .arg("--state-dir")
        .arg(state)
        .env("AIRLOCK_VAULT_PASSPHRASE", PASSPHRASE);
    feed(cmd, stdin)
}

fn printed(out: &Output) -> String {
    format!("{}{}", stdout(out), stderr(out))
}

#[test]
fn secrets_go_in_by_stdin_and_never_come_out() {
    let state = tempfile::tempdir().expect("tempdir");
    let dir = state.path();

    let on_argv = vault_cmd(dir, &["vault", "set", "api-key", SECRET], b"");
    assert_eq!(code(&on_argv), 2);
    assert!(
        stderr(&on_argv).contains("secret_on_command_line"),
        "{}",
        printed(&on_argv)
    );
    assert!(
        !printed(&on_argv).contains(SECRET),
        "the refusal does not echo the value"
    );
    assert!(!airlock::vault::Vault::exists(dir), "nothing was created");

    let short = vault_cmd(dir, &["vault", "set", "api-key"], b"short\n");
    assert_eq!(code(&short), 2);
    assert!(
        stderr(&short).contains("invalid_secret"),
        "{}",
        printed(&short)
    );

    let bad_scope = vault_cmd(
        dir,
        &["vault", "set", "api-key", "--scope", "team:x"],
        format!("{SECRET}\n").as_bytes(),
    );
    assert_eq!(code(&bad_scope), 2);
    assert!(
        stderr(&bad_scope).contains("tool:NAME"),
        "{}",
        printed(&bad_scope)
    );

    let set = vault_cmd(
        dir,
        &["vault", "set", "api-key", "--scope", "tool:fetch"],
        format!("{SECRET}\n").as_bytes(),
    );
    assert_eq!(code(&set), 0, "{}", printed(&set));
    assert!(
        stderr(&set).contains("created a vault"),
        "{}",
        printed(&set)
    );

    let list = vault_cmd(dir, &["vault", "list", "--json"], b"");
    assert_eq!(code(&list), 0, "{}", printed(&list));
    let row: serde_json::Value = serde_json::from_str(stdout(&list).trim()).expect("JSON line");
    assert_eq!(row["name"], "api-key");
    assert_eq!(row["scope"], "tool:fetch");

    let status = vault_cmd(dir, &["vault", "status", "--json"], b"");
    let status: serde_json::Value = serde_json::from_str(stdout(&status).trim()).expect("JSON");
    assert_eq!(status["backend"], "passphrase");
    assert_eq!(status["secrets"], 1);

    let rotated = airlock(&["vault", "rotate-master-key", "--state-dir"])
        .arg(dir)
        .env("AIRLOCK_VAULT_PASSPHRASE", PASSPHRASE)
        .env(
            "AIRLOCK_VAULT_NEW_PASSPHRASE",
            "the next passphrase, also long",
        )
        .stdin(Stdio::null())
        .output()
        .expect("rotate");
    assert_eq!(code(&rotated), 0, "{}", printed(&rotated));
    let old = vault_cmd(dir, &["vault", "list"], b"");
    assert_eq!(code(&old), 2);
    assert!(
        stderr(&old).contains("wrong_master_key"),
        "{}",
        printed(&old)
    );

    for out in [&set, &list, &rotated, &old] {
        assert!(!printed(out).contains(SECRET));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_bound_tool_calls_an_authenticated_api_without_seeing_the_key() {
    let server = TestServer::start(std::net::Ipv4Addr::new(127, 0, 0, 2), 0, Behaviour::Reflect)
        .await
        .expect("server");
    let port = server.addr().port();
    let state = tempfile::tempdir().expect("tempdir");
    let dir = state.path().to_path_buf();
    let set = vault_cmd(
        &dir,
        &["vault", "set", "api-key"],
        format!("{SECRET}\n").as_bytes(),
    );
    assert_eq!(code(&set), 0, "{}", printed(&set));
    let config = dir.join("airlock.toml");
    std::fs::write(
        &config,
        format!(
            r#"[[tools]]
name = "fetch"
component = {component:?}
[[tools.network.allow]]
host = "api.test"
private = true
ports = [{port}]
[[tools.credentials]]
secret = "api-key"
header = "Authorization"
format = "Bearer {{secret}}"
hosts = ["api.test"]
schemes = ["http"]
ports = [{port}]
"#,
            component = guest_path("http-get")
        ),
    )
    .expect("config");
    let input = format!(r#"{{"url": "http://api.test:{port}/me"}}"#);
    let config = config.display().to_string();
    let resolve = "api.test=127.0.0.2".to_string();
    let policies = permit_all();
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = airlock(&[]);
        // Everything the host and its HTTP stack log, at the finest level.
        cmd.env(
            "RUST_LOG",
            "airlock=trace,hyper=trace,wasmtime_wasi_http=trace,rustls=trace",
        );
        vault_cmd_with(
            cmd,
            &dir,
            &[
                "run",
                "--config",
                &config,
                "--tool",
                "fetch",
                "--input",
                &input,
                "--resolve",
                &resolve,
                "--no-dns",
                "--policies",
                &policies,
                "--json",
            ],
            b"",
        )
    })
    .await
    .expect("join");
    assert_eq!(code(&out), 0, "{}", printed(&out));
    let seen = server.requests();
    assert_eq!(
        seen[0].header("authorization"),
        Some(format!("Bearer {SECRET}").as_str())
    );
    assert!(
        stderr(&out).contains("egress.allowed"),
        "trace logging was on: {}",
        stderr(&out)
    );
    assert!(
        !printed(&out).contains(SECRET),
        "not in the output, nor in trace-level logs"
    );
    assert!(
        stdout(&out).contains("\"credentials\":[\"api-key\"]"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn vault_status_ends_every_line() {
    let state = tempfile::tempdir().expect("tempdir");
    let dir = state.path();
    let none = vault_cmd(dir, &["vault", "status"], b"");
    assert_eq!(code(&none), 0, "{}", printed(&none));
    assert!(
        stdout(&none).starts_with("no vault in "),
        "{}",
        stdout(&none)
    );
    assert!(stdout(&none).ends_with('\n'), "{:?}", stdout(&none));
    let set = vault_cmd(dir, &["vault", "set", "api-key"], SECRET.as_bytes());
    assert_eq!(code(&set), 0, "{}", printed(&set));
    for args in [&["vault", "status"][..], &["vault", "status", "--json"][..]] {
        let status = vault_cmd(dir, args, b"");
        assert_eq!(code(&status), 0, "{}", printed(&status));
        let text = stdout(&status);
        assert!(text.contains("passphrase"), "{text}");
        assert!(text.ends_with('\n'), "{args:?}: {text:?}");
    }
}
