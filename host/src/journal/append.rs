//! The one road into the journal: every entry, the committer's batches
//! and those written together with another change (a pending approval, an
//! agent, a device), is chained and stored here, inside the caller's
//! transaction, so that the change and its record commit together.

use super::{Entry, GENESIS, NewEntry};
use crate::store::StoreError;
use crate::store::sql::{Tx, args};

/// Appends `entries`, in order, to the log this transaction writes: a
/// state directory's journal, or the replica's own log in a shared
/// database (held for the rest of the transaction, so its appends are
/// made one writer at a time whichever process writes).
pub(crate) fn append_in(tx: &mut dyn Tx, entries: &[NewEntry]) -> Result<Vec<Entry>, StoreError> {
    let replica = tx.replica().map(str::to_owned);
    let last = match &replica {
        None => tx.query_opt(
            "SELECT seq, hash FROM journal ORDER BY seq DESC LIMIT 1",
            &[],
        )?,
        Some(replica) => {
            tx.execute(
                "SELECT 1 FROM replicas WHERE name = ?1 FOR UPDATE",
                args![replica],
            )?;
            tx.query_opt(
                "SELECT seq, hash FROM journal WHERE replica = ?1 ORDER BY seq DESC LIMIT 1",
                args![replica],
            )?
        }
    };
    let (mut seq, mut prev_hash) = match last {
        Some(mut row) => (u64::try_from(row.int(0)?).unwrap_or_default(), row.text(1)?),
        None => (0, GENESIS.to_string()),
    };
    let mut stored = Vec::with_capacity(entries.len());
    for entry in entries {
        seq += 1;
        let next = entry.chained(seq, prev_hash);
        let position = i64::try_from(seq).unwrap_or(i64::MAX);
        match &replica {
            None => tx.execute(
                "INSERT INTO journal (seq, time, kind, payload, prev_hash, hash) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                args![
                    position,
                    &next.time,
                    &next.kind,
                    &next.payload,
                    &next.prev_hash,
                    &next.hash
                ],
            )?,
            Some(replica) => tx.execute(
                "INSERT INTO journal (replica, seq, time, kind, payload, prev_hash, hash, attestation) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                args![
                    replica,
                    position,
                    &next.time,
                    &next.kind,
                    &next.payload,
                    &next.prev_hash,
                    &next.hash,
                    entry.attestation_id()
                ],
            )?,
        };
        prev_hash = next.hash.clone();
        stored.push(next);
    }
    Ok(stored)
}
