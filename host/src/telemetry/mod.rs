//! Telemetry over OTLP/HTTP (protobuf): one trace per invocation (a span
//! for the call, a child span per outgoing request) and a log record per
//! denial, sent to the collector `[telemetry] otlp` names.
//!
//! Export never slows or fails an invocation: a finished invocation is
//! summarised into a bounded queue (a full queue drops it and counts the
//! drop) and a thread of its own exports from there; an export that fails
//! counts its spans and records as dropped too. What is exported is
//! metadata only: never inputs, outputs, URLs' paths or secrets.

mod export;
mod summary;

pub use summary::{EgressSummary, InvocationSummary};

use serde::Deserialize;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// How many finished invocations may wait for export.
const QUEUE: usize = 4096;

/// Where telemetry goes (the `[telemetry]` table).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TelemetrySettings {
    endpoint: url::Url,
}

/// Why the `[telemetry]` table is refused.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TelemetryError {
    /// Not a URL.
    #[error(
        "`otlp` is not a URL ({reason}): write the collector's OTLP/HTTP base, e.g. \"http://127.0.0.1:4318\""
    )]
    NotAUrl {
        /// What the parser said.
        reason: String,
    },
    /// A scheme other than `http`.
    #[error(
        "`otlp` must be an http:// URL (got {scheme}://): run a collector (e.g. the OpenTelemetry Collector) beside airlock and let it forward over TLS"
    )]
    Scheme {
        /// The scheme given.
        scheme: String,
    },
    /// A URL with user information, a query or a fragment.
    #[error(
        "`otlp` takes a scheme, host, port and optional path only (no user, query or fragment)"
    )]
    Extra,
}

impl TelemetryError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            TelemetryError::NotAUrl { .. } => "telemetry_not_a_url",
            TelemetryError::Scheme { .. } => "telemetry_scheme",
            TelemetryError::Extra => "telemetry_url_extra",
        }
    }
}

impl TelemetrySettings {
    /// Settings for the collector at `otlp` (its OTLP/HTTP base: traces go
    /// to `/v1/traces`, logs to `/v1/logs` under it).
    pub fn new(otlp: &str) -> Result<Self, TelemetryError> {
        let endpoint = url::Url::parse(otlp).map_err(|e| TelemetryError::NotAUrl {
            reason: e.to_string(),
        })?;
        if endpoint.scheme() != "http" {
            return Err(TelemetryError::Scheme {
                scheme: endpoint.scheme().to_string(),
            });
        }
        if !endpoint.username().is_empty()
            || endpoint.password().is_some()
            || endpoint.query().is_some()
            || endpoint.fragment().is_some()
        {
            return Err(TelemetryError::Extra);
        }
        Ok(Self { endpoint })
    }

    /// The URL one signal is posted to (`traces` or `logs`).
    fn signal(&self, signal: &str) -> String {
        format!(
            "{}/v1/{signal}",
            self.endpoint.as_str().trim_end_matches('/')
        )
    }

    /// The collector's base URL.
    pub fn endpoint(&self) -> &str {
        self.endpoint.as_str()
    }
}

/// The `[telemetry]` table as written.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct RawTelemetry {
    pub otlp: toml::Spanned<String>,
}

/// Counts since start, as `airlock status` shows them.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct TelemetryStatus {
    /// The collector's base URL.
    pub endpoint: String,
    /// Spans the collector accepted.
    pub spans_exported: u64,
    /// Log records the collector accepted.
    pub logs_exported: u64,
    /// Spans and log records lost: the queue was full, or the export failed.
    pub dropped: u64,
}

#[derive(Debug, Default)]
struct Counters {
    spans: AtomicU64,
    logs: AtomicU64,
    dropped: AtomicU64,
}

/// How long a host being dropped waits for the queue to drain.
const DRAIN: std::time::Duration = std::time::Duration::from_secs(5);

/// A running exporter: the host hands it each finished invocation. Dropped
/// (when the host is), it exports what is queued, waiting up to five
/// seconds.
#[derive(Debug)]
pub struct Telemetry {
    settings: TelemetrySettings,
    queue: Option<tokio::sync::mpsc::Sender<InvocationSummary>>,
    counters: Arc<Counters>,
    drained: std::sync::Mutex<std::sync::mpsc::Receiver<()>>,
}

impl Telemetry {
    /// Starts the export thread for `settings`.
    pub fn start(settings: TelemetrySettings) -> std::io::Result<Self> {
        let (queue, receiver) = tokio::sync::mpsc::channel(QUEUE);
        let counters = Arc::new(Counters::default());
        let (done, drained) = std::sync::mpsc::channel();
        export::spawn(&settings, receiver, Arc::clone(&counters), done)?;
        Ok(Self {
            settings,
            queue: Some(queue),
            counters,
            drained: std::sync::Mutex::new(drained),
        })
    }

    /// Queues `summary` for export; never waits. A full queue drops it.
    pub fn finished(&self, summary: InvocationSummary) {
        let items = summary.items();
        let queued = self
            .queue
            .as_ref()
            .is_some_and(|q| q.try_send(summary).is_ok());
        if !queued {
            self.counters.dropped(items);
        }
    }

    /// Where it exports to.
    pub fn settings(&self) -> &TelemetrySettings {
        &self.settings
    }

    /// What was exported and dropped so far.
    pub fn status(&self) -> TelemetryStatus {
        TelemetryStatus {
            endpoint: self.settings.endpoint().to_string(),
            spans_exported: self.counters.spans.load(Ordering::Relaxed),
            logs_exported: self.counters.logs.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
        }
    }
}

impl Drop for Telemetry {
    fn drop(&mut self) {
        // Closing the queue ends the export thread once it is empty.
        self.queue = None;
        if let Ok(drained) = self.drained.get_mut() {
            let _ = drained.recv_timeout(DRAIN);
        }
    }
}

impl Counters {
    fn dropped(&self, items: u64) {
        let before = self.dropped.fetch_add(items, Ordering::Relaxed);
        // Said once, then at every power of two: a dead collector must not
        // flood the log it is failing to replace.
        let after = before + items;
        if before == 0 || after.ilog2() > before.max(1).ilog2() {
            tracing::warn!(target: "airlock::telemetry", dropped = after, "telemetry dropped (queue full or collector unreachable); invocations are unaffected");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_collector_is_an_http_base_url() {
        let settings = TelemetrySettings::new("http://127.0.0.1:4318/").expect("valid");
        assert_eq!(settings.signal("traces"), "http://127.0.0.1:4318/v1/traces");
        let prefixed = TelemetrySettings::new("http://collector.local:4318/otlp").expect("valid");
        assert_eq!(
            prefixed.signal("logs"),
            "http://collector.local:4318/otlp/v1/logs"
        );
        for (text, code) in [
            ("127.0.0.1:4318", "telemetry_not_a_url"),
            ("https://collector.example:4318", "telemetry_scheme"),
            ("not a url", "telemetry_not_a_url"),
            ("http://user:pw@127.0.0.1:4318", "telemetry_url_extra"),
            ("http://127.0.0.1:4318/?token=x", "telemetry_url_extra"),
        ] {
            let refused = TelemetrySettings::new(text).expect_err(text);
            assert_eq!(refused.code(), code, "{text}");
            assert!(!refused.to_string().contains("pw"), "{refused}");
        }
    }
}
