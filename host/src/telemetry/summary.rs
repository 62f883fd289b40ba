//! What telemetry keeps of a finished invocation: names, codes, counts and
//! times. Inputs, outputs, URL paths and secrets are never copied here, so
//! they cannot be exported.

use crate::egress::{EgressRecord, Verdict};
use crate::outcome::Outcome;
use crate::policy::ToolFacts;
use std::time::{Duration, SystemTime};

/// One finished invocation, as exported.
#[derive(Clone, Debug)]
pub struct InvocationSummary {
    /// The invocation id (a ULID: also the trace id).
    pub invocation_id: String,
    /// The tool's name.
    pub tool: String,
    /// Its world.
    pub world: String,
    /// Who called (`Agent::"claude"`).
    pub principal: String,
    /// `completed`, `tool_error`, `limit_exceeded`, `faulted`,
    /// `pending_approval`, `denied` or `host_error`.
    pub outcome: &'static str,
    /// The reason code (`ok` when it completed).
    pub reason: String,
    /// When it started.
    pub started: SystemTime,
    /// When it ended.
    pub ended: SystemTime,
    /// Its outgoing requests, in order.
    pub egress: Vec<EgressSummary>,
}

/// One outgoing request, as exported.
#[derive(Clone, Debug)]
pub struct EgressSummary {
    /// `allow` or `deny`.
    pub decision: &'static str,
    /// The HTTP method.
    pub method: String,
    /// The host asked for, if the URL parsed.
    pub host: Option<String>,
    /// The port, if the URL parsed.
    pub port: Option<u16>,
    /// Why it was denied, or why an allowed request failed.
    pub reason: Option<&'static str>,
    /// The response status, if one arrived.
    pub status: Option<u16>,
    /// Request body bytes sent.
    pub bytes_up: u64,
    /// Response body bytes received.
    pub bytes_down: u64,
    /// When it was decided.
    pub at: SystemTime,
    /// From the decision to the end of the response body.
    pub duration: Duration,
}

impl InvocationSummary {
    /// The summary of `result`, an invocation of the tool `facts` describe.
    pub(crate) fn of(
        facts: &ToolFacts,
        principal: String,
        invocation_id: String,
        started: SystemTime,
        result: &Result<Outcome, crate::InvokeError>,
    ) -> Self {
        let (outcome, reason, egress) = match result {
            Ok(outcome) => (
                kind(outcome),
                outcome.code().to_string(),
                outcome
                    .report()
                    .egress
                    .iter()
                    .map(EgressSummary::of)
                    .collect(),
            ),
            Err(e) => ("host_error", e.code().to_string(), Vec::new()),
        };
        Self {
            invocation_id,
            tool: facts.name.clone(),
            world: facts.world.to_string(),
            principal,
            outcome,
            reason,
            started,
            ended: SystemTime::now(),
            egress,
        }
    }

    /// Spans and log records it becomes.
    pub(crate) fn items(&self) -> u64 {
        let denials = self.egress.iter().filter(|e| e.decision == "deny").count();
        let refused = u64::from(self.outcome == "denied");
        1 + self.egress.len() as u64 + denials as u64 + refused
    }
}

impl EgressSummary {
    fn of(record: &EgressRecord) -> Self {
        Self {
            decision: match record.verdict {
                Verdict::Allow => "allow",
                Verdict::Deny => "deny",
            },
            method: record.method.clone(),
            host: record.host.clone(),
            port: record.port,
            reason: record.reason.map(|r| r.code()),
            status: record.status,
            bytes_up: record.bytes_up,
            bytes_down: record.bytes_down,
            at: record.at,
            duration: record.duration,
        }
    }
}

fn kind(outcome: &Outcome) -> &'static str {
    match outcome {
        Outcome::Completed { .. } => "completed",
        Outcome::ToolError { .. } => "tool_error",
        Outcome::LimitExceeded { .. } => "limit_exceeded",
        Outcome::Faulted { .. } => "faulted",
        Outcome::PendingApproval { .. } => "pending_approval",
        Outcome::Denied { .. } => "denied",
    }
}
