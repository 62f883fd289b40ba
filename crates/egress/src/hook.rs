//! [`EgressHook`]: the only `WasiHttpHooks` implementation, and so the only
//! way a tool's request leaves the host.
//!
//! For each request: count it against the invocation's budget, run the
//! egress decision (names, then one resolution, then every address
//! classified), connect to a checked address only, rewrite the request to
//! origin-form with the `Host` header set here, inject the credentials bound
//! to exactly this origin, and hand back a response whose body is limited,
//! paced, timed and (when a credential went out) scrubbed of the secret.
//! Every request leaves a record.

use super::body::{RequestBody, ResponseBody};
use super::budget::Budget;
use super::connect::Connector;
use super::credential::{CredentialBinding, Secrets};
use super::decide::{Decision, Denial, PinnedTarget, Reason, decide};
use super::grant::NetworkGrant;
use super::record::{EgressLog, EgressRecord, Origin, RecordHandle};
use super::resolve::Resolver;
use super::scrub::ScrubbedBody;
use airlock_policy::{DestinationFacts, PolicyEngine, Principal, RequestContext, ToolFacts};
use http_body_util::BodyExt;
use std::future::Future as _;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::Poll;
use std::time::Duration;
use wasmtime_wasi_http::{Error as WasiError, RequestOptions, WasiBody, WasiHttpHooks};

mod inject;
mod proxy;

use inject::Injected;

pub use proxy::DENY_REASON_HEADER;
pub use proxy::{CaError, EgressProxy, InterceptCa, Route};

type IoFuture = Box<dyn Future<Output = Result<(), WasiError>> + Send>;
type SendFuture =
    Box<dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), WasiError>> + Send>;

/// The host-wide parts of egress: how names are resolved and how checked
/// addresses are dialled.
#[derive(Clone)]
pub struct Network {
    /// Resolves names, once per request.
    pub resolver: Arc<dyn Resolver>,
    /// Dials checked addresses.
    pub connector: Arc<dyn Connector>,
}

/// Who is making an invocation's requests, for the `http.request` and
/// `credential.use` checks, and the credentials bound to its tool.
#[derive(Clone)]
pub struct Requester {
    /// The policies `http.request` and `credential.use` are checked with.
    pub policies: Arc<PolicyEngine>,
    /// Who the invocation runs for.
    pub principal: Principal,
    /// The tool making the requests.
    pub tool: ToolFacts,
    /// The invocation's context.
    pub context: RequestContext,
    /// What may be injected, and from where.
    pub credentials: Credentials,
}

/// A tool's credential bindings and where their secrets come from.
#[derive(Clone, Default)]
pub struct Credentials {
    /// The tool's bindings.
    pub bindings: Arc<[CredentialBinding]>,
    /// Where their secrets come from; none means every binding fails.
    pub secrets: Option<Arc<dyn Secrets>>,
}

/// Everything one invocation's requests share.
struct Context {
    invocation_id: String,
    grant: Arc<NetworkGrant>,
    network: Network,
    requester: Requester,
    budget: Arc<Budget>,
    log: EgressLog,
}

/// Decides and carries out the outgoing requests of one invocation.
#[derive(Clone)]
pub struct EgressHook {
    cx: Arc<Context>,
}

impl EgressHook {
    /// The hook of one invocation (`invocation_id`) of a tool with network
    /// `grant`, making requests as `requester`.
    pub fn new(
        invocation_id: &str,
        grant: Arc<NetworkGrant>,
        network: Network,
        requester: Requester,
    ) -> Self {
        let budgets = grant.budgets();
        let budget = Budget::new(
            budgets.max_requests,
            budgets.bytes_per_second.map(|r| r.get()),
        );
        Self {
            cx: Arc::new(Context {
                invocation_id: invocation_id.to_string(),
                grant,
                network,
                requester,
                budget,
                log: EgressLog::default(),
            }),
        }
    }

    /// The records of this invocation's requests so far.
    pub fn records(&self) -> Vec<EgressRecord> {
        self.cx.log.snapshot()
    }

    /// The whole decision this hook would make for `url` as its next
    /// request (request budget, grant, one resolution, every address
    /// classified, Cedar `http.request`), without opening a connection.
    pub async fn check(&self, url: &str) -> Decision {
        match self.cx.check(url).await {
            Ok(pinned) => Decision::Allow(pinned),
            Err(denial) => Decision::Deny(*denial),
        }
    }
}

