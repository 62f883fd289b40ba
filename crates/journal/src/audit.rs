//! `airlock journal verify`: the chain links, every signed head verifies
//! under the key the verifier trusts and matches the tree of the entries
//! it covers, no head vouches for entries that are gone, and — against a
//! head kept elsewhere — the journal is an append-only extension of it.

use crate::Cadence;
use crate::chain::{ChainBreak, Entry, verify};
use crate::hash::Hash;
use crate::head::{HeadError, TreeHead};
use crate::tree::{Tree, TreeError, verify_consistency};
use ed25519_dalek::VerifyingKey;

/// How many cadences' worth of entries may follow the last signed head
/// before the missing heads count as removed: a crash leaves at most about
/// one cadence unsealed, and approvals decided between appends a few more.
const UNSEALED_CADENCES: u64 = 4;

/// What a journal that verifies holds.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Audit {
    /// How many entries.
    pub entries: u64,
    /// The last entry's hash (the chain head).
    pub chain_head: Hash,
    /// The Merkle root over every entry.
    pub root: Hash,
    /// How many signed heads were checked.
    pub heads: usize,
    /// How many entries the newest signed head covers.
    pub sealed: u64,
    /// The size of the head kept elsewhere that the journal extends.
    pub extends: Option<u64>,
}

impl Audit {
    /// Entries after the newest signed head: protected by the chain only
    /// until the writer signs the next head.
    pub fn unsealed(&self) -> u64 {
        self.entries - self.sealed
    }
}

/// Why a journal does not verify.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum AuditFailure {
    /// The hash chain breaks.
    #[error(transparent)]
    Chain(#[from] ChainBreak),
    /// A signed head is not signed by the trusted key.
    #[error(transparent)]
    Head(#[from] HeadError),
    /// A proof or stored hash does not hold.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// The entries a head covers no longer have its root.
    #[error(
        "the first {size} entries no longer have the root their signed head vouches for: the journal was rewritten"
    )]
    Rewritten {
        /// The head's size.
        size: u64,
    },
    /// A head vouches for more entries than the journal holds.
    #[error(
        "a signed head vouches for {size} entries but the journal holds {entries}: entries were deleted from its end"
    )]
    Truncated {
        /// The head's size.
        size: u64,
        /// How many entries are left.
        entries: u64,
    },
    /// Far more entries follow the last head than the writer leaves.
    #[error(
        "{unsealed} entries follow the last signed head, more than the writer ever leaves ({limit}): signed heads were removed, or the journal predates them (any airlock command that writes signs one)"
    )]
    Unsealed {
        /// Entries after the last head.
        unsealed: u64,
        /// The most the writer leaves.
        limit: u64,
    },
}

impl AuditFailure {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        "journal_broken"
    }

    /// The first entry known to be bad, where one is.
    pub fn seq(&self) -> Option<u64> {
        match self {
            AuditFailure::Chain(e) => Some(e.seq()),
            AuditFailure::Truncated { entries, .. } => Some(entries + 1),
            _ => None,
        }
    }
}

/// The verdict as `journal verify --json` prints it (and the operator
/// socket answers): `valid`, then the audit or where it failed.
pub fn verdict(result: &Result<Audit, AuditFailure>) -> serde_json::Value {
    match result {
        Ok(audit) => {
            let mut value = serde_json::json!({ "valid": true, "unsealed": audit.unsealed() });
            if let (Some(fields), Ok(serde_json::Value::Object(audit))) =
                (value.as_object_mut(), serde_json::to_value(audit))
            {
                fields.extend(audit);
            }
            value
        }
        Err(failure) => serde_json::json!({
            "valid": false,
            "code": failure.code(),
            "first_bad_seq": failure.seq(),
            "message": failure.to_string(),
        }),
    }
}

/// Verifies `entries` (in storage order) and `heads` against `trusted`;
/// with `since`, also that the journal extends that head.
pub fn audit(
    entries: &[Entry],
    heads: &[TreeHead],
    trusted: &VerifyingKey,
    since: Option<&TreeHead>,
    cadence: &Cadence,
) -> Result<Audit, AuditFailure> {
    let (count, chain_head) = verify(entries)?;
    // The stored heads and the kept one are checked alike.
    let mut checked: Vec<&TreeHead> = heads.iter().chain(since).collect();
    checked.sort_by_key(|head| head.size);
    for head in &checked {
        head.verify(trusted)?;
        if head.size > count {
            return Err(AuditFailure::Truncated {
                size: head.size,
                entries: count,
            });
        }
    }
    let mut tree = Tree::new();
    let mut pending = checked.iter().peekable();
    for entry in entries {
        tree.push(entry.hash);
        while let Some(head) = pending.next_if(|head| head.size == tree.size()) {
            if head.root != tree.root() {
                return Err(AuditFailure::Rewritten { size: head.size });
            }
        }
    }
    let root = tree.root();
    if let Some(since) = since {
        // The replay above already compared roots; the consistency proof
        // is what a verifier without the entries would check.
        if let Some(path) = tree.consistency(since.size) {
            verify_consistency((&since.root, since.size), (&root, count), &path)?;
        }
    }
    let sealed = heads.iter().map(|head| head.size).max().unwrap_or(0);
    let limit = cadence.entries.saturating_mul(UNSEALED_CADENCES);
    if count - sealed > limit {
        return Err(AuditFailure::Unsealed {
            unsealed: count - sealed,
            limit,
        });
    }
    Ok(Audit {
        entries: count,
        chain_head,
        root,
        heads: heads.len(),
        sealed,
        extends: since.map(|head| head.size),
    })
}
