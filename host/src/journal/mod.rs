//! The tamper-evident journal: an append-only log of what happened
//! (invocations with their attestations, egress records, approvals,
//! policy reloads, denials). Two structures vouch for it:
//!
//! - a hash chain ([`chain`]): any modified, deleted, inserted or reordered
//!   entry breaks it at the first bad sequence number;
//! - a Merkle tree over the entries ([`tree`]) with heads signed by the host
//!   key ([`head`]): a rewrite that recomputes every hash, or a truncated
//!   tail, no longer matches a signed head — above all one exported off the
//!   machine ([`audit()`] checks both).
//!
//! The structures are the `airlock-journal` crate's; this module keeps
//! them: [`JournalStore`] over the state directory's SQLite database or the
//! shared PostgreSQL one, and [`Journal`], the writer that commits entries
//! and signs heads on a [`Cadence`].

#[cfg(test)]
mod audit_tests;
mod commit;
mod kept;
mod log;
mod postgres;
mod settings;
mod stored;

pub use airlock_journal::{
    Audit, AuditFailure, Cadence, ChainBreak, Entry, EntryKind, GENESIS, NewEntry, StoredKind,
    audit, canonical_json, chain, entry_hash, head, key, tree, verdict, verify,
};
pub use commit::{Batching, CommitMode};
pub use log::append_in;
pub(crate) use settings::RawJournal;

use crate::store::StoreError;
use airlock_journal::attest::{self, AttestError, Inclusion};
use commit::Committer;
use head::TreeHead;
use key::HostKey;
use serde_json::Value;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::SystemTime;
use tree::Hash;

/// The journal kept in `store` (for a shared store: this replica's own log).
pub fn kept_in(store: &crate::store::Store) -> Arc<dyn JournalStore> {
    Arc::new(store.clone())
}

/// Where journal entries are kept. SQLite is the embedded default.
pub trait JournalStore: Send + Sync {
    /// Appends entries in order, in one transaction; returns them as stored.
    fn append(&self, entries: &[NewEntry]) -> Result<Vec<Entry>, StoreError>;

    /// The last `n` entries, oldest first.
    fn tail(&self, n: usize) -> Result<Vec<Entry>, StoreError>;

    /// Up to `n` entries numbered below `seq`, newest first (paging back
    /// through the journal).
    fn before(&self, seq: u64, n: usize) -> Result<Vec<Entry>, StoreError>;

    /// Every entry, in sequence order.
    fn all(&self) -> Result<Vec<Entry>, StoreError>;

    /// The invocation entry whose attestation has `id`.
    fn find_attestation(&self, id: &str) -> Result<Option<Entry>, StoreError>;

    /// The newest entry of `kind`.
    fn last_of_kind(&self, kind: EntryKind) -> Result<Option<Entry>, StoreError>;

    /// Every signed tree head, smallest first.
    fn heads(&self) -> Result<Vec<TreeHead>, StoreError>;

    /// The stored hashes of entries 1 to `size`, in order: the tree's
    /// leaves, read without the entries themselves.
    fn leaves(&self, size: u64) -> Result<Vec<Hash>, StoreError>;

    /// In one transaction: when `due(size, last_head)` says so, extends the
    /// last head's tree over the entries after it and stores the head
    /// `sign(size, root)` makes. Returns the new head.
    fn seal(
        &self,
        due: &dyn Fn(u64, Option<&TreeHead>) -> bool,
        sign: &dyn Fn(u64, &Hash) -> TreeHead,
    ) -> Result<Option<TreeHead>, StoreError>;

    /// Checks the whole chain: how many entries and the head hash, or where
    /// it breaks.
    fn verify(&self) -> Result<Result<(u64, Hash), ChainBreak>, StoreError> {
        let entries = self.all()?;
        Ok(verify(&entries))
    }

