//! The vault: secrets the host injects into a tool's requests so the tool
//! never holds them.
//!
//! Each secret is sealed in an envelope under its own data
//! key; data keys are wrapped by one master key that lives in the OS
//! credential store ([`KeyringKind`]) or is derived from a passphrase. The
//! sealed rows live in `<state-dir>/vault.db` (mode 0600), apart from the
//! journal, or in the database replicas share ([`VaultPlace`]), where the
//! key can only come from a passphrase. Bindings ([`CredentialBinding`]) say which secret goes into
//! which header of which requests.

mod envelope;
mod error;
mod master;
mod postgres;
mod rows;
mod scope;
mod secret;
mod table;

pub use crate::egress::{BindingError, CredentialBinding, is_credential_header};
pub use envelope::EnvelopeError;
pub use error::VaultError;
pub use master::{KeyringKind, MIN_PASSPHRASE_LEN, MasterError, Passphrase};
pub use rows::VaultPlace;
pub use scope::{SecretScope, SecretScopeError};
pub use secret::{MAX_SECRET_LEN, MIN_SECRET_LEN, SecretShapeError, SecretValue};

use crate::store::StoreError;
use envelope::Envelope;
use master::MasterKey;
use rows::{Meta, PutError, Row, VaultRows};
use std::path::{Path, PathBuf};

/// The vault's database file inside the state directory.
pub(crate) const VAULT_FILE: &str = "vault.db";

/// Where a vault's master key lives.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyBackend {
    /// An OS credential store.
    Keyring(KeyringKind),
    /// Derived from a passphrase with Argon2id; nothing stored anywhere.
    Passphrase,
}

impl KeyBackend {
    /// `passphrase` or the store's name, as `airlock vault status` shows it.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyBackend::Keyring(kind) => kind.as_str(),
            KeyBackend::Passphrase => "passphrase",
        }
    }

    /// Whether the master key outlives a reboot (the kernel keyring's does
    /// not; a passphrase is as durable as the operator's memory).
    pub fn survives_reboot(self) -> bool {
        match self {
            KeyBackend::Keyring(kind) => kind.survives_reboot(),
            KeyBackend::Passphrase => true,
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        match text {
            "passphrase" => Some(KeyBackend::Passphrase),
            other => KeyringKind::parse(other).map(KeyBackend::Keyring),
        }
    }
}

/// How a new vault keeps its master key.
#[derive(Debug)]
pub enum NewVault {
    /// In the best OS credential store this machine has.
    Keyring,
    /// Derived from this passphrase (at least [`MIN_PASSPHRASE_LEN`]
    /// characters).
    Passphrase(Passphrase),
}

/// A stored secret's public facts (never its value).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SecretInfo {
    /// Its name, as bindings refer to it.
    pub name: String,
    /// Who may use it.
    pub scope: SecretScope,
    /// When it was first stored (RFC 3339, UTC).
    pub created: String,
}

/// What `airlock vault status` reports; needs no key.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct VaultStatus {
    /// Where it is kept: its database file, or the shared database.
    pub place: String,
    /// Where the master key lives.
    pub backend: KeyBackend,
    /// How many times the master key was replaced (1 = never).
    pub generation: u32,
    /// How many secrets are stored.
    pub secrets: usize,
}

/// An open vault: its rows and its master key.
#[derive(Debug)]
pub struct Vault {
    rows: Box<dyn VaultRows>,
    id: String,
    backend: KeyBackend,
    generation: u32,
    key: MasterKey,
}

/// The rows at `place`, if a vault could be there; `None` for a state
/// directory without a vault file (nothing is created by looking).
fn rows_at(place: &VaultPlace, create: bool) -> Result<Option<Box<dyn VaultRows>>, VaultError> {
    Ok(match place {
        VaultPlace::Dir(dir) => {
            let path = Vault::path_in(dir);
            if !create && !path.exists() {
                return Ok(None);
            }
            if create {
                crate::store::private_dir(dir)?;
            }
            Some(Box::new(table::SqliteRows::open(&path)?))
        }
        VaultPlace::Shared(settings) => Some(Box::new(postgres::PostgresRows::new(
            crate::store::PostgresStore::connect(settings)?,
        ))),
    })
}

