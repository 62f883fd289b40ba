//! [`Envelope`]: one secret encrypted under its own data key, the data key
//! wrapped by the vault's master key. Both layers bind the secret's scope
//! and name as associated data, so an envelope copied to another name or
//! scope does not open.

use super::master::MasterKey;
use super::scope::SecretScope;
use super::secret::SecretValue;
use chacha20poly1305::aead::{Aead, KeyInit, Payload};
use chacha20poly1305::{XChaCha20Poly1305, XNonce};
use zeroize::Zeroizing;

const NONCE_LEN: usize = 24;
const KEY_LEN: usize = 32;

/// A sealed secret as stored: two nonces, the wrapped data key and the
/// ciphertext (each AEAD output carries its 16-byte tag).
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Envelope {
    pub nonce: Vec<u8>,
    pub ciphertext: Vec<u8>,
    pub key_nonce: Vec<u8>,
    pub wrapped_key: Vec<u8>,
}

/// An envelope that does not open: tampered with, moved, or sealed under
/// another master key. Says nothing about the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "the envelope does not open: it was altered, moved to another name or scope, or sealed under another master key"
)]
pub struct EnvelopeError;

/// What both layers authenticate: the format version, scope and name.
fn associated_data(scope: &SecretScope, name: &str) -> Vec<u8> {
    format!("airlock-vault/v1\0{scope}\0{name}").into_bytes()
}

fn random<const N: usize>() -> Zeroizing<[u8; N]> {
    let mut bytes = Zeroizing::new([0u8; N]);
    // The OS RNG failing is not recoverable and not input-dependent.
    getrandom::fill(bytes.as_mut_slice()).expect("the operating system's random source failed");
    bytes
}

fn cipher(key: &[u8]) -> XChaCha20Poly1305 {
    // Every key here is KEY_LEN bytes by construction.
    XChaCha20Poly1305::new_from_slice(key).expect("a 32-byte key")
}

fn nonce(bytes: &[u8]) -> Result<&XNonce, EnvelopeError> {
    if bytes.len() == NONCE_LEN {
        Ok(XNonce::from_slice(bytes))
    } else {
        Err(EnvelopeError)
    }
}

impl Envelope {
    /// Seals `value` for `scope`/`name` under a fresh data key.
    pub(crate) fn seal(
        master: &MasterKey,
        scope: &SecretScope,
        name: &str,
        value: &SecretValue,
    ) -> Self {
        let aad = associated_data(scope, name);
        let data_key = random::<KEY_LEN>();
        let nonce = random::<NONCE_LEN>();
        let ciphertext = cipher(data_key.as_slice())
            .encrypt(
                XNonce::from_slice(nonce.as_slice()),
                Payload {
                    msg: value.expose(),
                    aad: &aad,
                },
            )
            .expect("encryption of a bounded message cannot fail");
        let (key_nonce, wrapped_key) = wrap(master, &aad, data_key.as_slice());
        Self {
            nonce: nonce.to_vec(),
            ciphertext,
            key_nonce,
            wrapped_key,
        }
    }

    /// Opens the envelope of `scope`/`name`.
    pub(crate) fn open(
        &self,
        master: &MasterKey,
        scope: &SecretScope,
        name: &str,
    ) -> Result<SecretValue, EnvelopeError> {
        let aad = associated_data(scope, name);
        let data_key = self.data_key(master, &aad)?;
        let plain = cipher(data_key.as_slice())
            .decrypt(
                nonce(&self.nonce)?,
                Payload {
                    msg: &self.ciphertext,
                    aad: &aad,
                },
            )
            .map_err(|_| EnvelopeError)?;
        Ok(SecretValue::from_trusted(Zeroizing::new(plain)))
    }

    /// The same envelope with its data key wrapped under `to` instead of
    /// `from`; the ciphertext is untouched.
    pub(crate) fn rewrap(
        &self,
        from: &MasterKey,
        to: &MasterKey,
        scope: &SecretScope,
        name: &str,
    ) -> Result<Self, EnvelopeError> {
        let aad = associated_data(scope, name);
        let data_key = self.data_key(from, &aad)?;
        let (key_nonce, wrapped_key) = wrap(to, &aad, data_key.as_slice());
        Ok(Self {
            key_nonce,
            wrapped_key,
            ..self.clone()
        })
    }

    fn data_key(
        &self,
        master: &MasterKey,
        aad: &[u8],
    ) -> Result<Zeroizing<Vec<u8>>, EnvelopeError> {
        let key = cipher(master.bytes())
            .decrypt(
                nonce(&self.key_nonce)?,
                Payload {
                    msg: &self.wrapped_key,
                    aad,
                },
            )
            .map_err(|_| EnvelopeError)?;
        let key = Zeroizing::new(key);
        if key.len() == KEY_LEN {
            Ok(key)
        } else {
            Err(EnvelopeError)
        }
    }
}

fn wrap(master: &MasterKey, aad: &[u8], data_key: &[u8]) -> (Vec<u8>, Vec<u8>) {
    let key_nonce = random::<NONCE_LEN>();
    let wrapped = cipher(master.bytes())
        .encrypt(
            XNonce::from_slice(key_nonce.as_slice()),
            Payload { msg: data_key, aad },
        )
        .expect("encryption of a 32-byte key cannot fail");
    (key_nonce.to_vec(), wrapped)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn value() -> SecretValue {
        SecretValue::new(b"ghp_0123456789abcdef".to_vec()).expect("valid")
    }

    #[test]
    fn an_envelope_opens_only_where_it_was_sealed() {
        let master = MasterKey::generate();
        let scope = SecretScope::Global;
        let sealed = Envelope::seal(&master, &scope, "github", &value());
        assert_eq!(sealed.open(&master, &scope, "github"), Ok(value()));
        assert!(
            !sealed
                .ciphertext
                .windows(8)
                .any(|w| w == &value().expose()[..8]),
            "the value is not stored in the clear"
        );

        let moved = [
            sealed.open(&master, &scope, "gitlab"),
            sealed.open(&master, &SecretScope::Tool("github".into()), "github"),
            sealed.open(&MasterKey::generate(), &scope, "github"),
        ];
        for attempt in moved {
            assert_eq!(attempt, Err(EnvelopeError));
        }

        for field in 0..4 {
            let mut tampered = sealed.clone();
            let bytes = match field {
                0 => &mut tampered.nonce,
                1 => &mut tampered.ciphertext,
                2 => &mut tampered.key_nonce,
                _ => &mut tampered.wrapped_key,
            };
            bytes[0] ^= 1;
            assert_eq!(tampered.open(&master, &scope, "github"), Err(EnvelopeError));
        }
    }

    #[test]
    fn rewrapping_moves_the_key_not_the_ciphertext() {
        let old = MasterKey::generate();
        let new = MasterKey::generate();
        let scope = SecretScope::Tool("github".into());
        let sealed = Envelope::seal(&old, &scope, "github", &value());
        let moved = sealed.rewrap(&old, &new, &scope, "github").expect("rewrap");
        assert_eq!(moved.ciphertext, sealed.ciphertext);
        assert_eq!(moved.open(&new, &scope, "github"), Ok(value()));
        assert_eq!(moved.open(&old, &scope, "github"), Err(EnvelopeError));
    }
}
