//! [`SecretValue`]: a secret's bytes, wiped from memory when dropped and
//! never printed.

use std::fmt;
use zeroize::Zeroizing;

/// The shortest secret the vault accepts: shorter values could not be told
/// apart from ordinary response text when scrubbing reflections.
pub const MIN_SECRET_LEN: usize = 8;

/// The longest secret the vault accepts.
pub const MAX_SECRET_LEN: usize = 16 * 1024;

/// A secret value. Zeroized on drop; its `Debug` shows only the length, and
/// it has no `Display`, so it cannot end up in a log line or an error by
/// accident.
#[derive(Clone, PartialEq, Eq)]
pub struct SecretValue(Zeroizing<Vec<u8>>);

impl SecretValue {
    /// Checks and wraps `bytes`: 8 bytes to 16 KiB, no control characters
    /// (the value goes into an HTTP header). One trailing newline (`\n` or
    /// `\r\n`, as `echo` and editors add) is removed first.
    pub fn new(bytes: Vec<u8>) -> Result<Self, SecretShapeError> {
        let mut bytes = Zeroizing::new(bytes);
        if bytes.ends_with(b"\n") {
            bytes.pop();
            if bytes.ends_with(b"\r") {
                bytes.pop();
            }
        }
        if bytes.len() < MIN_SECRET_LEN {
            return Err(SecretShapeError::TooShort);
        }
        if bytes.len() > MAX_SECRET_LEN {
            return Err(SecretShapeError::TooLong);
        }
        if bytes.iter().any(|b| b.is_ascii_control()) {
            return Err(SecretShapeError::ControlCharacter);
        }
        Ok(Self(bytes))
    }

    /// Wraps bytes the vault itself decrypted (already checked when stored).
    pub(crate) fn from_trusted(bytes: Zeroizing<Vec<u8>>) -> Self {
        Self(bytes)
    }

    /// The bytes, still wiped when dropped, for the host code that
    /// injects them.
    pub(crate) fn into_bytes(self) -> Zeroizing<Vec<u8>> {
        self.0
    }

    /// The bytes, for the host code that injects or scrubs them.
    pub fn expose(&self) -> &[u8] {
        &self.0
    }
}

impl fmt::Debug for SecretValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SecretValue(<{} bytes redacted>)", self.0.len())
    }
}

/// Why a value cannot be stored as a secret. Never carries the value.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum SecretShapeError {
    /// Under [`MIN_SECRET_LEN`] bytes.
    #[error(
        "the value is shorter than {MIN_SECRET_LEN} bytes: too short to be a credential or to be scrubbed from responses"
    )]
    TooShort,
    /// Over [`MAX_SECRET_LEN`] bytes.
    #[error("the value is longer than {MAX_SECRET_LEN} bytes")]
    TooLong,
    /// CR, LF, NUL or another control character inside the value.
    #[error(
        "the value contains a control character (CR, LF, NUL, ...): it would break the header it is injected into"
    )]
    ControlCharacter,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes_are_checked_and_debug_hides_the_value() {
        let ok = SecretValue::new(b"sk-test-0123456789\r\n".to_vec()).expect("valid");
        assert_eq!(ok.expose(), b"sk-test-0123456789");
        let shown = format!("{ok:?}");
        assert!(!shown.contains("sk-test"), "{shown}");
        assert!(shown.contains("18 bytes"), "{shown}");

        let cases: [(&[u8], SecretShapeError); 3] = [
            (b"short", SecretShapeError::TooShort),
            (b"sk-test\r\nX-Evil: 1", SecretShapeError::ControlCharacter),
            (&[b'a'; MAX_SECRET_LEN + 1], SecretShapeError::TooLong),
        ];
        for (value, expected) in cases {
            assert_eq!(SecretValue::new(value.to_vec()), Err(expected));
        }
    }
}
