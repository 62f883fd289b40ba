//! The vault and credential injection: secrets sealed at rest, bound to
//! exact origins, injected by the host, never seen by the guest.

mod bindings;
mod inject;
mod proxied;
mod shared;
mod store;

use airlock::vault::{NewVault, Passphrase, SecretScope, SecretValue, Vault};
use std::path::Path;

/// What the tests store; no test output may contain it.
pub const SECRET: &str = "sk-live-0123456789abcdef-airlock";

/// A passphrase vault in `dir` holding [`SECRET`] as `api-key` with `scope`.
pub fn vault_with_secret(dir: &Path, scope: SecretScope) -> Vault {
    let vault = Vault::create(dir, NewVault::Passphrase(passphrase())).expect("create vault");
    vault
        .set("api-key", &scope, &secret())
        .expect("store the secret");
    vault
}

/// The passphrase of [`vault_with_secret`]'s vaults.
pub fn passphrase() -> Passphrase {
    Passphrase::new("correct horse battery staple")
}

/// [`SECRET`] as a vault value.
pub fn secret() -> SecretValue {
    SecretValue::new(SECRET.as_bytes().to_vec()).expect("a valid secret")
}

/// Whether `text` holds the secret raw or base64-encoded (either alphabet,
/// any alignment).
pub fn leaks(text: &str) -> bool {
    use base64::Engine as _;
    use base64::engine::general_purpose::{STANDARD, URL_SAFE};
    if text.contains(SECRET) {
        return true;
    }
    // Every base64 encoding of the secret shares this core at some offset.
    (0..3).any(|offset| {
        let shifted = [vec![0u8; offset], SECRET.as_bytes().to_vec()].concat();
        [STANDARD.encode(&shifted), URL_SAFE.encode(&shifted)]
            .iter()
            .any(|encoded| text.contains(&encoded[4..encoded.len() - 4]))
    })
}
