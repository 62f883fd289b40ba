//! The egress decision: one function, shared by the `wasi:http` hook and
//! `airlock egress check`.
//!
//! Order matters and never changes: parse and normalise the URL, match the
//! grant (host, then scheme, then port), resolve the name once, classify
//! every answer, and only then produce a [`PinnedTarget`]: the one value a
//! connector can be given. Any special-purpose answer denies the whole
//! request unless the matching rule opted in with `private = true`; cloud
//! metadata needs a rule that names the exact address.

use super::addr::{self, Class, Reach};
use super::grant::NetworkGrant;
use super::resolve::Resolver;
use super::rules::NoMatch;
use super::url::{self, Target, TargetHost};
use std::fmt;
use std::net::{IpAddr, SocketAddr};

/// Why a request was denied, or failed after it was allowed. Each has a
/// stable code used in egress records, CLI output and tests.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Reason {
    /// The URL does not parse or contains refused characters.
    InvalidUrl,
    /// Not http or https, or a scheme the matching rules do not allow.
    SchemeNotAllowed,
    /// `user@host`.
    UserinfoNotAllowed,
    /// No rule matches the host.
    HostNotAllowed,
    /// Rules match the host and scheme but not the port.
    PortNotAllowed,
    /// An answer is special-purpose and the rule did not opt in.
    PrivateAddress,
    /// An answer is a cloud metadata endpoint the rule does not name.
    MetadataAddress,
    /// The name did not resolve.
    DnsFailed,
    /// The invocation used up its requests.
    TooManyRequests,
    /// The request body is over the grant's limit.
    RequestTooLarge,
    /// The response body is (or announced itself as) over the limit.
    ResponseTooLarge,
    /// No connection within the connect timeout.
    ConnectTimeout,
    /// The connection was refused or failed.
    ConnectFailed,
    /// The TLS handshake or certificate check failed.
    TlsFailed,
    /// No response head within the first-byte timeout.
    FirstByteTimeout,
    /// The response body paused longer than the between-bytes timeout.
    BetweenBytesTimeout,
    /// The server broke the HTTP protocol.
    ProtocolError,
    /// A Cedar policy forbids the destination (`http.request`).
    PolicyDenied,
    /// The guest set a header that a credential binding injects.
    CredentialHeaderConflict,
    /// A Cedar policy (`credential.use`) or the secret's principal scope
    /// refuses the credential this request would carry.
    CredentialDenied,
    /// The bound secret could not be read from the vault.
    CredentialUnavailable,
    /// A response to a request that carried a credential is compressed, so
    /// it cannot be searched for the secret: refused rather than passed on.
    UnscrubbableResponse,
    /// A proxy tunnel decided as https did not begin with a TLS ClientHello.
    TunnelNotTls,
    /// A proxy tunnel's TLS ClientHello names another server (SNI) than the
    /// one the tunnel was granted for.
    SniMismatch,
    /// A plain-`http` request to a host whose credential binding allows
    /// `https` only: the secret is never sent in the clear, and the request
    /// does not go without it.
    CredentialNeedsHttps,
    /// The client inside the sandbox refused the certificate the proxy
    /// presented for an intercepted origin: it pins its own certificate or
    /// does not read the trust bundle.
    ClientRefusedCa,
}

