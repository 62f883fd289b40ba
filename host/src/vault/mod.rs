//! The vault: secrets the host injects into a tool's requests so the tool
//! never holds them.
//!
//! Each secret is sealed in an [`envelope`](Envelope) under its own data
//! key; data keys are wrapped by one master key that lives in the OS
//! credential store ([`KeyringKind`]) or is derived from a passphrase. The
//! sealed rows live in `<state-dir>/vault.db` (mode 0600), apart from the
//! journal. Bindings ([`CredentialBinding`]) say which secret goes into
//! which header of which requests.

mod binding;
mod envelope;
mod master;
mod scope;
mod secret;
mod table;

pub use binding::{BindingError, CredentialBinding, is_credential_header};
pub use envelope::EnvelopeError;
pub use master::{KEYRING_SERVICE, KeyringKind, MIN_PASSPHRASE_LEN, MasterError, Passphrase};
pub use scope::{SecretScope, SecretScopeError};
pub use secret::{MAX_SECRET_LEN, MIN_SECRET_LEN, SecretShapeError, SecretValue};

use crate::store::{SqliteStore, StoreError};
use envelope::Envelope;
use master::MasterKey;
use std::path::{Path, PathBuf};
use table::Row;

/// The vault's database file inside the state directory.
pub const VAULT_FILE: &str = "vault.db";

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

    fn parse(text: &str) -> Option<Self> {
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
    /// The database file.
    pub path: PathBuf,
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
    store: SqliteStore,
    id: String,
    backend: KeyBackend,
    generation: u32,
    key: MasterKey,
}

impl Vault {
    /// The database path of the vault in `state_dir`.
    pub fn path_in(state_dir: &Path) -> PathBuf {
        state_dir.join(VAULT_FILE)
    }

    /// Whether `state_dir` holds a vault.
    pub fn exists(state_dir: &Path) -> bool {
        Self::status(state_dir).is_ok_and(|s| s.is_some())
    }

    /// The vault's backend and size, without touching its key; `None` when
    /// there is no vault.
    pub fn status(state_dir: &Path) -> Result<Option<VaultStatus>, VaultError> {
        let path = Self::path_in(state_dir);
        if !path.exists() {
            return Ok(None);
        }
        let store = SqliteStore::open_private(&path, table::SCHEMA)?;
        let Some(meta) = Meta::read(&store)? else {
            return Ok(None);
        };
        Ok(Some(VaultStatus {
            path,
            backend: meta.backend,
            generation: meta.generation,
            secrets: table::all(&store)?.len(),
        }))
    }

