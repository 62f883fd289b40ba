//! The trail an invocation leaves: its attestation and egress records in
//! the journal, committed under the journal's
//! [`CommitMode`](crate::journal::CommitMode) before the outcome is returned.

use crate::attest::{Attestation, egress_digest, sha256_hex};
use crate::invocation::Invocation;
use crate::journal::{EntryKind, Journal};
use crate::outcome::{LimitExceeded, Outcome, PolicyDenial};
use crate::policy::ToolFacts;
use crate::store::StoreError;
use crate::vocabulary::{Enforcement, ExecutorKind};
use serde_json::{Value, json};
use std::time::SystemTime;

/// Why an invocation may run, as admission (`gate`) concluded and its
/// attestation records: the policies that allowed it, and the approval it
/// runs under.
pub(crate) struct Admitted {
    pub(crate) policies: Vec<String>,
    pub(crate) approval_id: Option<String>,
}

/// What ran a tool and how it was confined, as attestations name them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Execution {
    /// What ran it.
    pub executor: ExecutorKind,
    /// How it was confined.
    pub enforcement: Enforcement,
}

/// A WASI component in wasmtime.
pub(crate) const WASM: Execution = Execution {
    executor: ExecutorKind::WasmComponent,
    enforcement: Enforcement::WasmSandbox,
};

fn rfc3339(time: SystemTime) -> String {
    humantime::format_rfc3339_millis(time).to_string()
}

/// Journals an invocation that ran: its attestation, then one entry per
/// egress record, in one transaction.
pub(crate) async fn record_run(
    journal: &Journal,
    facts: &ToolFacts,
    execution: Execution,
    invocation: &Invocation,
    outcome: &Outcome,
    admitted: Admitted,
    started: SystemTime,
) -> Result<(), StoreError> {
    let egress: Vec<Value> = outcome
        .report()
        .egress
        .iter()
        .map(|r| r.to_json())
        .collect();
    let attestation = Attestation {
        id: outcome.report().invocation_id.clone(),
        tool: facts.name.clone(),
        tool_sha256: facts.sha256.clone(),
        source: facts.source.clone(),
        signer: facts.signer.clone(),
        world: facts.world.to_string(),
        principal: invocation.principal.to_string(),
        input_sha256: sha256_hex(invocation.input.as_bytes()),
        output_sha256: outcome.output().map(|o| sha256_hex(o.as_bytes())),
        outcome: outcome.code().to_string(),
        executor: execution.executor.as_str().to_string(),
        enforcement: execution.enforcement.as_str().to_string(),
        policies: admitted.policies,
        approval_id: admitted.approval_id,
        egress_digest: egress_digest(&egress),
        egress_count: egress.len(),
        started: rfc3339(started),
        ended: rfc3339(SystemTime::now()),
        airlock_version: env!("CARGO_PKG_VERSION").to_string(),
    };
    let mut entries = vec![(
        EntryKind::Invocation,
        json!({ "attestation": serde_json::to_value(&attestation).unwrap_or(Value::Null) }),
    )];
    entries.extend(egress.into_iter().map(|record| (EntryKind::Egress, record)));
    journal.commit(entries).await
}

/// Journals `outcome` when it is a refusal and there is a journal.
pub(crate) async fn journal_refusal(
    journal: Option<&Journal>,
    facts: &ToolFacts,
    invocation: &Invocation,
    invocation_id: &str,
    outcome: &Outcome,
) -> Result<(), StoreError> {
    match (journal, outcome) {
        (Some(journal), Outcome::Denied { denial, .. }) => {
            record_denial(journal, facts, invocation, invocation_id, denial).await
        }
        // Cancelled while it waited (for an approval): it never ran, and
        // the record says who gave up on what.
        (
            Some(journal),
            Outcome::LimitExceeded {
                limit: LimitExceeded::Cancelled,
                ..
            },
        ) => {
            let entry = json!({
                "invocation_id": invocation_id,
                "principal": invocation.principal.to_string(),
                "tool": facts.name,
                "tool_sha256": facts.sha256,
                "reason": LimitExceeded::Cancelled.code(),
                "message": "the caller cancelled before the tool ran",
            });
            journal.commit(vec![(EntryKind::Denial, entry)]).await
        }
        _ => Ok(()),
    }
}

/// Journals a refusal before the tool ran.
async fn record_denial(
    journal: &Journal,
    facts: &ToolFacts,
    invocation: &Invocation,
    invocation_id: &str,
    denial: &PolicyDenial,
) -> Result<(), StoreError> {
    let entry = json!({
        "invocation_id": invocation_id,
        "principal": invocation.principal.to_string(),
        "tool": facts.name,
        "tool_sha256": facts.sha256,
        "reason": denial.reason.code(),
        "policies": denial.policies,
        "approval_id": denial.approval_id,
        "message": denial.message,
    });
    journal.commit(vec![(EntryKind::Denial, entry)]).await
}
