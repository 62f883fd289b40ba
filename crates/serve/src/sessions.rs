//! Which agent each streamable-HTTP session belongs to, and the caps on
//! how many there are. rmcp keeps sessions but knows nothing of agents:
//! `Sessions` is the server's record of who opened each one, consulted
//! before rmcp sees a request (another agent's session, or one that ended,
//! is not found) and when a session is opened (at most
//! `max_sessions_per_agent` per agent and `max_sessions` in all).

use airlock::policy::Principal;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

/// The caps on open sessions.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct SessionLimits {
    /// Sessions one agent may hold.
    pub per_agent: usize,
    /// Sessions across all agents.
    pub total: usize,
}

impl From<&airlock::config::ServeSettings> for SessionLimits {
    fn from(settings: &airlock::config::ServeSettings) -> Self {
        Self {
            per_agent: settings.max_sessions_per_agent,
            total: settings.max_sessions,
        }
    }
}

/// Which cap refused a session.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub(crate) enum Cap {
    /// The agent holds `max_sessions_per_agent` already.
    PerAgent,
    /// The server holds `max_sessions` already.
    Total,
}

impl Cap {
    /// The `[serve]` key that sets it.
    pub(crate) fn key(self) -> &'static str {
        match self {
            Cap::PerAgent => "max_sessions_per_agent",
            Cap::Total => "max_sessions",
        }
    }
}

/// A session refused because a cap is reached.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error(
    "{} open MCP sessions is the most {} (`{}` in [serve]): close sessions you no longer use \
     (HTTP DELETE with their `Mcp-Session-Id`), or wait for idle ones to end",
    limit,
    match cap { Cap::PerAgent => "one agent may hold", Cap::Total => "this server holds" },
    cap.key()
)]
pub(crate) struct Refusal {
    /// Whose session was refused.
    pub agent: Principal,
    /// Which cap refused it.
    pub cap: Cap,
    /// That cap's value.
    pub limit: usize,
}

impl Refusal {
    /// Stable machine-readable reason code.
    pub(crate) fn code(&self) -> &'static str {
        "session_limit"
    }
}

/// One open session.
struct Entry {
    agent: Principal,
    /// Whether a tool was called in it: only then can approvals name it.
    called: bool,
}

#[derive(Default)]
struct State {
    sessions: HashMap<String, Entry>,
    /// Sessions and reservations per agent.
    held: HashMap<Principal, usize>,
    /// Sessions and reservations in all.
    total: usize,
}

impl State {
    fn release(&mut self, agent: &Principal) {
        self.total = self.total.saturating_sub(1);
        if let Some(held) = self.held.get_mut(agent) {
            *held = held.saturating_sub(1);
            if *held == 0 {
                self.held.remove(agent);
            }
        }
    }
}

/// The open sessions and their agents.
#[derive(Default)]
pub(crate) struct Sessions {
    state: Mutex<State>,
}

/// Room for one session of an agent, taken before the session exists so
/// that concurrent opens cannot pass a cap together. Dropped unbound, the
/// room is given back.
pub(crate) struct Reservation {
    sessions: Arc<Sessions>,
    agent: Option<Principal>,
}

impl Reservation {
    /// Records session `id` as the reserving agent's.
    pub(crate) fn bind(mut self, id: &str) {
        if let Some(agent) = self.agent.take() {
            self.sessions.lock().sessions.insert(
                id.to_string(),
                Entry {
                    agent,
                    called: false,
                },
            );
        }
    }
}

impl Drop for Reservation {
    fn drop(&mut self) {
        if let Some(agent) = self.agent.take() {
            self.sessions.lock().release(&agent);
        }
    }
}

