//! The strict-network bridge for native tools in tests (the `airlock`
//! binary plays this part in production).

#[cfg(unix)]
fn main() {
    std::process::exit(airlock_sandbox::bridge::main_with(
        std::env::args_os().skip(1),
    ));
}

#[cfg(not(unix))]
fn main() {}
