//! The export thread: turns finished invocations into OTLP spans and log
//! records and posts them, in batches, with the `opentelemetry-otlp`
//! exporters (HTTP, protobuf). It runs on a runtime of its own, so a slow
//! or absent collector never holds a worker that serves invocations.

use super::summary::{EgressSummary, InvocationSummary};
use super::{Counters, TelemetrySettings};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::trace::{
    SpanContext, SpanId, SpanKind, Status, TraceFlags, TraceId, TraceState,
};
use opentelemetry::{InstrumentationScope, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::{
    LogBatch, LogExporter as _, SdkLogRecord, SdkLogger, SdkLoggerProvider,
};
use opentelemetry_sdk::trace::{SpanData, SpanEvents, SpanExporter as _, SpanLinks};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;
use tokio::sync::mpsc::Receiver;

/// At most this many invocations per export.
const BATCH: usize = 256;
/// How long one export may take before its batch counts as dropped.
const TIMEOUT: Duration = Duration::from_secs(5);

/// Starts the thread that exports what `receiver` brings.
pub(super) fn spawn(
    settings: &TelemetrySettings,
    receiver: Receiver<InvocationSummary>,
    counters: Arc<Counters>,
    done: std::sync::mpsc::Sender<()>,
) -> std::io::Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    let (traces, logs) = (settings.signal("traces"), settings.signal("logs"));
    std::thread::Builder::new()
        .name("airlock-telemetry".into())
        .spawn(move || {
            runtime.block_on(run(traces, logs, receiver, counters));
            let _ = done.send(());
        })
        .map(drop)
}

async fn run(
    traces: String,
    logs: String,
    mut receiver: Receiver<InvocationSummary>,
    counters: Arc<Counters>,
) {
    let built = (
        opentelemetry_otlp::SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(traces)
            .with_timeout(TIMEOUT)
            .build(),
        opentelemetry_otlp::LogExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(logs)
            .with_timeout(TIMEOUT)
            .build(),
    );
    let (Ok(mut span_exporter), Ok(mut log_exporter)) = built else {
        tracing::error!(target: "airlock::telemetry", "the OTLP exporter could not be built; telemetry is dropped");
        let mut batch = Vec::new();
        while receiver.recv_many(&mut batch, BATCH).await > 0 {
            batch.drain(..).for_each(|s| counters.dropped(s.items()));
        }
        return;
    };
    let resource = Resource::builder_empty()
        .with_service_name("airlock")
        .with_attribute(KeyValue::new("service.version", env!("CARGO_PKG_VERSION")))
        .build();
    span_exporter.set_resource(&resource);
    log_exporter.set_resource(&resource);
    let scope = InstrumentationScope::builder("airlock")
        .with_version(env!("CARGO_PKG_VERSION"))
        .build();
    // Only makes records: nothing is emitted through it.
    let logger = SdkLoggerProvider::builder()
        .build()
        .logger_with_scope(scope.clone());
    let mut batch = Vec::new();
    while receiver.recv_many(&mut batch, BATCH).await > 0 {
        let mut spans = Vec::new();
        let mut records = Vec::new();
        for summary in batch.drain(..) {
            translate(&summary, &scope, &logger, &mut spans, &mut records);
        }
        let count = spans.len() as u64;
        match span_exporter.export(spans).await {
            Ok(()) => {
                counters.spans.fetch_add(count, Ordering::Relaxed);
            }
            Err(_) => counters.dropped(count),
        }
        if records.is_empty() {
            continue;
        }
        let refs: Vec<(&SdkLogRecord, &InstrumentationScope)> =
            records.iter().map(|record| (record, &scope)).collect();
        let count = refs.len() as u64;
        match log_exporter.export(LogBatch::new(&refs)).await {
            Ok(()) => {
                counters.logs.fetch_add(count, Ordering::Relaxed);
            }
            Err(_) => counters.dropped(count),
        }
    }
}

/// The trace id of an invocation: its ULID's 128 bits, so the id in the
/// journal finds the trace and back.
fn trace_id(invocation_id: &str) -> TraceId {
    match ulid::Ulid::from_string(invocation_id) {
        Ok(ulid) => TraceId::from_bytes(ulid.to_bytes()),
        Err(_) => TraceId::from_bytes(random()),
    }
}

fn random<const N: usize>() -> [u8; N] {
    let mut bytes = [0u8; N];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    bytes
}

fn context(trace: TraceId) -> SpanContext {
    SpanContext::new(
        trace,
        SpanId::from_bytes(random()),
        TraceFlags::SAMPLED,
        false,
        TraceState::default(),
    )
}

