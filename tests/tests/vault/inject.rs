//! Injection on the wire: the granted request carries the credential, the
//! guest's view of the response does not, and nothing else gets it.

use super::{SECRET, leaks, vault_with_secret};
use airlock::egress::{Reason, StaticResolver, Verdict};
use airlock::policy::{DEFAULT_SCHEMA, PolicyEngine, Principal};
use airlock::vault::{SecretScope, Vault};
use airlock::{Config, Host, Invocation, Outcome};
use airlock_tests::net::{Behaviour, GuardedConnector, TestServer};
use airlock_tests::{guest_path, test_cache_dir};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;

const API: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
const OTHER: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 3);

/// `api.test` and `other.test` granted on their ports; `api-key` bound to
/// `api.test` only.
fn config(tool: &str, api_port: u16, other_port: u16) -> airlock::Grants {
    let text = format!(
        r#"
[[tools]]
name = "{tool}"
[[tools.network.allow]]
host = "api.test"
private = true
ports = [{api_port}]
[[tools.network.allow]]
host = "other.test"
private = true
ports = [{other_port}]
[[tools.credentials]]
secret = "api-key"
header = "Authorization"
format = "Bearer {{secret}}"
hosts = ["api.test"]
schemes = ["http"]
ports = [{api_port}]
"#
    );
    Config::from_toml(&text, "airlock.toml", Path::new("."))
        .expect("valid config")
        .tool(tool)
        .expect("configured")
        .grants()
        .clone()
}

struct Setup {
    host: Host,
    connector: Arc<GuardedConnector>,
    _dir: tempfile::TempDir,
}

fn setup(vault: impl FnOnce(&Path) -> Vault, extra_policy: &str) -> Setup {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = vault(dir.path());
    let connector = Arc::new(GuardedConnector::production());
    let policies = PolicyEngine::from_sources(
        ("schema", DEFAULT_SCHEMA),
        &[
            (
                "all.cedar",
                "@id(\"permit-all\") permit (principal, action, resource);",
            ),
            ("extra.cedar", extra_policy),
        ],
        None,
    )
    .expect("policies");
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .state_dir(dir.path())
        .policies(policies)
        .vault(vault)
        .resolver(Arc::new(
            StaticResolver::new()
                .with("api.test", [IpAddr::V4(API)])
                .with("other.test", [IpAddr::V4(OTHER)]),
        ))
        .connector(Arc::clone(&connector) as Arc<dyn airlock::egress::Connector>)
        .build()
        .expect("host");
    Setup {
        host,
        connector,
        _dir: dir,
    }
}

fn global(dir: &Path) -> Vault {
    vault_with_secret(dir, SecretScope::Global)
}

async fn run(
    setup: &Setup,
    guest: &str,
    grants: airlock::Grants,
    input: serde_json::Value,
) -> Outcome {
    run_as(setup, guest, grants, input, Principal::agent("claude")).await
}

async fn run_as(
    setup: &Setup,
    guest: &str,
    grants: airlock::Grants,
    input: serde_json::Value,
    principal: Principal,
) -> Outcome {
    let tool = setup
        .host
        .load(Path::new(guest_path(guest)), grants)
        .await
        .expect("loads");
    setup
        .host
        .invoke(
            &tool,
            Invocation::new(input.to_string()).as_principal(principal),
        )
        .await
        .expect("runs")
}

/// Everything the caller and the journal get back, as text.
fn everything(outcome: &Outcome) -> String {
    let records: Vec<_> = outcome
        .report()
        .egress
        .iter()
        .map(|r| r.to_json())
        .collect();
    format!(
        "{:?}\n{}\n{}\n{}",
        outcome.output(),
        outcome.message().unwrap_or_default(),
        serde_json::Value::Array(records),
        outcome.report().stderr.text
    )
}

/// A `behaviour` server on `api.test`, fetched once by `http-get` with the
/// global secret bound.
async fn fetch_from(behaviour: Behaviour) -> (TestServer, Setup, Outcome) {
    fetch_with_headers(behaviour, json!({})).await
}

/// As [`fetch_from`], the tool asking for `headers` too.
async fn fetch_with_headers(
    behaviour: Behaviour,
    headers: serde_json::Value,
) -> (TestServer, Setup, Outcome) {
    let api = TestServer::start(API, 0, behaviour).await.expect("server");
    let port = api.addr().port();
    let setup = setup(global, "");
    let outcome = run(
        &setup,
        "http-get",
        config("fetch", port, 1),
        json!({"url": format!("http://api.test:{port}/v1"), "headers": headers}),
    )
    .await;
    (api, setup, outcome)
}

