//! The operator socket: a Unix domain socket through which operators
//! decide approvals, manage agents and reload a running `airlock serve`.
//! The server knows who connects from the kernel (`SO_PEERCRED`), not from
//! anything the caller says, and serves only the operators its
//! configuration lists, and only from its own user and PID namespaces (see
//! `peers`: a sandboxed tool may share the server's uid, never
//! its namespaces); decisions take [`Server::decide`]'s one path and are
//! recorded under the operator's name.
//!
//! The protocol is one JSON object per line each way: an
//! [`OperatorRequest`] (`{"op": "approvals.list", "all": false}`), then
//! `{"ok": true, "result": …}` or `{"ok": false, "code": …, "message": …}`.

use super::Server;
use super::decide::{DecideError, Decider};
use super::definitions::Verdict;
use airlock::approvals::{Approval, ApprovalError, OperatorDecision};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// The longest request line the server reads.
const MAX_LINE: usize = 64 * 1024;

/// What an operator asks of the server.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op")]
#[non_exhaustive]
pub enum OperatorRequest {
    /// Who the server takes the caller to be.
    #[serde(rename = "whoami")]
    Whoami,
    /// What the server serves and how busy it is.
    #[serde(rename = "status")]
    Status,
    /// Approvals, newest first (pending only unless `all`).
    #[serde(rename = "approvals.list")]
    ApprovalsList {
        /// Include decided ones.
        #[serde(default)]
        all: bool,
    },
    /// One approval.
    #[serde(rename = "approvals.show")]
    ApprovalsShow {
        /// Its id.
        id: String,
    },
    /// Decide a pending approval.
    #[serde(rename = "approvals.decide")]
    ApprovalsDecide {
        /// Its id.
        id: String,
        /// The decision.
        decision: OperatorDecision,
    },
    /// Re-read the configuration and policies.
    #[serde(rename = "reload")]
    Reload,
    /// Register an agent; the answer carries its token, once.
    #[serde(rename = "agents.add")]
    AgentsAdd {
        /// The agent's name.
        name: String,
    },
    /// The registered agents.
    #[serde(rename = "agents.list")]
    AgentsList,
    /// The last `count` journal entries, oldest first.
    #[serde(rename = "journal.tail")]
    JournalTail {
        /// How many.
        count: usize,
    },
    /// Checks the journal's chain and signed heads (`journal verify`).
    #[serde(rename = "journal.verify")]
    JournalVerify {
        /// The public key the verifier trusts (hex); the server's own
        /// when absent.
        #[serde(default)]
        key: Option<String>,
        /// A head kept elsewhere that the journal must extend.
        #[serde(default)]
        since: Option<airlock::journal::head::TreeHead>,
    },
    /// The newest signed tree head (`journal head`).
    #[serde(rename = "journal.head")]
    JournalHead,
    /// Remove an agent (its token stops working).
    #[serde(rename = "agents.remove")]
    AgentsRemove {
        /// The agent's name.
        name: String,
    },
    /// A one-time code that pairs a browser with the console as a device
    /// of the calling operator; the answer carries it, once.
    #[serde(rename = "devices.pair")]
    DevicesPair {
        /// The operator the device will belong to: the caller, who may
        /// name only themself.
        #[serde(default)]
        operator: Option<String>,
        /// How long the code lasts, in seconds (at most, and by default,
        /// five minutes).
        #[serde(default)]
        expires_secs: Option<u64>,
    },
    /// The hosted MCP servers and the tools each serves.
    #[serde(rename = "servers.list")]
    ServersList,
    /// How each hosted server stands (state, process, starts, last error).
    #[serde(rename = "servers.status")]
    ServersStatus,
    /// Start a hosted server again; its tools are listed anew.
    #[serde(rename = "servers.restart")]
    ServersRestart {
        /// The server's name.
        name: String,
    },
    /// The hosted servers' definition changes that wait for an operator
    /// (all of them, decided ones too, with `all`), newest first.
    #[serde(rename = "servers.changes")]
    ServersChanges {
        /// Include decided and superseded ones.
        #[serde(default)]
        all: bool,
    },
    /// Decide a pending definition change: accepted, the new definition
    /// is pinned and served; rejected, the pinned one keeps serving.
    #[serde(rename = "servers.decide")]
    ServersDecide {
        /// The change's id.
        id: String,
        /// Accept (true) or reject (false).
        accept: bool,
    },
    /// Every replica of the shared store with its signed statement and
    /// whether it verifies under `[fleet]`.
    #[serde(rename = "replicas.list")]
    ReplicasList,
    /// The paired devices, revoked ones included.
    #[serde(rename = "devices.list")]
    DevicesList,
    /// Revoke a device: its next request is refused.
    #[serde(rename = "devices.revoke")]
    DevicesRevoke {
        /// Its id.
        id: String,
    },
}

