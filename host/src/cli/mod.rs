//! The `airlock` command line: parse flags (`args`), build a [`Host`], run the
//! command, map the result to an exit code. Commands only use the library's
//! public API.

mod args;
mod inspect;
mod progress;
mod render;
mod run;

use airlock::{Host, exit_code};
use args::{Cli, Command};
use clap::Parser;
use std::process::ExitCode;

/// Runs the CLI and returns its exit code.
pub fn main() -> ExitCode {
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(e) => {
            // clap prints help/version to stdout (exit 0) and errors to stderr (exit 2).
            let _ = e.print();
            return ExitCode::from(u8::try_from(e.exit_code()).unwrap_or(exit_code::USAGE));
        }
    };
    init_tracing(cli.verbose);
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(e) => {
            return ExitCode::from(fail(
                "runtime_failed",
                &format!("starting the async runtime failed: {e}"),
                exit_code::USAGE,
            ));
        }
    };
    let code = runtime.block_on(async {
        match &cli.command {
            Command::Run(run) => run::run(&cli, run).await,
            Command::Inspect(inspect) => inspect::inspect(&cli, inspect).await,
        }
    });
    ExitCode::from(code)
}

fn init_tracing(verbose: u8) {
    let default = match verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
}

/// Prints `airlock: <reason code>: <message>` to stderr and returns `exit`.
pub(crate) fn fail(code: &str, message: &str, exit: u8) -> u8 {
    eprintln!("airlock: {code}: {message}");
    exit
}

/// A host configured from the global flags. Its default limits (which also
/// bound `describe()` at load) stay the built-in ones; a command's limit flags
/// apply to the invocation it runs.
pub(crate) fn build_host(cli: &Cli, fuel_metering: bool) -> Result<Host, airlock::BuildError> {
    let mut builder = Host::builder()
        .fuel_metering(fuel_metering)
        .on_compile(progress::compile_spinner());
    if !cli.no_cache {
        builder = builder.cache_dir(cli.state_dir.join("cache"));
    }
    builder.build()
}
