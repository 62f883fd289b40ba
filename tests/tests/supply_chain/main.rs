//! One digest from resolution to the bytes that run, shown against a real
//! registry (Debian's `docker-registry` on loopback): a tag swapped to
//! another component between the signature check and the fetch changes
//! nothing that loads, and the swapped-in component is not signed.

use airlock::oci::{
    ComponentRef, ContentStore, Credentials, PublicKey, Registry, Trust, VerifyError,
};
use airlock_tests::guest_path;
use airlock_tests::registry::{TestRegistry, keygen};
use std::path::Path;

#[tokio::test]
async fn a_tag_swapped_between_verification_and_fetch_loads_what_was_verified() {
    let registry = TestRegistry::start();
    let echo = std::fs::read(guest_path("echo")).expect("echo");
    let signed = registry.push("tools/t:1", Path::new(guest_path("echo")));
    let keys = tempfile::tempdir().expect("keys");
    let prefix = keys.path().join("acme");
    keygen(&prefix);
    let key = prefix.with_extension("key").display().to_string();
    registry.sign("cosign", "tools/t", &signed, &[&key]);
    let public = std::fs::read_to_string(prefix.with_extension("pub")).expect("public key");
    let trust = Trust::Key {
        key: PublicKey::from_pem(&public).expect("a key"),
        root: None,
    };

    let store = tempfile::tempdir().expect("store");
    let client = Registry::new(
        ContentStore::new(store.path()),
        Credentials::anonymous(),
        airlock::MAX_COMPONENT_BYTES,
    );
    let reference: ComponentRef = registry
        .reference("tools/t:1")
        .parse()
        .expect("a reference");
    let resolved = client.resolve(&reference).await.expect("resolved");
    assert_eq!(resolved.digest().to_string(), signed);
    let verified = client.verify(&resolved, &trust).await.expect("signed");

    // The attacker moves the tag after the check, before the fetch.
    let swapped = registry.push("tools/t:1", Path::new(guest_path("json-transform")));
    assert_ne!(swapped, signed);

    let pulled = client.fetch_verified(&verified).await.expect("fetched");
    assert_eq!(pulled.manifest.to_string(), signed);
    assert!(pulled.bytes == echo, "the verified component is what loads");
    assert_eq!(
        pulled.reference.to_string(),
        format!("{reference}@{signed}")
    );

    // What the tag names now carries no signature.
    let now = client.resolve(&reference).await.expect("resolved again");
    assert_eq!(now.digest().to_string(), swapped);
    match client.verify(&now, &trust).await {
        Err(e @ VerifyError::Missing { .. }) => assert_eq!(e.code(), "signature_missing"),
        other => panic!("the swapped-in component verified: {other:?}"),
    }
}
