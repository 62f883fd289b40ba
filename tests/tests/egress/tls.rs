//! HTTPS through the production connector (rustls): SNI and certificate
//! verification are for the request's host name, not the pinned address.

use airlock::egress::{Reason, StaticResolver};
use airlock_tests::net::{Behaviour, EgressHarness, GuardedConnector, TestCa, TestServer};
use serde_json::json;
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

const SVC: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn grant(name: &str, port: u16) -> String {
    format!(
        "[[allow]]\nhost = \"{name}\"\nprivate = true\nports = [{port}]\nschemes = [\"https\"]\n"
    )
}

#[tokio::test]
async fn https_verifies_the_certificate_for_the_host_name() {
    let ca = TestCa::new(&["secure.test"]);
    let server = TestServer::start_tls(SVC, 0, Behaviour::Echo, &ca)
        .await
        .expect("server");
    let port = server.addr().port();
    let harness =
        EgressHarness::with_connector(Arc::new(GuardedConnector::new(Arc::new(ca.connector()))));
    harness.resolver.set(
        StaticResolver::new()
            .with("secure.test", [IpAddr::V4(SVC)])
            .with("impostor.test", [IpAddr::V4(SVC)]),
    );

    let outcome = harness
        .fetch(
            &grant("secure.test", port),
            json!({"url": format!("https://secure.test:{port}/tls")}),
        )
        .await;
    assert_eq!(outcome.code(), "ok", "{outcome:?}");
    assert_eq!(server.requests().len(), 1);
    assert_eq!(server.requests()[0].target, "/tls");

    // Same address, but the certificate is not for this name.
    let outcome = harness
        .fetch(
            &grant("impostor.test", port),
            json!({"url": format!("https://impostor.test:{port}/")}),
        )
        .await;
    assert_eq!(outcome.code(), "tool_failed", "{outcome:?}");
    assert!(
        outcome
            .message()
            .unwrap_or_default()
            .contains("TlsCertificateError")
    );
    assert_eq!(outcome.report().egress[0].reason, Some(Reason::TlsFailed));
    assert_eq!(
        server.requests().len(),
        1,
        "no request was sent over a failed handshake"
    );
}

#[tokio::test]
async fn the_production_roots_do_not_trust_a_private_ca() {
    let ca = TestCa::new(&["secure.test"]);
    let server = TestServer::start_tls(SVC, 0, Behaviour::Echo, &ca)
        .await
        .expect("server");
    let port = server.addr().port();
    let harness = EgressHarness::new();
    harness
        .resolver
        .set(StaticResolver::new().with("secure.test", [IpAddr::V4(SVC)]));
    let outcome = harness
        .fetch(
            &grant("secure.test", port),
            json!({"url": format!("https://secure.test:{port}/")}),
        )
        .await;
    assert_eq!(outcome.code(), "tool_failed", "{outcome:?}");
    assert_eq!(outcome.report().egress[0].reason, Some(Reason::TlsFailed));
    assert!(server.requests().is_empty());
}
