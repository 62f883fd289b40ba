//! The journal pages: a filtered timeline, newest first, paged back by
//! sequence number; and one entry with its attestation, its egress records
//! and its inclusion proof, checked against the server's key as the page
//! is made.

use super::pages::{failure, render};
use super::views::{EntryPage, Filter, JournalPage, ProofView, RowView};
use super::web::Body;
use super::{Console, Viewer};
use airlock::attest::{AttestError, attestation_in, check_inclusion, egress_digest};
use airlock::journal::Entry;
use http::{Response, StatusCode};
use serde_json::Value;
use std::collections::HashMap;
use std::time::SystemTime;

/// Entries per page.
const PAGE: usize = 50;
/// Entries read from the store at a time while filtering.
const CHUNK: usize = 500;
/// Entries one page request searches at most: a filter that matches
/// little does not read a large journal whole; the page says where it
/// stopped and links on.
const SCAN_LIMIT: usize = 20_000;

/// The kinds of entry the journal holds, for the kind filter.
fn kinds(picked: &str) -> Vec<(&'static str, bool)> {
    airlock::journal::EntryKind::ALL
        .into_iter()
        .map(|kind| (kind.as_str(), kind.as_str() == picked))
        .collect()
}

/// What a timeline row shows, and what filters match.
struct Facts {
    tool: String,
    principal: String,
    outcome: String,
    reason: String,
}

fn text(value: &Value) -> String {
    match value {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        Value::Object(o) => o.get("code").map(text).unwrap_or_default(),
        other => other.to_string(),
    }
}

fn facts(entry: &Entry) -> Facts {
    let payload: Value = serde_json::from_str(&entry.payload).unwrap_or(Value::Null);
    let field = |name: &str| text(&payload[name]);
    use airlock::journal::EntryKind as K;
    match entry.kind.known() {
        Some(K::Invocation) => {
            let a = &payload["attestation"];
            let outcome = text(&a["outcome"]);
            Facts {
                tool: text(&a["tool"]),
                principal: text(&a["principal"]),
                reason: if outcome == "ok" {
                    String::new()
                } else {
                    outcome.clone()
                },
                outcome,
            }
        }
        Some(K::Egress) => Facts {
            tool: field("tool"),
            principal: String::new(),
            outcome: field("decision"),
            reason: field("reason"),
        },
        Some(K::Denial) => Facts {
            tool: field("tool"),
            principal: field("principal"),
            outcome: "denied".into(),
            reason: field("reason"),
        },
        Some(K::ApprovalRequested) => Facts {
            tool: field("tool"),
            principal: field("principal"),
            outcome: "pending".into(),
            reason: String::new(),
        },
        Some(K::ApprovalDecided) => Facts {
            tool: String::new(),
            principal: field("decided_by"),
            outcome: field("decision"),
            reason: field("reason"),
        },
        Some(K::DeviceChanged | K::AgentChanged) => Facts {
            tool: String::new(),
            principal: [field("operator"), field("device"), field("agent")]
                .into_iter()
                .filter(|s| !s.is_empty())
                .collect::<Vec<_>>()
                .join(" / "),
            outcome: field("change"),
            reason: String::new(),
        },
        _ => Facts {
            tool: field("tool"),
            principal: field("principal"),
            outcome: field("event"),
            reason: field("code"),
        },
    }
}

/// A time a person typed: RFC 3339, or `YYYY-MM-DDTHH:MM[:SS]` (UTC).
fn typed_time(text: &str) -> Result<Option<SystemTime>, String> {
    let text = text.trim();
    if text.is_empty() {
        return Ok(None);
    }
    humantime::parse_rfc3339_weak(text)
        .or_else(|_| humantime::parse_rfc3339_weak(&format!("{text}:00")))
        .map(Some)
        .map_err(|_| format!("`{text}` is not a time: write e.g. 2026-12-01T09:00 (UTC)"))
}

struct Matcher {
    filter: Filter,
    since: Option<SystemTime>,
    until: Option<SystemTime>,
}

impl Matcher {
    fn matches(&self, entry: &Entry, facts: &Facts) -> bool {
        let f = &self.filter;
        let equal = |wanted: &str, have: &str| wanted.is_empty() || wanted == have;
        let time = humantime::parse_rfc3339_weak(&entry.time).ok();
        equal(&f.tool, &facts.tool)
            && equal(&f.outcome, &facts.outcome)
            && equal(&f.reason, &facts.reason)
            && equal(&f.kind, entry.kind.as_str())
            && (f.principal.is_empty() || facts.principal.contains(&f.principal))
            && self.since.is_none_or(|s| time.is_some_and(|t| t >= s))
            && self.until.is_none_or(|u| time.is_some_and(|t| t <= u))
    }

