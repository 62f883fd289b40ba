//! When an invocation's entries are durable relative to its outcome: the
//! journal's commit contract ([`CommitMode`]), and the group commit that
//! lets concurrent invocations share one transaction.
//!
//! - [`CommitMode::Each`] (default): an outcome is released only after its
//!   own entries are committed. The first caller to arrive commits inline
//!   (a lone call pays one transaction, no hand-off); callers that arrive
//!   while it commits queue, and when it is done the first of them leads
//!   the next transaction, which takes all of them. Commits stay on the
//!   callers' own tasks: no thread hand-off, and the more calls run at
//!   once, the larger the groups.
//! - [`CommitMode::Batched`]: an outcome is released once its entries are
//!   queued; one writer thread commits the queue every `window` or every
//!   `entries` entries. At most `entries` acknowledged entries are ever
//!   uncommitted (callers wait for room), so a crash loses at most that
//!   last window, and the log stays gap-free: sequence numbers and hashes
//!   are given at commit.

use super::{Core, NewEntry};
use crate::store::StoreError;
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};
use tokio::sync::{Semaphore, oneshot};

/// When an invocation's attestation is durable relative to its outcome.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum CommitMode {
    /// Released after its own entries are committed (group commit under
    /// concurrency). Nothing acknowledged is lost to a crash.
    #[default]
    Each,
    /// Released once queued; committed in groups by one writer. A crash
    /// loses at most the last window.
    Batched(Batching),
}

/// How the batched writer groups entries.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Batching {
    /// The longest an acknowledged entry waits for its commit.
    pub window: Duration,
    /// The most entries acknowledged and not yet committed (also the
    /// largest group).
    pub entries: usize,
}

impl Default for Batching {
    fn default() -> Self {
        Self {
            window: Duration::from_millis(5),
            entries: 256,
        }
    }
}

/// One caller's entries, and (in `each` mode) where its turn is told.
struct Waiting {
    entries: Vec<NewEntry>,
    done: Option<oneshot::Sender<Turn>>,
    queued: Instant,
    /// The room it holds (batched): given back once it is committed.
    permits: usize,
}

/// What a waiting `each` caller is told.
enum Turn {
    /// Its entries were committed (or the transaction failed).
    Done(Result<(), StoreError>),
    /// It commits the next group: what waits, its own entries first.
    Lead,
}

#[derive(Default)]
struct Queue {
    waiting: Vec<Waiting>,
    /// Entries in `waiting` (batched).
    count: usize,
    /// A caller or a writer is committing.
    busy: bool,
    /// The batched writer's last commit failed: why (entries are kept and
    /// retried; new ones are refused until a commit succeeds).
    failed: Option<String>,
    /// Someone waits for the queue to be committed now.
    flushing: usize,
    stop: bool,
}

/// An `each` caller waiting for its turn. If it goes away (its invocation
/// was dropped) just after being handed the lead, it still takes that turn
/// when dropped, so the callers behind it are not left without a leader.
struct Turnstile<'a> {
    shared: &'a Shared,
    turn: oneshot::Receiver<Turn>,
}

impl Drop for Turnstile<'_> {
    fn drop(&mut self) {
        // Closed first: a lead handed on from now on goes to the next caller.
        self.turn.close();
        if let Ok(Turn::Lead) = self.turn.try_recv() {
            unreported(self.shared.lead());
        }
    }
}

struct Shared {
    core: Arc<Core>,
    mode: CommitMode,
    queue: Mutex<Queue>,
    /// Wakes the batched writer, and whoever waits for the queue to drain.
    changed: Condvar,
    /// Room for acknowledged, uncommitted entries (batched).
    room: Semaphore,
}

/// Commits invocation entries under a [`CommitMode`].
pub(crate) struct Committer {
    shared: Arc<Shared>,
    writer: Option<std::thread::JoinHandle<()>>,
}

