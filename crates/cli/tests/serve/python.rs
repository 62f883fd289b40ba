//! End to end with the official MCP Python SDK (`mcp` from PyPI, versions
//! 1.x and 2.x, installed by `.ci/test` into `target/python-mcp/VERSION`):
//! `tests/python/mcp_client.py` drives `airlock serve --stdio` (it starts
//! the server itself) and `airlock serve --listen` through list, call, an
//! `isError` result, and a network call that waits while an operator
//! decides over the socket, or that the human at the client allows
//! (`approvals = "client"`).

use super::fixture::{self, Fixture, Server};
use serde_json::Value;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Command, Stdio};

/// The SDK versions `.ci/install` prepares (keep in step with it).
const VERSIONS: [&str; 2] = ["1.30.0", "2.3.0"];

pub fn python(version: &str) -> PathBuf {
    // target/debug/airlock -> target/python-mcp/VERSION/bin/python
    let target = PathBuf::from(env!("CARGO_BIN_EXE_airlock"))
        .ancestors()
        .nth(2)
        .expect("the target directory")
        .to_path_buf();
    let python = target.join("python-mcp").join(version).join("bin/python");
    assert!(
        python.exists(),
        "{} is missing: run `bash .ci/test` (the README's test command), which installs the MCP Python SDK",
        python.display()
    );
    python
}

fn script() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../tests/python/mcp_client.py")
}

/// The client script of SDK `version`, starting `airlock serve --stdio`
/// on `fixture` itself, fetching from `svc.test:PORT`. Over stdio the
/// server is the client's child and runs as the client's user: here the
/// test's (the SDK's venvs are made from whichever Python the test user
/// has, which another user may not reach).
fn over_stdio(version: &str, fixture: &Fixture, port: u16) -> Command {
    let mut command = Command::new(python(version));
    fixture::dies_with_the_test(&mut command)
        .arg(script())
        .arg("stdio")
        .arg(env!("CARGO_BIN_EXE_airlock"))
        .arg(fixture.state())
        .arg(fixture.config())
        .arg(format!("http://svc.test:{port}/from-python"))
        .arg("svc.test=127.0.0.1");
    command
}

/// Runs the client script; approves what it waits for with `decide`.
/// Returns the protocol version it negotiated and the approval questions
/// it was asked (with `--answer`).
fn drive(mut command: Command, decide: &dyn Fn(&str)) -> (String, Vec<String>) {
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the Python client");
    let stdout = child.stdout.take().expect("stdout");
    let mut protocol = None;
    let mut asked = Vec::new();
    for line in BufReader::new(stdout).lines().map_while(Result::ok) {
        let event: Value =
            serde_json::from_str(&line).unwrap_or_else(|_| panic!("the client printed {line:?}"));
        match event["event"].as_str() {
            Some("waiting") => {
                let id = event["approval"]
                    .as_str()
                    .expect("the progress names the approval");
                decide(id);
            }
            Some("asked") => asked.push(event["message"].as_str().unwrap_or_default().to_string()),
            Some("done") => protocol = event["protocol"].as_str().map(str::to_string),
            _ => panic!("unexpected event {event}"),
        }
    }
    let output = child.wait_with_output().expect("wait for the client");
    assert!(
        output.status.success(),
        "the Python client failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
    (protocol.expect("the client finished"), asked)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_drives_airlock_serve_over_http() {
    let upstream = fixture::upstream().await;
    let port = upstream.addr().port();
    let fixture = Fixture::with_upstream("", port);
    let server = Server::http(&fixture).await;
    let mut protocols = Vec::new();
    for version in VERSIONS {
        let token = server.add_agent(&format!("python-{}", version.replace('.', "-")));
        let mut command = Command::new(python(version));
        command.arg(script()).args([
            "http",
            &format!("{}/mcp", server.url()),
            &token,
            &format!("http://svc.test:{port}/from-python"),
        ]);
        let decide = |id: &str| {
            let out = server.airlock(&["approvals", "decide", id, "--allow", "once"]);
            assert!(out.status.success(), "{}", fixture::printed(&out));
        };
        let (protocol, _) = tokio::task::block_in_place(|| drive(command, &decide));
        protocols.push(protocol);
    }
    assert_eq!(upstream.requests().len(), VERSIONS.len());
    assert_ne!(
        protocols[0], protocols[1],
        "two protocol generations: {protocols:?}"
    );
    server.stop_and_journal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_python_sdk_drives_airlock_serve_over_stdio() {
    let upstream = fixture::upstream().await;
    let port = upstream.addr().port();
    let mut protocols = Vec::new();
    for version in VERSIONS {
        let fixture = Fixture::with_upstream("", port);
        let command = over_stdio(version, &fixture, port);
        let decide = |id: &str| {
            let out =
                fixture::airlock_for(&fixture, &["approvals", "decide", id, "--allow", "once"])
                    .output()
                    .expect("run airlock");
            assert!(out.status.success(), "{}", fixture::printed(&out));
        };
        protocols.push(tokio::task::block_in_place(|| drive(command, &decide)).0);
        let journal = fixture::journal(&fixture);
        let decided = journal
            .iter()
            .find(|e| e["kind"] == "approval_decided")
            .expect("journaled");
        // The operator is the server's user: here the test's own.
        assert_eq!(
            decided["payload"]["decided_by"],
            format!("operator:{}", super::users::current().name)
        );
    }
    assert_eq!(upstream.requests().len(), VERSIONS.len());
    assert_ne!(
        protocols[0], protocols[1],
        "two protocol generations: {protocols:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_human_at_a_python_client_allows_the_call_on_both_protocol_generations() {
    let upstream = fixture::upstream().await;
    let port = upstream.addr().port();
    let mut protocols = Vec::new();
    for version in VERSIONS {
        let fixture = Fixture::with_upstream("approvals = \"client\"\n", port);
        let mut command = over_stdio(version, &fixture, port);
        command.args(["--answer", "allow_once"]);
        // No operator decides: only the answer at the client can.
        let (protocol, asked) = tokio::task::block_in_place(|| drive(command, &|_| {}));
        assert_eq!(asked.len(), 1, "{version}: asked once: {asked:?}");
        assert!(asked[0].contains("`fetch`"), "{}", asked[0]);
        protocols.push(protocol);
        let journal = fixture::journal(&fixture);
        let decided = journal
            .iter()
            .find(|e| e["kind"] == "approval_decided")
            .expect("journaled");
        let by = decided["payload"]["decided_by"]
            .as_str()
            .unwrap_or_default();
        assert!(
            by.starts_with("mcp-client:Agent::\"stdio\" via "),
            "{version}: {by}"
        );
    }
    assert_eq!(upstream.requests().len(), VERSIONS.len());
    assert_ne!(
        protocols[0], protocols[1],
        "two protocol generations: {protocols:?}"
    );
}
