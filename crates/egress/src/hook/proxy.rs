//! [`EgressProxy`]: the HTTP proxy a native tool in `strict` network mode
//! reaches (through the bridge in its sandbox). The second door to the same
//! egress decision as the `wasi:http` hook: every request passes the
//! budget, the grant, one resolution with every address classified, and
//! Cedar, then goes to the pinned address. Plain HTTP (absolute-form
//! requests) takes the hook's own exchange, limits, pacing, timeouts and
//! credential injection included. `CONNECT host:port` to an origin with a
//! credential binding (or every origin, under `intercept = "all"`) is
//! terminated with the proxy's own CA (see [`intercept`], [`ca`]) so each
//! request inside takes that same exchange; any other `CONNECT` becomes a
//! TCP tunnel to the checked address (see [`tunnel`]), so a DNS rebinding
//! inside the tunnel gains nothing. Refusals are `403` with the reason
//! code.

use super::{Context, EgressHook};
use crate::decide::{Denial, PinnedTarget, Reason};
use crate::record::EgressRecord;
use airlock_sandbox::channel::{self, ProxyChannel};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::os::fd::{AsFd, AsRawFd, OwnedFd, RawFd};
use std::sync::{Arc, PoisonError, RwLock};
use tokio::io::Interest;
use wasmtime_wasi_http::Error as WasiError;
use wasmtime_wasi_http::io::TokioIo;

mod ca;
mod intercept;
mod tunnel;

pub use ca::{CaError, InterceptCa};

type ProxyBody = UnsyncBoxBody<Bytes, WasiError>;

/// A share of one of the proxy's connection slots, held as long as the
/// connection or a tunnel it became is open.
type Permit = Arc<tokio::sync::OwnedSemaphorePermit>;

/// The header a refusal names its reason code in.
pub const DENY_REASON_HEADER: &str = "x-airlock-deny-reason";

/// Which hook decides a request: one tool run's, or (for a hosted server,
/// which outlives its calls) the one of the call in flight.
pub type Route = Arc<dyn Fn() -> EgressHook + Send + Sync>;

/// Most connections one sandbox holds open through its proxy at once; a
/// sandbox that asks for more waits until one of them closes, so it cannot
/// make the host hold unbounded sockets and tasks.
const MAX_CONNECTIONS: usize = 64;

/// A running proxy reached only over its channel (see
/// [`airlock_sandbox::channel`]): no socket path exists, so only the
/// sandbox that inherits the channel's end can use it. Stops when dropped.
pub struct EgressProxy {
    /// The sandbox's end, kept for every process started under this proxy
    /// (a hosted server's restarts reuse it).
    sandbox_end: OwnedFd,
    hook: Option<EgressHook>,
    task: tokio::task::JoinHandle<()>,
    shared: Arc<Shared>,
    /// The grant a renewed CA is constrained to.
    grant: Arc<crate::grant::NetworkGrant>,
    /// Whether some TLS stays a blind tunnel, so the sandbox needs the
    /// host's roots besides the CA.
    tunnels_too: bool,
}

/// What every connection of one proxy shares.
struct Shared {
    route: Route,
    /// The CA it terminates TLS with, when it may intercept any origin.
    ca: RwLock<Option<Arc<InterceptCa>>>,
}

