//! Live requests through the `http-get` guest and the hook, against loopback
//! servers that behave well or badly.

use airlock::egress::StaticResolver;
use airlock::egress::{Reason, Verdict};
use airlock::{EgressRecord, Outcome};
use airlock_tests::net::SwitchResolver;
use airlock_tests::net::{
    Behaviour, EgressHarness, GuardedConnector, HangingConnector, TestServer,
};
use serde_json::{Value, json};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;
use std::time::Duration;

const SVC: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

/// A grant for `svc.test` on `port`, opted into loopback, plus `extra` TOML.
fn grant(port: u16, extra: &str) -> String {
    format!("{extra}\n[[allow]]\nhost = \"svc.test\"\nprivate = true\nports = [{port}]\n")
}

fn answer(resolver: &SwitchResolver, name: &str, ip: Ipv4Addr) {
    resolver.set(StaticResolver::new().with(name, [IpAddr::V4(ip)]));
}

/// An echo-or-worse server on 127.0.0.2 and its port.
async fn serve(behaviour: Behaviour) -> (TestServer, u16) {
    let server = TestServer::start(SVC, 0, behaviour).await.expect("server");
    let port = server.addr().port();
    (server, port)
}

/// `http://svc.test:{port}/`, fetched under `grant(port, budget)`.
async fn get(harness: &EgressHarness, port: u16, budget: &str) -> Outcome {
    let input = json!({ "url": format!("http://svc.test:{port}/") });
    harness.fetch(&grant(port, budget), input).await
}

fn only_record(outcome: &Outcome) -> &EgressRecord {
    let records = &outcome.report().egress;
    assert_eq!(records.len(), 1, "{records:#?}");
    &records[0]
}

fn output(outcome: &Outcome) -> Value {
    serde_json::from_str(
        outcome
            .output()
            .unwrap_or_else(|| panic!("not completed: {outcome:?}")),
    )
    .expect("JSON")
}

#[tokio::test]
async fn an_allowed_request_reaches_the_server_with_host_and_origin_form_set_by_the_host() {
    let (server, port) = serve(Behaviour::Echo).await;
    let harness = EgressHarness::new();
    answer(&harness.resolver, "svc.test", SVC);
    let outcome = harness
        .fetch(
            &grant(port, ""),
            json!({"url": format!("http://SVC.test.:{port}/hello?x=1")}),
        )
        .await;
    let seen = output(&outcome);
    assert_eq!(seen["status"], 200);
    let echoed: Value =
        serde_json::from_str(seen["body"].as_str().expect("body")).expect("echo JSON");
    assert_eq!(echoed["target"], "/hello?x=1", "origin-form, not absolute");
    assert!(
        echoed["headers"]
            .as_array()
            .expect("headers")
            .contains(&json!(["host", format!("svc.test:{port}")]))
    );

    assert_eq!(harness.connector.take_asked(), vec![server.addr()]);
    let record = only_record(&outcome);
    assert_eq!(record.verdict, Verdict::Allow);
    assert_eq!(record.reason, None);
    assert_eq!(record.host.as_deref(), Some("svc.test"));
    assert_eq!(record.connected, Some(server.addr()));
    assert_eq!(record.status, Some(200));
    assert!(record.bytes_down > 0);
    assert!(
        record
            .rule
            .as_deref()
            .is_some_and(|r| r.contains("svc.test") && r.contains("test-grant.toml:2"))
    );
    assert_eq!(record.invocation_id, outcome.report().invocation_id);
    assert_eq!(record.tool, "http-get");
}

