//! Embedding airlock: build a host, load a tool, invoke it, read the outcome.
//!
//! ```sh
//! cargo run --example embed                 # runs the bundled `echo` guest
//! cargo run --example embed -- tool.wasm '{"x": 1}'
//! ```

use airlock::{Grants, Host, Invocation, Limits, Outcome};
use std::path::PathBuf;
use std::time::Duration;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let component = args.next().map_or_else(
        || PathBuf::from(airlock_test_artifacts::ECHO),
        PathBuf::from,
    );
    let input = args
        .next()
        .unwrap_or_else(|| r#"{"hello": "airlock"}"#.to_string());

    // One host per process: it owns the engine, the instance pool and the cache.
    let host = Host::builder()
        .cache_dir(".airlock/cache")
        .default_limits(Limits {
            timeout: Duration::from_secs(5),
            ..Limits::default()
        })
        .build()?;

    // Loading inspects, classifies, compiles (or reuses the cache) and pre-links.
    let tool = host.load(component.as_path(), Grants::none()).await?;
    let info = tool.info();
    println!(
        "loaded {} ({}), world {}",
        tool.name(),
        info.sha256,
        info.world
    );

    // Each invocation gets a fresh instance under its limits.
    let outcome = host.invoke(&tool, Invocation::new(input)).await?;
    match &outcome {
        Outcome::Completed { output, report } => {
            println!("output: {output}");
            println!(
                "took {:?}, peak memory {} bytes",
                report.duration, report.memory_peak_bytes
            );
        }
        other => println!("{}: {}", other.code(), other.message().unwrap_or_default()),
    }
    std::process::exit(i32::from(outcome.exit_code()));
}
