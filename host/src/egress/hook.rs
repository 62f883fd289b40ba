//! [`EgressHook`]: the single `WasiHttpHooks` implementation.

use wasmtime_wasi_http::{RequestOptions, WasiBody, WasiHttpHooks};

/// Stable reason code for a request that no grant allows.
pub(crate) const HOST_NOT_ALLOWED: &str = "host_not_allowed";

type IoFuture = Box<dyn Future<Output = Result<(), wasmtime_wasi_http::Error>> + Send>;
type SendFuture = Box<
    dyn Future<Output = Result<(http::Response<WasiBody>, IoFuture), wasmtime_wasi_http::Error>>
        + Send,
>;

/// Decides every outgoing request of one invocation.
///
/// No tool has a network grant yet, so every request is denied with
/// `HttpRequestDenied` before anything is resolved or dialled.
#[derive(Debug, Default)]
pub(crate) struct EgressHook {
    tool: String,
}

impl EgressHook {
    pub(crate) fn new(tool: &str) -> Self {
        Self {
            tool: tool.to_string(),
        }
    }
}

impl WasiHttpHooks for EgressHook {
    fn send_request(
        &mut self,
        request: http::Request<WasiBody>,
        _options: Option<RequestOptions>,
        _fut: IoFuture,
    ) -> SendFuture {
        // Only scheme, host and port: a path or query may carry data the
        // guest wants to exfiltrate, and logs are not the place for it.
        let uri = request.uri();
        tracing::info!(
            target: "airlock::egress",
            event = "egress.denied",
            tool = %self.tool,
            method = %request.method(),
            scheme = uri.scheme_str().unwrap_or(""),
            host = uri.host().unwrap_or(""),
            port = uri.port_u16(),
            deny_reason = HOST_NOT_ALLOWED,
            "outgoing request denied: no network grant"
        );
        Box::new(std::future::ready(Err(
            wasmtime_wasi_http::Error::HttpRequestDenied,
        )))
    }
}
