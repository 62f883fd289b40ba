//! [`MasterKey`] and where it lives: the operating system's credential
//! store (through the `keyring` crate) or a passphrase (Argon2id).
//!
//! The vault database records which backend holds its key and a key id
//! (a hash of the key), so a missing or wrong key is reported as such and
//! never silently replaced by a new one that would orphan every secret.

use sha2::{Digest, Sha256};
use std::fmt;
use zeroize::Zeroizing;

/// The service name master keys are stored under in the OS store.
pub(crate) const KEYRING_SERVICE: &str = "airlock-vault";

/// Argon2id cost for passphrase-derived keys: 64 MiB, 3 passes, 1 lane
/// (above OWASP's minimum; about a third of a second on a server core).
pub(crate) const ARGON2_MEMORY_KIB: u32 = 64 * 1024;
pub(crate) const ARGON2_PASSES: u32 = 3;
pub(crate) const ARGON2_LANES: u32 = 1;

/// The shortest passphrase accepted when creating a vault.
pub const MIN_PASSPHRASE_LEN: usize = 12;

/// The 256-bit key that wraps every secret's data key.
pub(crate) struct MasterKey(Zeroizing<[u8; 32]>);

impl MasterKey {
    /// A new random key.
    pub(crate) fn generate() -> Self {
        let mut key = Zeroizing::new([0u8; 32]);
        getrandom::fill(key.as_mut_slice()).expect("the operating system's random source failed");
        Self(key)
    }

    fn from_slice(bytes: &[u8]) -> Option<Self> {
        let array: [u8; 32] = bytes.try_into().ok()?;
        Some(Self(Zeroizing::new(array)))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.as_slice()
    }

    /// A public fingerprint of the key, stored beside the secrets so the
    /// vault can tell "wrong key" from "tampered envelope".
    pub(crate) fn id(&self) -> String {
        let mut hash = Sha256::new();
        hash.update(b"airlock-vault master key id v1\0");
        hash.update(self.bytes());
        hex::encode(&hash.finalize()[..16])
    }

    /// Derives the key from a passphrase with Argon2id.
    pub(crate) fn from_passphrase(
        passphrase: &Passphrase,
        salt: &[u8],
    ) -> Result<Self, MasterError> {
        use argon2::{Algorithm, Argon2, Params, Version};
        let params = Params::new(ARGON2_MEMORY_KIB, ARGON2_PASSES, ARGON2_LANES, Some(32))
            .map_err(|e| MasterError::Derive(e.to_string()))?;
        let mut key = Zeroizing::new([0u8; 32]);
        Argon2::new(Algorithm::Argon2id, Version::V0x13, params)
            .hash_password_into(passphrase.0.as_bytes(), salt, key.as_mut_slice())
            .map_err(|e| MasterError::Derive(e.to_string()))?;
        Ok(Self(key))
    }
}

impl fmt::Debug for MasterKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("MasterKey(<redacted>)")
    }
}

/// A vault passphrase, zeroized on drop and never printed.
#[derive(Clone)]
pub struct Passphrase(Zeroizing<String>);

impl Passphrase {
    /// Wraps a passphrase (from `AIRLOCK_VAULT_PASSPHRASE` or a no-echo
    /// prompt; never from a command-line argument).
    pub fn new(text: impl Into<String>) -> Self {
        Self(Zeroizing::new(text.into()))
    }

    pub(crate) fn len(&self) -> usize {
        self.0.chars().count()
    }
}

impl fmt::Debug for Passphrase {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Passphrase(<redacted>)")
    }
}

/// Which OS credential store holds a master key.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum KeyringKind {
    /// The freedesktop Secret Service (GNOME Keyring, KWallet) on Linux.
    SecretService,
    /// The Linux kernel keyring (keyutils), the user's keyring: for headless
    /// machines and CI. Held in kernel memory only: it does **not** survive
    /// a reboot.
    Kernel,
    /// The macOS Keychain.
    Keychain,
    /// The Windows Credential Manager.
    CredentialManager,
}

