//! [`ApprovalStore`] on the embedded SQLite database of a state
//! directory, with the rules of `store.rs`.

use super::model::{Approval, ApprovalRequest, OperatorDecision, Status};
use super::store::{
    ApprovalError, ApprovalStore, Arg, ENDED_WITH_SESSION, Lookup, PENDING, decided_record,
    pending, questions, refuse, requested_record, session_ended_record,
};
use crate::journal::{EntryKind, NewEntry, append_in};
use crate::store::{SqliteStore, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};
use std::time::SystemTime;

const COLUMNS: &str = "id, created, status, principal, session_id, tool_name, tool_sha256, capabilities, \
                       grant_summary, request_hash, input_summary, scope, expires_at, decided_at, reason, used, \
                       decided_by, grant_digest, input";

fn row_approval(row: &Row<'_>) -> rusqlite::Result<Approval> {
    let status: String = row.get(2)?;
    let scope: Option<String> = row.get(11)?;
    let expires: Option<i64> = row.get(12)?;
    let reason: Option<String> = row.get(14)?;
    let capabilities: String = row.get(7)?;
    let status = Status::from_columns(&status, scope.as_deref(), expires, reason);
    Ok(Approval {
        id: row.get(0)?,
        created: row.get(1)?,
        request: ApprovalRequest {
            principal: row.get(3)?,
            session_id: row.get(4)?,
            tool_name: row.get(5)?,
            tool_sha256: row.get(6)?,
            capabilities: serde_json::from_str(&capabilities).unwrap_or_default(),
            grant_summary: row.get(8)?,
            grant_digest: row.get(17)?,
            request_hash: row.get(9)?,
            input_summary: row.get(10)?,
            input: row.get(18)?,
        },
        status,
        decided_at: row.get(13)?,
        used: row.get::<_, i64>(15)? != 0,
        decided_by: row.get(16)?,
    })
}

fn one(
    conn: &Connection,
    filter: &str,
    args: &[&dyn rusqlite::ToSql],
) -> Result<Option<Approval>, StoreError> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM approvals WHERE {filter} ORDER BY created DESC LIMIT 1"),
        args,
        row_approval,
    )
    .optional()
    .map_err(StoreError::sql("reading approvals"))
}

impl ApprovalStore for SqliteStore {
    fn lookup(&self, request: &ApprovalRequest, now: SystemTime) -> Result<Lookup, StoreError> {
        let capabilities = serde_json::to_string(&request.capabilities).unwrap_or_default();
        let questions = questions(request, &capabilities, now);
        self.read(|conn| {
            // One snapshot for every question (a read transaction): a
            // decision committing between two of them must not read as
            // "nothing yet". Dropped, not committed: it only read.
            let snapshot = conn
                .unchecked_transaction()
                .map_err(StoreError::sql("reading approvals"))?;
            for question in &questions {
                let args: Vec<&dyn rusqlite::ToSql> = question
                    .args
                    .iter()
                    .map(|arg| match arg {
                        Arg::Text(text) => text as &dyn rusqlite::ToSql,
                        Arg::Int(n) => n as &dyn rusqlite::ToSql,
                    })
                    .collect();
                if let Some(found) = one(&snapshot, question.filter, &args)? {
                    return Ok((question.answer)(found));
                }
            }
            Ok(Lookup::Unknown)
        })
    }

    fn request(&self, request: &ApprovalRequest) -> Result<Approval, StoreError> {
        self.write("recording a pending approval", |tx| {
            if let Some(existing) = one(
                tx,
                PENDING,
                &[&request.request_hash, &request.grant_digest],
            )? {
                return Ok(existing);
            }
            let id = ulid::Ulid::new().to_string();
            let created = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
            let capabilities = serde_json::to_string(&request.capabilities).unwrap_or_default();
            tx.execute(
                "INSERT INTO approvals (id, created, status, principal, session_id, tool_name, tool_sha256, \
                 capabilities, grant_summary, request_hash, input_summary, grant_digest, input) \
                 VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
                params![
                    id,
                    created,
                    request.principal,
                    request.session_id,
                    request.tool_name,
                    request.tool_sha256,
                    capabilities,
                    request.grant_summary,
                    request.request_hash,
                    request.input_summary,
                    request.grant_digest,
                    request.input
                ],
            )
            .map_err(StoreError::sql("recording a pending approval"))?;
            append_in(
                tx,
                &[NewEntry::new(
                    EntryKind::ApprovalRequested,
                    &requested_record(&id, request),
                )],
            )?;
            Ok(pending(id, created, request))
        })
    }

