//! [`ApprovalStore`] on the shared PostgreSQL database: an approval asked
//! for on one replica is decided through any other, and a `once` approval
//! is used exactly once whichever replicas race for it. Requests and
//! decisions are journaled, in the same transaction, in the log of the
//! replica that made them, and announced on the `airlock_approvals`
//! channel (LISTEN/NOTIFY) when they commit.

use super::model::{Approval, ApprovalRequest, OperatorDecision, Status};
use super::store::{
    ApprovalError, ApprovalStore, Arg, ENDED_WITH_SESSION, Lookup, PENDING, decided_record,
    pending, questions, refuse, requested_record, session_ended_record,
};
use crate::journal::{EntryKind, NewEntry, postgres_append_in};
use crate::store::postgres::APPROVALS_NOTIFY;
use crate::store::{PostgresStore, StoreError};
use deadpool_postgres::GenericClient;
use std::time::SystemTime;
use tokio_postgres::Row;
use tokio_postgres::types::ToSql;

const COLUMNS: &str = "id, created, status, principal, session_id, tool_name, tool_sha256, capabilities, \
                       grant_summary, request_hash, input_summary, scope, expires_at, decided_at, reason, used, \
                       decided_by, grant_digest, input";

fn row_approval(row: &Row) -> Approval {
    let status: String = row.get(2);
    let scope: Option<String> = row.get(11);
    let capabilities: String = row.get(7);
    Approval {
        id: row.get(0),
        created: row.get(1),
        request: ApprovalRequest {
            principal: row.get(3),
            session_id: row.get(4),
            tool_name: row.get(5),
            tool_sha256: row.get(6),
            capabilities: serde_json::from_str(&capabilities).unwrap_or_default(),
            grant_summary: row.get(8),
            grant_digest: row.get(17),
            request_hash: row.get(9),
            input_summary: row.get(10),
            input: row.get(18),
        },
        status: Status::from_columns(&status, scope.as_deref(), row.get(12), row.get(14)),
        decided_at: row.get(13),
        used: row.get(15),
        decided_by: row.get(16),
    }
}

/// The newest approval matching `filter` (`?N` parameters, as the
/// shared questions write them, or `$N`); `lock` adds `FOR UPDATE`.
async fn one(
    client: &impl GenericClient,
    filter: &str,
    params: &[&(dyn ToSql + Sync)],
    lock: bool,
) -> Result<Option<Approval>, StoreError> {
    let lock = if lock { "FOR UPDATE" } else { "" };
    client
        .query_opt(
            &format!(
                "SELECT {COLUMNS} FROM approvals WHERE {} ORDER BY created DESC LIMIT 1 {lock}",
                filter.replace('?', "$")
            ),
            params,
        )
        .await
        .map(|row| row.as_ref().map(row_approval))
        .map_err(StoreError::postgres("reading approvals"))
}

/// Announces `id` to every listening replica when the transaction commits.
async fn announce(client: &impl GenericClient, id: &str) -> Result<(), StoreError> {
    client
        .execute("SELECT pg_notify($1, $2)", &[&APPROVALS_NOTIFY, &id])
        .await
        .map(drop)
        .map_err(StoreError::postgres("announcing an approval"))
}

impl ApprovalStore for PostgresStore {
    fn lookup(&self, request: &ApprovalRequest, now: SystemTime) -> Result<Lookup, StoreError> {
        let capabilities = serde_json::to_string(&request.capabilities).unwrap_or_default();
        let questions = questions(request, &capabilities, now);
        self.run(async {
            let mut client = self.client().await?;
            // One snapshot for every question: a decision committing
            // between two of them must not read as "nothing yet".
            let tx = client
                .build_transaction()
                .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
                .read_only(true)
                .start()
                .await
                .map_err(StoreError::postgres("reading approvals"))?;
            for question in &questions {
                let args: Vec<&(dyn ToSql + Sync)> = question
                    .args
                    .iter()
                    .map(|arg| match arg {
                        Arg::Text(text) => text as &(dyn ToSql + Sync),
                        Arg::Int(n) => n as &(dyn ToSql + Sync),
                    })
                    .collect();
                if let Some(found) = one(&tx, question.filter, &args, false).await? {
                    return Ok((question.answer)(found));
                }
            }
            Ok(Lookup::Unknown)
        })
    }