impl Shared {
    fn ca(&self) -> Option<Arc<InterceptCa>> {
        self.ca
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EgressProxy {
    /// Starts a proxy deciding with `hook`'s grant, network and requester.
    pub fn start(hook: EgressHook) -> std::io::Result<Self> {
        let fixed = hook.clone();
        let mut proxy = Self::start_routed(Arc::new(move || fixed.clone()))?;
        proxy.hook = Some(hook);
        Ok(proxy)
    }

    /// As [`EgressProxy::start`], each request decided by the hook `route`
    /// picks when it arrives.
    /// The grant and credential bindings are those of the hook `route`
    /// picks now: a CA is made when they may have TLS intercepted.
    pub fn start_routed(route: Route) -> std::io::Result<Self> {
        let template = route();
        let grant = Arc::clone(&template.cx.grant);
        let ca = if template.cx.may_intercept() {
            Some(Arc::new(
                InterceptCa::new(&grant).map_err(std::io::Error::other)?,
            ))
        } else {
            None
        };
        let tunnels_too = grant.intercept() == crate::grant::Intercept::Credentials
            || grant.rules().rules().iter().any(|rule| !rule.intercept);
        let ProxyChannel { host, sandbox } = ProxyChannel::new()?;
        let host = std::os::unix::net::UnixStream::from(host);
        host.set_nonblocking(true)?;
        let channel = tokio::net::UnixStream::from_std(host)?;
        let shared = Arc::new(Shared {
            route,
            ca: RwLock::new(ca),
        });
        let task = tokio::spawn(serve_channel(channel, Arc::clone(&shared)));
        Ok(Self {
            sandbox_end: sandbox,
            hook: None,
            task,
            shared,
            grant,
            tunnels_too,
        })
    }

    /// Replaces the CA (when there is one) with a new one, for a new
    /// process behind the same proxy (a hosted server's restart): the old
    /// CA's leaves are no longer minted, and [`EgressProxy::trust_bundle`]
    /// holds the new certificate.
    pub fn renew_ca(&self) -> Result<(), CaError> {
        let mut ca = self
            .shared
            .ca
            .write()
            .unwrap_or_else(PoisonError::into_inner);
        if ca.is_some() {
            *ca = Some(Arc::new(InterceptCa::new(&self.grant)?));
        }
        Ok(())
    }

    /// The certificates (PEM) a sandbox behind this proxy must trust, when
    /// the proxy terminates any TLS: its CA, then the host's roots when
    /// some origins stay blind tunnels. `None`: nothing is intercepted.
    pub fn trust_bundle(&self) -> Option<String> {
        self.shared.ca().map(|ca| ca.trust_bundle(self.tunnels_too))
    }

    /// The descriptor a sandbox inherits to reach this proxy
    /// ([`airlock_sandbox::NetworkMode::Strict`]); open while the proxy is.
    pub fn channel_fd(&self) -> RawFd {
        self.sandbox_end.as_raw_fd()
    }

    /// A connection to the proxy, made as the sandbox's bridge makes one
    /// (for an embedder's own bridge, and tests). Blocks until the proxy
    /// hands it over: call it off the async runtime's threads.
    pub fn connect(&self) -> std::io::Result<std::os::unix::net::UnixStream> {
        channel::connect(self.sandbox_end.as_fd())
    }

    /// The records of every request so far (of a proxy with one hook).
    pub fn records(&self) -> Vec<EgressRecord> {
        self.hook
            .as_ref()
            .map(EgressHook::records)
            .unwrap_or_default()
    }
}

/// Answers each request on the channel with a new connection and serves
/// it: one byte in, one connected socket out.
async fn serve_channel(channel: tokio::net::UnixStream, shared: Arc<Shared>) {
    let open = Arc::new(tokio::sync::Semaphore::new(MAX_CONNECTIONS));
    let mut requests = [0u8; 16];
    loop {
        let count = match on_channel(&channel, Interest::READABLE, || {
            channel.try_read(&mut requests)
        })
        .await
        {
            Ok(0) | Err(_) => return,
            Ok(count) => count,
        };
        for _ in 0..count {
            let Ok(permit) = Arc::clone(&open).acquire_owned().await else {
                return;
            };
            let Ok((ours, theirs)) = std::os::unix::net::UnixStream::pair() else {
                return;
            };
            if on_channel(&channel, Interest::WRITABLE, || {
                channel::hand_over(channel.as_fd(), theirs.as_fd())
            })
            .await
            .is_err()
            {
                return;
            }
            drop(theirs);
            let stream = match ours
                .set_nonblocking(true)
                .and_then(|()| tokio::net::UnixStream::from_std(ours))
            {
                Ok(stream) => stream,
                Err(error) => {
                    tracing::warn!(target: "airlock::egress", %error, "a proxy connection could not be served");
                    continue;
                }
            };
            let shared = Arc::clone(&shared);
            // An intercepted tunnel outlives the connection's HTTP part: it
            // keeps its own share of the permit.
            let permit = Arc::new(permit);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(move |request| {
                    let (shared, permit) = (Arc::clone(&shared), Arc::clone(&permit));
                    async move {
                        Ok::<_, std::convert::Infallible>(handle(shared, permit, request).await)
                    }
                });
                // The timer lets hyper close a connection that sends no
                // request head within its header-read timeout.
                let _ = hyper::server::conn::http1::Builder::new()
                    .timer(hyper_util::rt::TokioTimer::new())
                    .serve_connection(TokioIo::new(stream), service)
                    .with_upgrades()
                    .await;
            });
        }
    }
}

