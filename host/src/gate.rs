//! Admission: may this invocation run? Cedar decides; a deny that policies
//! mark approvable becomes (or finds) a human approval.

use crate::approvals::{ApprovalRequest, ApprovalStore, GrantBinding, Lookup, Scope, Status};
use crate::invocation::{Invocation, Wait};
use crate::journal::Journal;
use crate::limits::Limits;
use crate::outcome::{
    DenialReason, InvokeError, LimitExceeded, Outcome, PendingApproval, PolicyDenial, RunReport,
};
use crate::policy::{Authorization, PolicyEngine, ToolFacts};
use crate::trail::{self, Admitted};
use std::time::{Duration, Instant, SystemTime};

/// How often a waiting invocation tells its observer it still waits.
const WAIT_REPORT_EVERY: Duration = Duration::from_secs(5);

/// What admission concluded.
pub(crate) enum Admission {
    /// Run.
    Run(Admitted),
    /// Do not run; this is the outcome.
    Refused(Box<Outcome>),
}

fn refused(
    reason: DenialReason,
    policies: Vec<String>,
    message: String,
    approval_id: Option<String>,
    report: RunReport,
) -> Admission {
    Admission::Refused(Box::new(Outcome::Denied {
        denial: PolicyDenial {
            reason,
            policies,
            message,
            approval_id,
        },
        report,
    }))
}

fn explain(decision: &Authorization, who: &str, tool: &str) -> String {
    decision.explain_denial(who, &format!("run `{tool}`"))
}

/// Everything before any tool runs, component or native: the input's
/// size and JSON checks, then Cedar `tool.execute` and the approvals. A
/// refusal is journaled (when there is a journal) before it is returned.
#[allow(clippy::too_many_arguments)] // the host's parts and one invocation's
pub(crate) async fn admit(
    policies: &PolicyEngine,
    approvals: Option<&dyn ApprovalStore>,
    journal: Option<&Journal>,
    facts: &ToolFacts,
    grant: &(dyn Fn() -> GrantBinding + Sync),
    invocation: &Invocation,
    invocation_id: &str,
    limits: &Limits,
) -> Result<Admission, InvokeError> {
    if invocation.input.len() > limits.max_input_bytes {
        return Ok(Admission::Refused(Box::new(Outcome::LimitExceeded {
            limit: LimitExceeded::InputTooLarge {
                limit: limits.max_input_bytes,
                actual: invocation.input.len(),
            },
            report: RunReport::not_started_as(invocation_id.to_string(), limits.clone()),
        })));
    }
    crate::input::check(&invocation.input).map_err(|e| InvokeError::InvalidInput {
        message: e.to_string(),
    })?;
    let admission = decide(
        policies,
        approvals,
        facts,
        grant,
        invocation,
        invocation_id,
        limits,
    )
    .await?;
    if let Admission::Refused(outcome) = &admission {
        trail::journal_refusal(journal, facts, invocation, invocation_id, outcome).await?;
    }
    Ok(admission)
}

