//! Intercepted `CONNECT` tunnels: the proxy answers the client's TLS itself
//! with a leaf its [`InterceptCa`] minted for the checked host, then serves
//! HTTP/1.1 inside it. Each request there is a request like any other: it
//! counts against the budget, gets the bound credentials (each checked
//! with Cedar and the secret's scope), leaves a record, and goes out
//! through the hook's exchange with the real certificate checks to the
//! address pinned when the tunnel was decided. The client's TLS must name
//! the granted host (SNI), as for a blind tunnel.

use super::tunnel::names_host;
use super::{Context, InterceptCa, Permit, ProxyBody, Route, forward, refused, text};
use crate::decide::{PinnedTarget, Reason};
use crate::record::RecordHandle;
use http_body_util::{BodyExt, Empty};
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioIo, TokioTimer};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use tokio_rustls::LazyConfigAcceptor;

/// One intercepted tunnel: what was decided when it opened.
pub(super) struct Session {
    route: Route,
    /// The context that decided the `CONNECT`.
    opened_by: Arc<Context>,
    ca: Arc<InterceptCa>,
    pinned: PinnedTarget,
    /// The record of the `CONNECT` itself, finished when the tunnel ends.
    record: RecordHandle,
    /// The `CONNECT` counted one request: the first inside is that one.
    prepaid: AtomicBool,
}

impl Session {
    /// A session for a `CONNECT` to `pinned` that `opened_by` allowed.
    pub(super) fn new(
        route: Route,
        opened_by: Arc<Context>,
        ca: Arc<InterceptCa>,
        pinned: PinnedTarget,
        record: RecordHandle,
    ) -> Self {
        Self {
            route,
            opened_by,
            ca,
            pinned,
            record,
            prepaid: AtomicBool::new(true),
        }
    }

    /// Ends the tunnel's record with why it failed, and says so in the log.
    fn refuse(&self, reason: Reason, message: &str) {
        let tool = &self.opened_by.requester.tool.name;
        tracing::warn!(target: "airlock::egress", %tool, reason = reason.code(), "{message}");
        self.record.finish(Some(reason));
    }

    /// Decides one request inside the tunnel, then forwards it.
    async fn request(&self, request: Request<Incoming>) -> Response<ProxyBody> {
        let cx = Arc::clone(&(self.route)().cx);
        // Inside a tunnel to one origin, only requests for that origin.
        if request.method() == hyper::Method::CONNECT {
            cx.log.deny(
                &cx.origin("CONNECT"),
                &crate::decide::Denial {
                    reason: Reason::ProtocolError,
                    message: "a CONNECT inside an intercepted tunnel".into(),
                    target: Some(self.pinned.target().clone()),
                    addresses: Vec::new(),
                    rule: None,
                },
            );
            return text(
                hyper::StatusCode::METHOD_NOT_ALLOWED,
                Some(Reason::ProtocolError),
                format!(
                    "airlock: protocol_error: a tunnel to {} carries requests for it, not another CONNECT",
                    self.pinned.target().host_header()
                ),
            );
        }
        let path = request
            .uri()
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .to_string();
        let decided = match self.pinned.for_path(&path) {
            // Same origin, same requester: the tunnel's decision holds (its
            // resolution included); only the budget counts again.
            Ok(pinned) if Arc::ptr_eq(&cx, &self.opened_by) => {
                if self.prepaid.swap(false, Ordering::Relaxed) {
                    Ok(pinned)
                } else {
                    cx.admit(Some(&pinned)).map(|()| pinned)
                }
            }
            // Another call of a hosted server now owns the proxy: decided
            // afresh, for its requester.
            Ok(pinned) => {
                let url = format!(
                    "https://{}{}",
                    pinned.target().host_header(),
                    pinned.target().path_and_query
                );
                cx.check(&url).await
            }
            Err(denial) => Err(denial),
        };
        match decided {
            Ok(pinned) => forward(&cx, request, pinned).await,
            Err(denial) => {
                cx.log.deny(&cx.origin(request.method().as_str()), &denial);
                refused(&denial)
            }
        }
    }
}

