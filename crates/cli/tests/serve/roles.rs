//! Roles kept apart: the server runs as its own user and owns its state;
//! operators are who the configuration names, identified by the socket's
//! peer credentials; who may decide what is a Cedar question.

use super::fixture::{self, Fixture, Server, Start};
use super::users;
use super::{fetch_held_for_approval, text};
use serde_json::json;
use std::os::unix::fs::{MetadataExt, PermissionsExt};

/// The server runs as its own ordinary user (the serve tests' default);
/// the operator is another user, root, named `ops` by the configuration.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_server_runs_as_its_own_user_and_operators_decide_over_the_socket() {
    users::require_root("an operator who is not the server's user");
    let own = users::server_user().expect("the server's own user, as root");
    let upstream = fixture::upstream().await;
    let port = upstream.addr().port();
    let mut fixture = Fixture::with_public_socket("[[serve.operators]]\nname = \"ops\"\nuid = 0\n");
    fixture.set_upstream(port);
    // What systemd's StateDirectory= and RuntimeDirectory= would make: the
    // server user's own state and socket directories.
    std::fs::create_dir(fixture.state()).expect("state dir");
    let run = fixture.socket().parent().expect("run dir").to_path_buf();
    for dir in [fixture.state(), run] {
        std::os::unix::fs::chown(dir, Some(own.uid), Some(own.gid)).expect("chown");
    }
    let server = Server::start(
        &fixture,
        Start {
            operator_as: Some(0),
            ..Start::default()
        },
    )
    .await;
    assert_eq!(users::uid_of(server.pid()), own.uid);

    // The server's user owns its state, private whatever the umask.
    let state = std::fs::metadata(fixture.state()).expect("state");
    assert_eq!(state.uid(), own.uid);
    assert_eq!(state.permissions().mode() & 0o777, 0o700);
    let db = std::fs::metadata(fixture.state().join("airlock.db")).expect("db");
    assert_eq!(db.uid(), own.uid);
    assert_eq!(db.permissions().mode() & 0o777, 0o600);

    // The operator (root, `ops` by the config) registers the agent through
    // the socket; the agent calls over HTTP with its token.
    let client = server.client("claude").await;
    let url = format!("http://svc.test:{port}/");
    let (pending, _, id) = fetch_held_for_approval(&server, &client, json!({"url": url})).await;
    let decided = server.airlock(&["approvals", "decide", &id, "--allow", "once"]);
    assert!(decided.status.success(), "{}", fixture::printed(&decided));
    assert!(
        fixture::printed(&decided).contains("decided by operator:ops"),
        "{}",
        fixture::printed(&decided)
    );
    let result = pending.await.expect("task").expect("tools/call");
    assert_eq!(result.is_error, Some(false), "{}", text(&result));
    client.cancel().await.expect("close");

    // The operator verifies the running server's journal and takes its
    // latest signed head away.
    let verified = server.airlock(&["journal", "verify", "--json"]);
    assert!(verified.status.success(), "{}", fixture::printed(&verified));
    let verdict: serde_json::Value = serde_json::from_slice(&verified.stdout).expect("json");
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert!(verdict["heads"].as_u64() >= Some(1), "{verdict}");
    let head = server.airlock(&["journal", "head"]);
    assert!(head.status.success(), "{}", fixture::printed(&head));
    let head: serde_json::Value = serde_json::from_slice(&head.stdout).expect("json");
    assert!(head["size"].as_u64() >= Some(1), "{head}");

    let journal = server.stop_and_journal();
    let decision = journal
        .iter()
        .find(|e| e["kind"] == "approval_decided")
        .expect("journaled");
    assert_eq!(decision["payload"]["decided_by"], "operator:ops");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn policies_decide_which_operator_may_decide_what() {
    let upstream = fixture::upstream().await;
    let port = upstream.addr().port();
    let fixture = Fixture::with_upstream("", port);
    let policies = fixture::policies_with(
        "two-person.cedar",
        "@id(\"network-needs-security\")\n\
         forbid (principal, action == Airlock::Action::\"approval.decide\", resource)\n\
         when { resource.capabilities.contains(\"network\") && principal != Airlock::Operator::\"security\" };\n",
    );
    let server = Server::with_policies(&fixture, policies.path()).await;
    let client = server.client("claude").await;
    let url = format!("http://svc.test:{port}/");
    let (pending, _, id) = fetch_held_for_approval(&server, &client, json!({"url": url})).await;
    let refused = server.airlock(&["approvals", "decide", &id, "--allow", "once"]);
    fixture::assert_refused(&refused, 3, "network-needs-security");
    // Still pending: the refused decision changed nothing.
    assert_eq!(server.pending_approval_id(), id);
    pending.abort();
    client.cancel().await.expect("close");
    server.stop_and_journal();
}
