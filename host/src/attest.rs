//! Attestations: what ran, on what, under which policies, with what
//! network traffic. Each one is an entry in the hash-chained journal; the
//! chain head is signed with the host's ed25519 key in periodic
//! *checkpoints* (as transparency logs do), because signing every
//! invocation would cost more than the invocation itself. A single
//! attestation is proved by the chain from its entry to a signed checkpoint.

use crate::journal::checkpoint::checkpoint_statement;
pub use crate::journal::checkpoint::{
    CHECKPOINT_INTERVAL, HostKey, KEY_FILE, KeyError, PUBLIC_KEY_FILE, key_id, read_public_key,
};
use crate::journal::{Entry, canonical_json, entry_hash};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
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

/// Why signing or verifying failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum AttestError {
    /// The host key cannot be used.
    #[error(transparent)]
    Key(#[from] KeyError),
    /// A proof does not hold.
    #[error("{0}")]
    Invalid(String),
}

impl AttestError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            AttestError::Key(e) => e.code(),
            AttestError::Invalid(_) => "attestation_invalid",
        }
    }
}

/// A self-contained proof of one attestation: its journal entry, every
/// entry after it up to a checkpoint, and that checkpoint.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Proof {
    /// The attestation.
    pub attestation: Attestation,
    /// Entries from the attestation's own through the checkpoint, in order,
    /// as `[seq, time, kind, payload, prev_hash, hash]`.
    pub entries: Vec<(u64, String, String, String, String, String)>,
}

impl Proof {
    /// The proof for the entry at `index` of `chain` (all entries in order).
    pub fn from_chain(attestation: Attestation, chain: &[Entry], index: usize) -> Option<Self> {
        let rest = chain.get(index..)?;
        let end = rest.iter().position(|e| {
            e.kind == "checkpoint"
                && serde_json::from_str::<Value>(&e.payload)
                    .ok()
                    .and_then(|p| p["covers_seq"].as_u64())
                    .is_some_and(|covered| covered >= chain[index].seq)
        })?;
        let entries = rest[..=end]
            .iter()
            .map(|e| {
                (
                    e.seq,
                    e.time.clone(),
                    e.kind.clone(),
                    e.payload.clone(),
                    e.prev_hash.clone(),
                    e.hash.clone(),
                )
            })
            .collect();
        Some(Self {
            attestation,
            entries,
        })
    }

    /// Checks the proof against `key`: every hash, every link, the
    /// checkpoint's signature, and that the first entry holds exactly this
    /// attestation.
    pub fn verify(&self, key: &VerifyingKey) -> Result<u64, AttestError> {
        let invalid = |message: String| AttestError::Invalid(message);
        let Some(first) = self.entries.first() else {
            return Err(invalid("the proof has no entries".into()));
        };
        let payload: Value = serde_json::from_str(&first.3)
            .map_err(|e| invalid(format!("entry {}: {e}", first.0)))?;
        let stored: Attestation = serde_json::from_value(payload["attestation"].clone())
            .map_err(|e| invalid(format!("entry {} holds no attestation: {e}", first.0)))?;
        if stored != self.attestation {
            return Err(invalid(format!(
                "entry {} holds a different attestation",
                first.0
            )));
        }
        let mut prev: Option<&str> = None;
        for (seq, time, kind, payload, prev_hash, hash) in &self.entries {
            if prev.is_some_and(|p| p != prev_hash) {
                return Err(invalid(format!(
                    "entry {seq} does not follow the entry before it"
                )));
            }
            if entry_hash(*seq, time, kind, payload, prev_hash) != *hash {
                return Err(invalid(format!(
                    "entry {seq} was modified: its content does not match its hash"
                )));
            }
            prev = Some(hash);
        }
        let (checkpoint_seq, _, kind, payload, _, _) = self.entries.last().unwrap_or(first);
        let checkpoint: Value =
            serde_json::from_str(payload).map_err(|e| invalid(e.to_string()))?;
        let covers = checkpoint["covers_seq"].as_u64().unwrap_or(0);
        let head = checkpoint["head_hash"].as_str().unwrap_or_default();
        let covered = self.entries.iter().find(|e| e.0 == covers);
        if kind != "checkpoint" || covered.is_none_or(|e| e.5 != head) || covers < first.0 {
            return Err(invalid(
                "the proof does not end in a checkpoint covering the attestation".into(),
            ));
        }
        let key_id_text = checkpoint["key_id"].as_str().unwrap_or_default();
        if key_id_text != key_id(key) {
            return Err(invalid(format!(
                "the checkpoint is signed by key {key_id_text}, not {}",
                key_id(key)
            )));
        }
        let signature = hex::decode(checkpoint["signature"].as_str().unwrap_or_default())
            .ok()
            .and_then(|b| Signature::from_slice(&b).ok())
            .ok_or_else(|| invalid("the checkpoint's signature is malformed".into()))?;
        key.verify(
            checkpoint_statement(covers, head, key_id_text).as_bytes(),
            &signature,
        )
        .map_err(|_| {
            invalid(format!(
                "the signature of checkpoint {checkpoint_seq} does not verify"
            ))
        })?;
        Ok(*checkpoint_seq)
    }
}
