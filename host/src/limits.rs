//! Per-invocation resource limits, and the store-side limiter that enforces
//! the memory and table parts while remembering which one was hit.

use std::time::Duration;

/// Default wall-clock budget of one invocation: long enough for a tool that
/// makes a few HTTP requests, short enough that a stuck tool frees its slot.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default cap on all linear memory of one invocation: ample for JSON tools,
/// small enough that a few dozen concurrent invocations fit in RAM.
pub const DEFAULT_MAX_MEMORY_BYTES: u64 = 128 << 20;
/// Default cap on table elements of one invocation; language runtimes need a
/// few hundred, debug builds of managed runtimes a few thousand.
pub const DEFAULT_MAX_TABLE_ELEMENTS: u64 = 20_000;
/// Default cap on the input JSON: agents' tool arguments are small.
pub const DEFAULT_MAX_INPUT_BYTES: usize = 1 << 20;
/// Default cap on the output JSON handed back to the caller.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 1 << 20;
/// Default cap on captured stdout and on captured stderr (each): enough for a
/// panic message and some logging; the rest is counted, not kept.
pub const DEFAULT_MAX_STDIO_BYTES: usize = 64 << 10;

/// Largest per-invocation table limit the instance pool can satisfy.
pub(crate) const TABLE_ELEMENTS_CEILING: u64 = 100_000;

/// Largest per-invocation memory limit: the 32-bit wasm address space.
pub(crate) const MEMORY_CEILING: u64 = 4 << 30;

/// Limits for one invocation. Every breach ends only that invocation, with a
/// distinct [`LimitExceeded`](crate::LimitExceeded) reason.
///
/// # Examples
///
/// ```
/// use airlock::Limits;
/// use std::time::Duration;
///
/// let limits = Limits {
///     timeout: Duration::from_millis(250),
///     fuel: Some(5_000_000),
///     ..Limits::default()
/// };
/// assert_eq!(limits.max_output_bytes, airlock::DEFAULT_MAX_OUTPUT_BYTES);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Limits {
    /// Wall-clock deadline, from instantiation to the returned output.
    pub timeout: Duration,
    /// Instruction budget (wasmtime fuel). Requires a host built with
    /// [`HostBuilder::fuel_metering`](crate::HostBuilder::fuel_metering).
    pub fuel: Option<u64>,
    /// Total linear memory across the component's memories, in bytes.
    pub max_memory_bytes: u64,
    /// Total table elements across the component's tables.
    pub max_table_elements: u64,
    /// Largest accepted input, in bytes.
    pub max_input_bytes: usize,
    /// Largest accepted output (or error message), in bytes.
    pub max_output_bytes: usize,
    /// Bytes of stdout and of stderr kept, each.
    pub max_stdio_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            timeout: DEFAULT_TIMEOUT,
            fuel: None,
            max_memory_bytes: DEFAULT_MAX_MEMORY_BYTES,
            max_table_elements: DEFAULT_MAX_TABLE_ELEMENTS,
            max_input_bytes: DEFAULT_MAX_INPUT_BYTES,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            max_stdio_bytes: DEFAULT_MAX_STDIO_BYTES,
        }
    }
}

impl Limits {
    /// One line for a person: the timeout, memory, fuel, input and output
    /// limits (what an approval shows it binds).
    pub fn summary(&self) -> String {
        format!(
            "timeout {}, memory {}, fuel {}, input {}, output {}",
            humantime::format_duration(self.timeout),
            bytes(self.max_memory_bytes),
            self.fuel
                .map_or_else(|| "unlimited".to_string(), |fuel| fuel.to_string()),
            bytes(self.max_input_bytes as u64),
            bytes(self.max_output_bytes as u64),
        )
    }
}

/// `n` bytes in the largest binary unit that divides it.
fn bytes(n: u64) -> String {
    match n {
        0 => "0 B".to_string(),
        n if n % (1 << 30) == 0 => format!("{} GiB", n >> 30),
        n if n % (1 << 20) == 0 => format!("{} MiB", n >> 20),
        n if n % (1 << 10) == 0 => format!("{} KiB", n >> 10),
        n => format!("{n} B"),
    }
}

