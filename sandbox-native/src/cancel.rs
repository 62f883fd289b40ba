//! [`Cancel`]: ends a run from outside before its wall clock does, the way
//! the wall clock would (everything the program started is killed).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::Sender;
use std::sync::{Arc, Mutex, PoisonError};

/// A handle that cancels the run whose [`Plan`](crate::Plan) carries it.
/// Clones share one signal; cancelling before the run starts ends it at
/// once.
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<Inner>);

#[derive(Debug, Default)]
struct Inner {
    cancelled: AtomicBool,
    /// The supervisor of the running program, woken by [`Cancel::cancel`].
    waiter: Mutex<Option<Sender<Waited>>>,
}

/// What the supervisor of a run waits for: the program's end, or a cancel.
pub(crate) enum Waited {
    /// The program ended (not yet reaped).
    Exited(std::io::Result<()>),
    Cancelled,
}

impl Cancel {
    /// A handle nothing has cancelled yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Cancels the run (idempotent).
    pub fn cancel(&self) {
        self.0.cancelled.store(true, Ordering::SeqCst);
        if let Some(waiter) = self
            .0
            .waiter
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take()
        {
            let _ = waiter.send(Waited::Cancelled);
        }
    }

    /// Whether [`Cancel::cancel`] was called.
    pub fn is_cancelled(&self) -> bool {
        self.0.cancelled.load(Ordering::SeqCst)
    }

    /// Wakes `waiter` on cancellation (at once if already cancelled).
    pub(crate) fn notify(&self, waiter: Sender<Waited>) {
        let mut slot = self.0.waiter.lock().unwrap_or_else(PoisonError::into_inner);
        if self.is_cancelled() {
            let _ = waiter.send(Waited::Cancelled);
        } else {
            *slot = Some(waiter);
        }
    }
}

/// Two handles are equal when they are the same signal.
impl PartialEq for Cancel {
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl Eq for Cancel {}