/// Runs `io` on the channel once it is ready for `interest`.
async fn on_channel<T>(
    channel: &tokio::net::UnixStream,
    interest: Interest,
    mut io: impl FnMut() -> std::io::Result<T>,
) -> std::io::Result<T> {
    loop {
        channel.ready(interest).await?;
        match channel.try_io(interest, &mut io) {
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => continue,
            result => return result,
        }
    }
}

fn text(status: StatusCode, reason: Option<Reason>, message: String) -> Response<ProxyBody> {
    let mut response = Response::new(
        Full::new(Bytes::from(message + "\n"))
            .map_err(|never| match never {})
            .boxed_unsync(),
    );
    *response.status_mut() = status;
    if let Some(reason) = reason
        && let Ok(value) = http::HeaderValue::from_str(reason.code())
    {
        response.headers_mut().insert(DENY_REASON_HEADER, value);
    }
    response
}

fn refused(denial: &Denial) -> Response<ProxyBody> {
    text(
        StatusCode::FORBIDDEN,
        Some(denial.reason),
        format!("airlock: {}: {}", denial.reason.code(), denial.message),
    )
}

/// Drops a connection's own headers from a message the proxy relays (RFC
/// 9110 7.6.1): the client's connection and the upstream one are two (an
/// upstream's `connection: close` must not end a tunnel, a client's `TE:
/// gzip` must not bring back a coding the relay drops, an `upgrade` must
/// not start anything).
fn hop_by_hop_removed(headers: &mut http::HeaderMap) {
    let named: Vec<http::HeaderName> = headers
        .get_all(http::header::CONNECTION)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|name| http::HeaderName::from_bytes(name.trim().as_bytes()).ok())
        .collect();
    for name in named {
        headers.remove(name);
    }
    for name in [
        http::header::CONNECTION,
        http::header::UPGRADE,
        http::header::TE,
        http::header::TRANSFER_ENCODING,
        http::header::PROXY_AUTHENTICATE,
        http::HeaderName::from_static("keep-alive"),
        http::HeaderName::from_static("proxy-connection"),
    ] {
        headers.remove(name);
    }
}

/// A `502` for a request that was allowed and then failed.
fn failed(reason: Reason, pinned: &PinnedTarget) -> Response<ProxyBody> {
    let host = pinned.target().host_header();
    let why = match reason {
        Reason::TlsFailed => format!(
            "the TLS handshake with {host} failed: its certificate did not verify against the roots airlock trusts"
        ),
        Reason::ConnectFailed => format!("{host} refused the connection"),
        Reason::ConnectTimeout => format!("{host} did not answer in time"),
        _ => format!("the request to {host} failed"),
    };
    text(
        StatusCode::BAD_GATEWAY,
        Some(reason),
        format!("airlock: {}: {why}", reason.code()),
    )
}

async fn handle(
    shared: Arc<Shared>,
    permit: Permit,
    request: Request<Incoming>,
) -> Response<ProxyBody> {
    let cx = Arc::clone(&(shared.route)().cx);
    let method = request.method().to_string();
    let origin = cx.origin(&method);
    // CONNECT carries TLS, so it is decided as https; plain requests must
    // come in absolute form (`GET http://host/path`).
    let tunnel = request.method() == Method::CONNECT;
    let url = if tunnel {
        match request.uri().authority() {
            Some(authority) => format!("https://{authority}/"),
            None => {
                return text(
                    StatusCode::BAD_REQUEST,
                    None,
                    "airlock: CONNECT needs host:port".into(),
                );
            }
        }
    } else if request.uri().scheme_str() == Some("http") {
        request.uri().to_string()
    } else {
        return text(
            StatusCode::BAD_REQUEST,
            None,
            "airlock: send `GET http://host/path` through the proxy, or CONNECT for https".into(),
        );
    };
    let pinned = match cx.check(&url).await {
        Ok(pinned) => pinned,
        Err(denial) => {
            cx.log.deny(&origin, &denial);
            return refused(&denial);
        }
    };
    if !tunnel {
        return forward(&cx, request, pinned).await;
    }
    // The CONNECT is recorded whether or not a request follows inside.
    let record = cx.log.allow(&origin, &pinned, Vec::new());
    match shared.ca() {
        Some(ca) if cx.intercepts(&pinned) => intercept::open(
            intercept::Session::new(Arc::clone(&shared.route), cx, ca, pinned, record),
            request,
            permit,
        ),
        // A blind tunnel has no idle end the proxy could see (the TLS
        // inside is the client's): it gives its slot back with the
        // connection, as an intercepted one, which closes when idle, does not.
        _ => tunnel::open(&cx, request, &pinned, record).await,
    }
}