    fn decide(
        &self,
        id: &str,
        decision: &OperatorDecision,
        decided_by: &str,
        now: SystemTime,
    ) -> Result<Approval, ApprovalError> {
        let status = decision.status(now);
        let decided_at = humantime::format_rfc3339_millis(now).to_string();
        let outcome: Result<Approval, ApprovalError> = self
            .write("recording a decision", |tx| {
                let Some(approval) = one(tx, "id = ?1", &[&id])? else {
                    return Ok(Err(ApprovalError::NotFound { id: id.to_string() }));
                };
                if let Some(refused) = refuse(id, &approval, decision) {
                    return Ok(Err(refused));
                }
                let (scope, expires, reason) = status.columns();
                tx.execute(
                    // `used` only said the session ended: a decision other
                    // than `session` does not depend on the session.
                    "UPDATE approvals SET status = ?2, scope = ?3, expires_at = ?4, reason = ?5, decided_at = ?6, \
                     decided_by = ?7, used = 0 WHERE id = ?1",
                    params![id, status.as_str(), scope, expires, reason, decided_at, decided_by],
                )
                .map_err(StoreError::sql("recording a decision"))?;
                let record = decided_record(&approval, &status, decided_by);
                append_in(tx, &[NewEntry::new(EntryKind::ApprovalDecided, &record)])?;
                Ok(Ok(Approval {
                    status: status.clone(),
                    decided_at: Some(decided_at.clone()),
                    decided_by: Some(decided_by.to_string()),
                    used: false,
                    ..approval
                }))
            })
            .map_err(ApprovalError::Store)?;
        outcome
    }

    fn consume(&self, id: &str) -> Result<bool, StoreError> {
        self.write("using a once approval", |tx| {
            tx.execute(
                "UPDATE approvals SET used = 1 WHERE id = ?1 AND used = 0",
                params![id],
            )
            .map(|changed| changed == 1)
            .map_err(StoreError::sql("using a once approval"))
        })
    }

    fn end_session(&self, session_id: &str) -> Result<Vec<String>, StoreError> {
        if session_id.is_empty() {
            return Ok(Vec::new());
        }
        let action = "ending a session's approvals";
        self.write(action, |tx| {
            let ids = {
                let mut statement = tx
                    .prepare(&format!(
                        "SELECT id FROM approvals WHERE {ENDED_WITH_SESSION} ORDER BY id"
                    ))
                    .map_err(StoreError::sql(action))?;
                let rows = statement
                    .query_map([session_id], |row| row.get::<_, String>(0))
                    .map_err(StoreError::sql(action))?;
                rows.collect::<Result<Vec<_>, _>>()
                    .map_err(StoreError::sql(action))?
            };
            if ids.is_empty() {
                return Ok(ids);
            }
            tx.execute(
                &format!("UPDATE approvals SET used = 1 WHERE {ENDED_WITH_SESSION}"),
                [session_id],
            )
            .map_err(StoreError::sql(action))?;
            append_in(
                tx,
                &[NewEntry::new(
                    EntryKind::Server,
                    &session_ended_record(session_id, &ids),
                )],
            )?;
            Ok(ids)
        })
    }

    fn get(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        self.read(|conn| one(conn, "id = ?1", &[&id]))
    }

