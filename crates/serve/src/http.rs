//! Streamable HTTP for `airlock serve --listen`: every request must carry
//! an agent's bearer token (401 otherwise) and, if it has an `Origin`, one
//! the operator allowed (403 otherwise: MCP's DNS-rebinding rule). The
//! authenticated agent rides in the request's extensions to the MCP
//! handler; nothing the caller sends names its principal.
//!
//! A request naming a session (`Mcp-Session-Id`) must name an open session
//! of its own agent: another agent's, an ended or a made-up one is 404
//! (`session_not_found`), for POST, the GET event stream and DELETE alike,
//! before rmcp sees it. A request that would open a session past a cap is
//! 429 (`session_limit`).

use super::mcp::{AuthenticatedAgent, McpHandler};
use super::session_manager::{AgentSessions, Opening};
use super::sessions::{Refusal, SessionLimits};
use super::{ServeError, Server, accept_next};
use airlock::policy::Principal;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rmcp::transport::{StreamableHttpServerConfig, StreamableHttpService};
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use tower_service::Service as _;

/// The path MCP is served under.
pub const MCP_PATH: &str = "/mcp";

type Body = BoxBody<Bytes, Infallible>;
type Mcp = StreamableHttpService<McpHandler, AgentSessions>;

/// The header that names a session.
const SESSION_HEADER: &str = "mcp-session-id";

/// A bound listener, ready to serve.
pub struct HttpListener {
    listener: TcpListener,
    address: SocketAddr,
}

impl HttpListener {
    /// Binds `address` (port 0 picks a free one).
    pub async fn bind(address: SocketAddr) -> Result<Self, ServeError> {
        let io = |source| ServeError::Io {
            what: "listening on",
            path: address.to_string().into(),
            source,
        };
        let listener = TcpListener::bind(address).await.map_err(io)?;
        let address = listener.local_addr().map_err(io)?;
        Ok(Self { listener, address })
    }

    /// The address it listens on.
    pub fn local_addr(&self) -> SocketAddr {
        self.address
    }

    /// Serves MCP until `shutdown` fires; then stops accepting and ends open
    /// streams.
    pub async fn serve(self, server: Server, shutdown: CancellationToken) {
        let settings = server.settings();
        // rmcp checks `Host` too: loopback names by default, plus the
        // address the operator chose to listen on.
        let mut hosts: Vec<String> = vec!["localhost".into(), "127.0.0.1".into(), "::1".into()];
        if !self.address.ip().is_loopback() {
            hosts.push(self.address.ip().to_string());
        }
        let config = StreamableHttpServerConfig::default()
            .with_allowed_hosts(hosts)
            .with_allowed_origins(settings.allowed_origins.clone())
            .enforce_origin_validation()
            .with_cancellation_token(shutdown.child_token());
        let max_body = config.max_request_body_bytes;
        let factory_server = server.clone();
        let mcp: Mcp = StreamableHttpService::new(
            move || {
                Ok(McpHandler::http(
                    factory_server.clone(),
                    Opening::session_slot(),
                ))
            },
            Arc::new(AgentSessions::new(server.clone())),
            config,
        );
        let gate = Arc::new(Gate {
            max_body,
            server,
            allowed_origins: settings.allowed_origins,
        });
        while let Some((stream, _peer)) =
            accept_next(&shutdown, "an MCP connection", || self.listener.accept()).await
        {
            let (gate, mcp) = (Arc::clone(&gate), mcp.clone());
            let service = hyper::service::service_fn(move |request| {
                let (gate, mut mcp) = (Arc::clone(&gate), mcp.clone());
                async move { Ok::<_, Infallible>(gate.handle(request, &mut mcp).await) }
            });
            tokio::spawn(serve_connection(
                TokioIo::new(stream),
                service,
                shutdown.clone(),
            ));
        }
    }
}

