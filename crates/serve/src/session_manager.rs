//! [`AgentSessions`]: rmcp's session manager, with every session bound to
//! the agent whose request opened it. rmcp opens a session while it
//! handles an `initialize` request without telling the manager whose
//! request that is; the HTTP gate runs rmcp inside an [`Opening`] (a
//! task-local scope naming the authenticated agent), so the session is
//! recorded as that agent's, within its caps, before its id leaves the
//! server. A session forgotten here (DELETE, idle expiry, its worker's
//! end) is not found again, and its "allow for this session" approvals
//! end with it.

use super::Server;
use super::sessions::{Refusal, Reservation, SessionLimits, Sessions};
use airlock::policy::Principal;
use futures_util::Stream;
use rmcp::model::{ClientJsonRpcMessage, ServerJsonRpcMessage};
use rmcp::transport::streamable_http_server::session::ServerSseMessage;
use rmcp::transport::streamable_http_server::session::local::{
    LocalSessionManager, LocalSessionManagerError,
};
use rmcp::transport::streamable_http_server::{SessionId, SessionManager};
use std::sync::{Arc, Mutex, OnceLock, PoisonError};

tokio::task_local! {
    static OPENING: Arc<Opening>;
}

/// The HTTP request rmcp is handling, as a session opened by it needs to
/// know it: who asked, the room the gate reserved for the session, where
/// the new session's id goes, and whether a cap refused it.
pub(super) struct Opening {
    agent: Principal,
    /// Reserved by the gate for an `initialize`; bound by the session.
    reserved: Mutex<Option<Reservation>>,
    /// The id of the session this request opened: the handler rmcp makes
    /// for the request holds the same slot, so it knows its session from
    /// the server, never from a header.
    session: Arc<OnceLock<String>>,
    refused: Mutex<Option<Refusal>>,
}

impl Opening {
    /// A request of `agent`, with `reserved` room for the session it
    /// opens, if the gate saw it would.
    pub(super) fn new(agent: Principal, reserved: Option<Reservation>) -> Arc<Self> {
        Arc::new(Self {
            agent,
            reserved: Mutex::new(reserved),
            session: Arc::default(),
            refused: Mutex::new(None),
        })
    }

    /// Runs `future` (rmcp handling the request) as this request.
    pub(super) async fn run<F: Future>(self: &Arc<Self>, future: F) -> F::Output {
        OPENING.scope(Arc::clone(self), future).await
    }