/// Sends one allowed request through the hook's exchange: the bound
/// credentials injected (each checked), a record, and the response
/// limited, paced and scrubbed. Plain requests and those inside an
/// intercepted tunnel both end here.
async fn forward(
    cx: &Context,
    request: Request<Incoming>,
    pinned: PinnedTarget,
) -> Response<ProxyBody> {
    let method = request.method().to_string();
    let (injected, record) = match cx.admitted(request.headers(), &pinned, &cx.origin(&method)) {
        Ok(admitted) => admitted,
        Err(denial) => return refused(&denial),
    };
    let (mut parts, body) = request.into_parts();
    // The client's connection is with the proxy: its own headers stay here.
    hop_by_hop_removed(&mut parts.headers);
    parts.headers.remove(http::header::PROXY_AUTHORIZATION);
    let body = body.map_err(WasiError::from).boxed_unsync();
    let request = Request::from_parts(parts, body);
    match cx.exchange(request, None, &pinned, &record, injected).await {
        Ok((mut response, connection)) => {
            // What is left of the upstream connection carries the rest of
            // the body while the client reads it.
            tokio::spawn(Box::into_pin(connection));
            hop_by_hop_removed(response.headers_mut());
            response
        }
        Err((reason, _)) => failed(reason, &pinned),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hook::{Credentials, Network, Requester};
    use crate::{NetworkGrant, StaticResolver, TcpTlsConnector};
    use airlock_policy::{PolicyEngine, Principal, RequestContext, ToolFacts};

    fn proxy() -> EgressProxy {
        let hook = EgressHook::new(
            "01TEST",
            Arc::new(NetworkGrant::default()),
            Network {
                resolver: Arc::new(StaticResolver::new()),
                connector: Arc::new(TcpTlsConnector::with_webpki_roots()),
            },
            Requester {
                policies: Arc::new(PolicyEngine::embedded()),
                principal: Principal::user("test"),
                tool: ToolFacts::derive("t", airlock_policy::World::Native, vec![], "sha", false),
                context: RequestContext::default(),
                credentials: Credentials::default(),
            },
        );
        EgressProxy::start(hook).expect("proxy")
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn the_channel_is_the_only_way_in_and_each_connection_is_served() {
        let proxy = proxy();
        // The proxy made no socket file: there is no path to connect to.
        let fd = proxy.channel_fd();
        let target = std::fs::read_link(format!("/proc/self/fd/{fd}")).expect("fd");
        assert!(
            target.to_string_lossy().starts_with("socket:["),
            "an unnamed socket, not a file: {}",
            target.display()
        );
        // Over the channel, as the bridge does: a request not in absolute
        // form is a 400, on each of two connections.
        let channel = proxy.sandbox_end.try_clone().expect("clone");
        let answers = tokio::task::spawn_blocking(move || {
            use std::io::{Read, Write};
            (0..2)
                .map(|_| {
                    let mut stream = channel::connect(channel.as_fd()).expect("connected");
                    stream
                        .write_all(b"GET / HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n")
                        .expect("request");
                    let mut answer = String::new();
                    stream.read_to_string(&mut answer).expect("answer");
                    answer
                })
                .collect::<Vec<_>>()
        })
        .await
        .expect("task");
        for answer in answers {
            assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        }
    }
}