    /// Creates a vault in `state_dir`. Refuses to replace an existing one:
    /// its secrets would be lost.
    pub fn create(state_dir: &Path, how: NewVault) -> Result<Self, VaultError> {
        crate::store::private_dir(state_dir)?;
        let path = Self::path_in(state_dir);
        let store = SqliteStore::open_private(&path, table::SCHEMA)?;
        if Meta::read(&store)?.is_some() {
            return Err(VaultError::AlreadyExists { path });
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
        let written = store.write("create the vault", |tx| meta.write(tx));
        if let Err(e) = written {
            if let KeyBackend::Keyring(kind) = backend {
                // Best effort: the key guards nothing yet.
                let _ = kind.remove(&account(&id, 1));
            }
            return Err(e.into());
        }
        Ok(Self {
            store,
            id,
            backend,
            generation: 1,
            key,
        })
    }

    /// Opens the vault in `state_dir`. A passphrase vault needs
    /// `passphrase`; a keyring vault reads its key from the store it was
    /// created in. A missing or wrong key is an error, never a new key.
    pub fn open(state_dir: &Path, passphrase: Option<&Passphrase>) -> Result<Self, VaultError> {
        let path = Self::path_in(state_dir);
        if !path.exists() {
            return Err(VaultError::NotCreated {
                dir: state_dir.to_path_buf(),
            });
        }
        let store = SqliteStore::open_private(&path, table::SCHEMA)?;
        let meta = Meta::read(&store)?.ok_or_else(|| VaultError::NotCreated {
            dir: state_dir.to_path_buf(),
        })?;
        let key = match meta.backend {
            KeyBackend::Keyring(kind) => kind.load(&account(&meta.id, meta.generation))?,
            KeyBackend::Passphrase => {
                let passphrase = passphrase.ok_or(VaultError::PassphraseRequired)?;
                let salt = meta.salt.as_deref().ok_or_else(|| VaultError::Corrupt {
                    detail: "a passphrase vault without a salt".into(),
                })?;
                MasterKey::from_passphrase(passphrase, salt.as_bytes())?
            }
        };
        if key.id() != meta.key_id {
            return Err(VaultError::WrongMasterKey {
                backend: meta.backend,
            });
        }
        Ok(Self {
            store,
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
        let envelope = Envelope::seal(&self.key, scope, name, value);
        self.store
            .write("store a secret", |tx| {
                let existing = table::all_on(tx)?.into_iter().find(|r| r.name == name);
                let created = match existing {
                    Some(row) if &row.scope != scope => {
                        return Err(StoreError::Corrupt {
                            what: "scope",
                            detail: row.scope.to_string(),
                        });
                    }
                    Some(row) => row.created,
                    None => now(),
                };
                table::put(
                    tx,
                    &Row {
                        name: name.to_string(),
                        scope: scope.clone(),
                        created,
                        envelope: envelope.clone(),
                    },
                )
            })
            .map_err(|e| match e {
                StoreError::Corrupt {
                    what: "scope",
                    detail,
                } => VaultError::ScopeConflict {
                    name: name.to_string(),
                    existing: detail,
                    given: scope.to_string(),
                },
                other => other.into(),
            })
    }

    /// Every secret's name, scope and creation time.
    pub fn list(&self) -> Result<Vec<SecretInfo>, VaultError> {
        Ok(table::all(&self.store)?
            .into_iter()
            .map(|row| SecretInfo {
                name: row.name,
                scope: row.scope,
                created: row.created,
            })
            .collect())
    }

    /// One secret's public facts, if it exists.
    pub fn info(&self, name: &str) -> Result<Option<SecretInfo>, VaultError> {
        Ok(table::get(&self.store, name)?.map(|row| SecretInfo {
            name: row.name,
            scope: row.scope,
            created: row.created,
        }))
    }

    /// Removes `name`; `false` if there was no such secret.
    pub fn remove(&self, name: &str) -> Result<bool, VaultError> {
        Ok(table::remove(&self.store, name)?)
    }

    /// Decrypts `name` for the host code that injects it. Not for guests,
    /// logs or output.
    pub(crate) fn reveal(&self, name: &str) -> Result<(SecretScope, SecretValue), VaultError> {
        let row = table::get(&self.store, name)?.ok_or_else(|| VaultError::UnknownSecret {
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
        self.store.write("rotate the master key", |tx| {
            for row in table::all_on(tx)? {
                let envelope = row
                    .envelope
                    .rewrap(old, &key, &row.scope, &row.name)
                    .map_err(|_| StoreError::Corrupt {
                        what: "secret envelope",
                        detail: format!(
                            "`{}` does not open under the current master key",
                            row.name
                        ),
                    })?;
                table::put(tx, &Row { envelope, ..row })?;
            }
            meta.write(tx)
        })?;
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

/// The vault's meta rows.
struct Meta {
    id: String,
    backend: KeyBackend,
    generation: u32,
    key_id: String,
    salt: Option<String>,
}

impl Meta {
    fn read(store: &SqliteStore) -> Result<Option<Self>, VaultError> {
        let Some(id) = table::meta(store, "vault_id")? else {
            return Ok(None);
        };
        let corrupt = |what: &str| VaultError::Corrupt {
            detail: format!("the vault's {what} is missing or unreadable"),
        };
        let backend = table::meta(store, "backend")?
            .and_then(|b| KeyBackend::parse(&b))
            .ok_or_else(|| corrupt("backend"))?;
        let generation = table::meta(store, "generation")?
            .and_then(|g| g.parse().ok())
            .ok_or_else(|| corrupt("key generation"))?;
        let key_id = table::meta(store, "key_id")?.ok_or_else(|| corrupt("key id"))?;
        Ok(Some(Self {
            id,
            backend,
            generation,
            key_id,
            salt: table::meta(store, "salt")?,
        }))
    }

    fn write(&self, tx: &rusqlite::Connection) -> Result<(), StoreError> {
        table::set_meta(tx, "vault_id", &self.id)?;
        table::set_meta(tx, "backend", self.backend.as_str())?;
        table::set_meta(tx, "generation", &self.generation.to_string())?;
        table::set_meta(tx, "key_id", &self.key_id)?;
        if let Some(salt) = &self.salt {
            table::set_meta(tx, "salt", salt)?;
        }
        Ok(())
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

/// Why a vault operation failed. Never carries a secret value.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum VaultError {
    /// No vault in the state directory yet.
    #[error("no vault in {}: `airlock vault set NAME` creates one", dir.display())]
    NotCreated {
        /// The state directory.
        dir: PathBuf,
    },
    /// `create` on a directory that has a vault.
    #[error("a vault already exists at {}: its secrets would be lost; use it, or remove the file first", path.display())]
    AlreadyExists {
        /// The database file.
        path: PathBuf,
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
