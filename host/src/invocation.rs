//! One request to run a tool, and turning what the guest returned into an
//! [`Outcome`].

use crate::limits::Limits;
use crate::outcome::InvokeError;
use crate::outcome::{LimitExceeded, Outcome, RunReport, ToolError, ToolErrorKind};
use crate::policy::{Principal, RequestContext};
use crate::runtime::WitError;
use crate::runtime::run::{Failure, Run};
use std::sync::Arc;
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The principal of an invocation that names none.
pub const DEFAULT_PRINCIPAL: &str = "anonymous";

/// What an invocation waits for before its tool runs, reported to the
/// observer given to [`Invocation::on_wait`].
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
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

/// A task that forwards a cancellation, aborted when dropped so that it
/// does not outlive the invocation it serves.
pub(crate) struct AbortOnDrop(tokio::task::AbortHandle);

impl AbortOnDrop {
    /// Spawns `task` on the current runtime.
    pub(crate) fn spawn(task: impl std::future::Future<Output = ()> + Send + 'static) -> Self {
        Self(tokio::spawn(task).abort_handle())
    }
}

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
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
    /// at its deadline and the outcome is [`LimitExceeded::Cancelled`]
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
    /// decision instead of returning [`Outcome::PendingApproval`] at once.
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

/// Turns the result of `call(input)` into an outcome: checks the output's size
/// and that it is JSON, and caps a tool's error message.
pub(crate) fn outcome_of(run: Run<Result<String, WitError>>) -> Result<Outcome, InvokeError> {
    let Run { result, report } = run;
    let max = report.limits.max_output_bytes;
    Ok(match result {
        Ok(Ok(output)) => completed(output, report),
        Ok(Err(error)) => {
            let (kind, message) = match error {
                WitError::InvalidInput(m) => (ToolErrorKind::InvalidInput, m),
                WitError::Denied(m) => (ToolErrorKind::Denied, m),
                WitError::Failed(m) => (ToolErrorKind::Failed, m),
            };
            Outcome::ToolError {
                error: ToolError {
                    kind,
                    message: truncate(message, max),
                },
                report,
            }
        }
        Err(Failure::Limit(limit)) => Outcome::LimitExceeded { limit, report },
        Err(Failure::Fault(fault)) => Outcome::Faulted { fault, report },
        Err(Failure::Host(error)) => return Err(error),
        // `load` bound this component once already; a mismatch now is a host bug.
        Err(Failure::Bind(message)) => return Err(InvokeError::Instantiate { message }),
    })
}

/// A finished run's output, by the one rule for components and native
/// programs alike: at most the output limit, JSON, and kept without the
/// whitespace around the JSON text (a program's final newline).
pub(crate) fn completed(output: String, report: RunReport) -> Outcome {
    let limit = report.limits.max_output_bytes;
    if output.len() > limit {
        return Outcome::LimitExceeded {
            limit: LimitExceeded::OutputTooLarge {
                limit,
                actual: output.len(),
            },
            report,
        };
    }
    match serde_json::from_str::<serde::de::IgnoredAny>(&output) {
        Ok(_) => {
            let output = match output.trim() {
                trimmed if trimmed.len() == output.len() => output,
                trimmed => trimmed.to_string(),
            };
            Outcome::Completed { output, report }
        }
        Err(e) => Outcome::ToolError {
            error: ToolError {
                kind: ToolErrorKind::InvalidOutput,
                message: format!("the output is not JSON: {e}"),
            },
            report,
        },
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(result: Result<Result<String, WitError>, Failure>, max_output_bytes: usize) -> Outcome {
        let limits = Limits {
            max_output_bytes,
            ..Limits::default()
        };
        outcome_of(Run {
            result,
            report: RunReport::not_started(limits),
        })
        .expect("not a host error")
    }

    #[test]
    fn output_is_checked_for_size_then_json() {
        assert_eq!(run(Ok(Ok("[1,2]".into())), 5).code(), "ok");
        assert_eq!(run(Ok(Ok("[1,2,3]".into())), 5).code(), "output_too_large");
        assert_eq!(run(Ok(Ok("not json".into())), 100).code(), "invalid_output");
    }

    #[test]
    fn tool_errors_keep_kind_and_cap_message() {
        let outcome = run(Ok(Err(WitError::Denied("é".repeat(10)))), 5);
        let Outcome::ToolError { error, .. } = outcome else {
            panic!("expected a tool error");
        };
        assert_eq!(error.kind, ToolErrorKind::Denied);
        assert_eq!(error.message, "éé");
    }
}
