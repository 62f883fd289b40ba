//! Hosted servers that need an API token, given one they never hold: a
//! FastMCP server (httpx and requests) and a Node server (built-in fetch)
//! call an HTTPS upstream whose test CA only airlock trusts (`[egress]
//! roots`); airlock's proxy terminates their TLS with its own CA, adds the
//! vault secret and masks its reflection. `airlock serve` runs as its own
//! ordinary user.

use super::fixture::{self, Fixture, Server, printed};
use super::{call, call_allowed, text};
use airlock_tests::net::{Behaviour, TestCa, TestServer};
use serde_json::json;
use std::net::Ipv4Addr;

const SECRET: &str = "sk-hosted-0123456789abcdef-airlock";
const PASSPHRASE: &str = "a passphrase for the hosted servers";

/// `[servers.network]` allowing `api.test:PORT`, with `api-key` bound to it.
fn granted(port: u16) -> String {
    format!(
        "[servers.network]\n[[servers.network.allow]]\nhost = \"api.test\"\nports = [{port}]\nprivate = true\n\
         [[servers.credentials]]\nsecret = \"api-key\"\nheader = \"Authorization\"\nformat = \"Bearer {{secret}}\"\nhosts = [\"api.test\"]\nports = [{port}]\n"
    )
}

/// Asserts a fetch reached the upstream and saw its reflection masked.
fn reflected_masked(result: &rmcp::model::CallToolResult) {
    let answer = text(result);
    assert!(answer.starts_with("200 "), "{answer}");
    assert!(answer.contains("authorization"), "reflected: {answer}");
    assert!(!answer.contains(SECRET), "masked: {answer}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hosted_python_and_node_servers_use_a_token_they_never_hold() {
    let ca = TestCa::new(&["api.test"]);
    let upstream = TestServer::start_tls(Ipv4Addr::LOCALHOST, 0, Behaviour::Reflect, &ca)
        .await
        .expect("upstream");
    let port = upstream.addr().port();

    let mut fixture = Fixture::new("");
    let roots = fixture
        .config()
        .parent()
        .expect("the fixture's directory")
        .join("upstream-ca.pem");
    std::fs::write(&roots, ca.pem()).expect("write the upstream CA");
    super::hosted::open_to_everyone(&roots, 0o644);
    fixture.prepend(&format!(
        "[egress]\nroots = [{:?}]\n",
        roots.display().to_string()
    ));
    let modules = super::hosted::npm_servers();
    let node = format!(
        "[[servers]]\nname = \"node\"\ncommand = \"/usr/bin/node\"\nargs = [{:?}]\nfs_read = [{:?}, {:?}]\nenv = {{ NODE_PATH = {:?} }}\n{}",
        super::hosted::fixture_dir()
            .join("fetch_server.cjs")
            .display()
            .to_string(),
        modules.display().to_string(),
        super::hosted::fixture_dir().display().to_string(),
        modules.display().to_string(),
        granted(port),
    );
    fixture.write_config(&format!(
        "{}\n{node}",
        super::hosted::server_entry("py", "serve", &granted(port))
    ));
    let set = fixture::vault(&fixture, &["set", "api-key"], PASSPHRASE, SECRET);
    assert!(set.status.success(), "{}", printed(&set));

    let server = Server::start(
        &fixture,
        fixture::Start {
            vault_passphrase: Some(PASSPHRASE),
            serve_args: &["--resolve", "api.test=127.0.0.1"],
            ..fixture::Start::default()
        },
    )
    .await;
    let client = server.client("claude").await;
    let url = format!("https://api.test:{port}/reflect");

    // httpx, requests and Node's fetch: each reaches the upstream through
    // the proxy, which adds the token; each sees its reflection masked.
    let httpx = call_allowed(
        &server,
        &client,
        "py.fetch_with",
        json!({ "client": "httpx", "url": url }),
        "session",
    )
    .await;
    reflected_masked(&httpx);
    let requests = client
        .peer()
        .call_tool(call(
            "py.fetch_with",
            json!({ "client": "requests", "url": url }),
        ))
        .await
        .expect("tools/call");
    reflected_masked(&requests);
    let fetched = call_allowed(
        &server,
        &client,
        "node.fetch",
        json!({ "url": url }),
        "session",
    )
    .await;
    reflected_masked(&fetched);
    let seen = upstream.requests();
    assert_eq!(seen.len(), 3, "{seen:?}");
    for request in &seen {
        assert_eq!(
            request.header("authorization"),
            Some(format!("Bearer {SECRET}").as_str())
        );
    }

    // An origin outside the grant: refused at the proxy, before any
    // connection, whichever client asks.
    for (tool, arguments) in [
        (
            "py.fetch_with",
            json!({ "client": "httpx", "url": "https://elsewhere.test/" }),
        ),
        (
            "py.fetch_with",
            json!({ "client": "requests", "url": "https://elsewhere.test/" }),
        ),
        ("node.fetch", json!({ "url": "https://elsewhere.test/" })),
    ] {
        let refused = client
            .peer()
            .call_tool(call(tool, arguments))
            .await
            .expect("tools/call");
        // Python's clients name the proxy's 403; undici only says the
        // tunnel failed. The journal below says why, for each.
        let answer = text(&refused);
        assert!(answer.starts_with("failed "), "{tool}: {answer}");
        if tool.starts_with("py.") {
            assert!(answer.contains("403"), "{tool}: {answer}");
        }
    }
    assert_eq!(upstream.requests().len(), 3, "nothing else arrived");

    // No trace of the token in anything the server can see: its files, its
    // environment, any process's command line. The search finds its own
    // control file, so it did look.
    let found = call_allowed(
        &server,
        &client,
        "py.search",
        json!({ "needle": SECRET }),
        "session",
    )
    .await;
    // FastMCP answers a list as one text item per element.
    let found: Vec<String> = found
        .content
        .iter()
        .filter_map(|c| c.as_text().map(|t| t.text.clone()))
        .collect();
    assert_eq!(found, ["control"], "{found:?}");
    let environment = call_allowed(&server, &client, "py.environment", json!({}), "session").await;
    let environment: serde_json::Value =
        serde_json::from_str(&text(&environment)).expect("the environment as JSON");
    assert!(!environment.to_string().contains(SECRET));
    let bundle = environment["SSL_CERT_FILE"].as_str().expect("a CA bundle");
    assert_eq!(bundle, airlock_sandbox::TRUST_IN_SANDBOX);
    assert_eq!(environment["REQUESTS_CA_BUNDLE"], bundle);
    // The bundle holds certificates, never the CA's key.
    let read = call_allowed(
        &server,
        &client,
        "py.read",
        json!({ "path": bundle }),
        "session",
    )
    .await;
    assert!(
        text(&read).starts_with("-----BEGIN CERTIFICATE-----"),
        "{}",
        text(&read)
    );
    assert!(!text(&read).contains("PRIVATE KEY"));

    // The journal says which credential went out, never its value.
    let journal = server.airlock(&["journal", "tail", "-n", "500", "--json"]);
    assert!(journal.status.success(), "{}", printed(&journal));
    let stdout = String::from_utf8_lossy(&journal.stdout);
    let injected = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["kind"] == "egress")
        .filter(|entry| entry["payload"]["credentials"] == json!(["api-key"]))
        .count();
    assert_eq!(
        injected, 3,
        "one egress entry per fetch names the credential: {stdout}"
    );
    let refused = stdout
        .lines()
        .filter_map(|line| serde_json::from_str::<serde_json::Value>(line).ok())
        .filter(|entry| entry["kind"] == "egress")
        .filter(|entry| {
            entry["payload"]["host"] == "elsewhere.test"
                && entry["payload"]["reason"] == "host_not_allowed"
        })
        .count();
    assert_eq!(
        refused, 3,
        "each refusal is journaled with its reason: {stdout}"
    );
    assert!(!stdout.contains(SECRET));
    client.cancel().await.expect("close");
}
