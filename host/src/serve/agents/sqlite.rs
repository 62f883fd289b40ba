//! [`AgentStore`] on a state directory's SQLite database. A server follows
//! its agents by claiming the database: every change then goes through
//! the server's own handle, which moves the generation.

use super::{Agent, AgentStore, Following};
use crate::journal::{EntryKind, NewEntry, append_in};
use crate::store::{SqliteStore, StoreError};
use rusqlite::{OptionalExtension, params};
use serde_json::Value;
use std::sync::atomic::Ordering;

impl SqliteStore {
    /// Runs an agent change (refused while another handle claims the
    /// database) and moves the generation if it changed anything.
    fn change_agents(
        &self,
        action: &'static str,
        work: impl FnOnce(&rusqlite::Connection) -> Result<bool, StoreError>,
    ) -> Result<bool, StoreError> {
        let changed = self.claims.unclaimed(|| self.write(action, work))?;
        if changed {
            self.agents_generation.fetch_add(1, Ordering::Release);
        }
        Ok(changed)
    }
}

impl AgentStore for SqliteStore {
    fn insert(
        &self,
        name: &str,
        token_sha256: &str,
        created: &str,
        record: &Value,
    ) -> Result<bool, StoreError> {
        self.change_agents("adding an agent", |tx| {
            let exists: Option<String> = tx
                .query_row(
                    "SELECT name FROM agents WHERE name = ?1",
                    params![name],
                    |row| row.get(0),
                )
                .optional()
                .map_err(StoreError::sql("adding an agent"))?;
            if exists.is_some() {
                return Ok(false);
            }
            tx.execute(
                "INSERT INTO agents (name, token_sha256, created) VALUES (?1, ?2, ?3)",
                params![name, token_sha256, created],
            )
            .map_err(StoreError::sql("adding an agent"))?;
            append_in(tx, &[NewEntry::new(EntryKind::AgentChanged, record)])?;
            Ok(true)
        })
    }

    fn delete(&self, name: &str, record: &Value) -> Result<bool, StoreError> {
        self.change_agents("removing an agent", |tx| {
            let n = tx
                .execute("DELETE FROM agents WHERE name = ?1", params![name])
                .map_err(StoreError::sql("removing an agent"))?;
            if n == 1 {
                append_in(tx, &[NewEntry::new(EntryKind::AgentChanged, record)])?;
            }
            Ok(n == 1)
        })
    }

    fn all(&self) -> Result<Vec<Agent>, StoreError> {
        self.read(|conn| {
            let mut statement = conn
                .prepare_cached("SELECT name, created FROM agents ORDER BY name")
                .map_err(StoreError::sql("listing agents"))?;
            let rows = statement
                .query_map([], |row| {
                    Ok(Agent {
                        name: row.get(0)?,
                        created: row.get(1)?,
                    })
                })
                .map_err(StoreError::sql("listing agents"))?;
            rows.collect::<Result<Vec<_>, _>>()
                .map_err(StoreError::sql("listing agents"))
        })
    }

    fn by_token(&self, token_sha256: &str) -> Result<Option<String>, StoreError> {
        self.read(|conn| {
            conn.prepare_cached("SELECT name FROM agents WHERE token_sha256 = ?1")
                .and_then(|mut s| {
                    s.query_row(params![token_sha256], |row| row.get(0))
                        .optional()
                })
                .map_err(StoreError::sql("checking an agent token"))
        })
    }

    fn follow(&self) -> Result<Following, StoreError> {
        Ok(Following {
            _claim: Some(self.claims.claim()?),
        })
    }

    fn generation(&self) -> Option<u64> {
        // Only read while this handle's claim is held, when no other handle
        // can change the agents.
        Some(self.agents_generation.load(Ordering::Acquire))
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AgentError, Agents};
    use crate::store::{SqliteStore, StoreError};
    use std::sync::Arc;

    #[test]
    fn a_serving_handle_owns_the_agents_and_sees_its_own_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = || Arc::new(SqliteStore::open_in(dir.path()).expect("store"));
        let served = Agents::serving(open()).expect("claimed");
        let (_, token) = served.add("claude").expect("added");
        assert_eq!(
            served
                .authenticate(token.expose())
                .expect("checked")
                .as_deref(),
            Some("claude")
        );

        // Another handle (another process, or a CLI writing directly) may
        // not change the agents the server remembers.
        let direct = Agents::new(open());
        for refused in [direct.add("codex").map(drop), direct.remove("claude")] {
            match refused {
                Err(AgentError::Store(error @ StoreError::Claimed { .. })) => {
                    assert_eq!(error.code(), "state_in_use");
                }
                other => panic!("expected the claim to refuse it: {other:?}"),
            }
        }
        assert!(matches!(
            Agents::serving(open()),
            Err(StoreError::Claimed { .. })
        ));
        assert_eq!(direct.list().expect("reading is fine").len(), 1);

        // A removal through the server's handle ends the token at once.
        served.remove("claude").expect("removed");
        assert_eq!(served.authenticate(token.expose()).expect("checked"), None);

        drop(served);
        direct.add("codex").expect("nobody claims the database now");
    }
}
