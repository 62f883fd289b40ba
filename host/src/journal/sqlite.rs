//! [`JournalStore`] on the embedded SQLite database.

use super::JournalStore;
use super::append_in;
use super::chain::{Entry, EntryKind, NewEntry};
use super::head::TreeHead;
use super::stored::{corrupt, frontier, stored};
use super::tree::{Frontier, Hash, parse_hash};
use crate::store::sql::Mode;
use crate::store::{SqliteStore, StoreError};
use rusqlite::{Connection, OptionalExtension, Row, params};

fn row_entry(row: &Row<'_>) -> rusqlite::Result<Entry> {
    Ok(Entry {
        seq: row.get::<_, i64>(0)?.try_into().unwrap_or_default(),
        time: row.get(1)?,
        kind: row.get(2)?,
        payload: row.get(3)?,
        prev_hash: row.get(4)?,
        hash: row.get(5)?,
    })
}

const COLUMNS: &str = "seq, time, kind, payload, prev_hash, hash";

fn collect(
    conn: &Connection,
    sql: &str,
    param: Option<&dyn rusqlite::ToSql>,
) -> Result<Vec<Entry>, StoreError> {
    let mut statement = conn
        .prepare(sql)
        .map_err(StoreError::sql("reading the journal"))?;
    let rows = match param {
        Some(p) => statement.query_map([p], row_entry),
        None => statement.query_map([], row_entry),
    }
    .map_err(StoreError::sql("reading the journal"))?;
    rows.collect::<Result<_, _>>()
        .map_err(StoreError::sql("reading the journal"))
}

impl JournalStore for SqliteStore {
    fn append(&self, entries: &[NewEntry]) -> Result<Vec<Entry>, StoreError> {
        self.transaction("appending to the journal", Mode::Write, |tx| {
            append_in(tx, entries)
        })
    }

    fn tail(&self, n: usize) -> Result<Vec<Entry>, StoreError> {
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        self.read(|conn| {
            let mut entries = collect(
                conn,
                &format!("SELECT {COLUMNS} FROM journal ORDER BY seq DESC LIMIT ?1"),
                Some(&limit),
            )?;
            entries.reverse();
            Ok(entries)
        })
    }

    fn before(&self, seq: u64, n: usize) -> Result<Vec<Entry>, StoreError> {
        let before = i64::try_from(seq).unwrap_or(i64::MAX);
        self.read(|conn| {
            collect(
                conn,
                &format!(
                    "SELECT {COLUMNS} FROM journal WHERE seq < ?1 ORDER BY seq DESC LIMIT {n}"
                ),
                Some(&before),
            )
        })
    }

    fn all(&self) -> Result<Vec<Entry>, StoreError> {
        self.read(|conn| {
            collect(
                conn,
                &format!("SELECT {COLUMNS} FROM journal ORDER BY rowid"),
                None,
            )
        })
    }

    fn last_of_kind(&self, kind: EntryKind) -> Result<Option<Entry>, StoreError> {
        self.read(|conn| {
            let kind = kind.as_str().to_string();
            Ok(collect(
                conn,
                &format!("SELECT {COLUMNS} FROM journal WHERE kind = ?1 ORDER BY seq DESC LIMIT 1"),
                Some(&kind),
            )?
            .into_iter()
            .next())
        })
    }

    fn heads(&self) -> Result<Vec<TreeHead>, StoreError> {
        self.read(|conn| {
            let mut statement = conn
                .prepare(&format!(
                    "SELECT {HEAD_COLUMNS} FROM journal_heads ORDER BY size"
                ))
                .map_err(StoreError::sql("reading the tree heads"))?;
            let rows = statement
                .query_map([], row_head)
                .map_err(StoreError::sql("reading the tree heads"))?;
            rows.collect::<Result<_, _>>()
                .map_err(StoreError::sql("reading the tree heads"))
        })
    }

