//! The native executor: a program in the platform sandbox, under the same
//! admission, journal and attestations as components.

use super::run::outcome_of;
use super::trust::TrustFile;
use super::{NativeNetwork, NativeTool};
use crate::approvals::GrantBinding;
use crate::egress::{EgressHook, EgressProxy};
use crate::kernel::{Admit, Executed, Executor, Kernel, Running};
use crate::outcome::{InvokeError, Outcome, RunReport};
use crate::policy::ToolFacts;
use crate::trail::Execution;
use crate::vocabulary::{Enforcement, ExecutorKind};
use airlock_sandbox::NetworkMode;
use tokio_util::task::AbortOnDropHandle;

/// Why an unsandboxed run is refused even though policies allowed it.
const UNSANDBOXED_NEEDS_APPROVAL: &str = "an unsandboxed native tool runs only after a human approved it: make a policy require an approval for it";

impl Executor for NativeTool {
    fn facts(&self) -> &ToolFacts {
        &self.facts
    }

    fn binding(&self) -> GrantBinding {
        NativeTool::binding(self)
    }

    fn execution(&self) -> Execution {
        let Some(backend) = &self.backend else {
            return Execution {
                executor: ExecutorKind::NativeUnsandboxed,
                enforcement: Enforcement::None,
            };
        };
        let enforcement = match self.spec.network {
            _ if !self.sandboxed() => Enforcement::LimitsOnly,
            NativeNetwork::Strict => Enforcement::Strict,
            NativeNetwork::None => Enforcement::NetworkNone,
        };
        Execution {
            executor: ExecutorKind::Native(backend.kind()),
            enforcement,
        }
    }

    fn process_limits(&self) -> Option<&airlock_sandbox::ProcessLimits> {
        Some(&self.spec.limits)
    }

    fn execute<'a>(&'a self, kernel: &'a Kernel, admit: &'a Admit<'a>) -> Running<'a> {
        Box::pin(run(self, kernel, admit))
    }
}

/// The native executor: the checks only a program needs (an unsandboxed
/// run needs an approval; Cedar `process.exec`), then the sandbox with the
/// input on stdin; in `strict` mode the program's requests go through the
/// egress proxy and land in the report's egress records.
async fn run(
    tool: &NativeTool,
    kernel: &Kernel,
    admit: &Admit<'_>,
) -> Result<Executed, InvokeError> {
    let (invocation, invocation_id, limits) = (admit.invocation, admit.invocation_id, admit.limits);
    let spec = &tool.spec;
    let refuse = |message: String, policies: Vec<String>, approval_id| {
        Executed::Refused(Outcome::Denied {
            denial: crate::PolicyDenial {
                reason: crate::DenialReason::Policy,
                policies,
                message,
                approval_id,
            },
            report: RunReport::not_started_as(invocation_id.to_string(), limits.clone()),
        })
    };
    if !tool.sandboxed() && admit.admitted.approval_id.is_none() {
        return Ok(refuse(
            UNSANDBOXED_NEEDS_APPROVAL.into(),
            admit.admitted.policies.clone(),
            None,
        ));
    }
    let program = crate::policy::ProgramFacts {
        path: spec.program.display().to_string(),
        sha256: tool.facts.sha256.clone(),
        sandboxed: tool.sandboxed(),
    };
    let exec = admit.policies.check_exec(
        &invocation.principal,
        &tool.facts,
        &invocation.context,
        &program,
    );
    if !exec.allowed {
        let message = format!(
            "no policy permits running {} {}",
            if program.sandboxed {
                "program"
            } else {
                "unsandboxed program"
            },
            program.path
        );
        return Ok(refuse(
            message,
            exec.policies,
            admit.admitted.approval_id.clone(),
        ));
    }

    let proxy = match spec.network {
        NativeNetwork::Strict => {
            let hook = EgressHook::new(
                invocation_id,
                tool.grants.network_arc(),
                kernel.network().clone(),
                admit.requester(&tool.facts, kernel.credentials(&tool.grants)),
            );
            let failed = |e: std::io::Error| InvokeError::Native {
                message: format!("starting the egress proxy failed: {e}"),
            };
            let proxy = EgressProxy::start(hook).map_err(failed)?;
            let trust = TrustFile::for_proxy(&proxy, kernel.trust_dir()).map_err(failed)?;
            Some((proxy, trust))
        }
        NativeNetwork::None => None,
    };
    let bridge = tool.bridge.clone();
    tool.digested.verify()?;
    let mut plan = tool.plan(limits)?;
    if let Some((proxy, trust)) = &proxy {
        let bridge = bridge.ok_or_else(|| InvokeError::Native {
            message: "strict network needs the bridge program: HostBuilder::native_bridge, or run from the airlock binary".into(),
        })?;
        plan.network = NetworkMode::Strict {
            channel_fd: proxy.channel_fd(),
            bridge,
            trust: trust.as_ref().map(|t| t.path().to_path_buf()),
        };
    }
    let backend = tool.backend.clone();
    let input = invocation.input.clone().into_bytes();
    // The sandbox runs on a blocking thread: the caller's token fires the
    // sandbox's own cancel, which kills everything the program started.
    let cancel = airlock_sandbox::Cancel::new();
    plan = plan.cancel_on(cancel.clone());
    let token = invocation.cancel.clone();
    let _forwarder = AbortOnDropHandle::new(tokio::spawn(async move {
        token.cancelled().await;
        cancel.cancel();
    }));
    let output = tokio::task::spawn_blocking(move || match backend {
        Some(backend) => backend.run(&plan, &input),
        None => airlock_sandbox::run_unsandboxed(&plan, &input),
    })
    .await
    .map_err(|e| InvokeError::Native {
        message: format!("the sandbox task failed: {e}"),
    })??;
    let egress = proxy
        .as_ref()
        .map(|(proxy, _)| proxy.records())
        .unwrap_or_default();
    drop(proxy);
    Ok(Executed::Ran(outcome_of(
        output,
        egress,
        invocation_id.to_string(),
        limits.clone(),
    )))
}
