//! The tamper-evident journal: an append-only hash chain of what happened
//! (invocations with their attestations, egress records, approvals,
//! policy reloads, denials). Any modified, deleted, inserted or reordered
//! entry breaks the chain at the first bad sequence number.

mod chain;
pub mod checkpoint;
mod sqlite;

pub use chain::{ChainBreak, Entry, EntryKind, GENESIS, canonical_json, entry_hash, verify};
pub(crate) use sqlite::append_in;

use crate::store::StoreError;
use checkpoint::{CHECKPOINT_INTERVAL, HostKey};
use serde_json::Value;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Where journal entries are kept. SQLite is the embedded default.
pub trait JournalStore: Send + Sync {
    /// Appends entries in order, in one transaction; returns them as stored.
    fn append(&self, entries: &[(EntryKind, Value)]) -> Result<Vec<Entry>, StoreError>;

    /// The last `n` entries, oldest first.
    fn tail(&self, n: usize) -> Result<Vec<Entry>, StoreError>;

    /// Every entry, in sequence order.
    fn all(&self) -> Result<Vec<Entry>, StoreError>;

    /// The invocation entry whose attestation has `id`.
    fn find_attestation(&self, id: &str) -> Result<Option<Entry>, StoreError>;

    /// The newest entry of `kind`.
    fn last_of_kind(&self, kind: EntryKind) -> Result<Option<Entry>, StoreError>;

    /// Appends a checkpoint over the current head, in one transaction;
    /// `sign(seq, hash)` makes its payload.
    fn checkpoint(&self, sign: &dyn Fn(u64, &str) -> Value) -> Result<Entry, StoreError>;

    /// Checks the whole chain: how many entries and the head hash, or where
    /// it breaks.
    fn verify(&self) -> Result<Result<(u64, String), ChainBreak>, StoreError> {
        let entries = self.all()?;
        Ok(verify(&entries))
    }
}

/// A host's journal: entries, plus a signed checkpoint of the head every
/// [`CHECKPOINT_INTERVAL`] entries.
pub struct Journal {
    store: Arc<dyn JournalStore>,
    key: Arc<HostKey>,
    since_checkpoint: AtomicU64,
}

impl std::fmt::Debug for Journal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Journal")
            .field("key", &self.key)
            .finish_non_exhaustive()
    }
}

impl Journal {
    /// Journals into `store`, checkpoints signed with `key`.
    pub fn new(store: Arc<dyn JournalStore>, key: Arc<HostKey>) -> Self {
        Self {
            store,
            key,
            since_checkpoint: AtomicU64::new(0),
        }
    }

    /// Appends `entries` in one transaction; checkpoints when due.
    pub fn record(&self, entries: &[(EntryKind, Value)]) -> Result<Vec<Entry>, StoreError> {
        let stored = self.store.append(entries)?;
        let count = stored.len() as u64;
        if self.since_checkpoint.fetch_add(count, Ordering::Relaxed) + count >= CHECKPOINT_INTERVAL
        {
            self.checkpoint()?;
        }
        Ok(stored)
    }

    /// Signs the current head now.
    pub fn checkpoint(&self) -> Result<Entry, StoreError> {
        self.since_checkpoint.store(0, Ordering::Relaxed);
        self.store
            .checkpoint(&|seq, hash| self.key.checkpoint(seq, hash))
    }

    /// The underlying store.
    pub fn store(&self) -> &dyn JournalStore {
        self.store.as_ref()
    }
}
