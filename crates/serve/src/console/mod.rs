//! The operator console: `airlock serve --console`. Server-rendered pages
//! over HTTPS for the browsers operators paired (`airlock devices pair`):
//! pending approvals with live updates, hosted servers' definition changes
//! to accept or reject, the journal with proofs checked in place, the
//! tools, the devices. A browser without a device cookie sees
//! only the pairing page. Every approval decision takes
//! [`Server::decide`]'s one path as `Device::"ID"` in `Operator::"NAME"`,
//! channel `console`; a definition change is decided through
//! [`Server::decide_definition`], recorded under the same names.
//!
//! - [`tls`]: the certificate (generated once, or the operator's).
//! - `web`: strict headers, cookies, forms, CSRF tokens.
//! - `pages`, `changes`, `timeline`, `events`: one handler per page, the
//!   definition changes, the journal pages, the server-sent events;
//!   `views`: the templates' data.

mod changes;
mod events;
mod pages;
mod timeline;
pub mod tls;
mod views;
mod web;

pub use tls::{CertSource, ConsoleTls, TlsError};

use super::devices::Device;
use super::{ServeError, Server, accept_next};
use airlock::store::StoreError;
use bytes::Bytes;
use http::{Method, Request, Response, StatusCode};
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;
use hyper_util::rt::TokioIo;
use std::collections::HashMap;
use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;
use web::Body;

/// Where `--console` listens unless given an address.
pub const DEFAULT_CONSOLE: SocketAddr =
    SocketAddr::new(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST), 7324);

/// How long a browser has to finish the TLS handshake.
const HANDSHAKE_WITHIN: Duration = Duration::from_secs(10);

const CSS: &[u8] = include_bytes!("assets/console.css");
const JS: &[u8] = include_bytes!("assets/console.js");

/// The bound console, ready to serve.
pub struct ConsoleListener {
    listener: TcpListener,
    address: SocketAddr,
    tls: ConsoleTls,
}

impl ConsoleListener {
    /// Binds `address` (port 0 picks a free one) with `tls`.
    pub async fn bind(address: SocketAddr, tls: ConsoleTls) -> Result<Self, ServeError> {
        let io = |source| ServeError::Io {
            what: "serving the console on",
            path: address.to_string().into(),
            source,
        };
        let listener = TcpListener::bind(address).await.map_err(io)?;
        let address = listener.local_addr().map_err(io)?;
        Ok(Self {
            listener,
            address,
            tls,
        })
    }

    /// The console's URL (loopback when it listens on every address).
    pub fn url(&self) -> String {
        let mut shown = self.address;
        if shown.ip().is_unspecified() {
            shown.set_ip(std::net::IpAddr::V4(std::net::Ipv4Addr::LOCALHOST));
        }
        format!("https://{shown}/")
    }

    /// The certificate it serves.
    pub fn tls(&self) -> &ConsoleTls {
        &self.tls
    }

    /// Serves browsers until `shutdown` fires.
    pub async fn serve(
        self,
        server: Server,
        shutdown: CancellationToken,
    ) -> Result<(), ServeError> {
        let csrf = web::Csrf::new().map_err(|e| ServeError::Io {
            what: "making the console's CSRF key for",
            path: self.address.to_string().into(),
            source: std::io::Error::other(e.to_string()),
        })?;
        server.set_console_url(self.url());
        let console = Arc::new(Console {
            server,
            csrf,
            shutdown: shutdown.clone(),
        });
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::clone(&self.tls.config));
        while let Some((stream, _peer)) =
            accept_next(&shutdown, "a console connection", || self.listener.accept()).await
        {
            let (console, acceptor, shutdown) =
                (Arc::clone(&console), acceptor.clone(), shutdown.clone());
            tokio::spawn(async move {
                let stream =
                    match tokio::time::timeout(HANDSHAKE_WITHIN, acceptor.accept(stream)).await {
                        Ok(Ok(stream)) => stream,
                        Ok(Err(error)) => {
                            tracing::debug!(%error, "console: a TLS handshake failed");
                            return;
                        }
                        Err(_) => return,
                    };
                let service = hyper::service::service_fn(move |request| {
                    let console = Arc::clone(&console);
                    async move { Ok::<_, Infallible>(web::harden(console.route(request).await)) }
                });
                super::http::serve_connection(TokioIo::new(stream), service, shutdown).await;
            });
        }
        Ok(())
    }
}

