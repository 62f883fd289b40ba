//! [`ApprovalStore`] on whichever store a host opened, written once: an
//! approval asked for on one replica is decided through any other, a
//! `once` approval is used exactly once whichever replicas race for it,
//! and every request and decision is journaled in the transaction that
//! makes it (and announced to every replica when it commits).

use super::model::{Approval, ApprovalRequest, OperatorDecision, Status};
use super::store::{
    APPROVAL_POLL, ApprovalError, ApprovalStore, ENDED_WITH_SESSION, Lookup, PENDING,
    decided_record, pending, questions, refuse, requested_record, session_ended_record,
};
use crate::journal::{EntryKind, NewEntry, append_in};
use crate::store::sql::{Arg, Mode, Row, Topic, Tx, args};
use crate::store::{Store, StoreError};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const COLUMNS: &str = "id, created, status, principal, session_id, tool_name, tool_sha256, capabilities, \
                       grant_summary, request_hash, input_summary, scope, expires_at, decided_at, reason, used, \
                       decided_by, grant_digest, input";

/// The approvals kept in `store`.
pub fn kept_in(store: &Store) -> Arc<dyn ApprovalStore> {
    Arc::new(Kept(store.clone()))
}

/// The approvals of one store.
struct Kept(Store);

fn approval(mut row: Row) -> Result<Approval, StoreError> {
    let status = row.text(2)?;
    let scope = row.opt_text(11)?;
    let expires = row.opt_int(12)?;
    let reason = row.opt_text(14)?;
    let capabilities = row.text(7)?;
    Ok(Approval {
        id: row.text(0)?,
        created: row.text(1)?,
        request: ApprovalRequest {
            principal: row.text(3)?,
            session_id: row.text(4)?,
            tool_name: row.text(5)?,
            tool_sha256: row.text(6)?,
            capabilities: serde_json::from_str(&capabilities).unwrap_or_default(),
            grant_summary: row.text(8)?,
            grant_digest: row.text(17)?,
            request_hash: row.text(9)?,
            input_summary: row.text(10)?,
            input: row.text(18)?,
        },
        status: Status::from_columns(&status, scope.as_deref(), expires, reason),
        decided_at: row.opt_text(13)?,
        used: row.flag(15)?,
        decided_by: row.opt_text(16)?,
    })
}