impl WasiHttpHooks for EgressHook {
    fn is_supported_scheme(&mut self, _scheme: &http::uri::Scheme) -> bool {
        // Every scheme reaches the decision, which refuses all but http and
        // https itself, with a reason and a record.
        true
    }

    fn set_host_header(&mut self) -> bool {
        // The hook sets `Host` from the checked target, never from the guest.
        false
    }

    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        let cx = Arc::clone(&self.cx);
        Box::new(async move { cx.send(request, options).await })
    }
}

/// The `Content-Length` a message announces, if it is a number.
fn announced_length(headers: &http::HeaderMap) -> Option<u64> {
    headers
        .get(http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse().ok())
}

/// Whether a response body reaches the guest as the bytes the server wrote:
/// no content coding but `identity`, no transfer coding but `chunked`
/// (which hyper removes). Anything else could hide a reflected secret.
fn searchable(headers: &http::HeaderMap) -> bool {
    let identity = headers
        .get_all(http::header::CONTENT_ENCODING)
        .iter()
        .all(|v| v.as_bytes().eq_ignore_ascii_case(b"identity"));
    let chunked_only = headers
        .get_all(http::header::TRANSFER_ENCODING)
        .iter()
        .all(|v| {
            v.to_str().is_ok_and(|v| {
                v.split(',')
                    .map(str::trim)
                    .all(|coding| coding.eq_ignore_ascii_case("chunked"))
            })
        });
    identity && chunked_only
}

/// A body-size refusal: the reason for the record, the error for the guest.
fn too_large(reason: Reason, limit: u64) -> (Reason, WasiError) {
    (reason, reason.to_wasi(Some(limit)))
}

/// A guest's timeout can shorten the grant's, never lengthen it.
fn tighter(grant: Duration, guest: Option<Duration>) -> Duration {
    guest.map_or(grant, |g| g.min(grant))
}

impl Context {
    async fn send(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
    ) -> Result<(http::Response<WasiBody>, IoFuture), WasiError> {
        let method = request.method().to_string();
        let origin = self.origin(&method);
        let url = request.uri().to_string();
        let pinned = match self.check(&url).await {
            Ok(pinned) => pinned,
            Err(denial) => {
                self.log.deny(&origin, &denial);
                return Err(denial.reason.to_wasi(None));
            }
        };
        let (injected, record) = self
            .admitted(request.headers(), &pinned, &origin)
            .map_err(|denial| denial.reason.to_wasi(None))?;
        self.exchange(request, options, &pinned, &record, injected)
            .await
            .map_err(|(_, error)| error)
    }

    /// Who makes a request of this context with `method`, for its record.
    fn origin<'a>(&'a self, method: &'a str) -> Origin<'a> {
        Origin {
            tool: &self.requester.tool.name,
            invocation_id: &self.invocation_id,
            method,
        }
    }

    /// The credentials an allowed request to `pinned` carries (see
    /// `credentials_for`) and its record, started; or the refusal,
    /// recorded.
    fn admitted(
        &self,
        headers: &http::HeaderMap,
        pinned: &PinnedTarget,
        origin: &Origin<'_>,
    ) -> Result<(Injected, RecordHandle), Box<Denial>> {
        match self.credentials_for(headers, pinned) {
            Ok(injected) => {
                let record = self.log.allow(origin, pinned, injected.names());
                Ok((injected, record))
            }
            Err(denial) => {
                self.log.deny(origin, &denial);
                Err(denial)
            }
        }
    }

    /// What every request passes, whichever door it came through (the
    /// guest's `wasi:http` or a native tool's proxy): the request budget,
    /// the egress decision, then Cedar's `http.request`.
    async fn check(&self, url: &str) -> Result<PinnedTarget, Box<Denial>> {
        self.admit(None)?;
        let pinned = match decide(&self.grant, url, self.network.resolver.as_ref()).await {
            Decision::Allow(pinned) => pinned,
            Decision::Deny(denial) => return Err(Box::new(denial)),
        };
        // Operators can forbid destinations for everyone in Cedar, after the
        // grant matched and before anything is dialled.
        let target = pinned.target();
        let r = &self.requester;
        let destination = DestinationFacts {
            scheme: target.scheme.to_string(),
            host: target.host.to_string(),
            port: target.port,
        };
        let verdict = r
            .policies
            .check_http(&r.principal, &r.tool, &r.context, &destination);
        if !verdict.allowed {
            return Err(Box::new(Denial {
                reason: Reason::PolicyDenied,
                message: format!(
                    "policy {} refuses {}://{}:{}",
                    verdict.policies.join(", "),
                    destination.scheme,
                    destination.host,
                    destination.port
                ),
                target: Some(target.clone()),
                addresses: pinned.addresses().to_vec(),
                rule: Some(format!("cedar: {}", verdict.policies.join(", "))),
            }));
        }
        Ok(pinned)
    }