impl Vault {
    /// The database path of the vault in `state_dir`.
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join(VAULT_FILE)
    }

    /// Whether `place` holds a vault.
    pub fn exists(place: impl Into<VaultPlace>) -> bool {
        Self::status(place).is_ok_and(|s| s.is_some())
    }

    /// The vault's backend and size, without touching its key; `None` when
    /// there is no vault.
    pub fn status(place: impl Into<VaultPlace>) -> Result<Option<VaultStatus>, VaultError> {
        let Some(rows) = rows_at(&place.into(), false)? else {
            return Ok(None);
        };
        let Some(meta) = Meta::from_pairs(&rows.meta()?)? else {
            return Ok(None);
        };
        Ok(Some(VaultStatus {
            place: rows.place(),
            backend: meta.backend,
            generation: meta.generation,
            secrets: rows.all()?.len(),
        }))
    }

    /// Creates a vault at `place`. Refuses to replace an existing one: its
    /// secrets would be lost. A shared vault takes a passphrase only: an
    /// OS keyring's key stays on one machine.
    pub fn create(place: impl Into<VaultPlace>, how: NewVault) -> Result<Self, VaultError> {
        let place = place.into();
        if matches!((&place, &how), (VaultPlace::Shared(_), NewVault::Keyring)) {
            return Err(VaultError::KeyringWithSharedStore);
        }
        let rows = rows_at(&place, true)?.ok_or_else(|| VaultError::NotCreated {
            place: place.describe(),
        })?;
        if Meta::from_pairs(&rows.meta()?)?.is_some() {
            return Err(VaultError::AlreadyExists {
                place: rows.place(),
            });
        }
        let id = random_id();
        let (backend, key, salt) = match how {
            NewVault::Passphrase(passphrase) => {
                check_new_passphrase(&passphrase)?;
                let salt = random_id();
                let key = MasterKey::from_passphrase(&passphrase, salt.as_bytes())?;
                (KeyBackend::Passphrase, key, Some(salt))
            }
            NewVault::Keyring => {
                let key = MasterKey::generate();
                let kind = store_in_best_keyring(&account(&id, 1), &key)?;
                (KeyBackend::Keyring(kind), key, None)
            }
        };
        let meta = Meta {
            id: id.clone(),
            backend,
            generation: 1,
            key_id: key.id(),
            salt,
        };
        let created = rows.create(&meta);
        if let (false, KeyBackend::Keyring(kind)) = (matches!(created, Ok(true)), backend) {
            // Best effort: the key guards nothing.
            let _ = kind.remove(&account(&id, 1));
        }
        if !created? {
            return Err(VaultError::AlreadyExists {
                place: rows.place(),
            });
        }
        Ok(Self {
            rows,
            id,
            backend,
            generation: 1,
            key,
        })
    }

    /// Opens the vault at `place`. A passphrase vault needs `passphrase`;
    /// a keyring vault reads its key from the store it was created in. A
    /// missing or wrong key is an error, never a new key.
    pub fn open(
        place: impl Into<VaultPlace>,
        passphrase: Option<&Passphrase>,
    ) -> Result<Self, VaultError> {
        Self::open_with(place, || Ok(passphrase.cloned()))
    }

    /// As [`Vault::open`], asking `passphrase` for the passphrase only when
    /// the vault is locked with one (a prompt is never shown for a keyring
    /// vault, and the vault's rows are read once).
    pub fn open_with<E: From<VaultError>>(
        place: impl Into<VaultPlace>,
        passphrase: impl FnOnce() -> Result<Option<Passphrase>, E>,
    ) -> Result<Self, E> {
        let place = place.into();
        let not_created = || VaultError::NotCreated {
            place: place.describe(),
        };
        let rows = rows_at(&place, false)?.ok_or_else(not_created)?;
        let meta =
            Meta::from_pairs(&rows.meta().map_err(VaultError::from)?)?.ok_or_else(not_created)?;
        let key = match meta.backend {
            KeyBackend::Keyring(_) if matches!(place, VaultPlace::Shared(_)) => {
                return Err(VaultError::KeyringWithSharedStore.into());
            }
            KeyBackend::Keyring(kind) => kind
                .load(&account(&meta.id, meta.generation))
                .map_err(VaultError::from)?,
            KeyBackend::Passphrase => {
                let passphrase = passphrase()?.ok_or(VaultError::PassphraseRequired)?;
                let salt = meta.salt.as_deref().ok_or_else(|| VaultError::Corrupt {
                    detail: "a passphrase vault without a salt".into(),
                })?;
                MasterKey::from_passphrase(&passphrase, salt.as_bytes())
                    .map_err(VaultError::from)?
            }
        };
        if key.id() != meta.key_id {
            return Err(VaultError::WrongMasterKey {
                backend: meta.backend,
            }
            .into());
        }
        Ok(Self {
            rows,
            id: meta.id,
            backend: meta.backend,
            generation: meta.generation,
            key,
        })
    }

    /// Where the master key lives.
    pub fn backend(&self) -> KeyBackend {
        self.backend
    }

    /// Seals and stores `value` as `name`. Replacing a value keeps the
    /// name's scope; storing it under another scope is refused (remove it
    /// first), so a rebinding is always deliberate.
    pub fn set(
        &self,
        name: &str,
        scope: &SecretScope,
        value: &SecretValue,
    ) -> Result<(), VaultError> {
        check_name(name)?;
        let row = Row {
            name: name.to_string(),
            scope: scope.clone(),
            created: now(),
            envelope: Envelope::seal(&self.key, scope, name, value),
        };
        self.rows.put(row, &self.key.id()).map_err(|e| match e {
            PutError::Scope(existing) => VaultError::ScopeConflict {
                name: name.to_string(),
                existing,
                given: scope.to_string(),
            },
            PutError::Rotated => VaultError::KeyRotated {
                name: name.to_string(),
            },
            PutError::Store(e) => e.into(),
        })
    }

    /// Every secret's name, scope and creation time.
    pub fn list(&self) -> Result<Vec<SecretInfo>, VaultError> {
        Ok(self.rows.all()?.into_iter().map(SecretInfo::of).collect())
    }

    /// One secret's public facts, if it exists.
    pub fn info(&self, name: &str) -> Result<Option<SecretInfo>, VaultError> {
        Ok(self.rows.get(name)?.map(SecretInfo::of))
    }

    /// Removes `name`; `false` if there was no such secret.
    pub fn remove(&self, name: &str) -> Result<bool, VaultError> {
        Ok(self.rows.remove(name)?)
    }

    /// Decrypts `name` for the host code that injects it. Not for guests,
    /// logs or output.
    pub(crate) fn reveal(&self, name: &str) -> Result<(SecretScope, SecretValue), VaultError> {
        let row = self
            .rows
            .get(name)?
            .ok_or_else(|| VaultError::UnknownSecret {
                name: name.to_string(),
            })?;
        let value = row
            .envelope
            .open(&self.key, &row.scope, &row.name)
            .map_err(|source| VaultError::Envelope {
                name: name.to_string(),
                source,
            })?;
        Ok((row.scope, value))
    }

    /// Replaces the master key and re-wraps every data key under the new
    /// one, in one transaction. A keyring vault gets a new random key
    /// (stored before the transaction, the old one deleted after it); a
    /// passphrase vault takes `new_passphrase`. Interrupted at any point,
    /// the vault still opens with the old key or the new one, and the
    /// rotation can simply be run again.
    pub fn rotate_master_key(
        &mut self,
        new_passphrase: Option<Passphrase>,
    ) -> Result<(), VaultError> {
        let generation = self.generation + 1;
        let (key, salt) = match self.backend {
            KeyBackend::Passphrase => {
                let passphrase = new_passphrase.ok_or(VaultError::PassphraseRequired)?;
                check_new_passphrase(&passphrase)?;
                let salt = random_id();
                (
                    MasterKey::from_passphrase(&passphrase, salt.as_bytes())?,
                    Some(salt),
                )
            }
            KeyBackend::Keyring(kind) => {
                let key = MasterKey::generate();
                kind.store(&account(&self.id, generation), &key)?;
                (key, None)
            }
        };
        let meta = Meta {
            id: self.id.clone(),
            backend: self.backend,
            generation,
            key_id: key.id(),
            salt,
        };
        let old = &self.key;
        let rewrap = |row: Row| {
            let envelope = row
                .envelope
                .rewrap(old, &key, &row.scope, &row.name)
                .map_err(|_| StoreError::Corrupt {
                    what: "secret envelope",
                    detail: format!("`{}` does not open under the current master key", row.name),
                })?;
            Ok(Row { envelope, ..row })
        };
        self.rows.rewrap(&rewrap, &meta)?;
        if let KeyBackend::Keyring(kind) = self.backend {
            // The new key is in force; the old one guards nothing now.
            if let Err(e) = kind.remove(&account(&self.id, self.generation)) {
                tracing::warn!(target: "airlock::vault", error = %e, "the previous master key could not be deleted");
            }
        }
        self.key = key;
        self.generation = generation;
        Ok(())
    }
}

