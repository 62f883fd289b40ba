//! Attestations: what ran, on what, under which policies, with what
//! network traffic. Each one is an entry of the journal; the journal's
//! Merkle tree is signed by the host key in periodic *tree heads* (as
//! transparency logs do), because signing every invocation would cost more
//! than the invocation itself. A single attestation is proved by an
//! inclusion proof from its entry to a signed head, which anyone holding
//! the host's public key checks offline.

use crate::chain::{Entry, EntryKind, canonical_json};
use crate::hash::Hash;
use crate::head::{HeadError, TreeHead};
pub use crate::key::{HostKey, KEY_FILE, KeyError, PUBLIC_KEY_FILE, key_id, read_public_key};
use crate::tree::{Tree, TreeError, verify_inclusion};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A statement of one execution, as journaled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// The invocation id (a ULID).
    pub id: String,
    /// The tool's name.
    pub tool: String,
    /// SHA-256 of the tool's component.
    pub tool_sha256: String,
    /// Where the component was pulled from (`oci://…@sha256:…`), for one
    /// from a registry; absent in attestations of local files.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// Who signed that component, when a signature was required.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub signer: Option<String>,
    /// The tool's world.
    pub world: String,
    /// Who asked.
    pub principal: String,
    /// SHA-256 of the input text.
    pub input_sha256: String,
    /// SHA-256 of the output text, when the tool completed.
    pub output_sha256: Option<String>,
    /// The outcome's reason code (`ok`, `deadline_exceeded`, ...).
    pub outcome: String,
    /// What ran it (`wasm_component`).
    pub executor: String,
    /// How it was confined (`wasm_sandbox`).
    pub enforcement: String,
    /// The policies that allowed it.
    pub policies: Vec<String>,
    /// The approval it ran under, if any.
    pub approval_id: Option<String>,
    /// SHA-256 of its egress records (canonical JSON array).
    pub egress_digest: String,
    /// How many egress records.
    pub egress_count: usize,
    /// Start (RFC 3339).
    pub started: String,
    /// End (RFC 3339).
    pub ended: String,
    /// The airlock version.
    pub airlock_version: String,
}

/// Lowercase hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    Hash::of(bytes).to_hex()
}

/// The digest of a list of egress records, as journaled.
pub fn egress_digest(records: &[Value]) -> String {
    sha256_hex(canonical_json(&Value::Array(records.to_vec())).as_bytes())
}

/// Why a proof cannot be made or does not hold.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// The host key cannot be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// The head is not signed by the trusted key.
    #[error(transparent)]
    Head(#[from] HeadError),
    /// The entry is not under the head.
    #[error(transparent)]
    Tree(#[from] TreeError),
    /// The entry does not hold this attestation.
    #[error("{0}")]
    Invalid(String),
    /// No signed head covers the entry yet.
    #[error(
        "entry {seq} is not yet covered by a signed tree head (the writer signs one every few seconds while it writes, and when it stops); try again shortly"
    )]
    NotSealed {
        /// The attestation's entry.
        seq: u64,
    },
}

impl AttestError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            AttestError::Key(e) => e.code(),
            AttestError::NotSealed { .. } => "attestation_not_sealed",
            _ => "attestation_invalid",
        }
    }
}

/// A self-contained proof of one attestation: its journal entry, the
/// entry's inclusion proof, and the signed head it leads to.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// The attestation.
    pub attestation: Attestation,
    /// The journal entry that holds it.
    pub entry: Entry,
    /// The inclusion proof from the entry to the head's root.
    pub path: Vec<Hash>,
    /// The signed tree head.
    pub head: TreeHead,
}

impl Proof {
    /// The proof that `entry` (which must hold `attestation`) is under
    /// `inclusion`'s head.
    pub fn new(attestation: Attestation, entry: &Entry, inclusion: Inclusion) -> Self {
        Self {
            attestation,
            entry: entry.clone(),
            path: inclusion.path,
            head: inclusion.head,
        }
    }

    /// Checks the proof against `trusted` alone: the entry's hash, that it
    /// holds exactly this attestation, the head's signature, and the path
    /// from the entry to the head's root. Returns the head's size.
    pub fn verify(&self, trusted: &VerifyingKey) -> Result<u64, AttestError> {
        let entry = &self.entry;
        check_inclusion(entry, &self.path, &self.head, trusted)?;
        let stored = attestation_in(entry).ok_or_else(|| {
            AttestError::Invalid(format!("entry {} holds no attestation", entry.seq))
        })?;
        if stored != self.attestation {
            return Err(AttestError::Invalid(format!(
                "entry {} holds a different attestation",
                entry.seq
            )));
        }
        Ok(self.head.size)
    }
}

/// Where one entry sits in a signed tree: the path from its leaf to the
/// root of `head`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Inclusion {
    /// The sibling hashes from the leaf up.
    pub path: Vec<Hash>,
    /// The signed head whose root the path leads to.
    pub head: TreeHead,
}

/// The smallest of `heads` that covers entry `seq`: the one its proof
/// leads to.
pub fn covering(seq: u64, heads: &[TreeHead]) -> Option<&TreeHead> {
    heads
        .iter()
        .filter(|head| head.size >= seq)
        .min_by_key(|head| head.size)
}

/// The inclusion proof of entry `seq` under `head`, from `leaves`: the
/// stored hashes of entries 1 to `head.size` in order (only the hashes: a
/// proof needs no entry's content).
pub fn inclusion(seq: u64, leaves: &[Hash], head: &TreeHead) -> Result<Inclusion, AttestError> {
    if u64::try_from(leaves.len()).ok() != Some(head.size) || seq == 0 || seq > head.size {
        return Err(AttestError::NotSealed { seq });
    }
    let mut tree = Tree::new();
    leaves.iter().for_each(|leaf| tree.push(*leaf));
    let path = tree
        .inclusion(seq - 1)
        .ok_or(AttestError::NotSealed { seq })?;
    Ok(Inclusion {
        path,
        head: head.clone(),
    })
}

/// Checks that `entry` is intact, `head` is signed by `trusted`, and
/// `path` leads from the entry to the head's root.
pub fn check_inclusion(
    entry: &Entry,
    path: &[Hash],
    head: &TreeHead,
    trusted: &VerifyingKey,
) -> Result<(), AttestError> {
    if !entry.is_intact() {
        return Err(AttestError::Invalid(format!(
            "entry {} was modified: its content does not match its hash",
            entry.seq
        )));
    }
    head.verify(trusted)?;
    verify_inclusion(&head.root, head.size, &entry.hash, entry.seq, path)?;
    Ok(())
}

/// The attestation an invocation entry holds.
pub fn attestation_in(entry: &Entry) -> Option<Attestation> {
    (entry.kind == EntryKind::Invocation)
        .then(|| serde_json::from_str::<Value>(&entry.payload).ok())
        .flatten()
        .and_then(|payload| serde_json::from_value(payload["attestation"].clone()).ok())
}
