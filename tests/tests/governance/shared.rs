//! The shared store on a real PostgreSQL (the cluster `.ci/test` starts):
//! versioned migrations, one signed log per replica, approvals decided
//! through any replica, `once` approvals used exactly once under races.

use airlock::approvals::{
    ApprovalError, ApprovalRequest, ApprovalStore, GrantBinding, Lookup, OperatorDecision,
};
use airlock::attest::HostKey;
use airlock::journal::{Cadence, EntryKind, Journal, JournalStore, NewEntry, audit};
use airlock::store::{PasswordSource, PostgresSettings, PostgresStore, Store, StoreError};
use airlock_tests::postgres::{TestDatabase, fresh_database};
use serde_json::json;
use std::sync::Arc;
use std::time::SystemTime;

/// A replica of `db`: its own state directory (its own key) and store.
pub(crate) struct Replica {
    _state: tempfile::TempDir,
    key: Arc<HostKey>,
    pub(crate) store: Arc<PostgresStore>,
    approvals: Arc<dyn ApprovalStore>,
    pub(crate) journal: Arc<dyn JournalStore>,
}

pub(crate) fn replica(db: &TestDatabase, name: &str) -> Replica {
    let state = tempfile::tempdir().expect("state");
    let key = Arc::new(HostKey::open_or_create(state.path()).expect("key"));
    let store = PostgresStore::open(&db.settings(name), &key.verifying_key()).expect("opens");
    let store = Arc::new(store);
    Replica {
        _state: state,
        key,
        approvals: airlock::approvals::kept_in(&Store::Postgres(Arc::clone(&store))),
        journal: airlock::journal::kept_in(&Store::Postgres(Arc::clone(&store))),
        store,
    }
}

fn request(input: &str) -> ApprovalRequest {
    ApprovalRequest::new(
        "Agent::\"claude\"",
        "session-1",
        "fetch",
        "sha-of-fetch",
        &["network".into()],
        GrantBinding::new("host = \"api\"".into(), ["rule api".to_string()]),
        input,
    )
}

#[test]
fn migrations_run_once_and_a_newer_schema_is_refused() {
    let db = fresh_database();
    let a = replica(&db, "a");
    // Opening again (a restart) migrates nothing and keeps the data.
    a.journal
        .append(&[NewEntry::new(EntryKind::Server, &json!({"n": 1}))])
        .expect("append");
    let key = Arc::clone(&a.key);
    drop(a);
    let again = Store::Postgres(Arc::new(
        PostgresStore::open(&db.settings("a"), &key.verifying_key()).expect("reopens"),
    ));
    assert_eq!(again.all().expect("entries").len(), 1);
    let version = db.execute("SELECT version FROM airlock_schema");
    assert_eq!(version.len(), 1, "one version row");
    assert_eq!(
        version[0].get::<_, i32>(0),
        airlock::store::postgres::SCHEMA_VERSION
    );

    db.execute("UPDATE airlock_schema SET version = version + 1");
    let refused = PostgresStore::open(&db.settings("a"), &key.verifying_key());
    assert!(
        matches!(refused, Err(StoreError::SchemaTooNew { found, known }) if found == known + 1),
        "{refused:?}"
    );
}

#[test]
fn the_password_comes_from_where_the_settings_say_and_never_shows() {
    let db = fresh_database();
    let key = HostKey::open_or_create(tempfile::tempdir().expect("dir").path()).expect("key");
    let dir = tempfile::tempdir().expect("dir");
    let wrong = dir.path().join("wrong");
    std::fs::write(&wrong, "not-the-password-x7\n").expect("write");
    let settings =
        PostgresSettings::new(&db.url, PasswordSource::File(wrong), "a").expect("settings");
    let error = PostgresStore::open(&settings, &key.verifying_key()).expect_err("refused");
    let shown = format!("{error} {error:?}");
    assert!(shown.contains("password authentication failed"), "{shown}");
    assert!(!shown.contains("not-the-password-x7"), "{shown}");

    let password = std::fs::read_to_string(&db.password_file).expect("password");
    // Unique to this test, and never set.
    let variable = "AIRLOCK_TEST_SHARED_PASSWORD_ENV";
    let unset = PostgresSettings::new(&db.url, PasswordSource::Env(variable.into()), "a")
        .expect("settings");
    let error = PostgresStore::open(&unset, &key.verifying_key()).expect_err("unset");
    assert!(error.to_string().contains(variable), "{error}");
    let missing = PostgresSettings::new(
        &db.url,
        PasswordSource::File(dir.path().join("absent")),
        "a",
    )
    .expect("settings");
    let error = PostgresStore::open(&missing, &key.verifying_key()).expect_err("absent");
    assert!(error.to_string().contains("password_file"), "{error}");
    assert!(!password.trim().is_empty());
}

