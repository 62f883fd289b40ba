//! Where approvals live: [`ApprovalStore`], and the rules both stores
//! (`sqlite.rs`, `postgres.rs`) share: the questions a lookup asks, what a
//! decision may not do, what is journaled. Every request and decision is
//! journaled in the same transaction as its change.

use super::model::{Approval, ApprovalRequest, OperatorDecision, Status, unix};
use crate::store::StoreError;
use serde_json::json;
use std::time::SystemTime;

/// How often a waiting invocation looks for an operator's decision when
/// the store hears no news.
pub(crate) const APPROVAL_POLL: std::time::Duration = std::time::Duration::from_millis(200);

/// What is already known about a request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Lookup {
    /// An allow that covers it.
    Approved(Approval),
    /// An operator denied exactly this request.
    Denied(Approval),
    /// It is waiting for an operator.
    Pending(Approval),
    /// Nothing yet.
    Unknown,
}

/// Why a decision could not be recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApprovalError {
    /// No approval has this id.
    #[error("no approval with id `{id}`: `airlock approvals list` shows the pending ones")]
    NotFound {
        /// The id.
        id: String,
    },
    /// It was decided already; decisions are final.
    #[error(
        "approval `{id}` is already {status}: decisions are final; a new request makes a new approval"
    )]
    AlreadyDecided {
        /// The id.
        id: String,
        /// `allowed` or `denied`.
        status: &'static str,
    },
    /// An `until` window longer than this host allows.
    #[error(
        "an approval window of {} is too long: at most {} (give a shorter `until=`, or raise `max_approval_window` in [serve])",
        humantime::format_duration(*asked),
        humantime::format_duration(*max)
    )]
    WindowTooLong {
        /// What was asked.
        asked: std::time::Duration,
        /// The most allowed.
        max: std::time::Duration,
    },
    /// `allow session` for a request made outside any session, which no
    /// later request could match.
    #[error(
        "approval `{id}` was requested outside any session, so `session` would allow nothing: allow it `once` or for a time (`until=…`)"
    )]
    NoSession {
        /// The id.
        id: String,
    },
    /// `allow session` for a request whose MCP session has ended, which no
    /// later request can be in.
    #[error(
        "approval `{id}` was requested in an MCP session that has ended, so `session` would allow nothing: allow it `once` or for a time (`until=…`)"
    )]
    SessionEnded {
        /// The id.
        id: String,
    },
    /// The store failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl ApprovalError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            ApprovalError::NotFound { .. } => "approval_not_found",
            ApprovalError::AlreadyDecided { .. } => "approval_already_decided",
            ApprovalError::WindowTooLong { .. } => "approval_window_too_long",
            ApprovalError::NoSession { .. } => "approval_has_no_session",
            ApprovalError::SessionEnded { .. } => "approval_session_ended",
            ApprovalError::Store(e) => e.code(),
        }
    }
}

/// Where pending approvals and decisions are kept. Deciding is a separate
/// path from invoking: nothing an invocation carries can decide.
pub trait ApprovalStore: Send + Sync {
    /// What covers `request` at `now`, most specific first.
    fn lookup(&self, request: &ApprovalRequest, now: SystemTime) -> Result<Lookup, StoreError>;

    /// Records `request` as pending (journaled), or returns the pending
    /// approval already recorded for the same request.
    fn request(&self, request: &ApprovalRequest) -> Result<Approval, StoreError>;

    /// An operator's decision on a pending approval, recorded (and
    /// journaled) with who decided: `decided_by` names the operator as the
    /// channel identified them (`operator:alice`, `mcp-client:…`, `cli:bob`).
    fn decide(
        &self,
        id: &str,
        decision: &OperatorDecision,
        decided_by: &str,
        now: SystemTime,
    ) -> Result<Approval, ApprovalError>;

    /// Marks a `once` approval used; false if it already was.
    fn consume(&self, id: &str) -> Result<bool, StoreError>;

    /// Ends what MCP session `session_id` scoped, now that the session has
    /// ended: its `session` approvals cover nothing more, and one of its
    /// requests still pending can no longer be allowed for the session.
    /// Journaled (a `server` entry, event `session_ended`) when it changed
    /// anything; returns the ids it changed.
    fn end_session(&self, session_id: &str) -> Result<Vec<String>, StoreError>;

    /// One approval.
    fn get(&self, id: &str) -> Result<Option<Approval>, StoreError>;

    /// Approvals, newest first; only pending ones if `pending_only`.
    fn list(&self, pending_only: bool) -> Result<Vec<Approval>, StoreError>;

    /// A counter that moves when approvals are requested or decided
    /// anywhere this store can hear of (for a shared store, on every
    /// replica): a waiting call wakes on it rather than at its next poll.
    /// `None` when the store cannot tell.
    fn news(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        None
    }

    /// How often a waiting call looks for a decision when no news comes.
    fn poll_interval(&self) -> std::time::Duration {
        APPROVAL_POLL
    }
}

/// One question a lookup asks: the first that finds an approval answers.
pub(super) struct Question<'a> {
    /// The `WHERE` filter, with `?N` parameters (PostgreSQL's store
    /// writes them `$N`).
    pub filter: &'static str,
    pub args: Vec<crate::store::sql::Arg<'a>>,
    pub answer: fn(Approval) -> Lookup,
}

