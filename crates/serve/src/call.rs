//! One tool call, whatever transport it came over: find the tool, check the
//! arguments, take a slot, and run it through [`Host`]'s one invoke path as
//! the authenticated principal.

use super::Server;
use super::arguments::{Mismatch, check};
use super::decide::Decider;
use super::slots::NoSlot;
use airlock::approvals::{Approval, OperatorDecision};
use airlock::policy::{Channel, Principal, RequestContext};
use airlock::{Invocation, Wait};
use airlock::{InvokeError, Outcome};
use futures_util::FutureExt as _;
use std::collections::HashSet;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex, PoisonError};
use tokio_util::sync::CancellationToken;
use tokio_util::task::AbortOnDropHandle;

/// Reports what a call waits for (a slot, an approval), e.g. as MCP
/// progress notifications.
pub type Progress = Arc<dyn Fn(String) + Send + Sync>;

/// Asks the human at a call's client to decide the call's pending approval.
pub trait ClientAsk: Send + Sync {
    /// Who decides when the human answers.
    fn decider(&self) -> Decider;

    /// Shows `approval` to the human; `None` when they dismissed it or the
    /// client could not ask (the approval stays with the operators).
    fn ask(
        &self,
        approval: Approval,
    ) -> Pin<Box<dyn Future<Output = Option<OperatorDecision>> + Send>>;
}

/// Whether, and how, a call that needs an approval asks its own client.
#[derive(Clone, Default)]
pub enum AskClient {
    /// Only operators decide: the call waits up to `approval_wait`.
    #[default]
    No,
    /// While the call waits for an operator, ask the client too (an MCP
    /// elicitation request on a session); whoever decides first counts.
    WhileWaiting(Arc<dyn ClientAsk>),
    /// Do not wait: answer with the pending approval at once, for the
    /// transport to ask the client, who calls again with the answer (MCP
    /// 2026-07-28's `input_required`).
    ByReturning,
}

/// One tool call.
pub struct Call {
    /// Who calls: from the agent's token, or the config for stdio. Never
    /// from anything the caller sends.
    pub principal: Principal,
    /// The transport's session, if any (session-scoped approvals key on it).
    pub session_id: String,
    /// The caller's request id.
    pub request_id: String,
    /// How the call arrived (`mcp-stdio`, `mcp-http`).
    pub channel: Channel,
    /// The tool's name.
    pub tool: String,
    /// The arguments: the tool's JSON input.
    pub arguments: serde_json::Map<String, serde_json::Value>,
    /// Fired when the caller gives up.
    pub cancel: CancellationToken,
    /// Told what the call waits for.
    pub progress: Option<Progress>,
    /// Whether a pending approval is put to the caller's client.
    pub ask: AskClient,
}

/// A call that is malformed: nothing ran.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum CallError {
    /// No tool of that name.
    #[error("no tool named `{name}`; tools/list shows the {count} this server has")]
    UnknownTool {
        /// The name asked for.
        name: String,
        /// How many tools there are.
        count: usize,
    },
    /// The arguments do not fit the tool's input schema.
    #[error(transparent)]
    Arguments(#[from] Mismatch),
}

/// How a well-formed call ended.
#[derive(Debug)]
#[non_exhaustive]
pub enum Answered {
    /// The host ran the call (or refused it, or holds it for approval):
    /// every way [`Host::invoke`](airlock::Host::invoke) ends.
    Ran(Box<Outcome>),
    /// No slot came free in time (`host_busy`).
    Busy(String),
    /// The caller cancelled while the call waited for a slot.
    Cancelled,
    /// The host could not run the tool at all.
    Failed(InvokeError),
}

impl Answered {
    /// Stable reason code (`ok` when the tool completed).
    pub fn code(&self) -> &'static str {
        match self {
            Answered::Ran(outcome) => outcome.code(),
            Answered::Busy(_) => "host_busy",
            Answered::Cancelled => "cancelled",
            Answered::Failed(error) => error.code(),
        }
    }

    /// What went wrong, for the model to read; `None` when it completed.
    pub fn message(&self) -> Option<String> {
        match self {
            Answered::Ran(outcome) => match outcome.as_ref() {
                Outcome::PendingApproval { approval, .. } => Some(format!(
                    "`{}` needs a human approval (pending approval {}); an operator decides with \
                     `airlock approvals decide {}`. Retry the same call after they decided; \
                     do not change its input, or it needs a new approval.",
                    approval.tool, approval.id, approval.id
                )),
                other => other.message(),
            },
            Answered::Busy(message) => Some(message.clone()),
            Answered::Cancelled => Some("the call was cancelled before it ran".into()),
            Answered::Failed(error) => Some(error.to_string()),
        }
    }
}