#[test]
fn each_replica_keeps_its_own_signed_log() {
    let db = fresh_database();
    let (a, b) = (replica(&db, "a"), replica(&db, "b"));
    let cadence = Cadence {
        entries: 3,
        ..Cadence::default()
    };
    let journal_a = Journal::with_cadence(Arc::clone(&a.journal), a.key.clone(), cadence);
    let journal_b = Journal::with_cadence(Arc::clone(&b.journal), b.key.clone(), cadence);
    for n in 0..7 {
        journal_a
            .record(&[(EntryKind::Server, json!({"n": n}))])
            .expect("a");
        if n % 2 == 0 {
            journal_b
                .record(&[(EntryKind::Server, json!({"n": n}))])
                .expect("b");
        }
    }
    journal_a.seal().expect("seal a");
    journal_b.seal().expect("seal b");
    for (replica, entries, key) in [("a", 7, &a.key), ("b", 4, &b.key)] {
        // Read through the other replica: any replica verifies any log.
        let (log, heads) = b.store.log_of(replica).expect("log");
        assert_eq!(log.len(), entries, "replica {replica}");
        assert_eq!(
            log.iter().map(|e| e.seq).collect::<Vec<_>>(),
            (1..=entries as u64).collect::<Vec<_>>(),
            "replica {replica} numbers its own entries"
        );
        let verdict = audit(&log, &heads, &key.verifying_key(), None, &cadence);
        assert!(verdict.is_ok(), "replica {replica}: {verdict:?}");
        // The other replica's key does not vouch for this log.
        let other = if replica == "a" { &b.key } else { &a.key };
        assert!(audit(&log, &heads, &other.verifying_key(), None, &cadence).is_err());
    }
    let names: Vec<String> = a
        .store
        .replicas()
        .expect("replicas")
        .into_iter()
        .map(|r| r.name)
        .collect();
    assert_eq!(names, ["a", "b"]);

    // A third process with another key cannot write under a taken name.
    let taken = replica_result(&db, "a");
    assert!(
        matches!(&taken, Err(StoreError::ReplicaTaken { replica, key_id }) if replica == "a" && *key_id == a.key.key_id()),
        "{taken:?}"
    );
}

fn replica_result(db: &TestDatabase, name: &str) -> Result<PostgresStore, StoreError> {
    let state = tempfile::tempdir().expect("state");
    let key = HostKey::open_or_create(state.path()).expect("key");
    PostgresStore::open(&db.settings(name), &key.verifying_key())
}

#[test]
fn an_approval_asked_on_one_replica_is_decided_through_another() {
    let db = fresh_database();
    let (a, b) = (replica(&db, "a"), replica(&db, "b"));
    let asked = request("{\"city\":\"Oslo\"}");
    // Both replicas asking at once share one pending approval.
    let (first, second) = std::thread::scope(|s| {
        let one = s.spawn(|| a.approvals.request(&asked).expect("a asks"));
        let two = s.spawn(|| b.approvals.request(&asked).expect("b asks"));
        (one.join().expect("a"), two.join().expect("b"))
    });
    assert_eq!(first.id, second.id);
    assert_eq!(b.approvals.list(true).expect("pending").len(), 1);

    b.approvals
        .decide(
            &first.id,
            &OperatorDecision::AllowOnce,
            "operator:alice",
            SystemTime::now(),
        )
        .expect("decided through b");
    let Lookup::Approved(approval) = a
        .approvals
        .lookup(&asked, SystemTime::now())
        .expect("lookup")
    else {
        panic!("a sees the decision made through b");
    };
    assert_eq!(approval.decided_by.as_deref(), Some("operator:alice"));
    let again = a.approvals.decide(
        &first.id,
        &OperatorDecision::Deny("late".into()),
        "operator:bob",
        SystemTime::now(),
    );
    assert!(
        matches!(again, Err(ApprovalError::AlreadyDecided { .. })),
        "{again:?}"
    );

    // The request is journaled where it was made (once), the decision
    // where it was taken.
    let kinds = |journal: &Arc<dyn JournalStore>| -> Vec<String> {
        journal
            .all()
            .expect("log")
            .into_iter()
            .map(|e| e.kind.to_string())
            .collect()
    };
    let requested = EntryKind::ApprovalRequested.as_str().to_string();
    let decided = EntryKind::ApprovalDecided.as_str().to_string();
    let (log_a, log_b) = (kinds(&a.journal), kinds(&b.journal));
    assert_eq!(
        log_a
            .iter()
            .chain(&log_b)
            .filter(|k| **k == requested)
            .count(),
        1
    );
    assert!(log_b.contains(&decided) && !log_a.contains(&decided));
}

