//! The wasmtime [`Engine`] airlock serves with: pooling allocator,
//! copy-on-write memory images, epoch interruption driven by one ticker thread,
//! and optional fuel.

use crate::limits::{MEMORY_CEILING, TABLE_ELEMENTS_CEILING};
use sha2::{Digest as _, Sha256};
use std::hash::{Hash, Hasher};
use std::time::Duration;
use wasmtime::{
    Config, Enabled, Engine, InstanceAllocationStrategy, OptLevel, PoolingAllocationConfig,
};

/// How often the engine's epoch advances. Deadlines are checked (and the guest
/// yields to the async executor) once per tick, so this is the deadline's
/// resolution; checking costs a load and compare per loop back-edge.
pub const EPOCH_TICK: Duration = Duration::from_millis(5);

/// Native stack a guest may use. Deep recursion beyond it traps as
/// `stack_overflow` instead of touching the host's stack.
pub const MAX_WASM_STACK: usize = 512 << 10;

/// Stack of the fiber each invocation runs on: the wasm stack plus room for
/// host functions called from wasm.
const ASYNC_STACK: usize = MAX_WASM_STACK + (1 << 20);

/// Default number of invocations that can run at once; the pool's slots are
/// reserved up front (virtual memory only) for this many.
pub(crate) const DEFAULT_MAX_CONCURRENT: u32 = 64;

// Per-component ceilings for the pool: generous for what language toolchains
// emit (a Rust component has one memory and a handful of core instances).
const CORE_INSTANCES_PER_COMPONENT: u32 = 32;
const MEMORIES_PER_COMPONENT: u32 = 4;
const TABLES_PER_COMPONENT: u32 = 32;

/// Table and stack bytes per pool slot reset by `memset` rather than
/// returned to the kernel: `madvise` on every instance's teardown flushed
/// the TLB of every core running airlock (an inter-processor interrupt
/// each), which profiles showed as the largest cost of concurrent calls.
/// Small tools fit in it; a slot holds at most this much resident for
/// each of its tables and its stack.
const KEEP_RESIDENT: usize = 64 << 10;

/// Linear memory per pool slot reset in place where the kernel can say
/// which pages an instance wrote (`PAGEMAP_SCAN`, Linux 6.7+): only those
/// are copied back from the image or zeroed, the copy-on-write mapping of
/// the rest stays, and nothing is unmapped, so neither `madvise` nor a
/// copy-on-write fault sends an inter-processor interrupt on the next
/// call. A tool that writes more than this has the rest returned to the
/// kernel as before. Without `PAGEMAP_SCAN` nothing is kept: resetting
/// the first bytes blindly would copy them on every call.
const KEEP_RESIDENT_MEMORY: usize = 1 << 20;

/// What the host asks of its engine.
#[derive(Clone, Debug)]
pub(crate) struct EngineSettings {
    pub fuel_metering: bool,
    pub max_concurrent: u32,
}

pub(crate) fn build(settings: &EngineSettings) -> wasmtime::Result<Engine> {
    // Kernels without `PAGEMAP_SCAN` refuse `Enabled::Yes`: build again
    // without it.
    Engine::new(&config(settings, true)).or_else(|_| Engine::new(&config(settings, false)))
}

fn config(settings: &EngineSettings, pagemap: bool) -> Config {
    let slots = settings.max_concurrent.max(1);
    let mut pool = PoolingAllocationConfig::new();
    pool.total_component_instances(slots)
        .total_core_instances(slots.saturating_mul(CORE_INSTANCES_PER_COMPONENT))
        .total_memories(slots.saturating_mul(2))
        .total_tables(slots.saturating_mul(TABLES_PER_COMPONENT))
        .total_stacks(slots)
        .max_core_instances_per_component(CORE_INSTANCES_PER_COMPONENT)
        .max_memories_per_component(MEMORIES_PER_COMPONENT)
        .max_tables_per_component(TABLES_PER_COMPONENT)
        .max_memory_size(MEMORY_CEILING as usize)
        .table_elements(TABLE_ELEMENTS_CEILING as usize)
        .table_keep_resident(KEEP_RESIDENT)
        .async_stack_keep_resident(KEEP_RESIDENT);
    if pagemap {
        pool.pagemap_scan(Enabled::Yes)
            .linear_memory_keep_resident(KEEP_RESIDENT_MEMORY);
    }

    let mut config = Config::new();
    config
        .wasm_component_model(true)
        .epoch_interruption(true)
        .consume_fuel(settings.fuel_metering)
        .allocation_strategy(InstanceAllocationStrategy::Pooling(pool))
        .memory_init_cow(true)
        .max_wasm_stack(MAX_WASM_STACK)
        .async_stack_size(ASYNC_STACK)
        .cranelift_opt_level(OptLevel::Speed)
        .parallel_compilation(true);
    config
}

/// Advances `engine`'s epoch every [`EPOCH_TICK`] until the engine is dropped.
pub(crate) fn start_epoch_ticker(engine: &Engine) -> std::io::Result<()> {
    let weak = engine.weak();
    std::thread::Builder::new()
        .name("airlock-epoch".into())
        .spawn(move || {
            while let Some(engine) = weak.upgrade() {
                engine.increment_epoch();
                drop(engine);
                std::thread::sleep(EPOCH_TICK);
            }
        })
        .map(drop)
}

/// A stable digest of everything that makes compiled code valid for this
/// engine (wasmtime version, target, compilation settings), for cache keys.
pub(crate) fn compatibility_hash(engine: &Engine) -> String {
    struct Sha256Hasher(Sha256);
    impl Hasher for Sha256Hasher {
        fn finish(&self) -> u64 {
            let digest = self.0.clone().finalize();
            let mut first = [0u8; 8];
            first.copy_from_slice(&digest[..8]);
            u64::from_le_bytes(first)
        }
        fn write(&mut self, bytes: &[u8]) {
            self.0.update(bytes);
        }
    }
    let mut hasher = Sha256Hasher(Sha256::new());
    engine.precompile_compatibility_hash().hash(&mut hasher);
    hex::encode(&hasher.0.finalize()[..16])
}
