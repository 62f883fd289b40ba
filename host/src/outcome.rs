//! What an invocation produced: output, the tool's own error, a limit breach
//! or a guest fault, each with a stable reason code and a [`RunReport`].

use crate::egress::EgressRecord;
use crate::limits::Limits;
use std::fmt;
use std::time::Duration;

/// What a guest wrote to one stream: the kept prefix and how much was dropped.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Captured {
    /// The kept bytes, decoded as UTF-8 (invalid sequences replaced).
    pub text: String,
    /// Bytes written beyond the cap and dropped.
    pub dropped_bytes: u64,
}

/// A finished run's output, by the one rule for components and native
/// programs alike: at most the output limit, JSON, and kept without the
/// whitespace around the JSON text (a program's final newline).
pub(crate) fn completed(output: String, report: RunReport) -> Outcome {
    let limit = report.limits.max_output_bytes;
    if output.len() > limit {
        return Outcome::LimitExceeded {
            limit: LimitExceeded::OutputTooLarge {
                limit,
                actual: output.len(),
            },
            report,
        };
    }
    match serde_json::from_str::<serde::de::IgnoredAny>(&output) {
        Ok(_) => {
            let output = match output.trim() {
                trimmed if trimmed.len() == output.len() => output,
                trimmed => trimmed.to_string(),
            };
            Outcome::Completed { output, report }
        }
        Err(e) => Outcome::ToolError {
            error: ToolError {
                kind: ToolErrorKind::InvalidOutput,
                message: format!("the output is not JSON: {e}"),
            },
            report,
        },
    }
}

/// Cuts `text` to at most `max` bytes on a character boundary.
pub(crate) fn truncate(mut text: String, max: usize) -> String {
    if text.len() > max {
        let mut end = max;
        while !text.is_char_boundary(end) {
            end -= 1;
        }
        text.truncate(end);
    }
    text
}

/// Process exit codes of the `airlock` CLI, one per kind of outcome.
pub mod exit_code {
    /// The tool returned output.
    pub const OK: u8 = 0;
    /// The tool failed: it returned an error, trapped, exited, or produced
    /// output that is not JSON.
    pub(crate) const TOOL_ERROR: u8 = 1;
    /// Usage or host error: bad arguments or input, an unreadable or invalid
    /// component, or a host-side failure.
    pub const USAGE: u8 = 2;
    /// Denied: by policy, by an operator, or because the component needs
    /// something the host does not grant.
    pub const DENIED: u8 = 3;
    /// A limit ended the invocation.
    pub const LIMIT: u8 = 4;
    /// The request waits for a human approval (the approval id is printed).
    pub(crate) const PENDING_APPROVAL: u8 = 5;
}

/// Measurements of one invocation.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RunReport {
    /// A unique id for this invocation (a ULID), also in its egress records.
    pub invocation_id: String,
    /// Wall-clock time from the start of instantiation to the end.
    pub duration: Duration,
    /// The limits the invocation ran under.
    pub limits: Limits,
    /// Fuel consumed, when fuel metering is on.
    pub fuel_consumed: Option<u64>,
    /// The most linear memory the invocation held at once, in bytes.
    pub memory_peak_bytes: u64,
    /// What the guest wrote to stdout (capped).
    pub stdout: Captured,
    /// What the guest wrote to stderr (capped): panic messages land here.
    pub stderr: Captured,
    /// One record per outgoing HTTP request, allowed or denied, in order.
    pub egress: Vec<EgressRecord>,
}

impl RunReport {
    /// A report for an invocation refused before it started.
    pub(crate) fn not_started(limits: Limits) -> Self {
        Self::not_started_as(String::new(), limits)
    }

    /// [`RunReport::not_started`] for invocation `invocation_id`.
    pub(crate) fn not_started_as(invocation_id: String, limits: Limits) -> Self {
        Self {
            invocation_id,
            duration: Duration::ZERO,
            limits,
            fuel_consumed: None,
            memory_peak_bytes: 0,
            stdout: Captured::default(),
            stderr: Captured::default(),
            egress: Vec::new(),
        }
    }
}