impl Committer {
    pub(crate) fn new(core: Arc<Core>, mode: CommitMode) -> Self {
        let room = match mode {
            CommitMode::Each => 0,
            CommitMode::Batched(batching) => batching.entries.max(1),
        };
        let shared = Arc::new(Shared {
            core,
            mode,
            queue: Mutex::new(Queue::default()),
            changed: Condvar::new(),
            room: Semaphore::new(room),
        });
        let writer = match mode {
            CommitMode::Each => None,
            CommitMode::Batched(batching) => {
                let shared = Arc::clone(&shared);
                std::thread::Builder::new()
                    .name("airlock-journal".into())
                    .spawn(move || shared.write_batches(batching))
                    .ok()
            }
        };
        Self { shared, writer }
    }

    pub(crate) fn mode(&self) -> CommitMode {
        self.shared.mode
    }

    /// Commits `entries` under the mode: returns when they are durable
    /// (`each`) or queued (`batched`).
    pub(crate) async fn commit(&self, entries: Vec<NewEntry>) -> Result<(), StoreError> {
        match self.shared.mode {
            CommitMode::Each => self.each(entries).await,
            CommitMode::Batched(batching) if self.writer.is_some() => {
                self.queue(entries, batching).await
            }
            // No writer thread could be started: commit as `each` rather
            // than acknowledge what nothing will write.
            CommitMode::Batched(_) => self.each(entries).await,
        }
    }

    async fn each(&self, entries: Vec<NewEntry>) -> Result<(), StoreError> {
        let (done, turn) = oneshot::channel();
        let lead = {
            let mut queue = self.shared.lock();
            queue.waiting.push(Waiting {
                entries,
                done: Some(done),
                queued: Instant::now(),
                permits: 0,
            });
            !std::mem::replace(&mut queue.busy, true)
        };
        if lead {
            // Commit inline: a lone call pays one transaction, no hand-off.
            return self.shared.lead();
        }
        let mut waiting = Turnstile {
            shared: &self.shared,
            turn,
        };
        match (&mut waiting.turn).await {
            Ok(Turn::Done(result)) => result,
            Ok(Turn::Lead) => self.shared.lead(),
            Err(_) => Err(StoreError::Writer {
                detail: "the journal's committer stopped".into(),
            }),
        }
    }

    async fn queue(&self, entries: Vec<NewEntry>, batching: Batching) -> Result<(), StoreError> {
        if let Some(detail) = self.shared.lock().failed.clone() {
            return Err(StoreError::Writer { detail });
        }
        let permits = entries.len().clamp(1, batching.entries.max(1));
        // Backpressure: never more than a window's entries acknowledged
        // and uncommitted.
        self.shared
            .room
            .acquire_many(u32::try_from(permits).unwrap_or(u32::MAX))
            .await
            .map_err(|_| StoreError::Writer {
                detail: "the journal's writer stopped".into(),
            })?
            .forget();
        let mut queue = self.shared.lock();
        let first = queue.waiting.is_empty();
        queue.count += entries.len();
        let full = queue.count >= batching.entries;
        queue.waiting.push(Waiting {
            entries,
            done: None,
            queued: Instant::now(),
            permits,
        });
        drop(queue);
        if first || full {
            self.shared.changed.notify_all();
        }
        Ok(())
    }

