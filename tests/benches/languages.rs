//! The tool languages: each language's `echo` (Rust from guests/echo, the
//! others from the kits in guests/<lang>/echo) - its size, its first load
//! (compile and `describe()`, empty compile cache), its load from the cache
//! in a new host (as a new process would), and a warm invocation - with
//! each language's ratio to Rust measured in the same run. No target: the
//! numbers are for docs/benchmarks.md ("Tool languages").
//!
//! `cargo bench -p airlock-tests --bench languages [-- ITERATIONS]` (the
//! toolchains from guests/toolchains/install).

use airlock::{Grants, Host, Invocation};
use airlock_tests::{guest_path, kits, stats};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

const INPUT: &str = r#"{"query": "weather in Lisbon", "units": "metric"}"#;
/// First loads compile tens of megabytes: a few suffice.
const FIRST_LOADS: usize = 3;

struct Row {
    lang: &'static str,
    bytes: u64,
    first: Duration,
    cached: Duration,
    invoke: Duration,
}

fn host(cache: &Path) -> Host {
    Host::builder()
        .cache_dir(cache)
        .policies(airlock_tests::permit_all())
        .build()
        .expect("host")
}

async fn measure(lang: &'static str, path: &Path, calls: usize) -> Row {
    let load = |cache: &Path| {
        let host = host(cache);
        let path = path.to_path_buf();
        async move {
            let start = Instant::now();
            let tool = host
                .load(path.as_path(), Grants::none())
                .await
                .expect("loads");
            (start.elapsed(), host, tool)
        }
    };
    let mut first = Vec::new();
    let mut cached = Vec::new();
    for _ in 0..FIRST_LOADS {
        let cache = tempfile::tempdir().expect("tempdir");
        first.push(load(cache.path()).await.0);
        cached.push(load(cache.path()).await.0);
    }
    let cache = tempfile::tempdir().expect("tempdir");
    let (_, host, tool) = load(cache.path()).await;
    let mut invoke = Vec::with_capacity(calls);
    for _ in 0..calls {
        let start = Instant::now();
        let outcome = host
            .invoke(&tool, Invocation::new(INPUT))
            .await
            .expect("runs");
        invoke.push(start.elapsed());
        assert_eq!(outcome.output(), Some(INPUT), "{lang}: {outcome:?}");
    }
    Row {
        lang,
        bytes: std::fs::metadata(path).expect("component").len(),
        first: stats::percentile(&mut first, 0.5),
        cached: stats::percentile(&mut cached, 0.5),
        invoke: stats::percentile(&mut invoke, 0.5),
    }
}

fn main() {
    let calls = stats::iterations(200);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let mut components: Vec<(&'static str, PathBuf)> = vec![("rust", guest_path("echo").into())];
    for lang in kits::languages() {
        components.push((lang, kits::kit(lang, "echo").path));
    }
    let rows: Vec<Row> = runtime.block_on(async {
        let mut rows = Vec::new();
        for (lang, path) in &components {
            rows.push(measure(lang, path, calls).await);
        }
        rows
    });

    let rust = &rows[0];
    let ratio = |a: Duration, b: Duration| a.as_secs_f64() / b.as_secs_f64();
    println!("echo in every language (p50; ratio to Rust in this run)");
    println!(
        "{:<8} {:>10} {:>18} {:>22} {:>20}",
        "language", "size", "first load", "load from cache", "warm invoke"
    );
    for row in &rows {
        println!(
            "{:<8} {:>10} {:>10.1} ms {:>5.1}x {:>12.2} ms {:>6.1}x {:>10.1} µs {:>6.1}x",
            row.lang,
            format!("{:.2} MiB", row.bytes as f64 / 1048576.0),
            row.first.as_secs_f64() * 1e3,
            ratio(row.first, rust.first),
            row.cached.as_secs_f64() * 1e3,
            ratio(row.cached, rust.cached),
            stats::micros(row.invoke),
            ratio(row.invoke, rust.invoke),
        );
    }
}
