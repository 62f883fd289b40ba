//! The kernel: what every call needs, whichever executor runs it. A
//! [`Kernel`] holds the policies, approvals, journal, network, vault,
//! telemetry and airlock's protected files; [`Kernel::run`] is the one path
//! every tool takes (limits → admission → execute → journal); an
//! [`Executor`] is a kind of tool behind it. The kernel names no executor:
//! the component runtime (`runtime/`), native programs (`native/`) and
//! hosted MCP servers (`servers/`) implement [`Executor`] from below, so a
//! new kind of tool is one new folder.

mod executor;
mod run;

pub(crate) use executor::{Admit, Executed, Executor, Running};

use crate::approvals::ApprovalStore;
use crate::egress::Network;
use crate::journal::{EntryKind, Journal};
use crate::limits::Limits;
use crate::policy::PolicyEngine;
use crate::protected::ProtectedPaths;
use crate::store::{Store, StoreError};
use crate::telemetry::Telemetry;
use crate::vault::Vault;
use std::path::PathBuf;
use std::sync::{Arc, PoisonError, RwLock};

/// What every call needs, shared by the host and the tools it loaded.
/// Read through its methods only: the fields are the kernel's.
pub(crate) struct Kernel {
    parts: Parts,
    /// Swapped whole on reload; each invocation keeps the one it started with.
    policies: RwLock<Arc<PolicyEngine>>,
    /// Kept in `parts.store`.
    approvals: Option<Arc<dyn ApprovalStore>>,
}

/// What the host's builder hands the kernel, once, besides its policies.
pub(crate) struct Parts {
    pub(crate) default_limits: Limits,
    pub(crate) fuel_metering: bool,
    pub(crate) network: Network,
    pub(crate) store: Option<Store>,
    pub(crate) journal: Option<Journal>,
    pub(crate) vault: Option<Arc<Vault>>,
    pub(crate) native_bridge: Option<PathBuf>,
    pub(crate) native_sandbox: Option<airlock_sandbox::Backend>,
    pub(crate) telemetry: Option<Telemetry>,
    pub(crate) protected: ProtectedPaths,
    /// Where intercepting proxies' trust bundles are written: `trust/` in
    /// the state directory (out of every sandbox's sight), if there is one.
    pub(crate) trust_dir: Option<PathBuf>,
}

impl Kernel {
    /// The kernel of these parts under `policies`; its approvals are kept
    /// in its store.
    pub(crate) fn new(parts: Parts, policies: Arc<PolicyEngine>) -> Self {
        Self {
            approvals: parts.store.as_ref().map(crate::approvals::kept_in),
            policies: RwLock::new(policies),
            parts,
        }
    }

    /// The limits a call runs under unless it says otherwise.
    pub(crate) fn default_limits(&self) -> &Limits {
        &self.parts.default_limits
    }

    /// Whether components are compiled with fuel metering.
    pub(crate) fn fuel_metering(&self) -> bool {
        self.parts.fuel_metering
    }

    /// The state store, when there is a state directory.
    pub(crate) fn store(&self) -> Option<&Store> {
        self.parts.store.as_ref()
    }

    /// The policies in force now.
    pub(crate) fn policies(&self) -> Arc<PolicyEngine> {
        Arc::clone(&self.policies.read().unwrap_or_else(PoisonError::into_inner))
    }

    /// Puts `policies` in force, journaled when they differ from the last
    /// ones recorded.
    pub(crate) fn set_policies(&self, policies: Arc<PolicyEngine>) -> Result<(), StoreError> {
        if let Some(journal) = &self.parts.journal {
            journal_policies(journal, &policies)?;
        }
        *self
            .policies
            .write()
            .unwrap_or_else(PoisonError::into_inner) = policies;
        Ok(())
    }

    /// How names are resolved and checked addresses dialled.
    pub(crate) fn network(&self) -> &Network {
        &self.parts.network
    }

    /// The approval store, when there is a state directory.
    pub(crate) fn approvals(&self) -> Option<&dyn ApprovalStore> {
        self.approvals.as_deref()
    }

    /// The journal, when there is a state directory.
    pub(crate) fn journal(&self) -> Option<&Journal> {
        self.parts.journal.as_ref()
    }

    /// The vault credentials are injected from, if any.
    pub(crate) fn vault(&self) -> Option<&Arc<Vault>> {
        self.parts.vault.as_ref()
    }

    /// Where intercepting proxies' trust bundles are written, if not in a
    /// private temporary directory.
    pub(crate) fn trust_dir(&self) -> Option<&std::path::Path> {
        self.parts.trust_dir.as_deref()
    }

    /// What a tool with `grants` may have injected: its credential
    /// bindings, their secrets from the vault.
    pub(crate) fn credentials(&self, grants: &crate::grants::Grants) -> crate::egress::Credentials {
        crate::egress::Credentials {
            bindings: grants.credentials_arc(),
            secrets: self
                .vault()
                .map(|vault| Arc::clone(vault) as Arc<dyn crate::egress::Secrets>),
        }
    }

    /// The telemetry exporter, when one is configured.
    pub(crate) fn telemetry(&self) -> Option<&Telemetry> {
        self.parts.telemetry.as_ref()
    }

    /// airlock's own files, which no tool may see.
    pub(crate) fn protected(&self) -> &ProtectedPaths {
        &self.parts.protected
    }

    /// The bridge program for strict native tools, if configured.
    pub(crate) fn native_bridge(&self) -> Option<PathBuf> {
        self.parts.native_bridge.clone()
    }

    /// The sandbox for native programs: the injected one, or this machine's.
    pub(crate) fn native_sandbox(
        &self,
    ) -> Result<airlock_sandbox::Backend, airlock_sandbox::SandboxError> {
        match &self.parts.native_sandbox {
            Some(backend) => Ok(Arc::clone(backend)),
            None => airlock_sandbox::detect(),
        }
    }
}

/// Journals a policy (re)load when the policies differ from the last ones
/// recorded, not on every start.
pub(crate) fn journal_policies(
    journal: &Journal,
    policies: &PolicyEngine,
) -> Result<(), StoreError> {
    let digest = policies.digest();
    let last = journal.store().last_of_kind(EntryKind::PolicyReload)?;
    if !last.is_some_and(|e| e.payload.contains(&digest)) {
        let reload = serde_json::json!({ "policies": policies.policy_ids(), "digest": digest });
        journal.record(&[(EntryKind::PolicyReload, reload)])?;
    }
    Ok(())
}