/// A refusal or failure, as data.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{code}: {message}")]
pub struct OperatorError {
    /// Stable reason code.
    pub code: String,
    /// For the operator.
    pub message: String,
}

impl OperatorError {
    fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        Self {
            code: code.into(),
            message: message.into(),
        }
    }
}

macro_rules! operator_error_from {
    ($($error:ty),*) => {$(
        impl From<$error> for OperatorError {
            fn from(e: $error) -> Self {
                Self::new(e.code(), e.to_string())
            }
        }
    )*};
}
operator_error_from!(
    ApprovalError,
    airlock::store::StoreError,
    super::AgentError,
    super::ServeError,
    super::DeviceError,
    DecideError
);

/// The operator the server identified, and what they asked.
async fn answer(
    server: &Server,
    operator: &str,
    request: OperatorRequest,
) -> Result<Value, OperatorError> {
    let host = server.host();
    let store = host
        .approvals()
        .ok_or_else(|| OperatorError::new("state_dir_required", "the server keeps no approvals"))?;
    Ok(match request {
        OperatorRequest::Whoami => json!({ "operator": operator }),
        OperatorRequest::Status => {
            let mut status = json!({
                "tools": server.tool_names(),
                "running": server.running(),
                "config": server.sources().config,
            });
            if let Some(shared) = super::replica::shared(server) {
                status["shared"] = super::replica::status(&shared)?;
            }
            if let Some(telemetry) = server.host().telemetry() {
                status["telemetry"] = json!(telemetry.status());
            }
            status
        }
        OperatorRequest::ApprovalsList { all } => serde_json::to_value(store.list(!all)?)
            .map_err(|e| OperatorError::new("internal", e.to_string()))?,
        OperatorRequest::ApprovalsShow { id } => {
            let approval = store.get(&id)?.ok_or(ApprovalError::NotFound { id })?;
            serde_json::to_value(approval)
                .map_err(|e| OperatorError::new("internal", e.to_string()))?
        }
        OperatorRequest::ApprovalsDecide { id, decision } => {
            let decider = Decider::Operator(operator.to_string());
            serde_json::to_value(server.decide(&decider, &id, &decision)?)
                .map_err(|e| OperatorError::new("internal", e.to_string()))?
        }
        OperatorRequest::Reload => json!({ "tools": server.reload().await? }),
        OperatorRequest::AgentsAdd { name } => {
            let (agent, token) = server.agents().add(&name)?;
            json!({ "agent": agent, "token": token.expose() })
        }
        OperatorRequest::AgentsList => json!(server.agents().list()?),
        OperatorRequest::JournalTail { count } => match super::replica::shared(server) {
            // Every replica's log, merged by time, each entry naming its replica.
            Some(shared) => Value::Array(
                shared
                    .tail_all(count)?
                    .into_iter()
                    .map(|(replica, entry)| {
                        let mut entry = json!(entry);
                        entry["replica"] = json!(replica);
                        entry
                    })
                    .collect(),
            ),
            None => json!(journal(server)?.store().tail(count)?),
        },
        OperatorRequest::JournalVerify { key, since } => {
            let journal = journal(server)?;
            let trusted = match key {
                Some(hex) => airlock::journal::key::parse_public_key(&hex)
                    .map_err(|e| OperatorError::new(e.code(), e.to_string()))?,
                None => journal.verifying_key(),
            };
            let result = journal
                .store()
                .audit(&trusted, since.as_ref(), journal.cadence())?;
            let mut verdict = airlock::journal::verdict(&result);
            if let Some(shared) = super::replica::shared(server) {
                let replicas = shared.audit_all(&trusted, since.as_ref(), journal.cadence())?;
                let all_valid = replicas.iter().all(|(_, result)| result.is_ok());
                verdict["replicas"] = replicas
                    .into_iter()
                    .map(|(replica, result)| {
                        let mut one = airlock::journal::verdict(&result);
                        one["replica"] = json!(replica.name);
                        one["key_id"] = json!(replica.key_id);
                        one
                    })
                    .collect();
                if !all_valid {
                    verdict["valid"] = json!(false);
                }
            }
            verdict
        }
        OperatorRequest::JournalHead => json!(journal(server)?.store().heads()?.pop()),
        OperatorRequest::AgentsRemove { name } => {
            server.agents().remove(&name)?;
            json!({ "removed": name })
        }
        OperatorRequest::DevicesPair {
            operator: named,
            expires_secs,
        } => pair(server, operator, named, expires_secs)?,
        OperatorRequest::DevicesList => json!(server.devices().list()?),
        OperatorRequest::ServersList => {
            let catalog = server.catalog();
            json!(
                server
                    .servers()
                    .iter()
                    .map(|hosted| {
                        let tools: Vec<&str> = catalog
                            .tools
                            .iter()
                            .filter(|s| s.hosted_by(hosted.name()).is_some())
                            .map(|s| s.tool.name())
                            .collect();
                        json!({
                            "name": hosted.name(),
                            "program": hosted.program(),
                            "sha256": hosted.sha256(),
                            "state": hosted.status().state,
                            "pinned": hosted.config().pin,
                            "tools": tools,
                        })
                    })
                    .collect::<Vec<_>>()
            )
        }
        OperatorRequest::ServersStatus => json!(
            server
                .servers()
                .iter()
                .map(airlock::servers::HostedServer::status)
                .collect::<Vec<_>>()
        ),
        OperatorRequest::ServersRestart { name } => {
            json!({ "server": name, "tools": server.restart_server(&name).await? })
        }
        OperatorRequest::ServersChanges { all } => json!(
            server
                .definition_changes(all)?
                .into_iter()
                .map(|change| {
                    let diff = change.diff();
                    let mut shown = json!(change);
                    shown["diff"] = json!(diff);
                    shown
                })
                .collect::<Vec<_>>()
        ),
        OperatorRequest::ServersDecide { id, accept } => {
            let verdict = if accept {
                Verdict::Accept
            } else {
                Verdict::Reject
            };
            let decider = Decider::Operator(operator.to_string());
            json!(server.decide_definition(&decider, &id, verdict).await?)
        }
        OperatorRequest::ReplicasList => {
            let store = server.host().store().filter(|s| s.shared().is_some()).ok_or_else(|| {
                OperatorError::new(
                    "not_a_replica",
                    "this server keeps its state in its own database: replicas share a PostgreSQL store (see Several replicas)",
                )
            })?;
            json!(super::fleet::report(
                store,
                server.catalog().fleet.as_ref()
            )?)
        }
        OperatorRequest::DevicesRevoke { id } => {
            json!(
                server
                    .devices()
                    .revoke(&id, &format!("operator:{operator}"))?
            )
        }
    })
}

