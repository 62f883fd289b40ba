//! The production resolver (hickory) against a DNS server on 127.0.0.1:
//! mixed answers, answers that change between lookups, missing names.

use airlock::Host;
use airlock::NetworkGrant;
use airlock::egress::{Decision, Reason, SystemResolver, decide};
use airlock_tests::net::{Behaviour, EgressHarness, GuardedConnector, TestDns, TestServer};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

fn ip(text: &str) -> IpAddr {
    text.parse().expect("ip")
}

async fn dns_and_resolver() -> (TestDns, SystemResolver) {
    let dns = TestDns::start().await.expect("dns server");
    let resolver =
        SystemResolver::with_server(dns.addr(), Duration::from_secs(2)).expect("resolver");
    (dns, resolver)
}

#[tokio::test]
async fn every_answer_is_checked_and_names_resolve_once_per_decision() {
    let (dns, resolver) = dns_and_resolver().await;
    let grant =
        NetworkGrant::from_toml("[[allow]]\nsuffix = \"test\"\n", "grant.toml").expect("grant");
    dns.set(
        "public.test",
        vec![vec![ip("93.184.216.34"), ip("2606:4700::1111")]],
    );
    dns.set(
        "mixed.test",
        vec![vec![ip("93.184.216.34"), ip("10.0.0.7")]],
    );
    dns.set(
        "mixed6.test",
        vec![vec![ip("93.184.216.34"), ip("fe80::1")]],
    );
    dns.set(
        "rebind.test",
        vec![vec![ip("93.184.216.34")], vec![ip("169.254.169.254")]],
    );

    let Decision::Allow(pinned) = decide(&grant, "https://public.test/", &resolver).await else {
        panic!("public answers are allowed");
    };
    let mut addresses = pinned.addresses().to_vec();
    addresses.sort();
    assert_eq!(addresses, vec![ip("93.184.216.34"), ip("2606:4700::1111")]);

    for (url, reason) in [
        ("https://mixed.test/", Reason::PrivateAddress),
        ("https://mixed6.test/", Reason::PrivateAddress),
        ("https://missing.test/", Reason::DnsFailed),
    ] {
        let Decision::Deny(denial) = decide(&grant, url, &resolver).await else {
            panic!("{url} must be denied");
        };
        assert_eq!(denial.reason, reason, "{url}: {}", denial.message);
    }

    // Rebinding: the first lookup is public and is what gets pinned; the
    // second (a new request) sees the metadata address and is refused.
    let Decision::Allow(first) = decide(&grant, "http://rebind.test/", &resolver).await else {
        panic!("first lookup is public");
    };
    assert_eq!(first.addresses(), [ip("93.184.216.34")]);
    assert_eq!(
        dns.a_queries("rebind.test"),
        1,
        "one resolution per decision"
    );
    let Decision::Deny(second) = decide(&grant, "http://rebind.test/", &resolver).await else {
        panic!("second lookup is metadata");
    };
    assert_eq!(second.reason, Reason::MetadataAddress);
    assert_eq!(dns.a_queries("rebind.test"), 2);
}

#[tokio::test]
async fn a_live_request_dials_exactly_the_address_it_resolved_once() {
    let (dns, resolver) = dns_and_resolver().await;
    let server = TestServer::start(Ipv4Addr::new(127, 0, 0, 2), 0, Behaviour::Echo)
        .await
        .expect("server");
    let port = server.addr().port();
    dns.set(
        "svc.test",
        vec![vec![ip("127.0.0.2")], vec![ip("127.0.0.9")]],
    );

    let connector = Arc::new(GuardedConnector::production());
    let host = Host::builder()
        .cache_dir(airlock_tests::test_cache_dir())
        .policies(airlock_tests::permit_all())
        .resolver(Arc::new(resolver))
        .connector(Arc::clone(&connector) as Arc<dyn airlock::egress::Connector>)
        .build()
        .expect("host");
    let harness = EgressHarness {
        host,
        connector,
        resolver: Arc::default(),
    };
    let grant = format!("[[allow]]\nhost = \"svc.test\"\nprivate = true\nports = [{port}]\n");
    let outcome = harness
        .fetch(
            &grant,
            serde_json::json!({"url": format!("http://svc.test:{port}/")}),
        )
        .await;
    assert_eq!(outcome.code(), "ok", "{outcome:?}");
    assert_eq!(harness.connector.take_asked(), vec![server.addr()]);
    assert_eq!(dns.a_queries("svc.test"), 1);
    assert_eq!(server.requests().len(), 1);
}
