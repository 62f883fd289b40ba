//! The journal's commit modes, observed through a store that records each
//! transaction and can hold one open: concurrent `each` commits share a
//! transaction and each returns only once its entry is stored; `batched`
//! commits return once queued, wait for room when a window's entries are
//! uncommitted, and are all committed when the journal is flushed or
//! dropped. (What a crash loses in each mode: see `durability`.)

use airlock::attest::HostKey;
use airlock::journal::head::TreeHead;
use airlock::journal::tree::Hash;
use airlock::journal::{
    Batching, Cadence, CommitMode, Entry, EntryKind, Journal, JournalStore, NewEntry,
};
use airlock::store::{Store, StoreError};
use serde_json::{Value, json};
use std::future::Future;
use std::pin::Pin;
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::Duration;

/// SQLite, with every `append` recorded by its size; while `hold` is set,
/// the next `append` says it started and waits to be let go.
struct Gated {
    inner: Store,
    groups: Mutex<Vec<usize>>,
    hold: Mutex<Option<(Sender<()>, Receiver<()>)>>,
}

impl JournalStore for Gated {
    fn append(&self, entries: &[NewEntry]) -> Result<Vec<Entry>, StoreError> {
        let held = self.hold.lock().expect("hold").take();
        if let Some((started, go)) = held {
            started.send(()).expect("the test listens");
            go.recv().expect("the test lets go");
        }
        self.groups.lock().expect("groups").push(entries.len());
        self.inner.append(entries)
    }
    fn tail(&self, n: usize) -> Result<Vec<Entry>, StoreError> {
        self.inner.tail(n)
    }
    fn before(&self, seq: u64, n: usize) -> Result<Vec<Entry>, StoreError> {
        self.inner.before(seq, n)
    }
    fn all(&self) -> Result<Vec<Entry>, StoreError> {
        self.inner.all()
    }
    fn find_attestation(&self, id: &str) -> Result<Option<Entry>, StoreError> {
        self.inner.find_attestation(id)
    }
    fn last_of_kind(&self, kind: EntryKind) -> Result<Option<Entry>, StoreError> {
        self.inner.last_of_kind(kind)
    }
    fn heads(&self) -> Result<Vec<TreeHead>, StoreError> {
        self.inner.heads()
    }
    fn leaves(&self, size: u64) -> Result<Vec<Hash>, StoreError> {
        self.inner.leaves(size)
    }
    fn seal(
        &self,
        due: &dyn Fn(u64, Option<&TreeHead>) -> bool,
        sign: &dyn Fn(u64, &Hash) -> TreeHead,
    ) -> Result<Option<TreeHead>, StoreError> {
        self.inner.seal(due, sign)
    }
}

impl Gated {
    /// Holds the next append; returns (it started, let it go).
    fn hold_next(&self) -> (Receiver<()>, Sender<()>) {
        let (started_tx, started) = channel();
        let (go, go_rx) = channel();
        *self.hold.lock().expect("hold") = Some((started_tx, go_rx));
        (started, go)
    }

    fn groups(&self) -> Vec<usize> {
        self.groups.lock().expect("groups").clone()
    }

    fn tags(&self) -> Vec<String> {
        self.inner
            .all()
            .expect("entries")
            .iter()
            .filter_map(|e| {
                let payload: Value = serde_json::from_str(&e.payload).ok()?;
                Some(payload["tag"].as_str()?.to_string())
            })
            .collect()
    }
}

fn journal(state: &std::path::Path, mode: CommitMode) -> (Arc<Gated>, Arc<Journal>) {
    let store = Arc::new(Gated {
        inner: Store::in_state_dir(state).expect("store"),
        groups: Mutex::default(),
        hold: Mutex::default(),
    });
    let key = Arc::new(HostKey::open_or_create(state).expect("key"));
    let journal = Journal::with_commit(
        Arc::clone(&store) as Arc<dyn JournalStore>,
        key,
        Cadence::default(),
        mode,
    );
    (store, Arc::new(journal))
}

fn two_workers() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()
        .expect("runtime")
}

type Commit = Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;

fn commit(journal: &Arc<Journal>, tag: &str) -> Commit {
    let journal = Arc::clone(journal);
    let entry = (EntryKind::Egress, json!({ "tag": tag }));
    Box::pin(async move { journal.commit(vec![entry]).await })
}

/// Polls `future` once: whether it finished.
async fn poll_once(future: &mut Commit) -> Option<Result<(), StoreError>> {
    std::future::poll_fn(|cx| match future.as_mut().poll(cx) {
        Poll::Ready(result) => Poll::Ready(Some(result)),
        Poll::Pending => Poll::Ready(None),
    })
    .await
}

