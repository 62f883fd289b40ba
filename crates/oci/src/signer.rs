//! [`Signer`]: who signed what runs, as policies, attestations and the
//! lockfile name them.

use std::fmt;

/// Who signed what runs: `key:sha256:HEX` for a key, `IDENTITY (ISSUER)`
/// for a keyless signature. What policies see as
/// `resource.signer` and attestations record.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub struct Signer(String);

impl Signer {
    pub(crate) fn new(text: String) -> Self {
        Self(text)
    }

    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