#[tokio::test]
async fn the_granted_request_carries_the_credential_and_the_guest_never_sees_it() {
    let (api, setup, outcome) = fetch_from(Behaviour::Reflect).await;
    assert_eq!(outcome.code(), "ok", "{outcome:?}");

    let seen = api.requests();
    assert_eq!(seen.len(), 1);
    let expected = format!("Bearer {SECRET}");
    assert_eq!(seen[0].header("authorization"), Some(expected.as_str()));
    assert_eq!(seen[0].header("accept-encoding"), Some("identity"));

    let shown = everything(&outcome);
    assert!(!leaks(&shown), "the guest's view holds the secret: {shown}");
    let output = outcome.output().expect("output");
    assert!(output.contains("x-reflected-authorization"), "{output}");
    assert!(
        output.contains(&"*".repeat(SECRET.len())),
        "masked in place: {output}"
    );

    let record = &outcome.report().egress[0];
    assert_eq!(record.verdict, Verdict::Allow);
    assert_eq!(record.credentials, vec!["api-key".to_string()]);

    let journal = airlock::store::Store::in_state_dir(setup._dir.path()).expect("store");
    let entries = airlock::journal::JournalStore::all(&journal).expect("entries");
    let text: String = entries.iter().map(|e| e.payload.clone()).collect();
    assert!(text.contains("\"credentials\":[\"api-key\"]"), "{text}");
    assert!(!leaks(&text), "the journal holds the secret");
}

#[tokio::test]
async fn a_redirect_to_another_origin_carries_nothing() {
    let other = TestServer::start(OTHER, 0, Behaviour::Reflect)
        .await
        .expect("server");
    let other_port = other.addr().port();
    let api = TestServer::start(
        API,
        0,
        Behaviour::Redirect(format!("http://other.test:{other_port}/landing")),
    )
    .await
    .expect("server");
    let port = api.addr().port();
    let setup = setup(global, "");
    let outcome = run(
        &setup,
        "http-get",
        config("fetch", port, other_port),
        json!({"url": format!("http://api.test:{port}/"), "follow_redirects": 1}),
    )
    .await;
    assert_eq!(outcome.code(), "ok", "{outcome:?}");
    assert!(api.requests()[0].header("authorization").is_some());
    let landed = other.requests();
    assert_eq!(landed.len(), 1, "the redirect was followed");
    assert_eq!(landed[0].header("authorization"), None, "{:?}", landed[0]);
    assert!(!landed[0].headers.iter().any(|(_, v)| v.contains(SECRET)));
    let records = &outcome.report().egress;
    assert_eq!(records[1].credentials, Vec::<String>::new());
}

#[tokio::test]
async fn the_secret_hunter_finds_nothing() {
    let api = TestServer::start(API, 0, Behaviour::Reflect)
        .await
        .expect("server");
    let port = api.addr().port();
    let setup = setup(global, "");
    let outcome = run(
        &setup,
        "secret-hunter",
        config("hunter", port, 1),
        json!({"urls": [
            format!("http://api.test:{port}/reflect"),
            format!("http://api.test:{port}/again"),
            "http://other.test:1/refused",
            "http://169.254.169.254/latest/meta-data/",
        ]}),
    )
    .await;
    assert_eq!(outcome.code(), "ok", "{outcome:?}");
    assert_eq!(api.requests().len(), 2, "both reflections happened");
    let shown = everything(&outcome);
    assert!(!leaks(&shown), "the hunter found the secret: {shown}");
    let found: serde_json::Value =
        serde_json::from_str(outcome.output().expect("output")).expect("JSON");
    assert_eq!(found["env"], json!([]));
    assert_eq!(found["preopens"], json!([]));
    assert_eq!(found["requests"].as_array().map(Vec::len), Some(4));
    assert!(
        setup
            .connector
            .take_asked()
            .iter()
            .all(|a| a.ip().is_loopback()),
        "nothing but loopback was dialled"
    );
}

#[tokio::test]
async fn requests_that_would_misuse_a_credential_are_refused_before_connecting() {
    let api = TestServer::start(API, 0, Behaviour::Reflect)
        .await
        .expect("server");
    let port = api.addr().port();
    let url = format!("http://api.test:{port}/");
    let forbid = r#"@id("no-api-key") forbid (principal, action == Airlock::Action::"credential.use", resource) when { resource.name == "api-key" };"#;
    let scoped =
        |dir: &Path| vault_with_secret(dir, "principal:Agent::\"claude\"".parse().expect("scope"));

    let cases: Vec<(Setup, serde_json::Value, Principal, Reason)> = vec![
        (
            setup(global, ""),
            json!({"url": url, "headers": {"Authorization": "Bearer guest-made"}}),
            Principal::agent("claude"),
            Reason::CredentialHeaderConflict,
        ),
        (
            setup(global, forbid),
            json!({"url": url}),
            Principal::agent("claude"),
            Reason::CredentialDenied,
        ),
        (
            setup(scoped, ""),
            json!({"url": url}),
            Principal::agent("crawler"),
            Reason::CredentialDenied,
        ),
    ];
    for (setup, input, principal, reason) in cases {
        let outcome = run_as(
            &setup,
            "http-get",
            config("fetch", port, 1),
            input,
            principal,
        )
        .await;
        assert_eq!(outcome.code(), "tool_denied", "{reason:?}: {outcome:?}");
        let record = &outcome.report().egress[0];
        assert_eq!(record.reason, Some(reason));
        assert!(
            setup.connector.take_asked().is_empty(),
            "{reason:?}: no socket opened"
        );
        assert!(!leaks(&everything(&outcome)));
    }
    assert!(api.requests().is_empty(), "the server saw nothing");

    // The principal the secret belongs to gets it.
    let owner = setup(scoped, "");
    let outcome = run(
        &owner,
        "http-get",
        config("fetch", port, 1),
        json!({"url": url}),
    )
    .await;
    assert_eq!(outcome.code(), "ok", "{outcome:?}");
}

