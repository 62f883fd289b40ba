//! `airlock version`, `airlock completions` and `airlock man` (the last two
//! generated from the clap definitions that parse the command line, so they
//! cannot drift from it).

use super::args::Cli;
use super::{Failure, output_failed};
use airlock::exit_code;
use clap::CommandFactory;
use std::io::Write;
use std::path::Path;

/// Prints what this build is made of.
pub fn version(json: bool) -> u8 {
    use airlock::build_info as b;
    let parts = [
        ("airlock", b::AIRLOCK.to_string()),
        ("wasmtime", b::WASMTIME.to_string()),
        ("cedar-policy", b::CEDAR.to_string()),
        ("rmcp", b::RMCP.to_string()),
        ("tool-interface", b::tool_interface()),
        ("wasi", b::wasi()),
    ];
    if json {
        let object: serde_json::Map<String, serde_json::Value> = parts
            .into_iter()
            .map(|(name, version)| (name.to_string(), version.into()))
            .collect();
        outln!("{}", serde_json::Value::Object(object));
    } else {
        for (name, version) in parts {
            outln!("{name:<15}{version}");
        }
    }
    exit_code::OK
}

/// Prints the completion script for `shell`.
pub fn completions(shell: clap_complete::Shell) -> u8 {
    let mut command = Cli::command();
    let mut out = Vec::new();
    clap_complete::generate(shell, &mut command, "airlock", &mut out);
    emit(&out)
}

/// Prints airlock(1), or writes a page per command into `dir`.
pub fn man(dir: Option<&Path>) -> u8 {
    let command = Cli::command();
    match dir {
        None => {
            let mut out = Vec::new();
            match clap_mangen::Man::new(command).render(&mut out) {
                Ok(()) => emit(&out),
                Err(e) => Failure::usage("man_failed", e.to_string()).report(),
            }
        }
        Some(dir) => match write_pages(command, dir) {
            Ok(count) => {
                outln!("{count} pages written to {}", dir.display());
                exit_code::OK
            }
            Err(e) => Failure::usage(
                "man_failed",
                format!("cannot write the manual pages into {}: {e}", dir.display()),
            )
            .report(),
        },
    }
}

fn write_pages(command: clap::Command, dir: &Path) -> std::io::Result<usize> {
    std::fs::create_dir_all(dir)?;
    clap_mangen::generate_to(command, dir)?;
    Ok(std::fs::read_dir(dir)?
        .filter_map(Result::ok)
        .filter(|e| e.path().extension().is_some_and(|x| x == "1"))
        .count())
}

fn emit(bytes: &[u8]) -> u8 {
    let mut stdout = std::io::stdout().lock();
    if let Err(error) = stdout.write_all(bytes).and_then(|()| stdout.flush()) {
        output_failed(&error);
    }
    exit_code::OK
}
