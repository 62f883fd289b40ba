//! Sessions are bounded: one agent opening sessions in a loop is refused
//! with 429 `session_limit` at its cap (journaled and logged at most once
//! a window, with the count between), the server's memory stays within
//! what the cap allows, and other agents' calls keep working throughout.

use super::call;
use super::fixture::{Fixture, Server};
use super::raw::{self, Reply};
use super::sessions::address;
use futures::StreamExt as _;
use serde_json::{Value, json};
use std::net::SocketAddr;

/// Asserts `reply` is a 429 refusal by `cap` at `limit`.
#[track_caller]
fn refused_by(reply: &Reply, cap: &str, limit: u64) {
    assert_eq!(reply.status, 429, "{reply:?}");
    let body: Value = serde_json::from_str(&reply.body).expect("a JSON error");
    assert_eq!(body["error"]["code"], "session_limit", "{body}");
    assert_eq!(body["error"]["cap"], cap, "{body}");
    assert_eq!(body["error"]["limit"], limit, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains(cap) && m.contains("DELETE")),
        "says what to do: {body}"
    );
}

/// The `session_refused` journal entries of `principal` by `cap`.
fn refusals<'j>(journal: &'j [Value], principal: &str, cap: &str) -> Vec<&'j Value> {
    journal
        .iter()
        .filter(|e| {
            e["payload"]["event"] == "session_refused"
                && e["payload"]["principal"] == principal
                && e["payload"]["cap"] == cap
        })
        .collect()
}