/// Which store limit refused a growth, and how much was asked for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum LimitHit {
    Memory { requested: u64 },
    Table { requested: u64 },
}

/// Enforces memory and table totals for one store and records the first
/// refusal, so a trap that follows (an allocator aborting) is reported as the
/// limit it really is.
pub(crate) struct Limiter {
    max_memory: u64,
    max_table: u64,
    memory_used: u64,
    table_used: u64,
    peak_memory: u64,
    hit: Option<LimitHit>,
}

impl Limiter {
    pub(crate) fn new(limits: &Limits) -> Self {
        Self {
            max_memory: limits.max_memory_bytes,
            max_table: limits.max_table_elements,
            memory_used: 0,
            table_used: 0,
            peak_memory: 0,
            hit: None,
        }
    }

    pub(crate) fn hit(&self) -> Option<LimitHit> {
        self.hit
    }

    pub(crate) fn peak_memory(&self) -> u64 {
        self.peak_memory
    }
}

/// Adds a growth to a running total if it stays within `max`.
fn grow(used: &mut u64, current: usize, desired: usize, max: u64) -> Result<(), u64> {
    let delta = desired.saturating_sub(current) as u64;
    let total = used.saturating_add(delta);
    if total > max {
        return Err(total);
    }
    *used = total;
    Ok(())
}

impl wasmtime::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match grow(&mut self.memory_used, current, desired, self.max_memory) {
            Ok(()) => {
                self.peak_memory = self.peak_memory.max(self.memory_used);
                Ok(true)
            }
            Err(requested) => {
                self.hit.get_or_insert(LimitHit::Memory { requested });
                Ok(false)
            }
        }
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        match grow(&mut self.table_used, current, desired, self.max_table) {
            Ok(()) => Ok(true),
            Err(requested) => {
                self.hit.get_or_insert(LimitHit::Table { requested });
                Ok(false)
            }
        }
    }
}

/// A call's limits for a native program (a tool run, or a hosted server's
/// call) under `process`: its wall clock and output cap over `base` (the
/// host's defaults).
pub(crate) fn call_limits(process: &airlock_sandbox::ProcessLimits, base: Limits) -> Limits {
    Limits {
        timeout: process.wall_clock,
        max_output_bytes: process.output_bytes,
        max_stdio_bytes: process.output_bytes,
        ..base
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use wasmtime::ResourceLimiter;

    #[test]
    fn memory_total_spans_memories_and_records_first_hit() {
        let mut limiter = Limiter::new(&Limits {
            max_memory_bytes: 3 << 16,
            ..Limits::default()
        });
        assert!(limiter.memory_growing(0, 2 << 16, None).expect("ok"));
        // A second memory counts against the same total.
        assert!(!limiter.memory_growing(0, 2 << 16, None).expect("ok"));
        assert!(limiter.memory_growing(0, 1 << 16, None).expect("ok"));
        assert_eq!(limiter.hit(), Some(LimitHit::Memory { requested: 4 << 16 }));
        assert_eq!(limiter.peak_memory(), 3 << 16);
        assert!(!limiter.table_growing(0, 20_001, None).expect("ok"));
        // The first refusal is the one reported.
        assert_eq!(limiter.hit(), Some(LimitHit::Memory { requested: 4 << 16 }));
    }

    #[test]
    fn the_summary_names_the_limits_an_approval_binds() {
        let limits = Limits {
            timeout: Duration::from_secs(5),
            fuel: Some(1000),
            max_output_bytes: 1536,
            ..Limits::default()
        };
        assert_eq!(
            limits.summary(),
            "timeout 5s, memory 128 MiB, fuel 1000, input 1 MiB, output 1536 B"
        );
        assert!(Limits::default().summary().contains("fuel unlimited"));
    }
}