/// The newest approval matching `filter`; `lock`ed against other writers
/// until the transaction ends.
fn one(
    tx: &mut dyn Tx,
    filter: &str,
    args: &[Arg<'_>],
    lock: bool,
) -> Result<Option<Approval>, StoreError> {
    let lock = if lock { tx.for_update() } else { "" };
    tx.query_opt(
        &format!(
            "SELECT {COLUMNS} FROM approvals WHERE {filter} ORDER BY created DESC LIMIT 1 {lock}"
        ),
        args,
    )?
    .map(approval)
    .transpose()
}

impl ApprovalStore for Kept {
    fn lookup(&self, request: &ApprovalRequest, now: SystemTime) -> Result<Lookup, StoreError> {
        let capabilities = serde_json::to_string(&request.capabilities).unwrap_or_default();
        let questions = questions(request, &capabilities, now);
        // One snapshot for every question: a decision committing between
        // two of them must not read as "nothing yet".
        self.0
            .transaction("reading approvals", Mode::Snapshot, |tx| {
                for question in &questions {
                    if let Some(found) = one(tx, question.filter, &question.args, false)? {
                        return Ok((question.answer)(found));
                    }
                }
                Ok(Lookup::Unknown)
            })
    }

    fn request(&self, request: &ApprovalRequest) -> Result<Approval, StoreError> {
        let pending_of = |tx: &mut dyn Tx| {
            one(
                tx,
                PENDING,
                args![&request.request_hash, &request.grant_digest],
                false,
            )
        };
        self.0
            .transaction("recording a pending approval", Mode::Write, |tx| {
                if let Some(existing) = pending_of(tx)? {
                    return Ok(existing);
                }
                let id = ulid::Ulid::new().to_string();
                let created = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
                let capabilities = serde_json::to_string(&request.capabilities).unwrap_or_default();
                let replica = tx.replica().unwrap_or_default().to_string();
                // Two replicas asking at once: the shared database's
                // unique index on pending requests lets one insert; the
                // other reads what it inserted. (No conflict target: a
                // state directory's schema has no such index, and needs
                // none under its write lock; the only other unique key is
                // the fresh id.)
                let inserted = tx.execute(
                    "INSERT INTO approvals (id, created, status, principal, session_id, tool_name, \
                     tool_sha256, capabilities, grant_summary, request_hash, input_summary, grant_digest, \
                     input, replica) \
                     VALUES (?1, ?2, 'pending', ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13) \
                     ON CONFLICT DO NOTHING",
                    args![
                        &id,
                        &created,
                        &request.principal,
                        &request.session_id,
                        &request.tool_name,
                        &request.tool_sha256,
                        &capabilities,
                        &request.grant_summary,
                        &request.request_hash,
                        &request.input_summary,
                        &request.grant_digest,
                        &request.input,
                        &replica,
                    ],
                )?;
                if inserted == 0 {
                    return pending_of(tx)?.ok_or(StoreError::Corrupt {
                        what: "pending approval",
                        detail: "the pending approval it clashed with is gone".into(),
                    });
                }
                append_in(
                    tx,
                    &[NewEntry::new(
                        EntryKind::ApprovalRequested,
                        &requested_record(&id, request),
                    )],
                )?;
                tx.notify(Topic::Approvals, &id)?;
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
        self.0
            .transaction("recording a decision", Mode::Write, |tx| {
                // Locked: two operators deciding at once are told apart.
                let Some(approval) = one(tx, "id = ?1", args![id], true)? else {
                    return Err(ApprovalError::NotFound { id: id.to_string() });
                };
                if let Some(refused) = refuse(id, &approval, decision) {
                    return Err(refused);
                }
                let (scope, expires, reason) = status.columns();
                // `used` only said the session ended: a decision other than
                // `session` does not depend on the session.
                tx.execute(
                    "UPDATE approvals SET status = ?2, scope = ?3, expires_at = ?4, reason = ?5, \
                 decided_at = ?6, decided_by = ?7, used = FALSE WHERE id = ?1",
                    args![
                        id,
                        status.as_str(),
                        scope,
                        expires,
                        reason.as_deref(),
                        &decided_at,
                        decided_by
                    ],
                )?;
                let record = decided_record(&approval, &status, decided_by);
                append_in(tx, &[NewEntry::new(EntryKind::ApprovalDecided, &record)])?;
                tx.notify(Topic::Approvals, id)?;
                Ok(Approval {
                    status: status.clone(),
                    decided_at: Some(decided_at.clone()),
                    decided_by: Some(decided_by.to_string()),
                    used: false,
                    ..approval
                })
            })
    }

    fn consume(&self, id: &str) -> Result<bool, StoreError> {
        // One statement: of replicas racing, exactly one sees a change.
        self.0
            .transaction("using a once approval", Mode::Read, |tx| {
                tx.execute(
                    "UPDATE approvals SET used = TRUE WHERE id = ?1 AND NOT used",
                    args![id],
                )
                .map(|changed| changed == 1)
            })
    }

    fn end_session(&self, session_id: &str) -> Result<Vec<String>, StoreError> {
        if session_id.is_empty() {
            return Ok(Vec::new());
        }
        self.0
            .transaction("ending a session's approvals", Mode::Write, |tx| {
                let mut ids = tx
                    .query(
                        &format!("UPDATE approvals SET used = TRUE WHERE {ENDED_WITH_SESSION} RETURNING id"),
                        args![session_id],
                    )?
                    .into_iter()
                    .map(|mut row| row.text(0))
                    .collect::<Result<Vec<_>, _>>()?;
                if ids.is_empty() {
                    return Ok(ids);
                }
                ids.sort();
                let record = session_ended_record(session_id, &ids);
                append_in(tx, &[NewEntry::new(EntryKind::Server, &record)])?;
                Ok(ids)
            })
    }

    fn get(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        self.0.transaction("reading approvals", Mode::Read, |tx| {
            one(tx, "id = ?1", args![id], false)
        })
    }

    fn list(&self, pending_only: bool) -> Result<Vec<Approval>, StoreError> {
        let filter = if pending_only {
            "WHERE status = 'pending'"
        } else {
            ""
        };
        self.0.transaction("listing approvals", Mode::Read, |tx| {
            tx.query(
                &format!("SELECT {COLUMNS} FROM approvals {filter} ORDER BY created DESC"),
                &[],
            )?
            .into_iter()
            .map(approval)
            .collect()
        })
    }

    fn news(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        self.0.shared().map(|shared| shared.approval_news())
    }

    fn poll_interval(&self) -> Duration {
        match self.0.shared() {
            // The fallback for a listener that is reconnecting: still well
            // within a second of a decision on another replica.
            Some(_) => Duration::from_millis(500),
            None => APPROVAL_POLL,
        }
    }
}

#[cfg(test)]
#[path = "kept_tests.rs"]
mod tests;
