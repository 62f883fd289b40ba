//! Benchmark P6: a trivial native tool (`cat`, echoing its JSON input)
//! through `Host::invoke_native` (admission, Cedar `tool.execute` and
//! `process.exec`, the seccomp filter, limits, a journaled attestation)
//! against the bare `bwrap` command with the same flags, interleaved in one
//! run. Prints both p50s and their ratio; the target is at most 1.2.
//!
//! The baseline runs the bwrap argument list airlock builds for the same
//! plan, without `--seccomp` (which needs the filter airlock prepares per
//! run; that preparation is part of what is measured).
//!
//! `cargo bench -p airlock-tests --bench p6_native [-- ITERATIONS]` (Linux,
//! bubblewrap installed).

use airlock::native::{NativeNetwork, NativeSpec, Tier};
use airlock::{Grants, Host, Invocation};
use airlock_tests::stats;
use std::io::Write;
use std::process::{Command, Stdio};
use std::time::Instant;

const INPUT: &str = r#"{"query": "weather in Lisbon", "units": "metric"}"#;
const WARMUP: usize = 20;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations = stats::iterations(300);
    let bwrap = airlock_sandbox::find_program("bwrap".as_ref(), std::env::var_os("PATH"))
        .ok_or("bubblewrap is not installed: apt-get install bubblewrap")?;
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()?;
    runtime.block_on(async {
        let state = tempfile::tempdir()?;
        let host = Host::builder()
            .state_dir(state.path())
            .policies(airlock_tests::permit_all())
            .build()?;
        let spec = NativeSpec {
            program: "cat".into(),
            args: Vec::new(),
            tier: Tier::Sandbox,
            network: NativeNetwork::None,
            fs_read: Vec::new(),
            fs_write: Vec::new(),
            limits: airlock_sandbox::ProcessLimits::default(),
            hide_airlock_files: false,
        };
        let tool = host.load_native("cat", spec, Grants::none())?;
        let bare_args =
            airlock_sandbox::linux_bwrap::arguments(&tool.sandbox_plan()?, &|p| p.exists(), None);

        let bare_call = || -> Result<std::time::Duration, Box<dyn std::error::Error>> {
            let start = Instant::now();
            let mut child = Command::new(&bwrap)
                .args(&bare_args)
                .env_clear()
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()?;
            child
                .stdin
                .take()
                .ok_or("stdin")?
                .write_all(INPUT.as_bytes())?;
            let output = child.wait_with_output()?;
            let elapsed = start.elapsed();
            assert_eq!(String::from_utf8_lossy(&output.stdout), INPUT);
            Ok(elapsed)
        };
        let host_call = || async {
            let start = Instant::now();
            let outcome = host.invoke_native(&tool, Invocation::new(INPUT)).await?;
            let elapsed = start.elapsed();
            assert_eq!(outcome.output(), Some(INPUT), "{outcome:?}");
            Ok::<_, airlock::InvokeError>(elapsed)
        };

        for _ in 0..WARMUP {
            bare_call()?;
            host_call().await?;
        }
        let mut bare_samples = Vec::with_capacity(iterations);
        let mut host_samples = Vec::with_capacity(iterations);
        for i in 0..iterations {
            // Alternate which goes first so neither always sees a warmer cache.
            if i % 2 == 0 {
                bare_samples.push(bare_call()?);
                host_samples.push(host_call().await?);
            } else {
                host_samples.push(host_call().await?);
                bare_samples.push(bare_call()?);
            }
        }
        stats::report(
            &format!("P6 native `cat` under bubblewrap, {iterations} interleaved iterations"),
            ("bare bwrap (same flags)", &mut bare_samples),
            ("airlock Host::invoke_native", &mut host_samples),
            1.2,
        );
        Ok(())
    })
}
