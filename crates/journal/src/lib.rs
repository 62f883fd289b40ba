//! airlock's tamper-evident journal, as data: hash-chained entries
//! ([`chain`]), a Merkle tree over them ([`tree`]), tree heads signed by
//! the host key ([`head`], [`key`]), the audit that checks all of it
//! ([`audit()`]), and attestations with their offline proofs ([`attest`]). Where entries are stored is the host's business: this
//! crate knows no database.

#![deny(missing_docs)]
// `pub` means part of the crate's API; anything else says `pub(crate)`.
#![warn(unreachable_pub)]

pub mod attest;
mod audit;
pub mod chain;
mod hash;
pub mod head;
pub mod key;
pub mod tree;

pub use audit::{Audit, AuditFailure, audit, verdict};
pub use chain::{
    ChainBreak, Entry, EntryKind, GENESIS, NewEntry, StoredKind, canonical_json, entry_hash, verify,
};
pub use hash::{Hash, Hex, NotAHash};

use head::TreeHead;
use std::time::{Duration, SystemTime};

/// When the writer signs a tree head: after `entries` new entries, or
/// when the last head is `interval` old and entries came since (checked at
/// each append, and by `airlock serve` on a timer) — counted from the
/// database, so every process that writes shares one cadence.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Cadence {
    /// Entries between heads.
    pub entries: u64,
    /// Longest time a new entry waits for a head.
    pub interval: Duration,
}

impl Default for Cadence {
    fn default() -> Self {
        Self {
            entries: 64,
            interval: Duration::from_secs(10),
        }
    }
}

impl Cadence {
    /// Whether a journal of `size` entries whose last head is `last` needs
    /// a new one at `now`.
    pub fn due(&self, size: u64, last: Option<&TreeHead>, now: SystemTime) -> bool {
        let Some(last) = last else {
            return size > 0;
        };
        let old = humantime::parse_rfc3339(&last.time)
            .ok()
            .and_then(|signed| now.duration_since(signed).ok())
            .is_none_or(|age| age >= self.interval);
        size > last.size && (size - last.size >= self.entries || old)
    }
}