/// How many refusals `entries` account for (each says how many).
fn accounted(entries: &[&Value]) -> u64 {
    entries
        .iter()
        .map(|e| e["payload"]["refused"].as_u64().expect("a count"))
        .sum()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn caps_refuse_sessions_with_a_reason_journaled_once_a_window() {
    let fixture = Fixture::new("max_sessions_per_agent = 2\nmax_sessions = 3\n");
    let server = Server::http(&fixture).await;
    let at = address(&server);
    let (alice, bob, carol) = (
        server.add_agent("alice"),
        server.add_agent("bob"),
        server.add_agent("carol"),
    );
    let mut alices = Vec::new();
    for _ in 0..2 {
        let opened = raw::open(at, &alice).await;
        assert_eq!(opened.status, 200, "{opened:?}");
        alices.push(opened.header("mcp-session-id").expect("a session"));
    }
    const AGAIN: u64 = 25;
    for _ in 0..AGAIN {
        refused_by(&raw::open(at, &alice).await, "max_sessions_per_agent", 2);
    }
    // Bob has room of his own, up to the server's total; then Carol has
    // none.
    assert_eq!(raw::open(at, &bob).await.status, 200);
    refused_by(&raw::open(at, &carol).await, "max_sessions", 3);

    // A session ended makes room again.
    let deleted = raw::send(at, "DELETE", &alice, &raw::in_session(&alices[0]), None).await;
    assert_eq!(deleted.status, 202, "{deleted:?}");
    assert_eq!(raw::open(at, &alice).await.status, 200);

    // The server's stderr is read on a thread of its own: wait (bounded)
    // until both agents' first refusals are in.
    let started = std::time::Instant::now();
    let log = loop {
        let log = server.log();
        let carol = log
            .lines()
            .any(|line| line.contains("refused an MCP session") && line.contains("carol"));
        if carol || started.elapsed() > super::PATIENCE {
            break log;
        }
        // A poll interval, not a timing assumption.
        std::thread::sleep(std::time::Duration::from_millis(20));
    };
    let journal = server.stop_and_journal();
    let alice_refused = refusals(&journal, "Agent::\"alice\"", "max_sessions_per_agent");
    assert!(!alice_refused.is_empty(), "journaled");
    assert_eq!(
        accounted(&alice_refused),
        AGAIN,
        "every refusal accounted for"
    );
    let carol_refused = refusals(&journal, "Agent::\"carol\"", "max_sessions");
    assert_eq!(accounted(&carol_refused), 1);
    assert_eq!(carol_refused[0]["payload"]["code"], "session_limit");
    // Logged: the first of each agent and cap, not one line a refusal
    // (the rest are counted into the next line, or the one at shutdown).
    let logged = log
        .lines()
        .filter(|line| line.contains("refused an MCP session"))
        .count();
    assert!(
        (2..AGAIN as usize).contains(&logged),
        "{logged} lines for {} refusals: {log}",
        AGAIN + 1
    );
}

/// Resident memory of process `pid`, in KiB (VmRSS).
fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .expect("the server's /proc status")
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// `n` session-opening requests of `token`, `AT_ONCE` in flight: how many
/// were opened and how many refused.
async fn flood(at: SocketAddr, token: &str, n: usize) -> (usize, usize) {
    const AT_ONCE: usize = 32;
    futures::stream::iter(0..n)
        .map(|_| raw::open(at, token))
        .buffer_unordered(AT_ONCE)
        .fold((0, 0), |(opened, refused), reply| async move {
            match reply.status {
                200 => (opened + 1, refused),
                429 => (opened, refused + 1),
                other => panic!("neither opened nor refused: {other} {reply:?}"),
            }
        })
        .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_sessions_stays_within_the_cap_while_others_work() {
    const REQUESTS: usize = 20_000;
    const ROUNDS: usize = 20;
    // The defaults: the cap this test holds the server to.
    let cap = airlock_serve::DEFAULT_MAX_SESSIONS_PER_AGENT;
    let fixture = Fixture::new("");
    let server = Server::http(&fixture).await;
    let at = address(&server);
    let alice = server.client("alice").await;
    let honest = |n: usize| {
        let peer = alice.peer().clone();
        async move {
            let arguments = json!({ "n": n });
            let result = peer
                .call_tool(call("echo", arguments.clone()))
                .await
                .expect("alice's call");
            assert_eq!(result.structured_content, Some(arguments), "call {n}");
        }
    };
    honest(0).await;
    let mallory = server.add_agent("mallory");
    let baseline = rss_kib(server.pid());

    let (mut opened, mut refused) = (0, 0);
    for round in 0..ROUNDS {
        // Alice calls while each round of the flood is under way.
        let ((o, r), ()) = tokio::join!(flood(at, &mallory, REQUESTS / ROUNDS), honest(round + 1));
        (opened, refused) = (opened + o, refused + r);
    }
    assert_eq!(opened, cap, "exactly the cap was opened");
    assert_eq!(refused, REQUESTS - cap);
    let after = rss_kib(server.pid());
    // An open session costs about 140 KiB in this (debug) build, measured
    // by opening 2,000 and then 4,000 more without a cap (the server grew
    // 278 and 553 MB); 256 KiB each leaves room for allocator rounding.
    // Beside the sessions the allocator keeps what the flood's 32
    // connections in flight used (buffers, the refused requests' bodies):
    // 16 MiB. So the cap's 64 sessions allow 32 MiB of growth; without
    // the cap the same flood held 20,000 sessions, about 2.7 GiB.
    let bound = baseline + cap as u64 * 256 + 16 * 1024;
    println!(
        "VmRSS: {baseline} KiB before, {after} KiB after {REQUESTS} session-opening requests \
         ({opened} opened, {refused} refused); bound {bound} KiB"
    );
    assert!(
        after <= bound,
        "resident memory grew from {baseline} KiB to {after} KiB (bound {bound} KiB)"
    );
    honest(ROUNDS + 1).await;
    alice.cancel().await.expect("close");
    let journal = server.stop_and_journal();
    let entries = refusals(&journal, "Agent::\"mallory\"", "max_sessions_per_agent");
    assert_eq!(
        accounted(&entries),
        refused as u64,
        "every refusal accounted for"
    );
}
