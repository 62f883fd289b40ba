//! What `attest verify FILE` and `journal verify --since FILE` read from a
//! file someone handed over: any bytes decode or are refused, and a
//! decoded proof or head never verifies under a key that did not sign it.
#![no_main]

use airlock_journal::attest::{HostKey, Proof};
use airlock_journal::head::TreeHead;
use airlock_journal::{Entry, verify};
use libfuzzer_sys::fuzz_target;
use std::sync::OnceLock;

fn key() -> &'static HostKey {
    static KEY: OnceLock<HostKey> = OnceLock::new();
    KEY.get_or_init(|| {
        let dir = std::env::temp_dir().join("airlock-fuzz-key");
        HostKey::open_or_create(&dir).expect("a key for the run")
    })
}

fuzz_target!(|data: &[u8]| {
    let trusted = key().verifying_key();
    if let Ok(proof) = serde_json::from_slice::<Proof>(data) {
        assert!(
            proof.verify(&trusted).is_err(),
            "a proof nobody signed verified"
        );
    }
    if let Ok(head) = serde_json::from_slice::<TreeHead>(data) {
        assert!(
            head.verify(&trusted).is_err(),
            "a head nobody signed verified"
        );
    }
    if let Ok(entries) = serde_json::from_slice::<Vec<Entry>>(data) {
        let _ = verify(&entries);
    }
});