/// The result of [`Host::invoke`](crate::Host::invoke).
///
/// # Examples
///
/// ```no_run
/// # async fn demo(host: airlock::Host, tool: airlock::Tool) -> Result<(), Box<dyn std::error::Error>> {
/// use airlock::{Invocation, Outcome};
///
/// match host.invoke(&tool, Invocation::new(r#"{"q": 1}"#)).await? {
///     Outcome::Completed { output, .. } => println!("{output}"),
///     other => eprintln!("{}: {}", other.code(), other.message().unwrap_or_default()),
/// }
/// # Ok(()) }
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Outcome {
    /// The tool returned JSON output within the output limit.
    Completed {
        /// The output JSON text.
        output: String,
        /// Measurements.
        report: RunReport,
    },
    /// The tool returned its `error` variant, or output that is not JSON.
    ToolError {
        /// What the tool said.
        error: ToolError,
        /// Measurements.
        report: RunReport,
    },
    /// A limit ended the invocation.
    LimitExceeded {
        /// Which limit.
        limit: LimitExceeded,
        /// Measurements.
        report: RunReport,
    },
    /// The guest trapped or exited instead of returning.
    Faulted {
        /// What happened.
        fault: GuestFault,
        /// Measurements; `stderr` usually holds the guest's panic message.
        report: RunReport,
    },
    /// Policies hold the request for a human; the tool did not run.
    PendingApproval {
        /// The pending approval.
        approval: PendingApproval,
        /// An empty report carrying the invocation id.
        report: RunReport,
    },
    /// Refused before the tool ran: by policy, or by an operator.
    Denied {
        /// Why.
        denial: PolicyDenial,
        /// An empty report carrying the invocation id.
        report: RunReport,
    },
}

/// A request waiting for an operator.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PendingApproval {
    /// The approval id, for `airlock approvals decide`.
    pub id: String,
    /// The tool's name.
    pub tool: String,
    /// The tool's capabilities.
    pub capabilities: Vec<String>,
    /// A short summary of the input.
    pub summary: String,
}

/// Why a request was refused before the tool ran.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum DenialReason {
    /// No policy permits it, or a policy forbids it.
    Policy,
    /// An operator denied the approval.
    ApprovalDenied,
    /// It needs an approval, but this host has no approval store (no state
    /// directory).
    ApprovalUnavailable,
}

impl DenialReason {
    /// Stable machine-readable reason code.
    pub fn code(self) -> &'static str {
        match self {
            DenialReason::Policy => "policy_denied",
            DenialReason::ApprovalDenied => "approval_denied",
            DenialReason::ApprovalUnavailable => "approval_unavailable",
        }
    }
}

/// A refusal before the tool ran.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PolicyDenial {
    /// Why.
    pub reason: DenialReason,
    /// The policies that decided it.
    pub policies: Vec<String>,
    /// For humans.
    pub message: String,
    /// The approval involved, if any.
    pub approval_id: Option<String>,
}

impl Outcome {
    /// Stable reason code: `ok`, or the code of the error, limit or fault.
    pub fn code(&self) -> &'static str {
        match self {
            Outcome::Completed { .. } => "ok",
            Outcome::ToolError { error, .. } => error.kind.code(),
            Outcome::LimitExceeded { limit, .. } => limit.code(),
            Outcome::Faulted { fault, .. } => fault.code(),
            Outcome::PendingApproval { .. } => "approval_pending",
            Outcome::Denied { denial, .. } => denial.reason.code(),
        }
    }

    /// The CLI's exit code for this outcome (see [`exit_code`]).
    pub fn exit_code(&self) -> u8 {
        match self {
            Outcome::Completed { .. } => exit_code::OK,
            Outcome::ToolError { .. } | Outcome::Faulted { .. } => exit_code::TOOL_ERROR,
            Outcome::LimitExceeded { .. } => exit_code::LIMIT,
            Outcome::PendingApproval { .. } => exit_code::PENDING_APPROVAL,
            Outcome::Denied { .. } => exit_code::DENIED,
        }
    }

    /// The output, if the tool completed.
    pub fn output(&self) -> Option<&str> {
        match self {
            Outcome::Completed { output, .. } => Some(output),
            _ => None,
        }
    }

    /// What went wrong, for humans; `None` if the tool completed.
    pub fn message(&self) -> Option<String> {
        match self {
            Outcome::Completed { .. } => None,
            Outcome::ToolError { error, .. } => Some(error.to_string()),
            Outcome::LimitExceeded { limit, .. } => Some(limit.to_string()),
            Outcome::Faulted { fault, .. } => Some(fault.to_string()),
            Outcome::PendingApproval { approval, .. } => Some(format!(
                "`{}` needs a human approval ({}); an operator decides with `airlock approvals decide {}`",
                approval.tool,
                approval.capabilities.join(", "),
                approval.id
            )),
            Outcome::Denied { denial, .. } => Some(denial.message.clone()),
        }
    }

    /// Measurements of the invocation.
    pub fn report(&self) -> &RunReport {
        match self {
            Outcome::Completed { report, .. }
            | Outcome::ToolError { report, .. }
            | Outcome::LimitExceeded { report, .. }
            | Outcome::Faulted { report, .. }
            | Outcome::PendingApproval { report, .. }
            | Outcome::Denied { report, .. } => report,
        }
    }
}

