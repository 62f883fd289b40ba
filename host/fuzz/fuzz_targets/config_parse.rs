//! `airlock.toml`: any text parses or is refused with a located error,
//! never a panic.
#![no_main]

use airlock::Config;
use libfuzzer_sys::fuzz_target;
use std::path::Path;

fuzz_target!(|text: &str| {
    if let Ok(config) = Config::from_toml(text, "airlock.toml", Path::new("/nonexistent")) {
        let _ = config.tools().len();
    }
});
