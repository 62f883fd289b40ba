//! The journal records the whole story of an approved network call, proves
//! single executions, and names the first entry someone tampered with.

use airlock::approvals::OperatorDecision;
use airlock::attest::{AttestError, Attestation, HostKey, Proof, egress_digest, sha256_hex};
use airlock::egress::StaticResolver;
use airlock::journal::head::HeadError;
use airlock::journal::tree::TreeError;
use airlock::journal::{ChainBreak, Entry, GENESIS, JournalStore, entry_hash};
use airlock::policy::Principal;
use airlock::store::Store;
use airlock::{Grants, Host, Invocation, NetworkGrant, Outcome};
use airlock_tests::net::{Behaviour, TestServer};
use airlock_tests::{load_guest_with, test_cache_dir};
use rusqlite::{Connection, params};
use serde_json::Value;
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::sync::Arc;
use std::time::SystemTime;

const SVC: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// Something an agent might smuggle in its input; no entry may hold it.
const MARKER: &str = "sk-live-0123456789abcdef";

struct Story {
    attestation: Attestation,
    input: String,
    output: String,
    approval_id: String,
}

/// An unapproved network call becomes pending, an operator allows it
/// once, and it runs: the full journey the journal must tell.
async fn approved_network_call(state: &Path) -> Story {
    let server = TestServer::start(SVC, 0, Behaviour::Echo)
        .await
        .expect("server");
    let port = server.addr().port();
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .state_dir(state)
        .resolver(Arc::new(
            StaticResolver::new().with("svc.test", [IpAddr::V4(SVC)]),
        ))
        .build()
        .expect("host");
    let grant = format!("[[allow]]\nhost = \"svc.test\"\nprivate = true\nports = [{port}]\n");
    let grant = NetworkGrant::from_toml(&grant, "grant.toml").expect("grant");
    let fetch = load_guest_with(&host, "http-get", Grants::none().with_network(grant)).await;
    let input = serde_json::json!({ "url": format!("http://svc.test:{port}/search?key={MARKER}") })
        .to_string();
    let call = || Invocation::new(input.clone()).as_principal(Principal::agent("claude"));

    let Outcome::PendingApproval { approval, .. } =
        host.invoke(&fetch, call()).await.expect("invoke")
    else {
        panic!("an unapproved network tool must wait for approval");
    };
    assert!(
        server.requests().is_empty(),
        "nothing was sent before approval"
    );
    let operator =
        airlock::approvals::kept_in(&Store::in_state_dir(state).expect("operator store"));
    operator
        .decide(
            &approval.id,
            &OperatorDecision::AllowOnce,
            "operator:test",
            SystemTime::now(),
        )
        .expect("decide");

    let outcome = host
        .invoke(&fetch, call().under_approval(&approval.id))
        .await
        .expect("invoke");
    let output = outcome
        .output()
        .unwrap_or_else(|| panic!("{outcome:?}"))
        .to_string();
    assert_eq!(server.requests().len(), 1);
    let entry = host
        .journal()
        .expect("journal")
        .store()
        .find_attestation(&outcome.report().invocation_id)
        .expect("read")
        .expect("the outcome was returned after its entry was committed");
    Story {
        attestation: attestation_of(&entry),
        input,
        output,
        approval_id: approval.id,
    }
}

fn attestation_of(entry: &Entry) -> Attestation {
    let payload: Value = serde_json::from_str(&entry.payload).expect("payload JSON");
    serde_json::from_value(payload["attestation"].clone()).expect("an attestation")
}

fn all(state: &Path) -> Vec<Entry> {
    Store::in_state_dir(state)
        .expect("store")
        .all()
        .expect("entries")
}

fn verdict(state: &Path) -> Result<u64, ChainBreak> {
    Store::in_state_dir(state)
        .expect("store")
        .verify()
        .expect("read")
        .map(|(n, _)| n)
}

fn database(state: &Path) -> Connection {
    Connection::open(state.join("airlock.db")).expect("open the database behind the host's back")
}