    fn seal(
        &self,
        due: &dyn Fn(u64, Option<&TreeHead>) -> bool,
        sign: &dyn Fn(u64, &Hash) -> TreeHead,
    ) -> Result<Option<TreeHead>, StoreError> {
        // Most appends are not due: find out without taking the write lock
        // (cached statements, and the frontier is parsed only when due).
        let due_now = |conn: &Connection| -> Result<_, StoreError> {
            let size: i64 = conn
                .prepare_cached("SELECT COALESCE(MAX(seq), 0) FROM journal")
                .and_then(|mut max| max.query_row([], |r| r.get(0)))
                .map_err(StoreError::sql("reading the journal head"))?;
            let size = u64::try_from(size).unwrap_or_default();
            let last = last_head(conn)?;
            Ok(due(size, last.as_ref().map(|(head, _)| head)).then_some((size, last)))
        };
        if self.read(due_now)?.is_none() {
            return Ok(None);
        }
        self.write("signing a tree head", |tx| {
            // Again under the lock: another writer may have signed it.
            let Some((size, last)) = due_now(tx)? else {
                return Ok(None);
            };
            let mut frontier = match last {
                Some((head, nodes)) => frontier(head.size, &nodes)?,
                None => Frontier::default(),
            };
            let from = i64::try_from(frontier.size()).unwrap_or(i64::MAX);
            // Only the leaves: the payloads are not needed to extend the tree.
            let hashes: Vec<String> = tx
                .prepare_cached("SELECT hash FROM journal WHERE seq > ?1 ORDER BY seq")
                .and_then(|mut leaves| leaves.query_map([from], |r| r.get(0))?.collect())
                .map_err(StoreError::sql("reading the journal"))?;
            for hash in hashes {
                frontier.push(&parse_hash(&hash).map_err(corrupt("journal entry hash"))?);
            }
            if frontier.size() != size || size == 0 {
                // Entries are missing below the head: a verifier will say
                // where; signing over a gap would vouch for it.
                return Ok(None);
            }
            let head = sign(size, &frontier.root());
            tx.execute(
                "INSERT INTO journal_heads (size, time, root, key_id, signature, frontier) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                params![
                    i64::try_from(head.size).unwrap_or(i64::MAX),
                    head.time,
                    head.root,
                    head.key_id,
                    head.signature,
                    stored(&frontier),
                ],
            )
            .map_err(StoreError::sql("storing a tree head"))?;
            Ok(Some(head))
        })
    }

    fn find_attestation(&self, id: &str) -> Result<Option<Entry>, StoreError> {
        self.read(|conn| {
            let id = id.to_string();
            Ok(collect(
                conn,
                &format!(
                    "SELECT {COLUMNS} FROM journal WHERE kind = 'invocation' \
                     AND json_extract(payload, '$.attestation.id') = ?1"
                ),
                Some(&id),
            )?
            .into_iter()
            .next())
        })
    }
}

const HEAD_COLUMNS: &str = "size, root, time, key_id, signature";

fn row_head(row: &Row<'_>) -> rusqlite::Result<TreeHead> {
    Ok(TreeHead {
        size: row.get::<_, i64>(0)?.try_into().unwrap_or_default(),
        root: row.get(1)?,
        time: row.get(2)?,
        key_id: row.get(3)?,
        signature: row.get(4)?,
    })
}

/// The newest head and the (stored, unparsed) frontier it was computed from.
fn last_head(conn: &Connection) -> Result<Option<(TreeHead, String)>, StoreError> {
    conn.prepare_cached(&format!(
        "SELECT {HEAD_COLUMNS}, frontier FROM journal_heads ORDER BY size DESC LIMIT 1"
    ))
    .and_then(|mut last| {
        last.query_row([], |r| Ok((row_head(r)?, r.get::<_, String>(5)?)))
            .optional()
    })
    .map_err(StoreError::sql("reading the last tree head"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::ChainBreak;
    use serde_json::json;

    #[test]
    fn appends_chain_and_tampering_is_caught() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = SqliteStore::open_in(dir.path()).expect("store");
        for n in 0..5 {
            store
                .append(&[NewEntry::new(
                    EntryKind::Invocation,
                    &json!({"n": n, "attestation": {"id": format!("A{n}")}}),
                )])
                .expect("append");
        }
        assert_eq!(store.verify().expect("read").map(|(n, _)| n), Ok(5));
        assert_eq!(
            store
                .tail(2)
                .expect("tail")
                .iter()
                .map(|e| e.seq)
                .collect::<Vec<_>>(),
            vec![4, 5]
        );
        assert_eq!(
            store.find_attestation("A3").expect("find").map(|e| e.seq),
            Some(4)
        );

        // Reopening sees the same chain.
        drop(store);
        let store = SqliteStore::open_in(dir.path()).expect("reopen");
        store
            .read(|conn| {
                conn.execute(
                    "UPDATE journal SET payload = '{\"n\":42}' WHERE seq = 3",
                    [],
                )
                .map_err(StoreError::sql("tamper"))
            })
            .expect("tamper");
        assert_eq!(
            store.verify().expect("read"),
            Err(ChainBreak::Modified { seq: 3 })
        );
    }
}