/// Which limit ended an invocation.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LimitExceeded {
    /// The wall-clock deadline passed.
    #[error(
        "the tool ran past its {} deadline and was stopped; raise the timeout if it \
         legitimately needs longer", humantime::format_duration(*timeout)
    )]
    Deadline {
        /// The deadline.
        timeout: Duration,
    },
    /// The fuel budget ran out.
    #[error("the tool used up its fuel budget of {fuel} and was stopped")]
    Fuel {
        /// The budget.
        fuel: u64,
    },
    /// Linear memory would have grown past the limit.
    #[error(
        "the tool tried to grow its memory to {requested} bytes, over the limit of {limit} bytes"
    )]
    Memory {
        /// The limit in bytes.
        limit: u64,
        /// The total the guest asked for.
        requested: u64,
    },
    /// Tables would have grown past the limit.
    #[error("the tool tried to grow its tables to {requested} elements, over the limit of {limit}")]
    Table {
        /// The limit in elements.
        limit: u64,
        /// The total the guest asked for.
        requested: u64,
    },
    /// The guest's call stack ran out.
    #[error("the tool overflowed its {max_stack}-byte stack (unbounded recursion?)")]
    StackOverflow {
        /// The wasm stack size in bytes.
        max_stack: usize,
    },
    /// The input was larger than allowed; the tool did not run.
    #[error("the input is {actual} bytes, over the limit of {limit}; the tool did not run")]
    InputTooLarge {
        /// The limit in bytes.
        limit: usize,
        /// The input's size.
        actual: usize,
    },
    /// The output (or error message) was larger than allowed and was dropped.
    #[error("the tool returned {actual} bytes, over the output limit of {limit}; output dropped")]
    OutputTooLarge {
        /// The limit in bytes.
        limit: usize,
        /// The size returned.
        actual: usize,
    },
    /// The caller cancelled the invocation (e.g. MCP `notifications/cancelled`
    /// or a client that went away); it was stopped like at a deadline.
    #[error("the caller cancelled the invocation; it was stopped")]
    Cancelled,
}

impl LimitExceeded {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            LimitExceeded::Deadline { .. } => "deadline_exceeded",
            LimitExceeded::Fuel { .. } => "fuel_exhausted",
            LimitExceeded::Memory { .. } => "memory_limit",
            LimitExceeded::Table { .. } => "table_limit",
            LimitExceeded::StackOverflow { .. } => "stack_overflow",
            LimitExceeded::InputTooLarge { .. } => "input_too_large",
            LimitExceeded::OutputTooLarge { .. } => "output_too_large",
            LimitExceeded::Cancelled => "cancelled",
        }
    }
}

/// Which kind of error a tool returned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum ToolErrorKind {
    /// The tool's `invalid-input` variant.
    InvalidInput,
    /// The tool's `denied` variant.
    Denied,
    /// The tool's `failed` variant.
    Failed,
    /// The tool returned output that is not JSON (decided by the host).
    InvalidOutput,
}

impl ToolErrorKind {
    /// Stable machine-readable reason code.
    pub fn code(self) -> &'static str {
        match self {
            ToolErrorKind::InvalidInput => "tool_invalid_input",
            ToolErrorKind::Denied => "tool_denied",
            ToolErrorKind::Failed => "tool_failed",
            ToolErrorKind::InvalidOutput => "invalid_output",
        }
    }
}

/// An error returned by a tool (its words, not the host's).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ToolError {
    /// Which variant.
    pub kind: ToolErrorKind,
    /// The tool's message, truncated to the output limit.
    pub message: String,
}

impl fmt::Display for ToolError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.kind {
            ToolErrorKind::InvalidInput => {
                write!(f, "the tool rejected its input: {}", self.message)
            }
            ToolErrorKind::Denied => write!(f, "the tool was denied: {}", self.message),
            ToolErrorKind::Failed => write!(f, "the tool failed: {}", self.message),
            ToolErrorKind::InvalidOutput => {
                write!(
                    f,
                    "the tool returned output that is not JSON: {}",
                    self.message
                )
            }
        }
    }
}