    /// The filters as a query string, with `before`.
    fn query(&self, before: Option<u64>) -> String {
        let f = &self.filter;
        let mut query = url::form_urlencoded::Serializer::new(String::new());
        for (name, value) in [
            ("tool", &f.tool),
            ("principal", &f.principal),
            ("outcome", &f.outcome),
            ("reason", &f.reason),
            ("kind", &f.kind),
            ("since", &f.since),
            ("until", &f.until),
        ] {
            if !value.is_empty() {
                query.append_pair(name, value);
            }
        }
        if let Some(before) = before {
            query.append_pair("before", &before.to_string());
        }
        query.finish()
    }
}

/// The timeline page.
pub(super) fn list(
    console: &Console,
    viewer: &Viewer,
    query: &HashMap<String, String>,
) -> Response<Body> {
    let field = |name: &str| {
        query
            .get(name)
            .map(|v| v.trim().to_string())
            .unwrap_or_default()
    };
    let filter = Filter {
        tool: field("tool"),
        principal: field("principal"),
        outcome: field("outcome"),
        reason: field("reason"),
        kind: field("kind"),
        since: field("since"),
        until: field("until"),
    };
    let chrome = viewer.chrome("journal");
    let times = typed_time(&filter.since).and_then(|s| Ok((s, typed_time(&filter.until)?)));
    let (since, until) = match times {
        Ok(times) => times,
        Err(message) => {
            let page = JournalPage {
                chrome: &chrome,
                kinds: kinds(&filter.kind),
                filter,
                rows: Vec::new(),
                error: Some(message),
                note: None,
                newer: None,
                older: None,
            };
            return render(StatusCode::BAD_REQUEST, &page);
        }
    };
    let matcher = Matcher {
        filter,
        since,
        until,
    };
    let first = query.get("before").and_then(|b| b.parse::<u64>().ok());
    let Some(journal) = console.server.host().journal() else {
        return failure(StatusCode::NOT_FOUND, "this server keeps no journal");
    };
    let mut rows = Vec::new();
    let mut cursor = first.unwrap_or(u64::MAX);
    let (mut scanned, mut exhausted) = (0, false);
    while rows.len() < PAGE && scanned < SCAN_LIMIT {
        let chunk = match journal.store().before(cursor, CHUNK) {
            Ok(chunk) => chunk,
            Err(error) => {
                tracing::error!(%error, "console: reading the journal failed");
                return failure(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "reading the journal failed",
                );
            }
        };
        if chunk.is_empty() {
            exhausted = true;
            break;
        }
        for entry in chunk {
            scanned += 1;
            cursor = entry.seq;
            let facts = facts(&entry);
            if matcher.matches(&entry, &facts) {
                rows.push(RowView {
                    seq: entry.seq,
                    time: entry.time,
                    kind: entry.kind.to_string(),
                    tool: facts.tool,
                    principal: facts.principal,
                    outcome: facts.outcome,
                    reason: facts.reason,
                });
                if rows.len() == PAGE {
                    break;
                }
            }
        }
    }
    let more = !exhausted && cursor > 1;
    let note = (more && rows.len() < PAGE)
        .then(|| format!("searched back to entry {cursor}; older entries are on the next page"));
    let page = JournalPage {
        chrome: &chrome,
        kinds: kinds(&matcher.filter.kind),
        older: more.then(|| matcher.query(Some(cursor))),
        newer: first.map(|_| matcher.query(None)),
        filter: matcher.filter,
        rows,
        error: None,
        note,
    };
    render(StatusCode::OK, &page)
}

fn pretty(text: &str) -> String {
    serde_json::from_str::<Value>(text)
        .and_then(|v| serde_json::to_string_pretty(&v))
        .unwrap_or_else(|_| text.to_string())
}

