//! `airlock-bridge`: see [`airlock_sandbox::bridge`].

#[cfg(unix)]
fn main() {
    std::process::exit(airlock_sandbox::bridge::main_with(
        std::env::args_os().skip(1),
    ));
}

#[cfg(not(unix))]
fn main() {
    eprintln!("airlock-bridge runs inside Linux sandboxes only");
    std::process::exit(125);
}
