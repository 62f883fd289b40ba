//! MCP sessions belong to the agent that opened them, as an attacker
//! would test it: agent B (raw HTTP, its own valid token) with agent A's
//! `Mcp-Session-Id` gets 404 for calls, notifications, answers to A's
//! questions, the event stream and DELETE, and A's session works on; a
//! session-less request is in no session whatever header it carries; an
//! ended session's "allow for this session" approvals end with it.

use super::fixture::{self, Fixture, Recorder, Server};
use super::raw::{self, Reply};
use super::{call, call_tool, text};
use rmcp::model::{ElicitationAction, ProtocolVersion};
use serde_json::{Value, json};
use std::net::SocketAddr;
use std::sync::Arc;

/// The server's MCP address.
pub fn address(server: &Server<'_>) -> SocketAddr {
    server
        .url()
        .trim_start_matches("http://")
        .parse()
        .expect("an address")
}

/// `approvals list [--all] --json`.
pub fn approvals(server: &Server<'_>, all: bool) -> Vec<Value> {
    let mut args = vec!["approvals", "list", "--json"];
    if all {
        args.push("--all");
    }
    let out = server.airlock(&args);
    assert!(out.status.success(), "{}", fixture::printed(&out));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// The session the newest approval was asked in.
fn newest_session(server: &Server<'_>) -> String {
    approvals(server, true)[0]["session_id"]
        .as_str()
        .filter(|id| !id.is_empty())
        .expect("asked in a session")
        .to_string()
}

/// A `fetch` of `path` by `client`, which the server (approval_wait
/// short) holds for an operator: the pending approval's id and the
/// session it was asked in.
pub async fn held(
    server: &Server<'_>,
    client: &rmcp::service::RunningService<rmcp::RoleClient, Recorder>,
    path: &str,
) -> (String, String) {
    let url = format!("http://svc.test:9/{path}");
    let result = call_tool(client.peer(), "fetch", json!({ "url": url })).await;
    assert!(
        text(&result).starts_with("approval_pending: "),
        "{}",
        text(&result)
    );
    (server.pending_approval_id(), newest_session(server))
}

/// As [`held`], then allowed by an operator for the session.
async fn allowed_for_the_session(
    server: &Server<'_>,
    client: &rmcp::service::RunningService<rmcp::RoleClient, Recorder>,
    path: &str,
) -> (String, String) {
    let (id, session) = held(server, client, path).await;
    let decided = server.airlock(&["approvals", "decide", &id, "--allow", "session"]);
    assert!(decided.status.success(), "{}", fixture::printed(&decided));
    (id, session)
}

/// Asserts `reply` is the gate's 404 for a session that is not the
/// caller's.
#[track_caller]
fn not_found(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 404, "{what}: {reply:?}");
    assert_eq!(reply.code(), "session_not_found", "{what}: {reply:?}");
}