/// Answers `200` to the `CONNECT`, then (on its own task) terminates the
/// client's TLS and serves the requests inside.
pub(super) fn open(
    session: Session,
    request: Request<Incoming>,
    permit: Permit,
) -> Response<ProxyBody> {
    tokio::spawn(async move {
        let _permit = permit;
        let Ok(upgraded) = hyper::upgrade::on(request).await else {
            session.refuse(Reason::ProtocolError, "the CONNECT was not upgraded");
            return;
        };
        let timeout = session.opened_by.grant.budgets().first_byte_timeout;
        let tls =
            match tokio::time::timeout(timeout, accept(TokioIo::new(upgraded), &session)).await {
                Err(_elapsed) => Err((
                    Reason::FirstByteTimeout,
                    "the client began no TLS handshake in time".to_string(),
                )),
                Ok(accepted) => accepted,
            };
        let tls = match tls {
            Ok(tls) => tls,
            Err((reason, message)) => return session.refuse(reason, &message),
        };
        let session = Arc::new(session);
        let inner = Arc::clone(&session);
        let service = hyper::service::service_fn(move |request| {
            let session = Arc::clone(&inner);
            async move { Ok::<_, std::convert::Infallible>(session.request(request).await) }
        });
        // A tunnel waiting for its next request closes as an idle
        // connection would: no request head within the first-byte timeout.
        let _ = hyper::server::conn::http1::Builder::new()
            .timer(TokioTimer::new())
            .header_read_timeout(timeout)
            .serve_connection(TokioIo::new(tls), service)
            .await;
        session.record.finish(None);
    });
    Response::new(Empty::new().map_err(|never| match never {}).boxed_unsync())
}

/// The client's TLS, terminated with a leaf for the tunnel's host once its
/// ClientHello named that host; or why not.
async fn accept<IO>(
    io: IO,
    session: &Session,
) -> Result<tokio_rustls::server::TlsStream<IO>, (Reason, String)>
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
{
    let host = session.pinned.target().host.to_string();
    let start = LazyConfigAcceptor::new(rustls::server::Acceptor::default(), io)
        .await
        .map_err(|_| {
            (
                Reason::TunnelNotTls,
                format!("the tunnel to {host} did not begin with a TLS ClientHello"),
            )
        })?;
    let sni = start.client_hello().server_name().map(str::to_string);
    if !names_host(sni.as_deref(), &host) {
        return Err((
            Reason::SniMismatch,
            format!(
                "the TLS ClientHello names {} in a tunnel granted for {host}",
                sni.as_deref().unwrap_or("no server")
            ),
        ));
    }
    let config = session
        .ca
        .server_config(&session.pinned)
        .map_err(|e| (Reason::ProtocolError, e.to_string()))?;
    start.into_stream(config).await.map_err(|error| {
        let refused_ours = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>())
            .is_some_and(|e| matches!(e, rustls::Error::AlertReceived(alert) if certificate_alert(*alert)));
        if refused_ours {
            (
                Reason::ClientRefusedCa,
                format!(
                    "the client refused airlock's certificate for {host}: it pins its own certificate or does not read the CA bundle airlock gives it (SSL_CERT_FILE and the like). Point it at that bundle, or set `intercept = false` on the rule allowing {host} (the host can then not inject a credential there)"
                ),
            )
        } else {
            (
                Reason::ProtocolError,
                format!("the TLS handshake with the client for {host} failed: {error}"),
            )
        }
    })
}

/// Whether a client's alert says it did not accept the certificate.
fn certificate_alert(alert: rustls::AlertDescription) -> bool {
    use rustls::AlertDescription as A;
    matches!(
        alert,
        A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied
            | A::DecryptError
    )
}
