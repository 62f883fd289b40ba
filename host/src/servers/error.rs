//! Why a hosted server could not load, start or answer.

use std::path::PathBuf;
use std::time::Duration;

/// Why a hosted server could not load, start or answer a call.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    /// The program cannot be found or read.
    #[error("server `{server}`: program {}: {message}", path.display())]
    Program {
        /// The server.
        server: String,
        /// The program as configured or found.
        path: PathBuf,
        /// Why.
        message: String,
    },
    /// A granted directory does not exist.
    #[error("server `{server}`: granted directory {} does not exist: create it or fix `fs_read`/`fs_write`", path.display())]
    Directory {
        /// The server.
        server: String,
        /// The directory.
        path: PathBuf,
    },
    /// A granted directory is, lies inside or contains airlock's own files.
    #[error("server `{server}`: {source}")]
    Protected {
        /// The server.
        server: String,
        /// Which grant and which file.
        source: crate::protected::ProtectedError,
    },
    /// The platform's sandbox does not confine files and network.
    #[error(
        "server `{server}` needs a sandbox that confines files and network, and {executor} does not: hosted servers run only confined"
    )]
    Unconfined {
        /// The server.
        server: String,
        /// The sandbox there is.
        executor: &'static str,
    },
    /// The process did not start, or the handshake failed.
    #[error("server `{server}` did not start: {message}")]
    Start {
        /// The server.
        server: String,
        /// Why.
        message: String,
    },
    /// The process ended, or closed its output, before it answered
    /// `initialize`.
    #[error(
        "server `{server}` {how} before it answered `initialize` ({cause}){}",
        quoted(stderr)
    )]
    Exited {
        /// The server.
        server: String,
        /// `exited with status 1`, `was killed by signal 9`, `closed its
        /// output`.
        how: String,
        /// What the handshake saw (the connection closed, a message past
        /// the size cap).
        cause: String,
        /// The last lines of its stderr.
        stderr: Vec<String>,
    },
    /// No answer to `initialize` (or to the tool listing) in time.
    #[error(
        "server `{server}` did not answer `initialize` within {}: it was stopped; check that it speaks MCP on stdio{}",
        humantime::format_duration(*after),
        quoted(stderr)
    )]
    InitTimeout {
        /// The server.
        server: String,
        /// The `init_timeout`.
        after: Duration,
        /// The last lines of its stderr by then.
        stderr: Vec<String>,
    },
    /// The server failed to start lately; the next try is not yet due.
    #[error("server `{server}` is restarting after failures: try again in {}", humantime::format_duration(Duration::from_secs(after.as_secs().max(1))))]
    Restarting {
        /// The server.
        server: String,
        /// When the next start may be tried.
        after: Duration,
    },
    /// The server died or closed the connection.
    #[error("server `{server}`: {message}")]
    Gone {
        /// The server.
        server: String,
        /// What happened.
        message: String,
    },
    /// The server answered with a JSON-RPC error.
    #[error("server `{server}` refused the call: {message}")]
    Refused {
        /// The server.
        server: String,
        /// Its message.
        message: String,
    },
    /// The server answered something that is not MCP.
    #[error("server `{server}` broke the protocol: {message}")]
    Protocol {
        /// The server.
        server: String,
        /// What it did.
        message: String,
    },
}

impl ServerError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            ServerError::Program { .. } => "server_program_invalid",
            ServerError::Directory { .. } => "server_directory_missing",
            ServerError::Protected { source, .. } => source.code(),
            ServerError::Unconfined { .. } => "sandbox_unavailable",
            ServerError::Start { .. } => "server_start_failed",
            ServerError::Exited { .. } => "server_exited",
            ServerError::InitTimeout { .. } => "server_init_timeout",
            ServerError::Gone { .. } => "server_gone",
            ServerError::Restarting { .. } => "server_restarting",
            ServerError::Refused { .. } => "server_refused",
            ServerError::Protocol { .. } => "server_protocol_error",
        }
    }
}

/// A server's last stderr lines, quoted for an operator.
fn quoted(stderr: &[String]) -> String {
    if stderr.is_empty() {
        return "; it wrote nothing to stderr".to_string();
    }
    let mut text = String::from("; the last lines of its stderr:");
    for line in stderr {
        text.push_str("\n  | ");
        text.push_str(line);
    }
    text
}

impl ServerError {
    /// What an agent is told: the same, except a server's own stderr,
    /// which may hold anything the server was given (the operator sees it
    /// in the log and `airlock servers status`).
    pub fn for_agent(&self) -> String {
        match self {
            ServerError::Exited { server, how, .. } => format!(
                "server `{server}` {how} before it answered `initialize`; the operator sees why in `airlock servers status`"
            ),
            ServerError::InitTimeout { server, after, .. } => format!(
                "server `{server}` did not answer `initialize` within {}; the operator sees why in `airlock servers status`",
                humantime::format_duration(*after)
            ),
            other => other.to_string(),
        }
    }
}
