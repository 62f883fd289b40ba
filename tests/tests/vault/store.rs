//! Sealed storage: round trips on this machine's backends, wrong and
//! missing keys, rotation, tampering.

use super::{SECRET, passphrase, secret, vault_with_secret};
use airlock::vault::{KeyBackend, KeyringKind, NewVault, Passphrase, SecretScope, Vault};
use rusqlite::Connection;

#[test]
fn a_passphrase_vault_round_trips_and_refuses_a_wrong_passphrase() {
    let dir = tempfile::tempdir().expect("tempdir");
    vault_with_secret(dir.path(), SecretScope::Global);
    let reopened = Vault::open(dir.path(), Some(&passphrase())).expect("reopen");
    assert_eq!(reopened.backend(), KeyBackend::Passphrase);
    let listed = reopened.list().expect("list");
    assert_eq!(listed.len(), 1);
    assert_eq!(
        (listed[0].name.as_str(), &listed[0].scope),
        ("api-key", &SecretScope::Global)
    );

    let wrong = Vault::open(
        dir.path(),
        Some(&Passphrase::new("not the passphrase at all")),
    )
    .expect_err("wrong passphrase");
    assert_eq!(wrong.code(), "wrong_master_key");
    let none = Vault::open(dir.path(), None).expect_err("no passphrase");
    assert_eq!(none.code(), "passphrase_required");

    let db = std::fs::read(Vault::path_in(dir.path())).expect("read the database");
    assert!(
        !db.windows(SECRET.len()).any(|w| w == SECRET.as_bytes()),
        "the value is not stored in the clear"
    );
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(Vault::path_in(dir.path()))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "only the owner reads the vault");
    }
}

#[test]
fn an_existing_vault_is_never_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    vault_with_secret(dir.path(), SecretScope::Global);
    let again = Vault::create(dir.path(), NewVault::Passphrase(passphrase()))
        .expect_err("a second vault would orphan the first's secrets");
    assert_eq!(again.code(), "vault_exists");
    let short = Vault::create(
        tempfile::tempdir().expect("tempdir").path(),
        NewVault::Passphrase(Passphrase::new("short")),
    )
    .expect_err("short passphrase");
    assert_eq!(short.code(), "passphrase_too_short");
}

/// The stores a keyring vault may use here. On Linux the Secret Service
/// needs a session bus, so without one only the kernel keyring (CI and
/// headless servers; the next test makes sure that case runs); with one,
/// the Secret Service or, when none answers on the bus, the kernel keyring.
fn possible_keyrings() -> Vec<KeyBackend> {
    let kinds = if cfg!(target_os = "linux") {
        if std::env::var_os("DBUS_SESSION_BUS_ADDRESS").is_none() {
            vec![KeyringKind::Kernel]
        } else {
            vec![KeyringKind::SecretService, KeyringKind::Kernel]
        }
    } else if cfg!(target_os = "macos") {
        vec![KeyringKind::Keychain]
    } else {
        vec![KeyringKind::CredentialManager]
    };
    kinds.into_iter().map(KeyBackend::Keyring).collect()
}

/// The OS store this machine has: the kernel keyring on Linux (CI and
/// headless servers), Keychain or Credential Manager elsewhere.
#[test]
fn a_keyring_vault_round_trips_rotates_and_reports_a_missing_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vault = Vault::create(dir.path(), NewVault::Keyring).expect("keyring vault");
    assert!(
        possible_keyrings().contains(&vault.backend()),
        "{:?} is not one of {:?}",
        vault.backend(),
        possible_keyrings()
    );
    vault
        .set("api-key", &SecretScope::Global, &secret())
        .expect("store");
    vault.rotate_master_key(None).expect("rotate");
    // Safe to run again (as after an interruption).
    vault.rotate_master_key(None).expect("rotate again");
    drop(vault);

    let reopened = Vault::open(dir.path(), None).expect("reopen from the keyring");
    assert_eq!(reopened.list().expect("list").len(), 1);
    let status = Vault::status(dir.path()).expect("status").expect("a vault");
    assert_eq!(status.generation, 3);
    assert_eq!(status.secrets, 1);

    // Point the vault at a key generation the keyring does not hold.
    let db = Connection::open(Vault::path_in(dir.path())).expect("open db");
    db.execute(
        "UPDATE vault_meta SET value = '9' WHERE key = 'generation'",
        [],
    )
    .expect("edit");
    let missing = Vault::open(dir.path(), None).expect_err("key gone");
    assert_eq!(missing.code(), "master_key_missing");
    assert!(
        missing.to_string().contains("cannot be decrypted"),
        "{missing}"
    );
}

/// Without a session bus the key goes to the kernel keyring, whatever
/// this process's environment has: the round trip above runs again in a
/// child process of this test binary without `DBUS_SESSION_BUS_ADDRESS`,
/// where it must choose the kernel keyring.
#[cfg(target_os = "linux")]
#[test]
fn without_a_session_bus_the_kernel_keyring_holds_the_key() {
    let test = "store::a_keyring_vault_round_trips_rotates_and_reports_a_missing_key";
    let out = std::process::Command::new(std::env::current_exe().expect("this test binary"))
        .args(["--exact", test, "--test-threads=1"])
        .env_remove("DBUS_SESSION_BUS_ADDRESS")
        .output()
        .expect("run the round trip");
    let printed = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.status.success(), "{printed}");
    assert!(printed.contains("1 passed"), "it ran: {printed}");
}

#[test]
fn rotating_a_passphrase_vault_rewraps_every_secret() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut vault = vault_with_secret(dir.path(), SecretScope::Tool("fetch".into()));
    let new = Passphrase::new("a brand new passphrase, longer");
    vault.rotate_master_key(Some(new.clone())).expect("rotate");
    drop(vault);
    assert_eq!(
        Vault::open(dir.path(), Some(&passphrase()))
            .expect_err("the old passphrase no longer opens it")
            .code(),
        "wrong_master_key"
    );
    let vault = Vault::open(dir.path(), Some(&new)).expect("the new one does");
    assert_eq!(
        vault.list().expect("list")[0].scope,
        SecretScope::Tool("fetch".into())
    );
}

#[test]
fn names_and_scopes_are_checked() {
    let dir = tempfile::tempdir().expect("tempdir");
    let vault = vault_with_secret(dir.path(), SecretScope::Global);
    let bad_name = vault
        .set("has space", &SecretScope::Global, &secret())
        .expect_err("bad name");
    assert_eq!(bad_name.code(), "invalid_secret_name");
    let moved = vault
        .set("api-key", &SecretScope::Tool("x".into()), &secret())
        .expect_err("changing the scope needs an explicit rm");
    assert_eq!(moved.code(), "scope_conflict");
    assert!(vault.remove("api-key").expect("rm"));
    assert!(!vault.remove("api-key").expect("rm again"));
}
