//! Signed tree heads: the writer's signed statement that the journal's
//! first `size` entries have Merkle root `root` ([`crate::tree`]). The
//! writer signs one on a cadence counted from the database and at clean
//! shutdown; verifiers only check them. An operator keeps the latest one
//! off the machine (`airlock journal head --export`) and later proves the
//! journal still extends it (`airlock journal verify --since`).

use crate::chain::canonical_json;
use crate::hash::Hash;
use crate::key::{HostKey, key_id};
use ed25519_dalek::{Signature, Verifier, VerifyingKey};
use serde::{Deserialize, Serialize};
use serde_json::json;

/// Prefixed to every signed statement, so a head signature can never be
/// mistaken for a signature over anything else.
const HEAD_DOMAIN: &str = "airlock.tree-head.v1\n";

/// One signed tree head.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct TreeHead {
    /// How many entries it covers (entries 1 to `size`).
    pub size: u64,
    /// The Merkle root over them.
    pub root: Hash,
    /// When it was signed (RFC 3339, UTC).
    pub time: String,
    /// The signing key's id ([`key_id`]).
    pub key_id: String,
    /// The ed25519 signature over the statement (hex).
    pub signature: String,
}

/// Why a head cannot be trusted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum HeadError {
    /// Signed by another key than the one the verifier trusts.
    #[error(
        "the head of {size} entries is signed by key {found}, not by the trusted key {trusted}"
    )]
    WrongKey {
        /// The head's size.
        size: u64,
        /// The key that signed it.
        found: String,
        /// The key the verifier trusts.
        trusted: String,
    },
    /// The signature does not verify.
    #[error(
        "the signature of the head of {size} entries does not verify: the head was altered or forged"
    )]
    BadSignature {
        /// The head's size.
        size: u64,
    },
    /// A field does not parse.
    #[error("the head of {size} entries is malformed: {detail}")]
    Malformed {
        /// The head's size.
        size: u64,
        /// What is wrong.
        detail: String,
    },
}

impl TreeHead {
    /// Signs `root` over the first `size` entries with `key`, at `time`.
    pub fn sign(key: &HostKey, size: u64, root: &Hash, time: String) -> Self {
        let statement = statement(size, root, &time, key.key_id());
        Self {
            signature: hex::encode(key.sign(statement.as_bytes()).to_bytes()),
            size,
            root: *root,
            time,
            key_id: key.key_id().to_string(),
        }
    }

    /// Checks the signature against the key the verifier trusts.
    pub fn verify(&self, trusted: &VerifyingKey) -> Result<(), HeadError> {
        let size = self.size;
        let trusted_id = key_id(trusted);
        if self.key_id != trusted_id {
            return Err(HeadError::WrongKey {
                size,
                found: self.key_id.clone(),
                trusted: trusted_id,
            });
        }
        let signature = hex::decode(&self.signature)
            .ok()
            .and_then(|bytes| Signature::from_slice(&bytes).ok())
            .ok_or_else(|| HeadError::Malformed {
                size,
                detail: "the signature is not 128 hex digits".into(),
            })?;
        let statement = statement(size, &self.root, &self.time, &self.key_id);
        trusted
            .verify(statement.as_bytes(), &signature)
            .map_err(|_| HeadError::BadSignature { size })
    }
}

fn statement(size: u64, root: &Hash, time: &str, key_id: &str) -> String {
    let fields = json!({ "size": size, "root": root, "time": time, "key_id": key_id });
    format!("{HEAD_DOMAIN}{}", canonical_json(&fields))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_head_verifies_under_its_key_only_and_any_change_breaks_it() {
        let dir = tempfile::tempdir().expect("tempdir");
        let key = HostKey::open_or_create(dir.path()).expect("key");
        let head = TreeHead::sign(&key, 5, &[3; 32].into(), "2026-12-01T00:00:00Z".into());
        assert_eq!(head.verify(&key.verifying_key()), Ok(()));

        let other = HostKey::open_or_create(tempfile::tempdir().expect("tmp").path()).expect("key");
        assert!(matches!(
            head.verify(&other.verifying_key()),
            Err(HeadError::WrongKey { .. })
        ));
        for altered in [
            TreeHead {
                size: 6,
                ..head.clone()
            },
            TreeHead {
                root: [4; 32].into(),
                ..head.clone()
            },
            TreeHead {
                time: "2026-12-02T00:00:00Z".into(),
                ..head.clone()
            },
        ] {
            assert!(matches!(
                altered.verify(&key.verifying_key()),
                Err(HeadError::BadSignature { .. })
            ));
        }
        let garbled = TreeHead {
            signature: "00".into(),
            ..head
        };
        assert!(matches!(
            garbled.verify(&key.verifying_key()),
            Err(HeadError::Malformed { .. })
        ));
    }
}
