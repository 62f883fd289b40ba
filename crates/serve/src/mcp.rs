//! The MCP side of `airlock serve`: a hand-written rmcp `ServerHandler`
//! whose tool list is the server's catalog. Only translation lives here:
//! `tools/call` becomes a [`Call`] and its [`Answered`] a `CallToolResult`;
//! every decision happens in the host's one invoke path.

use super::call::{Answered, AskClient, Call, CallError, Progress};
use super::decide::{AskedCall, Decider};
use super::elicit::{self, APPROVAL_INPUT, CallBinding, Choices, Elicitor};
use super::{ApprovalDeciders, Served, Server};
use airlock::Outcome;
use airlock::policy::{Channel, Principal};
use rmcp::model::{
    CallToolRequestParams, CallToolResponse, CallToolResult, ContentBlock, ElicitRequest,
    ElicitResult, Implementation, InputRequest, InputRequests, InputRequiredResult,
    ListToolsResult, PaginatedRequestParams, ProgressNotificationParam, ProtocolVersion,
    ServerCapabilities, ServerConfig, Tool, ToolAnnotations,
};
use rmcp::service::{NotificationContext, RequestContext};
use rmcp::{ErrorData, RoleServer, ServerHandler};
use serde_json::{Value, json};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};

/// The principal of an HTTP request, put in its extensions by [`super::http`]
/// after the bearer token checked out. Absent means unauthenticated.
#[derive(Clone, Debug)]
pub(crate) struct AuthenticatedAgent(pub Principal);

/// How a handler knows who calls.
#[derive(Clone, Debug)]
enum Identity {
    /// Every call is this principal (stdio: the one the config names).
    Fixed(Principal),
    /// Each HTTP request carries its own [`AuthenticatedAgent`].
    PerRequest,
}

/// One MCP session's handler.
#[derive(Clone)]
pub(crate) struct McpHandler {
    server: Server,
    identity: Identity,
    channel: Channel,
    /// The session the server issued this handler's client: for stdio the
    /// process's, for HTTP the one opened by the request the handler was
    /// made for (empty for a session-less request). Never a header.
    session: Arc<OnceLock<String>>,
}

impl McpHandler {
    /// A handler for a stdio client: every call is `principal`.
    pub(crate) fn stdio(server: Server, principal: Principal) -> Self {
        Self {
            server,
            identity: Identity::Fixed(principal),
            channel: Channel::McpStdio,
            session: Arc::new(OnceLock::from(ulid::Ulid::new().to_string())),
        }
    }

    /// The session the server issued this handler's client, once there is
    /// one.
    pub(crate) fn issued_session(&self) -> Option<&str> {
        self.session.get().map(String::as_str)
    }

    /// A handler for streamable HTTP: each request's token names its
    /// agent; `session` is filled with the session's id if the request it
    /// is made for opens one.
    pub(crate) fn http(server: Server, session: Arc<OnceLock<String>>) -> Self {
        Self {
            server,
            identity: Identity::PerRequest,
            channel: Channel::McpHttp,
            session,
        }
    }

    fn principal(&self, context: &RequestContext<RoleServer>) -> Result<Principal, ErrorData> {
        match &self.identity {
            Identity::Fixed(principal) => Ok(principal.clone()),
            Identity::PerRequest => context
                .extensions
                .get::<http::request::Parts>()
                .and_then(|parts| parts.extensions.get::<AuthenticatedAgent>())
                .map(|agent| agent.0.clone())
                // The HTTP layer refuses unauthenticated requests first;
                // reaching here without an agent is a bug, so fail closed.
                .ok_or_else(|| ErrorData::internal_error("the request carries no agent", None)),
        }
    }

