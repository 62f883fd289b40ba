//! `approvals = "client"`: a call's pending approval is put to the human at
//! the MCP client through elicitation, on both protocol generations (an
//! elicitation request on a 2025-11-25 session; `input_required` and a
//! sealed `requestState` on 2026-07-28), recorded as `mcp-client`, and
//! only ever for the call that asked.

use super::fixture::{self, Fixture, Recorder, Server};
use super::{call, text};
use rmcp::model::{CallToolResponse, ElicitationAction, ProtocolVersion};
use serde_json::{Value, json};

const CLIENT: &str = "approvals = \"client\"\n";

/// The human's "allow once".
fn allow_once() -> Option<Value> {
    Some(json!({ "decision": "allow_once" }))
}

/// One `fetch` of `url` by a new agent `agent` whose client answers as
/// `recorder` does (the high-level call drives 2026-07-28's
/// `input_required` rounds): the result and the questions it was asked.
async fn fetch_as(
    server: &Server<'_>,
    agent: &str,
    recorder: Recorder,
    url: &str,
) -> (rmcp::model::CallToolResult, Vec<String>) {
    let client = server.client_as(agent, recorder).await;
    let result = client
        .call_tool(call("fetch", json!({ "url": url })))
        .await
        .expect("tools/call");
    let questions = client.service().questions();
    client.cancel().await.expect("close");
    (result, questions)
}