fn span(
    name: &'static str,
    context: SpanContext,
    parent: SpanId,
    times: (std::time::SystemTime, std::time::SystemTime),
    attributes: Vec<KeyValue>,
    failed: Option<String>,
    scope: &InstrumentationScope,
) -> SpanData {
    SpanData {
        span_context: context,
        parent_span_id: parent,
        parent_span_is_remote: false,
        span_kind: if parent == SpanId::INVALID {
            SpanKind::Server
        } else {
            SpanKind::Client
        },
        name: name.into(),
        start_time: times.0,
        end_time: times.1,
        attributes,
        dropped_attributes_count: 0,
        events: SpanEvents::default(),
        links: SpanLinks::default(),
        status: failed.map_or(Status::Ok, Status::error),
        instrumentation_scope: scope.clone(),
    }
}

/// One invocation's spans and, for its denials, log records.
fn translate(
    summary: &InvocationSummary,
    scope: &InstrumentationScope,
    logger: &SdkLogger,
    spans: &mut Vec<SpanData>,
    records: &mut Vec<SdkLogRecord>,
) {
    let trace = trace_id(&summary.invocation_id);
    let root = context(trace);
    let attributes = vec![
        KeyValue::new("airlock.invocation_id", summary.invocation_id.clone()),
        KeyValue::new("airlock.tool", summary.tool.clone()),
        KeyValue::new("airlock.world", summary.world.clone()),
        KeyValue::new("airlock.principal", summary.principal.clone()),
        KeyValue::new("airlock.outcome", summary.outcome),
        KeyValue::new("airlock.reason", summary.reason.clone()),
    ];
    let failed = (summary.outcome != "completed").then(|| summary.reason.clone());
    if summary.outcome == "denied" {
        records.push(denial(
            logger,
            "invocation.denied",
            summary,
            (trace, root.span_id()),
            summary.ended,
            vec![KeyValue::new("airlock.reason", summary.reason.clone())],
        ));
    }
    for egress in &summary.egress {
        let child = context(trace);
        let attributes = egress_attributes(egress);
        if egress.decision == "deny" {
            records.push(denial(
                logger,
                "egress.denied",
                summary,
                (trace, child.span_id()),
                egress.at,
                attributes.clone(),
            ));
        }
        spans.push(span(
            "egress",
            child,
            root.span_id(),
            (egress.at, egress.at + egress.duration),
            attributes,
            egress.reason.map(str::to_string),
            scope,
        ));
    }
    spans.push(span(
        "invocation",
        root,
        SpanId::INVALID,
        (summary.started, summary.ended),
        attributes,
        failed,
        scope,
    ));
}

fn egress_attributes(egress: &EgressSummary) -> Vec<KeyValue> {
    let mut attributes = vec![
        KeyValue::new("airlock.egress.decision", egress.decision),
        KeyValue::new("http.request.method", egress.method.clone()),
        KeyValue::new("airlock.egress.bytes_up", egress.bytes_up as i64),
        KeyValue::new("airlock.egress.bytes_down", egress.bytes_down as i64),
        KeyValue::new(
            "airlock.egress.duration_ms",
            egress.duration.as_secs_f64() * 1000.0,
        ),
    ];
    if let Some(host) = &egress.host {
        attributes.push(KeyValue::new("server.address", host.clone()));
    }
    if let Some(port) = egress.port {
        attributes.push(KeyValue::new("server.port", i64::from(port)));
    }
    if let Some(reason) = egress.reason {
        attributes.push(KeyValue::new("airlock.egress.reason", reason));
    }
    if let Some(status) = egress.status {
        attributes.push(KeyValue::new(
            "http.response.status_code",
            i64::from(status),
        ));
    }
    attributes
}

/// A log record for a denial, in the trace of the span it belongs to.
fn denial(
    logger: &SdkLogger,
    event: &'static str,
    summary: &InvocationSummary,
    (trace, span): (TraceId, SpanId),
    at: std::time::SystemTime,
    attributes: Vec<KeyValue>,
) -> SdkLogRecord {
    let mut record = logger.create_log_record();
    record.set_event_name(event);
    record.set_timestamp(at);
    record.set_observed_timestamp(at);
    record.set_severity_number(Severity::Warn);
    record.set_severity_text("WARN");
    record.set_body(AnyValue::from(event));
    record.set_trace_context(trace, span, Some(TraceFlags::SAMPLED));
    record.add_attribute("airlock.invocation_id", summary.invocation_id.clone());
    record.add_attribute("airlock.tool", summary.tool.clone());
    record.add_attribute("airlock.principal", summary.principal.clone());
    for KeyValue { key, value, .. } in attributes {
        record.add_attribute(key, any(value));
    }
    record
}

fn any(value: opentelemetry::Value) -> AnyValue {
    match value {
        opentelemetry::Value::Bool(b) => AnyValue::Boolean(b),
        opentelemetry::Value::I64(i) => AnyValue::Int(i),
        opentelemetry::Value::F64(f) => AnyValue::Double(f),
        other => AnyValue::String(other.as_str().into_owned().into()),
    }
}
