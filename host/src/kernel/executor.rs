//! [`Executor`]: the seam between the kernel and a kind of tool.

use super::Kernel;
use crate::approvals::GrantBinding;
use crate::egress::{Credentials, Requester};
use crate::invocation::Invocation;
use crate::limits::Limits;
use crate::outcome::{InvokeError, Outcome};
use crate::policy::{PolicyEngine, ToolFacts};
use crate::trail::{Admitted, Execution};
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;

/// A run in progress, as an executor hands it to the kernel.
pub(crate) type Running<'a> =
    Pin<Box<dyn Future<Output = Result<Executed, InvokeError>> + Send + 'a>>;

/// A loaded tool as the kernel runs it: what policies see of it, what an
/// approval of it binds, how attestations name what ran it, and the run.
/// Everything before and after the run (limits, Cedar, approvals, the
/// journal, telemetry) is the kernel's, so executors cannot drift apart.
pub(crate) trait Executor: Send + Sync {
    /// What policies see: name, world, capabilities, digest, sensitivity.
    fn facts(&self) -> &ToolFacts;

    /// What an approval binds besides the tool's name and the run's limits
    /// (the grants, and for programs how they run).
    fn binding(&self) -> GrantBinding;

    /// What ran the tool and how it was confined, for attestations.
    fn execution(&self) -> Execution;

    /// The process limits of a native program: its configured wall clock
    /// and output cap are a ceiling a call may only tighten. None for a
    /// component.
    fn process_limits(&self) -> Option<&airlock_sandbox::ProcessLimits> {
        None
    }

    /// Runs the tool once on an admitted invocation.
    fn execute<'a>(&'a self, kernel: &'a Kernel, admit: &'a Admit<'a>) -> Running<'a>;
}

/// What an approval of `tool`'s run with `limits` binds: the tool's grant,
/// its name, and the limits the run gets (its timeout, memory, fuel, input
/// and output), so a tool reloaded with wider limits, or run with them,
/// needs a new approval.
pub(crate) fn approval_binding(tool: &dyn Executor, limits: &Limits) -> GrantBinding {
    tool.binding().and(
        &format!("limits: {}", limits.summary()),
        [
            format!("tool {}", tool.facts().name),
            format!("limits {limits:?}"),
        ],
    )
}

/// What an executor did after admission.
pub(crate) enum Executed {
    /// The tool ran (to completion, a fault or a limit).
    Ran(Outcome),
    /// A check after admission refused it (e.g. Cedar `process.exec`); it
    /// never started.
    Refused(Outcome),
}

/// What an executor gets: the invocation as admitted.
pub(crate) struct Admit<'a> {
    pub invocation: &'a Invocation,
    pub invocation_id: &'a str,
    pub limits: &'a Limits,
    pub admitted: &'a Admitted,
    pub policies: &'a Arc<PolicyEngine>,
}

impl Admit<'_> {
    /// Who the egress hook acts for during this run.
    pub(crate) fn requester(&self, tool: &ToolFacts, credentials: Credentials) -> Requester {
        Requester {
            policies: Arc::clone(self.policies),
            principal: self.invocation.principal.clone(),
            tool: tool.clone(),
            context: self.invocation.context.clone(),
            credentials,
        }
    }
}
