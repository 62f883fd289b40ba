//! The approvals' rules, on a state directory's SQLite database (the
//! shared database's run in `tests/serve/replicas.rs`).

use super::*;
use crate::approvals::GrantBinding;
use crate::journal::JournalStore;

/// The approvals of a fresh state directory, and its database (whose
/// journal the rules write to).
fn kept(dir: &std::path::Path) -> (Store, Kept) {
    let store = Store::in_state_dir(dir).expect("store");
    (store.clone(), Kept(store))
}

fn request(principal: &str, session: &str, sha: &str, input: &str) -> ApprovalRequest {
    granted(principal, session, sha, input, "rule api ports [443]")
}

fn granted(principal: &str, session: &str, sha: &str, input: &str, grant: &str) -> ApprovalRequest {
    ApprovalRequest::new(
        principal,
        session,
        "fetch",
        sha,
        &["network".into()],
        // One summary for both grants: the digest alone tells them apart.
        GrantBinding::new("host = \"api\"".into(), [grant.to_string()]),
        input,
    )
}

#[test]
fn an_approval_covers_only_the_grant_it_was_given_for() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (_, store) = kept(dir.path());
    let now = SystemTime::now();
    let decisions = [
        OperatorDecision::AllowOnce,
        OperatorDecision::AllowSession,
        OperatorDecision::AllowFor(Duration::from_secs(3600)),
    ];
    // Outside any session, `session` would allow nothing: refused,
    // and the approval stays pending.
    let sessionless = granted("Agent::\"b\"", "", "sha1", "{}", "rule api ports [443]");
    let pending = store.request(&sessionless).expect("pending");
    let refused = store
        .decide(
            &pending.id,
            &OperatorDecision::AllowSession,
            "operator:test",
            now,
        )
        .expect_err("no session");
    assert_eq!(refused.code(), "approval_has_no_session");
    assert!(matches!(
        store.lookup(&sessionless, now).expect("lookup"),
        Lookup::Pending(_)
    ));

    // One principal per decision, so that earlier approvals stay apart.
    for (i, decision) in decisions.into_iter().enumerate() {
        let who = format!("Agent::\"a{i}\"");
        let narrow = granted(&who, "s1", "sha1", "{}", "rule api ports [443]");
        let wide = granted(&who, "s1", "sha1", "{}", "rule api ports [443, 80]");
        let pending = store.request(&narrow).expect("pending");
        assert_eq!(pending.request.input, "{}", "the whole input is kept");
        store
            .decide(&pending.id, &decision, "operator:test", now)
            .expect("decide");
        assert!(
            matches!(
                store.lookup(&narrow, now).expect("lookup"),
                Lookup::Approved(_)
            ),
            "{decision:?} covers the grant it was given for"
        );
        assert_eq!(
            store.lookup(&wide, now).expect("lookup"),
            Lookup::Unknown,
            "{decision:?} does not cover a wider grant"
        );
        let stored = store.get(&pending.id).expect("get").expect("there");
        assert_eq!(stored.request.input, "{}", "and read back");
    }
}

#[test]
fn a_session_approval_ends_with_its_session() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sqlite, store) = kept(dir.path());
    let now = SystemTime::now();
    let a = |session: &str, input: &str| request("Agent::\"a\"", session, "sha1", input);

    let allowed = store.request(&a("s1", "[1]")).expect("pending");
    store
        .decide(
            &allowed.id,
            &OperatorDecision::AllowSession,
            "operator:test",
            now,
        )
        .expect("decide");
    let waiting = store.request(&a("s1", "[2]")).expect("pending");
    let elsewhere = store.request(&a("s2", "[3]")).expect("pending");
    store
        .decide(
            &elsewhere.id,
            &OperatorDecision::AllowSession,
            "operator:test",
            now,
        )
        .expect("decide");
    assert!(matches!(
        store.lookup(&a("s1", "[9]"), now).expect("lookup"),
        Lookup::Approved(_)
    ));

    let ended = store.end_session("s1").expect("end");
    assert_eq!(ended.len(), 2, "the session approval and the pending one");
    assert!(ended.contains(&allowed.id) && ended.contains(&waiting.id));
    assert!(
        matches!(
            store.lookup(&a("s1", "[9]"), now).expect("lookup"),
            Lookup::Unknown
        ),
        "a session approval covers nothing once its session ended"
    );
    assert!(
        matches!(
            store.lookup(&a("s2", "[9]"), now).expect("lookup"),
            Lookup::Approved(_)
        ),
        "another session's stays"
    );
    assert!(store.get(&allowed.id).expect("get").expect("there").used);
    assert!(
        store.end_session("s1").expect("again").is_empty(),
        "ends once"
    );
    assert!(store.end_session("").expect("none").is_empty());

    // The pending one can no longer be allowed for its session, but
    // still once (which does not depend on the session).
    let refused = store
        .decide(
            &waiting.id,
            &OperatorDecision::AllowSession,
            "operator:test",
            now,
        )
        .expect_err("session ended");
    assert_eq!(refused.code(), "approval_session_ended");
    let once = store
        .decide(
            &waiting.id,
            &OperatorDecision::AllowOnce,
            "operator:test",
            now,
        )
        .expect("once");
    assert!(!once.used);
    assert!(matches!(
        store.lookup(&a("s3", "[2]"), now).expect("lookup"),
        Lookup::Approved(_)
    ));

    let journal = sqlite.all().expect("journal");
    let entry = journal
        .iter()
        .find(|e| e.kind == "server" && e.payload.contains("session_ended"))
        .expect("journaled");
    assert!(entry.payload.contains(&allowed.id), "{}", entry.payload);
    assert!(sqlite.verify().expect("verify").is_ok());
}

