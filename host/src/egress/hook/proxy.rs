//! [`EgressProxy`]: the HTTP proxy a native tool in `strict` network mode
//! reaches (through the bridge in its sandbox). The second door to the same
//! egress decision as the `wasi:http` hook: every request passes the
//! budget, the grant, one resolution with every address classified, and
//! Cedar, then goes to the pinned address. Plain HTTP is forwarded
//! (absolute-form requests); `CONNECT host:port` becomes a TCP tunnel to the
//! checked address, so a lying SNI or a DNS rebinding inside the tunnel
//! gains nothing. Refusals are `403` with the reason code.

use super::{Context, EgressHook, Origin, tighter};
use crate::egress::body::ResponseBody;
use crate::egress::decide::{Denial, Reason};
use crate::egress::record::EgressRecord;
use bytes::Bytes;
use http_body_util::{BodyExt, Empty, Full, combinators::UnsyncBoxBody};
use hyper::body::Incoming;
use hyper::{Method, Request, Response, StatusCode};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use tokio::io::AsyncReadExt;
use wasmtime_wasi_http::Error as WasiError;
use wasmtime_wasi_http::io::TokioIo;

type ProxyBody = UnsyncBoxBody<Bytes, WasiError>;

/// The header a refusal names its reason code in.
pub const DENY_REASON_HEADER: &str = "x-airlock-deny-reason";

/// A running proxy on a Unix socket in a private directory; stops when
/// dropped.
pub(crate) struct EgressProxy {
    socket: PathBuf,
    hook: EgressHook,
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
    /// The socket is reachable by any local user (the sandbox runs as
    /// `nobody`); its directory can be passed through but not listed.
    pub(crate) fn start(hook: EgressHook) -> std::io::Result<Self> {
        let dir = tempfile::Builder::new()
            .prefix("airlock-proxy-")
            .tempdir()?;
        let socket = dir.path().join("proxy.sock");
        let listener = tokio::net::UnixListener::bind(&socket)?;
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o711))?;
            std::fs::set_permissions(&socket, std::fs::Permissions::from_mode(0o666))?;
        }
        let cx = Arc::clone(&hook.cx);
        let task = tokio::spawn(async move {
            while let Ok((stream, _)) = listener.accept().await {
                let cx = Arc::clone(&cx);
                tokio::spawn(async move {
                    let service = hyper::service::service_fn(move |request| {
                        let cx = Arc::clone(&cx);
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
            hook,
            task,
            _dir: dir,
        })
    }

    /// The socket to bind into the sandbox.
    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    /// The records of every request so far.
    pub(crate) fn records(&self) -> Vec<EgressRecord> {
        self.hook.records()
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
    let budgets = cx.grant.budgets();
    let stream = match cx
        .dial(&pinned, &record, budgets.connect_timeout, tunnel)
        .await
    {
        Ok(stream) => stream,
        Err(reason) => {
            record.finish(Some(reason));
            return failed(reason);
        }
    };

    if tunnel {
        let (up_limit, down_limit) = (budgets.max_request_bytes, budgets.max_response_bytes);
        tokio::spawn(async move {
            let Ok(upgraded) = hyper::upgrade::on(request).await else {
                record.finish(Some(Reason::ProtocolError));
                return;
            };
            let client = hyper_util::rt::TokioIo::new(upgraded);
            let (mut client_read, mut client_write) = tokio::io::split(client);
            let (mut server_read, mut server_write) = tokio::io::split(stream);
            // Each direction stops at its byte budget.
            let up = async {
                let sent =
                    tokio::io::copy(&mut (&mut client_read).take(up_limit), &mut server_write)
                        .await;
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut server_write).await;
                sent.unwrap_or(0)
            };
            let down = async {
                let got =
                    tokio::io::copy(&mut (&mut server_read).take(down_limit), &mut client_write)
                        .await;
                let _ = tokio::io::AsyncWriteExt::shutdown(&mut client_write).await;
                got.unwrap_or(0)
            };
            let (sent, got) = tokio::join!(up, down);
            record.add_up(sent);
            record.add_down(got);
            let over = if got >= down_limit {
                Some(Reason::ResponseTooLarge)
            } else if sent >= up_limit {
                Some(Reason::RequestTooLarge)
            } else {
                None
            };
            record.finish(over);
        });
        return Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync());
    }

    let Ok((mut sender, connection)) =
        hyper::client::conn::http1::handshake(TokioIo::new(stream)).await
    else {
        record.finish(Some(Reason::ProtocolError));
        return failed(Reason::ProtocolError);
    };
    tokio::spawn(connection);
    let (mut parts, body) = request.into_parts();
    let target = pinned.target();
    let Ok(uri) = http::Uri::builder()
        .path_and_query(target.path_and_query.as_str())
        .build()
    else {
        record.finish(Some(Reason::InvalidUrl));
        return failed(Reason::InvalidUrl);
    };
    parts.uri = uri;
    if let Ok(host) = http::HeaderValue::from_str(&target.host_header()) {
        parts.headers.insert(http::header::HOST, host);
    }
    parts.headers.remove("proxy-connection");
    parts.headers.remove(http::header::PROXY_AUTHORIZATION);
    let first_byte = tighter(budgets.first_byte_timeout, None);
    let response = match tokio::time::timeout(
        first_byte,
        sender.send_request(Request::from_parts(parts, body)),
    )
    .await
    {
        Err(_elapsed) => {
            record.finish(Some(Reason::FirstByteTimeout));
            return failed(Reason::FirstByteTimeout);
        }
        Ok(Err(_)) => {
            record.finish(Some(Reason::ProtocolError));
            return failed(Reason::ProtocolError);
        }
        Ok(Ok(response)) => response,
    };
    record.status(response.status().as_u16());
    response.map(|incoming| {
        ResponseBody::new(
            incoming,
            budgets.max_response_bytes,
            budgets.between_bytes_timeout,
            Arc::clone(&cx.budget),
            record.clone(),
        )
        .boxed_unsync()
    })
}
