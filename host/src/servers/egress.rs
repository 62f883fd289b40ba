//! A hosted server's way out: one egress proxy for the server's life, its
//! socket bound into the sandbox, deciding each request with the hook of
//! the call in flight (that call's principal, budget and records, so they
//! land in its attestation). With no call in flight, or several at once,
//! no call can be told apart: the request is decided and recorded for the
//! server session, under invocation id `server-session:NAME:ID` and
//! principal `Channel::"server:NAME"`, and journaled as such.

use crate::egress::{EgressHook, EgressProxy, EgressRecord, Requester};
use crate::grants::Grants;
use crate::journal::EntryKind;
use crate::kernel::Kernel;
use crate::native::TrustFile;
use crate::policy::{Channel, Principal, PrincipalKind, RequestContext, ToolFacts};
use std::sync::{Arc, Mutex, PoisonError};

/// The server's proxy and the calls it attributes requests to.
pub(crate) struct ServerEgress {
    proxy: EgressProxy,
    /// The certificates its sandbox trusts, when the proxy intercepts
    /// (rewritten with a new CA at each start), and where they are.
    trust: Mutex<Option<TrustFile>>,
    trust_path: Option<std::path::PathBuf>,
    grants: Grants,
    calls: Arc<Mutex<Vec<(u64, EgressHook)>>>,
    session: EgressHook,
    /// How many of the session's records are journaled.
    journaled: Mutex<usize>,
    next: std::sync::atomic::AtomicU64,
}

/// A call registered with the proxy; unregistered when dropped.
pub(crate) struct InFlight<'a> {
    egress: &'a ServerEgress,
    id: u64,
    hook: EgressHook,
}

impl InFlight<'_> {
    /// The call's records so far.
    pub(crate) fn records(&self) -> Vec<EgressRecord> {
        self.hook.records()
    }
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.egress
            .calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .retain(|(id, _)| *id != self.id);
    }
}

impl ServerEgress {
    /// Starts the proxy for server `facts` (its name, capabilities,
    /// digest) under `grants`.
    pub(crate) fn start(
        kernel: &Kernel,
        facts: &ToolFacts,
        grants: Grants,
    ) -> std::io::Result<Self> {
        let session_id = format!("server-session:{}:{}", facts.name, ulid::Ulid::new());
        let session = EgressHook::new(
            &session_id,
            grants.network_arc(),
            kernel.network().clone(),
            Requester {
                policies: kernel.policies(),
                principal: Principal::new(PrincipalKind::Channel, format!("server:{}", facts.name)),
                tool: facts.clone(),
                context: RequestContext {
                    session_id: session_id.clone(),
                    channel: Channel::McpServer,
                    ..RequestContext::default()
                },
                credentials: kernel.credentials(&grants),
            },
        );
        let calls: Arc<Mutex<Vec<(u64, EgressHook)>>> = Arc::default();
        let route = {
            let (calls, session) = (Arc::clone(&calls), session.clone());
            Arc::new(move || {
                let calls = calls.lock().unwrap_or_else(PoisonError::into_inner);
                match calls.as_slice() {
                    [(_, only)] => only.clone(),
                    _ => session.clone(),
                }
            })
        };
        let proxy = EgressProxy::start_routed(route)?;
        let trust = TrustFile::for_proxy(&proxy, kernel.trust_dir())?;
        Ok(Self {
            trust_path: trust.as_ref().map(|t| t.path().to_path_buf()),
            trust: Mutex::new(trust),
            proxy,
            grants,
            calls,
            session,
            journaled: Mutex::new(0),
            next: std::sync::atomic::AtomicU64::new(0),
        })
    }

    /// The trust bundle its sandbox reads, if the proxy intercepts.
    pub(crate) fn trust(&self) -> Option<&std::path::Path> {
        self.trust_path.as_deref()
    }

    /// A new CA for a new server process, its certificate in the bundle
    /// before the process reads it: each start's CA is its own, and lives
    /// no longer than that process.
    pub(crate) fn renew_trust(&self) -> std::io::Result<()> {
        let mut trust = self.trust.lock().unwrap_or_else(PoisonError::into_inner);
        let Some(trust) = trust.as_mut() else {
            return Ok(());
        };
        self.proxy.renew_ca().map_err(std::io::Error::other)?;
        trust.refresh(&self.proxy)
    }

    /// The channel descriptor the server's sandbox inherits.
    pub(crate) fn channel_fd(&self) -> std::os::fd::RawFd {
        self.proxy.channel_fd()
    }

    /// Registers a call: while it is the only one in flight, the server's
    /// requests are decided and recorded as `requester`'s.
    pub(crate) fn call(
        &self,
        kernel: &Kernel,
        invocation_id: &str,
        requester: Requester,
    ) -> InFlight<'_> {
        let hook = EgressHook::new(
            invocation_id,
            self.grants.network_arc(),
            kernel.network().clone(),
            Requester {
                credentials: kernel.credentials(&self.grants),
                ..requester
            },
        );
        let id = self.next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        self.calls
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push((id, hook.clone()));
        InFlight {
            egress: self,
            id,
            hook,
        }
    }

    /// Journals the session's records not journaled yet.
    pub(crate) fn journal_session(&self, kernel: &Kernel) {
        let Some(journal) = kernel.journal() else {
            return;
        };
        let records = self.session.records();
        let mut journaled = self
            .journaled
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        let fresh: Vec<_> = records
            .iter()
            .skip(*journaled)
            .map(|record| (EntryKind::Egress, record.to_json()))
            .collect();
        if fresh.is_empty() {
            return;
        }
        match journal.record(&fresh) {
            Ok(_) => *journaled = records.len(),
            Err(error) => tracing::warn!(%error, "journaling a server session's requests failed"),
        }
    }
}
