//! `airlock serve` with the official Rust MCP client (rmcp) over both
//! transports: tools/list and tools/call, structured output and error
//! results, malformed calls, bearer tokens and `Origin`, approvals decided
//! over the operator socket (and refused to a non-operator), cancellation,
//! reload with `tools/list_changed`, the concurrency bound and a clean
//! shutdown. Each test runs its own server process.

mod approval_binding;
mod attacks;
mod browser;
mod client_approvals;
mod console;
mod fixture;
mod hosted;
mod injected;
mod installs;
mod python;
mod raw;
mod registry;
mod replicas;
mod roles;
mod rug_pull;
mod session_caps;
mod sessions;
mod survival;
mod telemetry;
mod users;

use fixture::{Fixture, Server, airlock_for};
use rmcp::model::{CallToolRequestParams, ClientRequest, Request};
use serde_json::{Value, json};
use std::time::Duration;

fn call(name: &str, arguments: Value) -> CallToolRequestParams {
    let Value::Object(arguments) = arguments else {
        panic!("arguments are an object");
    };
    CallToolRequestParams::new(name.to_string()).with_arguments(arguments)
}

/// Calls tool `name` with `arguments` as `peer`; the call itself must go
/// through (the tool's own result may be an error).
async fn call_tool(
    peer: &rmcp::service::Peer<rmcp::RoleClient>,
    name: &str,
    arguments: Value,
) -> rmcp::model::CallToolResult {
    peer.call_tool(call(name, arguments))
        .await
        .expect("tools/call")
}

/// A `fetch` of `url` started on its own task, once the server holds it for
/// an operator: the call, its progress message, and the pending approval id.
async fn fetch_held_for_approval(
    server: &Server<'_>,
    client: &rmcp::service::RunningService<rmcp::RoleClient, fixture::Recorder>,
    arguments: Value,
) -> (
    tokio::task::JoinHandle<Result<rmcp::model::CallToolResult, rmcp::ServiceError>>,
    String,
    String,
) {
    fetch_held_for_approval_of(server, client, "fetch", arguments).await
}

/// A call of `tool` started on its own task, once the server holds it for
/// an operator: the call, its progress message, and the pending approval id.
async fn fetch_held_for_approval_of(
    server: &Server<'_>,
    client: &rmcp::service::RunningService<rmcp::RoleClient, fixture::Recorder>,
    tool: &str,
    arguments: Value,
) -> (
    tokio::task::JoinHandle<Result<rmcp::model::CallToolResult, rmcp::ServiceError>>,
    String,
    String,
) {
    let pending = tokio::spawn({
        let peer = client.peer().clone();
        let call = call(tool, arguments);
        async move { peer.call_tool(call).await }
    });
    let waiting = client.service().next_progress().await;
    assert!(waiting.contains("waiting for an operator"), "{waiting}");
    let id = server.pending_approval_id();
    (pending, waiting, id)
}

/// A call of `tool` held for an approval that the operator then gives
/// with `scope` (`once`, `session`): the call's result.
async fn call_allowed(
    server: &Server<'_>,
    client: &rmcp::service::RunningService<rmcp::RoleClient, fixture::Recorder>,
    tool: &str,
    arguments: Value,
    scope: &str,
) -> rmcp::model::CallToolResult {
    let (pending, _, id) = fetch_held_for_approval_of(server, client, tool, arguments).await;
    let decided = server.airlock(&["approvals", "decide", &id, "--allow", scope]);
    assert!(decided.status.success(), "{}", fixture::printed(&decided));
    pending.await.expect("task").expect("tools/call")
}

