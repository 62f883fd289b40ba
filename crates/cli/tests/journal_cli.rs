//! The journal and attestation commands: `journal verify` (chain, signed
//! tree heads, a kept key and head), `journal head`, `attest verify` and
//! `attest export`, against tampering as an attacker would do it.

mod common;

use airlock_tests::guest_path;
use common::{code, in_state, json_of, state_with_one_run, stderr, stdout};
use serde_json::Value;
use std::path::Path;

#[test]
fn attestations_verify_by_id_and_as_exported_files() {
    let state = tempfile::tempdir().expect("tempdir");
    let (attestation, approval) = state_with_one_run(state.path());
    let input = state.path().join("input.json");
    std::fs::write(&input, "[42]").expect("input");
    let output = state.path().join("output.json");
    std::fs::write(&output, "[42]").expect("output");
    let (input, output) = (input.display().to_string(), output.display().to_string());

    let by_id = in_state(
        state.path(),
        &[
            "attest",
            "verify",
            &attestation,
            "--input",
            &input,
            "--output",
            &output,
        ],
    );
    assert_eq!(code(&by_id), 0, "{}{}", stdout(&by_id), stderr(&by_id));
    let report = json_of(&by_id);
    assert_eq!(report["valid"], true);
    assert_eq!(report["attestation"]["approval_id"], approval.as_str());
    assert_eq!(report["attestation"]["tool"], "echo");
    assert_eq!(
        report["checks"].as_array().map(Vec::len),
        Some(5),
        "{report}"
    );

    let exported = in_state(state.path(), &["attest", "export", &attestation]);
    assert_eq!(code(&exported), 0, "{}", stderr(&exported));
    let file = state.path().join("proof.json");
    std::fs::write(&file, &exported.stdout).expect("proof");
    let file_text = file.display().to_string();
    let from_file = in_state(state.path(), &["attest", "verify", &file_text]);
    assert_eq!(code(&from_file), 0, "{}", stdout(&from_file));

    // An output the tool did not produce does not match.
    std::fs::write(&output, "[43]").expect("output");
    let wrong = in_state(
        state.path(),
        &["attest", "verify", &attestation, "--output", &output],
    );
    assert_eq!(code(&wrong), 1);
    assert_eq!(json_of(&wrong)["valid"], false);

    // A proof whose attestation was edited fails.
    let forged = String::from_utf8_lossy(&exported.stdout).replace("\"echo\"", "\"other\"");
    std::fs::write(&file, forged).expect("forge");
    let forged = in_state(state.path(), &["attest", "verify", &file_text]);
    assert_eq!(code(&forged), 1, "{}", stdout(&forged));

    let missing = in_state(
        state.path(),
        &["attest", "verify", "01NOSUCHATTESTATION0000000"],
    );
    assert_eq!(code(&missing), 2);
    assert!(
        stderr(&missing).contains("attestation_not_found"),
        "{}",
        stderr(&missing)
    );
}

#[test]
fn journal_verify_names_the_first_tampered_entry() {
    let state = tempfile::tempdir().expect("tempdir");
    state_with_one_run(state.path());
    let clean = in_state(state.path(), &["journal", "verify"]);
    assert_eq!(code(&clean), 0, "{}", stderr(&clean));
    assert!(
        stdout(&clean).starts_with("journal intact:"),
        "{}",
        stdout(&clean)
    );

    let db = rusqlite::Connection::open(state.path().join("airlock.db")).expect("db");
    let seq: i64 = db
        .query_row(
            "SELECT seq FROM journal WHERE kind = 'approval_decided'",
            [],
            |r| r.get(0),
        )
        .expect("decision entry");
    db.execute(
        "UPDATE journal SET payload = replace(payload, 'session', 'until') WHERE seq = ?1",
        [seq],
    )
    .expect("tamper");
    drop(db);

    let broken = in_state(state.path(), &["journal", "verify", "--json"]);
    assert_eq!(code(&broken), 1);
    let verdict = json_of(&broken);
    assert_eq!(verdict["valid"], false);
    assert_eq!(verdict["first_bad_seq"], seq);
    let text = in_state(state.path(), &["journal", "verify"]);
    assert!(
        stderr(&text).contains(&format!("entry {seq} was modified")),
        "{}",
        stderr(&text)
    );
}

/// Rewrites the journal from entry `from` on as someone who knows the hash
/// function would: `edit` changes payloads, every later hash and link is
/// recomputed, and the signed heads are dropped.
fn rewrite_journal(state: &Path, from: i64, edit: impl Fn(&str) -> String) {
    let db = rusqlite::Connection::open(state.join("airlock.db")).expect("db");
    let rows: Vec<(i64, String, String, String)> = db
        .prepare("SELECT seq, time, kind, payload FROM journal WHERE seq >= ?1 ORDER BY seq")
        .and_then(|mut q| {
            q.query_map([from], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))?
                .collect()
        })
        .expect("rows");
    let mut prev: airlock::journal::tree::Hash = db
        .query_row("SELECT hash FROM journal WHERE seq = ?1", [from - 1], |r| {
            r.get::<_, String>(0)
        })
        .map_or(airlock::journal::GENESIS, |hash| {
            hash.parse().expect("a stored hash")
        });
    for (seq, time, kind, payload) in rows {
        let payload = edit(&payload);
        let hash = airlock::journal::entry_hash(seq as u64, &time, &kind, &payload, &prev);
        db.execute(
            "UPDATE journal SET payload = ?1, prev_hash = ?2, hash = ?3 WHERE seq = ?4",
            rusqlite::params![payload, prev.to_string(), hash.to_string(), seq],
        )
        .expect("rewrite");
        prev = hash;
    }
    db.execute("DELETE FROM journal_heads", [])
        .expect("drop the heads");
}

