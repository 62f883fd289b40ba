//! The one path every decision on a pending approval takes in a running
//! server, whoever decides: the `until` window cap, Cedar's
//! `approval.decide`, then the store (which journals the decision under
//! the decider's name).

use super::Server;
use airlock::approvals::{Approval, ApprovalError, OperatorDecision};
use airlock::policy::{ApprovalFacts, Channel, Principal, PrincipalKind};
use airlock::store::StoreError;
use std::time::SystemTime;

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
        /// The call they are asked about: they decide its approval only.
        call: AskedCall,
    },
}

/// The call a client's human is asked about, as its approval binds it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AskedCall {
    /// The tool's name.
    pub tool: String,
    /// The call's [`request_hash`](airlock::approvals::request_hash):
    /// principal, tool digest, input and capabilities.
    pub request_hash: String,
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
    fn channel(&self) -> Channel {
        match self {
            Decider::Operator(_) => Channel::OperatorSocket,
            Decider::Device { .. } => Channel::Console,
            Decider::McpClient { .. } => Channel::McpClient,
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
                ..
            } => format!("{}:{principal}", Channel::McpClient),
            Decider::McpClient {
                principal,
                client: Some(client),
                ..
            } => format!("{}:{principal} via {client}", Channel::McpClient),
        }
    }

    /// Whether this decider may decide `approval` at all, before the
    /// policies are asked: an MCP client only the approval of the call it
    /// made (its principal, tool and input), whatever id it presents.
    fn may_decide(&self, approval: &Approval) -> Result<(), DecideError> {
        let Decider::McpClient {
            principal, call, ..
        } = self
        else {
            return Ok(());
        };
        let request = &approval.request;
        if request.principal == principal.to_string()
            && request.tool_name == call.tool
            && request.request_hash == call.request_hash
        {
            return Ok(());
        }
        Err(DecideError::NotTheCall {
            id: approval.id.clone(),
        })
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
    /// An MCP client presented the id of an approval that is not its
    /// call's (another principal's, tool's or input's).
    #[error(
        "approval `{id}` is not the approval of the call this client made: a client decides only its own call's"
    )]
    NotTheCall {
        /// The id presented.
        id: String,
    },
    /// The approval was asked on a replica whose statement does not meet
    /// the `[fleet]` policy: nothing it asks for is released.
    #[error(
        "approval `{id}` was asked on replica `{replica}`, which may not serve under [fleet] ({reasons}); it is not decided"
    )]
    Unattested {
        /// The approval.
        id: String,
        /// The replica it was asked on.
        replica: String,
        /// Why that replica fails.
        reasons: String,
    },
}

impl DecideError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            DecideError::Approval(e) => e.code(),
            DecideError::Store(e) => e.code(),
            DecideError::PolicyDenied(_) => "policy_denied",
            DecideError::NotTheCall { .. } => "approval_mismatch",
            DecideError::Unattested { .. } => "replica_unattested",
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
        decider.may_decide(&approval)?;
        let catalog = self.catalog();
        if let (Some(policy), Some(store)) = (catalog.fleet.as_ref(), host.store())
            && store.shared().is_some()
            && let Some(failing) = super::fleet::unattested_asker(store, policy, id)?
        {
            return Err(DecideError::Unattested {
                id: id.to_string(),
                reasons: failing.reasons(),
                replica: failing.replica,
            });
        }
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
            &decider.channel(),
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

#[cfg(test)]
mod tests {
    use super::*;
    use airlock::approvals::{ApprovalRequest, GrantBinding, Status};

    fn approval(principal: &str, tool: &str, input: &str) -> Approval {
        Approval {
            id: "01APPROVAL".into(),
            created: String::new(),
            request: ApprovalRequest::new(
                principal,
                "s1",
                tool,
                "sha",
                &["network".into()],
                GrantBinding::new(String::new(), []),
                input,
            ),
            status: Status::Pending,
            decided_at: None,
            used: false,
            decided_by: None,
        }
    }

    #[test]
    fn a_client_decides_only_its_own_calls_approval() {
        let mine = approval("Agent::\"alice\"", "fetch", r#"{"url":"a"}"#);
        let client = Decider::McpClient {
            principal: Principal::agent("alice"),
            client: None,
            call: AskedCall {
                tool: "fetch".into(),
                request_hash: mine.request.request_hash.clone(),
            },
        };
        assert!(client.may_decide(&mine).is_ok());
        for (what, other) in [
            (
                "another principal's",
                approval("Agent::\"bob\"", "fetch", r#"{"url":"a"}"#),
            ),
            (
                "another tool's",
                approval("Agent::\"alice\"", "fetch2", r#"{"url":"a"}"#),
            ),
            (
                "another input's",
                approval("Agent::\"alice\"", "fetch", r#"{"url":"b"}"#),
            ),
        ] {
            let refused = client.may_decide(&other).expect_err(what);
            assert_eq!(refused.code(), "approval_mismatch", "{what}");
        }
        // Operators and devices decide any approval (Cedar may narrow it).
        let bob = approval("Agent::\"bob\"", "fetch", "{}");
        assert!(Decider::Operator("root".into()).may_decide(&bob).is_ok());
    }
}
