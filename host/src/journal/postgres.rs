//! [`JournalStore`] on the shared PostgreSQL database. Each replica keeps
//! its own log (its own sequence, hash chain, Merkle tree and signing key)
//! in the same tables, told apart by the `replica` column: no replica ever
//! waits on another's sequence.

use super::chain::{Entry, EntryKind, NewEntry};
use super::head::TreeHead;
use super::key::parse_public_key;
use super::stored::{corrupt, frontier, stored};
use super::tree::{Frontier, Hash, parse_hash};
use super::{Audit, AuditFailure, Cadence, JournalStore, append_in, audit};
use crate::store::postgres::ReplicaStatus;
use crate::store::sql::Mode;
use crate::store::{PostgresStore, StoreError};
use deadpool_postgres::{GenericClient, Transaction};
use tokio_postgres::Row;

/// One replica's log, checked.
pub type ReplicaVerdict = (ReplicaStatus, Result<Audit, AuditFailure>);

const COLUMNS: &str = "seq, time, kind, payload, prev_hash, hash";
const HEAD_COLUMNS: &str = "size, root, time, key_id, signature";

fn row_entry(row: &Row) -> Entry {
    Entry {
        seq: u64::try_from(row.get::<_, i64>(0)).unwrap_or_default(),
        time: row.get(1),
        kind: row.get(2),
        payload: row.get(3),
        prev_hash: row.get(4),
        hash: row.get(5),
    }
}

fn row_head(row: &Row) -> TreeHead {
    TreeHead {
        size: u64::try_from(row.get::<_, i64>(0)).unwrap_or_default(),
        root: row.get(1),
        time: row.get(2),
        key_id: row.get(3),
        signature: row.get(4),
    }
}

/// Holds `replica`'s log for the rest of the transaction: its appends and
/// heads are made one writer at a time, whichever process writes.
async fn lock_log(tx: &Transaction<'_>, replica: &str) -> Result<(), StoreError> {
    tx.execute(
        "SELECT 1 FROM replicas WHERE name = $1 FOR UPDATE",
        &[&replica],
    )
    .await
    .map(drop)
    .map_err(StoreError::postgres("locking the replica's journal"))
}

/// The entries of `replica`'s log matching `filter` (over `$1` = replica
/// and `params`), ordered and limited as `tail` says.
async fn entries(
    client: &impl GenericClient,
    replica: &str,
    filter: &str,
    tail: &str,
    params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
) -> Result<Vec<Entry>, StoreError> {
    let mut all: Vec<&(dyn tokio_postgres::types::ToSql + Sync)> = vec![&replica];
    all.extend_from_slice(params);
    let rows = client
        .query(
            &format!("SELECT {COLUMNS} FROM journal WHERE replica = $1 {filter} {tail}"),
            &all,
        )
        .await
        .map_err(StoreError::postgres("reading the journal"))?;
    Ok(rows.iter().map(row_entry).collect())
}

/// Every signed head of `replica`'s log, smallest first.
async fn heads(client: &impl GenericClient, replica: &str) -> Result<Vec<TreeHead>, StoreError> {
    let rows = client
        .query(
            &format!("SELECT {HEAD_COLUMNS} FROM journal_heads WHERE replica = $1 ORDER BY size"),
            &[&replica],
        )
        .await
        .map_err(StoreError::postgres("reading the tree heads"))?;
    Ok(rows.iter().map(row_head).collect())
}

/// The log's size and its newest head with that head's stored frontier.
async fn state(
    client: &impl GenericClient,
    replica: &str,
) -> Result<(u64, Option<(TreeHead, String)>), StoreError> {
    let failed = StoreError::postgres("reading the journal head");
    let size: i64 = client
        .query_one(
            "SELECT COALESCE(MAX(seq), 0) FROM journal WHERE replica = $1",
            &[&replica],
        )
        .await
        .map_err(&failed)?
        .get(0);
    let last = client
        .query_opt(
            &format!(
                "SELECT {HEAD_COLUMNS}, frontier FROM journal_heads WHERE replica = $1 \
                 ORDER BY size DESC LIMIT 1"
            ),
            &[&replica],
        )
        .await
        .map_err(&failed)?
        .map(|row| (row_head(&row), row.get::<_, String>(5)));
    Ok((u64::try_from(size).unwrap_or_default(), last))
}

impl PostgresStore {
    /// Replica `replica`'s whole log and signed heads, as stored (for
    /// verifying any replica's journal from any other).
    pub fn log_of(&self, replica: &str) -> Result<(Vec<Entry>, Vec<TreeHead>), StoreError> {
        self.run(async {
            let client = self.client().await?;
            let entries = entries(&client, replica, "", "ORDER BY seq", &[]).await?;
            Ok((entries, heads(&client, replica).await?))
        })
    }

    /// Every replica's log checked: this replica's against `trusted` (and
    /// `since`), each other one against the key it registered with.
    pub fn audit_all(
        &self,
        trusted: &ed25519_dalek::VerifyingKey,
        since: Option<&TreeHead>,
        cadence: &Cadence,
    ) -> Result<Vec<ReplicaVerdict>, StoreError> {
        let mut verdicts = Vec::new();
        for replica in self.replicas()? {
            let (entries, heads) = self.log_of(&replica.name)?;
            let own = replica.name == self.replica();
            let key = if own {
                *trusted
            } else {
                parse_public_key(&replica.public_key).map_err(corrupt("replica key"))?
            };
            let since = since.filter(|_| own);
            verdicts.push((replica, audit(&entries, &heads, &key, since, cadence)));
        }
        Ok(verdicts)
    }

