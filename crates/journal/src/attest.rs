//! Attestations: what ran, on what, under which policies, with what
//! network traffic. Each one is an entry of the journal; the journal's
//! Merkle tree is signed by the host key in periodic *tree heads* (as
//! transparency logs do), because signing every invocation would cost more
//! than the invocation itself. A single attestation is proved by an
//! inclusion proof from its entry to a signed head, which anyone holding
//! the host's public key checks offline.

use crate::chain::{Entry, EntryKind, canonical_json};
use crate::head::{HeadError, TreeHead};
pub use crate::key::{HostKey, KEY_FILE, KeyError, PUBLIC_KEY_FILE, key_id, read_public_key};
use crate::tree::{Tree, TreeError, leaf, verify_inclusion};
use ed25519_dalek::VerifyingKey;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use sha2::{Digest, Sha256};

/// A statement of one execution, as journaled.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Attestation {
    /// The invocation id (a ULID).
    pub id: String,
    /// The tool's name.
    pub tool: String,
    /// SHA-256 of the tool's component.
    pub tool_sha256: String,
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
    hex::encode(Sha256::digest(bytes))
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
    /// The inclusion proof from the entry to the head's root (hex hashes).
    pub path: Vec<String>,
    /// The signed tree head.
    pub head: TreeHead,
}

impl Proof {
    /// The proof for `entry` (which must hold `attestation`) under the
    /// smallest of `heads` that covers it; `journal` is every entry in
    /// order (already verified by the caller).
    pub fn new(
        attestation: Attestation,
        entry: &Entry,
        journal: &[Entry],
        heads: &[TreeHead],
    ) -> Result<Self, AttestError> {
        let (path, head) = inclusion(entry, journal, heads)?;
        Ok(Self {
            attestation,
            entry: entry.clone(),
            path,
            head,
        })
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

/// The inclusion proof of any journal `entry` (hex hashes) under the
/// smallest of `heads` that covers it; `journal` is every entry in order.
pub fn inclusion(
    entry: &Entry,
    journal: &[Entry],
    heads: &[TreeHead],
) -> Result<(Vec<String>, TreeHead), AttestError> {
    let head = heads
        .iter()
        .filter(|head| head.size >= entry.seq)
        .min_by_key(|head| head.size)
        .ok_or(AttestError::NotSealed { seq: entry.seq })?;
    let mut tree = Tree::new();
    for covered in journal
        .iter()
        .take(usize::try_from(head.size).unwrap_or(usize::MAX))
    {
        tree.push(leaf(covered)?);
    }
    let path = tree
        .inclusion(entry.seq - 1)
        .filter(|_| tree.size() == head.size)
        .ok_or(AttestError::NotSealed { seq: entry.seq })?;
    Ok((path, head.clone()))
}

/// Checks that `entry` is intact, `head` is signed by `trusted`, and
/// `path` leads from the entry to the head's root.
pub fn check_inclusion(
    entry: &Entry,
    path: &[String],
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
    verify_inclusion(
        &head.root_hash()?,
        head.size,
        &leaf(entry)?,
        entry.seq,
        path,
    )?;
    Ok(())
}

/// The attestation an invocation entry holds.
pub fn attestation_in(entry: &Entry) -> Option<Attestation> {
    (entry.kind == EntryKind::Invocation)
        .then(|| serde_json::from_str::<Value>(&entry.payload).ok())
        .flatten()
        .and_then(|payload| serde_json::from_value(payload["attestation"].clone()).ok())
}