/// One entry, its attestation and egress records, and its inclusion proof.
pub(super) fn entry(console: &Console, viewer: &Viewer, seq: &str) -> Response<Body> {
    let Some(journal) = console.server.host().journal() else {
        return failure(StatusCode::NOT_FOUND, "this server keeps no journal");
    };
    let Ok(seq) = seq.parse::<u64>() else {
        return failure(StatusCode::NOT_FOUND, "journal entries are numbered from 1");
    };
    let store = journal.store();
    // The entry and, for an invocation, the egress records that follow it;
    // the proof from the stored hashes up to the head that covers it.
    let read = || -> Result<_, airlock::store::StoreError> {
        let Some(entry) = store
            .before(seq.saturating_add(1), 1)?
            .into_iter()
            .find(|e| e.seq == seq)
        else {
            return Ok(None);
        };
        let attestation = attestation_in(&entry);
        let records = match &attestation {
            Some(a) => {
                let mut after = store.before(
                    seq.saturating_add(1).saturating_add(a.egress_count as u64),
                    a.egress_count,
                )?;
                after.reverse();
                after.retain(|e| e.seq > seq);
                after
            }
            None => Vec::new(),
        };
        let inclusion = store.inclusion(seq)?;
        Ok(Some((entry, attestation, records, inclusion)))
    };
    let (entry, attested, records, inclusion) = match read() {
        Ok(Some(read)) => read,
        Ok(None) => return failure(StatusCode::NOT_FOUND, &format!("there is no entry {seq}")),
        Err(error) => {
            tracing::error!(%error, "console: reading the journal failed");
            return failure(
                StatusCode::SERVICE_UNAVAILABLE,
                "reading the journal failed",
            );
        }
    };
    let key = journal.verifying_key();
    let proof = match inclusion.and_then(|proved| {
        check_inclusion(&entry, &proved.path, &proved.head, &key).map(|()| proved)
    }) {
        Ok(proved) => ProofView {
            state: "verified",
            message: format!(
                "Verified: entry {seq} is in the journal's Merkle tree of {} entries, whose head the server's key signed.",
                proved.head.size
            ),
            head_size: proved.head.size,
            head_time: proved.head.time.clone(),
            root: proved.head.root.to_string(),
            key_id: proved.head.key_id.clone(),
            path: proved.path.iter().map(ToString::to_string).collect(),
        },
        Err(AttestError::NotSealed { .. }) => ProofView {
            state: "pending",
            message: format!(
                "No signed tree head covers entry {seq} yet: the server signs one within seconds. Reload to check again."
            ),
            ..unproved()
        },
        Err(error) => ProofView {
            state: "failed",
            message: format!("NOT verified: {error}"),
            ..unproved()
        },
    };
    let mut attestation = Vec::new();
    let (mut egress, mut egress_check) = (Vec::new(), None);
    if let Some(a) = attested {
        if let Ok(Value::Object(fields)) = serde_json::to_value(&a) {
            attestation = fields.into_iter().map(|(k, v)| (k, text(&v))).collect();
        }
        let records: Vec<Value> = records
            .iter()
            .filter(|e| e.kind == airlock::journal::EntryKind::Egress)
            .filter_map(|e| serde_json::from_str::<Value>(&e.payload).ok())
            .filter(|p| p["invocation_id"] == Value::String(a.id.clone()))
            .collect();
        egress_check = Some(if egress_digest(&records) == a.egress_digest {
            format!(
                "{} records; their digest matches the attestation's.",
                records.len()
            )
        } else {
            "These records do NOT match the attestation's egress digest.".to_string()
        });
        egress = records
            .iter()
            .map(|r| serde_json::to_string_pretty(r).unwrap_or_default())
            .collect();
    }
    let chrome = viewer.chrome("journal");
    let page = EntryPage {
        chrome: &chrome,
        seq,
        time: entry.time.clone(),
        kind: entry.kind.to_string(),
        payload: pretty(&entry.payload),
        attestation,
        egress,
        egress_check,
        proof,
    };
    render(StatusCode::OK, &page)
}

fn unproved() -> ProofView {
    ProofView {
        state: "failed",
        message: String::new(),
        head_size: 0,
        head_time: String::new(),
        root: String::new(),
        key_id: String::new(),
        path: Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_times_take_minutes_or_rfc3339() {
        assert!(typed_time("").expect("empty").is_none());
        assert!(typed_time("2026-12-01T09:00").expect("minutes").is_some());
        assert!(
            typed_time("2026-12-01T09:00:00Z")
                .expect("rfc3339")
                .is_some()
        );
        assert!(typed_time("yesterday").is_err());
    }

    #[test]
    fn invocation_rows_carry_the_attestation() {
        let entry = Entry {
            seq: 1,
            time: "2026-12-01T09:00:00Z".into(),
            kind: airlock::journal::EntryKind::Invocation.into(),
            payload: r#"{"attestation":{"tool":"fetch","principal":"Agent::\"a\"","outcome":"deadline_exceeded"}}"#.into(),
            prev_hash: airlock::journal::GENESIS,
            hash: airlock::journal::GENESIS,
        };
        let facts = facts(&entry);
        assert_eq!(facts.tool, "fetch");
        assert_eq!(facts.reason, "deadline_exceeded");
        let matcher = Matcher {
            filter: Filter {
                principal: "Agent".into(),
                ..Filter::default()
            },
            since: typed_time("2026-12-01T08:00").expect("time"),
            until: None,
        };
        assert!(matcher.matches(&entry, &facts));
        let later = Matcher {
            since: typed_time("2026-12-01T10:00").expect("time"),
            ..matcher
        };
        assert!(!later.matches(&entry, &facts));
    }
}
