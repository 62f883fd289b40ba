//! What an approval binds, and what a person sees before giving it, as an
//! attacker would probe it: a tool reloaded with a wider limit asks again;
//! an input too long for the client's question is shown there only by its
//! beginning and SHA-256, never offered for "allow", and whole to the
//! operators (`approvals show`, the console). (A `requestState` presented
//! by another agent or for another tool: `client_approvals.rs`.)

use super::browser::Browser;
use super::console::{console, console_server, enter_code, pairing_code};
use super::fixture::{self, Fixture, Recorder, Server};
use super::sessions::{approvals, held};
use super::{call, text};
use rmcp::model::{ElicitationAction, ProtocolVersion};
use serde_json::json;

/// A `report` tool (the http-get guest) granted `svc.test:PORT`, with
/// `limits`.
fn report_tool(port: u16, limits: &str) -> String {
    format!(
        "[[tools]]\nname = \"report\"\ncomponent = {:?}\nlimits = {{ {limits} }}\n\
         [[tools.network.allow]]\nhost = \"svc.test\"\nschemes = [\"http\"]\nports = [{port}]\nprivate = true\n",
        airlock_tests::guest_path("http-get")
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_widened_component_limit_asks_again() {
    let upstream = fixture::upstream().await;
    let port = upstream.addr().port();
    let fixture = Fixture::with_upstream("approval_wait = \"100ms\"\n", port);
    fixture.write_config(&report_tool(port, "timeout = \"5s\""));
    let server = Server::http(&fixture).await;
    let alice = server.client("alice").await;
    let report = || {
        call(
            "report",
            json!({ "url": format!("http://svc.test:{port}/weekly") }),
        )
    };

    let held = alice.peer().call_tool(report()).await.expect("tools/call");
    assert!(
        text(&held).starts_with("approval_pending: "),
        "{}",
        text(&held)
    );
    let first = server.pending_approval_id();
    let shown = server.airlock(&["approvals", "show", &first]);
    assert!(
        String::from_utf8_lossy(&shown.stdout).contains("timeout 5s"),
        "the approver sees the limits: {}",
        fixture::printed(&shown)
    );
    let decided = server.airlock(&["approvals", "decide", &first, "--allow", "until=1h"]);
    assert!(decided.status.success(), "{}", fixture::printed(&decided));
    let ran = alice.peer().call_tool(report()).await.expect("tools/call");
    assert_eq!(ran.is_error, Some(false), "{}", text(&ran));

    // The operator's file now gives the same tool ten minutes.
    fixture.write_config(&report_tool(port, "timeout = \"600s\""));
    let reloaded = server.airlock(&["reload"]);
    assert!(reloaded.status.success(), "{}", fixture::printed(&reloaded));
    let again = alice.peer().call_tool(report()).await.expect("tools/call");
    assert!(
        text(&again).starts_with("approval_pending: "),
        "the old approval does not cover a wider limit: {}",
        text(&again)
    );
    let second = server.pending_approval_id();
    assert_ne!(second, first, "a new approval is asked");
    assert_eq!(
        upstream.requests().len(),
        1,
        "only the approved run went out"
    );
    alice.cancel().await.expect("close");
    server.stop_and_journal();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_input_is_never_offered_for_allow_and_operators_see_it_whole() {
    let fixture = Fixture::new("approvals = \"client\"\napproval_wait = \"5s\"\n");
    let server = console_server(&fixture).await;
    // A client that answers "allow once" to whatever it is asked.
    let careless = Recorder::answering(
        ProtocolVersion::V_2025_11_25,
        ElicitationAction::Accept,
        Some(json!({ "decision": "allow_once" })),
    );
    let alice = server.client_as("alice", careless).await;
    let tail = "&then=DELETE-ALL-RECORDS&confirm=yes";
    let path = format!(
        "reports/weekly-summary-readonly?pad={}{tail}",
        "a".repeat(3000)
    );
    let input = json!({ "url": format!("http://svc.test:9/{path}") }).to_string();
    let digest = airlock::approvals::input_sha256(&input);

    // Held for the operators: the answer that was not offered decided
    // nothing.
    let (id, _) = held(&server, &alice, &path).await;
    let (questions, offered) = (alice.service().questions(), alice.service().offered());
    assert_eq!(questions.len(), 1, "{questions:?}");
    assert!(
        questions[0].contains(&digest) && questions[0].contains("truncated"),
        "{}",
        questions[0]
    );
    assert!(!questions[0].contains(tail), "the cut is where it says");
    assert!(
        offered[0].contains("leave_to_operators") && offered[0].contains("deny"),
        "{}",
        offered[0]
    );
    assert!(!offered[0].contains("allow"), "no allow: {}", offered[0]);
    assert_eq!(approvals(&server, false)[0]["status"], "pending");

    // The operators see it whole, and its digest.
    let shown = server.airlock(&["approvals", "show", &id]);
    let printed = String::from_utf8_lossy(&shown.stdout);
    assert!(
        printed.contains(tail) && printed.contains(&digest),
        "{printed}"
    );
    let (console_url, pin) = console(&server);
    let browser = Browser::start(&pin).await;
    enter_code(
        &browser,
        &console_url,
        &pairing_code(&server, &[]),
        "laptop",
    )
    .await;
    let card = format!("#approval-{id}");
    browser.wait_for(&card).await;
    let on_page = browser.text(&card).await;
    assert!(
        on_page.contains(tail) && on_page.contains(&digest),
        "{on_page}"
    );
    assert!(
        browser
            .has(&format!("{card} button[value='allow_once']"))
            .await,
        "an operator who sees it whole may allow it"
    );
    browser.close().await;
    alice.cancel().await.expect("close");
    server.stop_and_journal();
}