#[test]
fn the_journal_proves_itself_against_a_kept_key_and_an_exported_head() {
    let state = tempfile::tempdir().expect("tempdir");
    let (attestation, _) = state_with_one_run(state.path());
    // What the operator keeps off the machine: the public key, the latest
    // head, and a proof of one execution.
    let kept = tempfile::tempdir().expect("tempdir");
    let key = kept.path().join("host.pub");
    std::fs::copy(state.path().join("host.pub"), &key).expect("keep the key");
    let head = kept.path().join("head.json");
    let (key, head) = (key.display().to_string(), head.display().to_string());
    let exported = in_state(state.path(), &["journal", "head", "--export", &head]);
    assert_eq!(code(&exported), 0, "{}", stderr(&exported));
    let proof = kept.path().join("proof.json");
    let out = in_state(state.path(), &["attest", "export", &attestation]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    std::fs::write(&proof, &out.stdout).expect("keep the proof");
    let proof = proof.display().to_string();

    let verify = |extra: &[&str]| {
        let args = [&["journal", "verify", "--json"][..], extra].concat();
        let out = in_state(state.path(), &args);
        let verdict = json_of(&out);
        (code(&out), verdict)
    };
    let (exit, verdict) = verify(&["--key", &key, "--since", &head]);
    assert_eq!(exit, 0, "{verdict}");
    assert_eq!(verdict["extends"], verdict["entries"], "{verdict}");
    let text = in_state(state.path(), &["journal", "verify"]);
    assert!(
        stderr(&text).contains("proves nothing against whoever can write"),
        "a loud note without --key: {}",
        stderr(&text)
    );

    // Offline: the proof and the kept key, no state directory at all.
    let nowhere = tempfile::tempdir().expect("tempdir");
    let offline = in_state(nowhere.path(), &["attest", "verify", &proof, "--key", &key]);
    assert_eq!(code(&offline), 0, "{}", stdout(&offline));
    assert!(!nowhere.path().join("airlock.db").exists());

    // The journal grows; it still extends the kept head.
    let run = in_state(
        state.path(),
        &["run", guest_path("echo"), "--input", "[42]"],
    );
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    let (exit, verdict) = verify(&["--key", &key, "--since", &head]);
    assert_eq!(exit, 0, "{verdict}");
    assert!(verdict["entries"].as_u64() > verdict["extends"].as_u64());

    // Keep a pristine copy for the truncation case.
    let copy = tempfile::tempdir().expect("tempdir");
    let db = rusqlite::Connection::open(state.path().join("airlock.db")).expect("db");
    db.execute(
        "VACUUM INTO ?1",
        [copy.path().join("airlock.db").display().to_string()],
    )
    .expect("copy");
    drop(db);
    std::fs::copy(state.path().join("host.pub"), copy.path().join("host.pub")).expect("pub");

    // A full rewrite re-signed with the key beside the data (any writer
    // signs the rewritten log): the stored heads agree, the kept head not.
    rewrite_journal(state.path(), 2, |payload| payload.replace("echo", "ekho"));
    let run = in_state(state.path(), &["run", guest_path("echo"), "--input", "{}"]);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    let (exit, verdict) = verify(&["--key", &key]);
    assert_eq!(
        exit, 0,
        "the key beside the data vouches for anything: {verdict}"
    );
    let (exit, verdict) = verify(&["--key", &key, "--since", &head]);
    assert_eq!(exit, 1, "{verdict}");
    assert!(
        verdict["message"]
            .as_str()
            .is_some_and(|m| m.contains("rewritten")),
        "{verdict}"
    );

    // A host key replaced by the attacker: heads no longer verify under the
    // kept key.
    std::fs::remove_file(state.path().join("host.key")).expect("rm key");
    std::fs::remove_file(state.path().join("host.pub")).expect("rm pub");
    let run = in_state(state.path(), &["run", guest_path("echo"), "--input", "{}"]);
    assert_eq!(code(&run), 0, "{}", stderr(&run));
    let (exit, verdict) = verify(&["--key", &key]);
    assert_eq!(exit, 1, "{verdict}");
    assert!(
        verdict["message"]
            .as_str()
            .is_some_and(|m| m.contains("not by the trusted key")),
        "{verdict}"
    );

    // Truncation: the tail deleted (with the heads over it) is caught by
    // the stored heads, and — heads dropped too — by the kept head.
    let db = rusqlite::Connection::open(copy.path().join("airlock.db")).expect("db");
    let exported_size: i64 =
        serde_json::from_str::<Value>(&std::fs::read_to_string(&head).expect("head"))
            .expect("json")["size"]
            .as_i64()
            .expect("size");
    db.execute("DELETE FROM journal WHERE seq >= ?1", [exported_size - 1])
        .expect("truncate");
    drop(db);
    let truncated = in_state(copy.path(), &["journal", "verify", "--json"]);
    assert_eq!(code(&truncated), 1);
    assert!(
        json_of(&truncated)["message"]
            .as_str()
            .is_some_and(|m| m.contains("deleted from its end")),
        "{}",
        stdout(&truncated)
    );
    let db = rusqlite::Connection::open(copy.path().join("airlock.db")).expect("db");
    db.execute("DELETE FROM journal_heads", [])
        .expect("drop heads");
    drop(db);
    let against_kept = in_state(
        copy.path(),
        &[
            "journal", "verify", "--json", "--key", &key, "--since", &head,
        ],
    );
    assert_eq!(code(&against_kept), 1, "{}", stdout(&against_kept));
    assert_eq!(
        json_of(&against_kept)["first_bad_seq"],
        exported_size - 1,
        "{}",
        stdout(&against_kept)
    );
}