/// A pairing code for `caller` (who may name only themself).
fn pair(
    server: &Server,
    caller: &str,
    named: Option<String>,
    expires_secs: Option<u64>,
) -> Result<Value, OperatorError> {
    let Some(url) = server.console_url() else {
        return Err(OperatorError::new(
            "console_off",
            "this server does not serve the console: start it with `airlock serve --console`",
        ));
    };
    let operator = named.unwrap_or_else(|| caller.to_string());
    if operator != caller {
        return Err(OperatorError::new(
            "operator_mismatch",
            format!(
                "you are operator `{caller}`: a device for `{operator}` is paired by `{operator}` themself"
            ),
        ));
    }
    let lifetime =
        expires_secs.map_or(super::PAIRING_CODE_LIFETIME, std::time::Duration::from_secs);
    let code = server
        .devices()
        .issue(&operator, lifetime, std::time::Instant::now())?;
    Ok(json!({
        "code": code.code,
        "operator": code.operator,
        "expires": code.expires,
        "url": url,
    }))
}

fn journal(server: &Server) -> Result<&airlock::journal::Journal, OperatorError> {
    server
        .host()
        .journal()
        .ok_or_else(|| OperatorError::new("state_dir_required", "the server keeps no journal"))
}

fn reply(result: Result<Value, OperatorError>) -> String {
    let mut line = match result {
        Ok(result) => json!({ "ok": true, "result": result }),
        Err(e) => json!({ "ok": false, "code": e.code, "message": e.message }),
    }
    .to_string();
    line.push('\n');
    line
}

#[cfg(unix)]
pub use unix::{OperatorListener, request};

#[cfg(unix)]
mod unix {
    use super::*;
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
    use tokio::net::{UnixListener, UnixStream};
    use tokio_util::sync::CancellationToken;

    /// The bound operator socket.
    pub struct OperatorListener {
        listener: UnixListener,
        path: PathBuf,
    }