#[tokio::test]
async fn denials_carry_distinct_wasi_codes_and_never_connect() {
    let harness = EgressHarness::new();
    // http-get reports policy refusals as `denied` and DNS failures as `failed`.
    let cases = [
        (
            "[[allow]]\nhost = \"svc.test\"\n",
            "http://other.test/",
            "HttpRequestDenied",
            Reason::HostNotAllowed,
        ),
        (
            "[[allow]]\nhost = \"svc.test\"\n",
            "http://svc.test:8080/",
            "HttpRequestDenied",
            Reason::PortNotAllowed,
        ),
        (
            "[[allow]]\nhost = \"svc.test\"\nschemes = [\"https\"]\n",
            "http://svc.test/",
            "HttpRequestDenied",
            Reason::SchemeNotAllowed,
        ),
        (
            "[[allow]]\nhost = \"svc.test\"\n",
            "http://svc.test/",
            "DestinationIpProhibited",
            Reason::PrivateAddress,
        ),
        (
            "[[allow]]\nhost = \"gone.test\"\n",
            "http://gone.test/",
            "DnsError",
            Reason::DnsFailed,
        ),
        (
            "[[allow]]\ncidr = \"0.0.0.0/0\"\n",
            "http://169.254.169.254/latest/meta-data/",
            "DestinationIpProhibited",
            Reason::MetadataAddress,
        ),
        (
            "[[allow]]\nhost = \"svc.test\"\n",
            "http://user@svc.test/",
            "HttpRequestDenied",
            Reason::UserinfoNotAllowed,
        ),
        (
            "[[allow]]\nhost = \"svc.test\"\n",
            "ftp://svc.test/",
            "HttpRequestDenied",
            Reason::SchemeNotAllowed,
        ),
    ];
    for (grant, url, wasi_code, reason) in cases {
        answer(&harness.resolver, "svc.test", SVC);
        let outcome = harness.fetch(grant, json!({"url": url})).await;
        let tool_code = if reason == Reason::DnsFailed {
            "tool_failed"
        } else {
            "tool_denied"
        };
        assert_eq!(outcome.code(), tool_code, "{url}: {outcome:?}");
        assert!(
            outcome.message().unwrap_or_default().contains(wasi_code),
            "{url}: {:?}",
            outcome.message()
        );
        let record = only_record(&outcome);
        assert_eq!(
            (record.verdict, record.reason),
            (Verdict::Deny, Some(reason)),
            "{url}"
        );
        assert!(
            harness.connector.take_asked().is_empty(),
            "{url}: a connection was attempted"
        );
    }
}

#[tokio::test]
async fn response_bodies_are_capped_also_when_announced() {
    let harness = EgressHarness::new();
    answer(&harness.resolver, "svc.test", SVC);
    let cases = [
        (Behaviour::Endless, "max_response_bytes = \"64KiB\"", true),
        (Behaviour::Sized(2 << 20), "", false),
        (
            Behaviour::Lying {
                claimed: 50_000_000,
                sent: 16,
            },
            "",
            false,
        ),
    ];
    for (behaviour, budget, streamed) in cases {
        let (_server, port) = serve(behaviour.clone()).await;
        let outcome = harness
            .fetch(
                &grant(port, budget),
                json!({"url": format!("http://svc.test:{port}/"), "max_body_bytes": 1 << 30}),
            )
            .await;
        // Refused on `Content-Length`, the guest gets the `wasi:http` error
        // code; cut off mid-stream, wasmtime 48 hands the guest a stream error
        // that carries only the text.
        let (code, text) = if streamed {
            ("tool_failed", "response body size exceeds limit")
        } else {
            ("tool_denied", "HttpResponseBodySize")
        };
        assert_eq!(outcome.code(), code, "{behaviour:?}: {outcome:?}");
        assert!(
            outcome.message().unwrap_or_default().contains(text),
            "{behaviour:?}: {:?}",
            outcome.message()
        );
        let record = only_record(&outcome);
        assert_eq!(
            record.reason,
            Some(Reason::ResponseTooLarge),
            "{behaviour:?}"
        );
        if streamed {
            assert!(
                record.bytes_down <= 64 * 1024 && record.bytes_down > 0,
                "{}",
                record.bytes_down
            );
        } else {
            assert_eq!(
                record.bytes_down, 0,
                "refused on Content-Length before reading"
            );
        }
    }
}

#[tokio::test]
async fn a_short_body_is_a_protocol_error() {
    let harness = EgressHarness::new();
    answer(&harness.resolver, "svc.test", SVC);
    let (_server, port) = serve(Behaviour::Lying {
        claimed: 100,
        sent: 10,
    })
    .await;
    let outcome = get(&harness, port, "").await;
    assert_eq!(outcome.code(), "tool_failed", "{outcome:?}");
    assert_eq!(only_record(&outcome).reason, Some(Reason::ProtocolError));
}

