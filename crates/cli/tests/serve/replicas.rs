//! Two `airlock serve` replicas on one PostgreSQL database (the throwaway
//! cluster `.ci/test` starts): agents, approvals and decisions are shared,
//! a `once` approval is used once whichever replica races for it, each
//! replica keeps its own signed log, and a replica killed mid-run loses
//! nothing it acknowledged.

use super::fixture::{self, Fixture, Recorder, Server, printed};
use super::{call, fetch_held_for_approval, text};
use airlock_tests::postgres::{TestDatabase, fresh_database};
use serde_json::{Value, json};
use sha2::Digest as _;

fn json_of(out: &std::process::Output) -> Value {
    assert!(out.status.success(), "{}", printed(out));
    serde_json::from_slice(&out.stdout).expect("JSON")
}

/// Replicas `a` and `b` of `db`, `fetch` granted `svc.test:PORT`.
fn pair(db: &TestDatabase, serve: &str, port: u16) -> (Fixture, Fixture) {
    (
        Fixture::replica(serve, port, db, "a"),
        Fixture::replica(serve, port, db, "b"),
    )
}

/// Every entry of every replica's log, through `server`'s socket.
fn journals(server: &Server<'_>) -> Vec<Value> {
    let out = server.airlock(&["journal", "tail", "-n", "100000", "--json"]);
    assert!(out.status.success(), "{}", printed(&out));
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("one entry per line"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_decision_through_one_replica_releases_a_call_waiting_on_another() {
    let db = fresh_database();
    let upstream = fixture::upstream().await;
    let port = upstream.addr().port();
    let (fa, fb) = pair(&db, "", port);
    let a = Server::http(&fa).await;
    let b = Server::http(&fb).await;
    // An agent added through A's operator socket is known to B.
    let token = a.add_agent("claude");
    let client = b.connect(&token, Recorder::new()).await;
    let url = format!("http://svc.test:{port}/replicas");
    let (pending, waiting, id) = fetch_held_for_approval(&b, &client, json!({"url": url})).await;
    assert!(waiting.contains(&id), "{waiting}");
    assert_eq!(a.pending_approval_id(), id, "A sees what B waits for");

    let decided = a.airlock(&["approvals", "decide", &id, "--allow", "once"]);
    assert!(decided.status.success(), "{}", printed(&decided));
    let result = pending.await.expect("task").expect("tools/call");
    assert_eq!(result.is_error, Some(false), "{}", text(&result));
    assert_eq!(upstream.requests().len(), 1);

    // One journal view, merged: the request and the run on B, the
    // decision on A, each entry naming its replica.
    let entries = journals(&a);
    let find = |kind: &str| {
        entries
            .iter()
            .find(|e| e["kind"] == kind)
            .unwrap_or_else(|| panic!("no {kind} entry: {entries:?}"))
    };
    assert_eq!(find("approval_requested")["replica"], "b");
    assert_eq!(find("approval_decided")["replica"], "a");
    let run = find("invocation");
    assert_eq!(run["replica"], "b");
    assert_eq!(run["payload"]["attestation"]["approval_id"], id);

    // Either replica verifies both logs, each against its own key.
    let verdict = json_of(&a.airlock(&["journal", "verify", "--json"]));
    assert_eq!(verdict["valid"], true, "{verdict}");
    let replicas = verdict["replicas"].as_array().expect("replicas");
    assert_eq!(replicas.len(), 2, "{verdict}");
    assert!(replicas.iter().all(|r| r["valid"] == true), "{verdict}");

    let status = json_of(&b.airlock(&["status", "--json"]));
    let names: Vec<&str> = status["shared"]["replicas"]
        .as_array()
        .expect("replicas")
        .iter()
        .filter_map(|r| r["name"].as_str())
        .collect();
    assert_eq!(names, ["a", "b"]);
    assert_eq!(status["shared"]["warnings"], json!([]), "{status}");
    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_once_approval_raced_by_two_replicas_runs_one_call() {
    let db = fresh_database();
    let upstream = fixture::upstream().await;
    let port = upstream.addr().port();
    let (fa, fb) = pair(&db, "", port);
    let a = Server::http(&fa).await;
    let b = Server::http(&fb).await;
    let token = a.add_agent("claude");
    let (on_a, on_b) = (
        a.connect(&token, Recorder::new()).await,
        b.connect(&token, Recorder::new()).await,
    );
    // The same request on both replicas: one pending approval for both.
    let url = format!("http://svc.test:{port}/once");
    let (first, _, id) = fetch_held_for_approval(&a, &on_a, json!({"url": url})).await;
    let (second, _, same) = fetch_held_for_approval(&b, &on_b, json!({"url": url})).await;
    assert_eq!(id, same);

    let decided = b.airlock(&["approvals", "decide", &id, "--allow", "once"]);
    assert!(decided.status.success(), "{}", printed(&decided));
    // The call that lost the race waits again, on a new approval: deny it.
    let (winner, loser) = match futures::future::select(first, second).await {
        futures::future::Either::Left((done, other)) => (done, (other, &on_b)),
        futures::future::Either::Right((done, other)) => (done, (other, &on_a)),
    };
    let winner = winner.expect("task").expect("tools/call");
    assert_eq!(winner.is_error, Some(false), "{}", text(&winner));
    let again = loser
        .1
        .service()
        .next_progress_with("waiting for an operator")
        .await;
    let fresh = a.pending_approval_id();
    assert_ne!(fresh, id, "{again}");
    let denied = a.airlock(&[
        "approvals",
        "decide",
        &fresh,
        "--deny",
        "one run was enough",
    ]);
    assert!(denied.status.success(), "{}", printed(&denied));
    let loser = loser.0.await.expect("task").expect("tools/call");
    assert_eq!(loser.is_error, Some(true));
    assert!(
        text(&loser).contains("one run was enough"),
        "{}",
        text(&loser)
    );

    assert_eq!(upstream.requests().len(), 1, "the approval ran one call");
    let runs: Vec<Value> = journals(&b)
        .into_iter()
        .filter(|e| e["kind"] == "invocation" && e["payload"]["attestation"]["approval_id"] == id)
        .collect();
    assert_eq!(runs.len(), 1, "{runs:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_run_loses_nothing_it_acknowledged() {
    const CALLS: usize = 200;
    let db = fresh_database();
    let (fa, fb) = pair(&db, "max_concurrent = 8\n", 9);
    let mut a = Server::http(&fa).await;
    let b = Server::http(&fb).await;
    let token = a.add_agent("claude");
    let (on_a, on_b) = (
        a.connect(&token, Recorder::new()).await,
        b.connect(&token, Recorder::new()).await,
    );
    let input = |n: usize| json!({ "n": n });
    let calls = |client: &rmcp::service::RunningService<rmcp::RoleClient, Recorder>, odd: bool| {
        (0..CALLS)
            .filter(|n| (n % 2 == 1) == odd)
            .map(|n| {
                let peer = client.peer().clone();
                let arguments = input(n);
                tokio::spawn(async move { (n, peer.call_tool(call("echo", arguments)).await) })
            })
            .collect::<Vec<_>>()
    };
    let (mut to_a, to_b) = (calls(&on_a, false), calls(&on_b, true));
    // Kill A once a quarter of its calls are acknowledged.
    let mut acknowledged = Vec::new();
    while acknowledged.len() < CALLS / 8 {
        let (done, _, rest) = futures::future::select_all(to_a).await;
        to_a = rest;
        if let (n, Ok(result)) = done.expect("task") {
            assert_eq!(result.is_error, Some(false), "{}", text(&result));
            acknowledged.push(n);
        }
    }
    a.kill();
    // What finished before the kill counts too; what did not was never
    // acknowledged (a dead server's calls never end: drop them).
    for call in to_a {
        if !call.is_finished() {
            call.abort();
            continue;
        }
        if let (n, Ok(result)) = call.await.expect("task")
            && result.is_error == Some(false)
        {
            acknowledged.push(n);
        }
    }
    // B kept serving: all of its calls, and a new one.
    for call in to_b {
        let (n, result) = call.await.expect("task");
        let result = result.unwrap_or_else(|e| panic!("call {n} on b: {e}"));
        assert_eq!(result.is_error, Some(false), "{}", text(&result));
    }
    let after = on_b
        .peer()
        .call_tool(call("echo", json!({"after": true})))
        .await
        .expect("b serves on");
    assert_eq!(after.is_error, Some(false), "{}", text(&after));

    // Every call A acknowledged is in A's log, read through B.
    let logged: Vec<String> = journals(&b)
        .into_iter()
        .filter(|e| e["replica"] == "a" && e["kind"] == "invocation")
        .filter_map(|e| {
            e["payload"]["attestation"]["input_sha256"]
                .as_str()
                .map(String::from)
        })
        .collect();
    for n in &acknowledged {
        let digest = hex::encode(sha2::Sha256::digest(input(*n).to_string().as_bytes()));
        assert!(
            logged.contains(&digest),
            "acknowledged call {n} is missing from a's log"
        );
    }
    // A's state directory alone cannot answer for the shared store.
    let alone = a.airlock(&["journal", "tail"]);
    assert!(!alone.status.success(), "{}", printed(&alone));
    assert!(
        printed(&alone).contains("shared_store"),
        "{}",
        printed(&alone)
    );

    let verdict = json_of(&b.airlock(&["journal", "verify", "--json"]));
    assert_eq!(verdict["valid"], true, "{verdict}");
    assert!(
        verdict["replicas"]
            .as_array()
            .is_some_and(|r| r.len() == 2 && r.iter().all(|r| r["valid"] == true)),
        "{verdict}"
    );
    on_b.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_with_other_policies_is_reported() {
    let db = fresh_database();
    let (fa, fb) = pair(&db, "", 9);
    let stricter = fixture::policies_with(
        "stricter.cedar",
        "forbid (principal, action == Airlock::Action::\"tool.execute\", resource) \
         when { context.run_id == \"never\" };",
    );
    let a = Server::http(&fa).await;
    let b = Server::with_policies(&fb, stricter.path()).await;
    let out = a.airlock(&["status"]);
    assert!(out.status.success(), "{}", printed(&out));
    let shown = printed(&out);
    assert!(
        shown.contains("replicas serve different policies"),
        "{shown}"
    );
    let status = json_of(&b.airlock(&["status", "--json"]));
    let replicas = status["shared"]["replicas"].as_array().expect("replicas");
    assert_ne!(
        replicas[0]["policy_digest"], replicas[1]["policy_digest"],
        "{status}"
    );
}

/// `airlock vault ARGS --config` of `fixture`, unlocked with `passphrase`,
/// `stdin` piped in.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_replica_injects_secrets_from_the_shared_vault() {
    const SECRET: &str = "sk-shared-0123456789abcdef-airlock";
    const PASSPHRASE: &str = "one passphrase for every replica";
    let db = fresh_database();
    let upstream = fixture::upstream().await;
    let port = upstream.addr().port();
    let (fa, fb) = pair(&db, "", port);
    let binding = format!(
        "[[tools.credentials]]\nsecret = \"api-key\"\nheader = \"Authorization\"\nformat = \"Bearer {{secret}}\"\nhosts = [\"svc.test\"]\nschemes = [\"http\"]\nports = [{port}]\n"
    );
    fa.write_config(&binding);
    fb.write_config(&binding);

    // A keyring's key stays on one machine: refused for the shared vault.
    let keyring = fixture::vault(&fa, &["init", "--backend", "keyring"], PASSPHRASE, "");
    assert!(!keyring.status.success());
    assert!(
        printed(&keyring).contains("keyring_with_shared_store"),
        "{}",
        printed(&keyring)
    );
    // Stored through A's configuration, listed through B's.
    let set = fixture::vault(&fa, &["set", "api-key"], PASSPHRASE, SECRET);
    assert!(set.status.success(), "{}", printed(&set));
    let listed = fixture::vault(&fb, &["list", "--json"], PASSPHRASE, "");
    assert!(
        printed(&listed).contains("\"api-key\""),
        "{}",
        printed(&listed)
    );
    let wrong = fixture::vault(&fb, &["list"], "not the passphrase at all", "");
    assert!(
        printed(&wrong).contains("wrong_master_key"),
        "{}",
        printed(&wrong)
    );
    // Only sealed bytes are in the database.
    let rows = db.execute("SELECT ciphertext FROM vault_secrets");
    let sealed: Vec<u8> = rows[0].get(0);
    assert!(!String::from_utf8_lossy(&sealed).contains(SECRET));

    let start = |fixture| {
        Server::start(
            fixture,
            fixture::Start {
                vault_passphrase: Some(PASSPHRASE),
                ..fixture::Start::default()
            },
        )
    };
    let a = start(&fa).await;
    let b = start(&fb).await;
    // A state directory that serves from the shared store has no vault of
    // its own: without --config the command refuses.
    let local = a.airlock(&["vault", "list"]);
    assert!(
        printed(&local).contains("shared_store"),
        "{}",
        printed(&local)
    );

    let token = a.add_agent("claude");
    for server in [&b, &a] {
        let client = server.connect(&token, Recorder::new()).await;
        let url = format!("http://svc.test:{port}/with-key");
        let result =
            super::call_allowed(server, &client, "fetch", json!({"url": url}), "once").await;
        assert_eq!(result.is_error, Some(false), "{}", text(&result));
        assert!(!text(&result).contains(SECRET), "the tool never sees it");
        client.cancel().await.expect("close");
    }
    let seen = upstream.requests();
    assert_eq!(seen.len(), 2);
    for request in &seen {
        let authorization = request
            .headers
            .iter()
            .find(|(name, _)| name == "authorization");
        assert_eq!(
            authorization.map(|(_, value)| value.as_str()),
            Some(format!("Bearer {SECRET}").as_str()),
            "each replica injected the shared secret"
        );
    }
}

/// The public key (`host.pub`, hex) of `fixture`'s state directory, as an
/// operator reads it to register the replica.
fn replica_key(fixture: &Fixture) -> String {
    let out = fixture::airlock_for(fixture, &["replicas", "key"])
        .output()
        .expect("airlock replicas key");
    assert!(out.status.success(), "{}", printed(&out));
    String::from_utf8_lossy(&out.stdout).trim().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_that_fails_the_fleet_policy_neither_serves_nor_gets_approvals() {
    let db = fresh_database();
    let upstream = fixture::upstream().await;
    let (fa, fb) = pair(&db, "", upstream.addr().port());
    let (ka, kb) = (replica_key(&fa), replica_key(&fb));
    let fleet = format!(
        "[fleet]\nrequire_strict_egress = true\nrequire_sandbox = \"bubblewrap\"\n[fleet.replicas]\na = {ka:?}\nb = {kb:?}\n"
    );
    fa.write_config(&fleet);
    // B's configuration runs a native tool outside the sandbox: its egress
    // is not confined.
    fb.write_config(&format!(
        "[[tools]]\nname = \"loose\"\n[tools.native]\nprogram = \"/bin/cat\"\ntier = \"none\"\n\n{fleet}"
    ));
    let a = Server::http(&fa).await;
    let refused = fixture::airlock_command(&fb)
        .arg("--state-dir")
        .arg(fb.state())
        .args(["serve", "--listen", "127.0.0.1:0", "--no-dns", "--config"])
        .arg(fb.config())
        .stdin(std::process::Stdio::null())
        .output()
        .expect("airlock serve");
    fixture::assert_refused(&refused, 2, "fleet_policy_unmet");
    assert!(
        printed(&refused).contains("strict_egress_required"),
        "{}",
        printed(&refused)
    );

    // Every replica's statement, as A judges it: A's verifies, B's
    // (published when it tried to start) does not, and says why.
    let listed = json_of(&a.airlock(&["replicas", "list", "--json"]));
    let find = |name: &str| {
        listed
            .as_array()
            .and_then(|all| all.iter().find(|r| r["replica"] == name))
            .unwrap_or_else(|| panic!("no replica {name}: {listed}"))
            .clone()
    };
    let (on_a, on_b) = (find("a"), find("b"));
    assert_eq!(on_a["verified"], true, "{on_a}");
    assert_eq!(on_a["statement"]["strict_egress"], true);
    assert_eq!(on_a["statement"]["sandbox"]["bubblewrap"], true);
    assert!(on_a["statement"]["tools"]["echo"].is_string(), "{on_a}");
    let binary = std::fs::read(env!("CARGO_BIN_EXE_airlock")).expect("the binary");
    assert_eq!(
        on_a["statement"]["binary"],
        format!("sha256:{}", hex::encode(sha2::Sha256::digest(&binary)))
    );
    assert_eq!(on_b["verified"], false, "{on_b}");
    assert_eq!(
        on_b["failures"][0]["code"], "strict_egress_required",
        "{on_b}"
    );
    let text = a.airlock(&["replicas", "list"]);
    assert!(
        printed(&text).contains("b  NOT VERIFIED"),
        "{}",
        printed(&text)
    );

    // Were B to ask anyway (a build that ignores its own refusal, writing
    // to the database directly), A releases nothing to it.
    let key = airlock::journal::key::parse_public_key(&kb).expect("b's key");
    let rogue = airlock::store::PostgresStore::open(&db.settings("b"), &key).expect("as b");
    let asked =
        airlock::approvals::kept_in(&airlock::store::Store::Postgres(std::sync::Arc::new(rogue)))
            .request(&airlock::approvals::ApprovalRequest::new(
                "Agent::\"claude\"",
                "",
                "fetch",
                on_a["statement"]["tools"]["fetch"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_start_matches("sha256:"),
                &["network".into()],
                airlock::approvals::GrantBinding::new(
                    "host = \"svc.test\"".into(),
                    ["svc.test".to_string()],
                ),
                "{\"url\":\"http://svc.test/\"}",
            ))
            .expect("b asks");
    let decided = a.airlock(&["approvals", "decide", &asked.id, "--allow", "once"]);
    fixture::assert_refused(&decided, 2, "replica_unattested");
    assert_eq!(a.pending_approval_id(), asked.id, "still pending");
}
