//! The component executor: one call of the tool's export in a fresh
//! instance, under the admitted limits and grants.

use super::run::{CallTool, ExecContext, execute, outcome_of};
use super::tool::Tool;
use crate::approvals::GrantBinding;
use crate::kernel::{Admit, Executed, Executor, Kernel, Running};
use crate::policy::ToolFacts;
use crate::trail::{self, Execution};

impl Executor for Tool {
    fn facts(&self) -> &ToolFacts {
        &self.inner.facts
    }

    fn binding(&self) -> GrantBinding {
        self.grants().binding()
    }

    fn execution(&self) -> Execution {
        trail::WASM
    }

    fn execute<'a>(&'a self, kernel: &'a Kernel, admit: &'a Admit<'a>) -> Running<'a> {
        Box::pin(async move {
            let invocation = admit.invocation;
            let cx = ExecContext {
                engine: &self.inner.engine,
                pre: &self.inner.pre,
                invocation_id: admit.invocation_id,
                grants: &self.inner.grants,
                limits: admit.limits,
                fuel_metering: kernel.fuel_metering(),
                network: kernel.network(),
                requester: admit.requester(&self.inner.facts, kernel.credentials(self.grants())),
                cancel: &invocation.cancel,
            };
            outcome_of(execute(&cx, CallTool(&invocation.input)).await).map(Executed::Ran)
        })
    }
}