#[tokio::test]
async fn timeouts_hold_and_the_guest_can_only_tighten_them() {
    let harness = EgressHarness::new();
    answer(&harness.resolver, "svc.test", SVC);
    let silent = TestServer::start(SVC, 0, Behaviour::Silent)
        .await
        .expect("server");
    let drip = TestServer::start(
        SVC,
        0,
        Behaviour::Drip {
            every: Duration::from_millis(400),
            count: 10,
        },
    )
    .await
    .expect("server");
    let cases = [
        // The grant's own limits.
        (
            silent.addr().port(),
            "first_byte_timeout = \"200ms\"",
            json!({}),
            Reason::FirstByteTimeout,
        ),
        (
            drip.addr().port(),
            "between_bytes_timeout = \"100ms\"",
            json!({}),
            Reason::BetweenBytesTimeout,
        ),
        // A guest asking for longer gets the grant's limit.
        (
            silent.addr().port(),
            "first_byte_timeout = \"200ms\"",
            json!({"first_byte": 60_000}),
            Reason::FirstByteTimeout,
        ),
        // A guest asking for shorter gets it.
        (
            silent.addr().port(),
            "",
            json!({"first_byte": 200}),
            Reason::FirstByteTimeout,
        ),
        (
            drip.addr().port(),
            "",
            json!({"between_bytes": 100}),
            Reason::BetweenBytesTimeout,
        ),
    ];
    for (port, budget, timeouts, reason) in cases {
        let input = json!({"url": format!("http://svc.test:{port}/"), "timeouts_ms": timeouts});
        let outcome = harness.fetch(&grant(port, budget), input).await;
        assert_eq!(
            outcome.code(),
            "tool_failed",
            "{budget} {timeouts}: {outcome:?}"
        );
        // `ConnectionReadTimeout` before the head; the same as stream text after it.
        let message = outcome
            .message()
            .unwrap_or_default()
            .to_lowercase()
            .replace(' ', "");
        assert!(message.contains("connectionreadtimeout"), "{message}");
        assert_eq!(
            only_record(&outcome).reason,
            Some(reason),
            "{budget} {timeouts}"
        );
    }
}

#[tokio::test]
async fn a_connect_that_never_completes_times_out() {
    let harness =
        EgressHarness::with_connector(Arc::new(GuardedConnector::new(Arc::new(HangingConnector))));
    answer(&harness.resolver, "svc.test", SVC);
    let outcome = harness
        .fetch(
            &grant(9, "connect_timeout = \"150ms\""),
            json!({"url": "http://svc.test:9/"}),
        )
        .await;
    assert_eq!(outcome.code(), "tool_failed", "{outcome:?}");
    assert!(
        outcome
            .message()
            .unwrap_or_default()
            .contains("ConnectionTimeout")
    );
    assert_eq!(only_record(&outcome).reason, Some(Reason::ConnectTimeout));
    assert_eq!(harness.connector.take_asked().len(), 1);
}

#[tokio::test]
async fn requests_per_invocation_are_counted() {
    let harness = EgressHarness::new();
    answer(&harness.resolver, "svc.test", SVC);
    let (server, port) = serve(Behaviour::Echo).await;
    let outcome = harness
        .fetch(
            &grant(port, "max_requests = 2"),
            json!({"url": format!("http://svc.test:{port}/"), "repeat": 3}),
        )
        .await;
    assert_eq!(outcome.code(), "tool_denied");
    let verdicts: Vec<_> = outcome
        .report()
        .egress
        .iter()
        .map(|r| (r.verdict, r.reason))
        .collect();
    assert_eq!(
        verdicts,
        vec![
            (Verdict::Allow, None),
            (Verdict::Allow, None),
            (Verdict::Deny, Some(Reason::TooManyRequests))
        ]
    );
    assert_eq!(server.requests().len(), 2);
}

#[tokio::test]
async fn request_bodies_are_capped() {
    let harness = EgressHarness::new();
    answer(&harness.resolver, "svc.test", SVC);
    let (_server, port) = serve(Behaviour::Echo).await;
    let url = format!("http://svc.test:{port}/upload");
    let small = harness
        .fetch(
            &grant(port, "max_request_bytes = 100"),
            json!({"url": url, "method": "POST", "body": "x".repeat(100)}),
        )
        .await;
    assert_eq!(output(&small)["status"], 200);
    assert_eq!(only_record(&small).bytes_up, 100);

    let large = harness
        .fetch(
            &grant(port, "max_request_bytes = 100"),
            json!({"url": url, "method": "POST", "body": "x".repeat(10_000)}),
        )
        .await;
    assert_eq!(large.code(), "tool_denied", "{large:?}");
    assert!(
        large
            .message()
            .unwrap_or_default()
            .contains("HttpRequestBodySize"),
        "{:?}",
        large.message()
    );
    assert_eq!(only_record(&large).reason, Some(Reason::RequestTooLarge));
}