#[test]
fn scopes_bind_what_they_say() {
    let dir = tempfile::tempdir().expect("tempdir");
    let (sqlite, store) = kept(dir.path());
    let now = SystemTime::now();
    let a = request("Agent::\"a\"", "s1", "sha1", r#"{"q":1}"#);

    assert_eq!(store.lookup(&a, now).expect("lookup"), Lookup::Unknown);
    let pending = store.request(&a).expect("pending");
    assert_eq!(
        store.request(&a).expect("again").id,
        pending.id,
        "one pending per request"
    );
    assert!(matches!(
        store.lookup(&a, now).expect("lookup"),
        Lookup::Pending(_)
    ));

    // Once: exactly this request, one use.
    store
        .decide(
            &pending.id,
            &OperatorDecision::AllowOnce,
            "operator:test",
            now,
        )
        .expect("decide");
    assert!(matches!(
        store.lookup(&a, now).expect("lookup"),
        Lookup::Approved(_)
    ));
    let other_input = request("Agent::\"a\"", "s1", "sha1", r#"{"q":2}"#);
    assert_eq!(
        store.lookup(&other_input, now).expect("lookup"),
        Lookup::Unknown
    );
    assert!(store.consume(&pending.id).expect("use"));
    assert!(
        !store.consume(&pending.id).expect("reuse"),
        "once means once"
    );
    assert_eq!(store.lookup(&a, now).expect("lookup"), Lookup::Unknown);

    // Session: any input in that session, not another session or build.
    let s = store.request(&other_input).expect("pending");
    store
        .decide(&s.id, &OperatorDecision::AllowSession, "operator:test", now)
        .expect("decide");
    assert!(matches!(
        store
            .lookup(&request("Agent::\"a\"", "s1", "sha1", "[9]"), now)
            .expect("l"),
        Lookup::Approved(_)
    ));
    assert_eq!(
        store
            .lookup(&request("Agent::\"a\"", "s2", "sha1", "[9]"), now)
            .expect("l"),
        Lookup::Unknown
    );
    assert_eq!(
        store
            .lookup(&request("Agent::\"a\"", "s1", "sha2", "[9]"), now)
            .expect("l"),
        Lookup::Unknown
    );
    assert_eq!(
        store
            .lookup(&request("Agent::\"b\"", "s1", "sha1", "[9]"), now)
            .expect("l"),
        Lookup::Unknown
    );

    // Until: any session, until it expires.
    let u = store
        .request(&request("Agent::\"c\"", "", "sha1", "[1]"))
        .expect("pending");
    store
        .decide(
            &u.id,
            &OperatorDecision::AllowFor(Duration::from_secs(60)),
            "operator:test",
            now,
        )
        .expect("decide");
    let later = request("Agent::\"c\"", "other", "sha1", "[2]");
    assert!(matches!(
        store
            .lookup(&later, now + Duration::from_secs(59))
            .expect("l"),
        Lookup::Approved(_)
    ));
    assert_eq!(
        store
            .lookup(&later, now + Duration::from_secs(61))
            .expect("l"),
        Lookup::Unknown
    );
    assert_eq!(
        store
            .lookup(&request("Agent::\"c\"", "x", "sha2", "[2]"), now)
            .expect("l"),
        Lookup::Unknown
    );

    // Deny: this request is refused, and decisions are final.
    let d = store
        .request(&request("Agent::\"d\"", "", "sha1", "[1]"))
        .expect("pending");
    store
        .decide(
            &d.id,
            &OperatorDecision::Deny("no".into()),
            "operator:test",
            now,
        )
        .expect("decide");
    assert!(matches!(
        store
            .lookup(&request("Agent::\"d\"", "", "sha1", "[1]"), now)
            .expect("l"),
        Lookup::Denied(_)
    ));
    let again = store
        .decide(&d.id, &OperatorDecision::AllowOnce, "operator:test", now)
        .expect_err("final");
    assert_eq!(again.code(), "approval_already_decided");
    assert_eq!(
        store
            .decide("nope", &OperatorDecision::AllowOnce, "operator:test", now)
            .expect_err("missing")
            .code(),
        "approval_not_found"
    );

    // Everything is journaled and the chain holds.
    let kinds: Vec<String> = sqlite
        .all()
        .expect("journal")
        .into_iter()
        .map(|e| e.kind.to_string())
        .collect();
    assert_eq!(
        kinds.iter().filter(|k| *k == "approval_requested").count(),
        4
    );
    assert_eq!(kinds.iter().filter(|k| *k == "approval_decided").count(), 4);
    assert!(sqlite.verify().expect("verify").is_ok());
    assert_eq!(store.list(true).expect("list").len(), 0);
    assert_eq!(store.list(false).expect("list").len(), 4);
}
