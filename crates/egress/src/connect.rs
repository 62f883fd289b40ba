//! Connecting to a pinned endpoint behind one seam: [`Connector`].
//!
//! A connector receives an [`Endpoint`], which only the egress decision can
//! produce: it dials that socket address and nothing else, and never
//! resolves a name. [`TcpTlsConnector`] is the production one (tokio TCP,
//! rustls with SNI and certificate verification for the request's *host*);
//! tests inject connectors that record or refuse.

use super::decide::Endpoint;
use super::url::TargetHost;
use rustls::pki_types::ServerName;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio::io::{AsyncRead, AsyncWrite};

/// A connected byte stream (plain TCP or TLS).
pub trait Stream: AsyncRead + AsyncWrite + Send + Unpin {}
impl<T: AsyncRead + AsyncWrite + Send + Unpin> Stream for T {}

/// A boxed future returned by [`Connector::connect`].
pub type ConnectFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Box<dyn Stream>, ConnectError>> + Send + 'a>>;

/// Opens connections to pinned endpoints.
pub trait Connector: Send + Sync {
    /// Connects to `endpoint` (TLS when it is https). Timeouts are applied by
    /// the caller.
    fn connect<'a>(&'a self, endpoint: Endpoint<'a>) -> ConnectFuture<'a>;
}

/// Why a connection could not be made.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConnectError {
    /// TCP failed (refused, unreachable, reset).
    #[error("connecting to {addr} failed: {source}")]
    Tcp {
        /// The address dialled.
        addr: std::net::SocketAddr,
        /// The I/O error.
        source: std::io::Error,
    },
    /// The TLS handshake or the certificate check failed.
    #[error("TLS with `{host}` failed: {reason}")]
    Tls {
        /// The name the certificate had to match.
        host: String,
        /// What went wrong.
        reason: String,
    },
}

/// tokio TCP, plus rustls for https.
#[derive(Clone)]
pub struct TcpTlsConnector {
    tls: tokio_rustls::TlsConnector,
}

impl TcpTlsConnector {
    /// Verifies servers against the Mozilla root store (webpki-roots).
    pub fn with_webpki_roots() -> Self {
        let roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        Self::with_roots(roots)
    }

    /// Verifies servers against the Mozilla root store and `extra` (the
    /// operator's own CAs, `[egress] roots`).
    pub fn with_webpki_roots_and(extra: Vec<rustls::pki_types::CertificateDer<'static>>) -> Self {
        let mut roots = rustls::RootCertStore {
            roots: webpki_roots::TLS_SERVER_ROOTS.into(),
        };
        roots.add_parsable_certificates(extra);
        Self::with_roots(roots)
    }

    /// Verifies servers against `roots` only (e.g. a private or test CA).
    pub fn with_roots(roots: rustls::RootCertStore) -> Self {
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let config = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("ring implements TLS 1.2 and 1.3")
            .with_root_certificates(roots)
            .with_no_client_auth();
        Self {
            tls: tokio_rustls::TlsConnector::from(Arc::new(config)),
        }
    }
}

impl Connector for TcpTlsConnector {
    fn connect<'a>(&'a self, endpoint: Endpoint<'a>) -> ConnectFuture<'a> {
        Box::pin(async move {
            let addr = endpoint.addr();
            let tcp = tokio::net::TcpStream::connect(addr)
                .await
                .map_err(|source| ConnectError::Tcp { addr, source })?;
            // Requests are small and interactive: do not wait to fill segments.
            let _ = tcp.set_nodelay(true);
            if !endpoint.is_https() {
                return Ok(Box::new(tcp) as Box<dyn Stream>);
            }
            let host = endpoint.host();
            let name = match host {
                TargetHost::Name(name) => ServerName::try_from(name.clone()),
                TargetHost::Ip(ip) => Ok(ServerName::IpAddress((*ip).into())),
            }
            .map_err(|e| ConnectError::Tls {
                host: host.to_string(),
                reason: e.to_string(),
            })?;
            let tls = self
                .tls
                .connect(name, tcp)
                .await
                .map_err(|e| ConnectError::Tls {
                    host: host.to_string(),
                    reason: e.to_string(),
                })?;
            Ok(Box::new(tls) as Box<dyn Stream>)
        })
    }
}
