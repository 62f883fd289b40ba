//! One canonical record per outgoing request, allowed or denied, with fixed
//! field names: returned in the invocation's report and emitted as a
//! `tracing` event (`egress.allowed` / `egress.denied`).
//!
//! A record never holds a path, query, header or body: those are where a
//! tool would put what it tries to smuggle out, and where credentials live.

use super::decide::{Denial, PinnedTarget, Reason};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant, SystemTime};

/// Allowed or denied, as decided by the policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// The policy allowed it (it may still have failed: see `reason`).
    Allow,
    /// The policy denied it; nothing was dialled.
    Deny,
}

impl Verdict {
    /// `allow` or `deny`.
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Allow => "allow",
            Verdict::Deny => "deny",
        }
    }
}

/// What happened to one outgoing request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct EgressRecord {
    /// The tool's name.
    pub tool: String,
    /// The invocation the request belongs to.
    pub invocation_id: String,
    /// HTTP method.
    pub method: String,
    /// `http` or `https`, if the URL parsed.
    pub scheme: Option<String>,
    /// Normalised host, if the URL parsed.
    pub host: Option<String>,
    /// Port, if the URL parsed.
    pub port: Option<u16>,
    /// SHA-256 (hex) of the path and query, if a request had one (not a
    /// `CONNECT`): which resource, comparable across records, without
    /// writing the path out. Unkeyed: a path that can be guessed can be
    /// confirmed by hashing the guess.
    pub path_sha256: Option<String>,
    /// Every address the name resolved to (checked, for an allowed request).
    pub addresses: Vec<IpAddr>,
    /// The address actually connected to.
    pub connected: Option<SocketAddr>,
    /// Allow or deny.
    pub verdict: Verdict,
    /// Why it was denied, or why an allowed request failed.
    pub reason: Option<Reason>,
    /// The rule that matched, as written (`host = "…" (file:line)`).
    pub rule: Option<String>,
    /// The response status, if one arrived.
    pub status: Option<u16>,
    /// The vault secrets the host injected (their names, never values).
    pub credentials: Vec<String>,
    /// Request body bytes sent.
    pub bytes_up: u64,
    /// Response body bytes received.
    pub bytes_down: u64,
    /// When it was decided.
    pub at: SystemTime,
    /// From the decision to the end of the response body.
    pub duration: Duration,
}

impl EgressRecord {
    /// The record as JSON with fixed field names (reason codes as in
    /// `airlock egress check`), as journaled and printed by `run --json`.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::json!({
            "tool": self.tool,
            "invocation_id": self.invocation_id,
            "method": self.method,
            "scheme": self.scheme,
            "host": self.host,
            "port": self.port,
            "path_sha256": self.path_sha256,
            "addresses": self.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
            "connected": self.connected.map(|a| a.to_string()),
            "decision": self.verdict.as_str(),
            "reason": self.reason.map(Reason::code),
            "rule": self.rule,
            "status": self.status,
            "credentials": self.credentials,
            "bytes_up": self.bytes_up,
            "bytes_down": self.bytes_down,
            "duration_ms": self.duration.as_secs_f64() * 1000.0,
        })
    }

    /// Emits the canonical `tracing` event for this record:
    /// `egress.allowed` (with `error` if it failed) or `egress.denied` (with
    /// `deny_reason`), fixed field names either way.
    pub fn emit(&self) {
        let reason = self.reason.map(Reason::code);
        let (event, deny_reason, error) = match self.verdict {
            Verdict::Allow => ("egress.allowed", None, reason),
            Verdict::Deny => ("egress.denied", reason, None),
        };
        tracing::info!(
            target: "airlock::egress",
            event,
            tool = %self.tool,
            invocation_id = %self.invocation_id,
            method = %self.method,
            scheme = self.scheme.as_deref(),
            host = self.host.as_deref(),
            port = self.port,
            connected = self.connected.map(|a| a.to_string()),
            rule = self.rule.as_deref(),
            status = self.status,
            credentials = ?self.credentials,
            deny_reason,
            error,
            bytes_up = self.bytes_up,
            bytes_down = self.bytes_down,
            duration_ms = self.duration.as_secs_f64() * 1000.0,
            "{event}"
        );
    }
}