    fn request(&self, request: &ApprovalRequest) -> Result<Approval, StoreError> {
        let action = "recording a pending approval";
        self.run(async {
            let failed = StoreError::postgres(action);
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(&failed)?;
            let id = ulid::Ulid::new().to_string();
            let created = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
            let capabilities = serde_json::to_string(&request.capabilities).unwrap_or_default();
            // Two replicas asking at once: the unique index on pending
            // requests lets one insert; the other reads what it inserted.
            let inserted = tx
                .execute(
                    "INSERT INTO approvals (id, created, status, principal, session_id, tool_name, \
                     tool_sha256, capabilities, grant_summary, request_hash, input_summary, grant_digest, \
                     input, replica) \
                     VALUES ($1, $2, 'pending', $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13) \
                     ON CONFLICT (request_hash, grant_digest) WHERE status = 'pending' DO NOTHING",
                    &[
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
                        &self.replica(),
                    ],
                )
                .await
                .map_err(&failed)?;
            if inserted == 0 {
                let existing = one(&tx, PENDING, &[&request.request_hash, &request.grant_digest], false)
                    .await?
                    .ok_or(StoreError::Corrupt {
                        what: "pending approval",
                        detail: "the pending approval it clashed with is gone".into(),
                    })?;
                return Ok(existing);
            }
            let record = requested_record(&id, request);
            postgres_append_in(&tx, self.replica(), &[NewEntry::new(EntryKind::ApprovalRequested, &record)]).await?;
            announce(&tx, &id).await?;
            tx.commit().await.map_err(&failed)?;
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
        self.run(async {
            let failed = StoreError::postgres("recording a decision");
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(&failed)?;
            // Locked: two operators deciding at once are told apart.
            let Some(approval) = one(&tx, "id = $1", &[&id], true).await? else {
                return Err(ApprovalError::NotFound { id: id.to_string() });
            };
            if let Some(refused) = refuse(id, &approval, decision) {
                return Err(refused);
            }
            let (scope, expires, reason) = status.columns();
            // `used` only said the session ended: a decision other than
            // `session` does not depend on the session.
            tx.execute(
                "UPDATE approvals SET status = $2, scope = $3, expires_at = $4, reason = $5, \
                 decided_at = $6, decided_by = $7, used = FALSE WHERE id = $1",
                &[
                    &id,
                    &status.as_str(),
                    &scope,
                    &expires,
                    &reason,
                    &decided_at,
                    &decided_by,
                ],
            )
            .await
            .map_err(&failed)?;
            let record = decided_record(&approval, &status, decided_by);
            postgres_append_in(
                &tx,
                self.replica(),
                &[NewEntry::new(EntryKind::ApprovalDecided, &record)],
            )
            .await?;
            announce(&tx, id).await?;
            tx.commit().await.map_err(&failed)?;
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
        self.run(async {
            // One statement: of replicas racing, exactly one sees a change.
            self.client()
                .await?
                .execute(
                    "UPDATE approvals SET used = TRUE WHERE id = $1 AND NOT used",
                    &[&id],
                )
                .await
                .map(|changed| changed == 1)
                .map_err(StoreError::postgres("using a once approval"))
        })
    }

    fn end_session(&self, session_id: &str) -> Result<Vec<String>, StoreError> {
        if session_id.is_empty() {
            return Ok(Vec::new());
        }
        let filter = ENDED_WITH_SESSION.replace('?', "$");
        self.run(async {
            let failed = StoreError::postgres("ending a session's approvals");
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(&failed)?;
            let mut ids: Vec<String> = tx
                .query(
                    &format!("UPDATE approvals SET used = TRUE WHERE {filter} RETURNING id"),
                    &[&session_id],
                )
                .await
                .map_err(&failed)?
                .iter()
                .map(|row| row.get(0))
                .collect();
            if ids.is_empty() {
                return Ok(ids);
            }
            ids.sort();
            let record = session_ended_record(session_id, &ids);
            postgres_append_in(
                &tx,
                self.replica(),
                &[NewEntry::new(EntryKind::Server, &record)],
            )
            .await?;
            tx.commit().await.map_err(&failed)?;
            Ok(ids)
        })
    }

    fn get(&self, id: &str) -> Result<Option<Approval>, StoreError> {
        self.run(async { one(&self.client().await?, "id = $1", &[&id], false).await })
    }

    fn news(&self) -> Option<tokio::sync::watch::Receiver<u64>> {
        Some(self.approval_news())
    }

    fn poll_interval(&self) -> std::time::Duration {
        // The fallback for a listener that is reconnecting: still well
        // within a second of a decision on another replica.
        std::time::Duration::from_millis(500)
    }

    fn list(&self, pending_only: bool) -> Result<Vec<Approval>, StoreError> {
        let filter = if pending_only {
            "WHERE status = 'pending'"
        } else {
            ""
        };
        self.run(async {
            self.client()
                .await?
                .query(
                    &format!("SELECT {COLUMNS} FROM approvals {filter} ORDER BY created DESC"),
                    &[],
                )
                .await
                .map(|rows| rows.iter().map(row_approval).collect())
                .map_err(StoreError::postgres("listing approvals"))
        })
    }
}
