//! The one path every decision on a pending approval takes in a running
//! server, whoever decides: the `until` window cap, Cedar's
//! `approval.decide`, then the store (which journals the decision under
//! the decider's name).

use super::Server;
use crate::approvals::{Approval, ApprovalError, OperatorDecision};
use crate::policy::{ApprovalFacts, Principal, PrincipalKind};
use crate::store::StoreError;
use std::time::SystemTime;

/// `approval.decide`'s `context.channel` for operators on the socket.
pub const CHANNEL_OPERATOR: &str = "operator-socket";
/// `approval.decide`'s `context.channel` for the human at the MCP client.
pub const CHANNEL_MCP_CLIENT: &str = "mcp-client";
/// `approval.decide`'s `context.channel` for a paired browser.
pub const CHANNEL_CONSOLE: &str = "console";

/// Who decides an approval.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decider {
    /// An operator, identified by the operator socket's peer credentials.
    Operator(String),
    /// A browser `operator` paired with the console, identified by its
    /// device cookie.
    Device {
        /// The device's id: the principal is `Device::"ID"`.
        id: String,
        /// The operator who paired it (the device is in that operator).
        operator: String,
    },
    /// The human at the MCP client that made the call the approval holds,
    /// asked through MCP elicitation (`approvals = "client"`).
    McpClient {
        /// The authenticated principal of the call.
        principal: Principal,
        /// The client's implementation (`name version`), as it reports it.
        client: Option<String>,
    },
}

impl Decider {
    /// The principal Cedar sees.
    pub(super) fn principal(&self) -> Principal {
        match self {
            Decider::Operator(name) => Principal::operator(name),
            Decider::Device { id, .. } => Principal::new(PrincipalKind::Device, id),
            Decider::McpClient { principal, .. } => principal.clone(),
        }
    }

    /// The groups the server vouches the decider is in.
    fn member_of(&self) -> Vec<Principal> {
        match self {
            Decider::Device { operator, .. } => vec![Principal::operator(operator)],
            _ => Vec::new(),
        }
    }

    /// The channel Cedar sees (`context.channel`).
    fn channel(&self) -> &'static str {
        match self {
            Decider::Operator(_) => CHANNEL_OPERATOR,
            Decider::Device { .. } => CHANNEL_CONSOLE,
            Decider::McpClient { .. } => CHANNEL_MCP_CLIENT,
        }
    }

    /// What the approval record and its journal entry carry as
    /// `decided_by`: `operator:alice`, `operator:alice on device:ID` (the
    /// console), or `mcp-client:Agent::"bot"` with the client's name and
    /// version when it gave them.
    pub fn recorded_as(&self) -> String {
        match self {
            Decider::Operator(name) => format!("operator:{name}"),
            Decider::Device { id, operator } => format!("operator:{operator} on device:{id}"),
            Decider::McpClient {
                principal,
                client: None,
            } => format!("{CHANNEL_MCP_CLIENT}:{principal}"),
            Decider::McpClient {
                principal,
                client: Some(client),
            } => format!("{CHANNEL_MCP_CLIENT}:{principal} via {client}"),
        }
    }

    fn described(&self) -> String {
        match self {
            Decider::Operator(name) => format!("operator `{name}`"),
            Decider::Device { id, operator } => {
                format!("device `{id}` of operator `{operator}`")
            }
            Decider::McpClient { principal, .. } => format!("the MCP client of {principal}"),
        }
    }
}

/// Why a decision was not recorded.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum DecideError {
    /// The approval does not exist, was decided already, or the window is
    /// too long.
    #[error(transparent)]
    Approval(#[from] ApprovalError),
    /// The state database failed.
    #[error(transparent)]
    Store(#[from] StoreError),
    /// The policies do not let this decider take this decision.
    #[error("{0}")]
    PolicyDenied(String),
}

impl DecideError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            DecideError::Approval(e) => e.code(),
            DecideError::Store(e) => e.code(),
            DecideError::PolicyDenied(_) => "policy_denied",
        }
    }
}

impl Server {
    /// Records `decider`'s `decision` on pending approval `id`, if the
    /// window is within `[serve] max_approval_window` and the policies let
    /// `decider` take it.
    pub fn decide(
        &self,
        decider: &Decider,
        id: &str,
        decision: &OperatorDecision,
    ) -> Result<Approval, DecideError> {
        decision.window_within(self.settings().max_approval_window)?;
        let host = self.host();
        // `Server::start` refuses a host without approvals.
        let store = host
            .approvals()
            .ok_or_else(|| ApprovalError::NotFound { id: id.to_string() })?;
        let approval = store
            .get(id)?
            .ok_or_else(|| ApprovalError::NotFound { id: id.to_string() })?;
        let facts = ApprovalFacts {
            id: approval.id.clone(),
            tool: approval.request.tool_name.clone(),
            requester: approval.request.principal.clone(),
            capabilities: approval.request.capabilities.clone(),
            tool_sha256: approval.request.tool_sha256.clone(),
        };
        let verdict = host.policies().check_decide(
            &decider.principal(),
            &decider.member_of(),
            &facts,
            decision.kind(),
            decider.channel(),
        );
        if !verdict.allowed {
            return Err(DecideError::PolicyDenied(verdict.explain_denial(
                &decider.described(),
                &format!("decide approval {id}"),
            )));
        }
        Ok(store.decide(id, decision, &decider.recorded_as(), SystemTime::now())?)
    }
}
