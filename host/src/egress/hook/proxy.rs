//! [`EgressProxy`]: the HTTP proxy a native tool in `strict` network mode
//! reaches (through the bridge in its sandbox). The second door to the same
//! egress decision as the `wasi:http` hook: every request passes the
//! budget, the grant, one resolution with every address classified, and
//! Cedar, then goes to the pinned address. Plain HTTP (absolute-form
//! requests) takes the hook's own exchange, limits, pacing and timeouts
//! included; `CONNECT host:port` becomes a TCP tunnel to the checked
//! address (see [`tunnel`]), so a DNS rebinding inside the tunnel gains
//! nothing. Refusals are `403` with the reason code.

use super::{Context, EgressHook, Injected, Origin};
use crate::egress::decide::{Denial, Reason};
use crate::egress::record::EgressRecord;
use bytes::Bytes;
use http_body_util::{BodyExt, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use wasmtime_wasi_http::Error as WasiError;
use wasmtime_wasi_http::io::TokioIo;

mod tunnel;

type ProxyBody = UnsyncBoxBody<Bytes, WasiError>;

/// The header a refusal names its reason code in.
pub const DENY_REASON_HEADER: &str = "x-airlock-deny-reason";

/// Which hook decides a request: one tool run's, or (for a hosted server,
/// which outlives its calls) the one of the call in flight.
pub(crate) type Route = Arc<dyn Fn() -> EgressHook + Send + Sync>;

/// A running proxy on a Unix socket in a private directory; stops when
/// dropped.
pub(crate) struct EgressProxy {
    socket: PathBuf,
    hook: Option<EgressHook>,
    task: tokio::task::JoinHandle<()>,
    _dir: tempfile::TempDir,
}

impl Drop for EgressProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

impl EgressProxy {
    /// Starts a proxy deciding with `hook`'s grant, network and requester.
    ///
    /// Only the sandbox's user reaches it: the socket (0600) sits in a
    /// fresh directory (0700), both owned by that user, and a connection is
    /// served only when the kernel reports the peer as that user. The
    /// sandbox gets the socket bound in.
    pub(crate) fn start(hook: EgressHook) -> std::io::Result<Self> {
        let fixed = hook.clone();
        let mut proxy = Self::start_routed(Arc::new(move || fixed.clone()))?;
        proxy.hook = Some(hook);
        Ok(proxy)
    }

    /// As [`EgressProxy::start`], each request decided by the hook `route`
    /// picks when it arrives.
    pub(crate) fn start_routed(route: Route) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("airlock-proxy-")
            .tempdir()?;
        let socket = dir.path().join("proxy.sock");
        let (uid, gid) = sandbox_user();
        let private = |path: &Path, mode: u32| -> std::io::Result<()> {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode))?;
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
        };
        private(dir.path(), 0o700)?;
        let listener = tokio::net::UnixListener::bind(&socket)?;
        private(&socket, 0o600)?;
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                // Another user who reached the socket anyway (root, a shared
                // mount) is not served.
                if !stream.peer_cred().is_ok_and(|peer| peer.uid() == uid) {
                    tracing::warn!(target: "airlock::egress", "refused a proxy connection from another user");
                    continue;
                }
                let route = Arc::clone(&route);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let cx = Arc::clone(&route().cx);
                        async move { Ok::<_, std::convert::Infallible>(handle(&cx, request).await) }
                    });
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .with_upgrades()
                        .await;
                });
            }
        });
        Ok(Self {
            socket,
            hook: None,
            task,
            _dir: dir,
        })
    }

    /// The socket to bind into the sandbox.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// The records of every request so far (of a proxy with one hook).
    pub(crate) fn records(&self) -> Vec<EgressRecord> {
        self.hook
            .as_ref()
            .map(EgressHook::records)
            .unwrap_or_default()
    }
}

