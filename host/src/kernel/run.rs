//! [`Kernel::run`]: the one invoke path every tool takes: limits →
//! admission → execute → outcome → attestation. Which limits apply, Cedar
//! and approvals, what is journaled: written once here.

use super::Kernel;
use super::executor::{Admit, Executed, Executor, approval_binding};
use crate::gate::{Admission, admit};
use crate::invocation::Invocation;
use crate::limits::{Limits, MEMORY_CEILING, TABLE_ELEMENTS_CEILING, call_limits};
use crate::outcome::{InvokeError, Outcome};
use crate::telemetry::InvocationSummary;
use crate::trail;
use std::time::SystemTime;

impl Kernel {
    /// Runs `tool` once on `invocation`.
    pub(crate) async fn run(
        &self,
        tool: &dyn Executor,
        invocation: Invocation,
    ) -> Result<Outcome, InvokeError> {
        let invocation_id = ulid::Ulid::new().to_string();
        let started = SystemTime::now();
        // Kept before the invocation is handed on, for telemetry only.
        let principal = self.telemetry().map(|_| invocation.principal.to_string());
        let result = self.run_as(tool, invocation, &invocation_id, started).await;
        if let (Some(telemetry), Some(principal)) = (self.telemetry(), principal) {
            telemetry.finished(InvocationSummary::of(
                tool.facts(),
                principal,
                invocation_id,
                started,
                &result,
            ));
        }
        result
    }

    /// [`Kernel::run`] as invocation `invocation_id`, begun at `started`.
    async fn run_as(
        &self,
        tool: &dyn Executor,
        invocation: Invocation,
        invocation_id: &str,
        started: SystemTime,
    ) -> Result<Outcome, InvokeError> {
        let limits = self.limits_for(tool, invocation.limits.as_ref())?;
        let policies = self.policies();
        let facts = tool.facts();
        let admitted = match admit(
            &policies,
            self.approvals(),
            self.journal(),
            facts,
            &|| approval_binding(tool, &limits),
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
        let executed = tool.execute(self, &admit).await?;
        match executed {
            Executed::Ran(outcome) => {
                if let Some(journal) = self.journal() {
                    trail::record_run(
                        journal,
                        facts,
                        tool.execution(),
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
    /// A native program's configured limits are a ceiling the invocation
    /// may only tighten (they may exceed a component's memory ceiling).
    fn limits_for(
        &self,
        tool: &dyn Executor,
        asked: Option<&Limits>,
    ) -> Result<Limits, InvokeError> {
        let default = self.default_limits().clone();
        let Some(process) = tool.process_limits() else {
            let limits = asked.cloned().unwrap_or(default);
            self.check_limits(&limits)?;
            return Ok(limits);
        };
        let ceiling = call_limits(process, default);
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

    /// Refuses limits this host cannot provide: fuel without metering, or a
    /// memory or table size over its ceiling.
    fn check_limits(&self, limits: &Limits) -> Result<(), InvokeError> {
        if limits.fuel.is_some() && !self.fuel_metering() {
            return Err(InvokeError::FuelNotEnabled);
        }
        for (limit, value, ceiling) in [
            ("max_memory_bytes", limits.max_memory_bytes, MEMORY_CEILING),
            (
                "max_table_elements",
                limits.max_table_elements,
                TABLE_ELEMENTS_CEILING,
            ),
        ] {
            if value > ceiling {
                return Err(InvokeError::LimitAboveCeiling {
                    limit,
                    value,
                    ceiling,
                });
            }
        }
        Ok(())
    }
}
