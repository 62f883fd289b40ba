//! `airlock run --config … --tool …` for native tools: the `native` table in
//! `airlock.toml`, input on stdin, JSON output, strict egress through the
//! proxy (the `airlock` binary is its own bridge), clear load errors.
#![cfg(target_os = "linux")]

mod common;

use airlock_tests::net::{Behaviour, TestServer};
use common::{airlock, code, feed, json_of, permit_all, stderr, stdout};
use std::net::Ipv4Addr;
use std::path::Path;
use std::process::Output;

const SVC: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// `airlock run` on the tool `tool` of the configuration `config` (written
/// to a fresh directory), with the test hostnames pinned to loopback.
fn run_configured(config: &str, tool: &str, input: &str, extra: &[&str]) -> Output {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("airlock.toml");
    std::fs::write(&path, config).expect("config");
    run_config_file(&path, tool, input, extra)
}

fn run_config_file(path: &Path, tool: &str, input: &str, extra: &[&str]) -> Output {
    let config = path.display().to_string();
    let policies = permit_all();
    let mut args = vec![
        "run",
        "--config",
        &config,
        "--tool",
        tool,
        "--resolve",
        "svc.test=127.0.0.2",
        "--no-dns",
        "--policies",
        &policies,
    ];
    args.extend_from_slice(extra);
    feed(airlock(&args), input.as_bytes())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_configured_native_tool_reaches_only_its_grant() {
    let server = TestServer::start(SVC, 0, Behaviour::Echo)
        .await
        .expect("server");
    let port = server.addr().port();
    let script = format!(
        r#"read -r input
body=$(curl -s -m 5 http://svc.test:{port}/from-native)
refused=$(curl -s -m 5 -o /dev/null -w '%{{http_code}}' http://other.test/)
printf '{{"input": %s, "echoed": %s, "refused": "%s"}}' "$input" "$body" "$refused""#
    );
    let config = format!(
        r#"[[tools]]
name = "fetcher"
native = {{ program = "/bin/sh", args = ["-c", {script:?}], network = "strict" }}
[[tools.network.allow]]
host = "svc.test"
private = true
ports = [{port}]
"#
    );
    let out = tokio::task::spawn_blocking(move || {
        run_configured(&config, "fetcher", r#"{"q": 1}"#, &["--json"])
    })
    .await
    .expect("join");
    assert_eq!(code(&out), 0, "{}{}", stdout(&out), stderr(&out));
    let result = json_of(&out);
    assert_eq!(result["status"], "ok");
    assert_eq!(result["tool"]["name"], "fetcher");
    assert_eq!(result["tool"]["world"], "native");
    assert_eq!(result["tool"]["sha256"].as_str().map(str::len), Some(64));
    assert_eq!(result["output"]["input"]["q"], 1, "input arrived on stdin");
    assert_eq!(result["output"]["echoed"]["target"], "/from-native");
    assert_eq!(result["output"]["refused"], "403");
    let egress = result["report"]["egress"].as_array().expect("records");
    assert_eq!(egress.len(), 2, "{egress:#?}");
    assert_eq!(egress[0]["decision"], "allow");
    assert_eq!(egress[1]["decision"], "deny");
    assert_eq!(egress[1]["reason"], "host_not_allowed");
    assert_eq!(server.requests().len(), 1, "only the granted request left");
}

#[test]
fn a_program_named_without_a_path_is_found_on_path_and_sees_no_host_environment() {
    let config = r#"[[tools]]
name = "echo"
native = { program = "sh", args = ["-c", "read -r x; printf '{\"x\": %s, \"home\": \"%s\", \"secret\": \"%s\"}' \"$x\" \"$HOME\" \"$AIRLOCK_TEST_SECRET\""] }
"#;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("airlock.toml");
    std::fs::write(&path, config).expect("config");
    let mut cmd = airlock(&[]);
    cmd.env("AIRLOCK_TEST_SECRET", "host-only").args([
        "run",
        "--config",
        &path.display().to_string(),
        "--tool",
        "echo",
        "--policies",
        &permit_all(),
    ]);
    let out = feed(cmd, b"[1, 2]\n");
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let output: serde_json::Value = serde_json::from_str(stdout(&out).trim()).expect("JSON");
    assert_eq!(output["x"], serde_json::json!([1, 2]));
    assert_eq!(output["home"], "", "nothing inherited");
    assert_eq!(output["secret"], "");
}

#[test]
fn failures_of_native_tools_read_like_component_failures() {
    let cases = [
        (
            r#"native = { program = "/bin/sh", args = ["-c", "echo broken >&2; exit 3"] }"#,
            1,
            "tool_failed",
            "exited with status 3: broken",
        ),
        (
            r#"native = { program = "/bin/sh", args = ["-c", "echo not json"] }"#,
            1,
            "invalid_output",
            "not JSON",
        ),
        (
            r#"native = { program = "/bin/sh", args = ["-c", "sleep 30"], limits = { timeout = "300ms" } }"#,
            4,
            "deadline_exceeded",
            "",
        ),
        (
            r#"native = { program = "/no/such/program" }"#,
            2,
            "native_program_unreadable",
            "/no/such/program",
        ),
        (
            r#"native = { program = "/bin/sh", fs_read = ["./missing"] }"#,
            2,
            "grant_invalid",
            "create it or fix `fs_read`/`fs_write`",
        ),
    ];
    for (native, exit, reason, hint) in cases {
        let config = format!("[[tools]]\nname = \"t\"\n{native}\n");
        let out = run_configured(&config, "t", "{}", &["--json"]);
        let result = json_of(&out);
        assert_eq!(code(&out), exit, "{native}: {result}");
        assert_eq!(result["code"], reason, "{native}: {result}");
        let message = result["error"]["message"].as_str().unwrap_or_default();
        assert!(message.contains(hint), "{native}: {message}");
    }
}

#[test]
fn a_native_tool_refuses_component_only_flags() {
    let config = "[[tools]]\nname = \"t\"\nnative = { program = \"/bin/true\" }\n";
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_configured(
        config,
        "t",
        "{}",
        &["--dir", &format!("{}::/data", dir.path().display())],
    );
    assert_eq!(code(&out), 2);
    assert!(stderr(&out).contains("fs_read"), "{}", stderr(&out));
}
