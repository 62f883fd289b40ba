//! Why a vault operation failed: errors as data, each with a stable code.

use super::{EnvelopeError, KeyBackend, MIN_PASSPHRASE_LEN, MasterError};
use crate::store::StoreError;

/// Why a vault operation failed. Never carries a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// No vault in the state directory yet.
    #[error("no vault in {place}: `airlock vault set NAME` creates one")]
    NotCreated {
        /// The state directory or the shared database.
        place: String,
    },
    /// `create` where a vault is already kept.
    #[error("a vault already exists in {place}: creating another would lose its secrets; use it")]
    AlreadyExists {
        /// The vault's file or the shared database.
        place: String,
    },
    /// A keyring vault asked for in the database replicas share.
    #[error(
        "an OS keyring keeps its key on one machine, but every replica opens this shared vault: use a passphrase, the same on every replica (AIRLOCK_VAULT_PASSPHRASE=... airlock vault init --backend passphrase --config FILE)"
    )]
    KeyringWithSharedStore,
    /// The master key was replaced while a secret was being stored.
    #[error(
        "the master key was replaced while `{name}` was being stored, so it was not: run the command again with the new passphrase"
    )]
    KeyRotated {
        /// The secret.
        name: String,
    },
    /// The vault uses a passphrase and none was given.
    #[error(
        "this vault is locked with a passphrase: set AIRLOCK_VAULT_PASSPHRASE or run on a terminal to be asked"
    )]
    PassphraseRequired,
    /// A new passphrase is too short.
    #[error("the passphrase is shorter than {MIN_PASSPHRASE_LEN} characters")]
    PassphraseTooShort,
    /// The key found does not match the one the secrets were sealed with.
    #[error(
        "wrong master key for this vault ({}){}",
        backend.as_str(),
        if matches!(backend, KeyBackend::Passphrase) { ": check the passphrase" } else { "" }
    )]
    WrongMasterKey {
        /// Where the key came from.
        backend: KeyBackend,
    },
    /// No OS credential store could keep a key.
    #[error(
        "no OS credential store could keep the master key ({}); use a passphrase instead: AIRLOCK_VAULT_PASSPHRASE=... airlock vault init --backend passphrase",
        tried.join("; ")
    )]
    NoKeyring {
        /// What each store said.
        tried: Vec<String>,
    },
    /// The master key store failed.
    #[error(transparent)]
    Master(#[from] MasterError),
    /// No secret by that name.
    #[error("no secret named `{name}` in the vault: `airlock vault list` shows what is stored")]
    UnknownSecret {
        /// The name asked for.
        name: String,
    },
    /// A name outside `[A-Za-z0-9._-]{1,64}`.
    #[error("`{name}` is not a secret name: use 1 to 64 letters, digits, `.`, `_` or `-`")]
    InvalidName {
        /// The name given.
        name: String,
    },
    /// The name exists under another scope.
    #[error(
        "`{name}` is stored with scope {existing}, not {given}: `airlock vault rm {name}` first to change its scope"
    )]
    ScopeConflict {
        /// The secret.
        name: String,
        /// Its stored scope.
        existing: String,
        /// The scope asked for.
        given: String,
    },
    /// A stored envelope does not open.
    #[error("secret `{name}`: {source}")]
    Envelope {
        /// The secret.
        name: String,
        /// Why.
        source: EnvelopeError,
    },
    /// The vault's own records are damaged.
    #[error("the vault database is damaged: {detail}")]
    Corrupt {
        /// What is wrong.
        detail: String,
    },
    /// The database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
}

impl VaultError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            VaultError::NotCreated { .. } => "vault_not_created",
            VaultError::AlreadyExists { .. } => "vault_exists",
            VaultError::KeyringWithSharedStore => "keyring_with_shared_store",
            VaultError::KeyRotated { .. } => "master_key_rotated",
            VaultError::PassphraseRequired => "passphrase_required",
            VaultError::PassphraseTooShort => "passphrase_too_short",
            VaultError::WrongMasterKey { .. } => "wrong_master_key",
            VaultError::NoKeyring { .. } => "keyring_unavailable",
            VaultError::Master(MasterError::Missing { .. }) => "master_key_missing",
            VaultError::Master(_) => "keyring_failed",
            VaultError::UnknownSecret { .. } => "unknown_secret",
            VaultError::InvalidName { .. } => "invalid_secret_name",
            VaultError::ScopeConflict { .. } => "scope_conflict",
            VaultError::Envelope { .. } => "envelope_tampered",
            VaultError::Corrupt { .. } => "vault_corrupt",
            VaultError::Store(_) => "store_failed",
        }
    }
}
