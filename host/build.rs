//! Records the versions of the engines airlock is built with (from the
//! workspace's Cargo.lock) for `airlock --version` and `airlock version`.

use std::path::Path;

const CRATES: [(&str, &str); 3] = [
    ("wasmtime", "AIRLOCK_WASMTIME_VERSION"),
    ("cedar-policy", "AIRLOCK_CEDAR_VERSION"),
    ("rmcp", "AIRLOCK_RMCP_VERSION"),
];

fn main() {
    // Read when the script runs, not baked in when it is compiled: a build
    // directory moved to another checkout must not read the old one's lock.
    let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR").unwrap_or_default();
    let lock = Path::new(&manifest_dir).join("../Cargo.lock");
    println!("cargo:rerun-if-changed={}", lock.display());
    // Built as a dependency of another workspace there is no lock here.
    let text = std::fs::read_to_string(&lock).unwrap_or_default();
    for (name, variable) in CRATES {
        let version = locked_version(&text, name).unwrap_or("unknown");
        println!("cargo:rustc-env={variable}={version}");
    }
}

/// The version of `name` in a Cargo.lock: the line after `name = "NAME"`.
fn locked_version<'a>(lock: &'a str, name: &str) -> Option<&'a str> {
    let needle = format!("name = \"{name}\"");
    let mut lines = lock.lines();
    lines.find(|line| line.trim() == needle)?;
    lines
        .next()?
        .trim()
        .strip_prefix("version = \"")?
        .strip_suffix('"')
}
