//! The server survives load and hostile tools: 1,000 calls from 50
//! concurrent MCP clients, one call in ten to a hostile tool (spin-forever,
//! memory-bomb, huge-output). Every hostile call ends with its own reason
//! code, every honest call succeeds, and the server's memory comes back to
//! where it was after a warm-up round.

use super::call_tool;
use super::fixture::{Fixture, Server};
use serde_json::{Value, json};

const CLIENTS: usize = 50;
const CALLS_PER_CLIENT: usize = 20;
/// Calls the server runs at once (`[serve] max_concurrent`).
const MAX_CONCURRENT: u64 = 16;

/// How much more resident memory the load may leave behind than the warm
/// baseline held. The load's calls end with it and the journal's entries
/// are on disk; what may stay is what the server keeps for reuse:
/// - the instance pool: per linear-memory slot it used, up to 1 MiB of
///   written pages (`KEEP_RESIDENT_MEMORY` in runtime/engine.rs); per
///   instance slot, its stack and each table, up to 64 KiB each
///   (`KEEP_RESIDENT`; these guests have one memory and two tables). The
///   pool has `max_concurrent` plus one loading slot per core
///   (`instance_slots`), and twice as many memory slots (`total_memories`):
///   the load may have warmed every one;
/// - SQLite's page cache for the store's connection: 2 MiB (its default);
/// - the sessions, if the server keeps them until they idle out: the 50
///   clients' and the warm-up's, at most 64 KiB each (issue 26 measured
///   ~45 KiB: 15,000 sessions grew a server by ~650 MB).
///
/// On two cores that is 36 + 3.4 + 2 + 3.2 ≈ 45 MiB: a load that leaked
/// 45 KiB per call, or three of memory-bomb's 16 MiB memories, fails.
fn allowed_growth() -> u64 {
    const MIB: u64 = 1 << 20;
    const KEPT: u64 = 64 << 10;
    const TABLES: u64 = 2;
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u64);
    let slots = MAX_CONCURRENT + cores;
    let pool = 2 * slots * MIB + slots * (1 + TABLES) * KEPT;
    let sessions = (CLIENTS as u64 + 1) * KEPT;
    pool + 2 * MIB + sessions
}

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
        let result = call_tool(session.peer(), tool, arguments.clone()).await;
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
    let fixture = Fixture::new(&format!(
        "max_concurrent = {MAX_CONCURRENT}\nmax_concurrent_per_tool = {MAX_CONCURRENT}\n\
         queue_wait = \"5m\"\n"
    ));
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
    let allowed = allowed_growth();
    eprintln!(
        "resident memory: {} MiB warm, {} MiB after the load (at most {} MiB more allowed)",
        baseline >> 20,
        after >> 20,
        allowed >> 20
    );
    assert!(
        after <= baseline + allowed,
        "resident memory grew from {} MiB to {} MiB, more than the {} MiB the server may keep \
         for reuse",
        baseline >> 20,
        after >> 20,
        allowed >> 20
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
    use airlock_serve::{AskClient, Call, Server as Library, Sources};
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
            locked: false,
        },
    )
    .await
    .expect("serving");
    let mut call = Box::pin(server.call(Call {
        principal: airlock::policy::Principal::agent("embedder"),
        session_id: String::new(),
        request_id: "dropped".into(),
        channel: airlock::policy::Channel::named("embedded"),
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

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_server_whose_state_directory_is_removed_stops_and_says_why() {
    let fixture = Fixture::new("");
    let mut server = Server::http(&fixture).await;
    let client = server.client("claude").await;
    let answered = call_tool(client.peer(), "echo", json!({"before": true})).await;
    assert_eq!(answered.is_error, Some(false));
    std::fs::remove_dir_all(fixture.state()).expect("remove the state directory");
    let status = server.exit_status();
    assert_eq!(status.code(), Some(2), "{}", server.log());
    let log = server.log();
    assert!(log.contains("state_dir_gone"), "{log}");
    assert!(log.contains("was removed while the server ran"), "{log}");
}
