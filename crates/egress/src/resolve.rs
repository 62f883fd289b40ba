//! Name resolution behind one seam: [`Resolver`].
//!
//! The egress decision resolves each name exactly once and pins the checked
//! answers; nothing downstream resolves again. Production uses
//! [`SystemResolver`] (hickory, configured from the system); tests and
//! `airlock egress check --resolve` use [`StaticResolver`], which answers from
//! a fixed map and can refuse everything else.

use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

/// A boxed future returned by [`Resolver::resolve`].
pub type ResolveFuture<'a> =
    Pin<Box<dyn Future<Output = Result<Vec<IpAddr>, ResolveError>> + Send + 'a>>;

/// Turns a normalised host name into addresses.
pub trait Resolver: Send + Sync {
    /// All addresses for `name` (lowercase, no trailing dot). An empty
    /// answer is an error, not an empty list.
    fn resolve<'a>(&'a self, name: &'a str) -> ResolveFuture<'a>;
}

/// Why a name did not resolve.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ResolveError {
    /// The name does not exist or has no A/AAAA records.
    #[error("`{name}` has no addresses")]
    NotFound {
        /// The name.
        name: String,
    },
    /// The resolver failed (timeout, server failure, ...).
    #[error("resolving `{name}` failed: {reason}")]
    Failed {
        /// The name.
        name: String,
        /// What the resolver said.
        reason: String,
    },
    /// The static resolver has no answer and may not ask anyone.
    #[error("`{name}` is not among the given answers and DNS is off")]
    NotGiven {
        /// The name.
        name: String,
    },
}

/// hickory-resolver with the system's configuration (`/etc/resolv.conf` on
/// Unix, the registry on Windows).
#[derive(Clone)]
pub struct SystemResolver {
    /// The resolver, or why the system configuration could not be used (then
    /// every lookup fails with that reason, rather than the host failing to
    /// start for tools that never use the network).
    inner: Result<hickory_resolver::TokioResolver, String>,
}

impl SystemResolver {
    /// Reads the system configuration. No query is sent until a name is
    /// resolved.
    pub fn from_system() -> Self {
        let inner = hickory_resolver::TokioResolver::builder_tokio()
            .and_then(|builder| builder.build())
            .map_err(|e| format!("the system resolver configuration is unusable: {e}"));
        Self { inner }
    }

    /// A resolver that asks only the DNS server at `server` (UDP, then TCP),
    /// with no cache and no hosts file: every lookup is a fresh query.
    pub fn with_server(server: SocketAddr, timeout: Duration) -> Result<Self, ResolveError> {
        use hickory_resolver::config::{
            ConnectionConfig, NameServerConfig, ResolveHosts, ResolverConfig,
        };
        let mut udp = ConnectionConfig::udp();
        udp.port = server.port();
        let mut tcp = ConnectionConfig::tcp();
        tcp.port = server.port();
        let config = ResolverConfig::from_parts(
            None,
            Vec::new(),
            vec![NameServerConfig::new(server.ip(), true, vec![udp, tcp])],
        );
        let mut builder = hickory_resolver::TokioResolver::builder_with_config(
            config,
            hickory_resolver::net::runtime::TokioRuntimeProvider::default(),
        );
        let options = builder.options_mut();
        options.cache_size = 0;
        options.use_hosts_file = ResolveHosts::Never;
        options.timeout = timeout;
        options.attempts = 1;
        let inner = builder.build().map_err(|e| ResolveError::Failed {
            name: String::new(),
            reason: e.to_string(),
        })?;
        Ok(Self { inner: Ok(inner) })
    }
}

impl Resolver for SystemResolver {
    fn resolve<'a>(&'a self, name: &'a str) -> ResolveFuture<'a> {
        Box::pin(async move {
            let resolver = self.inner.as_ref().map_err(|reason| ResolveError::Failed {
                name: name.to_string(),
                reason: reason.clone(),
            })?;
            // A trailing dot makes the name fully qualified: no search domains.
            let lookup = resolver.lookup_ip(format!("{name}.")).await.map_err(|e| {
                if e.is_no_records_found() || e.is_nx_domain() {
                    ResolveError::NotFound {
                        name: name.to_string(),
                    }
                } else {
                    ResolveError::Failed {
                        name: name.to_string(),
                        reason: e.to_string(),
                    }
                }
            })?;
            let mut addresses: Vec<IpAddr> = lookup.iter().collect();
            addresses.dedup();
            if addresses.is_empty() {
                return Err(ResolveError::NotFound {
                    name: name.to_string(),
                });
            }
            Ok(addresses)
        })
    }
}

/// Answers from a fixed map; other names go to `fallback`, or fail with
/// [`ResolveError::NotGiven`] when there is none.
#[derive(Clone, Default)]
pub struct StaticResolver {
    answers: HashMap<String, Vec<IpAddr>>,
    fallback: Option<Arc<dyn Resolver>>,
}

impl StaticResolver {
    /// A resolver that knows nothing and asks no one.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds answers for `name` (normalised like request hosts).
    pub fn with(mut self, name: &str, addresses: impl IntoIterator<Item = IpAddr>) -> Self {
        let name = super::url::normalise_name(&name.to_ascii_lowercase()).unwrap_or_default();
        self.answers.entry(name).or_default().extend(addresses);
        self
    }

    /// Sends names without a given answer to `fallback`.
    pub fn with_fallback(mut self, fallback: Arc<dyn Resolver>) -> Self {
        self.fallback = Some(fallback);
        self
    }
}

impl Resolver for StaticResolver {
    fn resolve<'a>(&'a self, name: &'a str) -> ResolveFuture<'a> {
        Box::pin(async move {
            match (self.answers.get(name), &self.fallback) {
                (Some(addresses), _) if !addresses.is_empty() => Ok(addresses.clone()),
                (Some(_), _) => Err(ResolveError::NotFound {
                    name: name.to_string(),
                }),
                (None, Some(fallback)) => fallback.resolve(name).await,
                (None, None) => Err(ResolveError::NotGiven {
                    name: name.to_string(),
                }),
            }
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn static_answers_and_refusals() {
        let resolver = StaticResolver::new()
            .with("API.test.", ["127.0.0.2".parse().expect("ip")])
            .with("empty.test", []);
        assert_eq!(
            resolver.resolve("api.test").await,
            Ok(vec!["127.0.0.2".parse().expect("ip")])
        );
        assert!(matches!(
            resolver.resolve("empty.test").await,
            Err(ResolveError::NotFound { .. })
        ));
        assert!(matches!(
            resolver.resolve("other.test").await,
            Err(ResolveError::NotGiven { .. })
        ));

        let chained = StaticResolver::new().with_fallback(Arc::new(resolver));
        assert!(chained.resolve("api.test").await.is_ok());
    }
}
