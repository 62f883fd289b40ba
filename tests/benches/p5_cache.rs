//! Benchmark P5: the compile cache on large components, and `airlock
//! serve`'s start-up with 50 configured tools.
//!
//! 1. A large component (the Python `echo` kit, ~18 MB): its first load
//!    (compile, empty cache) against its second load in a new host
//!    (verified cache entry). Median of 3 each. Target: second ≥ 50× faster.
//! 2. `Server::start` on a configuration of 50 tools (every Rust guest and
//!    every kit of every language, then more Rust tools under other names),
//!    cold (empty compile cache) and warm (the cache the cold start filled).
//!    Median of 3 each. Target: warm ≤ 1 s.
//! 3. Resident memory: the process's resident set before the warm start and
//!    after it, per loaded tool. Target: 200 such tools in 2 GiB (≤ 10.24 MiB
//!    a tool).
//!
//! `cargo bench -p airlock-tests --bench p5_cache` (the guest toolchains
//! from guests/toolchains/install, as for the kits).

use airlock::{Grants, Host};
use airlock_serve::{Server, Sources};
use airlock_tests::{kits, stats};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

type Error = Box<dyn std::error::Error>;

const ROUNDS: usize = 3;
const TOOLS: usize = 50;

fn host(cache: &Path, state: Option<&Path>) -> Result<Host, Error> {
    let mut builder = Host::builder()
        .cache_dir(cache)
        .policies(airlock_tests::permit_all());
    if let Some(state) = state {
        builder = builder.state_dir(state);
    }
    Ok(builder.build()?)
}

/// The resident set of this process, in bytes.
fn resident() -> Result<u64, Error> {
    let statm = std::fs::read_to_string("/proc/self/statm")?;
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .ok_or("/proc/self/statm has no resident field")?
        .parse()?;
    Ok(pages * 4096)
}

/// 50 tools: every Rust guest whose `describe()` is well-behaved, every
/// kit of every language, then the common Rust tools again under other
/// names (as operators configure one component twice with other grants).
fn components() -> Vec<PathBuf> {
    let rust = [
        airlock_test_artifacts::ECHO,
        airlock_test_artifacts::JSON_TRANSFORM,
        airlock_test_artifacts::HTTP_GET,
        airlock_test_artifacts::ENV_SNOOP,
        airlock_test_artifacts::HUGE_OUTPUT,
        airlock_test_artifacts::SOCKET_DIALER,
        airlock_test_artifacts::SECRET_HUNTER,
        airlock_test_artifacts::FAULTS,
        airlock_test_artifacts::TRAP,
        airlock_test_artifacts::MEMORY_BOMB,
        airlock_test_artifacts::DEEP_RECURSION,
        airlock_test_artifacts::SPIN_FOREVER,
    ];
    let mut all: Vec<PathBuf> = rust.iter().map(PathBuf::from).collect();
    all.extend(kits::all().iter().map(|kit| kit.path.clone()));
    let again = [
        airlock_test_artifacts::ECHO,
        airlock_test_artifacts::JSON_TRANSFORM,
        airlock_test_artifacts::HTTP_GET,
    ];
    let mut n = 0;
    while all.len() < TOOLS {
        all.push(PathBuf::from(again[n % again.len()]));
        n += 1;
    }
    all.truncate(TOOLS);
    all
}

fn config(dir: &Path, components: &[PathBuf]) -> Result<PathBuf, Error> {
    let mut text = String::new();
    for (n, component) in components.iter().enumerate() {
        writeln!(
            text,
            "[[tools]]\nname = \"tool-{n:02}\"\ncomponent = \"{}\"\n",
            component.display()
        )?;
    }
    let path = dir.join("airlock.toml");
    std::fs::write(&path, text)?;
    Ok(path)
}

fn median(samples: &mut [Duration]) -> Duration {
    stats::percentile(samples, 0.5)
}

