//! Benchmark P1: a warm invoke of `echo` through `Host::invoke`, against raw
//! wasmtime on the same engine (`InstancePre::instantiate_async`, a typed
//! call, drop), interleaved in one run. Prints both p50s and their ratio; the
//! target is a ratio of at most 1.5.
//!
//! `cargo bench -p airlock-tests --bench p1_invoke [-- ITERATIONS]`

use airlock::{Grants, Host, Invocation};
use airlock_tests::stats;
use std::time::Instant;
use wasmtime::Store;
use wasmtime::component::{Component, Linker, ResourceTable};
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

mod raw {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "airlock:tool/pure",
        exports: { default: async },
    });
}
use raw::PurePre;

const INPUT: &str = r#"{"query": "weather in Lisbon", "units": "metric"}"#;
const WARMUP: usize = 500;

/// The least a WASI component needs: a context and a resource table.
struct RawState {
    wasi: WasiCtx,
    table: ResourceTable,
}

impl WasiView for RawState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations = stats::iterations(5_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // The full path: Cedar authorization and a journaled attestation.
        let state = tempfile::tempdir()?;
        let host = Host::builder().state_dir(state.path()).build()?;
        let tool = host
            .load(
                std::path::Path::new(airlock_test_artifacts::ECHO),
                Grants::none(),
            )
            .await?;

        let engine = host.engine().clone();
        let mut linker: Linker<RawState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        let component = Component::from_file(&engine, airlock_test_artifacts::ECHO)?;
        let raw = PurePre::new(linker.instantiate_pre(&component)?)?;

        let raw_call = || async {
            let start = Instant::now();
            let mut store = Store::new(
                &engine,
                RawState {
                    wasi: WasiCtx::builder().build(),
                    table: ResourceTable::new(),
                },
            );
            store.set_epoch_deadline(u64::MAX / 2);
            let instance = raw.instantiate_async(&mut store).await?;
            let output = instance
                .airlock_tool_tool()
                .call_call(&mut store, INPUT)
                .await?;
            drop(store);
            let elapsed = start.elapsed();
            assert_eq!(output.as_deref().ok(), Some(INPUT));
            Ok::<_, wasmtime::Error>(elapsed)
        };
        let host_call = || async {
            let start = Instant::now();
            let outcome = host.invoke(&tool, Invocation::new(INPUT)).await?;
            let elapsed = start.elapsed();
            assert_eq!(outcome.output(), Some(INPUT));
            Ok::<_, airlock::InvokeError>(elapsed)
        };

        for _ in 0..WARMUP {
            raw_call().await?;
            host_call().await?;
        }
        let mut raw_samples = Vec::with_capacity(iterations);
        let mut host_samples = Vec::with_capacity(iterations);
        for i in 0..iterations {
            // Alternate which goes first so neither always sees a warmer cache.
            if i % 2 == 0 {
                raw_samples.push(raw_call().await?);
                host_samples.push(host_call().await?);
            } else {
                host_samples.push(host_call().await?);
                raw_samples.push(raw_call().await?);
            }
        }

        stats::report(
            &format!("P1 warm invoke of `echo`, {iterations} interleaved iterations"),
            ("raw wasmtime (instantiate + call + drop)", &mut raw_samples),
            ("airlock Host::invoke", &mut host_samples),
            1.5,
        );
        Ok(())
    })
}
