//! Attestations: what ran, on what, under which policies, with what
//! network traffic. Each one is an entry in the hash-chained journal; the
//! chain head is signed with the host's ed25519 key in periodic
//! *checkpoints* (as transparency logs do), because signing every
//! invocation would cost more than the invocation itself. A single
//! attestation is proved by the chain from its entry to a signed checkpoint.

use crate::journal::{Entry, canonical_json, entry_hash};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The host's private key file in the state directory (mode 0600).
pub const KEY_FILE: &str = "host.key";
/// The host's public key file (hex), for verifiers.
pub const PUBLIC_KEY_FILE: &str = "host.pub";
/// Entries between signed checkpoints of the journal head.
pub const CHECKPOINT_INTERVAL: u64 = 64;
const CHECKPOINT_DOMAIN: &str = "airlock.checkpoint.v1\n";

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
    /// The key file could not be read or written.
    #[error("host key {}: {action} failed: {source}", path.display())]
    KeyFile {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file does not hold a key.
    #[error("host key {} is not a key ({detail}); restore it from backup: a new key cannot vouch for old checkpoints", path.display())]
    BadKey {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
    /// A proof does not hold.
    #[error("{0}")]
    Invalid(String),
}

impl AttestError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            AttestError::KeyFile { .. } | AttestError::BadKey { .. } => "host_key_unusable",
            AttestError::Invalid(_) => "attestation_invalid",
        }
    }
}

/// The host's ed25519 signing key.
pub struct HostKey {
    signing: SigningKey,
    key_id: String,
}

impl std::fmt::Debug for HostKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostKey")
            .field("key_id", &self.key_id)
            .finish_non_exhaustive()
    }
}

/// The short id of a public key: the first 16 hex digits of its SHA-256.
pub fn key_id(key: &VerifyingKey) -> String {
    sha256_hex(key.as_bytes())[..16].to_string()
}

impl HostKey {
    /// Loads `<state_dir>/host.key`, creating it (and `host.pub`) on first run.
    pub fn open_or_create(state_dir: &Path) -> Result<Self, AttestError> {
        let path = state_dir.join(KEY_FILE);
        let key_error = |action, source| AttestError::KeyFile {
            path: path.clone(),
            action,
            source,
        };
        let seed = match std::fs::read(&path) {
            Ok(bytes) => {
                <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| AttestError::BadKey {
                    path: path.clone(),
                    detail: format!("{} bytes, expected 32", bytes.len()),
                })?
            }
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                std::fs::create_dir_all(state_dir)
                    .map_err(|e| key_error("creating its directory", e))?;
                let mut seed = [0u8; 32];
                getrandom::fill(&mut seed)
                    .map_err(|e| key_error("generating", std::io::Error::other(e.to_string())))?;
                write_private(&path, &seed).map_err(|e| key_error("creating", e))?;
                seed
            }
            Err(e) => return Err(key_error("reading", e)),
        };
        let signing = SigningKey::from_bytes(&seed);
        let public = state_dir.join(PUBLIC_KEY_FILE);
        if !public.exists() {
            std::fs::write(&public, hex::encode(signing.verifying_key().as_bytes()))
                .map_err(|e| key_error("writing the public key", e))?;
        }
        Ok(Self {
            key_id: key_id(&signing.verifying_key()),
            signing,
        })
    }

    /// The public half.
    pub fn verifying_key(&self) -> VerifyingKey {
        self.signing.verifying_key()
    }

    /// Its short id.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// The payload of a checkpoint entry vouching for the chain up to and
    /// including `covers_seq`, whose hash is `head_hash`.
    pub fn checkpoint(&self, covers_seq: u64, head_hash: &str) -> Value {
        let statement = checkpoint_statement(covers_seq, head_hash, &self.key_id);
        let signature = self.signing.sign(statement.as_bytes());
        json!({
            "covers_seq": covers_seq,
            "head_hash": head_hash,
            "key_id": self.key_id,
            "signature": hex::encode(signature.to_bytes()),
        })
    }
}

#[cfg(unix)]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    use std::io::Write;
    use std::os::unix::fs::OpenOptionsExt;
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path)?;
    file.write_all(bytes)?;
    file.sync_all()
}

#[cfg(not(unix))]
fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

fn checkpoint_statement(covers_seq: u64, head_hash: &str, key_id: &str) -> String {
    format!(
        "{CHECKPOINT_DOMAIN}{}",
        canonical_json(
            &json!({"covers_seq": covers_seq, "head_hash": head_hash, "key_id": key_id})
        )
    )
}

/// Reads a public key (`host.pub`, hex).
pub fn read_public_key(path: &Path) -> Result<VerifyingKey, AttestError> {
    let text = std::fs::read_to_string(path).map_err(|source| AttestError::KeyFile {
        path: path.to_path_buf(),
        action: "reading",
        source,
    })?;
    let bytes = hex::decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| AttestError::BadKey {
            path: path.to_path_buf(),
            detail: "not 64 hex digits".into(),
        })?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| AttestError::BadKey {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
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
