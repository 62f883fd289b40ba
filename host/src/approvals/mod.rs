//! Human approvals: a sensitive request that policies hold for a person
//! becomes a pending approval, persisted (and journaled) before anyone is
//! told; an operator decides it once, for the session, until a time, or
//! denies it. Decisions are bound to the tool's digest and to a digest of
//! its whole effective grant, so a changed component or a wider grant needs
//! a new approval.

mod kept;
mod model;
mod shown;
mod store;

pub use kept::kept_in;
pub use model::{
    Approval, ApprovalRequest, DEFAULT_MAX_APPROVAL_WINDOW, GrantBinding, OperatorDecision, Scope,
    Status, request_hash, summarize,
};
pub use shown::{input_sha256, readable_input, shown_input};
pub use store::{ApprovalError, ApprovalStore, Lookup};
