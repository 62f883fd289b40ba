//! What an approval is: the request it is for, bound by a canonical hash,
//! and the operator's decision with its scope.

use crate::journal::canonical_json;
use serde_json::Value;
use sha2::{Digest, Sha256};
use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The longest `until` window an operator may grant unless configured
/// otherwise (`[serve] max_approval_window`): long enough for a working
/// month, short enough that a forgotten approval ends.
pub const DEFAULT_MAX_APPROVAL_WINDOW: Duration = Duration::from_secs(30 * 24 * 3600);

/// How far an operator's "allow" reaches.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Scope {
    /// Exactly this request (principal, tool digest, input, capabilities), once.
    Once,
    /// This principal, session and tool digest, until the session ends.
    Session,
    /// This principal and tool digest, until the given Unix time (seconds).
    Until(u64),
}

impl Scope {
    /// `once`, `session` or `until`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Once => "once",
            Scope::Session => "session",
            Scope::Until(_) => "until",
        }
    }
}

/// Where an approval stands.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum Status {
    /// Waiting for an operator.
    Pending,
    /// Allowed, within `Scope`.
    Allowed(Scope),
    /// Denied, with the operator's reason.
    Denied(String),
}

impl Status {
    /// `pending`, `allowed` or `denied`.
    pub fn as_str(&self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Allowed(_) => "allowed",
            Status::Denied(_) => "denied",
        }
    }

    /// A status from the columns both stores keep it in.
    pub(crate) fn from_columns(
        status: &str,
        scope: Option<&str>,
        expires_at: Option<i64>,
        reason: Option<String>,
    ) -> Self {
        match (status, scope) {
            ("allowed", Some("once")) => Status::Allowed(Scope::Once),
            ("allowed", Some("session")) => Status::Allowed(Scope::Session),
            ("allowed", Some("until")) => Status::Allowed(Scope::Until(
                expires_at.unwrap_or(0).try_into().unwrap_or(0),
            )),
            ("denied", _) => Status::Denied(reason.unwrap_or_default()),
            _ => Status::Pending,
        }
    }

    /// The `scope`, `expires_at` and `reason` columns of this status.
    pub(crate) fn columns(&self) -> (Option<&'static str>, Option<i64>, Option<String>) {
        match self {
            Status::Allowed(scope) => (
                Some(scope.as_str()),
                match scope {
                    Scope::Until(t) => Some(i64::try_from(*t).unwrap_or(i64::MAX)),
                    _ => None,
                },
                None,
            ),
            Status::Denied(reason) => (None, None, Some(reason.clone())),
            Status::Pending => (None, None, None),
        }
    }
}

/// What a tool would run with, as an approval binds it: one line for the
/// approver, and a digest of everything that could widen what the tool may
/// do, so that a wider grant (another port, a budget, a credential, a
/// directory mode; for native tools the arguments, mounts, network mode
/// and limits) never reuses an approval given for a narrower one.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct GrantBinding {
    /// For the approver.
    pub summary: String,
    /// SHA-256 (hex) over the canonical parts.
    pub digest: String,
}

impl GrantBinding {
    /// Binds `parts`, each one canonical line of the effective grant.
    pub fn new(summary: String, parts: impl IntoIterator<Item = String>) -> Self {
        Self {
            summary,
            digest: digest(parts),
        }
    }

    /// This binding and `parts` too (e.g. a call's limits), with `more`
    /// added to the summary.
    pub fn and(self, more: &str, parts: impl IntoIterator<Item = String>) -> Self {
        Self {
            summary: format!("{}; {more}", self.summary),
            digest: digest(std::iter::once(self.digest).chain(parts)),
        }
    }
}