impl Reason {
    /// Stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            Reason::InvalidUrl => "invalid_url",
            Reason::SchemeNotAllowed => "scheme_not_allowed",
            Reason::UserinfoNotAllowed => "userinfo_not_allowed",
            Reason::HostNotAllowed => "host_not_allowed",
            Reason::PortNotAllowed => "port_not_allowed",
            Reason::PrivateAddress => "private_address",
            Reason::MetadataAddress => "metadata_address",
            Reason::DnsFailed => "dns_failed",
            Reason::TooManyRequests => "too_many_requests",
            Reason::RequestTooLarge => "request_too_large",
            Reason::ResponseTooLarge => "response_too_large",
            Reason::ConnectTimeout => "connect_timeout",
            Reason::ConnectFailed => "connect_failed",
            Reason::TlsFailed => "tls_failed",
            Reason::FirstByteTimeout => "first_byte_timeout",
            Reason::BetweenBytesTimeout => "between_bytes_timeout",
            Reason::ProtocolError => "protocol_error",
            Reason::PolicyDenied => "policy_denied",
            Reason::CredentialHeaderConflict => "credential_header_conflict",
            Reason::CredentialDenied => "credential_denied",
            Reason::CredentialUnavailable => "credential_unavailable",
            Reason::UnscrubbableResponse => "unscrubbable_response",
            Reason::TunnelNotTls => "tunnel_not_tls",
            Reason::SniMismatch => "sni_mismatch",
            Reason::CredentialNeedsHttps => "credential_needs_https",
            Reason::ClientRefusedCa => "client_refused_ca",
        }
    }

    /// The `wasi:http` error code the guest sees, so it can tell a policy
    /// refusal from an unreachable server.
    pub fn to_wasi(self, limit: Option<u64>) -> wasmtime_wasi_http::Error {
        use wasmtime_wasi_http::Error as E;
        match self {
            Reason::InvalidUrl => E::HttpRequestUriInvalid,
            Reason::SchemeNotAllowed
            | Reason::UserinfoNotAllowed
            | Reason::HostNotAllowed
            | Reason::PortNotAllowed
            | Reason::TooManyRequests
            | Reason::PolicyDenied
            | Reason::CredentialHeaderConflict
            | Reason::CredentialDenied
            | Reason::CredentialUnavailable
            | Reason::CredentialNeedsHttps => E::HttpRequestDenied,
            Reason::UnscrubbableResponse => E::HttpResponseContentCoding(Some(
                "denied_by_host: a response to a request carrying a credential must not be compressed"
                    .into(),
            )),
            Reason::PrivateAddress | Reason::MetadataAddress => E::DestinationIpProhibited,
            Reason::DnsFailed => E::DnsError {
                rcode: Some("denied_by_host: name did not resolve".into()),
                info_code: None,
            },
            Reason::RequestTooLarge => E::HttpRequestBodySize(limit),
            Reason::ResponseTooLarge => E::HttpResponseBodySize(limit),
            Reason::ConnectTimeout => E::ConnectionTimeout,
            Reason::ConnectFailed => E::ConnectionRefused,
            Reason::TlsFailed => E::TlsCertificateError,
            Reason::FirstByteTimeout | Reason::BetweenBytesTimeout => E::ConnectionReadTimeout,
            // Only a native tool's proxy tunnels; a guest never sees these.
            Reason::ProtocolError
            | Reason::TunnelNotTls
            | Reason::SniMismatch
            | Reason::ClientRefusedCa => E::HttpProtocolError,
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

/// A destination that passed every check, with the addresses to dial.
/// Only [`decide`] makes one, so a connector can never be handed an
/// unchecked address.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PinnedTarget {
    target: Target,
    addresses: Vec<IpAddr>,
    rule: String,
    interceptable: bool,
}

impl PinnedTarget {
    /// The normalised destination.
    pub fn target(&self) -> &Target {
        &self.target
    }

    /// The checked addresses, in the resolver's order.
    pub fn addresses(&self) -> &[IpAddr] {
        &self.addresses
    }

    /// The rule that allowed it, as written.
    pub fn rule(&self) -> &str {
        &self.rule
    }

    /// Whether the native tools' proxy may terminate TLS to it (its rule
    /// does not say `intercept = false`).
    pub fn interceptable(&self) -> bool {
        self.interceptable
    }

    /// The same checked origin and addresses, for another path on it: a
    /// request inside a tunnel the proxy terminates, decided (resolution
    /// included) when the tunnel was. Rules and policies look at the
    /// origin only, so the decision holds; the path is checked as any.
    pub(crate) fn for_path(&self, path_and_query: &str) -> Result<Self, Box<Denial>> {
        let url = format!(
            "{}://{}{path_and_query}",
            self.target.scheme.as_str(),
            self.target.host_header()
        );
        match url::parse(&url) {
            Ok(target)
                if path_and_query.starts_with('/')
                    && target.scheme == self.target.scheme
                    && target.host == self.target.host
                    && target.port == self.target.port =>
            {
                Ok(Self {
                    target,
                    ..self.clone()
                })
            }
            _ => Err(Box::new(Denial {
                reason: Reason::InvalidUrl,
                message: format!(
                    "`{path_and_query}` is not a path on {}",
                    self.target.host_header()
                ),
                target: Some(self.target.clone()),
                addresses: self.addresses.clone(),
                rule: Some(self.rule.clone()),
            })),
        }
    }

    /// One endpoint per checked address, to try in order.
    pub fn endpoints(&self) -> impl Iterator<Item = Endpoint<'_>> {
        self.addresses.iter().map(|ip| Endpoint {
            addr: SocketAddr::new(*ip, self.target.port),
            target: &self.target,
            tls: self.target.scheme == url::Scheme::Https,
        })
    }
}

/// One address of a [`PinnedTarget`] to connect to. TLS must verify the
/// certificate for [`Endpoint::host`], not for the address.
#[derive(Clone, Copy, Debug)]
pub struct Endpoint<'a> {
    addr: SocketAddr,
    target: &'a Target,
    tls: bool,
}