    /// Checks the chain and every signed head against `trusted`, and with
    /// `since` that the journal extends that head ([`audit()`]).
    fn audit(
        &self,
        trusted: &ed25519_dalek::VerifyingKey,
        since: Option<&TreeHead>,
        cadence: &Cadence,
    ) -> Result<Result<Audit, AuditFailure>, StoreError> {
        let entries = self.all()?;
        let heads = self.heads()?;
        Ok(audit(&entries, &heads, trusted, since, cadence))
    }

    /// The inclusion proof of entry `seq` under the smallest signed head
    /// that covers it, from the stored hashes up to that head.
    fn inclusion(&self, seq: u64) -> Result<Result<Inclusion, AttestError>, StoreError> {
        let heads = self.heads()?;
        let Some(head) = attest::covering(seq, &heads) else {
            return Ok(Err(AttestError::NotSealed { seq }));
        };
        let leaves = self.leaves(head.size)?;
        Ok(attest::inclusion(seq, &leaves, head))
    }
}

/// A host's journal: entries, and signed tree heads over them on a
/// [`Cadence`] and when the journal is dropped (clean shutdown).
/// Invocations commit under its [`CommitMode`] ([`Journal::commit`]).
pub struct Journal {
    core: Arc<Core>,
    committer: Committer,
}

/// The store, the key and the cadence: what commits and signs.
pub(crate) struct Core {
    store: Arc<dyn JournalStore>,
    key: Arc<HostKey>,
    cadence: Cadence,
    /// The newest head this process has seen (size, signing time). Heads
    /// only grow, so if a head is not due against it, it is not due against
    /// the database's newest either: most appends skip asking.
    seen: Mutex<Option<(u64, SystemTime)>>,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("key", &self.core.key)
            .field("cadence", &self.core.cadence)
            .field("commit", &self.committer.mode())
            .finish_non_exhaustive()
    }
}

impl Core {
    /// Appends in one transaction, then signs a head when due.
    fn record(&self, entries: &[NewEntry]) -> Result<Vec<Entry>, StoreError> {
        let stored = self.store.append(entries)?;
        let size = stored.last().map_or(0, |entry| entry.seq);
        if self.surely_not_due(size) {
            return Ok(stored);
        }
        if let Err(error) = self.seal_when_due() {
            tracing::warn!(code = error.code(), %error, "the journal's tree head was not signed");
        }
        Ok(stored)
    }

    /// Whether a journal of `size` entries is not due for a head, judged by
    /// the newest head this process has seen.
    fn surely_not_due(&self, size: u64) -> bool {
        let seen = *self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        seen.is_some_and(|(head, signed)| {
            size.saturating_sub(head) < self.cadence.entries
                && SystemTime::now()
                    .duration_since(signed)
                    .is_ok_and(|age| age < self.cadence.interval)
        })
    }

    fn seal_when_due(&self) -> Result<Option<TreeHead>, StoreError> {
        let cadence = self.cadence;
        self.seal_if(&move |size, last| cadence.due(size, last, SystemTime::now()))
    }

    fn seal_if(
        &self,
        due: &dyn Fn(u64, Option<&TreeHead>) -> bool,
    ) -> Result<Option<TreeHead>, StoreError> {
        let newest = Mutex::new(None);
        let sealed = self.store.seal(
            &|size, last| {
                if let Some(last) = last
                    && let Ok(signed) = humantime::parse_rfc3339(&last.time)
                {
                    *newest.lock().unwrap_or_else(PoisonError::into_inner) =
                        Some((last.size, signed));
                }
                due(size, last)
            },
            &|size, root| {
                let time = humantime::format_rfc3339_millis(SystemTime::now()).to_string();
                // As stored (to the millisecond), as the database would say.
                if let Ok(signed) = humantime::parse_rfc3339(&time) {
                    *newest.lock().unwrap_or_else(PoisonError::into_inner) = Some((size, signed));
                }
                TreeHead::sign(&self.key, size, root, time)
            },
        )?;
        let newest = newest.into_inner().unwrap_or_else(PoisonError::into_inner);
        if let Some((size, signed)) = newest {
            let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
            if seen.is_none_or(|(known, _)| known <= size) {
                *seen = Some((size, signed));
            }
        }
        Ok(sealed)
    }
}

