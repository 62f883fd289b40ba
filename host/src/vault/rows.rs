//! Where a vault's sealed rows live, behind one seam: the state
//! directory's `vault.db`, or the database replicas share. Both keep the
//! same two things: the meta rows (which backend holds the master key, its
//! generation and fingerprint) and one row per sealed secret.

use super::envelope::Envelope;
use super::scope::SecretScope;
use super::{KeyBackend, VaultError};
use crate::store::{PostgresSettings, StoreError};
use std::path::{Path, PathBuf};

/// Where a vault is kept.
#[derive(Clone, Debug)]
pub enum VaultPlace {
    /// `vault.db` in this state directory.
    Dir(PathBuf),
    /// The database replicas share (`store = "postgres://…"`): every
    /// replica derives the master key from the same passphrase.
    Shared(Box<PostgresSettings>),
}

impl VaultPlace {
    /// The vault's file, or the shared database, for messages.
    pub fn describe(&self) -> String {
        match self {
            VaultPlace::Dir(dir) => super::Vault::path_in(dir).display().to_string(),
            VaultPlace::Shared(settings) => settings.describe(),
        }
    }
}

impl From<&Path> for VaultPlace {
    fn from(dir: &Path) -> Self {
        VaultPlace::Dir(dir.to_path_buf())
    }
}

impl From<&PathBuf> for VaultPlace {
    fn from(dir: &PathBuf) -> Self {
        VaultPlace::Dir(dir.clone())
    }
}

/// One stored secret, still sealed.
pub(crate) struct Row {
    pub name: String,
    pub scope: SecretScope,
    pub created: String,
    pub envelope: Envelope,
}

/// The vault's meta rows.
pub(crate) struct Meta {
    pub id: String,
    pub backend: KeyBackend,
    pub generation: u32,
    pub key_id: String,
    pub salt: Option<String>,
}

impl Meta {
    /// The meta rows as stored: `None` when there are none (no vault).
    pub(crate) fn from_pairs(pairs: &[(String, String)]) -> Result<Option<Self>, VaultError> {
        let get = |key: &str| {
            pairs
                .iter()
                .find(|(k, _)| k == key)
                .map(|(_, value)| value.clone())
        };
        let Some(id) = get("vault_id") else {
            return Ok(None);
        };
        let corrupt = |what: &str| VaultError::Corrupt {
            detail: format!("the vault's {what} is missing or unreadable"),
        };
        Ok(Some(Self {
            id,
            backend: get("backend")
                .and_then(|b| KeyBackend::parse(&b))
                .ok_or_else(|| corrupt("backend"))?,
            generation: get("generation")
                .and_then(|g| g.parse().ok())
                .ok_or_else(|| corrupt("key generation"))?,
            key_id: get("key_id").ok_or_else(|| corrupt("key id"))?,
            salt: get("salt"),
        }))
    }

    /// The meta rows to store.
    pub(super) fn pairs(&self) -> Vec<(&'static str, String)> {
        let mut pairs = vec![
            ("vault_id", self.id.clone()),
            ("backend", self.backend.as_str().to_string()),
            ("generation", self.generation.to_string()),
            ("key_id", self.key_id.clone()),
        ];
        if let Some(salt) = &self.salt {
            pairs.push(("salt", salt.clone()));
        }
        pairs
    }
}

/// Why a row was not stored.
pub(crate) enum PutError {
    /// The name is stored under this other scope.
    Scope(String),
    /// The master key was replaced since the row was sealed.
    Rotated,
    /// The store failed.
    Store(StoreError),
}

impl From<StoreError> for PutError {
    fn from(e: StoreError) -> Self {
        PutError::Store(e)
    }
}

/// A vault's rows, wherever they are kept. Each method is one transaction.
pub(crate) trait VaultRows: Send + Sync + std::fmt::Debug {
    /// Where they are, for messages.
    fn place(&self) -> String;
    /// The meta rows, as key-value pairs.
    fn meta(&self) -> Result<Vec<(String, String)>, StoreError>;
    /// Writes `meta` unless a vault is there already (`false` then).
    fn create(&self, meta: &Meta) -> Result<bool, StoreError>;
    /// One secret.
    fn get(&self, name: &str) -> Result<Option<Row>, StoreError>;
    /// Every secret, by name.
    fn all(&self) -> Result<Vec<Row>, StoreError>;
    /// Stores `row`, sealed under the master key `key_id`, keeping a
    /// replaced row's creation time; refuses a name stored under another
    /// scope, and a row sealed under a key that is no longer in force.
    fn put(&self, row: Row, key_id: &str) -> Result<(), PutError>;
    /// Removes `name`; `false` if there was none.
    fn remove(&self, name: &str) -> Result<bool, StoreError>;
    /// Replaces every row by `rewrap`'s and the meta rows by `meta`, all
    /// or nothing.
    fn rewrap(
        &self,
        rewrap: &dyn Fn(Row) -> Result<Row, StoreError>,
        meta: &Meta,
    ) -> Result<(), StoreError>;
}

/// A row's scope as stored, parsed.
pub(crate) fn parse_scope(scope: &str) -> Result<SecretScope, StoreError> {
    scope
        .parse()
        .map_err(|e: super::scope::SecretScopeError| StoreError::Corrupt {
            what: "secret scope",
            detail: e.to_string(),
        })
}
