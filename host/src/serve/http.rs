//! Streamable HTTP for `airlock serve --listen`: every request must carry
//! an agent's bearer token (401 otherwise) and, if it has an `Origin`, one
//! the operator allowed (403 otherwise: MCP's DNS-rebinding rule). The
//! authenticated agent rides in the request's extensions to the MCP
//! handler; nothing the caller sends names its principal.

use super::mcp::{AuthenticatedAgent, McpHandler};
use super::{ServeError, Server, accept_next};
use crate::policy::Principal;
use bytes::Bytes;
use http::{HeaderValue, Request, Response, StatusCode, header};
use http_body_util::{BodyExt, Full, combinators::BoxBody};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use rmcp::transport::streamable_http_server::session::local::LocalSessionManager;
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
type Mcp = StreamableHttpService<McpHandler, LocalSessionManager>;

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
        let factory_server = server.clone();
        let mcp: Mcp = StreamableHttpService::new(
            move || Ok(McpHandler::http(factory_server.clone())),
            Arc::new(LocalSessionManager::default()),
            config,
        );
        let gate = Arc::new(Gate {
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
}

fn plain(status: StatusCode, code: &str, message: &str) -> Response<Body> {
    let body = serde_json::json!({ "error": { "code": code, "message": message } }).to_string();
    let mut response = Response::new(Full::new(Bytes::from(body)).boxed());
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
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
        request
            .extensions_mut()
            .insert(AuthenticatedAgent(Principal::agent(agent)));
        match mcp.call(request).await {
            Ok(response) => response,
            Err(never) => match never {},
        }
    }
}

#[cfg(test)]
mod tests {
    use super::normalise_origin;

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