impl Journal {
    /// Journals into `store`, heads signed with `key` on the default
    /// cadence, each invocation committed before its outcome.
    pub fn new(store: Arc<dyn JournalStore>, key: Arc<HostKey>) -> Self {
        Self::with_cadence(store, key, Cadence::default())
    }

    /// Journals into `store`, heads signed with `key` on `cadence`.
    pub fn with_cadence(store: Arc<dyn JournalStore>, key: Arc<HostKey>, cadence: Cadence) -> Self {
        Self::with_commit(store, key, cadence, CommitMode::default())
    }

    /// Journals into `store`, heads signed with `key` on `cadence`,
    /// invocations committed under `commit`.
    pub fn with_commit(
        store: Arc<dyn JournalStore>,
        key: Arc<HostKey>,
        cadence: Cadence,
        commit: CommitMode,
    ) -> Self {
        let core = Arc::new(Core {
            store,
            key,
            cadence,
            seen: Mutex::new(None),
        });
        let committer = Committer::new(Arc::clone(&core), commit);
        Self { core, committer }
    }

    /// Appends `entries` in one transaction, then signs a head when due.
    /// The entries are durable when this returns; a head that could not be
    /// signed is logged and signed by a later append.
    pub fn record(&self, entries: &[(EntryKind, Value)]) -> Result<Vec<Entry>, StoreError> {
        self.core.record(&prepare(entries))
    }

    /// Commits an invocation's `entries` under the journal's
    /// [`CommitMode`]: returns once they are durable (`each`; concurrent
    /// callers share a transaction) or queued (`batched`).
    pub async fn commit(&self, entries: Vec<(EntryKind, Value)>) -> Result<(), StoreError> {
        // Serialised here, on the caller's task, not in the shared writer.
        self.committer.commit(prepare(&entries)).await
    }

    /// Returns once every entry [`commit`](Self::commit) acknowledged so
    /// far is committed (at once in `each` mode).
    pub fn flush(&self) {
        self.committer.flush();
    }

    /// Signs a head if the cadence says one is due.
    pub fn seal_when_due(&self) -> Result<Option<TreeHead>, StoreError> {
        self.core.seal_when_due()
    }

    /// Signs a head over every entry not yet covered by one.
    pub fn seal(&self) -> Result<Option<TreeHead>, StoreError> {
        self.core
            .seal_if(&|size, last| size > last.map_or(0, |head| head.size))
    }

    /// The public half of the key that signs its heads.
    pub fn verifying_key(&self) -> ed25519_dalek::VerifyingKey {
        self.core.key.verifying_key()
    }

    /// Signs `message` with the host key that signs its heads: what a
    /// replica's statement is signed with, so the key its log is checked
    /// against also vouches for what the replica says it is.
    pub fn sign(&self, message: &[u8]) -> ed25519_dalek::Signature {
        self.core.key.sign(message)
    }

    /// When it signs heads.
    pub fn cadence(&self) -> &Cadence {
        &self.core.cadence
    }

    /// When invocations' entries are durable.
    pub fn commit_mode(&self) -> CommitMode {
        self.committer.mode()
    }

    /// The underlying store.
    pub fn store(&self) -> &dyn JournalStore {
        self.core.store.as_ref()
    }
}

impl Drop for Journal {
    /// A clean shutdown commits what is queued and leaves every entry
    /// under a signed head.
    fn drop(&mut self) {
        self.committer.flush_and_stop();
        if let Err(error) = self.seal() {
            tracing::warn!(code = error.code(), %error, "the journal's last tree head was not signed");
        }
    }
}

fn prepare(entries: &[(EntryKind, Value)]) -> Vec<NewEntry> {
    entries
        .iter()
        .map(|(kind, payload)| NewEntry::new(*kind, payload))
        .collect()
}