/// The pending approval of a request: its hash and grant digest.
pub(super) const PENDING: &str = "status = 'pending' AND request_hash = ?1 AND grant_digest = ?2";

/// What a lookup asks about `r` at `now`, in order, for both stores: a
/// denial of this request, an unused `once` approval of it, a session
/// approval, an unexpired time window, then a pending approval.
/// `capabilities` is the request's as stored (JSON). An approval covers
/// the tool as it was granted when a human looked at it: a wider grant or
/// a new credential needs a new approval.
pub(super) fn questions<'a>(
    r: &'a ApprovalRequest,
    capabilities: &'a str,
    now: SystemTime,
) -> Vec<Question<'a>> {
    use crate::store::sql::Arg::{Int, Text};
    let now = i64::try_from(unix(now)).unwrap_or(i64::MAX);
    let (hash, grant) = (Text(&r.request_hash), Text(&r.grant_digest));
    let mut questions = vec![
        Question {
            filter: "status = 'denied' AND request_hash = ?1",
            args: vec![Text(&r.request_hash)],
            answer: Lookup::Denied,
        },
        Question {
            filter: "status = 'allowed' AND scope = 'once' AND NOT used AND request_hash = ?1 \
                     AND grant_digest = ?2",
            args: vec![hash, grant],
            answer: Lookup::Approved,
        },
    ];
    if !r.session_id.is_empty() {
        questions.push(Question {
            filter: "status = 'allowed' AND scope = 'session' AND NOT used AND principal = ?1 \
                     AND session_id = ?2 AND tool_sha256 = ?3 AND capabilities = ?4 \
                     AND grant_digest = ?5",
            args: vec![
                Text(&r.principal),
                Text(&r.session_id),
                Text(&r.tool_sha256),
                Text(capabilities),
                Text(&r.grant_digest),
            ],
            answer: Lookup::Approved,
        });
    }
    questions.push(Question {
        filter: "status = 'allowed' AND scope = 'until' AND principal = ?1 AND tool_sha256 = ?2 \
                 AND expires_at > ?3 AND capabilities = ?4 AND grant_digest = ?5",
        args: vec![
            Text(&r.principal),
            Text(&r.tool_sha256),
            Int(now),
            Text(capabilities),
            Text(&r.grant_digest),
        ],
        answer: Lookup::Approved,
    });
    questions.push(Question {
        filter: PENDING,
        args: vec![Text(&r.request_hash), Text(&r.grant_digest)],
        answer: Lookup::Pending,
    });
    questions
}

/// A new pending approval for `request`.
pub(super) fn pending(id: String, created: String, request: &ApprovalRequest) -> Approval {
    Approval {
        id,
        created,
        request: request.clone(),
        status: Status::Pending,
        decided_at: None,
        used: false,
        decided_by: None,
    }
}

/// The journal record of a new pending approval.
pub(super) fn requested_record(id: &str, request: &ApprovalRequest) -> serde_json::Value {
    json!({
        "id": id,
        "principal": request.principal,
        "session_id": request.session_id,
        "tool": request.tool_name,
        "tool_sha256": request.tool_sha256,
        "capabilities": request.capabilities,
        "grant": request.grant_summary,
        "grant_digest": request.grant_digest,
        // The input itself stays out of the permanent record: agents put
        // anything in inputs. Its hash binds it.
        "request_hash": request.request_hash,
    })
}

/// Why `decision` cannot be recorded on `approval`, if it cannot.
pub(super) fn refuse(
    id: &str,
    approval: &Approval,
    decision: &OperatorDecision,
) -> Option<ApprovalError> {
    if approval.status != Status::Pending {
        return Some(ApprovalError::AlreadyDecided {
            id: id.to_string(),
            status: approval.status.as_str(),
        });
    }
    if *decision == OperatorDecision::AllowSession && approval.request.session_id.is_empty() {
        return Some(ApprovalError::NoSession { id: id.to_string() });
    }
    // A pending approval is `used` only when its session ended.
    if *decision == OperatorDecision::AllowSession && approval.used {
        return Some(ApprovalError::SessionEnded { id: id.to_string() });
    }
    None
}

/// The approvals an ended session `?1` scoped: its `session` approvals
/// and its requests still pending, not yet ended.
pub(super) const ENDED_WITH_SESSION: &str = "session_id = ?1 AND NOT used \
     AND (status = 'pending' OR (status = 'allowed' AND scope = 'session'))";

/// The journal record of a session's end that ended approvals `ids`.
pub(super) fn session_ended_record(session_id: &str, ids: &[String]) -> serde_json::Value {
    json!({
        "event": "session_ended",
        "session_id": session_id,
        "approvals": ids,
    })
}

/// The journal record of a decision.
pub(super) fn decided_record(
    approval: &Approval,
    status: &Status,
    decided_by: &str,
) -> serde_json::Value {
    let (scope, expires, reason) = status.columns();
    json!({
        "id": approval.id,
        "decision": status.as_str(),
        "scope": scope,
        "expires_at": expires,
        "reason": reason,
        "decided_by": decided_by,
        "tool_sha256": approval.request.tool_sha256,
        "request_hash": approval.request.request_hash,
    })
}
