//! How many invocations run at once: a bound per tool and one for the
//! whole server. A call beyond them waits (and says so) instead of failing;
//! one that gets no slot within `queue_wait` ends with `host_busy`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::sync::CancellationToken;

/// The permits one running invocation holds; released when dropped.
pub(crate) struct Slot {
    _tool: OwnedSemaphorePermit,
    _total: OwnedSemaphorePermit,
}

/// Why no slot was had.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum NoSlot {
    /// None came free within the queue wait.
    Busy {
        /// Which bound was full: the tool's or the server's.
        which: &'static str,
        /// The bound.
        limit: usize,
    },
    /// The caller gave up.
    Cancelled,
}

/// The server's bounds. Per-tool semaphores outlive reloads, so a reload
/// does not let a tool run more at once than its bound.
pub(crate) struct Slots {
    total: Arc<Semaphore>,
    total_limit: usize,
    per_tool: Mutex<HashMap<String, Arc<Semaphore>>>,
    per_tool_limit: usize,
}

impl Slots {
    pub(crate) fn new(total: usize, per_tool: usize) -> Self {
        Self {
            total: Arc::new(Semaphore::new(total)),
            total_limit: total,
            per_tool: Mutex::new(HashMap::new()),
            per_tool_limit: per_tool,
        }
    }

    fn tool(&self, name: &str) -> Arc<Semaphore> {
        let mut map = self.per_tool.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(semaphore) = map.get(name) {
            return Arc::clone(semaphore);
        }
        Arc::clone(
            map.entry(name.to_string())
                .or_insert_with(|| Arc::new(Semaphore::new(self.per_tool_limit))),
        )
    }

    /// Resolves once no invocation holds a slot (by taking them all for a
    /// moment).
    pub(crate) async fn idle(&self) {
        let all = u32::try_from(self.total_limit).unwrap_or(u32::MAX);
        let _all = self.total.acquire_many(all).await;
    }

    /// How many invocations hold a slot now.
    pub(crate) fn running(&self) -> usize {
        self.total_limit - self.total.available_permits()
    }

    /// A slot for `tool`, waiting up to `wait`. `waiting` is called once
    /// when the call has to queue, with what it waits for.
    pub(crate) async fn acquire(
        &self,
        tool: &str,
        wait: Duration,
        cancel: &CancellationToken,
        waiting: impl FnOnce(String),
    ) -> Result<Slot, NoSlot> {
        let deadline = tokio::time::Instant::now() + wait;
        let tool_semaphore = self.tool(tool);
        let mut waiting = Some(waiting);
        let mut report = |what: String| {
            if let Some(waiting) = waiting.take() {
                waiting(what);
            }
        };
        let tool_permit = match Arc::clone(&tool_semaphore).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                report(format!(
                    "waiting for a free slot: `{tool}` already runs {} at once",
                    self.per_tool_limit
                ));
                queue(
                    tool_semaphore,
                    deadline,
                    cancel,
                    "tool",
                    self.per_tool_limit,
                )
                .await?
            }
        };
        let total_permit = match Arc::clone(&self.total).try_acquire_owned() {
            Ok(permit) => permit,
            Err(_) => {
                report(format!(
                    "waiting for a free slot: the server already runs {} invocations at once",
                    self.total_limit
                ));
                queue(
                    Arc::clone(&self.total),
                    deadline,
                    cancel,
                    "server",
                    self.total_limit,
                )
                .await?
            }
        };
        Ok(Slot {
            _tool: tool_permit,
            _total: total_permit,
        })
    }
}

async fn queue(
    semaphore: Arc<Semaphore>,
    deadline: tokio::time::Instant,
    cancel: &CancellationToken,
    which: &'static str,
    limit: usize,
) -> Result<OwnedSemaphorePermit, NoSlot> {
    tokio::select! {
        () = cancel.cancelled() => Err(NoSlot::Cancelled),
        got = tokio::time::timeout_at(deadline, semaphore.acquire_owned()) => match got {
            Ok(Ok(permit)) => Ok(permit),
            // A closed semaphore or the deadline: either way, no slot.
            _ => Err(NoSlot::Busy { which, limit }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_full_tool_queues_then_reports_busy() {
        let slots = Slots::new(8, 1);
        let cancel = CancellationToken::new();
        let first = slots
            .acquire("t", Duration::from_millis(10), &cancel, |_| {
                panic!("the first call does not wait")
            })
            .await
            .expect("a slot");
        assert_eq!(slots.running(), 1);
        let mut told = None;
        let second = slots
            .acquire("t", Duration::from_millis(10), &cancel, |what| {
                told = Some(what)
            })
            .await;
        assert_eq!(
            second.err(),
            Some(NoSlot::Busy {
                which: "tool",
                limit: 1
            })
        );
        assert!(told.is_some_and(|w| w.contains("`t` already runs 1")));
        // Another tool is not held up by this one.
        let other = slots
            .acquire("u", Duration::from_millis(10), &cancel, |_| {
                panic!("another tool has room")
            })
            .await;
        assert!(other.is_ok());
        drop(first);
        let again = slots
            .acquire("t", Duration::from_millis(10), &cancel, |_| {})
            .await;
        assert!(again.is_ok());
    }

    #[tokio::test]
    async fn a_cancelled_wait_ends_at_once() {
        let slots = Slots::new(1, 1);
        let cancel = CancellationToken::new();
        let _held = slots
            .acquire("t", Duration::from_secs(60), &cancel, |_| {})
            .await
            .expect("a slot");
        cancel.cancel();
        let waited = slots
            .acquire("t", Duration::from_secs(60), &cancel, |_| {})
            .await;
        assert_eq!(waited.err(), Some(NoSlot::Cancelled));
    }
}
