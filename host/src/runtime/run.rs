//! One invocation: a fresh store under the invocation's limits, instantiate
//! from the tool's pre-linked `InstancePre`, one call into the guest, and the
//! mapping of whatever happened onto a limit, a fault or a host error.

use super::bindings::{ToolPre, WitDescriptor, WitError, exports::airlock::tool::tool::Guest};
use super::engine::MAX_WASM_STACK;
use super::state::StoreState;
use super::stdio::CapturedOutput;
use crate::egress::{EgressHook, Network, Requester};
use crate::grants::ResolvedGrants;
use crate::limits::{LimitHit, Limits};
use crate::outcome::{
    GuestFault, InvokeError, LimitExceeded, Outcome, RunReport, ToolError, ToolErrorKind,
    completed, truncate,
};
use std::time::Instant;
use wasmtime::{Engine, PoolConcurrencyLimitError, Store, Trap, UpdateDeadline, WasmBacktrace};

/// Raised from the epoch callback once the wall-clock deadline has passed.
#[derive(Debug, thiserror::Error)]
#[error("the invocation's deadline passed")]
struct DeadlineReached;

/// An export of `airlock:tool/tool` the host can call.
pub(crate) trait Entry {
    /// What the export returns.
    type Output;

    /// Whether the export reported that it gave up: a tool error after the
    /// host refused it memory is that limit's doing, whatever the guest's
    /// allocator made of the refusal (C's `malloc` returns NULL, Rust and
    /// Go abort, Python raises).
    fn gave_up(_output: &Self::Output) -> bool {
        false
    }

    /// Calls the export on a fresh instance.
    async fn call(
        self,
        guest: &Guest,
        store: &mut Store<StoreState>,
    ) -> wasmtime::Result<Self::Output>;
}

/// `describe()`.
pub(crate) struct Describe;

impl Entry for Describe {
    type Output = WitDescriptor;

    async fn call(
        self,
        guest: &Guest,
        store: &mut Store<StoreState>,
    ) -> wasmtime::Result<Self::Output> {
        guest.call_describe(store).await
    }
}

/// `call(input)`.
pub(crate) struct CallTool<'a>(pub &'a str);

impl Entry for CallTool<'_> {
    type Output = Result<String, WitError>;

    fn gave_up(output: &Self::Output) -> bool {
        output.is_err()
    }

    async fn call(
        self,
        guest: &Guest,
        store: &mut Store<StoreState>,
    ) -> wasmtime::Result<Self::Output> {
        guest.call_call(store, self.0).await
    }
}

/// Why an invocation did not return normally.
#[derive(Debug)]
pub(crate) enum Failure {
    Limit(LimitExceeded),
    Fault(GuestFault),
    Host(InvokeError),
    /// The component's exports do not have the types of `airlock:tool/tool`.
    Bind(String),
}

/// What [`execute`] produced, with its measurements.
pub(crate) struct Run<T> {
    pub result: Result<T, Failure>,
    pub report: RunReport,
}

/// Everything one invocation needs from the host and the tool.
pub(crate) struct ExecContext<'a> {
    pub engine: &'a Engine,
    pub pre: &'a ToolPre,
    pub invocation_id: &'a str,
    pub grants: &'a ResolvedGrants,
    pub limits: &'a Limits,
    pub fuel_metering: bool,
    pub network: &'a Network,
    pub requester: Requester,
    /// Fired by the caller to stop the invocation.
    pub cancel: &'a tokio_util::sync::CancellationToken,
}

#[derive(Clone, Copy)]
enum Stage {
    Instantiate,
    Bind,
    Call,
}