#[test]
fn a_session_ends_its_approvals_for_every_replica() {
    let db = fresh_database();
    let (a, b) = (replica(&db, "a"), replica(&db, "b"));
    let now = SystemTime::now();
    let asked = request("{\"city\":\"Oslo\"}");
    let allowed = a.approvals.request(&asked).expect("a asks");
    b.approvals
        .decide(
            &allowed.id,
            &OperatorDecision::AllowSession,
            "operator:alice",
            now,
        )
        .expect("decided through b");
    // Any input in the session is covered, on either replica.
    let later = request("{\"city\":\"Bergen\"}");
    assert!(matches!(
        a.approvals.lookup(&later, now).expect("lookup"),
        Lookup::Approved(_)
    ));
    // Another tool's request of the session, still pending.
    let other = ApprovalRequest::new(
        "Agent::\"claude\"",
        "session-1",
        "report",
        "sha-of-report",
        &["network".into()],
        GrantBinding::new("host = \"api\"".into(), ["rule api".to_string()]),
        "{}",
    );
    let waiting = b.approvals.request(&other).expect("b asks");

    let mut ended = a.approvals.end_session("session-1").expect("ends");
    ended.sort();
    let mut expected = vec![allowed.id.clone(), waiting.id.clone()];
    expected.sort();
    assert_eq!(ended, expected);
    assert_eq!(
        b.approvals.lookup(&later, now).expect("lookup"),
        Lookup::Unknown,
        "the session approval covers nothing, on any replica"
    );
    assert!(
        a.approvals
            .end_session("session-1")
            .expect("again")
            .is_empty()
    );
    let refused = b
        .approvals
        .decide(
            &waiting.id,
            &OperatorDecision::AllowSession,
            "operator:alice",
            now,
        )
        .expect_err("its session ended");
    assert_eq!(refused.code(), "approval_session_ended");
    b.approvals
        .decide(
            &waiting.id,
            &OperatorDecision::AllowOnce,
            "operator:alice",
            now,
        )
        .expect("once does not depend on the session");
    assert!(matches!(
        a.approvals.lookup(&other, now).expect("lookup"),
        Lookup::Approved(_)
    ));
    // Journaled where the session ended.
    assert!(
        a.journal
            .all()
            .expect("log")
            .iter()
            .any(|e| e.kind == "server" && e.payload.contains("session_ended")),
        "a's log records the end"
    );
}

#[test]
fn a_once_approval_raced_by_replicas_is_used_exactly_once() {
    let db = fresh_database();
    let replicas: Vec<Replica> = (0..4).map(|n| replica(&db, &format!("r{n}"))).collect();
    for round in 0..10 {
        let asked = request(&format!("{{\"round\":{round}}}"));
        let pending = replicas[0].approvals.request(&asked).expect("asked");
        replicas[1]
            .approvals
            .decide(
                &pending.id,
                &OperatorDecision::AllowOnce,
                "operator:alice",
                SystemTime::now(),
            )
            .expect("allowed once");
        let used = std::thread::scope(|s| {
            let racers: Vec<_> = replicas
                .iter()
                .flat_map(|r| [r, r])
                .map(|r| s.spawn(|| r.approvals.consume(&pending.id).expect("consume")))
                .collect();
            racers
                .into_iter()
                .map(|racer| racer.join().expect("racer"))
                .filter(|won| *won)
                .count()
        });
        assert_eq!(used, 1, "round {round}: exactly one use");
        assert!(matches!(
            replicas[2]
                .approvals
                .lookup(&asked, SystemTime::now())
                .expect("lookup"),
            Lookup::Unknown
        ));
    }
}

/// Calls waiting on replica B, each decided through replica A the moment
/// it is pending: every call runs, and no decision leaves a second pending
/// approval behind (a lookup reads one snapshot, and a call that found its
/// approval pending does not ask again).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_through_another_replica_leave_nothing_pending() {
    let db = fresh_database();
    let a = replica(&db, "a");
    let state_b = tempfile::tempdir().expect("state");
    let b = airlock::Host::builder()
        .state_dir(state_b.path())
        .store(airlock::store::StoreLocation::Postgres(Box::new(
            db.settings("b"),
        )))
        .build()
        .expect("replica b");
    let echo =
        airlock_tests::load_guest_with(&b, "echo", airlock::Grants::none().mark_sensitive()).await;
    for n in 0..25 {
        let waiting = tokio::spawn({
            let (b, echo) = (b.clone(), echo.clone());
            async move {
                let call = airlock::Invocation::new(format!("{{\"n\":{n}}}"))
                    .wait_for_approval(std::time::Duration::from_secs(60));
                b.invoke(&echo, call).await
            }
        });
        let id = loop {
            if let Some(pending) = a.approvals.list(true).expect("list").into_iter().next() {
                break pending.id;
            }
            tokio::task::yield_now().await;
        };
        a.approvals
            .decide(
                &id,
                &OperatorDecision::AllowOnce,
                "operator:alice",
                SystemTime::now(),
            )
            .expect("allowed");
        let outcome = waiting.await.expect("task").expect("invoke");
        assert!(
            matches!(outcome, airlock::Outcome::Completed { .. }),
            "call {n}: {outcome:?}"
        );
        assert_eq!(
            a.approvals.list(true).expect("list"),
            [],
            "call {n} left one pending"
        );
    }
}

