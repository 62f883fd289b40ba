//! [`JournalStore`] on whichever store a host opened, written once: a
//! state directory's journal, or this replica's own log in a shared
//! database (see [`Log`]).

use super::head::TreeHead;
use super::log::{Log, append_in};
use super::stored::{frontier, hash, hash_to_extend, stored};
use super::tree::{Frontier, Hash};
use super::{Entry, EntryKind, JournalStore, NewEntry, StoredKind};
use crate::store::sql::{Arg, Mode, Row, Tx, args};
use crate::store::{Store, StoreError};

pub(super) const COLUMNS: &str = "seq, time, kind, payload, prev_hash, hash";
const HEAD_COLUMNS: &str = "size, root, time, key_id, signature";

pub(super) fn entry(mut row: Row) -> Result<Entry, StoreError> {
    Ok(Entry {
        seq: u64::try_from(row.int(0)?).unwrap_or_default(),
        time: row.text(1)?,
        kind: StoredKind::parse(row.text(2)?),
        payload: row.text(3)?,
        prev_hash: hash(&mut row, 4)?,
        hash: hash(&mut row, 5)?,
    })
}

fn head(row: &mut Row) -> Result<TreeHead, StoreError> {
    Ok(TreeHead {
        size: u64::try_from(row.int(0)?).unwrap_or_default(),
        root: hash(row, 1)?,
        time: row.text(2)?,
        key_id: row.text(3)?,
        signature: row.text(4)?,
    })
}