    fn io_error(
        what: &'static str,
        path: &Path,
    ) -> impl FnOnce(std::io::Error) -> super::super::ServeError {
        let path = path.to_path_buf();
        move |source| super::super::ServeError::Io { what, path, source }
    }

    impl OperatorListener {
        /// Binds `path` with the narrowest mode that lets `settings`'
        /// operators in. A socket left by a server that died is replaced;
        /// one a running server answers on is not.
        pub async fn bind(
            path: &Path,
            settings: &airlock::config::ServeSettings,
        ) -> Result<Self, super::super::ServeError> {
            if path.exists() {
                if UnixStream::connect(path).await.is_ok() {
                    return Err(super::super::ServeError::Io {
                        what: "another airlock serve answers on",
                        path: path.to_path_buf(),
                        source: std::io::Error::from(std::io::ErrorKind::AddrInUse),
                    });
                }
                std::fs::remove_file(path).map_err(io_error("removing the stale socket", path))?;
            }
            let listener =
                UnixListener::bind(path).map_err(io_error("binding the operator socket", path))?;
            // Peer credentials and namespaces decide who is served; the
            // mode only keeps out whoever could never be.
            {
                use std::os::unix::fs::PermissionsExt;
                let mode = match socket_access(settings) {
                    SocketAccess::Owner => 0o600,
                    SocketAccess::Group(gid) => {
                        match std::os::unix::fs::chown(path, None, Some(gid)) {
                            Ok(()) => 0o660,
                            Err(_) => 0o666,
                        }
                    }
                    SocketAccess::Anyone => 0o666,
                };
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))
                    .map_err(io_error("opening the operator socket", path))?;
            }
            Ok(Self {
                listener,
                path: path.to_path_buf(),
            })
        }

        /// Where it listens.
        pub fn path(&self) -> &Path {
            &self.path
        }

        /// Serves operators until `shutdown` fires, then removes the socket.
        pub async fn serve(self, server: Server, shutdown: CancellationToken) {
            while let Some((stream, _)) =
                super::super::accept_next(&shutdown, "an operator connection", || {
                    self.listener.accept()
                })
                .await
            {
                let server = server.clone();
                tokio::spawn(async move { connection(server, stream).await });
            }
            let _ = std::fs::remove_file(&self.path);
        }
    }

    async fn connection(server: Server, stream: UnixStream) {
        let accepted = super::super::peers::accepted_now();
        let credentials = stream.peer_cred();
        let (read, mut write) = stream.into_split();
        let operator = match credentials {
            Ok(cred) => match super::super::peers::same_namespaces(cred.pid(), accepted) {
                Err(e) => Err((e.code(), e.to_string())),
                Ok(()) => server.settings().operator_for(cred.uid(), cred.gid()).ok_or((
                    "not_an_operator",
                    format!(
                        "uid {} is not an operator of this server: the operator adds it to `[[serve.operators]]` in airlock.toml",
                        cred.uid()
                    ),
                )),
            },
            Err(e) => Err(("peer_unknown", format!("the caller's credentials are unknown: {e}"))),
        };
        let operator = match operator {
            Ok(operator) => operator,
            Err((code, message)) => {
                tracing::warn!(code, %message, "operator socket: refused a caller");
                let _ = write
                    .write_all(reply(Err(OperatorError::new(code, message))).as_bytes())
                    .await;
                return;
            }
        };
        let mut lines = BufReader::new(read.take(MAX_LINE as u64 * 64)).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let result = if line.len() > MAX_LINE {
                Err(OperatorError::new(
                    "request_too_large",
                    "a request line is at most 64 KiB",
                ))
            } else {
                match serde_json::from_str::<OperatorRequest>(&line) {
                    Ok(request) => answer(&server, &operator, request).await,
                    Err(e) => Err(OperatorError::new(
                        "bad_request",
                        format!("not an operator request ({e}); see `airlock approvals --help`"),
                    )),
                }
            };
            if write.write_all(reply(result).as_bytes()).await.is_err() {
                return;
            }
        }
    }

    /// Sends one request to the server at `path` and returns its answer.
    /// `Ok(None)`: no server answers there (it is not running).
    pub async fn request(
        path: &Path,
        request: &OperatorRequest,
    ) -> Result<Option<Value>, OperatorError> {
        let mut stream = match UnixStream::connect(path).await {
            Ok(stream) => stream,
            // A server answers there, but the socket's mode keeps this user
            // out: saying "no server" would send the caller to the state
            // directory instead.
            Err(e) if e.kind() == std::io::ErrorKind::PermissionDenied => {
                return Err(OperatorError::new(
                    "not_an_operator",
                    format!(
                        "the operator socket {} does not let this user in: only the server's operators may use it (`[[serve.operators]]` in airlock.toml)",
                        path.display()
                    ),
                ));
            }
            Err(_) => return Ok(None),
        };
        let failed = |e: std::io::Error| {
            OperatorError::new("operator_socket_failed", format!("{}: {e}", path.display()))
        };
        let mut line = serde_json::to_string(request)
            .map_err(|e| OperatorError::new("internal", e.to_string()))?;
        line.push('\n');
        // A server that refuses the caller answers at once and closes: the
        // refusal is still there to read after a failed write.
        let sent = stream.write_all(line.as_bytes()).await;
        let mut answer = String::new();
        BufReader::new(stream)
            .read_line(&mut answer)
            .await
            .map_err(failed)?;
        if answer.is_empty() {
            sent.map_err(failed)?;
        }
        let answer: Value = serde_json::from_str(&answer).map_err(|e| {
            OperatorError::new(
                "operator_socket_failed",
                format!("the server's answer is not JSON ({e})"),
            )
        })?;
        if answer["ok"] == json!(true) {
            return Ok(Some(answer["result"].clone()));
        }
        Err(OperatorError::new(
            answer["code"].as_str().unwrap_or("operator_refused"),
            answer["message"].as_str().unwrap_or("the server refused"),
        ))
    }
}

