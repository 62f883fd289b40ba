//! The tamper-evident journal: an append-only hash chain of what happened
//! (invocations with their attestations, egress records, approvals,
//! policy reloads, denials). Any modified, deleted, inserted or reordered
//! entry breaks the chain at the first bad sequence number.

mod chain;
mod sqlite;

pub use chain::{ChainBreak, Entry, EntryKind, GENESIS, canonical_json, entry_hash, verify};
pub(crate) use sqlite::append_in;

use crate::store::StoreError;
use serde_json::Value;

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

    /// Checks the whole chain: how many entries and the head hash, or where
    /// it breaks.
    fn verify(&self) -> Result<Result<(u64, String), ChainBreak>, StoreError> {
        let entries = self.all()?;
        Ok(verify(&entries))
    }
}