    /// Whether and how this call's pending approval is put to the human at
    /// the client (`approvals = "client"` and a client that can show a
    /// form). A 2026-07-28 retry that carries the answer records it here
    /// and then waits like any call.
    fn ask_client(
        &self,
        context: &RequestContext<RoleServer>,
        principal: &Principal,
        session_id: &str,
        request: &CallToolRequestParams,
    ) -> AskClient {
        let catalog = self.server.catalog();
        let settings = &catalog.settings;
        if settings.approvals != ApprovalDeciders::Client || !can_elicit(context) {
            return AskClient::No;
        }
        let Some(call) = self.asked_call(principal, request) else {
            // No such tool: the call fails before any approval.
            return AskClient::No;
        };
        let decider = Decider::McpClient {
            principal: principal.clone(),
            client: context
                .client_info()
                .map(|client| format!("{} {}", client.name, client.version)),
            call,
        };
        if !stateless(context) {
            return AskClient::WhileWaiting(std::sync::Arc::new(Elicitor {
                peer: context.peer.clone(),
                decider,
                session: session_id.to_string(),
                wait: settings.approval_wait,
            }));
        }
        let Some(state) = &request.request_state else {
            return AskClient::ByReturning;
        };
        // A state that does not open (tampered, expired, another call's,
        // another server's) carries no decision: the call just waits. The
        // answer counts only as the question the approval gets offered.
        let binding = binding(principal, session_id, request);
        let answer = self
            .server
            .inner
            .seal
            .open(state, &binding)
            .and_then(|id| Some((self.stored(&id)?, id)))
            .zip(
                request
                    .input_responses
                    .as_ref()
                    .and_then(|responses| responses.get(APPROVAL_INPUT))
                    .and_then(|value| serde_json::from_value::<ElicitResult>(value.clone()).ok()),
            )
            .and_then(|((approval, id), result)| {
                elicit::decision(&result, Choices::for_call(&approval, session_id))
                    .map(|decision| (id, decision))
            });
        if let Some((id, decision)) = answer
            && let Err(error) = self.server.decide(&decider, &id, &decision)
        {
            tracing::info!(approval = %id, code = error.code(), %error, "the client's decision was not recorded");
        }
        AskClient::No
    }

    /// The call as its approval binds it, if the tool exists.
    fn asked_call(
        &self,
        principal: &Principal,
        request: &CallToolRequestParams,
    ) -> Option<AskedCall> {
        let catalog = self.server.catalog();
        let facts = catalog.get(&request.name)?.tool.facts();
        let input = Value::Object(request.arguments.clone().unwrap_or_default()).to_string();
        Some(AskedCall {
            tool: request.name.to_string(),
            request_hash: airlock::approvals::request_hash(
                &principal.to_string(),
                &facts.sha256,
                &input,
                &facts.capability_names(),
            ),
        })
    }

    /// Approval `id` as the store keeps it.
    fn stored(&self, id: &str) -> Option<airlock::approvals::Approval> {
        self.server.host().approvals()?.get(id).ok()?
    }

    /// The session this call is in: the one the server issued this
    /// handler, unless the call came session-less (2026-07-28), which is
    /// in none whatever headers it carries.
    fn session(&self, context: &RequestContext<RoleServer>) -> String {
        if matches!(self.identity, Identity::PerRequest) && stateless(context) {
            return String::new();
        }
        self.session.get().cloned().unwrap_or_default()
    }
}

/// What a `requestState` for this call is bound to. Absent arguments bind
/// like `{}`, as the call runs with them.
fn binding(
    principal: &Principal,
    session_id: &str,
    request: &CallToolRequestParams,
) -> CallBinding {
    let none = serde_json::Map::new();
    let arguments = request.arguments.as_ref().unwrap_or(&none);
    CallBinding::new(principal, session_id, &request.name, arguments)
}

/// Whether the client declared it can show form elicitations.
fn can_elicit(context: &RequestContext<RoleServer>) -> bool {
    context
        .client_capabilities()
        .and_then(|capabilities| capabilities.elicitation)
        .is_some_and(|elicitation| elicitation.form.is_some() || elicitation.url.is_none())
}