    /// Counts one request against the invocation's budget, or refuses it
    /// (naming `pinned`'s destination when it is known).
    fn admit(&self, pinned: Option<&PinnedTarget>) -> Result<(), Box<Denial>> {
        if self.budget.admit_request() {
            return Ok(());
        }
        Err(Box::new(Denial {
            reason: Reason::TooManyRequests,
            message: format!(
                "this invocation already made its {} requests",
                self.grant.budgets().max_requests
            ),
            target: pinned.map(|p| p.target().clone()),
            addresses: pinned.map(|p| p.addresses().to_vec()).unwrap_or_default(),
            rule: pinned.map(|p| p.rule().to_string()),
        }))
    }

    /// Whether the proxy terminates the TLS of a `CONNECT` to `pinned`:
    /// its rule allows it, and a credential is bound to it or the grant
    /// asks for every origin.
    fn intercepts(&self, pinned: &PinnedTarget) -> bool {
        pinned.interceptable()
            && (self.grant.intercept() == super::grant::Intercept::All
                || self
                    .requester
                    .credentials
                    .bindings
                    .iter()
                    .any(|b| b.matches(pinned.target())))
    }

    /// Whether a proxy for this context needs a CA: it may intercept.
    fn may_intercept(&self) -> bool {
        self.grant.intercept() == super::grant::Intercept::All
            || !self.requester.credentials.bindings.is_empty()
    }

    /// Connects to the first checked address that answers within the
    /// connect timeout; `tunnel` asks for plain TCP whatever the scheme (a
    /// proxy's CONNECT carries the client's own TLS).
    async fn dial(
        &self,
        pinned: &PinnedTarget,
        record: &RecordHandle,
        connect_timeout: Duration,
        tunnel: bool,
    ) -> Result<Box<dyn super::connect::Stream>, Reason> {
        let mut last = Reason::ConnectFailed;
        for endpoint in pinned.endpoints() {
            let endpoint = if tunnel { endpoint.plain() } else { endpoint };
            match tokio::time::timeout(connect_timeout, self.network.connector.connect(endpoint))
                .await
            {
                Ok(Ok(connected)) => {
                    record.connected(endpoint.addr());
                    return Ok(connected);
                }
                Ok(Err(e)) => {
                    tracing::debug!(target: "airlock::egress", addr = %endpoint.addr(), error = %e, "connect failed");
                    last = match e {
                        super::connect::ConnectError::Tls { .. } => Reason::TlsFailed,
                        _ => Reason::ConnectFailed,
                    };
                }
                Err(_elapsed) => last = Reason::ConnectTimeout,
            }
        }
        Err(last)
    }

    /// Connects to the pinned target and sends the request; on failure,
    /// the reason for the record and the error for the guest.
    /// The one exchange every checked request takes, from the guest's
    /// `wasi:http` or a native tool's proxy: dial the pinned address,
    /// handshake within the connect timeout, origin-form with the `Host`
    /// header set here, credentials injected, the request body limited and
    /// paced, first-byte and between-bytes timeouts, the response limited,
    /// paced, counted and (with a credential) scrubbed.
    /// A failure finishes `record` with its reason.
    async fn exchange(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        pinned: &PinnedTarget,
        record: &RecordHandle,
        injected: Injected,
    ) -> Result<(http::Response<WasiBody>, IoFuture), (Reason, WasiError)> {
        let result = self
            .attempt(request, options, pinned, record, injected)
            .await;
        if let Err((reason, _)) = &result {
            record.finish(Some(*reason));
        }
        result
    }