/// The entries of `log` matching `filter` (over `?2`… = `args`), ordered
/// and limited as `tail` says.
pub(super) fn entries(
    tx: &mut dyn Tx,
    log: &Log,
    filter: &str,
    tail: &str,
    args: &[Arg<'_>],
) -> Result<Vec<Entry>, StoreError> {
    let mut all = vec![log.arg()];
    all.extend_from_slice(args);
    tx.query(
        &format!(
            "SELECT {COLUMNS} FROM journal WHERE {} {filter} {tail}",
            log.filter()
        ),
        &all,
    )?
    .into_iter()
    .map(entry)
    .collect()
}

/// Every signed head of `log`, smallest first.
pub(super) fn heads(tx: &mut dyn Tx, log: &Log) -> Result<Vec<TreeHead>, StoreError> {
    tx.query(
        &format!(
            "SELECT {HEAD_COLUMNS} FROM journal_heads WHERE {} ORDER BY size",
            log.filter()
        ),
        &[log.arg()],
    )?
    .into_iter()
    .map(|mut row| head(&mut row))
    .collect()
}

/// The log's size and its newest head with that head's stored frontier.
fn state(tx: &mut dyn Tx, log: &Log) -> Result<(u64, Option<(TreeHead, String)>), StoreError> {
    let size = log.last(tx)?.map_or(0, |(seq, _)| seq);
    let last = tx
        .query_opt(
            &format!(
                "SELECT {HEAD_COLUMNS}, frontier FROM journal_heads WHERE {} \
                 ORDER BY size DESC LIMIT 1",
                log.filter()
            ),
            &[log.arg()],
        )?
        .map(|mut row| Ok::<_, StoreError>((head(&mut row)?, row.text(5)?)))
        .transpose()?;
    Ok((size, last))
}

/// Reads `log` in one statement-at-a-time transaction.
fn read<T>(
    store: &Store,
    action: &'static str,
    work: impl FnOnce(&mut dyn Tx, &Log) -> Result<T, StoreError>,
) -> Result<T, StoreError> {
    store.transaction(action, Mode::Read, |tx| {
        let log = Log::of(tx);
        work(tx, &log)
    })
}

impl JournalStore for Store {
    fn append(&self, entries: &[NewEntry]) -> Result<Vec<Entry>, StoreError> {
        self.transaction("appending to the journal", Mode::Write, |tx| {
            append_in(tx, entries)
        })
    }

    fn tail(&self, n: usize) -> Result<Vec<Entry>, StoreError> {
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        read(self, "reading the journal", |tx, log| {
            let mut tail = entries(tx, log, "", "ORDER BY seq DESC LIMIT ?2", args![limit])?;
            tail.reverse();
            Ok(tail)
        })
    }

    fn before(&self, seq: u64, n: usize) -> Result<Vec<Entry>, StoreError> {
        let before = i64::try_from(seq).unwrap_or(i64::MAX);
        let limit = i64::try_from(n).unwrap_or(i64::MAX);
        read(self, "reading the journal", |tx, log| {
            entries(
                tx,
                log,
                "AND seq < ?2",
                "ORDER BY seq DESC LIMIT ?3",
                args![before, limit],
            )
        })
    }

    fn all(&self) -> Result<Vec<Entry>, StoreError> {
        read(self, "reading the journal", |tx, log| {
            entries(tx, log, "", "ORDER BY seq", &[])
        })
    }

    fn find_attestation(&self, id: &str) -> Result<Option<Entry>, StoreError> {
        read(self, "reading the journal", |tx, log| {
            // A replica's log keeps the id in a column of its own.
            let filter = match log {
                Log::Own => {
                    "AND kind = 'invocation' AND json_extract(payload, '$.attestation.id') = ?2"
                }
                Log::Replica(_) => "AND attestation = ?2",
            };
            Ok(entries(tx, log, filter, "LIMIT 1", args![id])?
                .into_iter()
                .next())
        })
    }

    fn last_of_kind(&self, kind: EntryKind) -> Result<Option<Entry>, StoreError> {
        read(self, "reading the journal", |tx, log| {
            Ok(entries(
                tx,
                log,
                "AND kind = ?2",
                "ORDER BY seq DESC LIMIT 1",
                args![kind.as_str()],
            )?
            .into_iter()
            .next())
        })
    }

    fn heads(&self) -> Result<Vec<TreeHead>, StoreError> {
        read(self, "reading the tree heads", heads)
    }

    fn leaves(&self, size: u64) -> Result<Vec<Hash>, StoreError> {
        let size = i64::try_from(size).unwrap_or(i64::MAX);
        read(self, "reading the journal's hashes", |tx, log| {
            tx.query(
                &format!(
                    "SELECT hash FROM journal WHERE {} AND seq <= ?2 ORDER BY seq",
                    log.filter()
                ),
                &[log.arg(), Arg::Int(size)],
            )?
            .into_iter()
            .map(|mut row| hash(&mut row, 0))
            .collect()
        })
    }

    fn seal(
        &self,
        due: &dyn Fn(u64, Option<&TreeHead>) -> bool,
        sign: &dyn Fn(u64, &Hash) -> TreeHead,
    ) -> Result<Option<TreeHead>, StoreError> {
        let due_now = |tx: &mut dyn Tx, log: &Log| -> Result<_, StoreError> {
            let (size, last) = state(tx, log)?;
            Ok(due(size, last.as_ref().map(|(head, _)| head)).then_some((size, last)))
        };
        // Most appends are not due: find out without taking the lock.
        if read(self, "reading the journal head", due_now)?.is_none() {
            return Ok(None);
        }
        self.transaction("signing a tree head", Mode::Write, |tx| {
            let log = Log::of(tx);
            log.lock(tx)?;
            // Again under the lock: another writer may have signed it.
            let Some((size, last)) = due_now(tx, &log)? else {
                return Ok(None);
            };
            let mut tree = match last {
                Some((head, nodes)) => frontier(head.size, &nodes)?,
                None => Frontier::default(),
            };
            let from = i64::try_from(tree.size()).unwrap_or(i64::MAX);
            // Only the leaves: the payloads are not needed to extend the tree.
            let leaves = tx.query(
                &format!(
                    "SELECT hash FROM journal WHERE {} AND seq > ?2 ORDER BY seq",
                    log.filter()
                ),
                &[log.arg(), Arg::Int(from)],
            )?;
            for mut leaf in leaves {
                tree.push(&hash_to_extend(&mut leaf, 0, "journal entry hash")?);
            }
            if tree.size() != size || size == 0 {
                // Entries are missing below the head: a verifier will say
                // where; signing over a gap would vouch for it.
                return Ok(None);
            }
            let head = sign(size, &tree.root());
            let size = i64::try_from(head.size).unwrap_or(i64::MAX);
            let frontier = stored(&tree);
            let root = head.root.hex();
            match &log {
                Log::Own => tx.execute(
                    "INSERT INTO journal_heads (size, time, root, key_id, signature, frontier) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                    args![
                        size,
                        &head.time,
                        root.as_str(),
                        &head.key_id,
                        &head.signature,
                        &frontier
                    ],
                )?,
                Log::Replica(replica) => tx.execute(
                    "INSERT INTO journal_heads (replica, size, time, root, key_id, signature, frontier) \
                     VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
                    args![
                        replica,
                        size,
                        &head.time,
                        root.as_str(),
                        &head.key_id,
                        &head.signature,
                        &frontier
                    ],
                )?,
            };
            Ok(Some(head))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::ChainBreak;
    use crate::store::SqliteStore;
    use serde_json::json;
    use std::sync::Arc;

    #[test]
    fn appends_chain_and_tampering_is_caught() {
        let dir = tempfile::tempdir().expect("tempdir");
        let store = Store::in_state_dir(dir.path()).expect("store");
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
        let sqlite = SqliteStore::open_in(dir.path()).expect("reopen");
        sqlite
            .read(|conn| {
                conn.execute(
                    "UPDATE journal SET payload = '{\"n\":42}' WHERE seq = 3",
                    [],
                )
                .map_err(StoreError::sql("tamper"))
            })
            .expect("tamper");
        let store = Store::Sqlite(Arc::new(sqlite));
        assert_eq!(
            store.verify().expect("read"),
            Err(ChainBreak::Modified { seq: 3 })
        );
    }
}