#[tokio::test]
async fn the_journal_tells_request_decision_invocation_and_egress_in_order() {
    let state = tempfile::tempdir().expect("tempdir");
    let story = approved_network_call(state.path()).await;
    let entries = all(state.path());
    let kinds: Vec<&str> = entries
        .iter()
        .map(|e| e.kind.as_str())
        .filter(|k| *k != "policy_reload")
        .collect();
    assert_eq!(
        kinds,
        [
            "approval_requested",
            "approval_decided",
            "invocation",
            "egress"
        ]
    );
    assert_eq!(verdict(state.path()), Ok(entries.len() as u64));

    let a = &story.attestation;
    assert_eq!(a.tool, "http-get");
    assert_eq!(a.world, "network");
    assert_eq!(a.principal, r#"Agent::"claude""#);
    assert_eq!(a.input_sha256, sha256_hex(story.input.as_bytes()));
    assert_eq!(
        a.output_sha256.as_deref(),
        Some(sha256_hex(story.output.as_bytes()).as_str())
    );
    assert_eq!(a.outcome, "ok");
    assert_eq!(
        (a.executor.as_str(), a.enforcement.as_str()),
        ("wasm_component", "wasm_sandbox")
    );
    assert_eq!(a.approval_id.as_deref(), Some(story.approval_id.as_str()));
    assert_eq!(a.policies, vec!["run-approved-sensitive-tools"]);
    assert_eq!(a.airlock_version, env!("CARGO_PKG_VERSION"));
    assert!(ulid::Ulid::from_string(&a.id).is_ok(), "{}", a.id);

    let egress: Vec<Value> = entries
        .iter()
        .filter(|e| e.kind == "egress")
        .map(|e| serde_json::from_str(&e.payload).expect("JSON"))
        .collect();
    assert_eq!(a.egress_count, 1);
    assert_eq!(a.egress_digest, egress_digest(&egress));
    assert_eq!(egress[0]["decision"], "allow");
    assert_eq!(egress[0]["invocation_id"], a.id.as_str());

    for entry in &entries {
        assert!(
            !entry.payload.contains(MARKER),
            "entry {} holds the input's secret",
            entry.seq
        );
        assert!(
            !entry.payload.contains("/search"),
            "entry {} holds the request path",
            entry.seq
        );
    }
}

#[tokio::test]
async fn a_single_attestation_is_proved_by_a_signed_tree_head_and_forgeries_are_not() {
    let state = tempfile::tempdir().expect("tempdir");
    let story = approved_network_call(state.path()).await;
    // The host that ran it is gone: its clean shutdown signed a head over
    // everything it journaled.
    let store = Store::in_state_dir(state.path()).expect("store");
    let key = HostKey::open_or_create(state.path()).expect("host key");
    let journal = store.all().expect("entries");
    let heads = store.heads().expect("heads");
    assert_eq!(
        heads.last().map(|head| head.size),
        Some(journal.len() as u64),
        "the last head covers every entry"
    );
    let entry = journal
        .iter()
        .find(|e| e.kind == "invocation")
        .expect("an invocation entry");
    let inclusion = store
        .inclusion(entry.seq)
        .expect("read")
        .expect("a head covers it");
    let proof = Proof::new(story.attestation.clone(), entry, inclusion);
    let covering = heads
        .iter()
        .filter(|head| head.size >= entry.seq)
        .map(|head| head.size)
        .min();
    assert_eq!(proof.verify(&key.verifying_key()).ok(), covering);

    // The proof survives serialisation, as `attest export` hands it out.
    let exported: Proof =
        serde_json::from_str(&serde_json::to_string(&proof).expect("ser")).expect("de");
    assert_eq!(exported.verify(&key.verifying_key()).ok(), covering);

    let mut claims_other_output = proof.clone();
    claims_other_output.attestation.output_sha256 = Some(sha256_hex(b"{}"));
    let err = claims_other_output
        .verify(&key.verifying_key())
        .expect_err("another output");
    assert!(
        matches!(&err, AttestError::Invalid(m) if m.ends_with("holds a different attestation")),
        "{err:?}"
    );
    assert_eq!(err.code(), "attestation_invalid");

    let mut rewritten = proof.clone();
    rewritten.entry.payload = rewritten.entry.payload.replace("\"ok\"", "\"trap\"");
    let err = rewritten
        .verify(&key.verifying_key())
        .expect_err("modified entry");
    assert!(
        matches!(&err, AttestError::Invalid(m) if m.ends_with("does not match its hash")),
        "{err:?}"
    );

    // Re-hashed by someone who knows the hash function: no longer in the
    // signed tree.
    let mut rehashed = proof.clone();
    let e = &mut rehashed.entry;
    e.payload = e.payload.replace("claude", "nobody");
    e.hash = entry_hash(e.seq, &e.time, e.kind.as_str(), &e.payload, &e.prev_hash);
    rehashed.attestation.principal = rehashed.attestation.principal.replace("claude", "nobody");
    let err = rehashed
        .verify(&key.verifying_key())
        .expect_err("re-hashed entry");
    assert!(
        matches!(&err, AttestError::Tree(TreeError::NotIncluded { seq, .. }) if *seq == entry.seq),
        "{err:?}"
    );

    // Not yet sealed: no head covers an entry past the last one.
    let last = heads.last().expect("a head").size;
    assert_eq!(
        store
            .inclusion(last + 1)
            .expect("read")
            .map_err(|e| e.code())
            .err(),
        Some("attestation_not_sealed")
    );
    // Hashes that do not fill the head are no proof of anything.
    let leaves = store.leaves(last).expect("hashes");
    assert_eq!(leaves.len() as u64, last);
    assert_eq!(
        airlock::attest::inclusion(entry.seq, &leaves[1..], heads.last().expect("a head"))
            .map_err(|e| e.code())
            .err(),
        Some("attestation_not_sealed")
    );

    let other_key =
        HostKey::open_or_create(tempfile::tempdir().expect("tempdir").path()).expect("key");
    let err = proof
        .verify(&other_key.verifying_key())
        .expect_err("signed by this host only");
    assert!(
        matches!(&err, AttestError::Head(HeadError::WrongKey { size, .. }) if Some(*size) == covering),
        "{err:?}"
    );

    let host_key_mode =
        std::fs::metadata(state.path().join(airlock::attest::KEY_FILE)).expect("key file");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        assert_eq!(host_key_mode.permissions().mode() & 0o777, 0o600);
    }
    assert!(host_key_mode.len() > 0);
}