/// Waits (at most 30 s) until `condition` holds.
fn until(what: &str, condition: impl Fn() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while !condition() {
        assert!(std::time::Instant::now() < deadline, "never: {what}");
        std::thread::yield_now();
    }
}

/// Agents and console devices live in the shared store: a token or a
/// device paired through one replica works on the other, and removing or
/// revoking it through either ends it everywhere (each change journaled
/// by the replica that made it, never with the secret). A replica that
/// remembers checked tokens hears every removal through the database.
#[test]
fn agents_and_devices_are_shared_by_replicas() {
    use airlock::store::Store;
    use airlock_serve::{Agents, COOKIE_PREFIX, Devices, PAIRING_CODE_LIFETIME, TOKEN_PREFIX};
    let db = fresh_database();
    let (a, b) = (replica(&db, "a"), replica(&db, "b"));
    let (on_a, on_b) = (
        Store::Postgres(Arc::clone(&a.store)),
        Store::Postgres(Arc::clone(&b.store)),
    );
    let agents_b = Agents::serving_store(&on_b).expect("b follows its agents");
    until("b listens for agent news", || {
        b.store.agents_generation().is_some()
    });

    let (agent, token) = Agents::in_store(&on_a).add("claude").expect("added");
    let remembered = b.store.agents_generation();
    assert_eq!(
        agents_b.authenticate(token.expose()).expect("checked"),
        Some(agent.name.clone())
    );
    assert!(
        Agents::in_store(&on_a).add("claude").is_err(),
        "names are unique"
    );
    Agents::in_store(&on_a)
        .remove("claude")
        .expect("removed through a");
    until("b forgets the removed token", || {
        agents_b
            .authenticate(token.expose())
            .expect("checked")
            .is_none()
    });
    assert_ne!(b.store.agents_generation(), remembered);
    Agents::in_store(&on_a)
        .add("codex")
        .expect("added through a");
    Agents::in_store(&on_b)
        .remove("codex")
        .expect("removed through b");
    assert_eq!(
        Agents::in_store(&on_a)
            .authenticate(token.expose())
            .expect("checked"),
        None
    );

    let now = std::time::Instant::now();
    let devices_a = Devices::in_store(&on_a);
    let code = devices_a
        .issue("alice", PAIRING_CODE_LIFETIME, now)
        .expect("issued");
    let (device, cookie) = devices_a.redeem(&code.code, "laptop", now).expect("paired");
    let devices_b = Devices::in_store(&on_b);
    let seen = devices_b
        .authenticate(cookie.expose())
        .expect("checked")
        .expect("b knows the device");
    assert_eq!(seen.id, device.id);
    assert!(seen.last_seen.is_some());
    assert_eq!(devices_b.list().expect("list").len(), 1);
    devices_b
        .revoke(&device.id, "operator:bob")
        .expect("revoked through b");
    assert!(!devices_a.is_active(&device.id).expect("checked"));
    assert_eq!(
        devices_a.authenticate(cookie.expose()).expect("checked"),
        None
    );

    let entries: Vec<(String, String)> = ["a", "b"]
        .iter()
        .flat_map(|name| {
            let (log, _) = a.store.log_of(name).expect("log");
            log.into_iter().map(move |e| (name.to_string(), e.payload))
        })
        .collect();
    let changes = |replica: &str, fragment: &str| {
        entries
            .iter()
            .filter(|(r, payload)| r == replica && payload.contains(fragment))
            .count()
    };
    assert_eq!(changes("a", "\"added\""), 2);
    assert_eq!(changes("a", "\"removed\""), 1);
    assert_eq!(changes("b", "\"removed\""), 1);
    assert_eq!(changes("a", "\"paired\""), 1);
    assert_eq!(changes("b", "\"revoked\""), 1);
    assert!(
        entries
            .iter()
            .all(|(_, p)| !p.contains(TOKEN_PREFIX) && !p.contains(COOKIE_PREFIX)),
        "{entries:?}"
    );
}
