//! [`AgentStore`] on the shared database: a token added through one
//! replica's operator socket works on every replica at once, and a
//! removal reaches every replica's token table as a notification when it
//! commits.

use super::{Agent, AgentStore, Following};
use crate::journal::{EntryKind, NewEntry, postgres_append_in};
use crate::store::postgres::AGENTS_NOTIFY;
use crate::store::{PostgresStore, StoreError};
use serde_json::Value;

/// Journals an agent change in `tx`, and tells every replica's token table
/// when the transaction commits.
async fn record_change(
    tx: &deadpool_postgres::Transaction<'_>,
    replica: &str,
    record: &Value,
) -> Result<(), StoreError> {
    tx.execute("SELECT pg_notify($1, '')", &[&AGENTS_NOTIFY])
        .await
        .map_err(StoreError::postgres("announcing an agent change"))?;
    postgres_append_in(
        tx,
        replica,
        &[NewEntry::new(EntryKind::AgentChanged, record)],
    )
    .await
    .map(drop)
}

impl AgentStore for PostgresStore {
    fn insert(
        &self,
        name: &str,
        token_sha256: &str,
        created: &str,
        record: &Value,
    ) -> Result<bool, StoreError> {
        self.run(async {
            let failed = StoreError::postgres("adding an agent");
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(&failed)?;
            let added = tx
                .execute(
                    "INSERT INTO agents (name, token_sha256, created) VALUES ($1, $2, $3) \
                     ON CONFLICT (name) DO NOTHING",
                    &[&name, &token_sha256, &created],
                )
                .await
                .map_err(&failed)?;
            if added == 1 {
                record_change(&tx, self.replica(), record).await?;
            }
            tx.commit().await.map_err(&failed)?;
            Ok(added == 1)
        })
    }

    fn delete(&self, name: &str, record: &Value) -> Result<bool, StoreError> {
        self.run(async {
            let failed = StoreError::postgres("removing an agent");
            let mut client = self.client().await?;
            let tx = client.transaction().await.map_err(&failed)?;
            let removed = tx
                .execute("DELETE FROM agents WHERE name = $1", &[&name])
                .await
                .map_err(&failed)?;
            if removed == 1 {
                record_change(&tx, self.replica(), record).await?;
            }
            tx.commit().await.map_err(&failed)?;
            Ok(removed == 1)
        })
    }

    fn all(&self) -> Result<Vec<Agent>, StoreError> {
        self.run(async {
            self.client()
                .await?
                .query("SELECT name, created FROM agents ORDER BY name", &[])
                .await
                .map(|rows| {
                    rows.iter()
                        .map(|row| Agent {
                            name: row.get(0),
                            created: row.get(1),
                        })
                        .collect()
                })
                .map_err(StoreError::postgres("listing agents"))
        })
    }

    fn by_token(&self, token_sha256: &str) -> Result<Option<String>, StoreError> {
        self.run(async {
            self.client()
                .await?
                .query_opt(
                    "SELECT name FROM agents WHERE token_sha256 = $1",
                    &[&token_sha256],
                )
                .await
                .map(|row| row.map(|row| row.get(0)))
                .map_err(StoreError::postgres("checking an agent token"))
        })
    }

    /// Replicas hear every change through the database's notifications.
    fn follow(&self) -> Result<Following, StoreError> {
        Ok(Following::unclaimed())
    }

    fn generation(&self) -> Option<u64> {
        self.agents_generation()
    }
}
