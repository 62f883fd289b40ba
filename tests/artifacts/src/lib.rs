//! Paths of airlock's guest components, built for `wasm32-wasip2` from
//! `guests/` by this crate's build script.
//!
//! ```no_run
//! let echo = std::fs::read(airlock_test_artifacts::ECHO)?;
//! assert!(echo.starts_with(b"\0asm"));
//! # Ok::<(), std::io::Error>(())
//! ```

include!(concat!(env!("OUT_DIR"), "/guests.rs"));