/// Serves one HTTP/1.1 connection until it closes; once `shutdown` fires,
/// finishes the request in flight and closes.
pub(super) async fn serve_connection<I, S>(io: I, service: S, shutdown: CancellationToken)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + 'static,
    S: hyper::service::HttpService<Incoming>,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
    S::ResBody: 'static,
    <S::ResBody as http_body::Body>::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let connection = hyper::server::conn::http1::Builder::new().serve_connection(io, service);
    tokio::pin!(connection);
    tokio::select! {
        _ = connection.as_mut() => {}
        () = shutdown.cancelled() => {
            connection.as_mut().graceful_shutdown();
            let _ = connection.await;
        }
    }
}

/// What each request passes before MCP sees it.
struct Gate {
    server: Server,
    allowed_origins: Vec<String>,
    /// The largest request body rmcp reads (the gate reads the bodies
    /// that may open a session first).
    max_body: usize,
}

fn plain(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    json_error(
        status,
        serde_json::json!({ "error": { "code": code, "message": message } }),
    )
}

/// A JSON error answer: `{"error": {"code": ..., "message": ...}}`.
fn json_error(status: StatusCode, body: serde_json::Value) -> Response<Body> {
    let mut response = Response::new(Full::new(Bytes::from(body.to_string())).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// Whether `body` is an `initialize` request: the one message that opens
/// a session.
fn is_initialize(body: &[u8]) -> bool {
    #[derive(serde::Deserialize)]
    struct Message<'a> {
        #[serde(borrow)]
        method: Option<std::borrow::Cow<'a, str>>,
    }
    serde_json::from_slice::<Message<'_>>(body)
        .is_ok_and(|message| message.method.as_deref() == Some("initialize"))
}

/// `scheme://host[:port]`, lowercased, default ports dropped.
fn normalise_origin(origin: &str) -> String {
    let origin = origin.trim().trim_end_matches('/').to_ascii_lowercase();
    origin
        .strip_suffix(":443")
        .filter(|o| o.starts_with("https://"))
        .or_else(|| {
            origin
                .strip_suffix(":80")
                .filter(|o| o.starts_with("http://"))
        })
        .map_or_else(|| origin.clone(), str::to_string)
}

impl Gate {
    async fn handle(&self, mut request: Request<Incoming>, mcp: &mut Mcp) -> Response<Body> {
        if request.uri().path() != MCP_PATH {
            return plain(
                StatusCode::NOT_FOUND,
                "not_found",
                &format!("airlock serves MCP at {MCP_PATH}"),
            );
        }
        if let Some(origin) = request.headers().get(header::ORIGIN) {
            let origin = normalise_origin(origin.to_str().unwrap_or_default());
            if !self
                .allowed_origins
                .iter()
                .any(|allowed| normalise_origin(allowed) == origin)
            {
                return plain(
                    StatusCode::FORBIDDEN,
                    "origin_not_allowed",
                    "this Origin may not call airlock: the operator lists browser origins in `[serve] allowed_origins`",
                );
            }
        }
        let token = request
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| {
                v.strip_prefix("Bearer ")
                    .or_else(|| v.strip_prefix("bearer "))
            })
            .map(str::trim);
        let agent = match token.map(|t| self.server.agents().authenticate(t)) {
            Some(Ok(Some(agent))) => agent,
            Some(Err(error)) => {
                tracing::error!(%error, "checking an agent token failed");
                return plain(
                    StatusCode::SERVICE_UNAVAILABLE,
                    error.code(),
                    "the server could not check the token; try again",
                );
            }
            _ => {
                let mut response = plain(
                    StatusCode::UNAUTHORIZED,
                    "unauthorized",
                    "send `Authorization: Bearer TOKEN` with a token from `airlock agents add NAME`",
                );
                response.headers_mut().insert(
                    header::WWW_AUTHENTICATE,
                    HeaderValue::from_static("Bearer realm=\"airlock\""),
                );
                return response;
            }
        };
        let agent = Principal::agent(agent);
        if !self.in_own_session(&request, &agent) {
            return plain(
                StatusCode::NOT_FOUND,
                "session_not_found",
                "no open session of this agent has this `Mcp-Session-Id` (it ended, or was never \
                 yours): start a new session with `initialize`, without the header",
            );
        }
        request
            .extensions_mut()
            .insert(AuthenticatedAgent(agent.clone()));
        let opens_one = request.method() == http::Method::POST
            && !request.headers().contains_key(SESSION_HEADER);
        let answered = if opens_one {
            // Only a POST without a session may open one: read it, and
            // take room for the session before rmcp opens it.
            let (parts, body) = request.into_parts();
            let body = match http_body_util::Limited::new(body, self.max_body)
                .collect()
                .await
            {
                Ok(body) => body.to_bytes(),
                Err(_) => {
                    return plain(
                        StatusCode::PAYLOAD_TOO_LARGE,
                        "request_too_large",
                        &format!(
                            "the request body was not read whole: it must be JSON of at most {} bytes",
                            self.max_body
                        ),
                    );
                }
            };
            let reserved = if is_initialize(&body) {
                let limits = SessionLimits::from(&self.server.catalog().settings);
                match self.server.sessions().reserve(&agent, limits) {
                    Ok(reservation) => Some(reservation),
                    Err(refusal) => return self.too_many_sessions(&refusal),
                }
            } else {
                None
            };
            let opening = Opening::new(agent, reserved);
            let request = Request::from_parts(parts, Full::new(body));
            (opening.run(mcp.call(request)).await, opening)
        } else {
            let opening = Opening::new(agent, None);
            (opening.run(mcp.call(request)).await, opening)
        };
        match answered {
            (_, opening) if let Some(refusal) = opening.refused() => {
                self.too_many_sessions(&refusal)
            }
            (Ok(response), _) => response,
            (Err(never), _) => match never {},
        }
    }

    /// Whether `request` names no session, or exactly one open session of
    /// `agent`'s.
    fn in_own_session(&self, request: &Request<Incoming>, agent: &Principal) -> bool {
        let mut named = request.headers().get_all(SESSION_HEADER).iter();
        match (named.next(), named.next()) {
            (None, _) => true,
            (Some(id), None) => id
                .to_str()
                .is_ok_and(|id| self.server.sessions().belongs_to(id, agent)),
            // Two ids: which one would rmcp route by? Neither.
            (Some(_), Some(_)) => false,
        }
    }

    /// 429 for a session a cap refused, reported (rate-limited).
    fn too_many_sessions(&self, refusal: &Refusal) -> Response<Body> {
        self.server.session_refused(refusal);
        json_error(
            StatusCode::TOO_MANY_REQUESTS,
            serde_json::json!({
                "error": {
                    "code": refusal.code(),
                    "message": refusal.to_string(),
                    "cap": refusal.cap.key(),
                    "limit": refusal.limit,
                }
            }),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::{is_initialize, normalise_origin};

    #[test]
    fn only_an_initialize_request_opens_a_session() {
        for (body, opens) in [
            (
                r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{}}"#,
                true,
            ),
            (r#"{"method":"init\u0069alize","id":1}"#, true),
            (r#"{"jsonrpc":"2.0","id":1,"method":"tools/call"}"#, false),
            (
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                false,
            ),
            (r#"[{"method":"initialize"}]"#, false),
            ("not json", false),
        ] {
            assert_eq!(is_initialize(body.as_bytes()), opens, "{body}");
        }
    }

    #[test]
    fn origins_compare_without_default_ports_or_case() {
        assert_eq!(
            normalise_origin("HTTPS://App.example:443"),
            "https://app.example"
        );
        assert_eq!(normalise_origin("http://localhost:80/"), "http://localhost");
        assert_eq!(
            normalise_origin("http://localhost:6274"),
            "http://localhost:6274"
        );
        assert_ne!(
            normalise_origin("https://app.example:80"),
            normalise_origin("https://app.example")
        );
    }
}
