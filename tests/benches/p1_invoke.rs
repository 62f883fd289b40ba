//! Benchmark P1: a warm invoke of `echo` through `Host::invoke`, against raw
//! wasmtime on the same engine (`InstancePre::instantiate_async`, a typed
//! call, drop), interleaved in one run. Prints both p50s and their ratio; the
//! target is a ratio of at most 1.5.
//!
//! `cargo bench -p airlock-tests --bench p1_invoke [-- ITERATIONS]`

use airlock::{Grants, Host, Invocation};
use std::time::{Duration, Instant};
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

fn percentile(samples: &mut [Duration], p: f64) -> Duration {
    samples.sort_unstable();
    let index = ((samples.len() as f64 - 1.0) * p).round() as usize;
    samples[index]
}

fn micros(d: Duration) -> f64 {
    d.as_secs_f64() * 1e6
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations: usize = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with('-'))
        .and_then(|a| a.parse().ok())
        .unwrap_or(5_000);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let host = Host::builder().build()?;
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

        let raw_p50 = percentile(&mut raw_samples, 0.5);
        let host_p50 = percentile(&mut host_samples, 0.5);
        let raw_p90 = percentile(&mut raw_samples, 0.9);
        let host_p90 = percentile(&mut host_samples, 0.9);
        let ratio = host_p50.as_secs_f64() / raw_p50.as_secs_f64();
        println!("P1 warm invoke of `echo`, {iterations} interleaved iterations");
        println!(
            "  raw wasmtime (instantiate + call + drop): p50 {:8.1} µs   p90 {:8.1} µs",
            micros(raw_p50),
            micros(raw_p90)
        );
        println!(
            "  airlock Host::invoke:                     p50 {:8.1} µs   p90 {:8.1} µs",
            micros(host_p50),
            micros(host_p90)
        );
        println!(
            "  ratio (p50 host / p50 raw): {ratio:.2}x   target <= 1.50x   {}",
            if ratio <= 1.5 { "OK" } else { "OVER TARGET" }
        );
        Ok(())
    })
}