impl Sessions {
    fn lock(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Room for a new session of `agent`, unless a cap is reached.
    pub(crate) fn reserve(
        self: &Arc<Self>,
        agent: &Principal,
        limits: SessionLimits,
    ) -> Result<Reservation, Refusal> {
        let mut state = self.lock();
        let held = state.held.get(agent).copied().unwrap_or(0);
        let refused = |cap, limit| Refusal {
            agent: agent.clone(),
            cap,
            limit,
        };
        if held >= limits.per_agent {
            return Err(refused(Cap::PerAgent, limits.per_agent));
        }
        if state.total >= limits.total {
            return Err(refused(Cap::Total, limits.total));
        }
        state.total += 1;
        *state.held.entry(agent.clone()).or_insert(0) += 1;
        Ok(Reservation {
            sessions: Arc::clone(self),
            agent: Some(agent.clone()),
        })
    }

    /// Whether session `id` is open and `agent`'s.
    pub(crate) fn belongs_to(&self, id: &str, agent: &Principal) -> bool {
        self.lock()
            .sessions
            .get(id)
            .is_some_and(|entry| entry.agent == *agent)
    }

    /// Notes that a tool was called in session `id`.
    pub(crate) fn called_in(&self, id: &str) {
        if let Some(entry) = self.lock().sessions.get_mut(id) {
            entry.called = true;
        }
    }

    /// Forgets session `id`, which ended: whether a tool was called in it
    /// (so approvals may name it); `None` if it was not open.
    pub(crate) fn forget(&self, id: &str) -> Option<bool> {
        let mut state = self.lock();
        let entry = state.sessions.remove(id)?;
        state.release(&entry.agent);
        Some(entry.called)
    }

    /// Forgets every open session (the server stops): the ids of those a
    /// tool was called in.
    pub(crate) fn forget_all(&self) -> Vec<String> {
        let mut state = self.lock();
        let called = state
            .sessions
            .drain()
            .filter_map(|(id, entry)| entry.called.then_some(id))
            .collect();
        state.held.clear();
        state.total = 0;
        called
    }

    /// How many sessions are open (and being opened), and how many of
    /// them are `agent`'s.
    pub(crate) fn open(&self, agent: &Principal) -> (usize, usize) {
        let state = self.lock();
        (state.total, state.held.get(agent).copied().unwrap_or(0))
    }
}

/// How often, at most, a refusal of one agent's sessions by one cap is
/// logged and journaled: an agent opening sessions in a loop is refused
/// thousands of times a second, and the log and the journal would grow
/// with every one.
pub(crate) const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Which refusals to report: the first of each agent and cap, then at
/// most one per [`REPORT_EVERY`], each accounting for the refusals not
/// reported since the one before; what is left is reported at shutdown
/// ([`RefusalReports::drain`]), so every refusal is counted somewhere.
#[derive(Default)]
pub(crate) struct RefusalReports {
    last: Mutex<HashMap<(Principal, Cap), Unreported>>,
}

/// Refusals of one agent by one cap since its last report.
struct Unreported {
    reported_at: Instant,
    count: u64,
    latest: Refusal,
}

impl RefusalReports {
    /// Whether `refusal`, at `now`, is reported; if so, how many refusals
    /// the report accounts for (this one and those not reported since the
    /// last report).
    pub(crate) fn note(&self, refusal: &Refusal, now: Instant) -> Option<u64> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        let key = (refusal.agent.clone(), refusal.cap);
        match last.get_mut(&key) {
            Some(unreported)
                if now.saturating_duration_since(unreported.reported_at) < REPORT_EVERY =>
            {
                unreported.count += 1;
                unreported.latest = refusal.clone();
                None
            }
            Some(unreported) => {
                let count = std::mem::take(&mut unreported.count) + 1;
                unreported.reported_at = now;
                Some(count)
            }
            None => {
                last.insert(
                    key,
                    Unreported {
                        reported_at: now,
                        count: 0,
                        latest: refusal.clone(),
                    },
                );
                Some(1)
            }
        }
    }

