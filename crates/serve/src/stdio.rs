//! MCP over this process's stdin and stdout: one client, one session, every
//! call made as the configured stdio principal. The transport beside
//! [`crate::http`]; `airlock serve --stdio` is this and nothing more.

use crate::Server;
use crate::mcp::McpHandler;
use rmcp::ServiceExt as _;
use rmcp::service::ServerInitializeError;

/// Why MCP on stdio did not start.
#[derive(Debug, thiserror::Error)]
#[error("starting MCP on stdio: {0}")]
pub struct StdioError(#[from] ServerInitializeError);

impl StdioError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        "serve_failed"
    }
}

/// Serves `server` to the client on stdin and stdout until it goes away or
/// `stop` completes (then with `stop`'s output). Either way the client's
/// one session ends, and the approvals granted for it with it.
pub async fn serve<T>(
    server: &Server,
    stop: impl Future<Output = T>,
) -> Result<Option<T>, StdioError> {
    let principal = server.settings().stdio_principal.clone();
    let handler = McpHandler::stdio(server.clone(), principal);
    let session = handler.issued_session().map(str::to_string);
    let running = handler.serve(rmcp::transport::stdio()).await?;
    let client_gone = running.cancellation_token();
    let stopped = tokio::select! {
        _ = running.waiting() => None,
        stopped = stop => {
            client_gone.cancel();
            Some(stopped)
        }
    };
    if let Some(session) = session {
        server.end_session_approvals(&session).await;
    }
    Ok(stopped)
}
