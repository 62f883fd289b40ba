//! The vault replicas share, on a real PostgreSQL (the cluster `.ci/test`
//! starts): one passphrase opens it on every replica, a keyring is
//! refused, and a rotation on one replica leaves no secret sealed under a
//! key no longer in force.

use super::{SECRET, passphrase, secret};
use airlock::vault::{NewVault, Passphrase, SecretScope, Vault, VaultPlace};
use airlock_tests::postgres::fresh_database;

fn code(result: Result<Vault, airlock::vault::VaultError>) -> &'static str {
    result.expect_err("refused").code()
}

#[test]
fn replicas_open_one_shared_vault_with_one_passphrase() {
    let db = fresh_database();
    let on = |replica: &str| VaultPlace::Shared(Box::new(db.settings(replica)));

    assert_eq!(
        code(Vault::create(on("a"), NewVault::Keyring)),
        "keyring_with_shared_store"
    );
    assert!(
        Vault::status(on("a")).expect("status").is_none(),
        "nothing created"
    );
    assert_eq!(code(Vault::open(on("a"), None)), "vault_not_created");

    let a = Vault::create(on("a"), NewVault::Passphrase(passphrase())).expect("create");
    a.set("api-key", &SecretScope::Global, &secret())
        .expect("set");
    assert_eq!(
        code(Vault::create(on("b"), NewVault::Passphrase(passphrase()))),
        "vault_exists"
    );

    let b = Vault::open(on("b"), Some(&passphrase())).expect("the same passphrase opens it");
    let info = b.info("api-key").expect("info").expect("stored through a");
    assert_eq!(info.scope, SecretScope::Global);
    assert_eq!(code(Vault::open(on("b"), None)), "passphrase_required");
    let wrong = Passphrase::new("another passphrase entirely");
    assert_eq!(code(Vault::open(on("b"), Some(&wrong))), "wrong_master_key");
    let status = Vault::status(on("b")).expect("status").expect("a vault");
    assert_eq!((status.secrets, status.generation), (1, 1));

    // Nothing but sealed bytes in the shared database.
    for row in db.execute(
        "SELECT name, scope, created, nonce, ciphertext, key_nonce, wrapped_key FROM vault_secrets",
    ) {
        let sealed: Vec<u8> = row.get(4);
        assert!(!String::from_utf8_lossy(&sealed).contains(SECRET));
    }
    let meta = db.execute("SELECT key, value FROM vault_meta");
    assert!(
        meta.iter()
            .all(|row| !row.get::<_, String>(1).contains("correct horse"))
    );
}

#[test]
fn a_rotation_on_one_replica_refuses_what_another_seals_under_the_old_key() {
    let db = fresh_database();
    let on = |replica: &str| VaultPlace::Shared(Box::new(db.settings(replica)));
    let mut a = Vault::create(on("a"), NewVault::Passphrase(passphrase())).expect("create");
    a.set("api-key", &SecretScope::Global, &secret())
        .expect("set");
    let stale = Vault::open(on("b"), Some(&passphrase())).expect("open on b");

    let new = Passphrase::new("the passphrase after rotation");
    a.rotate_master_key(Some(new.clone())).expect("rotate on a");
    let refused = stale
        .set("later", &SecretScope::Global, &secret())
        .expect_err("sealed under the old key");
    assert_eq!(refused.code(), "master_key_rotated");
    assert!(
        stale.info("later").expect("info").is_none(),
        "nothing stored"
    );

    assert_eq!(
        code(Vault::open(on("b"), Some(&passphrase()))),
        "wrong_master_key"
    );
    let fresh = Vault::open(on("b"), Some(&new)).expect("the new passphrase opens it");
    fresh
        .set("later", &SecretScope::Global, &secret())
        .expect("stored under the new key");
    let names: Vec<String> = a
        .list()
        .expect("list")
        .into_iter()
        .map(|s| s.name)
        .collect();
    assert_eq!(names, ["api-key", "later"]);
    assert_eq!(
        Vault::status(on("a"))
            .expect("status")
            .expect("vault")
            .generation,
        2
    );
}