/// SHA-256 (hex) over `parts`, each length-prefixed.
fn digest(parts: impl IntoIterator<Item = String>) -> String {
    let mut hasher = Sha256::new();
    for part in parts {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// The request an approval is about, as the host saw it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct ApprovalRequest {
    /// Who asked (`Agent::"claude"`).
    pub principal: String,
    /// The session it was asked in.
    pub session_id: String,
    /// The tool's name.
    pub tool_name: String,
    /// SHA-256 of the tool's component: a new build needs a new approval.
    pub tool_sha256: String,
    /// The tool's capabilities.
    pub capabilities: Vec<String>,
    /// What the tool would run with (e.g. its network grant's rules).
    pub grant_summary: String,
    /// The [`GrantBinding`] digest: an approval covers exactly this grant.
    #[serde(default)]
    pub grant_digest: String,
    /// Binds principal, tool digest, canonical input and capabilities.
    pub request_hash: String,
    /// A short human-readable summary of the input.
    pub input_summary: String,
    /// The whole input (bounded by the input limit), for `approvals show
    /// --full`: the summary shortens long strings, which can hide the part
    /// that matters.
    #[serde(default)]
    pub input: String,
}

impl ApprovalRequest {
    /// Describes a request; `input` is the invocation's JSON text.
    pub fn new(
        principal: &str,
        session_id: &str,
        tool_name: &str,
        tool_sha256: &str,
        capabilities: &[String],
        grant: GrantBinding,
        input: &str,
    ) -> Self {
        Self {
            principal: principal.to_string(),
            session_id: session_id.to_string(),
            tool_name: tool_name.to_string(),
            tool_sha256: tool_sha256.to_string(),
            capabilities: capabilities.to_vec(),
            grant_summary: grant.summary,
            grant_digest: grant.digest,
            request_hash: request_hash(principal, tool_sha256, input, capabilities),
            input_summary: summarize(input),
            input: input.to_string(),
        }
    }
}

/// SHA-256 over the principal, the tool digest, the input as canonical JSON
/// (so key order and whitespace do not matter) and the sorted capabilities.
pub fn request_hash(
    principal: &str,
    tool_sha256: &str,
    input: &str,
    capabilities: &[String],
) -> String {
    let input = serde_json::from_str::<Value>(input)
        .map(|v| canonical_json(&v))
        .unwrap_or_else(|_| input.to_string());
    let mut capabilities = capabilities.to_vec();
    capabilities.sort();
    let mut hasher = Sha256::new();
    for part in [principal, tool_sha256, &input, &capabilities.join(",")] {
        hasher.update((part.len() as u64).to_be_bytes());
        hasher.update(part.as_bytes());
    }
    hex::encode(hasher.finalize())
}

/// Longest input summary shown to an operator.
const SUMMARY_CHARS: usize = 240;

/// The input as one short line: compact JSON, long strings shortened.
pub fn summarize(input: &str) -> String {
    fn shorten(value: &Value) -> Value {
        match value {
            Value::String(s) if s.chars().count() > 60 => Value::String(format!(
                "{}… ({} chars)",
                s.chars().take(60).collect::<String>(),
                s.chars().count()
            )),
            Value::Array(items) => Value::Array(items.iter().map(shorten).collect()),
            Value::Object(map) => {
                Value::Object(map.iter().map(|(k, v)| (k.clone(), shorten(v))).collect())
            }
            other => other.clone(),
        }
    }
    let text = serde_json::from_str::<Value>(input)
        .map(|v| canonical_json(&shorten(&v)))
        .unwrap_or_else(|_| input.to_string());
    if text.chars().count() > SUMMARY_CHARS {
        format!("{}…", text.chars().take(SUMMARY_CHARS).collect::<String>())
    } else {
        text
    }
}

/// One approval, pending or decided.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Approval {
    /// Its id (a ULID).
    pub id: String,
    /// When it was requested (RFC 3339).
    pub created: String,
    /// The request.
    pub request: ApprovalRequest,
    /// Where it stands.
    pub status: Status,
    /// When it was decided (RFC 3339).
    pub decided_at: Option<String>,
    /// Whether it is spent: a `once` approval that ran, a `session` one
    /// whose session ended, or a pending one whose session ended (it can
    /// no longer be allowed for that session).
    pub used: bool,
    /// Who decided, as the deciding channel identified them.
    pub decided_by: Option<String>,
}

/// An operator's decision.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub enum OperatorDecision {
    /// Allow exactly this request, once.
    AllowOnce,
    /// Allow this principal, session and tool digest.
    AllowSession,
    /// Allow this principal and tool digest for a while.
    AllowFor(Duration),
    /// Deny, with a reason the caller sees.
    Deny(String),
}

impl OperatorDecision {
    /// The name policies see for it (`approval.decide`'s `context.decision`).
    pub fn kind(&self) -> &'static str {
        match self {
            OperatorDecision::AllowOnce => "allow_once",
            OperatorDecision::AllowSession => "allow_session",
            OperatorDecision::AllowFor(_) => "allow_until",
            OperatorDecision::Deny(_) => "deny",
        }
    }

    /// Whether an `until` window is at most `max` (other decisions have no
    /// window); the error says how long it was and what the most is.
    pub fn window_within(&self, max: Duration) -> Result<(), super::ApprovalError> {
        match self {
            OperatorDecision::AllowFor(asked) if *asked > max => {
                Err(super::ApprovalError::WindowTooLong { asked: *asked, max })
            }
            _ => Ok(()),
        }
    }

    /// The status this decision sets, at time `now`.
    pub fn status(&self, now: SystemTime) -> Status {
        match self {
            OperatorDecision::AllowOnce => Status::Allowed(Scope::Once),
            OperatorDecision::AllowSession => Status::Allowed(Scope::Session),
            // Never panics on operator input: a window past what time can
            // hold ends at the end of time ([`OperatorDecision::window_within`]
            // refuses such windows before they get here).
            OperatorDecision::AllowFor(duration) => Status::Allowed(Scope::Until(
                now.checked_add(*duration).map_or(u64::MAX, unix),
            )),
            OperatorDecision::Deny(reason) => Status::Denied(reason.clone()),
        }
    }
}

