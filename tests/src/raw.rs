//! Raw wasmtime, the benchmarks' baseline: bindings of the `pure` world's
//! export (which any tool component has) and the least state a WASI
//! component needs.

mod bindings {
    #![allow(missing_docs)]
    wasmtime::component::bindgen!({
        path: "../wit",
        world: "airlock:tool/pure",
        exports: { default: async },
    });
}

pub use bindings::PurePre;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

/// A context with nothing granted, and a resource table.
pub struct RawState {
    /// The WASI context.
    pub wasi: WasiCtx,
    /// The resource table.
    pub table: ResourceTable,
}

impl Default for RawState {
    fn default() -> Self {
        Self {
            wasi: WasiCtx::builder().build(),
            table: ResourceTable::new(),
        }
    }
}

impl WasiView for RawState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        WasiCtxView {
            ctx: &mut self.wasi,
            table: &mut self.table,
        }
    }
}