/// Starts a first call, which commits inline, and holds it mid-transaction
/// (inside the runtime); returns it and what lets it go.
fn first_held(
    store: &Gated,
    journal: &Arc<Journal>,
) -> (tokio::task::JoinHandle<Result<(), StoreError>>, Sender<()>) {
    let (started, go) = store.hold_next();
    let first = tokio::spawn(commit(journal, "first"));
    started.recv().expect("the first commit started");
    (first, go)
}

#[test]
fn concurrent_each_commits_share_a_transaction_and_wait_for_their_own() {
    let state = tempfile::tempdir().expect("tempdir");
    let (store, journal) = journal(state.path(), CommitMode::Each);
    two_workers().block_on(async {
        let (first, go) = first_held(&store, &journal);

        // Ten more finish meanwhile: each queues and waits.
        let mut waiting: Vec<Commit> = (0..10)
            .map(|n| commit(&journal, &format!("then-{n}")))
            .collect();
        for call in &mut waiting {
            assert!(
                poll_once(call).await.is_none(),
                "a call returned before its entry was committed"
            );
        }
        assert!(store.tags().is_empty(), "nothing committed yet");

        go.send(()).expect("let the first go");
        first.await.expect("joined").expect("first committed");
        for (n, call) in waiting.into_iter().enumerate() {
            call.await.expect("committed");
            assert!(
                store.tags().contains(&format!("then-{n}")),
                "then-{n} returned before it was stored"
            );
        }
    });
    assert_eq!(
        store.groups(),
        vec![1, 10],
        "the ten calls that waited shared one transaction"
    );
    let (entries, _) = store.verify().expect("read").expect("the chain holds");
    assert_eq!(entries, 11);
}

/// A first call held mid-commit with two calls queued behind it; `drop_b`
/// drops the first of those, either while it still waits (`false`) or just
/// after the first call handed it the next turn (`true`). Either way the
/// other still returns and both entries are stored in one transaction.
fn a_caller_that_goes_away_leaves_no_one_stranded(handed_the_lead: bool) {
    let state = tempfile::tempdir().expect("tempdir");
    let (store, journal) = journal(state.path(), CommitMode::Each);
    two_workers().block_on(async {
        let (first, go) = first_held(&store, &journal);
        let mut gone = Some(commit(&journal, "gone"));
        let mut stays = commit(&journal, "stays");
        if let Some(gone) = gone.as_mut() {
            assert!(poll_once(gone).await.is_none(), "gone waits");
        }
        assert!(poll_once(&mut stays).await.is_none(), "stays waits");

        if !handed_the_lead {
            gone = None;
        }
        go.send(()).expect("let the first go");
        first.await.expect("joined").expect("first committed");
        // Handed the next turn and never polled again: dropping it takes it.
        drop(gone);
        // Told at once (or, handed the turn, it commits when polled).
        poll_once(&mut stays)
            .await
            .expect("the call that stayed was left waiting")
            .expect("the call that stayed was committed");
    });
    assert_eq!(store.groups(), vec![1, 2]);
    let mut tags = store.tags();
    tags.sort();
    assert_eq!(tags, ["first", "gone", "stays"]);
}

#[test]
fn a_waiting_caller_that_goes_away_is_passed_over() {
    a_caller_that_goes_away_leaves_no_one_stranded(false);
}

#[test]
fn a_caller_dropped_with_the_next_turn_still_commits_it() {
    a_caller_that_goes_away_leaves_no_one_stranded(true);
}

#[test]
fn batched_commits_return_when_queued_wait_for_room_and_are_flushed() {
    let state = tempfile::tempdir().expect("tempdir");
    let window = Batching {
        // Long enough that only a full window or a flush commits.
        window: Duration::from_secs(1),
        entries: 4,
    };
    let (store, journal) = journal(state.path(), CommitMode::Batched(window));
    two_workers().block_on(async {
        let (started, go) = store.hold_next();
        for n in 0..4 {
            commit(&journal, &format!("queued-{n}"))
                .await
                .expect("queued");
        }
        // The fourth filled the window: the writer commits it, held here.
        started.recv().expect("the full window is being committed");
        assert!(store.tags().is_empty(), "acknowledged before it was stored");

        // No room until the window is committed.
        let mut fifth = commit(&journal, "fifth");
        assert!(
            poll_once(&mut fifth).await.is_none(),
            "a fifth entry was acknowledged while four were uncommitted"
        );
        go.send(()).expect("let the writer go");
        fifth.await.expect("room after the commit");
        journal.flush();
        let tags = store.tags();
        assert_eq!(
            tags,
            ["queued-0", "queued-1", "queued-2", "queued-3", "fifth"]
        );
        commit(&journal, "last").await.expect("queued");
    });
    assert_eq!(store.groups(), vec![4, 1]);
    // Dropping the journal (a clean stop) commits what is queued.
    drop(journal);
    assert_eq!(store.tags().last().map(String::as_str), Some("last"));
    assert_eq!(store.groups(), vec![4, 1, 1]);
}