/// The `approval_decided` entries of a journal.
fn decisions(journal: &[Value]) -> Vec<&Value> {
    journal
        .iter()
        .filter(|e| e["kind"] == "approval_decided")
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_human_at_the_client_allows_a_call_on_either_protocol_generation() {
    let upstream = fixture::upstream().await;
    let port = upstream.addr().port();
    let fixture = Fixture::with_upstream(CLIENT, port);
    let server = Server::http(&fixture).await;
    let url = format!("http://svc.test:{port}/report");
    for (agent, protocol) in [
        ("legacy", ProtocolVersion::V_2025_11_25),
        ("stateless", ProtocolVersion::V_2026_07_28),
    ] {
        let answering = Recorder::answering(protocol, ElicitationAction::Accept, allow_once());
        let (result, questions) = fetch_as(&server, agent, answering, &url).await;
        assert_eq!(result.is_error, Some(false), "{agent}: {}", text(&result));
        assert_eq!(questions.len(), 1, "{agent}: asked once: {questions:?}");
        assert!(
            questions[0].contains("`fetch`")
                && questions[0].contains(&format!("Agent::\"{agent}\"")),
            "{agent}: the question names the tool and the caller: {}",
            questions[0]
        );
    }
    assert_eq!(upstream.requests().len(), 2, "each allowed call ran once");

    let journal = server.stop_and_journal();
    let decided = decisions(&journal);
    assert_eq!(decided.len(), 2, "{decided:?}");
    for (entry, agent) in decided.iter().zip(["legacy", "stateless"]) {
        let by = entry["payload"]["decided_by"].as_str().unwrap_or_default();
        assert!(
            by.starts_with(&format!("mcp-client:Agent::\"{agent}\" via ")),
            "recorded as the client, with its identity: {by}"
        );
        assert_eq!(entry["payload"]["decision"], "allowed");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_human_who_declines_denies_the_call_and_nothing_leaves() {
    let upstream = fixture::upstream().await;
    let port = upstream.addr().port();
    let fixture = Fixture::with_upstream(CLIENT, port);
    let server = Server::http(&fixture).await;
    let url = format!("http://svc.test:{port}/");
    for (agent, protocol, action, content) in [
        (
            "legacy",
            ProtocolVersion::V_2025_11_25,
            ElicitationAction::Decline,
            None,
        ),
        (
            "stateless",
            ProtocolVersion::V_2026_07_28,
            ElicitationAction::Accept,
            Some(json!({ "decision": "deny" })),
        ),
    ] {
        let answering = Recorder::answering(protocol, action, content);
        let (result, _) = fetch_as(&server, agent, answering, &url).await;
        assert_eq!(result.is_error, Some(true), "{agent}");
        assert!(
            text(&result).starts_with("approval_denied: "),
            "{agent}: {}",
            text(&result)
        );
    }
    assert!(
        upstream.requests().is_empty(),
        "a denied call sends nothing"
    );
    server.stop_and_journal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_the_setting_the_client_is_never_asked() {
    let fixture = Fixture::new("approval_wait = \"200ms\"\n");
    let server = Server::http(&fixture).await;
    for (agent, protocol) in [
        ("legacy", ProtocolVersion::V_2025_11_25),
        ("stateless", ProtocolVersion::V_2026_07_28),
    ] {
        let answering = Recorder::answering(protocol, ElicitationAction::Accept, allow_once());
        let (result, questions) = fetch_as(&server, agent, answering, "http://svc.test:9/").await;
        assert!(
            text(&result).starts_with("approval_pending: "),
            "{}",
            text(&result)
        );
        assert!(questions.is_empty(), "{agent}: {questions:?}");
    }
    let journal = server.stop_and_journal();
    assert!(decisions(&journal).is_empty(), "nobody decided");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_state_answers_only_the_call_it_was_issued_for() {
    let fixture = Fixture::new(&format!("{CLIENT}approval_wait = \"200ms\"\n"));
    let server = Server::http(&fixture).await;
    let answering = Recorder::answering(
        ProtocolVersion::V_2026_07_28,
        ElicitationAction::Accept,
        allow_once(),
    );
    let client = server.client_as("mallory", answering).await;
    let asked = call("fetch", json!({ "url": "http://svc.test:9/a" }));
    let first = client
        .peer()
        .call_tool_once(asked.clone())
        .await
        .expect("tools/call");
    let CallToolResponse::InputRequired(question) = first else {
        panic!("a network call asks the human first: {first:?}");
    };
    let state = question.request_state.expect("a request state");
    let id = server.pending_approval_id();
    let allow = std::collections::BTreeMap::from([(
        "airlock.approval".to_string(),
        json!({ "action": "accept", "content": { "decision": "allow_once" } }),
    )]);

    // The state with other arguments, for another tool, presented by
    // another agent with the very arguments, and a forged state: none
    // decides.
    let other = call("fetch", json!({ "url": "http://svc.test:9/b" }));
    let other_tool = call("echo", json!({ "url": "http://svc.test:9/a" }));
    let mut forged = state.clone();
    forged.replace_range(forged.len() - 4.., "AAAA");
    let bob = server
        .client_as(
            "bob",
            Recorder::answering(
                ProtocolVersion::V_2026_07_28,
                ElicitationAction::Accept,
                allow_once(),
            ),
        )
        .await;
    for (presenter, params, state) in [
        (&client, other, state.clone()),
        (&client, other_tool, state.clone()),
        (&bob, asked.clone(), state.clone()),
        (&client, asked.clone(), forged),
    ] {
        let answered = presenter
            .peer()
            .call_tool_once(
                params
                    .with_input_responses(allow.clone())
                    .with_request_state(state),
            )
            .await
            .expect("tools/call");
        let CallToolResponse::Complete(_) = answered else {
            panic!("a retry is never asked again");
        };
        let listed = server.airlock(&["approvals", "list", "--json"]);
        let pending: Value = serde_json::from_slice(&listed.stdout).expect("JSON");
        assert!(
            pending
                .as_array()
                .is_some_and(|list| list.iter().any(|a| a["id"] == id.as_str())),
            "{id} is still pending: {pending}"
        );
    }
    bob.cancel().await.expect("close");

    // The real state with the real call decides it.
    let answered = client
        .peer()
        .call_tool_once(asked.with_input_responses(allow).with_request_state(state))
        .await
        .expect("tools/call");
    let CallToolResponse::Complete(result) = answered else {
        panic!("the retry completes");
    };
    // Allowed: the tool ran (and found nothing listening on port 9).
    assert!(!text(&result).starts_with("approval_"), "{}", text(&result));
    client.cancel().await.expect("close");
    let journal = server.stop_and_journal();
    let decided = decisions(&journal);
    assert_eq!(decided.len(), 1, "{decided:?}");
    assert_eq!(decided[0]["payload"]["id"], id);
    assert!(
        decided[0]["payload"]["decided_by"]
            .as_str()
            .is_some_and(|by| by.starts_with("mcp-client:Agent::\"mallory\"")),
        "{decided:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_can_keep_a_decision_for_operators() {
    let fixture = Fixture::new(&format!("{CLIENT}approval_wait = \"300ms\"\n"));
    let policies = fixture::policies_with(
        "network-for-operators.cedar",
        "@id(\"network-for-operators\")\n\
         forbid (principal, action == Airlock::Action::\"approval.decide\", resource)\n\
         when { context.channel == \"mcp-client\" && resource.capabilities.contains(\"network\") };\n",
    );
    let server = Server::with_policies(&fixture, policies.path()).await;
    let answering = Recorder::answering(
        ProtocolVersion::V_2025_11_25,
        ElicitationAction::Accept,
        allow_once(),
    );
    let (result, questions) = fetch_as(&server, "claude", answering, "http://svc.test:9/").await;
    assert_eq!(questions.len(), 1, "the human was asked");
    assert!(
        text(&result).starts_with("approval_pending: "),
        "but their answer did not count: {}",
        text(&result)
    );
    // An operator still decides it.
    let id = server.pending_approval_id();
    let decided = server.airlock(&["approvals", "decide", &id, "--deny", "no"]);
    assert!(decided.status.success(), "{}", fixture::printed(&decided));
    let journal = server.stop_and_journal();
    let decided = decisions(&journal);
    assert_eq!(decided.len(), 1);
    assert!(
        decided[0]["payload"]["decided_by"]
            .as_str()
            .is_some_and(|by| by.starts_with("operator:")),
        "{decided:?}"
    );
}
