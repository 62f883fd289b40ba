//! The audit over a journal kept in the state directory's database:
//! heads that verify, removed heads, a foreign key.

use super::head::HeadError;
use super::key::HostKey;
use super::{AuditFailure, Cadence, EntryKind, Journal, JournalStore};
use crate::store::Store;
use crate::store::sql::Mode;
use proptest::prelude::*;
use serde_json::json;
use std::sync::Arc;

fn journal(dir: &std::path::Path, entries: u64) -> (Store, Journal) {
    let store = Store::in_state_dir(dir).expect("store");
    let key = Arc::new(HostKey::open_or_create(dir).expect("key"));
    let cadence = Cadence {
        entries,
        interval: std::time::Duration::from_secs(3600),
    };
    let journal = Journal::with_cadence(Arc::new(store.clone()), key, cadence);
    (store, journal)
}

fn append(journal: &Journal, n: u64) {
    for i in 0..n {
        journal
            .record(&[(EntryKind::Egress, json!({ "n": i }))])
            .expect("append");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// A verified journal stays verified, and extends every head it
    /// had, after any appends on any cadence.
    #[test]
    fn a_verified_journal_stays_verified_after_any_append(
        cadence in 1u64..20, first in 1u64..60, then in 0u64..60,
    ) {
        let dir = tempfile::tempdir().expect("tempdir");
        let (store, journal) = journal(dir.path(), cadence);
        append(&journal, first);
        journal.seal().expect("seal");
        let trusted = journal.verifying_key();
        let before = store.heads().expect("heads");
        let kept = before.last().cloned();
        prop_assert!(store.audit(&trusted, None, journal.cadence()).expect("read").is_ok());
        append(&journal, then);
        let audit = store
            .audit(&trusted, kept.as_ref(), journal.cadence())
            .expect("read");
        prop_assert_eq!(audit.map(|a| a.extends), Ok(Some(first)));
    }
}

#[test]
fn removed_heads_and_foreign_keys_are_reported() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (store, journal) = journal(dir.path(), 2);
    append(&journal, 9);
    let cadence = *journal.cadence();
    let trusted = journal.verifying_key();
    let other = HostKey::open_or_create(tempfile::tempdir().expect("tmp").path())
        .expect("key")
        .verifying_key();
    assert!(matches!(
        store.audit(&other, None, &cadence).expect("read"),
        Err(AuditFailure::Head(HeadError::WrongKey { .. }))
    ));
    store
        .transaction("drop", Mode::Write, |tx| {
            tx.execute("DELETE FROM journal_heads", &[])
        })
        .expect("drop the heads");
    assert_eq!(
        store.audit(&trusted, None, &cadence).expect("read"),
        Err(AuditFailure::Unsealed {
            unsealed: 9,
            limit: 8
        })
    );
    drop(journal);
    assert!(
        store.audit(&trusted, None, &cadence).expect("read").is_ok(),
        "a clean shutdown signs over everything"
    );
}
