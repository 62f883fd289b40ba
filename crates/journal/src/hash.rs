//! [`Hash`](struct@Hash): one SHA-256 digest of the journal (an entry's hash, a tree
//! node, a head's root). Kept as bytes so that no comparison, proof or
//! root ever runs over text; written as 64 lowercase hex digits wherever it
//! leaves the process (the database, JSON, the terminal), as before.

use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use std::fmt;
use std::str::FromStr;

/// A SHA-256 digest.
#[derive(Clone, Copy, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Hash([u8; 32]);

/// A text that is not a SHA-256 in hex.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a SHA-256 hash (64 hex digits)")]
pub struct NotAHash(pub String);

impl Hash {
    /// All zeroes: the `prev_hash` of the first entry ([`crate::GENESIS`]).
    pub const ZERO: Hash = Hash([0; 32]);

    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The digest `hasher` holds.
    pub fn from_hasher(hasher: Sha256) -> Self {
        Self(hasher.finalize().into())
    }

    /// Decodes 64 lowercase hex digits: the one spelling airlock writes,
    /// so that a hash re-spelled (upper case) is not taken for the same one.
    pub fn from_hex(text: &str) -> Result<Self, NotAHash> {
        let not_a_hash = || NotAHash(text.chars().take(80).collect());
        let digits: &[u8; 64] = text.as_bytes().try_into().map_err(|_| not_a_hash())?;
        let mut bytes = [0; 32];
        for (byte, pair) in bytes.iter_mut().zip(digits.chunks_exact(2)) {
            let (Some(high), Some(low)) = (nibble(pair[0]), nibble(pair[1])) else {
                return Err(not_a_hash());
            };
            *byte = high << 4 | low;
        }
        Ok(Self(bytes))
    }

    /// A hash column as read from storage: its value, or, when the text is
    /// not a hash at all, a digest of that text under a domain of its own,
    /// which no entry hashes to and no chain links to. So a row whose hash
    /// was overwritten with anything still reads, and the chain check names
    /// it as modified, as it does any other change, instead of every read
    /// of the journal failing.
    pub fn from_stored(text: &str) -> Self {
        Self::from_hex(text).unwrap_or_else(|_| {
            let mut hasher = Sha256::new_with_prefix(b"airlock.unreadable-hash\n");
            hasher.update(text.as_bytes());
            Self::from_hasher(hasher)
        })
    }

    /// The 64 lowercase hex digits, without allocating (the journal's
    /// append path writes two per entry).
    pub fn hex(&self) -> Hex {
        const DIGITS: &[u8; 16] = b"0123456789abcdef";
        let mut out = [0; 64];
        for (pair, byte) in out.chunks_exact_mut(2).zip(self.0) {
            pair[0] = DIGITS[usize::from(byte >> 4)];
            pair[1] = DIGITS[usize::from(byte & 0x0f)];
        }
        Hex(out)
    }

    /// The 64 lowercase hex digits.
    pub fn to_hex(&self) -> String {
        self.hex().as_str().to_string()
    }

    /// The 32 bytes.
    pub fn as_bytes(&self) -> &[u8; 32] {
        &self.0
    }
}

/// A lowercase hex digit's value (upper case is not airlock's spelling).
fn nibble(digit: u8) -> Option<u8> {
    match digit {
        b'0'..=b'9' => Some(digit - b'0'),
        b'a'..=b'f' => Some(digit - b'a' + 10),
        _ => None,
    }
}

/// A [`Hash`](struct@Hash) as 64 lowercase hex digits, held on the stack.
#[derive(Clone, Copy)]
pub struct Hex([u8; 64]);

impl Hex {
    /// The digits.
    pub fn as_str(&self) -> &str {
        // Only ASCII digits are ever written here.
        std::str::from_utf8(&self.0).unwrap_or_default()
    }
}

impl std::ops::Deref for Hex {
    type Target = str;

    fn deref(&self) -> &str {
        self.as_str()
    }
}

impl From<[u8; 32]> for Hash {
    fn from(bytes: [u8; 32]) -> Self {
        Self(bytes)
    }
}

impl AsRef<[u8]> for Hash {
    fn as_ref(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Display for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.pad(self.hex().as_str())
    }
}

impl fmt::Debug for Hash {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Hash({})", self.hex().as_str())
    }
}

impl FromStr for Hash {
    type Err = NotAHash;

    fn from_str(text: &str) -> Result<Self, Self::Err> {
        Self::from_hex(text)
    }
}

impl Serialize for Hash {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.hex().as_str())
    }
}

impl<'de> Deserialize<'de> for Hash {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(deserializer)?;
        Self::from_hex(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_reads_back_as_written_and_refuses_anything_else() {
        let hash = Hash::of(b"entry");
        let text = hash.to_string();
        assert_eq!(text.len(), 64);
        assert_eq!(text.parse::<Hash>(), Ok(hash));
        let json = serde_json::to_string(&hash).expect("serializes");
        assert_eq!(json, format!("\"{text}\""));
        assert_eq!(serde_json::from_str::<Hash>(&json).ok(), Some(hash));
        for bad in [
            "",
            "00",
            &"g".repeat(64),
            &"0".repeat(66),
            &format!("{text} "),
            &text.to_uppercase(),
        ] {
            assert!(bad.parse::<Hash>().is_err(), "{bad:?}");
            assert!(
                serde_json::from_value::<Hash>(bad.into()).is_err(),
                "{bad:?}"
            );
        }
        assert_eq!(Hash::ZERO.to_string(), "0".repeat(64));
        assert_eq!(text, hex::encode(hash.as_bytes()));
        assert_eq!(
            Hash::from_hex(&hex::encode([0xa5; 32])),
            Ok([0xa5; 32].into())
        );
    }

    #[test]
    fn an_unreadable_stored_hash_reads_as_one_nothing_matches() {
        let hash = Hash::of(b"entry");
        assert_eq!(Hash::from_stored(&hash.to_string()), hash);
        let upper = Hash::from_stored(&hash.to_string().to_uppercase());
        let garbled = Hash::from_stored("not-a-hash");
        for unreadable in [upper, garbled] {
            assert_ne!(unreadable, hash);
            assert_ne!(unreadable, Hash::ZERO);
        }
        assert_ne!(upper, garbled);
        assert_eq!(garbled, Hash::from_stored("not-a-hash"));
    }
}