/// Runs one export of the tool in a fresh instance under `cx.limits`.
pub(crate) async fn execute<E: Entry>(cx: &ExecContext<'_>, entry: E) -> Run<E::Output> {
    let limits = cx.limits;
    let started = Instant::now();
    let deadline = started + limits.timeout;
    let stdout = CapturedOutput::new(limits.max_stdio_bytes);
    let stderr = CapturedOutput::new(limits.max_stdio_bytes);
    let hook = EgressHook::new(
        cx.invocation_id,
        cx.grants.grants().network_arc(),
        cx.network.clone(),
        cx.requester.clone(),
    );
    let state = match StoreState::new(hook.clone(), cx.grants, limits, &stdout, &stderr, deadline) {
        Ok(state) => state,
        Err(e) => {
            return Run {
                result: Err(Failure::Host(e.into())),
                report: RunReport::not_started(limits.clone()),
            };
        }
    };

    let mut store = Store::new(cx.engine, state);
    store.limiter(|state| &mut state.limiter);
    let fuel_budget = limits.fuel.unwrap_or(u64::MAX);
    if cx.fuel_metering
        && let Err(e) = store.set_fuel(fuel_budget)
    {
        return Run {
            result: Err(Failure::Host(InvokeError::Instantiate {
                message: format!("setting fuel: {e}"),
            })),
            report: RunReport::not_started(limits.clone()),
        };
    }
    // Every epoch tick: stop if the deadline passed, otherwise yield to the
    // executor so that other invocations (and timers) make progress.
    store.set_epoch_deadline(1);
    store.epoch_deadline_callback(|ctx| {
        if Instant::now() >= ctx.data().deadline {
            Err(wasmtime::Error::new(DeadlineReached))
        } else {
            Ok(UpdateDeadline::Yield(1))
        }
    });

    // The outer timeout covers time the guest spends blocked in host calls,
    // where no epoch check runs.
    // A cancelled call is dropped like one past its deadline: wasmtime
    // unwinds the guest's fiber and the store goes with it.
    let work = instantiate_and_call(&mut store, cx.pre, entry);
    let timed = tokio::time::timeout_at(deadline.into(), work);
    let ended = tokio::select! {
        biased;
        () = cx.cancel.cancelled() => None,
        timed = timed => Some(timed),
    };
    let result = match ended {
        None => Err(Failure::Limit(LimitExceeded::Cancelled)),
        Some(Ok(Ok(output))) => match store.data().limiter.hit() {
            Some(hit) if E::gave_up(&output) => Err(Failure::Limit(exceeded(hit, limits))),
            _ => Ok(output),
        },
        Some(Ok(Err((stage, error)))) => Err(classify(stage, &error, store.data(), limits)),
        Some(Err(_elapsed)) => Err(Failure::Limit(LimitExceeded::Deadline {
            timeout: limits.timeout,
        })),
    };

    let fuel_consumed = cx
        .fuel_metering
        .then(|| fuel_budget.saturating_sub(store.get_fuel().unwrap_or(0)));
    let memory_peak_bytes = store.data().limiter.peak_memory();
    // Dropping the store drops open response bodies, which finishes their
    // egress records.
    drop(store);
    let report = RunReport {
        invocation_id: cx.invocation_id.to_string(),
        duration: started.elapsed(),
        limits: limits.clone(),
        fuel_consumed,
        memory_peak_bytes,
        stdout: stdout.snapshot(),
        stderr: stderr.snapshot(),
        egress: hook.records(),
    };
    Run { result, report }
}

async fn instantiate_and_call<E: Entry>(
    store: &mut Store<StoreState>,
    pre: &ToolPre,
    entry: E,
) -> Result<E::Output, (Stage, wasmtime::Error)> {
    let instance = pre
        .instance_pre
        .instantiate_async(&mut *store)
        .await
        .map_err(|e| (Stage::Instantiate, e))?;
    let bound = pre
        .indices
        .load(&mut *store, &instance)
        .map_err(|e| (Stage::Bind, e))?;
    entry
        .call(bound.airlock_tool_tool(), store)
        .await
        .map_err(|e| (Stage::Call, e))
}

/// The limit a refused growth ran into.
fn exceeded(hit: LimitHit, limits: &Limits) -> LimitExceeded {
    match hit {
        LimitHit::Memory { requested } => LimitExceeded::Memory {
            limit: limits.max_memory_bytes,
            requested,
        },
        LimitHit::Table { requested } => LimitExceeded::Table {
            limit: limits.max_table_elements,
            requested,
        },
    }
}