    /// The cap that refused the session this request would have opened.
    pub(super) fn refused(&self) -> Option<Refusal> {
        self.refused
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// The session slot for a handler made while rmcp handles a request:
    /// filled if the request opens a session; outside a request (never, in
    /// the server) an empty slot: no session.
    pub(super) fn session_slot() -> Arc<OnceLock<String>> {
        OPENING
            .try_with(|opening| Arc::clone(&opening.session))
            .unwrap_or_default()
    }
}

/// Why a session could not be opened or reached.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub(crate) enum SessionError {
    /// rmcp's session manager failed.
    #[error(transparent)]
    Local(#[from] LocalSessionManagerError),
    /// A cap is reached (the gate answers 429).
    #[error(transparent)]
    Refused(#[from] Refusal),
    /// rmcp opened a session outside a request the gate let in: refused,
    /// since nobody could own it.
    #[error("a session was opened outside an authenticated request (a bug in airlock)")]
    NoAgent,
}

/// rmcp's in-memory sessions (`M`), each bound to its agent in the
/// server's [`Sessions`](super::sessions::Sessions).
pub(super) struct AgentSessions<M = LocalSessionManager> {
    inner: M,
    server: Server,
}

impl AgentSessions {
    /// In-memory sessions that end after `[serve] session_idle` unused.
    pub(super) fn new(server: Server) -> Self {
        let mut inner = LocalSessionManager::default();
        inner.session_config.keep_alive = Some(server.settings().session_idle);
        Self { inner, server }
    }
}

// Generic over rmcp's manager only so that its streams keep the `Sync`
// the trait promises (the concrete type's own signatures drop it).
impl<M> SessionManager for AgentSessions<M>
where
    M: SessionManager<Error = LocalSessionManagerError>,
{
    type Error = SessionError;
    type Transport = M::Transport;

    async fn create_session(&self) -> Result<(SessionId, Self::Transport), Self::Error> {
        let opening = OPENING
            .try_with(Arc::clone)
            .map_err(|_| SessionError::NoAgent)?;
        let reserved = opening
            .reserved
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .take();
        // The gate reserves for every `initialize` it sees; should rmcp
        // open a session for a request the gate did not take for one, the
        // caps still hold.
        let reservation = match reserved {
            Some(reservation) => reservation,
            None => {
                let limits = SessionLimits::from(&self.server.catalog().settings);
                self.server
                    .sessions()
                    .reserve(&opening.agent, limits)
                    .inspect_err(|refusal| {
                        *opening
                            .refused
                            .lock()
                            .unwrap_or_else(PoisonError::into_inner) = Some(refusal.clone());
                    })?
            }
        };
        let (id, transport) = self
            .inner
            .create_session()
            .await
            .map_err(SessionError::Local)?;
        reservation.bind(&id);
        let _ = opening.session.set(id.to_string());
        Ok((id, transport))
    }

    async fn initialize_session(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<ServerJsonRpcMessage, Self::Error> {
        self.inner
            .initialize_session(id, message)
            .await
            .map_err(SessionError::Local)
    }

    async fn has_session(&self, id: &SessionId) -> Result<bool, Self::Error> {
        self.inner
            .has_session(id)
            .await
            .map_err(SessionError::Local)
    }

    async fn close_session(&self, id: &SessionId) -> Result<(), Self::Error> {
        {
            // Ended before rmcp closes it (which can wait on a client that
            // reads nothing), and under the guard the shutdown waits for.
            let _ending = self.server.ending().await;
            // Forgotten first: from now on the gate does not find it.
            if self.server.sessions().forget(id) == Some(true) {
                self.server.end_session_approvals(id).await;
            }
        }
        self.inner
            .close_session(id)
            .await
            .map_err(SessionError::Local)
    }

    async fn create_stream(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner
            .create_stream(id, message)
            .await
            .map_err(SessionError::Local)
    }

    async fn accept_message(
        &self,
        id: &SessionId,
        message: ClientJsonRpcMessage,
    ) -> Result<(), Self::Error> {
        self.inner
            .accept_message(id, message)
            .await
            .map_err(SessionError::Local)
    }

    async fn create_standalone_stream(
        &self,
        id: &SessionId,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner
            .create_standalone_stream(id)
            .await
            .map_err(SessionError::Local)
    }

    async fn resume(
        &self,
        id: &SessionId,
        last_event_id: String,
    ) -> Result<impl Stream<Item = ServerSseMessage> + Send + Sync + 'static, Self::Error> {
        self.inner
            .resume(id, last_event_id)
            .await
            .map_err(SessionError::Local)
    }

    // `restore_session` keeps rmcp's default (not supported): a session
    // restored from elsewhere would have no agent.
}

impl Server {
    /// The open MCP sessions and their agents.
    pub(crate) fn sessions(&self) -> &Arc<Sessions> {
        &self.inner.sessions
    }

    /// Holds off the shutdown while a session is ended.
    pub(super) async fn ending(&self) -> tokio::sync::RwLockReadGuard<'_, ()> {
        self.inner.ending.read().await
    }

    /// Ends the approvals of MCP session `id`, which has ended (an HTTP
    /// session deleted, idle or closed; a stdio client gone): its
    /// `session` approvals cover nothing more, and one still pending can
    /// no longer be allowed for it. A failure is logged; the session is
    /// gone either way, and nothing can name it again.
    pub async fn end_session_approvals(&self, id: &str) {
        let (host, id) = (self.host().clone(), id.to_string());
        let ended = tokio::task::spawn_blocking(move || {
            host.approvals()
                .map(|store| store.end_session(&id))
                .transpose()
        })
        .await;
        match ended {
            Ok(Ok(_)) => {}
            Ok(Err(error)) => {
                tracing::error!(code = error.code(), %error, "a session's approvals were not ended in the store");
            }
            Err(error) => tracing::error!(%error, "ending a session's approvals failed"),
        }
    }

    /// Reports a refused session: the first refusal of an agent by a cap,
    /// then at most one per [`REPORT_EVERY`](super::sessions::REPORT_EVERY),
    /// logged and journaled with how many refusals the entry accounts for.
    pub(super) fn session_refused(&self, refusal: &Refusal) {
        if let Some(refused) = self.inner.refusals.note(refusal, std::time::Instant::now()) {
            self.report_refusals(refusal, refused);
        }
    }

    /// Reports the refusals not reported yet (at shutdown).
    pub(super) fn report_unreported_refusals(&self) {
        for (refusal, refused) in self.inner.refusals.drain() {
            self.report_refusals(&refusal, refused);
        }
    }

    /// Logs and journals `refused` refusals, the latest `refusal`.
    fn report_refusals(&self, refusal: &Refusal, refused: u64) {
        let (open, held) = self.sessions().open(&refusal.agent);
        tracing::warn!(
            agent = %refusal.agent,
            code = refusal.code(),
            cap = refusal.cap.key(),
            limit = refusal.limit,
            open,
            held,
            refused,
            "refused an MCP session: {refusal}"
        );
        let detail = serde_json::json!({
            "principal": refusal.agent.to_string(),
            "code": refusal.code(),
            "cap": refusal.cap.key(),
            "limit": refusal.limit,
            "open": open,
            "held_by_agent": held,
            "refused": refused,
        });
        if let Err(error) = self.journal("session_refused", detail) {
            tracing::error!(code = error.code(), %error, "a refused session was not journaled");
        }
    }
}
