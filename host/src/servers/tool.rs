//! [`HostedTool`]: one tool of a hosted server, as airlock serves it
//! (`SERVER.TOOL`) and governs it: what policies see of it, what an
//! approval binds, and the executor behind the one invoke path.

use super::{Called, HostedServer};
use crate::approvals::GrantBinding;
use crate::invocation::Wait;
use crate::kernel::{Admit, Executed, Executor, Kernel, Running};
use crate::native::{ProgramBinding, listed_paths};
use crate::outcome::Captured;
use crate::outcome::{InvokeError, LimitExceeded, Outcome, RunReport, ToolError, ToolErrorKind};
use crate::policy::ToolFacts;
use crate::trail::Execution;
use crate::vocabulary::{Enforcement, ExecutorKind, World};
use std::sync::Arc;
use std::time::Instant;

/// One tool of a hosted server.
#[derive(Clone)]
pub struct HostedTool {
    server: HostedServer,
    remote: String,
    facts: ToolFacts,
}

impl std::fmt::Debug for HostedTool {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HostedTool")
            .field("name", &self.facts.name)
            .field("server", &self.server.name())
            .finish_non_exhaustive()
    }
}

impl HostedTool {
    /// Server `server`'s tool `remote`, served as `SERVER.TOOL`.
    pub fn new(server: HostedServer, remote: &str) -> Self {
        let config = server.config();
        let facts = ToolFacts {
            server: Some(config.name.clone()),
            ..ToolFacts::derive(
                &format!("{}.{remote}", config.name),
                World::McpServer,
                config.capabilities(),
                server.sha256(),
                config.tool(remote).sensitive,
            )
        };
        Self {
            remote: remote.to_string(),
            facts,
            server,
        }
    }

    /// What policies see: `SERVER.TOOL`, world `mcp-server`, the
    /// capabilities the server's grants give, its program's digest.
    pub fn facts(&self) -> &ToolFacts {
        &self.facts
    }

    /// The server it belongs to.
    pub fn server(&self) -> &HostedServer {
        &self.server
    }

    /// The server's own name for it.
    pub fn remote_name(&self) -> &str {
        &self.remote
    }

    /// What an approval of it binds: the program and its digest, the
    /// arguments, which environment variables are set (and, in the digest
    /// only, their values), the mounts, the network grant and the limits.
    pub fn binding(&self) -> GrantBinding {
        let config = self.server.config();
        let grants = config
            .network
            .clone()
            .unwrap_or_else(crate::grants::Grants::none);
        let mut parts = ProgramBinding {
            program: format!(
                "program {} {}",
                self.server.program().display(),
                self.server.sha256()
            ),
            args: &config.args,
            how: vec![format!("env {:?}", config.env)],
            fs_read: &config.fs_read,
            fs_write: &config.fs_write,
            limits: &config.limits,
            hide_airlock_files: config.hide_airlock_files,
        }
        .parts(&grants);
        parts.push(format!("tool {}", self.remote));
        let names: Vec<&str> = config.env.iter().map(|(k, _)| k.as_str()).collect();
        let summary = format!(
            "tool `{}` of server `{}` ({} {:?}; env [{}]; read [{}]; write [{}]); {}",
            self.remote,
            config.name,
            self.server.program().display(),
            config.args,
            names.join(", "),
            listed_paths(&config.fs_read),
            listed_paths(&config.fs_write),
            if config.network.is_some() {
                grants.summary()
            } else {
                "no network".to_string()
            }
        );
        GrantBinding::new(summary, parts)
    }
}

impl Executor for HostedTool {
    fn facts(&self) -> &ToolFacts {
        &self.facts
    }

    fn binding(&self) -> GrantBinding {
        HostedTool::binding(self)
    }

    fn execution(&self) -> Execution {
        Execution {
            executor: ExecutorKind::McpServer,
            enforcement: if self.server.config().network.is_some() {
                Enforcement::Strict
            } else {
                Enforcement::NetworkNone
            },
        }
    }

    fn process_limits(&self) -> Option<&airlock_sandbox::ProcessLimits> {
        Some(&self.server.config().limits)
    }

    fn execute<'a>(&'a self, kernel: &'a Kernel, admit: &'a Admit<'a>) -> Running<'a> {
        Box::pin(call(self, kernel, admit))
    }
}

/// The hosted-server executor: the call goes to the server (started again
/// first if it died), with the deadline and cancellation of the invocation;
/// the server's result passes through as the output.
async fn call(
    tool: &HostedTool,
    kernel: &Kernel,
    admit: &Admit<'_>,
) -> Result<Executed, InvokeError> {
    let (invocation, limits) = (admit.invocation, admit.limits);
    let started = Instant::now();
    let mut report = RunReport::not_started_as(admit.invocation_id.to_string(), limits.clone());
    let failed = |message: String, mut report: RunReport| {
        report.duration = started.elapsed();
        Outcome::ToolError {
            error: ToolError {
                kind: ToolErrorKind::Failed,
                message,
            },
            report,
        }
    };
    let arguments = match serde_json::from_str(&invocation.input) {
        Ok(serde_json::Value::Object(arguments)) => arguments,
        _ => {
            return Ok(Executed::Ran(failed(
                "a hosted server's tool takes a JSON object".into(),
                report,
            )));
        }
    };
    if let Err(error) = tool.server.ensure_running().await {
        return Ok(Executed::Ran(failed(
            format!("{}: {}", error.code(), error.for_agent()),
            report,
        )));
    }
    let progress = invocation.on_wait.clone().map(|observer| {
        Arc::new(move |message: String| (observer.0)(&Wait::Progress { message }))
            as super::ProgressSink
    });
    let egress = tool.server.egress();
    let in_flight = egress.as_ref().map(|egress| {
        egress.call(
            kernel,
            admit.invocation_id,
            // `call` adds the server's own credential bindings.
            admit.requester(&tool.facts, crate::egress::Credentials::default()),
        )
    });
    let called = tool
        .server
        .call(
            &tool.remote,
            arguments,
            progress,
            &invocation.cancel,
            limits.timeout,
        )
        .await;
    report.duration = started.elapsed();
    if let Some(in_flight) = in_flight {
        report.egress = in_flight.records();
    }
    if let Some(egress) = &egress {
        egress.journal_session(kernel);
    }
    Ok(Executed::Ran(match called {
        Ok(Called::Answered(result)) => {
            let output = serde_json::to_string(&result).unwrap_or_default();
            if result.is_error == Some(true) {
                let message = result
                    .content
                    .iter()
                    .find_map(|c| c.as_text().map(|t| t.text.clone()))
                    .unwrap_or_else(|| "the server reported an error".into());
                report.stdout = Captured {
                    text: output,
                    dropped_bytes: 0,
                };
                failed(message, report)
            } else {
                crate::outcome::completed(output, report)
            }
        }
        Ok(Called::Cancelled) => Outcome::LimitExceeded {
            limit: LimitExceeded::Cancelled,
            report,
        },
        Ok(Called::TimedOut) => Outcome::LimitExceeded {
            limit: LimitExceeded::Deadline {
                timeout: limits.timeout,
            },
            report,
        },
        Err(error) => failed(format!("{}: {error}", error.code()), report),
    }))
}