/// A guest that stopped without returning.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum GuestFault {
    /// A WebAssembly trap: `unreachable` (Rust panics and aborts end here),
    /// an out-of-bounds access, a division by zero, ...
    #[error("the tool crashed: {message}")]
    Trap {
        /// wasmtime's description of the trap.
        message: String,
        /// The guest's call stack, when known.
        backtrace: Option<String>,
    },
    /// The guest called `wasi:cli/exit` instead of returning.
    #[error("the tool exited with status {status} instead of returning a result")]
    Exit {
        /// The exit status.
        status: i32,
    },
}

impl GuestFault {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            GuestFault::Trap { .. } => "trap",
            GuestFault::Exit { .. } => "guest_exit",
        }
    }
}

/// Why [`Host::invoke`](crate::Host::invoke) could not run a tool at all.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum InvokeError {
    /// The input is not JSON, or an object in it repeats a key.
    #[error(
        "the input is not usable JSON ({message}); pass one JSON value with each object key once, e.g. {{}}"
    )]
    InvalidInput {
        /// The parser's description (position, not content).
        message: String,
    },
    /// A fuel limit was asked of a host without fuel metering.
    #[error(
        "a fuel limit was set but this host was built without fuel metering: \
         enable it with HostBuilder::fuel_metering(true)"
    )]
    FuelNotEnabled,
    /// A limit above what the host's engine can provide.
    #[error("{limit} = {value} is above this host's ceiling of {ceiling}")]
    LimitAboveCeiling {
        /// Which limit.
        limit: &'static str,
        /// The value asked for.
        value: u64,
        /// The most the host allows.
        ceiling: u64,
    },
    /// A granted directory can no longer be opened.
    #[error(transparent)]
    Grant(#[from] crate::grants::GrantError),
    /// Every instance slot of the host is in use.
    #[error(
        "the host is at capacity ({message}); retry, or build the host with more concurrent instances"
    )]
    Busy {
        /// wasmtime's description.
        message: String,
    },
    /// A native tool's sandbox or egress proxy could not be started.
    #[error("running the native tool failed: {message}")]
    Native {
        /// What went wrong.
        message: String,
    },
    /// The sandbox refused to start the run (a grant or protected path
    /// changed since the tool loaded, or the sandbox could not start).
    #[error("running the native tool failed: {0}")]
    Sandbox(#[from] airlock_sandbox::SandboxError),
    /// A native program changed since it was loaded.
    #[error(transparent)]
    ProgramChanged(#[from] crate::native::ProgramChanged),
    /// A protected path a sandbox would show is not the one airlock
    /// started with.
    #[error(transparent)]
    Protected(#[from] crate::protected::ProtectedError),
    /// Instantiation failed for a reason other than a limit or fault.
    #[error("instantiating the tool failed: {message}")]
    Instantiate {
        /// wasmtime's description.
        message: String,
    },
    /// The invocation was to run under one approval, but another covers it.
    #[error(
        "approval `{wanted}` does not cover this request ({}): \
         the input, tool or principal differ from what was approved",
        found.as_ref().map_or_else(|| "no approval does".to_string(), |id| format!("approval `{id}` does"))
    )]
    ApprovalMismatch {
        /// The approval asked for.
        wanted: String,
        /// The approval that covers (or waits for) this request, if any.
        found: Option<String>,
    },
    /// The run was pinned to a `once` approval that has already been used.
    #[error(
        "approval `{id}` allowed one run, which has already happened: run again without \
         `--approval` to ask for a new one"
    )]
    ApprovalUsed {
        /// The approval asked for.
        id: String,
    },
    /// The approval store or journal failed; nothing is returned that the
    /// journal does not hold.
    #[error(transparent)]
    Store(#[from] crate::store::StoreError),
}

impl InvokeError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            InvokeError::InvalidInput { .. } => "invalid_input",
            InvokeError::FuelNotEnabled => "fuel_not_enabled",
            InvokeError::LimitAboveCeiling { .. } => "limit_above_ceiling",
            InvokeError::Grant(e) => e.code(),
            InvokeError::Busy { .. } => "host_busy",
            InvokeError::Instantiate { .. } => "instantiate_failed",
            InvokeError::Native { .. } => "sandbox_failed",
            InvokeError::Sandbox(e) => e.code(),
            InvokeError::Protected(e) => e.code(),
            InvokeError::ProgramChanged(e) => e.code(),
            InvokeError::ApprovalMismatch { .. } => "approval_mismatch",
            InvokeError::ApprovalUsed { .. } => "approval_used",
            InvokeError::Store(e) => e.code(),
        }
    }

    /// The CLI's exit code for this error (see [`exit_code`]).
    pub fn exit_code(&self) -> u8 {
        exit_code::USAGE
    }
}
