//! Writes the WASI preview-1 *reactor* adapter to the path given as the only
//! argument. `wasm-tools component new --adapt` uses it to turn a C or Go
//! `wasm32-wasip1` module into a WASI 0.2 component.

use std::process::ExitCode;

fn main() -> ExitCode {
    let Some(out) = std::env::args_os().nth(1) else {
        eprintln!("usage: airlock-wasi-adapter OUT.wasm");
        return ExitCode::from(2);
    };
    let bytes = wasi_preview1_component_adapter_provider::WASI_SNAPSHOT_PREVIEW1_REACTOR_ADAPTER;
    match std::fs::write(&out, bytes) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("cannot write {}: {e}", std::path::Path::new(&out).display());
            ExitCode::FAILURE
        }
    }
}