/// Whether the call came over 2026-07-28 or later, which forbids requests
/// from server to client: a question goes back as `input_required`.
fn stateless(context: &RequestContext<RoleServer>) -> bool {
    context
        .protocol_version()
        .is_some_and(|version| version >= ProtocolVersion::V_2026_07_28)
}

/// The MCP description of a served tool, with annotations that tell the
/// truth about what the host lets it do.
fn mcp_tool(served: &Served) -> Tool {
    let tool = &served.tool;
    let schema = match &served.schema {
        Value::Object(object) => object.clone(),
        _ => serde_json::Map::new(),
    };
    // A hosted server's process lives on, but with nothing to write to and
    // no network it cannot change anything outside itself.
    let contained = tool.as_hosted().is_some() && !tool.may_write() && !tool.reaches_network();
    let annotations = ToolAnnotations::new()
        .read_only(tool.world() == airlock::World::Pure || contained)
        .destructive(tool.may_write())
        .open_world(tool.reaches_network());
    Tool::new(
        tool.name().to_string(),
        tool.description().to_string(),
        Arc::new(schema),
    )
    .annotate(annotations)
}

/// A hosted server's own result, as the server gave it (text, images,
/// structured content), when the call reached the server.
fn passed_through(answered: &Answered) -> Option<CallToolResult> {
    let Answered::Ran(outcome) = answered else {
        return None;
    };
    let raw = match outcome.as_ref() {
        Outcome::Completed { output, .. } => output.as_str(),
        Outcome::ToolError { report, .. } => report.stdout.text.as_str(),
        _ => return None,
    };
    serde_json::from_str(raw).ok()
}

/// A completed call's output: an object is structured content (with its
/// text); other JSON is text.
fn completed(output: &str) -> CallToolResult {
    match serde_json::from_str::<Value>(output) {
        Ok(value @ Value::Object(_)) => CallToolResult::structured(value),
        _ => CallToolResult::success(vec![ContentBlock::text(output.to_string())]),
    }
}

/// A call that did not complete: `isError` with the reason code and the
/// explanation the CLI prints, so the model knows why and whether to retry.
fn failed(answered: &Answered) -> CallToolResult {
    let code = answered.code();
    let message = answered.message().unwrap_or_default();
    let mut error = json!({ "code": code, "message": message });
    if let Answered::Ran(outcome) = answered {
        let approval = match outcome.as_ref() {
            Outcome::PendingApproval { approval, .. } => Some(&approval.id),
            Outcome::Denied { denial, .. } => denial.approval_id.as_ref(),
            _ => None,
        };
        if let Some(id) = approval {
            error["approval_id"] = json!(id);
        }
    }
    let mut result = CallToolResult::structured_error(json!({ "error": error }));
    result.content = vec![ContentBlock::text(format!("{code}: {message}"))];
    result
}

/// A progress reporter for a call that sent a progress token: a sync
/// callback feeding one task, so notifications leave in order. Clients send
/// a token with every call; the task starts only when there is something
/// to report.
fn progress_reporter(context: &RequestContext<RoleServer>) -> Option<Progress> {
    let token = context.meta.get_progress_token()?;
    let peer = context.peer.clone();
    let sender = std::sync::OnceLock::<tokio::sync::mpsc::UnboundedSender<String>>::new();
    Some(Arc::new(move |message: String| {
        let send = sender.get_or_init(|| {
            let (send, mut receive) = tokio::sync::mpsc::unbounded_channel::<String>();
            let (peer, token) = (peer.clone(), token.clone());
            tokio::spawn(async move {
                let count = AtomicU64::new(0);
                while let Some(message) = receive.recv().await {
                    let step = count.fetch_add(1, Ordering::Relaxed) + 1;
                    let note = ProgressNotificationParam::new(token.clone(), step as f64)
                        .with_message(message);
                    if peer.notify_progress(note).await.is_err() {
                        break;
                    }
                }
            });
            send
        });
        let _ = send.send(message);
    }))
}

