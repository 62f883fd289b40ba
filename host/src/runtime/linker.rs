//! The one [`Linker`] every tool is instantiated against.

use super::state::StoreState;
use wasmtime::Engine;
use wasmtime::component::Linker;

/// Links base WASI (grants decide what it can reach), `wasi:sockets` (denied
/// by the context's settings) and `wasi:http` (through the egress hook).
pub(crate) fn build(engine: &Engine) -> wasmtime::Result<Linker<StoreState>> {
    let mut linker = Linker::new(engine);
    wasmtime_wasi::p2::add_to_linker_async(&mut linker)?;
    wasmtime_wasi_http::p2::add_only_http_to_linker_async(&mut linker)?;
    Ok(linker)
}