impl EgressRecord {
    /// Fills in where the request went.
    fn target(&mut self, target: &crate::url::Target) {
        use sha2::Digest as _;
        self.scheme = Some(target.scheme.to_string());
        self.host = Some(target.host.to_string());
        self.port = Some(target.port);
        if self.method != "CONNECT" {
            let digest = sha2::Sha256::digest(target.path_and_query.as_bytes());
            self.path_sha256 = Some(hex::encode(digest));
        }
    }
}

struct Entry {
    record: EgressRecord,
    started: Instant,
    finished: bool,
}

/// The records of one invocation, shared by the hook and the bodies it
/// returns.
#[derive(Clone, Default)]
pub(crate) struct EgressLog {
    entries: Arc<Mutex<Vec<Entry>>>,
}

/// A handle on one record, for updates while the request runs.
#[derive(Clone)]
pub(crate) struct RecordHandle {
    log: EgressLog,
    index: usize,
}

/// Who made the request, for every record.
pub(crate) struct Origin<'a> {
    pub tool: &'a str,
    pub invocation_id: &'a str,
    pub method: &'a str,
}

impl EgressLog {
    fn push(&self, record: EgressRecord) -> RecordHandle {
        let mut entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries.push(Entry {
            record,
            started: Instant::now(),
            finished: false,
        });
        RecordHandle {
            log: self.clone(),
            index: entries.len() - 1,
        }
    }

    fn base(origin: &Origin<'_>, verdict: Verdict) -> EgressRecord {
        EgressRecord {
            tool: origin.tool.to_string(),
            invocation_id: origin.invocation_id.to_string(),
            method: origin.method.to_string(),
            scheme: None,
            host: None,
            port: None,
            path_sha256: None,
            addresses: Vec::new(),
            connected: None,
            verdict,
            reason: None,
            rule: None,
            status: None,
            credentials: Vec::new(),
            bytes_up: 0,
            bytes_down: 0,
            at: SystemTime::now(),
            duration: Duration::ZERO,
        }
    }

    /// Records and emits a denial.
    pub(crate) fn deny(&self, origin: &Origin<'_>, denial: &Denial) {
        let mut record = Self::base(origin, Verdict::Deny);
        if let Some(target) = &denial.target {
            record.target(target);
        }
        record.addresses = denial.addresses.clone();
        record.reason = Some(denial.reason);
        record.rule = denial.rule.clone();
        record.emit();
        self.push(record).finish(None);
    }

    /// Starts the record of an allowed request carrying the named
    /// credentials; it is emitted when finished.
    pub(crate) fn allow(
        &self,
        origin: &Origin<'_>,
        pinned: &PinnedTarget,
        credentials: Vec<String>,
    ) -> RecordHandle {
        let mut record = Self::base(origin, Verdict::Allow);
        record.target(pinned.target());
        record.addresses = pinned.addresses().to_vec();
        record.rule = Some(pinned.rule().to_string());
        record.credentials = credentials;
        self.push(record)
    }

    /// Every record so far; unfinished ones get their duration up to now.
    pub(crate) fn snapshot(&self) -> Vec<EgressRecord> {
        let entries = self.entries.lock().unwrap_or_else(PoisonError::into_inner);
        entries
            .iter()
            .map(|e| {
                let mut record = e.record.clone();
                if !e.finished {
                    record.duration = e.started.elapsed();
                }
                record
            })
            .collect()
    }
}

impl RecordHandle {
    fn update(&self, change: impl FnOnce(&mut Entry)) {
        let mut entries = self
            .log
            .entries
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if let Some(entry) = entries.get_mut(self.index) {
            change(entry);
        }
    }

    pub(crate) fn connected(&self, addr: SocketAddr) {
        self.update(|e| e.record.connected = Some(addr));
    }

    pub(crate) fn status(&self, status: u16) {
        self.update(|e| e.record.status = Some(status));
    }

    pub(crate) fn add_up(&self, bytes: u64) {
        self.update(|e| e.record.bytes_up += bytes);
    }

    pub(crate) fn add_down(&self, bytes: u64) {
        self.update(|e| e.record.bytes_down += bytes);
    }

    /// Ends the record (once), with the failure if there was one, and emits it.
    pub(crate) fn finish(&self, failure: Option<Reason>) {
        self.update(|e| {
            if e.finished {
                return;
            }
            e.finished = true;
            e.record.duration = e.started.elapsed();
            if e.record.reason.is_none() {
                e.record.reason = failure;
            }
            if e.record.verdict == Verdict::Allow {
                e.record.emit();
            }
        });
    }
}