    /// The refusals not reported yet, each with how many there were.
    pub(crate) fn drain(&self) -> Vec<(Refusal, u64)> {
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        last.values_mut()
            .filter(|unreported| unreported.count > 0)
            .map(|unreported| {
                (
                    unreported.latest.clone(),
                    std::mem::take(&mut unreported.count),
                )
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIMITS: SessionLimits = SessionLimits {
        per_agent: 2,
        total: 3,
    };

    #[test]
    fn a_session_is_its_agents_alone_until_it_ends() {
        let sessions = Arc::new(Sessions::default());
        let (alice, bob) = (Principal::agent("alice"), Principal::agent("bob"));
        sessions.reserve(&alice, LIMITS).expect("room").bind("s1");
        assert!(sessions.belongs_to("s1", &alice));
        assert!(!sessions.belongs_to("s1", &bob), "not another agent's");
        assert!(!sessions.belongs_to("made-up", &alice), "not a made-up id");

        sessions.called_in("s1");
        assert_eq!(sessions.forget("s1"), Some(true), "a tool was called in it");
        assert!(!sessions.belongs_to("s1", &alice), "not once it ended");
        assert_eq!(sessions.forget("s1"), None, "ends once");
        assert_eq!(sessions.open(&alice), (0, 0));
    }

    #[test]
    fn caps_count_sessions_and_reservations_and_free_on_end() {
        let sessions = Arc::new(Sessions::default());
        let (alice, bob) = (Principal::agent("alice"), Principal::agent("bob"));
        sessions.reserve(&alice, LIMITS).expect("first").bind("a1");
        let pending = sessions.reserve(&alice, LIMITS).expect("second");
        // The unbound reservation counts: a third is refused.
        let refused = sessions.reserve(&alice, LIMITS).err().expect("per agent");
        assert_eq!((refused.cap, refused.limit), (Cap::PerAgent, 2));
        assert_eq!(refused.code(), "session_limit");
        assert!(
            refused.to_string().contains("max_sessions_per_agent"),
            "{refused}"
        );
        // Another agent still has room, up to the total.
        sessions.reserve(&bob, LIMITS).expect("bob").bind("b1");
        let refused = sessions.reserve(&bob, LIMITS).err().expect("total");
        assert_eq!((refused.cap, refused.limit), (Cap::Total, 3));
        assert!(refused.to_string().contains("max_sessions`"), "{refused}");

        // A reservation given back, and a session ended, make room.
        drop(pending);
        assert_eq!(sessions.open(&alice), (2, 1));
        sessions
            .reserve(&bob, LIMITS)
            .expect("room again")
            .bind("b2");
        assert!(sessions.reserve(&alice, LIMITS).is_err(), "full again");
        sessions.forget("b1");
        sessions.reserve(&alice, LIMITS).expect("room").bind("a2");
        assert_eq!(sessions.open(&alice), (3, 2));

        // At shutdown every session is forgotten; those called in named.
        sessions.called_in("a2");
        assert_eq!(sessions.forget_all(), vec!["a2".to_string()]);
        assert_eq!(sessions.open(&alice), (0, 0));
        assert!(!sessions.belongs_to("a1", &alice));
    }

    #[test]
    fn refusals_are_reported_at_most_once_a_window_and_all_are_counted() {
        let reports = RefusalReports::default();
        let refusal = |agent: &str, cap| Refusal {
            agent: Principal::agent(agent),
            cap,
            limit: 1,
        };
        let t0 = Instant::now();
        let flood = refusal("mallory", Cap::PerAgent);
        assert_eq!(reports.note(&flood, t0), Some(1), "the first is reported");
        for n in 1..=5 {
            assert_eq!(reports.note(&flood, t0 + Duration::from_millis(n)), None);
        }
        // Others are counted apart.
        assert_eq!(reports.note(&refusal("alice", Cap::PerAgent), t0), Some(1));
        assert_eq!(reports.note(&refusal("mallory", Cap::Total), t0), Some(1));
        assert_eq!(
            reports.note(&flood, t0 + REPORT_EVERY),
            Some(6),
            "then one a window, for itself and the five not reported"
        );
        assert_eq!(reports.note(&flood, t0 + REPORT_EVERY), None);
        assert_eq!(reports.note(&flood, t0 + REPORT_EVERY), None);
        // What is left is drained once.
        assert_eq!(reports.drain(), vec![(flood, 2)]);
        assert!(reports.drain().is_empty());
    }
}