#[tokio::test]
async fn a_compressed_response_to_a_credentialed_request_is_refused() {
    // Content coding, and transfer coding (what a server that honours the
    // guest's `TE: gzip` sends): either hides the body from the scrubber.
    for behaviour in [Behaviour::Gzipped, Behaviour::TransferGzipped] {
        let (api, _setup, outcome) = fetch_from(behaviour.clone()).await;
        assert_eq!(api.requests().len(), 1);
        assert_eq!(outcome.code(), "tool_failed", "{behaviour:?}: {outcome:?}");
        assert_eq!(
            outcome.report().egress[0].reason,
            Some(Reason::UnscrubbableResponse),
            "{behaviour:?}"
        );
    }
}

#[tokio::test]
async fn a_credentialed_request_asks_for_no_transfer_coding() {
    let headers = json!({ "TE": "gzip", "Accept-Encoding": "gzip" });
    let (api, _setup, outcome) = fetch_with_headers(Behaviour::Echo, headers).await;
    assert_eq!(outcome.code(), "ok", "{outcome:?}");
    let seen = api.requests();
    assert_eq!(seen[0].header("te"), None, "the guest's TE is dropped");
    assert_eq!(seen[0].header("accept-encoding"), Some("identity"));
}

/// Whether `text` holds the secret in a form [`leaks`] does not look for:
/// case-changed or percent-encoded (either hex case).
fn leaks_otherwise(text: &str) -> bool {
    let percent: String = SECRET.bytes().map(|b| format!("%{b:02x}")).collect();
    let text = text.to_ascii_lowercase();
    text.contains(&SECRET.to_ascii_lowercase()) || text.contains(&percent)
}

#[tokio::test]
async fn a_secret_reflected_anywhere_in_the_head_or_trailers_is_masked() {
    let (api, _setup, outcome) = fetch_from(Behaviour::ReflectInHead).await;
    assert_eq!(outcome.code(), "ok", "{outcome:?}");
    let expected = format!("Bearer {SECRET}");
    assert_eq!(
        api.requests()[0].header("authorization"),
        Some(expected.as_str())
    );
    let shown = everything(&outcome);
    assert!(!leaks(&shown) && !leaks_otherwise(&shown), "{shown}");

    // The reflections arrived, masked in place.
    let seen: serde_json::Value =
        serde_json::from_str(outcome.output().expect("output")).expect("JSON");
    let masked = "*".repeat(SECRET.len());
    assert_eq!(seen["status"], 302);
    assert!(
        !seen.to_string().contains("x-early"),
        "1xx heads are not passed on"
    );
    let headers: Vec<(String, String)> =
        serde_json::from_value(seen["headers"].clone()).expect("headers");
    let has = |name: &str, value: &str| headers.iter().any(|(n, v)| n == name && v == value);
    let masked_name = format!("x-{masked}");
    assert!(
        has(&masked_name, "raw") && has(&masked_name, "upper"),
        "{headers:?}"
    );
    let percent_name = format!("x-{}", "*".repeat(3 * SECRET.len()));
    assert!(has(&percent_name, "percent"), "{headers:?}");
    assert!(
        headers
            .iter()
            .any(|(n, v)| v == "base64url" && n.contains("*****")),
        "{headers:?}"
    );
    assert!(
        has("location", &format!("/next?token={masked}")),
        "{headers:?}"
    );
    let many: Vec<&str> = headers
        .iter()
        .filter(|(n, _)| n == "x-many")
        .map(|(_, v)| v.as_str())
        .collect();
    assert_eq!(many, ["first", masked.as_str(), "last"]);
    assert_eq!(
        seen["trailers"],
        json!([[format!("x-trailer-{masked}"), masked]]),
        "{seen}"
    );
}

#[tokio::test]
async fn a_secret_in_a_folded_header_line_is_refused_with_the_response() {
    let (api, _setup, outcome) = fetch_from(Behaviour::ReflectFolded).await;
    assert_eq!(api.requests().len(), 1, "the server was asked");
    assert_eq!(outcome.code(), "tool_failed", "{outcome:?}");
    assert_eq!(
        outcome.report().egress[0].reason,
        Some(Reason::ProtocolError)
    );
    let shown = everything(&outcome);
    assert!(!leaks(&shown) && !leaks_otherwise(&shown), "{shown}");
}