/// Maps a wasmtime error onto what really happened. A recorded limit hit wins
/// over the trap it causes (an allocator that cannot grow memory aborts).
fn classify(stage: Stage, error: &wasmtime::Error, state: &StoreState, limits: &Limits) -> Failure {
    if let Stage::Bind = stage {
        return Failure::Bind(format!("{error:#}"));
    }
    if error.is::<DeadlineReached>() {
        return Failure::Limit(LimitExceeded::Deadline {
            timeout: limits.timeout,
        });
    }
    if let Some(hit) = state.limiter.hit() {
        return Failure::Limit(exceeded(hit, limits));
    }
    if let Some(trap) = error.downcast_ref::<Trap>() {
        return match trap {
            Trap::OutOfFuel => Failure::Limit(LimitExceeded::Fuel {
                fuel: limits.fuel.unwrap_or(u64::MAX),
            }),
            Trap::StackOverflow => Failure::Limit(LimitExceeded::StackOverflow {
                max_stack: MAX_WASM_STACK,
            }),
            Trap::Interrupt => Failure::Limit(LimitExceeded::Deadline {
                timeout: limits.timeout,
            }),
            _ => Failure::Fault(GuestFault::Trap {
                message: trap.to_string(),
                backtrace: error
                    .downcast_ref::<WasmBacktrace>()
                    .map(ToString::to_string),
            }),
        };
    }
    if let Some(exit) = error.downcast_ref::<wasmtime_wasi::I32Exit>() {
        return Failure::Fault(GuestFault::Exit { status: exit.0 });
    }
    if error.is::<PoolConcurrencyLimitError>() {
        return Failure::Host(InvokeError::Busy {
            message: error.to_string(),
        });
    }
    let message = format!("{error:#}");
    match stage {
        Stage::Instantiate | Stage::Bind => Failure::Host(InvokeError::Instantiate { message }),
        // A host function refused to continue (e.g. a resource-table limit):
        // the guest cannot go on, which to the caller is a crash.
        Stage::Call => Failure::Fault(GuestFault::Trap {
            message,
            backtrace: None,
        }),
    }
}

/// Turns the result of `call(input)` into an outcome: checks the output's size
/// and that it is JSON, and caps a tool's error message.
pub(crate) fn outcome_of(run: Run<Result<String, WitError>>) -> Result<Outcome, InvokeError> {
    let Run { result, report } = run;
    let max = report.limits.max_output_bytes;
    Ok(match result {
        Ok(Ok(output)) => completed(output, report),
        Ok(Err(error)) => {
            let (kind, message) = match error {
                WitError::InvalidInput(m) => (ToolErrorKind::InvalidInput, m),
                WitError::Denied(m) => (ToolErrorKind::Denied, m),
                WitError::Failed(m) => (ToolErrorKind::Failed, m),
            };
            Outcome::ToolError {
                error: ToolError {
                    kind,
                    message: truncate(message, max),
                },
                report,
            }
        }
        Err(Failure::Limit(limit)) => Outcome::LimitExceeded { limit, report },
        Err(Failure::Fault(fault)) => Outcome::Faulted { fault, report },
        Err(Failure::Host(error)) => return Err(error),
        // `load` bound this component once already; a mismatch now is a host bug.
        Err(Failure::Bind(message)) => return Err(InvokeError::Instantiate { message }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(result: Result<Result<String, WitError>, Failure>, max_output_bytes: usize) -> Outcome {
        let limits = Limits {
            max_output_bytes,
            ..Limits::default()
        };
        outcome_of(Run {
            result,
            report: RunReport::not_started(limits),
        })
        .expect("not a host error")
    }

    #[test]
    fn output_is_checked_for_size_then_json() {
        assert_eq!(run(Ok(Ok("[1,2]".into())), 5).code(), "ok");
        assert_eq!(run(Ok(Ok("[1,2,3]".into())), 5).code(), "output_too_large");
        assert_eq!(run(Ok(Ok("not json".into())), 100).code(), "invalid_output");
    }

    #[test]
    fn tool_errors_keep_kind_and_cap_message() {
        let outcome = run(Ok(Err(WitError::Denied("é".repeat(10)))), 5);
        let Outcome::ToolError { error, .. } = outcome else {
            panic!("expected a tool error");
        };
        assert_eq!(error.kind, ToolErrorKind::Denied);
        assert_eq!(error.message, "éé");
    }
}