impl ServerHandler for McpHandler {
    fn get_info(&self) -> ServerConfig {
        ServerConfig::new(
            ServerCapabilities::builder()
                .enable_tools()
                .enable_tool_list_changed()
                .build(),
        )
        .with_server_info(Implementation::new("airlock", env!("CARGO_PKG_VERSION")))
        .with_instructions(
            "Tools run in airlock's sandbox. A failed call's text starts with a reason code: \
             `approval_pending` means a human must approve first (retry the same call later), \
             `policy_denied` and `approval_denied` will not change on retry, limit codes \
             (`deadline_exceeded`, `output_too_large`, ...) mean the input asked too much.",
        )
    }

    async fn list_tools(
        &self,
        _request: Option<PaginatedRequestParams>,
        _context: RequestContext<RoleServer>,
    ) -> Result<ListToolsResult, ErrorData> {
        self.server.wake_servers().await;
        let catalog = self.server.catalog();
        Ok(ListToolsResult::with_all_items(
            catalog
                .tools
                .iter()
                .map(|served| mcp_tool(served))
                .collect(),
        ))
    }

    fn get_tool(&self, name: &str) -> Option<Tool> {
        self.server
            .catalog()
            .get(name)
            .map(|served| mcp_tool(served))
    }

    async fn call_tool(
        &self,
        request: CallToolRequestParams,
        context: RequestContext<RoleServer>,
    ) -> Result<CallToolResponse, ErrorData> {
        let principal = self.principal(&context)?;
        let session_id = self.session(&context);
        let ask = self.ask_client(&context, &principal, &session_id, &request);
        // Only a call that may return `input_required` needs its binding.
        let returning = matches!(ask, AskClient::ByReturning)
            .then(|| binding(&principal, &session_id, &request));
        let hosted = self
            .server
            .catalog()
            .get(&request.name)
            .is_some_and(|served| served.tool.as_hosted().is_some());
        let call = Call {
            principal: principal.clone(),
            session_id: session_id.clone(),
            request_id: context.id.to_string(),
            channel: self.channel.clone(),
            tool: request.name.to_string(),
            arguments: request.arguments.unwrap_or_default(),
            cancel: context.ct.clone(),
            progress: progress_reporter(&context),
            ask,
        };
        let answered = self.server.call(call).await.map_err(|error| match error {
            CallError::UnknownTool { .. } => ErrorData::invalid_params(error.to_string(), None),
            CallError::Arguments(_) => ErrorData::invalid_params(error.to_string(), None),
        })?;
        if let Some(binding) = returning
            && let Answered::Ran(outcome) = &answered
            && let Outcome::PendingApproval { approval, .. } = outcome.as_ref()
            && let Some(stored) = self.stored(&approval.id)
            && let Some(question) =
                elicit::question(&stored, &principal, Choices::for_call(&stored, &session_id))
        {
            let state = self
                .server
                .inner
                .seal
                .seal(&approval.id, &binding, elicit::ANSWER_WITHIN);
            let requests = InputRequests::from([(
                APPROVAL_INPUT.to_string(),
                InputRequest::Elicitation(ElicitRequest::new(question)),
            )]);
            return Ok(InputRequiredResult::new(Some(requests), Some(state)).into());
        }
        if hosted && let Some(result) = passed_through(&answered) {
            return Ok(result.into());
        }
        Ok(match &answered {
            Answered::Ran(outcome) => match outcome.output() {
                Some(output) => completed(output),
                None => failed(&answered),
            },
            other => failed(other),
        }
        .into())
    }

    async fn on_initialized(&self, context: NotificationContext<RoleServer>) {
        // Tell this client when a reload changes the tools, for as long as
        // it is connected.
        let mut changes = self.server.subscribe_list_changed();
        let stopping = self.server.stopping();
        let peer = context.peer;
        tokio::spawn(async move {
            loop {
                tokio::select! {
                    () = stopping.cancelled() => break,
                    change = changes.recv() => match change {
                        Ok(()) | Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {
                            if peer.notify_tool_list_changed().await.is_err() {
                                break;
                            }
                        }
                        Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                    },
                }
            }
        });
    }
}