    /// The last `n` entries of every replica's log, merged by time (oldest
    /// first), each with the replica that wrote it.
    pub fn tail_all(&self, n: usize) -> Result<Vec<(String, Entry)>, StoreError> {
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        self.run(async {
            let rows = self
                .client()
                .await?
                .query(
                    &format!(
                        "SELECT {COLUMNS}, replica FROM journal \
                         ORDER BY time DESC, replica DESC, seq DESC LIMIT $1"
                    ),
                    &[&limit],
                )
                .await
                .map_err(StoreError::postgres("reading the journals"))?;
            Ok(rows
                .iter()
                .rev()
                .map(|row| (row.get(6), row_entry(row)))
                .collect())
        })
    }
}

impl JournalStore for PostgresStore {
    fn append(&self, batch: &[NewEntry]) -> Result<Vec<Entry>, StoreError> {
        self.transaction("appending to the journal", Mode::Write, |tx| {
            append_in(tx, batch)
        })
    }

    fn tail(&self, n: usize) -> Result<Vec<Entry>, StoreError> {
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        self.run(async {
            let client = self.client().await?;
            let mut tail = entries(
                &client,
                self.replica(),
                "",
                "ORDER BY seq DESC LIMIT $2",
                &[&limit],
            )
            .await?;
            tail.reverse();
            Ok(tail)
        })
    }

    fn before(&self, seq: u64, n: usize) -> Result<Vec<Entry>, StoreError> {
        let before = i64::try_from(seq).unwrap_or(i64::MAX);
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        self.run(async {
            let client = self.client().await?;
            entries(
                &client,
                self.replica(),
                "AND seq < $2",
                "ORDER BY seq DESC LIMIT $3",
                &[&before, &limit],
            )
            .await
        })
    }

    fn all(&self) -> Result<Vec<Entry>, StoreError> {
        self.run(async {
            let client = self.client().await?;
            entries(&client, self.replica(), "", "ORDER BY seq", &[]).await
        })
    }

    fn find_attestation(&self, id: &str) -> Result<Option<Entry>, StoreError> {
        self.run(async {
            let client = self.client().await?;
            Ok(entries(
                &client,
                self.replica(),
                "AND attestation = $2",
                "LIMIT 1",
                &[&id],
            )
            .await?
            .into_iter()
            .next())
        })
    }

    fn last_of_kind(&self, kind: EntryKind) -> Result<Option<Entry>, StoreError> {
        self.run(async {
            let client = self.client().await?;
            Ok(entries(
                &client,
                self.replica(),
                "AND kind = $2",
                "ORDER BY seq DESC LIMIT 1",
                &[&kind.as_str()],
            )
            .await?
            .into_iter()
            .next())
        })
    }

    fn heads(&self) -> Result<Vec<TreeHead>, StoreError> {
        self.run(async {
            let client = self.client().await?;
            heads(&client, self.replica()).await
        })
    }

    fn seal(
        &self,
        due: &dyn Fn(u64, Option<&TreeHead>) -> bool,
        sign: &dyn Fn(u64, &Hash) -> TreeHead,
    ) -> Result<Option<TreeHead>, StoreError> {
        let replica = self.replica();
        self.run(async {
            let failed = StoreError::postgres("signing a tree head");
            let mut client = self.client().await?;
            // Most appends are not due: find out without the log's lock.
            let (size, last) = state(&client, replica).await?;
            if !due(size, last.as_ref().map(|(head, _)| head)) {
                return Ok(None);
            }
            let tx = client.transaction().await.map_err(&failed)?;
            lock_log(&tx, replica).await?;
            // Again under the lock: another writer may have signed it.
            let (size, last) = state(&tx, replica).await?;
            if !due(size, last.as_ref().map(|(head, _)| head)) {
                return Ok(None);
            }
            let mut tree = match last {
                Some((head, nodes)) => frontier(head.size, &nodes)?,
                None => Frontier::default(),
            };
            let from = i64::try_from(tree.size()).unwrap_or(i64::MAX);
            // Only the leaves: the payloads are not needed to extend the tree.
            let leaves = tx
                .query(
                    "SELECT hash FROM journal WHERE replica = $1 AND seq > $2 ORDER BY seq",
                    &[&replica, &from],
                )
                .await
                .map_err(&failed)?;
            for row in leaves {
                let hash: String = row.try_get(0).map_err(&failed)?;
                tree.push(&parse_hash(&hash).map_err(corrupt("journal entry hash"))?);
            }
            if tree.size() != size || size == 0 {
                // Entries are missing below the head: a verifier will say
                // where; signing over a gap would vouch for it.
                return Ok(None);
            }
            let head = sign(size, &tree.root());
            tx.execute(
                "INSERT INTO journal_heads (replica, size, time, root, key_id, signature, frontier) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7)",
                &[
                    &replica,
                    &i64::try_from(head.size).unwrap_or(i64::MAX),
                    &head.time,
                    &head.root,
                    &head.key_id,
                    &head.signature,
                    &stored(&tree),
                ],
            )
            .await
            .map_err(&failed)?;
            tx.commit().await.map_err(&failed)?;
            Ok(Some(head))
        })
    }
}