    fn list(&self, pending_only: bool) -> Result<Vec<Approval>, StoreError> {
        self.read(|conn| {
            let filter = if pending_only {
                "WHERE status = 'pending'"
            } else {
                ""
            };
            let mut statement = conn
                .prepare(&format!(
                    "SELECT {COLUMNS} FROM approvals {filter} ORDER BY created DESC"
                ))
                .map_err(StoreError::sql("listing approvals"))?;
            let rows = statement
                .query_map([], row_approval)
                .map_err(StoreError::sql("listing approvals"))?;
            rows.collect::<Result<_, _>>()
                .map_err(StoreError::sql("listing approvals"))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::approvals::GrantBinding;
    use crate::journal::JournalStore;
    use std::time::Duration;

    fn request(principal: &str, session: &str, sha: &str, input: &str) -> ApprovalRequest {
        granted(principal, session, sha, input, "rule api ports [443]")
    }

    fn granted(
        principal: &str,
        session: &str,
        sha: &str,
        input: &str,
        grant: &str,
    ) -> ApprovalRequest {
        ApprovalRequest::new(
            principal,
            session,
            "fetch",
            sha,
            &["network".into()],
            // One summary for both grants: the digest alone tells them apart.
            GrantBinding::new("host = \"api\"".into(), [grant.to_string()]),
            input,
        )
    }

    #[test]
    fn an_approval_covers_only_the_grant_it_was_given_for() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open_in(dir.path()).expect("store");
        let now = SystemTime::now();
        let decisions = [
            OperatorDecision::AllowOnce,
            OperatorDecision::AllowSession,
            OperatorDecision::AllowFor(Duration::from_secs(3600)),
        ];
        // Outside any session, `session` would allow nothing: refused,
        // and the approval stays pending.
        let sessionless = granted("Agent::\"b\"", "", "sha1", "{}", "rule api ports [443]");
        let pending = store.request(&sessionless).expect("pending");
        let refused = store
            .decide(
                &pending.id,
                &OperatorDecision::AllowSession,
                "operator:test",
                now,
            )
            .expect_err("no session");
        assert_eq!(refused.code(), "approval_has_no_session");
        assert!(matches!(
            store.lookup(&sessionless, now).expect("lookup"),
            Lookup::Pending(_)
        ));

        // One principal per decision, so that earlier approvals stay apart.
        for (i, decision) in decisions.into_iter().enumerate() {
            let who = format!("Agent::\"a{i}\"");
            let narrow = granted(&who, "s1", "sha1", "{}", "rule api ports [443]");
            let wide = granted(&who, "s1", "sha1", "{}", "rule api ports [443, 80]");
            let pending = store.request(&narrow).expect("pending");
            assert_eq!(pending.request.input, "{}", "the whole input is kept");
            store
                .decide(&pending.id, &decision, "operator:test", now)
                .expect("decide");
            assert!(
                matches!(
                    store.lookup(&narrow, now).expect("lookup"),
                    Lookup::Approved(_)
                ),
                "{decision:?} covers the grant it was given for"
            );
            assert_eq!(
                store.lookup(&wide, now).expect("lookup"),
                Lookup::Unknown,
                "{decision:?} does not cover a wider grant"
            );
            let stored = store.get(&pending.id).expect("get").expect("there");
            assert_eq!(stored.request.input, "{}", "and read back");
        }
    }

    #[test]
    fn a_session_approval_ends_with_its_session() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open_in(dir.path()).expect("store");
        let now = SystemTime::now();
        let a = |session: &str, input: &str| request("Agent::\"a\"", session, "sha1", input);

        let allowed = store.request(&a("s1", "[1]")).expect("pending");
        store
            .decide(
                &allowed.id,
                &OperatorDecision::AllowSession,
                "operator:test",
                now,
            )
            .expect("decide");
        let waiting = store.request(&a("s1", "[2]")).expect("pending");
        let elsewhere = store.request(&a("s2", "[3]")).expect("pending");
        store
            .decide(
                &elsewhere.id,
                &OperatorDecision::AllowSession,
                "operator:test",
                now,
            )
            .expect("decide");
        assert!(matches!(
            store.lookup(&a("s1", "[9]"), now).expect("lookup"),
            Lookup::Approved(_)
        ));

        let ended = store.end_session("s1").expect("end");
        assert_eq!(ended.len(), 2, "the session approval and the pending one");
        assert!(ended.contains(&allowed.id) && ended.contains(&waiting.id));
        assert!(
            matches!(
                store.lookup(&a("s1", "[9]"), now).expect("lookup"),
                Lookup::Unknown
            ),
            "a session approval covers nothing once its session ended"
        );
        assert!(
            matches!(
                store.lookup(&a("s2", "[9]"), now).expect("lookup"),
                Lookup::Approved(_)
            ),
            "another session's stays"
        );
        assert!(store.get(&allowed.id).expect("get").expect("there").used);
        assert!(
            store.end_session("s1").expect("again").is_empty(),
            "ends once"
        );
        assert!(store.end_session("").expect("none").is_empty());

        // The pending one can no longer be allowed for its session, but
        // still once (which does not depend on the session).
        let refused = store
            .decide(
                &waiting.id,
                &OperatorDecision::AllowSession,
                "operator:test",
                now,
            )
            .expect_err("session ended");
        assert_eq!(refused.code(), "approval_session_ended");
        let once = store
            .decide(
                &waiting.id,
                &OperatorDecision::AllowOnce,
                "operator:test",
                now,
            )
            .expect("once");
        assert!(!once.used);
        assert!(matches!(
            store.lookup(&a("s3", "[2]"), now).expect("lookup"),
            Lookup::Approved(_)
        ));

        let journal = store.all().expect("journal");
        let entry = journal
            .iter()
            .find(|e| e.kind == "server" && e.payload.contains("session_ended"))
            .expect("journaled");
        assert!(entry.payload.contains(&allowed.id), "{}", entry.payload);
        assert!(store.verify().expect("verify").is_ok());
    }

    #[test]
    fn scopes_bind_what_they_say() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open_in(dir.path()).expect("store");
        let now = SystemTime::now();
        let a = request("Agent::\"a\"", "s1", "sha1", r#"{"q":1}"#);

        assert_eq!(store.lookup(&a, now).expect("lookup"), Lookup::Unknown);
        let pending = store.request(&a).expect("pending");
        assert_eq!(
            store.request(&a).expect("again").id,
            pending.id,
            "one pending per request"
        );
        assert!(matches!(
            store.lookup(&a, now).expect("lookup"),
            Lookup::Pending(_)
        ));

        // Once: exactly this request, one use.
        store
            .decide(
                &pending.id,
                &OperatorDecision::AllowOnce,
                "operator:test",
                now,
            )
            .expect("decide");
        assert!(matches!(
            store.lookup(&a, now).expect("lookup"),
            Lookup::Approved(_)
        ));
        let other_input = request("Agent::\"a\"", "s1", "sha1", r#"{"q":2}"#);
        assert_eq!(
            store.lookup(&other_input, now).expect("lookup"),
            Lookup::Unknown
        );
        assert!(store.consume(&pending.id).expect("use"));
        assert!(
            !store.consume(&pending.id).expect("reuse"),
            "once means once"
        );
        assert_eq!(store.lookup(&a, now).expect("lookup"), Lookup::Unknown);

        // Session: any input in that session, not another session or build.
        let s = store.request(&other_input).expect("pending");
        store
            .decide(&s.id, &OperatorDecision::AllowSession, "operator:test", now)
            .expect("decide");
        assert!(matches!(
            store
                .lookup(&request("Agent::\"a\"", "s1", "sha1", "[9]"), now)
                .expect("l"),
            Lookup::Approved(_)
        ));
        assert_eq!(
            store
                .lookup(&request("Agent::\"a\"", "s2", "sha1", "[9]"), now)
                .expect("l"),
            Lookup::Unknown
        );
        assert_eq!(
            store
                .lookup(&request("Agent::\"a\"", "s1", "sha2", "[9]"), now)
                .expect("l"),
            Lookup::Unknown
        );
        assert_eq!(
            store
                .lookup(&request("Agent::\"b\"", "s1", "sha1", "[9]"), now)
                .expect("l"),
            Lookup::Unknown
        );

        // Until: any session, until it expires.
        let u = store
            .request(&request("Agent::\"c\"", "", "sha1", "[1]"))
            .expect("pending");
        store
            .decide(
                &u.id,
                &OperatorDecision::AllowFor(Duration::from_secs(60)),
                "operator:test",
                now,
            )
            .expect("decide");
        let later = request("Agent::\"c\"", "other", "sha1", "[2]");
        assert!(matches!(
            store
                .lookup(&later, now + Duration::from_secs(59))
                .expect("l"),
            Lookup::Approved(_)
        ));
        assert_eq!(
            store
                .lookup(&later, now + Duration::from_secs(61))
                .expect("l"),
            Lookup::Unknown
        );
        assert_eq!(
            store
                .lookup(&request("Agent::\"c\"", "x", "sha2", "[2]"), now)
                .expect("l"),
            Lookup::Unknown
        );

        // Deny: this request is refused, and decisions are final.
        let d = store
            .request(&request("Agent::\"d\"", "", "sha1", "[1]"))
            .expect("pending");
        store
            .decide(
                &d.id,
                &OperatorDecision::Deny("no".into()),
                "operator:test",
                now,
            )
            .expect("decide");
        assert!(matches!(
            store
                .lookup(&request("Agent::\"d\"", "", "sha1", "[1]"), now)
                .expect("l"),
            Lookup::Denied(_)
        ));
        let again = store
            .decide(&d.id, &OperatorDecision::AllowOnce, "operator:test", now)
            .expect_err("final");
        assert_eq!(again.code(), "approval_already_decided");
        assert_eq!(
            store
                .decide("nope", &OperatorDecision::AllowOnce, "operator:test", now)
                .expect_err("missing")
                .code(),
            "approval_not_found"
        );

        // Everything is journaled and the chain holds.
        let kinds: Vec<String> = store
            .all()
            .expect("journal")
            .into_iter()
            .map(|e| e.kind)
            .collect();
        assert_eq!(
            kinds.iter().filter(|k| *k == "approval_requested").count(),
            4
        );
        assert_eq!(kinds.iter().filter(|k| *k == "approval_decided").count(), 4);
        assert!(store.verify().expect("verify").is_ok());
        assert_eq!(store.list(true).expect("list").len(), 0);
        assert_eq!(store.list(false).expect("list").len(), 4);
    }
}
