//! Benchmark P1: a warm invoke of `echo` through `Host::invoke` (Cedar, the
//! journal), against raw wasmtime on the same engine
//! (`InstancePre::instantiate_async`, a typed call, drop), interleaved in
//! one run, under both journal commit modes:
//!
//! 1. A lone call, p50: `batched` ≤ 1.3 × raw, `each` ≤ 2.0 × raw.
//! 2. 64 concurrent invocations on 2 workers: journaled throughput in
//!    `each` mode ≥ 0.7 × a host without a journal.
//!
//! `cargo bench -p airlock-tests --bench p1_invoke [-- ITERATIONS]`

use airlock::journal::{Batching, CommitMode};
use airlock::{Grants, Host, Invocation, Tool};
use airlock_tests::raw::{PurePre, RawState};
use airlock_tests::stats;
use std::time::Instant;
use wasmtime::Store;
use wasmtime::component::{Component, Linker};

const INPUT: &str = r#"{"query": "weather in Lisbon", "units": "metric"}"#;
const WARMUP: usize = 500;

/// A host with a journal committed under `mode` (none: no state
/// directory, so no journal), and `echo` loaded on it.
async fn host(
    state: Option<(&std::path::Path, CommitMode)>,
) -> Result<(Host, Tool), Box<dyn std::error::Error>> {
    let mut builder = Host::builder();
    if let Some((dir, mode)) = state {
        builder = builder.state_dir(dir).journal_commit(mode);
    }
    let host = builder.build()?;
    let tool = host
        .load(
            std::path::Path::new(airlock_test_artifacts::ECHO),
            Grants::none(),
        )
        .await?;
    Ok((host, tool))
}

async fn call(host: &Host, tool: &Tool) -> Result<std::time::Duration, airlock::InvokeError> {
    let start = Instant::now();
    let outcome = host.invoke(tool, Invocation::new(INPUT)).await?;
    let elapsed = start.elapsed();
    assert_eq!(outcome.output(), Some(INPUT));
    Ok(elapsed)
}

const CONCURRENT: usize = 64;
const CALLS_PER_TASK: usize = 100;
const ROUNDS: usize = 3;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations = stats::iterations(5_000);
    lone(iterations)?;
    concurrent()
}

fn concurrent() -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let state = tempfile::tempdir()?;
        let (journaled, tool) = host(Some((state.path(), CommitMode::Each))).await?;
        let (bare, bare_tool) = host(None).await?;
        let (with, without) = stats::paired_medians(
            ROUNDS,
            || stats::calls_per_second(&journaled, &tool, INPUT, CONCURRENT, CALLS_PER_TASK),
            || stats::calls_per_second(&bare, &bare_tool, INPUT, CONCURRENT, CALLS_PER_TASK),
        )
        .await?;
        let ratio = with / without;
        println!(
            "P1 concurrent: {CONCURRENT} tasks x {CALLS_PER_TASK} calls on 2 workers, median of {ROUNDS} rounds"
        );
        println!("  no journal                                   {without:9.0} calls/s");
        println!("  journal, commit = each (group commit)        {with:9.0} calls/s");
        println!(
            "  ratio (journaled / unjournaled): {ratio:.2}x   target >= 0.70x   {}",
            if ratio >= 0.7 { "OK" } else { "UNDER TARGET" }
        );
        Ok(())
    })
}

fn lone(iterations: usize) -> Result<(), Box<dyn std::error::Error>> {
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        // The full path: Cedar authorization and a journaled attestation,
        // under each commit mode.
        let (each_state, batched_state) = (tempfile::tempdir()?, tempfile::tempdir()?);
        let (each, tool) = host(Some((each_state.path(), CommitMode::Each))).await?;
        let (batched, batched_tool) = host(Some((
            batched_state.path(),
            CommitMode::Batched(Batching::default()),
        )))
        .await?;

        let engine = each.engine().clone();
        let mut linker: Linker<RawState> = Linker::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
        let component = Component::from_file(&engine, airlock_test_artifacts::ECHO)?;
        let raw = PurePre::new(linker.instantiate_pre(&component)?)?;

        let raw_call = || async {
            let start = Instant::now();
            let mut store = Store::new(&engine, RawState::default());
            store.set_epoch_deadline(u64::MAX / 2);
            let instance = raw.instantiate_async(&mut store).await?;
            let output = instance
                .airlock_tool_tool()
                .call_call(&mut store, INPUT)
                .await?;
            drop(store);
            let elapsed = start.elapsed();
            assert_eq!(output.as_deref().ok(), Some(INPUT));
            Ok::<_, Box<dyn std::error::Error>>(elapsed)
        };

        for _ in 0..WARMUP {
            raw_call().await?;
            call(&each, &tool).await?;
            call(&batched, &batched_tool).await?;
        }
        let mut raw_samples = Vec::with_capacity(iterations);
        let mut each_samples = Vec::with_capacity(iterations);
        let mut batched_samples = Vec::with_capacity(iterations);
        for i in 0..iterations {
            // Rotate which goes first so none always sees a warmer cache.
            for turn in 0..3 {
                match (i + turn) % 3 {
                    0 => raw_samples.push(raw_call().await?),
                    1 => each_samples.push(call(&each, &tool).await?),
                    _ => batched_samples.push(call(&batched, &batched_tool).await?),
                }
            }
        }

        let title =
            format!("P1 warm invoke of `echo`, a lone call, {iterations} interleaved iterations");
        let mut raw_again = raw_samples.clone();
        stats::report(
            &title,
            ("raw wasmtime (instantiate + call + drop)", &mut raw_samples),
            ("airlock, journal commit = batched", &mut batched_samples),
            1.3,
        );
        stats::report(
            "",
            ("raw wasmtime (instantiate + call + drop)", &mut raw_again),
            ("airlock, journal commit = each", &mut each_samples),
            2.0,
        );
        Ok(())
    })
}