/// Who the operator socket's file mode must let in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SocketAccess {
    /// Only the server's own user (mode 0600): no operators configured (the
    /// server's user is the operator), or only that uid.
    Owner,
    /// Members of one group (mode 0660, the socket in that group).
    Group(u32),
    /// Other users too (mode 0666): peer credentials decide.
    Anyone,
}

/// The narrowest access that lets every configured operator reach the
/// socket.
pub fn socket_access(settings: &super::ServeSettings) -> SocketAccess {
    use airlock::config::serve::OperatorMatch;
    let own = airlock::config::serve::current_uid();
    // Who beyond the owner: `None` another user, `Some(gid)` a group.
    let others: Vec<Option<u32>> = settings
        .operators
        .iter()
        .filter_map(|o| match &o.matches {
            OperatorMatch::Uid(uid) if *uid == own => None,
            OperatorMatch::Uid(_) => Some(None),
            OperatorMatch::Group { gid, .. } => Some(Some(*gid)),
        })
        .collect();
    match others.split_first() {
        None => SocketAccess::Owner,
        Some((Some(gid), rest)) if rest.iter().all(|g| *g == Some(*gid)) => {
            SocketAccess::Group(*gid)
        }
        Some(_) => SocketAccess::Anyone,
    }
}

/// Reads an [`Approval`] from an answer.
pub fn approval_from(value: Value) -> Result<Approval, OperatorError> {
    serde_json::from_value(value).map_err(|e| {
        OperatorError::new(
            "operator_socket_failed",
            format!("an unreadable approval: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use airlock::config::serve::{Operator, OperatorMatch};

    fn with(matches: Vec<OperatorMatch>) -> crate::ServeSettings {
        crate::ServeSettings {
            operators: matches
                .into_iter()
                .enumerate()
                .map(|(i, matches)| Operator {
                    name: format!("op{i}"),
                    matches,
                })
                .collect(),
            ..Default::default()
        }
    }

    #[test]
    fn the_socket_lets_in_only_who_could_be_an_operator() {
        let own = airlock::config::serve::current_uid();
        let other = own.wrapping_add(1);
        let group = |gid| OperatorMatch::Group {
            gid,
            members: Vec::new(),
        };
        let cases = [
            (vec![], SocketAccess::Owner),
            (vec![OperatorMatch::Uid(own)], SocketAccess::Owner),
            (
                vec![OperatorMatch::Uid(own), group(42)],
                SocketAccess::Group(42),
            ),
            (vec![group(42), group(42)], SocketAccess::Group(42)),
            (vec![group(42), group(43)], SocketAccess::Anyone),
            (vec![OperatorMatch::Uid(other)], SocketAccess::Anyone),
            (
                vec![group(42), OperatorMatch::Uid(other)],
                SocketAccess::Anyone,
            ),
        ];
        for (operators, expected) in cases {
            let described = format!("{operators:?}");
            assert_eq!(socket_access(&with(operators)), expected, "{described}");
        }
    }
}
