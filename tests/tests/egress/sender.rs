//! The only `wasi:http` sender in airlock is its egress hook: the airlock
//! library and the `airlock` binary (airlock-cli) are built without wasmtime-wasi-http's
//! `default-send-request`, which only the P2 benchmark's baseline enables
//! (as a dev-dependency of this test crate).

use std::process::Command;

#[test]
fn airlock_is_built_without_the_stock_sender() {
    for package in ["airlock", "airlock-serve", "airlock-cli"] {
        built_without_the_stock_sender(package);
    }
}

fn built_without_the_stock_sender(package: &str) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let manifest = concat!(env!("CARGO_MANIFEST_DIR"), "/../Cargo.toml");
    let tree = Command::new(cargo)
        .args(["tree", "--manifest-path", manifest, "--locked", "--offline"])
        .args(["-e", "features", "-p", package, "-i", "wasmtime-wasi-http"])
        .output()
        .expect("run cargo tree");
    let text = String::from_utf8_lossy(&tree.stdout);
    assert!(
        tree.status.success(),
        "cargo tree failed: {}",
        String::from_utf8_lossy(&tree.stderr)
    );
    assert!(
        text.contains("wasmtime-wasi-http feature \"p2\""),
        "the tree names {package}'s wasi:http features:\n{text}"
    );
    assert!(
        !text.contains("default-send-request"),
        "{package} pulls in the stock sender:\n{text}"
    );
}
