//! Paths of airlock's guest components, built for `wasm32-wasip2` from
//! `guests/` by this crate's build script.
//!
//! ```no_run
//! let echo = std::fs::read(airlock_test_artifacts::ECHO)?;
//! assert!(echo.starts_with(b"\0asm"));
//! # Ok::<(), std::io::Error>(())
//! ```

/// One tool of one language kit, built by `guests/build`.
#[derive(Clone, Copy, Debug)]
pub struct KitGuest {
    /// `python`, `js`, `c` or `go`.
    pub lang: &'static str,
    /// The tool, as in `guests/kits.toml` (`echo`, `http-get`, ...).
    pub tool: &'static str,
    /// The world it was built against.
    pub world: &'static str,
    /// The component.
    pub path: &'static str,
}

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
