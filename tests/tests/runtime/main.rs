//! Integration tests of the component runtime (issue: load, classify and run
//! WASI 0.2 tool components). One binary, one module per concern.

mod api;
mod bad_components;
mod cache;
mod fs_escapes;
mod guests;
mod limits;
mod wasi;
mod worlds;