/// The text of a result's first content block.
fn text(result: &rmcp::model::CallToolResult) -> String {
    result
        .content
        .first()
        .and_then(|c| c.as_text())
        .map(|t| t.text.clone())
        .unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn http_lists_and_calls_tools() {
    let fixture = Fixture::new("");
    let server = Server::http(&fixture).await;
    let client = server.client("claude").await;

    let tools = client.peer().list_all_tools().await.expect("tools/list");
    let names: Vec<&str> = tools.iter().map(|t| t.name.as_ref()).collect();
    assert_eq!(names, ["echo", "json-transform", "spin", "fetch"]);
    let annotations = |name: &str| {
        tools
            .iter()
            .find(|t| t.name == name)
            .and_then(|t| t.annotations.clone())
            .expect("annotated")
    };
    assert_eq!(annotations("echo").read_only_hint, Some(true));
    assert_eq!(annotations("echo").open_world_hint, Some(false));
    assert_eq!(annotations("fetch").read_only_hint, Some(false));
    assert_eq!(annotations("fetch").open_world_hint, Some(true));
    let transform = tools
        .iter()
        .find(|t| t.name == "json-transform")
        .expect("tool");
    assert_eq!(transform.input_schema["required"], json!(["records"]));

    // An object output is structured content, with its text.
    let echoed = call_tool(client.peer(), "echo", json!({"hello": [1, 2]})).await;
    assert_eq!(echoed.is_error, Some(false));
    assert_eq!(echoed.structured_content, Some(json!({"hello": [1, 2]})));
    assert_eq!(
        serde_json::from_str::<Value>(&text(&echoed)).expect("JSON text"),
        json!({"hello": [1, 2]})
    );

    let sorted = call_tool(
        client.peer(),
        "json-transform",
        json!({"records": [{"n": 2}, {"n": 1}], "sort_by": "n"}),
    )
    .await;
    assert_eq!(sorted.is_error, Some(false), "{}", text(&sorted));

    // A tool's own refusal is a result the model reads, with its code.
    let refused = call_tool(
        client.peer(),
        "json-transform",
        json!({"records": [], "where": {"field": "n", "op": "between"}}),
    )
    .await;
    assert_eq!(refused.is_error, Some(true));
    assert!(
        text(&refused).starts_with("tool_invalid_input: "),
        "{}",
        text(&refused)
    );
    assert_eq!(
        refused
            .structured_content
            .as_ref()
            .map(|s| &s["error"]["code"]),
        Some(&json!("tool_invalid_input"))
    );

    // Malformed calls are JSON-RPC errors: an unknown tool, a wrong type.
    let unknown = client
        .peer()
        .call_tool(call("no-such-tool", json!({})))
        .await
        .expect_err("unknown tool");
    assert!(
        unknown.to_string().contains("no tool named `no-such-tool`"),
        "{unknown}"
    );
    let mistyped = client
        .peer()
        .call_tool(call("json-transform", json!({"records": "not a list"})))
        .await
        .expect_err("wrong type");
    assert!(
        mistyped.to_string().contains("`records` must be array"),
        "{mistyped}"
    );

    client.cancel().await.expect("close");
    let journal = server.stop_and_journal();
    let invocations: Vec<&Value> = journal
        .iter()
        .filter(|e| e["kind"] == "invocation")
        .collect();
    assert_eq!(invocations.len(), 3, "malformed calls never ran");
    for entry in invocations {
        assert_eq!(
            entry["payload"]["attestation"]["principal"], "Agent::\"claude\"",
            "the principal comes from the token"
        );
    }
    let stopped = journal
        .iter()
        .find(|e| e["kind"] == "server" && e["payload"]["event"] == "stopped")
        .expect("a clean shutdown is journaled");
    assert_eq!(stopped["payload"]["clean"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_need_a_token_and_an_allowed_origin() {
    let fixture = Fixture::new("allowed_origins = [\"http://localhost:6274\"]\n");
    let server = Server::http(&fixture).await;
    let token = server.add_agent("claude");
    let initialize = json!({
        "jsonrpc": "2.0", "id": 1, "method": "initialize",
        "params": {"protocolVersion": "2025-06-18", "capabilities": {},
                   "clientInfo": {"name": "raw", "version": "1"}}
    });
    let cases: [(Option<&str>, Option<&str>, u16); 5] = [
        (None, None, 401),
        (Some("airlock_agent_not-a-real-token"), None, 401),
        (Some(token.as_str()), Some("http://evil.example"), 403),
        (None, Some("http://evil.example"), 403),
        (Some(token.as_str()), Some("http://localhost:6274"), 200),
    ];
    for (token, origin, expected) in cases {
        let status = server.post(&initialize, token, origin).await;
        assert_eq!(status, expected, "token {token:?}, origin {origin:?}");
    }
    // A CLI that misses the server's socket would change the database
    // directly: refused while the server owns it, so the token the server
    // remembers cannot outlive a removal it did not see.
    let missed = fixture::airlock_command(&fixture)
        .arg("--state-dir")
        .arg(fixture.state())
        .arg("--socket")
        .arg(fixture.state().join("not-the-server.sock"))
        .args(["agents", "remove", "claude"])
        .output()
        .expect("run airlock");
    assert!(!missed.status.success());
    assert!(
        fixture::printed(&missed).contains("state_in_use"),
        "{}",
        fixture::printed(&missed)
    );
    assert_eq!(server.post(&initialize, Some(&token), None).await, 200);
    // A removed agent's token stops working at once.
    let removed = server.airlock(&["agents", "remove", "claude"]);
    assert!(removed.status.success(), "{}", fixture::printed(&removed));
    assert_eq!(server.post(&initialize, Some(&token), None).await, 401);
    server.stop_and_journal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_network_call_waits_until_an_operator_allows_it_over_the_socket() {
    let upstream = fixture::upstream().await;
    let fixture = Fixture::with_upstream("", upstream.addr().port());
    let server = Server::http(&fixture).await;
    let client = server.client("claude").await;

    let url = format!("http://svc.test:{}/report", upstream.addr().port());
    // The call waits; its progress names the pending approval.
    let (pending, waiting, id) =
        fetch_held_for_approval(&server, &client, json!({"url": url})).await;
    assert!(waiting.contains(&id), "{waiting} names {id}");
    assert!(
        upstream.requests().is_empty(),
        "nothing left before approval"
    );

    let decided = server.airlock(&["approvals", "decide", &id, "--allow", "once"]);
    assert!(decided.status.success(), "{}", fixture::printed(&decided));
    let result = pending.await.expect("task").expect("tools/call");
    assert_eq!(result.is_error, Some(false), "{}", text(&result));
    assert_eq!(
        result
            .structured_content
            .as_ref()
            .map(|s| s["status"].clone()),
        Some(json!(200))
    );
    assert_eq!(upstream.requests().len(), 1);

    client.cancel().await.expect("close");
    let journal = server.stop_and_journal();
    let decision = journal
        .iter()
        .find(|e| e["kind"] == "approval_decided")
        .expect("the decision is journaled");
    let me = fixture::user_name();
    assert_eq!(decision["payload"]["decided_by"], format!("operator:{me}"));
    let invocation = journal
        .iter()
        .find(|e| e["kind"] == "invocation")
        .expect("the call is journaled");
    assert_eq!(invocation["payload"]["attestation"]["approval_id"], id);
    assert_eq!(
        invocation["payload"]["attestation"]["principal"],
        "Agent::\"claude\""
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unapproved_call_returns_the_pending_id_when_the_wait_ends() {
    let upstream = fixture::upstream().await;
    let fixture = Fixture::with_upstream("approval_wait = \"300ms\"\n", upstream.addr().port());
    let server = Server::http(&fixture).await;
    let client = server.client("claude").await;
    let url = format!("http://svc.test:{}/", upstream.addr().port());
    let result = call_tool(client.peer(), "fetch", json!({"url": url})).await;
    assert_eq!(result.is_error, Some(true));
    let id = server.pending_approval_id();
    assert!(
        text(&result).starts_with("approval_pending: "),
        "{}",
        text(&result)
    );
    assert!(text(&result).contains(&id), "{}", text(&result));
    assert_eq!(
        result
            .structured_content
            .as_ref()
            .map(|s| &s["error"]["approval_id"]),
        Some(&json!(id))
    );
    // The agent's retry after the operator decided runs at once.
    let decided = server.airlock(&["approvals", "decide", &id, "--allow", "once"]);
    assert!(decided.status.success(), "{}", fixture::printed(&decided));
    let retried = call_tool(client.peer(), "fetch", json!({"url": url})).await;
    assert_eq!(retried.is_error, Some(false), "{}", text(&retried));
    client.cancel().await.expect("close");
    server.stop_and_journal();
}

/// With no `[[serve.operators]]`, the server's own user is the only
/// operator: the socket's mode (0600) keeps `nobody` out, and root, whom no
/// mode keeps out, is refused by the server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_operators_reach_the_operator_socket() {
    users::require_root("refusing `nobody` and root at the operator socket");
    let fixture = Fixture::with_public_socket("");
    let server = Server::http(&fixture).await;
    let own = server.airlock(&["status", "--json"]);
    assert!(own.status.success(), "{}", fixture::printed(&own));
    let status: Value = serde_json::from_slice(&own.stdout).expect("JSON");
    assert_eq!(status["tools"][0], "echo");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(fixture.socket())
            .expect("socket")
            .permissions(),
    );
    assert_eq!(mode & 0o777, 0o600, "only the server's own user reaches it");

    let strangers = [users::with_uid(users::NOBODY), users::with_uid(0)];
    for stranger in strangers {
        let mut command = airlock_for(&fixture, &["approvals", "list"]);
        users::as_user(&mut command, &stranger);
        let refused = command.output().expect("run airlock");
        assert_eq!(
            refused.status.code(),
            Some(3),
            "{}: {}",
            stranger.name,
            fixture::printed(&refused)
        );
        assert!(
            fixture::printed(&refused).contains("not_an_operator"),
            "{}: {}",
            stranger.name,
            fixture::printed(&refused)
        );
    }
    server.stop_and_journal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_cancelled_call_stops_the_running_tool() {
    let fixture = Fixture::new("");
    let server = Server::http(&fixture).await;
    let client = server.client("claude").await;
    let request = ClientRequest::CallToolRequest(Request::new(call("spin", json!({}))));
    let handle = client
        .peer()
        .send_cancellable_request(request, Default::default())
        .await
        .expect("sent");
    server.wait_until_running(1).await;
    handle
        .cancel(Some("the user changed their mind".into()))
        .await
        .expect("cancel sent");
    server.wait_until_running(0).await;

    // A call cancelled while it waits for an approval never runs; the
    // journal says so.
    let request = ClientRequest::CallToolRequest(Request::new(call(
        "fetch",
        json!({"url": "http://svc.test:9/"}),
    )));
    let handle = client
        .peer()
        .send_cancellable_request(request, Default::default())
        .await
        .expect("sent");
    let waiting = client.service().next_progress().await;
    assert!(waiting.contains("waiting for an operator"), "{waiting}");
    handle.cancel(None).await.expect("cancel sent");
    server.wait_until_running(0).await;

    client.cancel().await.expect("close");
    let journal = server.stop_and_journal();
    let spun = journal
        .iter()
        .find(|e| e["kind"] == "invocation" && e["payload"]["attestation"]["tool"] == "spin")
        .expect("the cancelled run is journaled");
    assert_eq!(spun["payload"]["attestation"]["outcome"], "cancelled");
    let abandoned = journal
        .iter()
        .find(|e| e["kind"] == "denial" && e["payload"]["tool"] == "fetch")
        .expect("the cancelled wait is journaled");
    assert_eq!(abandoned["payload"]["reason"], "cancelled");
    assert!(
        !journal
            .iter()
            .any(|e| e["kind"] == "invocation" && e["payload"]["attestation"]["tool"] == "fetch"),
        "the cancelled call never ran"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_disconnects_mid_call_cancels_it() {
    let fixture = Fixture::new("");
    let server = Server::http(&fixture).await;
    let client = server.client("claude").await;
    let peer = client.peer().clone();
    let call_task = tokio::spawn(async move { peer.call_tool(call("spin", json!({}))).await });
    server.wait_until_running(1).await;
    client.cancel().await.expect("close");
    call_task.abort();
    server.wait_until_running(0).await;
    let journal = server.stop_and_journal();
    let spun = journal
        .iter()
        .find(|e| e["kind"] == "invocation" && e["payload"]["attestation"]["tool"] == "spin")
        .expect("the abandoned run is journaled");
    assert_eq!(spun["payload"]["attestation"]["outcome"], "cancelled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_tool_makes_callers_wait_then_answers_host_busy() {
    let upstream = fixture::upstream().await;
    let fixture = Fixture::with_upstream(
        "max_concurrent_per_tool = 1\nqueue_wait = \"300ms\"\napproval_wait = \"1m\"\n",
        upstream.addr().port(),
    );
    let server = Server::http(&fixture).await;
    let client = server.client("claude").await;
    let url = format!("http://svc.test:{}/", upstream.addr().port());
    // The first call holds the tool's one slot while it waits for approval.
    let (first, _, id) =
        fetch_held_for_approval(&server, &client, json!({"url": url.clone()})).await;

    let second = call_tool(
        client.peer(),
        "fetch",
        json!({"url": url, "method": "HEAD"}),
    )
    .await;
    assert_eq!(second.is_error, Some(true));
    assert!(
        text(&second).starts_with("host_busy: "),
        "{}",
        text(&second)
    );
    // (The held call repeats its own progress every few seconds.)
    let queued = client
        .service()
        .next_progress_with("waiting for a free slot")
        .await;
    assert!(queued.contains("`fetch` already runs 1"), "{queued}");
    // Other tools are not held up.
    let echoed = call_tool(client.peer(), "echo", json!({"still": "here"})).await;
    assert_eq!(echoed.is_error, Some(false));

    let decided = server.airlock(&["approvals", "decide", &id, "--deny", "not now"]);
    assert!(decided.status.success(), "{}", fixture::printed(&decided));
    let first = first.await.expect("task").expect("tools/call");
    assert!(
        text(&first).starts_with("approval_denied: "),
        "{}",
        text(&first)
    );
    client.cancel().await.expect("close");
    server.stop_and_journal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reload_swaps_the_tools_and_tells_the_client() {
    let fixture = Fixture::new("");
    let server = Server::http(&fixture).await;
    let client = server.client("claude").await;
    assert_eq!(client.peer().list_all_tools().await.expect("list").len(), 4);

    // SIGHUP after a fifth tool was added.
    fixture.append_tool("echo2", "echo");
    server.signal(nix_signal::HANGUP);
    client.service().next_list_changed().await;
    let names: Vec<String> = client
        .peer()
        .list_all_tools()
        .await
        .expect("list")
        .into_iter()
        .map(|t| t.name.to_string())
        .collect();
    assert!(names.contains(&"echo2".to_string()), "{names:?}");

    // A broken configuration is refused; the old tools keep serving.
    fixture.write_config("[[tools]]\nname = \"broken\"\ncolour = \"red\"\n");
    let reload = server.airlock(&["reload"]);
    fixture::assert_refused(&reload, 2, "unknown field `colour`");
    let still = call_tool(client.peer(), "echo2", json!({"kept": true})).await;
    assert_eq!(still.is_error, Some(false));
    client.cancel().await.expect("close");
    let journal = server.stop_and_journal();
    let events: Vec<&Value> = journal
        .iter()
        .filter(|e| e["kind"] == "server")
        .map(|e| &e["payload"]["event"])
        .collect();
    assert_eq!(events, ["started", "reloaded", "reload_failed", "stopped"]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn stdio_serves_as_the_configured_principal() {
    let fixture = Fixture::new("principal = 'Agent::\"desktop\"'\n");
    let client = fixture::stdio_client(&fixture).await;
    let tools = client.peer().list_all_tools().await.expect("tools/list");
    assert_eq!(tools.len(), 4);
    let echoed = call_tool(client.peer(), "echo", json!({"over": "stdio"})).await;
    assert_eq!(echoed.structured_content, Some(json!({"over": "stdio"})));
    // Closing stdin ends the server; it journals a clean stop.
    client.cancel().await.expect("close");
    let journal = fixture::journal(&fixture);
    let invocation = journal
        .iter()
        .find(|e| e["kind"] == "invocation")
        .expect("journaled");
    assert_eq!(
        invocation["payload"]["attestation"]["principal"],
        "Agent::\"desktop\""
    );
}

/// Signal numbers, without a dependency for two constants.
mod nix_signal {
    pub const HANGUP: i32 = 1;
}

/// How long any one wait in these tests may take before it is a failure.
pub const PATIENCE: Duration = Duration::from_secs(60);

#[test]
fn an_older_client_negotiates_2025_06_18_over_stdio() {
    use std::io::{BufRead, BufReader, Write};
    let fixture = Fixture::new("");
    let mut command = fixture::airlock_command(&fixture);
    let mut child = fixture::dies_with_the_test(&mut command)
        .arg("--state-dir")
        .arg(fixture.state())
        .args(["serve", "--stdio", "--config"])
        .arg(fixture.config())
        .args(["--resolve", "svc.test=127.0.0.1", "--no-dns"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("start airlock serve --stdio");
    let mut stdin = child.stdin.take().expect("stdin");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let mut send = |message: Value| {
        writeln!(stdin, "{message}").expect("write");
        stdin.flush().expect("flush");
    };
    send(
        json!({"jsonrpc": "2.0", "id": 1, "method": "initialize", "params": {
        "protocolVersion": "2025-06-18", "capabilities": {},
        "clientInfo": {"name": "hand-written", "version": "1"}}}),
    );
    let answer: Value =
        serde_json::from_str(&lines.next().expect("a line").expect("read")).expect("JSON");
    assert_eq!(
        answer["result"]["protocolVersion"], "2025-06-18",
        "{answer}"
    );
    assert_eq!(
        answer["result"]["capabilities"]["tools"]["listChanged"],
        true
    );
    send(json!({"jsonrpc": "2.0", "method": "notifications/initialized"}));
    send(json!({"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                "params": {"name": "echo", "arguments": {"v": "2025-06-18"}}}));
    let answer: Value =
        serde_json::from_str(&lines.next().expect("a line").expect("read")).expect("JSON");
    assert_eq!(answer["id"], 2, "{answer}");
    assert_eq!(
        answer["result"]["structuredContent"],
        json!({"v": "2025-06-18"})
    );
    drop(stdin);
    assert!(child.wait().expect("exit").success());
}
