//! The server survives load and hostile tools: 1,000 calls from 50
//! concurrent MCP clients, one call in ten to a hostile tool (spin-forever,
//! memory-bomb, huge-output). Every hostile call ends with its own reason
//! code, every honest call succeeds, and the server's memory comes back to
//! where it was after a warm-up round.

use super::call;
use super::fixture::{Fixture, Server};
use serde_json::{Value, json};

const CLIENTS: usize = 50;
const CALLS_PER_CLIENT: usize = 20;

/// The hostile tools, their input and the reason code each must end with.
const HOSTILE: [(&str, &str); 3] = [
    ("spinner", "deadline_exceeded"),
    ("bomb", "memory_limit"),
    ("flood", "output_too_large"),
];

fn config() -> String {
    let tool = |name: &str, guest: &str, limits: &str| {
        format!(
            "[[tools]]\nname = \"{name}\"\ncomponent = {:?}\nlimits = {{ {limits} }}\n",
            airlock_tests::guest_path(guest)
        )
    };
    [
        tool("spinner", "spin-forever", "timeout = \"300ms\""),
        tool("bomb", "memory-bomb", "memory = \"16MiB\""),
        tool("flood", "huge-output", "output = \"4KiB\""),
    ]
    .concat()
}

/// Resident memory of process `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("the server's /proc status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
        .expect("VmRSS")
        * 1024
}

/// One client's calls: `hostile` of them (every tenth) to a hostile tool.
async fn client_round(server: &Server<'_>, client: usize, calls: usize) -> Vec<(String, String)> {
    let session = server.client(&format!("agent-{client}")).await;
    let mut seen = Vec::with_capacity(calls);
    for n in 0..calls {
        let (tool, arguments) = if n % 10 == 9 {
            let (tool, _) = HOSTILE[(client + n / 10) % HOSTILE.len()];
            (tool, json!({"bytes": 1 << 20}))
        } else {
            ("echo", json!({"client": client, "n": n}))
        };
        let result = session
            .peer()
            .call_tool(call(tool, arguments.clone()))
            .await
            .expect("tools/call");
        let code = if result.is_error == Some(true) {
            result
                .structured_content
                .as_ref()
                .and_then(|s| s["error"]["code"].as_str())
                .unwrap_or("?")
                .to_string()
        } else {
            assert_eq!(
                result.structured_content,
                Some(arguments),
                "honest output intact"
            );
            "ok".to_string()
        };
        seen.push((tool.to_string(), code));
    }
    session.cancel().await.expect("close");
    seen
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_thousand_calls_with_hostile_tools_leave_the_server_as_it_was() {
    let fixture =
        Fixture::new("max_concurrent = 16\nmax_concurrent_per_tool = 16\nqueue_wait = \"5m\"\n");
    fixture.write_config(&config());
    let server = Server::http(&fixture).await;

    // Warm-up: every tool once, so pools and caches exist before measuring.
    let warm = client_round(&server, 1000, 30).await;
    assert!(
        warm.iter()
            .all(|(tool, code)| tool != "echo" || code == "ok")
    );
    let baseline = rss(server.pid());

    let rounds = (0..CLIENTS).map(|client| client_round(&server, client, CALLS_PER_CLIENT));
    let results: Vec<(String, String)> = futures::future::join_all(rounds)
        .await
        .into_iter()
        .flatten()
        .collect();
    assert_eq!(results.len(), CLIENTS * CALLS_PER_CLIENT);
    let mut hostile = 0;
    for (tool, code) in &results {
        match HOSTILE.iter().find(|(name, _)| name == tool) {
            Some((_, expected)) => {
                hostile += 1;
                assert_eq!(code, expected, "{tool}");
            }
            None => assert_eq!(code, "ok", "an honest call failed"),
        }
    }
    assert_eq!(hostile, CLIENTS * CALLS_PER_CLIENT / 10);

    let after = rss(server.pid());
    // Back to the baseline, give or take what one busy moment keeps in the
    // allocator (memory-bomb alone touched 16 MiB in each of 16 slots).
    assert!(
        after <= baseline + (48 << 20),
        "resident memory grew from {} MiB to {} MiB",
        baseline >> 20,
        after >> 20
    );
    let journal = server.stop_and_journal();
    let runs = journal.iter().filter(|e| e["kind"] == "invocation").count();
    assert_eq!(
        runs,
        30 + CLIENTS * CALLS_PER_CLIENT,
        "every call is journaled"
    );
    let verified = journal
        .iter()
        .filter(|e| e["kind"] == "invocation")
        .all(|e| e["payload"]["attestation"]["principal"] != Value::Null);
    assert!(verified);
}

/// An embedder that drops a call's future mid-run (a task aborted, a
/// timeout around it): the invocation is cancelled, still ends on the
/// runtime, and is journaled as cancelled; its slot comes back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_dropped_call_still_ends_and_is_journaled() {
    use airlock::serve::{AskClient, Call, Server as Library, Sources};
    let fixture = Fixture::new("");
    let host = airlock::Host::builder()
        .state_dir(fixture.state())
        .build()
        .expect("host");
    let server = Library::start(
        host,
        Sources {
            config: fixture.config(),
            policies: None,
            state_dir: fixture.state(),
        },
    )
    .await
    .expect("serving");
    let mut call = Box::pin(server.call(Call {
        principal: airlock::policy::Principal::agent("embedder"),
        session_id: String::new(),
        request_id: "dropped".into(),
        channel: "embedded",
        tool: "spin".into(),
        arguments: serde_json::Map::new(),
        cancel: tokio_util::sync::CancellationToken::new(),
        progress: None,
        ask: AskClient::No,
    }));
    // Drive the call until its invocation holds a slot, then drop it.
    while server.running() == 0 {
        tokio::select! {
            biased;
            answered = &mut call => panic!("spin ended: {:?}", answered.map(|a| a.code())),
            () = tokio::task::yield_now() => {}
        }
    }
    drop(call);
    while server.running() > 0 {
        tokio::task::yield_now().await;
    }
    server.shutdown().await.expect("stopped");
    let journal = super::fixture::journal(&fixture);
    let spun = journal
        .iter()
        .find(|e| e["kind"] == "invocation" && e["payload"]["attestation"]["tool"] == "spin")
        .expect("the dropped call is journaled");
    assert_eq!(spun["payload"]["attestation"]["outcome"], "cancelled");
    assert_eq!(
        spun["payload"]["attestation"]["principal"],
        "Agent::\"embedder\""
    );
}