/// Everything agent `token` could send in session `id`: a call, a
/// notification, an answer to a question, the event stream, DELETE.
async fn every_method_in(at: SocketAddr, token: &str, id: &str, what: &str) {
    let headers = raw::in_session(id);
    let post =
        |body: Value| async move { raw::send(at, "POST", token, &headers, Some(&body)).await };
    not_found(
        &post(raw::tool_call(5, "echo", json!({"x": 1}))).await,
        &format!("{what}: tools/call"),
    );
    not_found(
        &post(json!({"jsonrpc": "2.0", "method": "notifications/cancelled", "params": {"requestId": 0}}))
            .await,
        &format!("{what}: a notification"),
    );
    for request in 0..3 {
        let answer = json!({
            "jsonrpc": "2.0",
            "id": request,
            "result": { "action": "accept", "content": { "decision": "allow_once" } },
        });
        not_found(&post(answer).await, &format!("{what}: an answer"));
    }
    not_found(
        &raw::send(at, "GET", token, &headers, None).await,
        &format!("{what}: the event stream"),
    );
    not_found(
        &raw::send(at, "DELETE", token, &headers, None).await,
        &format!("{what}: DELETE"),
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_agents_session_is_not_found_by_any_method() {
    let fixture = Fixture::new("approval_wait = \"100ms\"\n");
    let server = Server::http(&fixture).await;
    let at = address(&server);
    let alice_token = server.add_agent("alice");
    let alice = server.connect(&alice_token, Recorder::new()).await;
    // A held call records the session it was asked in.
    let (_, session) = held(&server, &alice, "").await;

    let bob = server.add_agent("bob");
    every_method_in(at, &bob, &session, "bob in alice's session").await;
    every_method_in(at, &bob, "made-up-session", "bob in a made-up session").await;
    every_method_in(
        at,
        &alice_token,
        "made-up-session",
        "alice in a made-up one",
    )
    .await;

    // Alice's session is untouched.
    let echoed = alice
        .peer()
        .call_tool(call("echo", json!({ "still": "mine" })))
        .await
        .expect("alice's session works");
    assert_eq!(echoed.structured_content, Some(json!({ "still": "mine" })));
    // She may end it; then it is not found for her either.
    let deleted = raw::send(at, "DELETE", &alice_token, &raw::in_session(&session), None).await;
    assert_eq!(deleted.status, 202, "{deleted:?}");
    every_method_in(at, &alice_token, &session, "alice's ended session").await;
    alice.cancel().await.expect("close");
    server.stop_and_journal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn only_the_sessions_own_client_hears_and_answers_its_question() {
    let upstream = fixture::upstream().await;
    let port = upstream.addr().port();
    let fixture = Fixture::with_upstream("approvals = \"client\"\napproval_wait = \"2m\"\n", port);
    let server = Server::http(&fixture).await;
    let at = address(&server);
    let release = Arc::new(tokio::sync::Notify::new());
    let answering = Recorder::answering(
        ProtocolVersion::V_2025_11_25,
        ElicitationAction::Accept,
        Some(json!({ "decision": "allow_once" })),
    )
    .holding(Arc::clone(&release));
    let alice = server.client_as("alice", answering).await;
    let asking = tokio::spawn({
        let peer = alice.peer().clone();
        let url = format!("http://svc.test:{port}/alice");
        async move { peer.call_tool(call("fetch", json!({ "url": url }))).await }
    });
    // Alice's human is looking at the question and has not answered.
    alice.service().next_question().await;
    let session = newest_session(&server);

    let bob = server.add_agent("bob");
    every_method_in(at, &bob, &session, "bob answering alice's question").await;
    let pending = approvals(&server, false);
    assert_eq!(pending.len(), 1, "still undecided: {pending:?}");
    assert!(upstream.requests().is_empty(), "nothing ran");

    release.notify_one();
    let result = asking.await.expect("task").expect("tools/call");
    assert_eq!(result.is_error, Some(false), "{}", text(&result));
    assert_eq!(alice.service().questions().len(), 1, "asked once");
    alice.cancel().await.expect("close");
    let journal = server.stop_and_journal();
    let decided: Vec<&Value> = journal
        .iter()
        .filter(|e| e["kind"] == "approval_decided")
        .collect();
    assert_eq!(decided.len(), 1, "{decided:?}");
    let by = decided[0]["payload"]["decided_by"]
        .as_str()
        .unwrap_or_default();
    assert!(by.starts_with("mcp-client:Agent::\"alice\" via "), "{by}");
    assert_eq!(upstream.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_less_request_is_in_no_session_whatever_it_names() {
    let fixture = Fixture::new("approval_wait = \"100ms\"\n");
    let server = Server::http(&fixture).await;
    let at = address(&server);
    let token = server.add_agent("alice");
    let alice = server.connect(&token, Recorder::new()).await;
    // Allowed for the session: then any input in it runs without asking
    // (and finds nothing listening on port 9).
    let (id, session) = allowed_for_the_session(&server, &alice, "a").await;
    let covered = call_tool(
        alice.peer(),
        "fetch",
        json!({ "url": "http://svc.test:9/b" }),
    )
    .await;
    assert!(
        !text(&covered).starts_with("approval_"),
        "{}",
        text(&covered)
    );

    // A session-less call naming that live session is not in it.
    let stateless = raw::stateless_call(
        at,
        &token,
        Some(&session),
        "fetch",
        json!({ "url": "http://svc.test:9/c" }),
    )
    .await;
    assert_eq!(stateless.status, 200, "{stateless:?}");
    assert!(
        stateless.call_text().starts_with("approval_pending: "),
        "{}",
        stateless.call_text()
    );

    // Ended (alice deletes it): the approval is spent, and the id, on a
    // session-less call, is not found; nor is a made-up one.
    let deleted = raw::send(at, "DELETE", &token, &raw::in_session(&session), None).await;
    assert_eq!(deleted.status, 202, "{deleted:?}");
    alice.cancel().await.expect("close");
    let ended = approvals(&server, true)
        .into_iter()
        .find(|a| a["id"] == id.as_str())
        .expect("kept");
    assert_eq!(ended["used"], true, "{ended}");
    for named in [session.as_str(), "made-up-session"] {
        let refused = raw::stateless_call(
            at,
            &token,
            Some(named),
            "fetch",
            json!({ "url": "http://svc.test:9/d" }),
        )
        .await;
        not_found(&refused, named);
    }
    let journal = server.stop_and_journal();
    assert!(
        journal
            .iter()
            .any(|e| e["payload"]["event"] == "session_ended"
                && e["payload"]["approvals"]
                    .as_array()
                    .is_some_and(|ids| ids.iter().any(|i| i == id.as_str()))),
        "the end of its approvals is journaled"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_idle_session_ends_and_its_approvals_with_it() {
    let fixture = Fixture::new("approval_wait = \"100ms\"\nsession_idle = \"2s\"\n");
    let server = Server::http(&fixture).await;
    let at = address(&server);
    let token = server.add_agent("alice");
    let opened = raw::open(at, &token).await;
    let session = opened.header("mcp-session-id").expect("a session");
    let headers = raw::in_session(&session);
    let initialized = json!({"jsonrpc": "2.0", "method": "notifications/initialized"});
    raw::send(at, "POST", &token, &headers, Some(&initialized)).await;
    let held = raw::send(
        at,
        "POST",
        &token,
        &headers,
        Some(&raw::tool_call(
            2,
            "fetch",
            json!({ "url": "http://svc.test:9/" }),
        )),
    )
    .await;
    assert!(
        held.call_text().starts_with("approval_pending: "),
        "{held:?}"
    );
    let id = server.pending_approval_id();
    let decided = server.airlock(&["approvals", "decide", &id, "--allow", "session"]);
    assert!(decided.status.success(), "{}", fixture::printed(&decided));

    // Nobody uses the session: it ends on its own, and its approval with
    // it (waited for, not timed: the server decides when).
    let started = std::time::Instant::now();
    loop {
        let approval = approvals(&server, true)
            .into_iter()
            .find(|a| a["id"] == id.as_str())
            .expect("kept");
        if approval["used"] == true {
            break;
        }
        assert!(
            started.elapsed() < super::PATIENCE,
            "still open: {approval}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    }
    let after = raw::send(
        at,
        "POST",
        &token,
        &headers,
        Some(&raw::tool_call(3, "echo", json!({}))),
    )
    .await;
    not_found(&after, "an expired session");
    server.stop_and_journal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_ends_every_session_and_its_approvals() {
    let fixture = Fixture::new("approval_wait = \"100ms\"\n");
    let server = Server::http(&fixture).await;
    let token = server.add_agent("alice");
    let alice = server.connect(&token, Recorder::new()).await;
    let (_, session) = allowed_for_the_session(&server, &alice, "").await;

    // The server stops with the session open.
    let journal = server.stop_and_journal();
    assert!(
        journal
            .iter()
            .any(|e| e["payload"]["event"] == "session_ended"
                && e["payload"]["session_id"] == session.as_str()),
        "the open session's approvals ended at the stop"
    );
    let out = fixture::airlock_for(&fixture, &["approvals", "list", "--all", "--json"])
        .output()
        .expect("airlock approvals list");
    let listed: Vec<Value> = serde_json::from_slice(&out.stdout).expect("JSON");
    assert_eq!(listed[0]["used"], true, "{listed:?}");

    // After the restart nothing can name it.
    let server = Server::http(&fixture).await;
    let at = address(&server);
    let stateless = raw::stateless_call(
        at,
        &token,
        Some(&session),
        "fetch",
        json!({ "url": "http://svc.test:9/" }),
    )
    .await;
    not_found(&stateless, "a session-less call naming it");
    every_method_in(at, &token, &session, "the session of the last run").await;
    drop(alice);
    server.stop_and_journal();
}