    /// Returns once everything queued so far is committed (or the writer
    /// gave up on it: see the log).
    pub(crate) fn flush(&self) {
        let mut queue = self.shared.lock();
        queue.flushing += 1;
        self.shared.changed.notify_all();
        while (!queue.waiting.is_empty() && queue.failed.is_none() && !queue.stop) || queue.busy {
            queue = self
                .shared
                .changed
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
        queue.flushing -= 1;
    }

    /// Commits everything queued and stops the writer.
    pub(crate) fn flush_and_stop(&mut self) {
        self.shared.lock().stop = true;
        self.shared.changed.notify_all();
        if let Some(writer) = self.writer.take() {
            let _ = writer.join();
        }
        let mut queue = self.shared.lock();
        while queue.busy {
            queue = self
                .shared
                .changed
                .wait(queue)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

/// The outcome of a commit nobody waits for any more (its callers were
/// dropped): a failure has only the log left to tell.
fn unreported(result: Result<(), StoreError>) {
    if let Err(error) = result {
        tracing::error!(code = error.code(), %error,
            "the journal could not commit the entries of invocations that were dropped while waiting");
    }
}

impl Shared {
    fn lock(&self) -> MutexGuard<'_, Queue> {
        self.queue.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Takes what waits and commits it in one transaction; tells each
    /// caller. Entries of a failed group are dropped (`each`: every caller
    /// is told it failed).
    fn commit_waiting(&self) -> Result<(), StoreError> {
        let waiting = std::mem::take(&mut self.lock().waiting);
        let mut entries = Vec::with_capacity(waiting.iter().map(|w| w.entries.len()).sum());
        let mut callers = Vec::with_capacity(waiting.len());
        for w in waiting {
            entries.extend(w.entries);
            callers.extend(w.done);
        }
        let result = self.core.record(&entries).map(drop);
        let detail = result.as_ref().err().map(ToString::to_string);
        for done in callers {
            let _ = done.send(Turn::Done(match &detail {
                None => Ok(()),
                Some(detail) => Err(StoreError::Writer {
                    detail: detail.clone(),
                }),
            }));
        }
        result
    }

    /// A turn at committing (`each`): commits what waits (the leader's own
    /// entries among it), then hands the next turn on.
    fn lead(&self) -> Result<(), StoreError> {
        let result = self.commit_waiting();
        self.pass_lead();
        result
    }

    /// After a commit: hands the next turn to the first caller still
    /// waiting, who commits everything that queued meanwhile on its own
    /// task (so neither this caller's outcome nor a worker thread is held
    /// by the next group); ends the turn if nobody waits.
    fn pass_lead(&self) {
        loop {
            let mut queue = self.lock();
            if queue.waiting.is_empty() {
                queue.busy = false;
                drop(queue);
                self.changed.notify_all();
                return;
            }
            let next = queue.waiting.iter_mut().find_map(|w| w.done.take());
            drop(queue);
            match next {
                Some(next) => match next.send(Turn::Lead) {
                    Ok(()) => return,
                    Err(_) => continue,
                },
                None => unreported(self.commit_waiting()),
            }
        }
    }

    /// The batched writer: waits for the window to close or the group to
    /// fill, commits, gives the room back; retries a failed group.
    fn write_batches(&self, batching: Batching) {
        loop {
            let mut queue = self.lock();
            loop {
                let now = Instant::now();
                match queue.waiting.first().map(|w| w.queued) {
                    None if queue.stop => return,
                    None => {
                        queue = self
                            .changed
                            .wait(queue)
                            .unwrap_or_else(PoisonError::into_inner);
                    }
                    Some(oldest) => {
                        let due = oldest + batching.window;
                        if queue.stop
                            || queue.flushing > 0
                            || queue.count >= batching.entries
                            || now >= due
                        {
                            break;
                        }
                        queue = self
                            .changed
                            .wait_timeout(queue, due - now)
                            .unwrap_or_else(PoisonError::into_inner)
                            .0;
                    }
                }
            }
            let waiting = std::mem::take(&mut queue.waiting);
            queue.busy = true;
            drop(queue);
            // One group of everything taken (moved, not copied); a group
            // that fails goes back as one.
            let group = Waiting {
                queued: waiting.first().map_or_else(Instant::now, |w| w.queued),
                permits: waiting.iter().map(|w| w.permits).sum(),
                entries: waiting.into_iter().flat_map(|w| w.entries).collect(),
                done: None,
            };
            let result = self.core.record(&group.entries);
            let mut queue = self.lock();
            queue.busy = false;
            self.changed.notify_all();
            match result {
                Ok(_) => {
                    queue.failed = None;
                    queue.count -= group.entries.len();
                    drop(queue);
                    self.room.add_permits(group.permits);
                }
                Err(error) => {
                    tracing::error!(code = error.code(), %error, entries = group.entries.len(),
                        "the journal's writer could not commit; keeping the entries and retrying");
                    queue.failed = Some(error.to_string());
                    // Keep order: the failed group goes back before what came since.
                    queue.waiting.insert(0, group);
                    let stop = queue.stop;
                    drop(queue);
                    if stop {
                        return;
                    }
                    std::thread::sleep(batching.window.max(Duration::from_millis(50)));
                }
            }
        }
    }
}