async fn large_component() -> Result<(), Error> {
    let python = kits::kit("python", "echo").path;
    let size = std::fs::metadata(&python)?.len();
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for _ in 0..ROUNDS {
        let cache = tempfile::tempdir()?;
        for samples in [&mut first, &mut second] {
            let host = host(cache.path(), None)?;
            let start = Instant::now();
            host.load(python.as_path(), Grants::none()).await?;
            samples.push(start.elapsed());
        }
    }
    let (first, second) = (median(&mut first), median(&mut second));
    let speedup = first.as_secs_f64() / second.as_secs_f64();
    println!(
        "P5 a large component: Python echo, {:.1} MiB, median of {ROUNDS}",
        size as f64 / 1048576.0
    );
    println!(
        "  first load (compile)            {:9.1} ms",
        first.as_secs_f64() * 1e3
    );
    println!(
        "  second load (verified cache)    {:9.1} ms",
        second.as_secs_f64() * 1e3
    );
    println!(
        "  speed-up: {speedup:.0}x   target >= 50x   {}",
        if speedup >= 50.0 {
            "OK"
        } else {
            "UNDER TARGET"
        }
    );
    Ok(())
}

async fn start(cache: &Path, state: &Path, config: &Path) -> Result<(Duration, Server), Error> {
    let host = host(cache, Some(state))?;
    let start = Instant::now();
    let server = Server::start(
        host,
        Sources {
            config: config.to_path_buf(),
            policies: Some(airlock_tests::permit_all_dir()),
            state_dir: state.to_path_buf(),
            locked: false,
        },
    )
    .await?;
    let elapsed = start.elapsed();
    assert_eq!(server.tool_names().len(), TOOLS);
    Ok((elapsed, server))
}

async fn serve_start() -> Result<(), Error> {
    let dir = tempfile::tempdir()?;
    let components = components();
    let config = config(dir.path(), &components)?;
    let (mut cold, mut warm) = (Vec::new(), Vec::new());
    let mut per_tool = Vec::new();
    for round in 0..ROUNDS {
        let cache = tempfile::tempdir()?;
        let state = dir.path().join(format!("state-{round}"));
        let (elapsed, server) = start(cache.path(), &state, &config).await?;
        cold.push(elapsed);
        server.shutdown().await?;
        drop(server);

        let before = resident()?;
        let (elapsed, server) = start(cache.path(), &state, &config).await?;
        warm.push(elapsed);
        per_tool.push(resident()?.saturating_sub(before) / TOOLS as u64);
        server.shutdown().await?;
    }
    let total: u64 = components
        .iter()
        .map(|c| std::fs::metadata(c).map(|m| m.len()).unwrap_or(0))
        .sum();
    let (cold, warm) = (median(&mut cold), median(&mut warm));
    println!(
        "P5 `airlock serve` start-up, {TOOLS} tools ({:.1} MiB of components), median of {ROUNDS}",
        total as f64 / 1048576.0
    );
    println!(
        "  cold (empty compile cache)      {:9.1} ms",
        cold.as_secs_f64() * 1e3
    );
    println!(
        "  warm (cache filled)             {:9.1} ms   target <= 1000 ms   {}",
        warm.as_secs_f64() * 1e3,
        if warm <= Duration::from_secs(1) {
            "OK"
        } else {
            "OVER TARGET"
        }
    );
    per_tool.sort_unstable();
    let per_tool = per_tool[per_tool.len() / 2];
    let budget = (2u64 << 30) / 200;
    println!(
        "  resident memory per loaded tool {:9.2} MiB   target <= {:.2} MiB (200 tools in 2 GiB)   {}",
        per_tool as f64 / 1048576.0,
        budget as f64 / 1048576.0,
        if per_tool <= budget {
            "OK"
        } else {
            "OVER TARGET"
        }
    );
    Ok(())
}

fn main() -> Result<(), Error> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        large_component().await?;
        serve_start().await
    })
}