impl KeyringKind {
    /// Stable name, as stored and shown by `airlock vault status`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyringKind::SecretService => "secret-service",
            KeyringKind::Kernel => "kernel-keyring",
            KeyringKind::Keychain => "macos-keychain",
            KeyringKind::CredentialManager => "windows-credential-manager",
        }
    }

    pub(crate) fn parse(text: &str) -> Option<Self> {
        [
            KeyringKind::SecretService,
            KeyringKind::Kernel,
            KeyringKind::Keychain,
            KeyringKind::CredentialManager,
        ]
        .into_iter()
        .find(|k| k.as_str() == text)
    }

    /// Whether a key stored here outlives a reboot.
    pub fn survives_reboot(self) -> bool {
        !matches!(self, KeyringKind::Kernel)
    }

    /// The stores to try, best first, on this platform.
    pub(crate) fn candidates() -> &'static [KeyringKind] {
        if cfg!(target_os = "macos") {
            &[KeyringKind::Keychain]
        } else if cfg!(windows) {
            &[KeyringKind::CredentialManager]
        } else if cfg!(target_os = "linux") {
            &[KeyringKind::SecretService, KeyringKind::Kernel]
        } else {
            &[]
        }
    }

    /// The entry for one key generation of one vault.
    fn entry(self, account: &str) -> Result<keyring::Entry, MasterError> {
        let fail = |e: keyring::Error| MasterError::keyring(self, "open", &e);
        #[cfg(target_os = "linux")]
        {
            use keyring::keyutils::KeyutilsCredential;
            use keyring::secret_service::SsCredential;
            match self {
                KeyringKind::SecretService => {
                    // Only where a session bus exists: without one the
                    // D-Bus client would fail slowly or try to autolaunch.
                    if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
                        return Err(MasterError::KeyringUnavailable {
                            kind: self,
                            detail: "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is unset)"
                                .into(),
                        });
                    }
                    SsCredential::new_with_target(None, KEYRING_SERVICE, account)
                        .map(|c| keyring::Entry::new_with_credential(Box::new(c)))
                        .map_err(fail)
                }
                KeyringKind::Kernel => {
                    // The per-user keyring: the same for every process of
                    // this user (a session keyring may differ between a
                    // login shell, a service and a container).
                    let ring = linux_keyutils::KeyRing::from_special_id(
                        linux_keyutils::KeyRingIdentifier::User,
                        false,
                    )
                    .map_err(|e| MasterError::KeyringUnavailable {
                        kind: self,
                        detail: e.to_string(),
                    })?;
                    let credential = KeyutilsCredential {
                        session: ring,
                        persistent: None,
                        description: format!("{KEYRING_SERVICE}:{account}"),
                    };
                    Ok(keyring::Entry::new_with_credential(Box::new(credential)))
                }
                _ => Err(MasterError::KeyringUnavailable {
                    kind: self,
                    detail: "not on this platform".into(),
                }),
            }
        }
        #[cfg(not(target_os = "linux"))]
        {
            if KeyringKind::candidates().contains(&self) {
                keyring::Entry::new(KEYRING_SERVICE, account).map_err(fail)
            } else {
                Err(MasterError::KeyringUnavailable {
                    kind: self,
                    detail: "not on this platform".into(),
                })
            }
        }
    }

    /// Stores `key` under `account`.
    pub(crate) fn store(self, account: &str, key: &MasterKey) -> Result<(), MasterError> {
        self.entry(account)?
            .set_secret(key.bytes())
            .map_err(|e| MasterError::keyring(self, "store", &e))
    }

    /// The key stored under `account`.
    pub(crate) fn load(self, account: &str) -> Result<MasterKey, MasterError> {
        match self.entry(account)?.get_secret() {
            Ok(bytes) => {
                let bytes = Zeroizing::new(bytes);
                MasterKey::from_slice(&bytes).ok_or(MasterError::Malformed { kind: self })
            }
            Err(keyring::Error::NoEntry) => Err(MasterError::Missing { kind: self }),
            Err(e) => Err(MasterError::keyring(self, "read", &e)),
        }
    }

    /// Removes the key under `account`; a key already gone is fine.
    pub(crate) fn remove(self, account: &str) -> Result<(), MasterError> {
        match self.entry(account)?.delete_credential() {
            Ok(()) | Err(keyring::Error::NoEntry) => Ok(()),
            Err(e) => Err(MasterError::keyring(self, "delete", &e)),
        }
    }
}

/// Why the master key could not be had.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum MasterError {
    /// The store is not usable here.
    #[error("the {} is not available: {detail}", kind.as_str())]
    KeyringUnavailable {
        /// Which store.
        kind: KeyringKind,
        /// Why.
        detail: String,
    },
    /// The store refused an operation.
    #[error("the {} could not {action} the vault's master key: {detail}", kind.as_str())]
    Keyring {
        /// Which store.
        kind: KeyringKind,
        /// What was tried.
        action: &'static str,
        /// The store's own message (never a key).
        detail: String,
    },
    /// The store has no key for this vault.
    #[error(
        "the vault's master key is missing from the {}{}; the stored secrets cannot be decrypted without it. \
         Restore the key, or remove the vault database and store the secrets again",
        kind.as_str(),
        if kind.survives_reboot() { "" } else { " (the kernel keyring is emptied by a reboot)" }
    )]
    Missing {
        /// Which store.
        kind: KeyringKind,
    },
    /// What the store holds is not a 32-byte key.
    #[error("the {} holds something for this vault that is not a master key", kind.as_str())]
    Malformed {
        /// Which store.
        kind: KeyringKind,
    },
    /// Argon2 refused its parameters.
    #[error("cannot derive the master key from the passphrase: {0}")]
    Derive(String),
}

impl MasterError {
    fn keyring(kind: KeyringKind, action: &'static str, error: &keyring::Error) -> Self {
        // Describe the failure without the error's payloads (a bad-encoding
        // error would carry the stored bytes).
        let detail = match error {
            keyring::Error::PlatformFailure(e) | keyring::Error::NoStorageAccess(e) => {
                e.to_string()
            }
            keyring::Error::NoEntry => "no entry".into(),
            keyring::Error::TooLong(what, limit) => format!("{what} is longer than {limit}"),
            keyring::Error::Invalid(what, why) => format!("{what} is invalid: {why}"),
            _ => "unexpected keyring error".into(),
        };
        MasterError::Keyring {
            kind,
            action,
            detail,
        }
    }
}