impl Server {
    /// Runs `call`.
    pub async fn call(&self, call: Call) -> Result<Answered, CallError> {
        let catalog = self.catalog();
        let served = catalog
            .get(&call.tool)
            .cloned()
            .ok_or(CallError::UnknownTool {
                name: call.tool.clone(),
                count: catalog.tools.len(),
            })?;
        check(&call.tool, &served.schema, &call.arguments)?;
        if !call.session_id.is_empty() {
            // Approvals may now name the session: they end with it.
            self.sessions().called_in(&call.session_id);
        }
        let settings = &catalog.settings;
        self.inner.calls.fetch_add(1, Ordering::Relaxed);

        // This call's cancellation: fired by the server at the end of its
        // shutdown grace, or (below) when the caller cancels.
        let cancel = self.inner.stop.child_token();
        let progress = call.progress.clone();
        let queued = self
            .inner
            .slots
            .acquire(&call.tool, settings.queue_wait, &cancel, |what| {
                if let Some(progress) = &progress {
                    progress(what);
                }
            });
        let slot = tokio::select! {
            slot = queued => slot,
            () = call.cancel.cancelled() => Err(NoSlot::Cancelled),
        };
        let slot = match slot {
            Ok(slot) => slot,
            Err(NoSlot::Cancelled) => return Ok(Answered::Cancelled),
            Err(NoSlot::Busy { which, limit }) => {
                return Ok(Answered::Busy(format!(
                    "no free slot within {}: the {which} runs {limit} invocations at once; retry later",
                    humantime::format_duration(settings.queue_wait)
                )));
            }
        };

        let input = serde_json::Value::Object(call.arguments).to_string();
        let mut invocation = Invocation::new(input)
            .as_principal(call.principal)
            .in_context(RequestContext {
                run_id: call.request_id,
                session_id: call.session_id,
                device_id: String::new(),
                channel: call.channel.clone(),
            })
            .cancel_on(cancel.clone());
        if !matches!(call.ask, AskClient::ByReturning) {
            invocation = invocation.wait_for_approval(settings.approval_wait);
        }
        let asker = match call.ask {
            AskClient::WhileWaiting(asker) => Some(Asking::new(self.clone(), asker)),
            _ => None,
        };
        if call.progress.is_some() || asker.is_some() {
            let progress = call.progress;
            invocation = invocation.on_wait(move |wait| match wait {
                Wait::Progress { message } => {
                    if let Some(progress) = &progress {
                        progress(message.clone());
                    }
                }
                Wait::Approval { id, tool, waited } => {
                    if let Some(asker) = &asker {
                        asker.ask_once(id);
                    }
                    if let Some(progress) = &progress {
                        progress(format!(
                            "waiting for an operator to decide approval {id} for `{tool}` \
                             ({} so far): `airlock approvals decide {id}`",
                            humantime::format_duration(std::time::Duration::from_secs(
                                waited.as_secs()
                            ))
                        ));
                    }
                }
            });
        }
        // The invocation runs in place (a task of its own cost two thread
        // hand-offs a call), holding the slot. If this future is dropped
        // before it ends, the invocation is cancelled and handed to the
        // runtime, so it still ends, and is journaled, as cancelled.
        let host = self.inner.host.clone();
        let invoking = async move {
            let _slot = slot;
            served.tool.invoke(&host, invocation).await
        };
        let mut running = FinishOnDrop::new(
            cancel.clone(),
            std::panic::AssertUnwindSafe(invoking).catch_unwind(),
        );
        let result = tokio::select! {
            result = &mut running => result,
            () = call.cancel.cancelled() => {
                cancel.cancel();
                running.await
            }
        };
        Ok(match result {
            Ok(Ok(outcome)) => Answered::Ran(Box::new(outcome)),
            Ok(Err(error)) => Answered::Failed(error),
            // The panic itself went to the server's log.
            Err(_) => Answered::Failed(InvokeError::Instantiate {
                message: "the invocation panicked (a bug in airlock)".into(),
            }),
        })
    }
}

/// A future run in place that, if dropped before it ends, is cancelled
/// and handed to the runtime to finish.
struct FinishOnDrop<T: 'static> {
    future: Option<Pin<Box<dyn Future<Output = T> + Send>>>,
    cancel: CancellationToken,
}

impl<T> FinishOnDrop<T> {
    fn new(cancel: CancellationToken, future: impl Future<Output = T> + Send + 'static) -> Self {
        Self {
            future: Some(Box::pin(future)),
            cancel,
        }
    }
}

impl<T: 'static> Future for FinishOnDrop<T> {
    type Output = T;

    fn poll(mut self: Pin<&mut Self>, cx: &mut std::task::Context<'_>) -> std::task::Poll<T> {
        let Some(future) = self.future.as_mut() else {
            return std::task::Poll::Pending;
        };
        let output = std::task::ready!(future.as_mut().poll(cx));
        self.future = None;
        std::task::Poll::Ready(output)
    }
}

impl<T: 'static> Drop for FinishOnDrop<T> {
    fn drop(&mut self) {
        if let Some(future) = self.future.take() {
            self.cancel.cancel();
            if let Ok(runtime) = tokio::runtime::Handle::try_current() {
                runtime.spawn(async move {
                    drop(future.await);
                });
            }
        }
    }
}

/// The client questions of one call: each pending approval is asked once,
/// and a question still open when the call ends (an operator decided, the
/// wait ran out) is dropped with it.
struct Asking {
    server: Server,
    asker: Arc<dyn ClientAsk>,
    asked: Mutex<(HashSet<String>, Vec<AbortOnDropHandle<()>>)>,
}

impl Asking {
    fn new(server: Server, asker: Arc<dyn ClientAsk>) -> Self {
        Self {
            server,
            asker,
            asked: Mutex::new((HashSet::new(), Vec::new())),
        }
    }

    fn ask_once(&self, id: &str) {
        let mut asked = self.asked.lock().unwrap_or_else(PoisonError::into_inner);
        if !asked.0.insert(id.to_string()) {
            return;
        }
        let (server, asker, id) = (self.server.clone(), self.asker.clone(), id.to_string());
        asked.1.push(AbortOnDropHandle::new(tokio::spawn(async move {
            let pending = match server.host().approvals().map(|store| store.get(&id)) {
                Some(Ok(Some(approval))) => approval,
                _ => return,
            };
            let Some(decision) = asker.ask(pending).await else {
                return;
            };
            // An operator may have decided first; the call finds whichever
            // decision was recorded.
            if let Err(error) = server.decide(&asker.decider(), &id, &decision) {
                tracing::info!(approval = %id, code = error.code(), %error, "the client's decision was not recorded");
            }
        })));
    }
}
