//! The `airlock` binary; see `cli` for the commands.

mod cli;

// glibc's allocator serialised `airlock serve`'s worker threads: memory
// allocated on one thread and freed on another (a call's journal entries,
// its request and response) waited on the other thread's arena lock,
// which profiles showed as most of the idle time with two workers.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // Inside a strict native sandbox this binary is the bridge to the
    // egress proxy (see `airlock_sandbox::bridge`).
    #[cfg(unix)]
    {
        let mut args = std::env::args_os().skip(1);
        if args
            .next()
            .is_some_and(|first| first == airlock_sandbox::bridge::BRIDGE_COMMAND)
        {
            let code = airlock_sandbox::bridge::main_with(args);
            return std::process::ExitCode::from(u8::try_from(code).unwrap_or(1));
        }
    }
    cli::main()
}