    /// The exchange itself (see [`Context::exchange`]).
    async fn attempt(
        &self,
        request: http::Request<WasiBody>,
        options: Option<RequestOptions>,
        pinned: &PinnedTarget,
        record: &RecordHandle,
        injected: Injected,
    ) -> Result<(http::Response<WasiBody>, IoFuture), (Reason, WasiError)> {
        let budgets = self.grant.budgets();
        let options = options.unwrap_or_default();
        let connect_timeout = tighter(budgets.connect_timeout, options.connect_timeout);
        let first_byte_timeout = tighter(budgets.first_byte_timeout, options.first_byte_timeout);
        let between_bytes_timeout =
            tighter(budgets.between_bytes_timeout, options.between_bytes_timeout);
        let fail = |reason: Reason| (reason, reason.to_wasi(None));

        // An announced body over the limit is refused before connecting.
        if announced_length(request.headers()).is_some_and(|len| len > budgets.max_request_bytes) {
            return Err(too_large(
                Reason::RequestTooLarge,
                budgets.max_request_bytes,
            ));
        }

        let stream = self
            .dial(pinned, record, connect_timeout, false)
            .await
            .map_err(fail)?;

        let (mut sender, connection) = tokio::time::timeout(
            connect_timeout,
            hyper::client::conn::http1::handshake(wasmtime_wasi_http::io::TokioIo::new(stream)),
        )
        .await
        .map_err(|_| fail(Reason::ConnectTimeout))?
        .map_err(|_| fail(Reason::ProtocolError))?;

        let (mut parts, body) = request.into_parts();
        parts.uri = http::Uri::builder()
            .path_and_query(pinned.target().path_and_query.as_str())
            .build()
            .map_err(|_| fail(Reason::InvalidUrl))?;
        let host = http::HeaderValue::from_str(&pinned.target().host_header())
            .map_err(|_| fail(Reason::InvalidUrl))?;
        parts.headers.insert(http::header::HOST, host);
        for injection in injected.headers {
            parts.headers.insert(injection.header, injection.value);
        }
        if injected.scrubber.is_some() {
            // A compressed response could not be searched for the secret:
            // ask for none, in content or in transfer coding.
            parts.headers.insert(
                http::header::ACCEPT_ENCODING,
                http::HeaderValue::from_static("identity"),
            );
            parts.headers.remove(http::header::TE);
        }
        let overflowed = Arc::new(AtomicBool::new(false));
        let body = RequestBody::new(
            body,
            budgets.max_request_bytes,
            Arc::clone(&self.budget),
            record.clone(),
            Arc::clone(&overflowed),
        );
        let request = http::Request::from_parts(parts, body);

        // Drive the connection here while the response is awaited (no task
        // of its own); what is left of it becomes the I/O future, which
        // wasmtime-wasi-http drives while the guest reads the body.
        let mut connection = Some(connection);
        let send = tokio::time::timeout(first_byte_timeout, sender.send_request(request));
        let mut send = std::pin::pin!(send);
        let answered = std::future::poll_fn(|cx| {
            if let Poll::Ready(answer) = send.as_mut().poll(cx) {
                return Poll::Ready(answer);
            }
            if let Some(driving) = connection.as_mut()
                && Pin::new(driving).poll(cx).is_ready()
            {
                // The connection ended: the request has its answer (or error).
                connection = None;
                return send.as_mut().poll(cx);
            }
            Poll::Pending
        })
        .await;
        let response = match answered {
            Err(_elapsed) => return Err(fail(Reason::FirstByteTimeout)),
            Ok(Err(_)) if overflowed.load(Ordering::Relaxed) => {
                return Err((
                    Reason::RequestTooLarge,
                    Reason::RequestTooLarge.to_wasi(Some(budgets.max_request_bytes)),
                ));
            }
            Ok(Err(e)) => return Err((Reason::ProtocolError, WasiError::from(e))),
            Ok(Ok(response)) => response,
        };
        record.status(response.status().as_u16());

        if announced_length(response.headers()).is_some_and(|len| len > budgets.max_response_bytes)
        {
            return Err(too_large(
                Reason::ResponseTooLarge,
                budgets.max_response_bytes,
            ));
        }

        // A compressed answer to a credentialed request could hide the
        // secret from the scrubber: refused before the guest sees a byte.
        if injected.scrubber.is_some() && !searchable(response.headers()) {
            return Err(fail(Reason::UnscrubbableResponse));
        }
        let mut response = response.map(|incoming| {
            ResponseBody::new(
                incoming,
                budgets.max_response_bytes,
                between_bytes_timeout,
                Arc::clone(&self.budget),
                record.clone(),
            )
        });
        let response = match injected.scrubber {
            None => response.map(BodyExt::boxed_unsync),
            Some(scrubber) => {
                scrubber.scrub_headers(response.headers_mut());
                // A reason phrase other than the standard one could echo
                // the secret; a proxy would write it back as it came.
                response
                    .extensions_mut()
                    .remove::<hyper::ext::ReasonPhrase>();
                response.map(|body| ScrubbedBody::new(body, scrubber).boxed_unsync())
            }
        };
        let io: IoFuture = Box::new(async move {
            match connection {
                Some(connection) => connection.await.map_err(WasiError::from),
                None => Ok(()),
            }
        });
        Ok((response, io))
    }
}
