//! Host-side bindings for the `airlock:tool/tool` export.
//!
//! Generated from the `pure` world: every world exports the same interface,
//! and imports are satisfied by the linker, not by these bindings.

wasmtime::component::bindgen!({
    path: "../wit",
    world: "airlock:tool/pure",
    exports: { default: async },
});

pub(crate) use exports::airlock::tool::tool::{Descriptor as WitDescriptor, Error as WitError};

use super::state::StoreState;
use wasmtime::component::InstancePre;

/// A tool pre-linked against the host's linker, with the positions of its
/// exports resolved once. The exports' *types* are checked when an instance
/// is bound, which [`Host::load`](crate::Host::load) does once via `describe()`.
pub(crate) struct ToolPre {
    pub instance_pre: InstancePre<StoreState>,
    pub indices: PureIndices,
}

impl ToolPre {
    pub(crate) fn new(instance_pre: InstancePre<StoreState>) -> wasmtime::Result<Self> {
        let indices = PureIndices::new(&instance_pre)?;
        Ok(Self {
            instance_pre,
            indices,
        })
    }
}
