//! One tool call, whatever transport it came over: find the tool, check the
//! arguments, take a slot, and run it through [`Host`]'s one invoke path as
//! the authenticated principal.

use super::Server;
use super::arguments::{Mismatch, check};
use super::slots::NoSlot;
use crate::invocation::{Invocation, Wait};
use crate::outcome::{InvokeError, Outcome};
use crate::policy::{Principal, RequestContext};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use tokio_util::sync::CancellationToken;

/// Reports what a call waits for (a slot, an approval), e.g. as MCP
/// progress notifications.
pub type Progress = Arc<dyn Fn(String) + Send + Sync>;

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
    pub channel: &'static str,
    /// The tool's name.
    pub tool: String,
    /// The arguments: the tool's JSON input.
    pub arguments: serde_json::Map<String, serde_json::Value>,
    /// Fired when the caller gives up.
    pub cancel: CancellationToken,
    /// Told what the call waits for.
    pub progress: Option<Progress>,
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
    /// every way [`Host::invoke`](crate::Host::invoke) ends.
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
                channel: call.channel.to_string(),
            })
            .wait_for_approval(settings.approval_wait)
            .cancel_on(cancel.clone());
        if let Some(progress) = call.progress {
            invocation = invocation.on_wait(move |wait| match wait {
                Wait::Approval { id, tool, waited } => progress(format!(
                    "waiting for an operator to decide approval {id} for `{tool}` \
                     ({} so far): `airlock approvals decide {id}`",
                    humantime::format_duration(std::time::Duration::from_secs(waited.as_secs()))
                )),
            });
        }
        // The invocation runs on its own task, holding the slot: if the
        // caller's future is dropped (a client that went away), the guard
        // cancels it and it still ends, and is journaled, as cancelled.
        let cancel_if_dropped = cancel.clone().drop_guard();
        let host = self.inner.host.clone();
        let mut running = tokio::spawn(async move {
            let _slot = slot;
            served.tool.invoke(&host, invocation).await
        });
        let result = tokio::select! {
            result = &mut running => result,
            () = call.cancel.cancelled() => {
                cancel.cancel();
                running.await
            }
        };
        cancel_if_dropped.disarm();
        Ok(match result {
            Ok(Ok(outcome)) => Answered::Ran(Box::new(outcome)),
            Ok(Err(error)) => Answered::Failed(error),
            Err(panicked) => Answered::Failed(InvokeError::Instantiate {
                message: format!("the invocation task failed: {panicked}"),
            }),
        })
    }
}
