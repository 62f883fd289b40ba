//! The component's only door to the network: airlock's own `wasi:http`
//! outgoing handler.
//!
//! wasmtime-wasi-http is built without `default-send-request`, so no sender
//! exists in the binary except the hook here. Until the egress policy engine
//! lands, the hook denies every request.

mod hook;

pub(crate) use hook::EgressHook;
