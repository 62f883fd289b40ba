//! The airlock demo: builds the guest tools, then runs a useful tool, a
//! transforming tool and hostile ones on one host with its built-in defaults.
//!
//! ```sh
//! cargo run --example demo
//! ```
//!
//! Each step prints the `airlock` CLI command that does the same thing. The
//! demo exits non-zero if any step does not end the way it should.

use airlock::{Grants, Host, Invocation, Limits, Outcome, Tool};
use std::path::Path;
use std::process::ExitCode;
use std::time::Duration;

struct Step {
    guest: &'static str,
    what: &'static str,
    input: &'static str,
    flags: &'static str,
    limits: Limits,
    expect: &'static str,
}

fn steps() -> Vec<Step> {
    let defaults = Limits::default;
    vec![
        Step {
            guest: "echo",
            what: "a pure tool returns its input",
            input: r#"{"hello":"airlock"}"#,
            flags: "",
            limits: defaults(),
            expect: "ok",
        },
        Step {
            guest: "json-transform",
            what: "a pure tool does real work on JSON",
            input: r#"{"records":[{"name":"ada","age":36},{"name":"bob","age":17},{"name":"cy","age":52}],"where":{"field":"age","op":"ge","value":18},"select":["name"],"sort_by":"age","descending":true}"#,
            flags: "",
            limits: defaults(),
            expect: "ok",
        },
        Step {
            guest: "spin-forever",
            what: "an infinite loop is stopped at its deadline",
            input: "{}",
            flags: " --timeout 500ms",
            limits: Limits {
                timeout: Duration::from_millis(500),
                ..defaults()
            },
            expect: "deadline_exceeded",
        },
        Step {
            guest: "memory-bomb",
            what: "a memory bomb hits its memory limit",
            input: "{}",
            flags: " --memory 32MiB",
            limits: Limits {
                max_memory_bytes: 32 << 20,
                ..defaults()
            },
            expect: "memory_limit",
        },
        Step {
            guest: "http-get",
            what: "a network tool without a grant reaches nothing",
            input: r#"{"url":"http://169.254.169.254/latest/meta-data/"}"#,
            flags: "",
            limits: defaults(),
            expect: "tool_denied",
        },
        Step {
            guest: "echo",
            what: "and the same host keeps serving",
            input: r#"{"still":"serving"}"#,
            flags: "",
            limits: defaults(),
            expect: "ok",
        },
    ]
}

fn guest(name: &str) -> &'static str {
    airlock_test_artifacts::GUESTS
        .iter()
        .find(|(guest, _)| *guest == name)
        .map(|(_, path)| *path)
        .unwrap_or_default()
}

fn show(path: &str) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    Path::new(path)
        .strip_prefix(&cwd)
        .unwrap_or(Path::new(path))
        .display()
        .to_string()
}

async fn load(host: &Host, name: &str) -> Result<Tool, airlock::LoadError> {
    host.load(Path::new(guest(name)), Grants::none()).await
}

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    println!(
        "airlock demo: every tool below is a WASI 0.2 component in guests/, built for wasm32-wasip2.\n"
    );
    let host = Host::builder().cache_dir(".airlock/cache").build()?;

    let echo = load(&host, "echo").await?;
    let info = echo.info();
    println!("$ airlock inspect {}", show(guest("echo")));
    let mut roles: Vec<&str> = info.imports.iter().map(|i| i.role.explain()).collect();
    roles.dedup();
    println!("  sha256 {}  world {}", info.sha256, info.world);
    println!("  {} imports: {}\n", info.imports.len(), roles.join("; "));

    let mut failures = 0;
    for step in steps() {
        let tool = load(&host, step.guest).await?;
        println!("# {} ({}, world {})", step.what, step.guest, tool.world());
        println!(
            "$ airlock run {} --input '{}'{}",
            show(guest(step.guest)),
            step.input,
            step.flags
        );
        let outcome = host
            .invoke(&tool, Invocation::new(step.input).with_limits(step.limits))
            .await?;
        match &outcome {
            Outcome::Completed { output, report } => {
                println!("  {output}");
                println!(
                    "  ok in {:.2?}, peak memory {} KiB",
                    report.duration,
                    report.memory_peak_bytes / 1024
                );
            }
            other => println!(
                "  {} (exit {}): {}",
                other.code(),
                other.exit_code(),
                other.message().unwrap_or_default()
            ),
        }
        if outcome.code() != step.expect {
            println!("  !! expected {}", step.expect);
            failures += 1;
        }
        println!();
    }

    if failures == 0 {
        println!(
            "Every tool ended the way it should. Next: `cargo run -p airlock -- --help`, or the README."
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failures} step(s) did not end as expected.");
        Ok(ExitCode::FAILURE)
    }
}
