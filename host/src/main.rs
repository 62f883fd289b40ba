//! The `airlock` binary; see `cli` for the commands.

mod cli;

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