/// Decides whether `invocation` may run under the policies and approvals.
async fn decide(
    policies: &PolicyEngine,
    approvals: Option<&dyn ApprovalStore>,
    facts: &ToolFacts,
    grant: &(dyn Fn() -> GrantBinding + Sync),
    invocation: &Invocation,
    invocation_id: &str,
    limits: &Limits,
) -> Result<Admission, InvokeError> {
    let who = invocation.principal.to_string();
    let report = || RunReport::not_started_as(invocation_id.to_string(), limits.clone());
    let first = policies.check_execute(&invocation.principal, facts, &invocation.context, false);
    if first.allowed {
        return Ok(Admission::Run(Admitted {
            policies: first.policies,
            approval_id: None,
        }));
    }
    if !first.approval_possible {
        let message = explain(&first, &who, &facts.name);
        return Ok(refused(
            DenialReason::Policy,
            first.policies,
            message,
            None,
            report(),
        ));
    }
    let Some(store) = approvals else {
        let message = format!(
            "`{}` needs a human approval, but this host keeps no approvals: give it a state directory",
            facts.name
        );
        return Ok(refused(
            DenialReason::ApprovalUnavailable,
            first.policies,
            message,
            None,
            report(),
        ));
    };

    let request = ApprovalRequest::new(
        &who,
        &invocation.context.session_id,
        &facts.name,
        &facts.sha256,
        &facts.capability_names(),
        grant(),
        &invocation.input,
    );
    let deadline = invocation
        .wait_for_approval
        .map(|wait| Instant::now() + wait);
    let check_wanted = |id: &str| match &invocation.approval {
        Some(wanted) if wanted != id => Err(InvokeError::ApprovalMismatch {
            wanted: wanted.clone(),
            found: Some(id.to_string()),
        }),
        _ => Ok(()),
    };
    let waiting_since = Instant::now();
    let mut last_report: Option<Instant> = None;
    let mut news = store.news();
    loop {
        // Seen before looking: news arriving after the lookup wakes us.
        if let Some(news) = news.as_mut() {
            news.borrow_and_update();
        }
        match store.lookup(&request, SystemTime::now())? {
            Lookup::Approved(approval) => {
                check_wanted(&approval.id)?;
                // Two invocations may race for one `once`: only one uses it.
                if approval.status == Status::Allowed(Scope::Once)
                    && !store.consume(&approval.id)?
                {
                    continue;
                }
                let second =
                    policies.check_execute(&invocation.principal, facts, &invocation.context, true);
                if !second.allowed {
                    let message = explain(&second, &who, &facts.name);
                    return Ok(refused(
                        DenialReason::Policy,
                        second.policies,
                        message,
                        Some(approval.id),
                        report(),
                    ));
                }
                return Ok(Admission::Run(Admitted {
                    policies: second.policies,
                    approval_id: Some(approval.id),
                }));
            }
            Lookup::Denied(approval) => {
                check_wanted(&approval.id)?;
                let reason = match &approval.status {
                    Status::Denied(reason) => reason.clone(),
                    _ => String::new(),
                };
                let message = format!("an operator denied approval {}: {reason}", approval.id);
                return Ok(refused(
                    DenialReason::ApprovalDenied,
                    first.policies,
                    message,
                    Some(approval.id),
                    report(),
                ));
            }
            lookup @ (Lookup::Pending(_) | Lookup::Unknown) => {
                // A run pinned to an approval that does not cover this
                // request must not leave a new pending approval behind.
                if let (Some(wanted), Lookup::Unknown) = (&invocation.approval, &lookup) {
                    let used = store.get(wanted)?.is_some_and(|a| {
                        a.used
                            && a.status == Status::Allowed(Scope::Once)
                            && a.request.request_hash == request.request_hash
                            && a.request.grant_digest == request.grant_digest
                    });
                    return Err(if used {
                        InvokeError::ApprovalUsed { id: wanted.clone() }
                    } else {
                        InvokeError::ApprovalMismatch {
                            wanted: wanted.clone(),
                            found: None,
                        }
                    });
                }
                // Recorded already: asking again could record a second
                // pending approval if an operator decides this one in
                // between (it would linger after the call ran).
                let approval = match lookup {
                    Lookup::Pending(approval) => approval,
                    _ => store.request(&request)?,
                };
                check_wanted(&approval.id)?;
                if deadline.is_some_and(|d| Instant::now() < d) {
                    if let Some(observer) = &invocation.on_wait
                        && last_report.is_none_or(|at| at.elapsed() >= WAIT_REPORT_EVERY)
                    {
                        last_report = Some(Instant::now());
                        (observer.0)(&Wait::Approval {
                            id: approval.id.clone(),
                            tool: facts.name.clone(),
                            waited: waiting_since.elapsed(),
                        });
                    }
                    tokio::select! {
                        () = invocation.cancel.cancelled() => {
                            return Ok(Admission::Refused(Box::new(Outcome::LimitExceeded {
                                limit: LimitExceeded::Cancelled,
                                report: report(),
                            })));
                        }
                        () = tokio::time::sleep(store.poll_interval()) => continue,
                        () = changed(&mut news) => continue,
                    }
                }
                return Ok(Admission::Refused(Box::new(Outcome::PendingApproval {
                    approval: PendingApproval::from(approval),
                    report: report(),
                })));
            }
        }
    }
}

/// Resolves when `news` moves; never without news to follow.
async fn changed(news: &mut Option<tokio::sync::watch::Receiver<u64>>) {
    let moved = match news {
        Some(news) => news.changed().await.is_ok(),
        None => false,
    };
    if !moved {
        std::future::pending::<()>().await;
    }
}
