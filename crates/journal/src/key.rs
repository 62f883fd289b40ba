//! The host's ed25519 key, which signs the journal's tree heads
//! ([`crate::head`]). It lives beside the data it vouches for, so it proves
//! nothing against whoever can write the state directory: verifiers should
//! trust a copy of the public key kept elsewhere, and heads exported off
//! the machine.

use ed25519_dalek::{Signature, Signer, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use std::path::{Path, PathBuf};

/// The host's private key file in the state directory (mode 0600).
pub const KEY_FILE: &str = "host.key";
/// The host's public key file (hex), for verifiers.
pub const PUBLIC_KEY_FILE: &str = "host.pub";

/// Why the host key cannot be used.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum KeyError {
    /// The key file could not be read or written.
    #[error("host key {}: {action} failed: {source}", path.display())]
    File {
        /// The file.
        path: PathBuf,
        /// What was being done.
        action: &'static str,
        /// The I/O error.
        source: std::io::Error,
    },
    /// A key file does not hold a key.
    #[error("host key {} is not a key ({detail}); restore it from backup: a new key cannot vouch for old tree heads", path.display())]
    Bad {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        detail: String,
    },
}

impl KeyError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        "host_key_unusable"
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
    hex::encode(Sha256::digest(key.as_bytes()))[..16].to_string()
}

impl HostKey {
    /// Loads `<state_dir>/host.key`, creating it (and `host.pub`) on first run.
    pub fn open_or_create(state_dir: &Path) -> Result<Self, KeyError> {
        let path = state_dir.join(KEY_FILE);
        let key_error = |action, source| KeyError::File {
            path: path.clone(),
            action,
            source,
        };
        let seed = match std::fs::read(&path) {
            Ok(bytes) => <[u8; 32]>::try_from(bytes.as_slice()).map_err(|_| KeyError::Bad {
                path: path.clone(),
                detail: format!("{} bytes, expected 32", bytes.len()),
            })?,
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

    /// Signs `message`.
    pub fn sign(&self, message: &[u8]) -> Signature {
        self.signing.sign(message)
    }
}

/// Writes a new file readable by its owner only (refuses to replace one).
#[cfg(unix)]
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
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
pub fn write_private(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    std::fs::write(path, bytes)
}

/// Reads a public key (`host.pub`, hex).
pub fn read_public_key(path: &Path) -> Result<VerifyingKey, KeyError> {
    let text = std::fs::read_to_string(path).map_err(|source| KeyError::File {
        path: path.to_path_buf(),
        action: "reading",
        source,
    })?;
    parse_public_key(&text).map_err(|e| match e {
        KeyError::Bad { detail, .. } => KeyError::Bad {
            path: path.to_path_buf(),
            detail,
        },
        other => other,
    })
}

/// Parses a public key written as 64 hex digits (as in `host.pub`).
pub fn parse_public_key(text: &str) -> Result<VerifyingKey, KeyError> {
    let path = PathBuf::from("(public key)");
    let bytes = hex::decode(text.trim())
        .ok()
        .and_then(|b| <[u8; 32]>::try_from(b.as_slice()).ok())
        .ok_or_else(|| KeyError::Bad {
            path: path.to_path_buf(),
            detail: "not 64 hex digits".into(),
        })?;
    VerifyingKey::from_bytes(&bytes).map_err(|e| KeyError::Bad {
        path: path.to_path_buf(),
        detail: e.to_string(),
    })
}
