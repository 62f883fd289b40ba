//! An OTLP/HTTP (protobuf) collector on loopback: it keeps every export it
//! receives and decodes them with the `opentelemetry-proto` types. The
//! telemetry tests read what airlock sent from it; `otlp-print` prints it
//! for a person trying `[telemetry]` out.

use http_body_util::BodyExt as _;
use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
use opentelemetry_proto::tonic::collector::trace::v1::ExportTraceServiceRequest;
use opentelemetry_proto::tonic::common::v1::{KeyValue, any_value::Value as Any};
use opentelemetry_proto::tonic::logs::v1::LogRecord;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use std::sync::{Arc, Mutex};

/// One export as received: its path (`/v1/traces`, `/v1/logs`) and body.
pub type Export = (String, Vec<u8>);

/// Every export the collector received, in order.
#[derive(Clone, Default)]
pub struct Received(Arc<Mutex<Vec<Export>>>);

impl Received {
    /// The raw exports.
    pub fn exports(&self) -> Vec<Export> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn bodies(&self, path: &str) -> Vec<Vec<u8>> {
        self.exports()
            .into_iter()
            .filter(|(p, _)| p == path)
            .map(|(_, body)| body)
            .collect()
    }

    /// Every span received.
    pub fn spans(&self) -> Vec<Span> {
        self.bodies("/v1/traces")
            .iter()
            .flat_map(|body| decode_spans(body))
            .collect()
    }

    /// Every log record received.
    pub fn logs(&self) -> Vec<LogRecord> {
        self.bodies("/v1/logs")
            .iter()
            .flat_map(|body| decode_logs(body))
            .collect()
    }
}

/// The spans of one `/v1/traces` body.
pub fn decode_spans(body: &[u8]) -> Vec<Span> {
    ExportTraceServiceRequest::decode(body)
        .expect("OTLP protobuf traces")
        .resource_spans
        .into_iter()
        .flat_map(|r| r.scope_spans)
        .flat_map(|s| s.spans)
        .collect()
}

/// The log records of one `/v1/logs` body.
pub fn decode_logs(body: &[u8]) -> Vec<LogRecord> {
    ExportLogsServiceRequest::decode(body)
        .expect("OTLP protobuf logs")
        .resource_logs
        .into_iter()
        .flat_map(|r| r.scope_logs)
        .flat_map(|s| s.log_records)
        .collect()
}

/// Serves `listener` as a collector that answers 200 to every export,
/// calling `seen` with each as it arrives.
pub async fn collect(
    listener: tokio::net::TcpListener,
    seen: impl Fn(&Export) + Clone + Send + Sync + 'static,
) -> Received {
    let received = Received::default();
    let keep = received.clone();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let keep = keep.clone();
            let seen = seen.clone();
            let service = hyper::service::service_fn(
                move |request: hyper::Request<hyper::body::Incoming>| {
                    let keep = keep.clone();
                    let seen = seen.clone();
                    async move {
                        let path = request.uri().path().to_string();
                        let body = request.into_body().collect().await?.to_bytes().to_vec();
                        let export = (path, body);
                        seen(&export);
                        keep.0
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(export);
                        Ok::<_, hyper::Error>(hyper::Response::new(http_body_util::Full::new(
                            hyper::body::Bytes::new(),
                        )))
                    }
                },
            );
            tokio::spawn(
                hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service),
            );
        }
    });
    received
}

/// A collector on a free loopback port: its base URL and what it receives.
pub async fn collector() -> (String, Received) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a loopback port");
    let url = format!("http://{}", listener.local_addr().expect("address"));
    (url, collect(listener, |_| {}).await)
}

/// An attribute's value as text.
pub fn attribute(attributes: &[KeyValue], key: &str) -> Option<String> {
    let value = attributes.iter().find(|kv| kv.key == key)?.value.as_ref()?;
    Some(match value.value.as_ref()? {
        Any::StringValue(s) => s.clone(),
        Any::IntValue(i) => i.to_string(),
        Any::DoubleValue(d) => d.to_string(),
        Any::BoolValue(b) => b.to_string(),
        other => format!("{other:?}"),
    })
}

/// `key=value` for every attribute, for a one-line print.
pub fn attributes_line(attributes: &[KeyValue]) -> String {
    attributes
        .iter()
        .filter_map(|kv| Some(format!("{}={}", kv.key, attribute(attributes, &kv.key)?)))
        .collect::<Vec<_>>()
        .join(" ")
}
