//! The one invoke path every tool takes: limits → admission → execute →
//! outcome → attestation. The component runtime and the native sandbox are
//! the two executors behind it ([`Runner`]); everything before and after
//! the execution — which limits apply, Cedar and approvals, what is
//! journaled — is written once here, so the two cannot drift apart.

use crate::Host;
use crate::approvals::GrantBinding;
use crate::egress::{Credentials, Requester};
use crate::gate::{Admission, admit};
use crate::invocation::Invocation;
use crate::limits::Limits;
use crate::native::NativeTool;
use crate::outcome::{InvokeError, Outcome};
use crate::policy::ToolFacts;
use crate::servers::HostedTool;
use crate::telemetry::InvocationSummary;
use crate::tool::Tool;
use crate::trail::{self, Admitted, Execution};
use std::time::SystemTime;

/// A loaded tool, as the executor that runs it.
#[derive(Clone, Copy, Debug)]
pub(crate) enum Runner<'a> {
    /// A WASI component in wasmtime.
    Component(&'a Tool),
    /// A native program in the platform sandbox.
    Native(&'a NativeTool),
    /// A tool of an MCP server airlock hosts.
    Hosted(&'a HostedTool),
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
    pub policies: &'a std::sync::Arc<crate::policy::PolicyEngine>,
}

impl Admit<'_> {
    /// Who the egress hook acts for during this run.
    pub(crate) fn requester(&self, tool: &ToolFacts, credentials: Credentials) -> Requester {
        Requester {
            policies: std::sync::Arc::clone(self.policies),
            principal: self.invocation.principal.clone(),
            tool: tool.clone(),
            context: self.invocation.context.clone(),
            credentials,
        }
    }
}

impl Runner<'_> {
    fn facts(&self) -> &ToolFacts {
        match self {
            Runner::Component(tool) => tool.facts(),
            Runner::Native(tool) => tool.facts(),
            Runner::Hosted(tool) => tool.facts(),
        }
    }

    fn binding(&self) -> GrantBinding {
        match self {
            Runner::Component(tool) => tool.grants().binding(),
            Runner::Native(tool) => tool.binding(),
            Runner::Hosted(tool) => tool.binding(),
        }
    }

    /// What an approval of a run with `limits` binds: the tool's grant,
    /// its name, and the limits the run gets (its timeout, memory, fuel,
    /// input and output), so a tool reloaded with wider limits, or run
    /// with them, needs a new approval.
    fn approval_binding(&self, limits: &Limits) -> GrantBinding {
        self.binding().and(
            &format!("limits: {}", limits.summary()),
            [
                format!("tool {}", self.facts().name),
                format!("limits {limits:?}"),
            ],
        )
    }

    fn execution(&self) -> Execution {
        match self {
            Runner::Component(_) => trail::WASM,
            Runner::Native(tool) => tool.execution(),
            Runner::Hosted(tool) => tool.execution(),
        }
    }

    /// The process limits of a native program (a tool, or a hosted
    /// server); none for a component.
    fn process_limits(&self) -> Option<&airlock_sandbox::ProcessLimits> {
        match self {
            Runner::Component(_) => None,
            Runner::Native(tool) => Some(tool.process_limits()),
            Runner::Hosted(tool) => Some(&tool.server().config().limits),
        }
    }
}

impl Host {
    /// Runs `runner` once on `invocation`: the skeleton behind
    /// [`Host::invoke`], [`Host::invoke_native`] and
    /// [`ConfiguredTool::invoke`](crate::ConfiguredTool::invoke).
    pub(crate) async fn run(
        &self,
        runner: Runner<'_>,
        invocation: Invocation,
    ) -> Result<Outcome, InvokeError> {
        let invocation_id = ulid::Ulid::new().to_string();
        let started = SystemTime::now();
        // Kept before the invocation is handed on, for telemetry only.
        let principal = self.telemetry().map(|_| invocation.principal.to_string());
        let result = self
            .run_as(runner, invocation, &invocation_id, started)
            .await;
        if let (Some(telemetry), Some(principal)) = (self.telemetry(), principal) {
            telemetry.finished(InvocationSummary::of(
                runner.facts(),
                principal,
                invocation_id,
                started,
                &result,
            ));
        }
        result
    }

    /// [`Host::run`] as invocation `invocation_id`, begun at `started`.
    async fn run_as(
        &self,
        runner: Runner<'_>,
        invocation: Invocation,
        invocation_id: &str,
        started: SystemTime,
    ) -> Result<Outcome, InvokeError> {
        let limits = self.limits_for(runner, invocation.limits.as_ref())?;
        let policies = self.policies();
        let facts = runner.facts();
        let admitted = match admit(
            &policies,
            self.approvals(),
            self.journal(),
            facts,
            &|| runner.approval_binding(&limits),
            &invocation,
            invocation_id,
            &limits,
        )
        .await?
        {
            Admission::Run(admitted) => admitted,
            Admission::Refused(outcome) => return Ok(*outcome),
        };
        let admit = Admit {
            invocation: &invocation,
            invocation_id,
            limits: &limits,
            admitted: &admitted,
            policies: &policies,
        };
        let executed = match runner {
            Runner::Component(tool) => Executed::Ran(self.execute_component(tool, &admit).await?),
            Runner::Native(tool) => self.execute_native(tool, &admit).await?,
            Runner::Hosted(tool) => self.execute_hosted(tool, &admit).await?,
        };
        match executed {
            Executed::Ran(outcome) => {
                if let Some(journal) = self.journal() {
                    trail::record_run(
                        journal,
                        facts,
                        runner.execution(),
                        &invocation,
                        &outcome,
                        admitted,
                        started,
                    )
                    .await?;
                }
                Ok(outcome)
            }
            Executed::Refused(outcome) => {
                trail::journal_refusal(self.journal(), facts, &invocation, invocation_id, &outcome)
                    .await?;
                Ok(outcome)
            }
        }
    }

    /// The limits a run gets, checked against what this host can provide.
    /// A native tool's configured limits are a ceiling the invocation may
    /// only tighten (they may exceed a component's memory ceiling).
    fn limits_for(
        &self,
        runner: Runner<'_>,
        asked: Option<&Limits>,
    ) -> Result<Limits, InvokeError> {
        let default = self.default_limits().clone();
        let Some(process) = runner.process_limits() else {
            let limits = asked.cloned().unwrap_or(default);
            self.check_limits(&limits)?;
            return Ok(limits);
        };
        let ceiling = crate::native::call_limits(process, default);
        let Some(asked) = asked else {
            return Ok(ceiling);
        };
        self.check_limits(asked)?;
        Ok(Limits {
            timeout: asked.timeout.min(ceiling.timeout),
            max_output_bytes: asked.max_output_bytes.min(ceiling.max_output_bytes),
            max_stdio_bytes: asked.max_stdio_bytes.min(ceiling.max_stdio_bytes),
            ..asked.clone()
        })
    }
}