/// The entry at `seq`, as stored.
fn row(db: &Connection, seq: u64) -> (String, String, String, String, String) {
    db.query_row(
        "SELECT time, kind, payload, prev_hash, hash FROM journal WHERE seq = ?1",
        params![seq],
        |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
    )
    .expect("row")
}

#[tokio::test]
async fn tampering_with_any_row_names_the_first_bad_entry() {
    let pristine = tempfile::tempdir().expect("tempdir");
    approved_network_call(pristine.path()).await;
    let count = all(pristine.path()).len() as u64;
    assert!(count >= 4);
    let copy = || {
        let dir = tempfile::tempdir().expect("tempdir");
        let db = database(pristine.path());
        db.execute(
            "VACUUM INTO ?1",
            params![dir.path().join("airlock.db").to_string_lossy()],
        )
        .expect("copy the database");
        dir
    };

    // Modified: one byte of one payload.
    let dir = copy();
    database(dir.path())
        .execute("UPDATE journal SET payload = replace(payload, '\"ok\"', '\"trap\"') WHERE kind = 'invocation'", [])
        .expect("modify");
    let invocation_seq = all(dir.path())
        .iter()
        .find(|e| e.kind == "invocation")
        .map(|e| e.seq)
        .expect("seq");
    assert_eq!(
        verdict(dir.path()),
        Err(ChainBreak::Modified {
            seq: invocation_seq
        })
    );

    // Modified and re-hashed, by someone who knows the hash function: the
    // next entry no longer links to it.
    let dir = copy();
    let db = database(dir.path());
    let (time, kind, payload, prev, _) = row(&db, 2);
    let forged = payload.replace("claude", "nobody");
    db.execute(
        "UPDATE journal SET payload = ?1, hash = ?2 WHERE seq = 2",
        params![
            forged,
            entry_hash(2, &time, &kind, &forged, &prev.parse().expect("a hash")).to_string()
        ],
    )
    .expect("forge");
    assert_eq!(verdict(dir.path()).map_err(|e| e.seq()), Err(3));

    // Deleted.
    let dir = copy();
    database(dir.path())
        .execute("DELETE FROM journal WHERE seq = 2", [])
        .expect("delete");
    assert_eq!(
        verdict(dir.path()),
        Err(ChainBreak::Broken { seq: 3, after: 1 })
    );

    // Inserted, with a hash that links to the entry before it.
    let dir = copy();
    let db = database(dir.path());
    for seq in (2..=count).rev() {
        db.execute(
            "UPDATE journal SET seq = seq + 1 WHERE seq = ?1",
            params![seq],
        )
        .expect("shift");
    }
    let (_, _, _, _, first_hash) = row(&db, 1);
    let payload = r#"{"note":"inserted"}"#;
    let time = "2026-01-01T00:00:00.000Z";
    db.execute(
        "INSERT INTO journal (seq, time, kind, payload, prev_hash, hash) VALUES (2, ?1, 'denial', ?2, ?3, ?4)",
        params![
            time,
            payload,
            first_hash,
            entry_hash(2, time, "denial", payload, &first_hash.parse().expect("a hash"))
                .to_string()
        ],
    )
    .expect("insert");
    assert_eq!(verdict(dir.path()).map_err(|e| e.seq()), Err(3));

    // Reordered: two entries swap places.
    let dir = copy();
    let db = database(dir.path());
    db.execute("UPDATE journal SET seq = -1 WHERE seq = 2", [])
        .expect("swap");
    db.execute("UPDATE journal SET seq = 2 WHERE seq = 3", [])
        .expect("swap");
    db.execute("UPDATE journal SET seq = 3 WHERE seq = -1", [])
        .expect("swap");
    assert_eq!(verdict(dir.path()).map_err(|e| e.seq()), Err(2));

    // Truncated from the front: the first entry must link to the genesis.
    let dir = copy();
    database(dir.path())
        .execute("DELETE FROM journal WHERE seq = 1", [])
        .expect("delete");
    assert_eq!(verdict(dir.path()).map_err(|e| e.seq()), Err(2));
    assert_eq!(row(&database(pristine.path()), 1).3, GENESIS.to_string());

    // A stored hash overwritten with something that is not one, or
    // re-spelled in upper case: the journal still reads, and the entry is
    // named as modified like any other change.
    for garble in ["'not-a-hash'", "upper(hash)"] {
        let dir = copy();
        database(dir.path())
            .execute(
                &format!("UPDATE journal SET hash = {garble} WHERE seq = 2"),
                [],
            )
            .expect("garble");
        assert_eq!(
            verdict(dir.path()),
            Err(ChainBreak::Modified { seq: 2 }),
            "{garble}"
        );
    }

    // The newest entry's hash overwritten: the writer refuses to chain onto
    // it (or sign over it), so the host key never vouches for the change,
    // which the audit still names.
    let dir = copy();
    database(dir.path())
        .execute(
            "UPDATE journal SET hash = 'not-a-hash' WHERE seq = (SELECT max(seq) FROM journal)",
            [],
        )
        .expect("garble the newest entry");
    let store = Store::in_state_dir(dir.path()).expect("store");
    let refused = store
        .append(&[airlock::journal::NewEntry::new(
            airlock::journal::EntryKind::PolicyReload,
            &serde_json::json!({ "after": "the garbled entry" }),
        )])
        .expect_err("no entry is chained onto a hash that is not one");
    assert!(
        refused.to_string().contains("last journal entry's hash"),
        "{refused}"
    );
    assert_eq!(all(dir.path()).len() as u64, count, "nothing was appended");
    assert_eq!(
        verdict(dir.path()),
        Err(ChainBreak::Modified { seq: count })
    );

    // A signed head's root overwritten: the audit fails and says so (a
    // verdict), rather than the journal becoming unreadable.
    let dir = copy();
    database(dir.path())
        .execute("UPDATE journal_heads SET root = 'not-a-root'", [])
        .expect("garble the heads");
    let key = HostKey::open_or_create(pristine.path()).expect("the host's key");
    let audit = Store::in_state_dir(dir.path())
        .expect("store")
        .audit(
            &key.verifying_key(),
            None,
            &airlock::journal::Cadence::default(),
        )
        .expect("the journal reads");
    assert!(
        matches!(
            audit,
            Err(airlock::journal::AuditFailure::Head(
                HeadError::BadSignature { .. }
            ))
        ),
        "{audit:?}"
    );

    // And the original is untouched by all of this.
    assert_eq!(verdict(pristine.path()), Ok(count));
}