#[tokio::test]
async fn the_rate_limit_paces_bytes() {
    let harness = EgressHarness::new();
    answer(&harness.resolver, "svc.test", SVC);
    let (_server, port) = serve(Behaviour::Sized(200_000)).await;
    let outcome = get(&harness, port, "bytes_per_second = 100000").await;
    assert_eq!(outcome.code(), "ok", "{outcome:?}");
    let record = only_record(&outcome);
    assert_eq!(record.bytes_down, 200_000);
    // One second of burst, then 100 kB/s: the second 100 kB takes a second.
    assert!(
        record.duration >= Duration::from_millis(950),
        "{:?}",
        record.duration
    );
}

#[tokio::test]
async fn a_followed_redirect_is_a_new_request_that_passes_the_policy_again() {
    let harness = EgressHarness::new();
    answer(&harness.resolver, "svc.test", SVC);
    let target = TestServer::start(Ipv4Addr::new(127, 0, 0, 3), 0, Behaviour::Echo)
        .await
        .expect("server");
    let redirect = TestServer::start(
        SVC,
        0,
        Behaviour::Redirect(format!("http://127.0.0.3:{}/next", target.addr().port())),
    )
    .await
    .expect("server");
    let port = redirect.addr().port();
    let input = json!({"url": format!("http://svc.test:{port}/start"), "follow_redirects": 1});

    let outcome = harness.fetch(&grant(port, ""), input.clone()).await;
    assert_eq!(outcome.code(), "tool_denied");
    let reasons: Vec<_> = outcome.report().egress.iter().map(|r| r.reason).collect();
    assert_eq!(reasons, vec![None, Some(Reason::HostNotAllowed)]);
    assert!(
        target.requests().is_empty(),
        "the redirect target was reached without a grant"
    );

    let both = format!(
        "{}\n[[allow]]\nhost = \"127.0.0.3\"\nprivate = true\nports = [{}]\n",
        grant(port, ""),
        target.addr().port()
    );
    let outcome = harness.fetch(&both, input).await;
    assert_eq!(output(&outcome)["requests"], 2);
    assert_eq!(target.requests().len(), 1);
}

/// Collects what a `tracing` fmt subscriber writes.
#[derive(Clone, Default)]
struct Captured(Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("log").extend_from_slice(bytes);
        Ok(bytes.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[test]
fn every_request_emits_one_canonical_event() {
    let log = Captured::default();
    let writer = log.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_writer(move || writer.clone())
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .finish();
    // With a single dispatcher registered, `tracing` caches a callsite's
    // interest from whichever thread reaches it first: another test's
    // thread (no subscriber) would switch the egress events off for this
    // one. A second registered dispatcher makes it ask every subscriber.
    let _second = tracing::Dispatch::new(tracing::subscriber::NoSubscriber::default());
    // One thread, so the hook's tasks run under this subscriber.
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    tracing::subscriber::with_default(subscriber, || {
        runtime.block_on(async {
            let harness = EgressHarness::new();
            answer(&harness.resolver, "svc.test", SVC);
            let (_server, port) = serve(Behaviour::Echo).await;
            assert_eq!(get(&harness, port, "").await.code(), "ok");
            let denied = harness
                .fetch(
                    &grant(port, ""),
                    json!({"url": "http://elsewhere.test/?token=hunter2"}),
                )
                .await;
            assert_eq!(denied.code(), "tool_denied");
        });
    });
    let text = String::from_utf8(log.0.lock().expect("log").clone()).expect("utf-8");
    let allowed: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("event=\"egress.allowed\""))
        .collect();
    let denied: Vec<&str> = text
        .lines()
        .filter(|l| l.contains("event=\"egress.denied\""))
        .collect();
    assert_eq!((allowed.len(), denied.len()), (1, 1), "{text}");
    assert!(
        allowed[0].contains("host=\"svc.test\"") && allowed[0].contains("status=200"),
        "{}",
        allowed[0]
    );
    assert!(
        denied[0].contains("deny_reason=\"host_not_allowed\"")
            && denied[0].contains("host=\"elsewhere.test\""),
        "{}",
        denied[0]
    );
    assert!(
        !text.contains("hunter2"),
        "a query string reached the log: {text}"
    );
}