/// The user and group a sandboxed tool runs as, as the host's kernel sees
/// them: bubblewrap started by root drops to the sandbox user; started by
/// anyone else, its user namespace maps the tool to that user.
fn sandbox_user() -> (u32, u32) {
    let (uid, gid) = (
        nix::unistd::Uid::effective().as_raw(),
        nix::unistd::Gid::effective().as_raw(),
    );
    #[cfg(target_os = "linux")]
    if uid == 0 {
        return (
            airlock_sandbox::linux_bwrap::SANDBOX_UID,
            airlock_sandbox::linux_bwrap::SANDBOX_GID,
        );
    }
    (uid, gid)
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

fn failed(reason: Reason) -> Response<ProxyBody> {
    text(
        StatusCode::BAD_GATEWAY,
        Some(reason),
        format!("airlock: {}", reason.code()),
    )
}

async fn handle(cx: &Context, request: Request<Incoming>) -> Response<ProxyBody> {
    let method = request.method().to_string();
    let origin = Origin {
        tool: &cx.requester.tool.name,
        invocation_id: &cx.invocation_id,
        method: &method,
    };
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
    let record = cx.log.allow(&origin, &pinned, Vec::new());
    if tunnel {
        return tunnel::open(cx, request, &pinned, record).await;
    }
    let (mut parts, body) = request.into_parts();
    parts.headers.remove("proxy-connection");
    parts.headers.remove(http::header::PROXY_AUTHORIZATION);
    let body = body.map_err(WasiError::from).boxed_unsync();
    let request = Request::from_parts(parts, body);
    // Native tools hold no credentials (refused at load): nothing to inject.
    match cx
        .exchange(request, None, &pinned, &record, Injected::default())
        .await
    {
        // The connection runs on its own task; its end needs no waiting.
        Ok((response, _connection)) => response,
        Err((reason, _)) => {
            record.finish(Some(reason));
            failed(reason)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::egress::hook::{Credentials, Network, Requester};
    use crate::egress::{NetworkGrant, StaticResolver, TcpTlsConnector};
    use crate::policy::{PolicyEngine, Principal, RequestContext, ToolFacts};
    use std::os::unix::fs::PermissionsExt;

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
                tool: ToolFacts::derive("t", crate::World::Native, vec![], "sha", false),
                context: RequestContext::default(),
                credentials: Credentials::default(),
            },
        );
        EgressProxy::start(hook).expect("proxy")
    }

    /// What the proxy answers a connection from `uid`: the status code,
    /// `000` when it cannot connect or is not answered.
    async fn answer(socket: &Path, uid: u32) -> String {
        let mut curl = tokio::process::Command::new("curl");
        curl.args([
            "-s",
            "-o",
            "/dev/null",
            "-w",
            "%{http_code}",
            "--unix-socket",
        ])
        .arg(socket)
        .arg("http://proxy/");
        if uid != nix::unistd::Uid::effective().as_raw() {
            curl.uid(uid);
        }
        let out = curl.output().await.expect("curl");
        String::from_utf8_lossy(&out.stdout).to_string()
    }

    #[tokio::test]
    async fn only_the_sandbox_user_is_served() {
        let proxy = proxy();
        let socket = proxy.socket().to_path_buf();
        let (sandbox, _) = sandbox_user();
        let dir = socket.parent().expect("a directory");
        for (path, mode) in [(dir, 0o700), (socket.as_path(), 0o600)] {
            let meta = std::fs::metadata(path).expect("metadata");
            assert_eq!(
                meta.permissions().mode() & 0o777,
                mode,
                "{}",
                path.display()
            );
            assert_eq!(std::os::unix::fs::MetadataExt::uid(&meta), sandbox);
        }
        // The sandbox's user is served: a request not in absolute form is
        // a 400.
        assert_eq!(answer(&socket, sandbox).await, "400");

        if nix::unistd::Uid::effective().is_root() {
            // Root itself (which passes any permission) is not served, nor,
            // with the path opened to everyone, another user: the peer
            // credentials decide.
            assert_eq!(answer(&socket, 0).await, "000");
            for path in [dir, socket.as_path()] {
                std::fs::set_permissions(path, std::fs::Permissions::from_mode(0o777))
                    .expect("chmod");
            }
            assert_eq!(
                answer(&socket, 1).await,
                "000",
                "another user gets no answer"
            );
            assert_eq!(answer(&socket, sandbox).await, "400");
        }
    }
}