impl Endpoint<'_> {
    /// The checked socket address.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// The host the request is for (SNI and certificate name).
    pub fn host(&self) -> &TargetHost {
        &self.target.host
    }

    /// Whether to speak TLS.
    pub fn is_https(&self) -> bool {
        self.tls
    }

    /// The same address for plain TCP: a proxy tunnel, where the client
    /// speaks TLS itself.
    pub(crate) fn plain(self) -> Self {
        Self { tls: false, ..self }
    }
}

/// A refused request, with everything known when it was refused.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    /// Why.
    pub reason: Reason,
    /// For humans: what was refused and why.
    pub message: String,
    /// The destination, if the URL parsed.
    pub target: Option<Target>,
    /// The resolved addresses, if resolution happened.
    pub addresses: Vec<IpAddr>,
    /// The rule that matched the host, if one did.
    pub rule: Option<String>,
}

/// What [`decide`] concluded.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Decision {
    /// Dial these addresses, and only these.
    Allow(PinnedTarget),
    /// Do not dial anything.
    Deny(Denial),
}

/// Decides whether `url` may be fetched under `grant`, resolving names with
/// `resolver` (at most once). No socket is opened here.
pub async fn decide(grant: &NetworkGrant, url: &str, resolver: &dyn Resolver) -> Decision {
    let deny = |reason, message: String, target: Option<&Target>| {
        Decision::Deny(Denial {
            reason,
            message,
            target: target.cloned(),
            addresses: Vec::new(),
            rule: None,
        })
    };
    let target = match url::parse(url) {
        Ok(target) => target,
        Err(e) => {
            let reason = match e {
                url::UrlError::Scheme { .. } => Reason::SchemeNotAllowed,
                url::UrlError::Userinfo { .. } => Reason::UserinfoNotAllowed,
                _ => Reason::InvalidUrl,
            };
            return deny(reason, e.to_string(), None);
        }
    };

    let rule = match grant.rules().find(&target) {
        Ok(rule) => rule,
        Err(no_match) => {
            let (reason, what) = match no_match {
                NoMatch::Host => (
                    Reason::HostNotAllowed,
                    format!("no rule allows host `{}`", target.host),
                ),
                NoMatch::Scheme => (
                    Reason::SchemeNotAllowed,
                    format!("no rule for `{}` allows {}", target.host, target.scheme),
                ),
                NoMatch::Port => (
                    Reason::PortNotAllowed,
                    format!(
                        "no rule for `{}` allows port {} over {}",
                        target.host, target.port, target.scheme
                    ),
                ),
            };
            return deny(reason, what, Some(&target));
        }
    };

    let addresses = match &target.host {
        TargetHost::Ip(ip) => vec![*ip],
        TargetHost::Name(name) => match resolver.resolve(name).await {
            Ok(addresses) => addresses,
            Err(e) => {
                return Decision::Deny(Denial {
                    reason: Reason::DnsFailed,
                    message: e.to_string(),
                    target: Some(target),
                    addresses: Vec::new(),
                    rule: Some(rule.to_string()),
                });
            }
        },
    };

    // Every answer must pass, not just one: a name that resolves to a public
    // and a private address is a rebinding attempt waiting for its chance.
    for ip in &addresses {
        let refusal = match addr::classify(*ip) {
            Class::Public => None,
            Class::CloudMetadata { .. } if rule.private && rule.names_exactly(*ip) => None,
            class @ Class::CloudMetadata { .. } => Some((
                Reason::MetadataAddress,
                format!(
                    "{class}; only a `private = true` rule that names exactly `host = \"{ip}\"` may reach it"
                ),
            )),
            Class::Special { block, .. } if rule.private && block.reach == Reach::OptIn => None,
            class @ Class::Special { block, .. } => Some((
                Reason::PrivateAddress,
                if block.reach == Reach::Never {
                    format!("{class}, which is never dialled")
                } else {
                    format!("{class}; the matching rule does not say `private = true`")
                },
            )),
        };
        if let Some((reason, detail)) = refusal {
            let message = match &target.host {
                TargetHost::Ip(_) => format!("{ip} is {detail}"),
                TargetHost::Name(name) => format!("`{name}` resolves to {ip}, which is {detail}"),
            };
            return Decision::Deny(Denial {
                reason,
                message,
                addresses,
                target: Some(target),
                rule: Some(rule.to_string()),
            });
        }
    }

    Decision::Allow(PinnedTarget {
        target,
        addresses,
        rule: rule.to_string(),
        interceptable: rule.intercept,
    })
}
