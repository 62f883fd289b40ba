//! Telemetry over OTLP/HTTP: an in-test collector on loopback decodes
//! what `airlock serve` sends with the `opentelemetry-proto` types. One
//! trace per invocation with a child span per outgoing request, a log
//! record per denial, nothing of inputs or outputs; a collector that is
//! down costs invocations nothing and shows as dropped in `airlock status`.

use super::fixture::{self, Fixture, Recorder, Server, printed};
use super::{PATIENCE, call_allowed, call_tool, text};
use airlock_tests::otlp::{attribute, collector};
use opentelemetry_proto::tonic::trace::v1::Span;
use serde_json::{Value, json};

/// Waits until `ready` holds (bounded by [`PATIENCE`]).
async fn until(what: &str, mut ready: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !ready() {
        assert!(tokio::time::Instant::now() < deadline, "{what}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn by_tool<'s>(spans: &'s [Span], tool: &str) -> Vec<&'s Span> {
    spans
        .iter()
        .filter(|s| {
            s.name == "invocation"
                && attribute(&s.attributes, "airlock.tool").as_deref() == Some(tool)
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn each_invocation_is_a_trace_with_its_requests_and_denials() {
    const MARKER: &str = "input-marker-7f3a";
    let (otlp, received) = collector().await;
    let upstream = fixture::upstream().await;
    let port = upstream.addr().port();
    let mut fixture = Fixture::with_upstream("", port);
    fixture.prepend(&format!("[telemetry]\notlp = {otlp:?}"));
    let server = Server::http(&fixture).await;
    let token = server.add_agent("claude");
    let client = server.connect(&token, Recorder::new()).await;

    let echoed = call_tool(client.peer(), "echo", json!({ "marker": MARKER })).await;
    assert_eq!(echoed.is_error, Some(false), "{}", text(&echoed));
    let allowed = format!("http://svc.test:{port}/{MARKER}");
    let fetched = call_allowed(&server, &client, "fetch", json!({ "url": allowed }), "once").await;
    assert_eq!(fetched.is_error, Some(false), "{}", text(&fetched));
    let denied = call_allowed(
        &server,
        &client,
        "fetch",
        json!({ "url": "http://169.254.169.254/latest/meta-data" }),
        "once",
    )
    .await;
    assert!(text(&denied).contains("denied"), "{}", text(&denied));

    until("the collector did not receive both fetches", || {
        by_tool(&received.spans(), "fetch").len() == 2 && !received.logs().is_empty()
    })
    .await;
    let spans = received.spans();
    let echo = by_tool(&spans, "echo");
    assert_eq!(echo.len(), 1, "one trace per invocation");
    let echo = echo[0];
    for (key, value) in [
        ("airlock.outcome", "completed"),
        ("airlock.reason", "ok"),
        ("airlock.principal", "Agent::\"claude\""),
        ("airlock.world", "pure"),
    ] {
        assert_eq!(
            attribute(&echo.attributes, key).as_deref(),
            Some(value),
            "{key}"
        );
    }
    assert!(echo.parent_span_id.is_empty(), "the invocation is the root");
    // Its trace id is the invocation id's 128 bits.
    let id = attribute(&echo.attributes, "airlock.invocation_id").expect("id");
    let ulid = ulid::Ulid::from_string(&id).expect("a ULID");
    assert_eq!(echo.trace_id, ulid.to_bytes().to_vec());

    // Each fetch: a root and one child per request, in the same trace.
    let children = |root: &Span| -> Vec<Span> {
        spans
            .iter()
            .filter(|s| s.trace_id == root.trace_id && s.parent_span_id == root.span_id)
            .cloned()
            .collect()
    };
    let fetches = by_tool(&spans, "fetch");
    // The one request of the fetch whose request got `decision`.
    let request_with = |decision: &str| -> Span {
        let request = fetches.iter().flat_map(|root| children(root)).find(|c| {
            attribute(&c.attributes, "airlock.egress.decision").as_deref() == Some(decision)
        });
        request.unwrap_or_else(|| panic!("no {decision} request"))
    };
    let request = &request_with("allow");
    assert_eq!(request.name, "egress");
    assert_eq!(
        attribute(&request.attributes, "server.address").as_deref(),
        Some("svc.test")
    );
    assert_eq!(
        attribute(&request.attributes, "server.port"),
        Some(port.to_string())
    );
    assert_eq!(
        attribute(&request.attributes, "http.response.status_code").as_deref(),
        Some("200")
    );
    let down: u64 = attribute(&request.attributes, "airlock.egress.bytes_down")
        .and_then(|b| b.parse().ok())
        .expect("bytes");
    assert!(down > 0);
    assert!(request.end_time_unix_nano >= request.start_time_unix_nano);

    let refused = &request_with("deny");
    let reason = attribute(&refused.attributes, "airlock.egress.reason").expect("a reason code");
    // The denial is a log record in the same trace, on the request's span.
    let logs = received.logs();
    let record = logs
        .iter()
        .find(|l| l.trace_id == refused.trace_id && l.span_id == refused.span_id)
        .expect("a log record for the denial");
    assert_eq!(record.event_name, "egress.denied");
    assert_eq!(
        attribute(&record.attributes, "airlock.egress.reason"),
        Some(reason)
    );

    // Metadata only: neither the input nor the URL's path nor the output.
    for (_, body) in received.exports() {
        let text = String::from_utf8_lossy(&body);
        assert!(
            !text.contains(MARKER),
            "an input or output reached the collector"
        );
        assert!(!text.contains("meta-data"));
    }
    let status: Value =
        serde_json::from_slice(&server.airlock(&["status", "--json"]).stdout).expect("JSON");
    assert!(
        status["telemetry"]["spans_exported"].as_u64() >= Some(5),
        "{status}"
    );
    assert_eq!(status["telemetry"]["dropped"], 0, "{status}");
    client.cancel().await.expect("close");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_collector_that_is_down_costs_invocations_nothing() {
    // A port nothing listens on: every export fails at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    let mut fixture = Fixture::new("");
    fixture.prepend(&format!("[telemetry]\notlp = \"http://{closed}\""));
    let server = Server::http(&fixture).await;
    let token = server.add_agent("claude");
    let client = server.connect(&token, Recorder::new()).await;
    for n in 0..20 {
        let echoed = call_tool(client.peer(), "echo", json!({ "n": n })).await;
        assert_eq!(echoed.is_error, Some(false), "{}", text(&echoed));
    }
    let status = || -> Value {
        let out = server.airlock(&["status", "--json"]);
        assert!(out.status.success(), "{}", printed(&out));
        serde_json::from_slice(&out.stdout).expect("JSON")
    };
    until("drops were not counted", || {
        status()["telemetry"]["dropped"].as_u64() >= Some(20)
    })
    .await;
    assert_eq!(status()["telemetry"]["spans_exported"], 0);
    let human = server.airlock(&["status"]);
    assert!(printed(&human).contains("dropped"), "{}", printed(&human));
    client.cancel().await.expect("close");
}
