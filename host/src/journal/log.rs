//! Whose log a statement reads or writes, and the one road into it: every
//! entry, the committer's batches and those written together with another
//! change (a pending approval, an agent, a device), is chained and stored
//! by [`append_in`], inside the caller's transaction, so that the change
//! and its record commit together.

use super::stored::hash_to_extend;
use super::tree::Hash;
use super::{Entry, GENESIS, NewEntry};
use crate::store::StoreError;
use crate::store::sql::{Arg, Tx, args};

/// [`Log::filter`] of the state directory's journal: always true, since its
/// tables hold one log.
macro_rules! own_filter {
    () => {
        "?1 IS NULL"
    };
}

/// [`Log::filter`] of one replica's log in a shared database.
macro_rules! replica_filter {
    () => {
        "replica = ?1"
    };
}

/// A log: a state directory's one journal, or one replica's among those a
/// shared database holds (its own sequence, chain, tree and key, told
/// apart by the `replica` column).
pub(super) enum Log {
    /// The state directory's journal.
    Own,
    /// This replica's log in a shared database.
    Replica(String),
}

impl Log {
    /// The log `tx` writes.
    pub(super) fn of(tx: &dyn Tx) -> Self {
        tx.replica()
            .map_or(Log::Own, |replica| Log::Replica(replica.to_string()))
    }

    /// The condition that selects this log's rows, on `?1` (bound by
    /// [`Log::arg`]); a statement's own parameters start at `?2`.
    pub(super) fn filter(&self) -> &'static str {
        match self {
            Log::Own => own_filter!(),
            Log::Replica(_) => replica_filter!(),
        }
    }

    /// The value [`Log::filter`]'s `?1` is bound to.
    pub(super) fn arg(&self) -> Arg<'_> {
        match self {
            Log::Own => Arg::Null,
            Log::Replica(replica) => Arg::Text(replica),
        }
    }

    /// Holds this log for the rest of the transaction, so that its appends
    /// and heads are made one writer at a time whichever process writes
    /// (a state directory's write transaction holds the whole database).
    pub(super) fn lock(&self, tx: &mut dyn Tx) -> Result<(), StoreError> {
        if let Log::Replica(replica) = self {
            tx.execute(
                "SELECT 1 FROM replicas WHERE name = ?1 FOR UPDATE",
                args![replica],
            )?;
        }
        Ok(())
    }

    /// The newest entry's position and hash.
    pub(super) fn last(&self, tx: &mut dyn Tx) -> Result<Option<(u64, Hash)>, StoreError> {
        // Spelled out, not formatted: every append asks.
        let sql = match self {
            Log::Own => concat!(
                "SELECT seq, hash FROM journal WHERE ",
                own_filter!(),
                " ORDER BY seq DESC LIMIT 1"
            ),
            Log::Replica(_) => concat!(
                "SELECT seq, hash FROM journal WHERE ",
                replica_filter!(),
                " ORDER BY seq DESC LIMIT 1"
            ),
        };
        tx.query_opt(sql, &[self.arg()])?
            .map(|mut row| {
                let seq = u64::try_from(row.int(0)?).unwrap_or_default();
                Ok((
                    seq,
                    hash_to_extend(&mut row, 1, "the last journal entry's hash")?,
                ))
            })
            .transpose()
    }
}

/// Appends `entries`, in order, to the log this transaction writes (held
/// for the rest of the transaction).
pub fn append_in(tx: &mut dyn Tx, entries: &[NewEntry]) -> Result<Vec<Entry>, StoreError> {
    let log = Log::of(tx);
    log.lock(tx)?;
    let (mut seq, mut prev_hash) = log.last(tx)?.unwrap_or((0, GENESIS));
    let mut stored = Vec::with_capacity(entries.len());
    for entry in entries {
        seq += 1;
        let next = entry.chained(seq, prev_hash);
        let position = i64::try_from(seq).unwrap_or(i64::MAX);
        let (prev_hex, hash_hex) = (next.prev_hash.hex(), next.hash.hex());
        match &log {
            Log::Own => tx.execute(
                "INSERT INTO journal (seq, time, kind, payload, prev_hash, hash) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6)",
                args![
                    position,
                    &next.time,
                    next.kind.as_str(),
                    &next.payload,
                    prev_hex.as_str(),
                    hash_hex.as_str()
                ],
            )?,
            Log::Replica(replica) => tx.execute(
                "INSERT INTO journal (replica, seq, time, kind, payload, prev_hash, hash, attestation) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
                args![
                    replica,
                    position,
                    &next.time,
                    next.kind.as_str(),
                    &next.payload,
                    prev_hex.as_str(),
                    hash_hex.as_str(),
                    entry.attestation_id()
                ],
            )?,
        };
        prev_hash = next.hash;
        stored.push(next);
    }
    Ok(stored)
}
