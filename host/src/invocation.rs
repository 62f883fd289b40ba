//! One request to run a tool: its input, principal, context, limits,
//! cancellation and what it may wait for.

use crate::limits::Limits;
use crate::policy::{Principal, RequestContext};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The principal of an invocation that names none.
pub const DEFAULT_PRINCIPAL: &str = "anonymous";

/// What an invocation waits for before its tool runs, reported to the
/// observer given to [`Invocation::on_wait`].
/// Exhaustive on purpose: whoever relays waits (`airlock serve` to its
/// clients) must decide what to do with a new kind, not drop it unseen.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Wait {
    /// A human approval: the pending approval's id, and how long the
    /// invocation has waited so far.
    Approval {
        /// The pending approval.
        id: String,
        /// The tool it is for.
        tool: String,
        /// Time waited so far.
        waited: Duration,
    },
    /// The running tool said how far it is (a hosted server's progress).
    Progress {
        /// What it said.
        message: String,
    },
}

/// A callback told what an invocation waits for.
#[derive(Clone)]
pub(crate) struct WaitObserver(pub(crate) Arc<dyn Fn(&Wait) + Send + Sync>);

impl std::fmt::Debug for WaitObserver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("WaitObserver")
    }
}

/// A request to run a tool once.
///
/// # Examples
///
/// ```
/// use airlock::{Invocation, Limits};
/// use std::time::Duration;
///
/// let call = Invocation::new(r#"{"records": []}"#)
///     .with_limits(Limits { timeout: Duration::from_secs(2), ..Limits::default() });
/// assert_eq!(call.input(), r#"{"records": []}"#);
/// ```
#[derive(Clone, Debug)]
pub struct Invocation {
    pub(crate) input: String,
    pub(crate) limits: Option<Limits>,
    pub(crate) principal: Principal,
    pub(crate) context: RequestContext,
    pub(crate) wait_for_approval: Option<Duration>,
    pub(crate) approval: Option<String>,
    pub(crate) cancel: CancellationToken,
    pub(crate) on_wait: Option<WaitObserver>,
}

impl Invocation {
    /// An invocation with `input` (JSON text) under the host's default limits.
    pub fn new(input: impl Into<String>) -> Self {
        Self {
            input: input.into(),
            limits: None,
            principal: Principal::user(DEFAULT_PRINCIPAL),
            context: RequestContext::default(),
            wait_for_approval: None,
            approval: None,
            cancel: CancellationToken::new(),
            on_wait: None,
        }
    }

    /// Stops the invocation when `cancel` fires: a running tool is stopped as
    /// at its deadline and the outcome is [`LimitExceeded::Cancelled`](crate::LimitExceeded::Cancelled)
    /// (journaled as `cancelled`); a wait for an approval ends the same way.
    pub fn cancel_on(mut self, cancel: CancellationToken) -> Self {
        self.cancel = cancel;
        self
    }

    /// Calls `observer` when the invocation starts waiting for something
    /// (an approval) and every few seconds while it waits, e.g. to send
    /// progress notifications.
    pub fn on_wait(mut self, observer: impl Fn(&Wait) + Send + Sync + 'static) -> Self {
        self.on_wait = Some(WaitObserver(Arc::new(observer)));
        self
    }

    /// Who asks (default `User::"anonymous"`). Policies and approvals key on it.
    pub fn as_principal(mut self, principal: Principal) -> Self {
        self.principal = principal;
        self
    }

    /// The run, session, device and channel the request belongs to.
    pub fn in_context(mut self, context: RequestContext) -> Self {
        self.context = context;
        self
    }

    /// If an approval is needed, wait up to `timeout` for an operator's
    /// decision instead of returning [`Outcome::PendingApproval`](crate::Outcome::PendingApproval) at once.
    pub fn wait_for_approval(mut self, timeout: Duration) -> Self {
        self.wait_for_approval = Some(timeout);
        self
    }

    /// Runs only under approval `id`: if the approval that covers this
    /// request is a different one (or none), the invocation is refused.
    pub fn under_approval(mut self, id: impl Into<String>) -> Self {
        self.approval = Some(id.into());
        self
    }

    /// Who asks.
    pub fn principal(&self) -> &Principal {
        &self.principal
    }

    /// Runs under `limits` instead of the host's defaults.
    pub fn with_limits(mut self, limits: Limits) -> Self {
        self.limits = Some(limits);
        self
    }

    /// The input JSON text.
    pub fn input(&self) -> &str {
        &self.input
    }
}