impl crate::egress::Secrets for Vault {
    fn reveal_for(
        &self,
        name: &str,
        principal: &crate::policy::Principal,
        tool: &str,
    ) -> Result<crate::egress::Revealed, crate::egress::SecretRefusal> {
        let (scope, value) = self
            .reveal(name)
            .map_err(|e| crate::egress::SecretRefusal::Unavailable(e.code()))?;
        if !scope.admits_principal(principal) || !scope.admits_tool(tool) {
            return Err(crate::egress::SecretRefusal::OutOfScope {
                scope: scope.to_string(),
            });
        }
        Ok(crate::egress::Revealed {
            scope: scope.to_string(),
            value: value.into_bytes(),
        })
    }
}

impl SecretInfo {
    fn of(row: Row) -> Self {
        SecretInfo {
            name: row.name,
            scope: row.scope,
            created: row.created,
        }
    }
}

/// The keyring account of one key generation of one vault.
fn account(vault_id: &str, generation: u32) -> String {
    format!("{vault_id}.{generation}")
}

fn store_in_best_keyring(account: &str, key: &MasterKey) -> Result<KeyringKind, VaultError> {
    let mut tried = Vec::new();
    for &kind in KeyringKind::candidates() {
        match kind.store(account, key).and_then(|()| kind.load(account)) {
            Ok(read_back) if read_back.id() == key.id() => return Ok(kind),
            Ok(_) => tried.push(format!("{}: read back a different key", kind.as_str())),
            Err(e) => tried.push(e.to_string()),
        }
    }
    Err(VaultError::NoKeyring { tried })
}

fn check_new_passphrase(passphrase: &Passphrase) -> Result<(), VaultError> {
    if passphrase.len() < MIN_PASSPHRASE_LEN {
        Err(VaultError::PassphraseTooShort)
    } else {
        Ok(())
    }
}

fn check_name(name: &str) -> Result<(), VaultError> {
    if crate::vocabulary::is_plain_name(name) {
        Ok(())
    } else {
        Err(VaultError::InvalidName {
            name: name.to_string(),
        })
    }
}

fn random_id() -> String {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes).expect("the operating system's random source failed");
    hex::encode(bytes)
}

fn now() -> String {
    humantime::format_rfc3339_seconds(std::time::SystemTime::now()).to_string()
}