/// What every handler reaches: the server, the CSRF key, shutdown.
pub(super) struct Console {
    server: Server,
    csrf: web::Csrf,
    shutdown: CancellationToken,
}

/// The paired device a request comes from.
pub(super) struct Viewer {
    device: Device,
    /// The CSRF token its forms carry.
    csrf: String,
}

fn device_subject(device: &Device) -> String {
    format!("device:{}", device.id)
}

/// A form body, at most [`web::MAX_FORM`] bytes.
async fn read_form(body: Incoming) -> Option<HashMap<String, String>> {
    let bytes: Bytes = Limited::new(body, web::MAX_FORM)
        .collect()
        .await
        .ok()?
        .to_bytes();
    Some(web::form(&bytes))
}

impl Console {
    /// The paired device the request's cookie belongs to.
    fn viewer(&self, headers: &http::HeaderMap) -> Result<Option<Viewer>, StoreError> {
        let Some(cookie) = web::cookie(headers, web::DEVICE_COOKIE) else {
            return Ok(None);
        };
        Ok(self
            .server
            .devices()
            .authenticate(cookie)?
            .map(|device| Viewer {
                csrf: self.csrf.token(&device_subject(&device)),
                device,
            }))
    }

    async fn route(self: Arc<Self>, request: Request<Incoming>) -> Response<Body> {
        let (parts, body) = request.into_parts();
        let query = web::form(parts.uri.query().unwrap_or_default().as_bytes());
        let method = parts.method.clone();
        let path = parts.uri.path().to_string();
        let post = method == Method::POST;
        if post && !web::same_origin(&parts.headers) {
            return web::text(
                StatusCode::FORBIDDEN,
                "csrf_refused: a request from another site may not change anything here",
            );
        }
        match (&method, path.as_str()) {
            (&Method::GET, "/assets/console.css") => return web::asset("text/css", CSS),
            (&Method::GET, "/assets/console.js") => return web::asset("text/javascript", JS),
            (&Method::GET, "/pair") => return pages::pair_form(&self, &parts.headers, None),
            (&Method::POST, "/pair") => {
                let Some(form) = read_form(body).await else {
                    return pages::failure(StatusCode::BAD_REQUEST, "the form was too large");
                };
                return pages::pair(&self, &parts.headers, &form);
            }
            _ => {}
        }
        let viewer = match self.viewer(&parts.headers) {
            Ok(Some(viewer)) => viewer,
            Ok(None) if method == Method::GET => return web::see_other("/pair"),
            Ok(None) => {
                return web::text(
                    StatusCode::FORBIDDEN,
                    "device_unpaired: this browser is not a paired device; pair it at /pair",
                );
            }
            Err(error) => {
                tracing::error!(code = error.code(), %error, "console: checking a device failed");
                return pages::failure(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "the server could not check this device; try again",
                );
            }
        };
        let form = if post {
            let Some(form) = read_form(body).await else {
                return pages::failure(StatusCode::BAD_REQUEST, "the form was too large");
            };
            let subject = device_subject(&viewer.device);
            if !self
                .csrf
                .check(&subject, form.get("csrf").map(String::as_str))
            {
                return pages::failure(
                    StatusCode::FORBIDDEN,
                    "csrf_refused: the form's CSRF token is missing or stale; reload the page and try again",
                );
            }
            form
        } else {
            HashMap::new()
        };
        let segments: Vec<&str> = path.trim_matches('/').split('/').collect();
        match (&method, segments.as_slice()) {
            (&Method::GET, [""]) => pages::approvals(&self, &viewer, &query, None),
            (&Method::GET, ["events"]) => events::stream(Arc::clone(&self), viewer),
            (&Method::POST, ["approvals", id]) => pages::decide(&self, &viewer, id, &form),
            (&Method::GET, ["journal"]) => timeline::list(&self, &viewer, &query),
            (&Method::GET, ["journal", seq]) => timeline::entry(&self, &viewer, seq),
            (&Method::GET, ["changes"]) => changes::list(&self, &viewer, &query, None),
            (&Method::POST, ["changes", id, verdict]) => {
                changes::decide(&self, &viewer, id, verdict).await
            }
            (&Method::GET, ["tools"]) => pages::tools(&self, &viewer),
            (&Method::GET, ["devices"]) => pages::devices(&self, &viewer, None),
            (&Method::POST, ["devices", id, "revoke"]) => pages::revoke(&self, &viewer, id),
            _ => pages::failure(StatusCode::NOT_FOUND, "no such page"),
        }
    }
}
