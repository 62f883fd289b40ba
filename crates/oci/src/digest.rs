//! [`Digest`]: the SHA-256 an OCI registry names content by, as bytes.

use sha2::{Digest as _, Sha256};
use std::fmt;
use std::str::FromStr;

/// A `sha256:` content digest: what a manifest or a layer is, whatever a
/// tag says. Only SHA-256 is accepted; it is what registries and cosign
/// write, and a second algorithm would be a second way to name the same
/// bytes.
#[derive(Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Digest([u8; 32]);

/// A text that is not a `sha256:` digest.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a content digest: write `sha256:` and 64 lowercase hex digits")]
pub struct NotADigest(pub String);

impl Digest {
    /// The digest of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        Self(Sha256::digest(bytes).into())
    }

    /// The digest a finished hasher holds.
    pub fn from_hasher(hasher: Sha256) -> Self {
        Self(hasher.finalize().into())
    }

    /// The 64 lowercase hex digits, without the `sha256:` prefix (file
    /// names in the store).
    pub fn hex(&self) -> String {
        hex::encode(self.0)
    }

    /// Whether `bytes` are the content this digest names.
    pub fn matches(&self, bytes: &[u8]) -> bool {
        Self::of(bytes) == *self
    }
}

impl FromStr for Digest {
    type Err = NotADigest;

    /// Parses `sha256:` and 64 lowercase hex digits: the spelling registries
    /// write, and the only one, so one digest has one text.
    fn from_str(text: &str) -> Result<Self, NotADigest> {
        let not = || NotADigest(text.chars().take(80).collect());
        let hex_digits = text.strip_prefix("sha256:").ok_or_else(not)?;
        if hex_digits.len() != 64 || hex_digits.bytes().any(|b| b.is_ascii_uppercase()) {
            return Err(not());
        }
        let mut bytes = [0; 32];
        hex::decode_to_slice(hex_digits, &mut bytes).map_err(|_| not())?;
        Ok(Self(bytes))
    }
}

impl fmt::Display for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "sha256:{}", self.hex())
    }
}

impl fmt::Debug for Digest {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

impl serde::Serialize for Digest {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for Digest {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        text.parse().map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_and_refuses_other_spellings() {
        let digest = Digest::of(b"component");
        let text = digest.to_string();
        assert_eq!(text.parse::<Digest>(), Ok(digest));
        assert!(digest.matches(b"component"));
        assert!(!digest.matches(b"component!"));
        for bad in [
            text.to_uppercase(),
            text.replace("sha256:", "sha512:"),
            text.replace("sha256:", ""),
            format!("{text}0"),
            text[..text.len() - 1].to_string(),
            format!("sha256:{}", "g".repeat(64)),
        ] {
            assert!(bad.parse::<Digest>().is_err(), "{bad} was accepted");
        }
    }
}
