//! Every replica's log in a shared database, read from any replica: each
//! keeps its own (its own sequence, hash chain, Merkle tree and signing
//! key) in the same tables, told apart by the `replica` column, so no
//! replica ever waits on another's sequence.

use super::head::TreeHead;
use super::kept::{COLUMNS, entries, entry, heads};
use super::key::parse_public_key;
use super::log::Log;
use super::stored::corrupt;
use super::{Audit, AuditFailure, Cadence, Entry, audit};
use crate::store::postgres::ReplicaStatus;
use crate::store::sql::{Mode, args};
use crate::store::{PostgresStore, StoreError};

/// One replica's log, checked.
pub(crate) type ReplicaVerdict = (ReplicaStatus, Result<Audit, AuditFailure>);

impl PostgresStore {
    /// Replica `replica`'s whole log and signed heads, as stored (for
    /// verifying any replica's journal from any other).
    pub fn log_of(&self, replica: &str) -> Result<(Vec<Entry>, Vec<TreeHead>), StoreError> {
        let log = Log::Replica(replica.to_string());
        self.transaction("reading the journal", Mode::Read, |tx| {
            let entries = entries(tx, &log, "", "ORDER BY seq", &[])?;
            Ok((entries, heads(tx, &log)?))
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
        self.transaction("reading the journals", Mode::Read, |tx| {
            let rows = tx.query(
                &format!(
                    "SELECT {COLUMNS}, replica FROM journal \
                     ORDER BY time DESC, replica DESC, seq DESC LIMIT ?1"
                ),
                args![limit],
            )?;
            rows.into_iter()
                .rev()
                .map(|mut row| {
                    let replica = row.text(6)?;
                    Ok((replica, entry(row)?))
                })
                .collect()
        })
    }
}