impl fmt::Display for OperatorDecision {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            OperatorDecision::AllowOnce => f.write_str("allow once"),
            OperatorDecision::AllowSession => f.write_str("allow for the session"),
            OperatorDecision::AllowFor(d) => {
                write!(f, "allow for {}", humantime::format_duration(*d))
            }
            OperatorDecision::Deny(reason) => write!(f, "deny ({reason})"),
        }
    }
}

/// Seconds since the Unix epoch.
pub(super) fn unix(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

impl From<Approval> for crate::PendingApproval {
    fn from(approval: Approval) -> Self {
        crate::PendingApproval {
            id: approval.id,
            tool: approval.request.tool_name,
            capabilities: approval.request.capabilities,
            summary: approval.request.input_summary,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_hash_binds_what_matters_and_ignores_formatting() {
        let caps = vec!["network".to_string()];
        let base = request_hash("Agent::\"a\"", "sha", r#"{"b": 1, "a": [1, 2]}"#, &caps);
        assert_eq!(
            base,
            request_hash("Agent::\"a\"", "sha", r#"{"a":[1,2],"b":1}"#, &caps)
        );
        assert_ne!(
            base,
            request_hash("Agent::\"b\"", "sha", r#"{"a":[1,2],"b":1}"#, &caps)
        );
        assert_ne!(
            base,
            request_hash("Agent::\"a\"", "sha2", r#"{"a":[1,2],"b":1}"#, &caps)
        );
        assert_ne!(
            base,
            request_hash("Agent::\"a\"", "sha", r#"{"a":[1,2],"b":2}"#, &caps)
        );
        assert_ne!(
            base,
            request_hash("Agent::\"a\"", "sha", r#"{"a":[1,2],"b":1}"#, &[])
        );
    }

    #[test]
    fn a_binding_widened_by_any_part_is_another_binding() {
        let base = || GrantBinding::new("net".into(), ["rule a".to_string()]);
        let with = |part: &str| base().and("limits", [part.to_string()]);
        assert_eq!(with("timeout 5s"), with("timeout 5s"), "deterministic");
        assert_ne!(with("timeout 5s").digest, with("timeout 600s").digest);
        assert_ne!(with("timeout 5s").digest, base().digest);
        assert_eq!(with("timeout 5s").summary, "net; limits");
        // The length prefix keeps parts apart: ("ab") is not ("a", "b").
        assert_ne!(
            base().and("", ["ab".to_string()]).digest,
            base().and("", ["a".to_string(), "b".to_string()]).digest
        );
    }

    #[test]
    fn an_absurd_window_is_refused_and_never_panics() {
        let absurd = OperatorDecision::AllowFor(Duration::from_secs(u64::MAX / 2));
        assert!(matches!(
            absurd.status(SystemTime::now()),
            Status::Allowed(Scope::Until(u64::MAX))
        ));
        let error = absurd
            .window_within(DEFAULT_MAX_APPROVAL_WINDOW)
            .expect_err("too long");
        assert_eq!(error.code(), "approval_window_too_long");
        assert!(error.to_string().contains("at most 30days"), "{error}");
        assert!(
            OperatorDecision::AllowFor(Duration::from_secs(7200))
                .window_within(DEFAULT_MAX_APPROVAL_WINDOW)
                .is_ok()
        );
        assert!(
            OperatorDecision::AllowOnce
                .window_within(Duration::ZERO)
                .is_ok()
        );
    }

    #[test]
    fn summaries_are_short() {
        let long = format!(r#"{{"url": "https://x/{}", "n": 1}}"#, "y".repeat(500));
        let summary = summarize(&long);
        assert!(summary.chars().count() <= SUMMARY_CHARS + 1);
        assert!(summary.contains("(510 chars)"), "{summary}");
        assert!(
            summary.starts_with(r#"{"n":1,"url":"https://x/"#),
            "{summary}"
        );
    }
}
