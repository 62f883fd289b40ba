//! [`AgentStore`] on whichever store a host opened, written once. A token
//! added through one replica's operator socket works on every replica at
//! once, and a removal reaches every serving handle's token table when it
//! commits. A state directory's server follows its agents by claiming the
//! database: every other writer is refused while it serves.

use super::{Agent, AgentStore, Following};
use airlock::journal::{EntryKind, NewEntry, append_in};
use airlock::store::sql::{Mode, Topic, Tx, args};
use airlock::store::{Store, StoreError};
use serde_json::Value;

/// The agents of one store.
pub(super) struct Kept(pub(super) Store);

/// Journals an agent change in `tx`, and tells every serving handle when
/// the transaction commits.
fn record_change(tx: &mut dyn Tx, record: &Value) -> Result<(), StoreError> {
    tx.notify(Topic::Agents, "")?;
    append_in(tx, &[NewEntry::new(EntryKind::AgentChanged, record)]).map(drop)
}

impl AgentStore for Kept {
    fn insert(
        &self,
        name: &str,
        token_sha256: &str,
        created: &str,
        record: &Value,
    ) -> Result<bool, StoreError> {
        self.0.change_unclaimed("adding an agent", |tx| {
            let added = tx.execute(
                "INSERT INTO agents (name, token_sha256, created) VALUES (?1, ?2, ?3) \
                 ON CONFLICT (name) DO NOTHING",
                args![name, token_sha256, created],
            )? == 1;
            if added {
                record_change(tx, record)?;
            }
            Ok(added)
        })
    }

    fn delete(&self, name: &str, record: &Value) -> Result<bool, StoreError> {
        self.0.change_unclaimed("removing an agent", |tx| {
            let removed = tx.execute("DELETE FROM agents WHERE name = ?1", args![name])? == 1;
            if removed {
                record_change(tx, record)?;
            }
            Ok(removed)
        })
    }

    fn all(&self) -> Result<Vec<Agent>, StoreError> {
        self.0.transaction("listing agents", Mode::Read, |tx| {
            tx.query("SELECT name, created FROM agents ORDER BY name", &[])?
                .into_iter()
                .map(|mut row| {
                    Ok(Agent {
                        name: row.text(0)?,
                        created: row.text(1)?,
                    })
                })
                .collect()
        })
    }

    fn by_token(&self, token_sha256: &str) -> Result<Option<String>, StoreError> {
        self.0
            .transaction("checking an agent token", Mode::Read, |tx| {
                tx.query_opt(
                    "SELECT name FROM agents WHERE token_sha256 = ?1",
                    args![token_sha256],
                )?
                .map(|mut row| row.text(0))
                .transpose()
            })
    }

    fn follow(&self) -> Result<Following, StoreError> {
        Ok(Following {
            _claim: self.0.claim()?,
        })
    }

    fn generation(&self) -> Option<u64> {
        self.0.generation(Topic::Agents)
    }
}

#[cfg(test)]
mod tests {
    use super::super::{AgentError, Agents};
    use airlock::store::{Store, StoreError};

    #[test]
    fn a_serving_handle_owns_the_agents_and_sees_its_own_changes() {
        let dir = tempfile::tempdir().expect("tempdir");
        let open = || Store::in_state_dir(dir.path()).expect("store");
        let served = Agents::serving_store(&open()).expect("claimed");
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
        let direct = Agents::in_store(&open());
        for refused in [direct.add("codex").map(drop), direct.remove("claude")] {
            match refused {
                Err(AgentError::Store(error @ StoreError::Claimed { .. })) => {
                    assert_eq!(error.code(), "state_in_use");
                }
                other => panic!("expected the claim to refuse it: {other:?}"),
            }
        }
        assert!(matches!(
            Agents::serving_store(&open()),
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
