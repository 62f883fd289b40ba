//! Credentials the host injects: [`CredentialBinding`], which secret goes
//! into which header of which requests, and [`Secrets`], where the
//! secrets come from (the host's vault). Bindings name exact origins
//! (scheme, host, port); a request to anything else, a redirect target
//! included, carries nothing.

use super::NetworkGrant;
use super::url::{Scheme, Target, TargetHost};
use airlock_policy::Principal;
use http::{HeaderName, HeaderValue};
use zeroize::Zeroizing;

/// Where the secrets of credential bindings come from: the host's vault.
/// The egress hook asks only after a request was allowed, for the
/// bindings that match it.
pub trait Secrets: Send + Sync {
    /// Secret `name` for a request `principal` makes while running `tool`.
    fn reveal_for(
        &self,
        name: &str,
        principal: &Principal,
        tool: &str,
    ) -> Result<Revealed, SecretRefusal>;
}

/// A secret ready to go out with one request.
pub struct Revealed {
    /// Its scope as policies see it (`Secret::"NAME"`'s `scope`).
    pub scope: String,
    /// Its bytes, wiped when dropped.
    pub value: Zeroizing<Vec<u8>>,
}

/// Why a secret was not given out.
pub enum SecretRefusal {
    /// It could not be had; the code says why (`unknown_secret`, …).
    Unavailable(&'static str),
    /// Its scope does not cover this principal or tool.
    OutOfScope {
        /// The scope it has.
        scope: String,
    },
}

/// The placeholder a binding's `format` must contain exactly once.
pub(crate) const SECRET_PLACEHOLDER: &str = "{secret}";

/// Whether `name` is a header a credential belongs in: `authorization`,
/// `x-api-key`, `api-key`, `cookie`, `x-*-token` or `x-*-key`. Binding a
/// secret to any other header (say `user-agent`) is refused: servers log
/// and echo such headers freely.
pub fn is_credential_header(name: &str) -> bool {
    let name = name.to_ascii_lowercase();
    matches!(
        name.as_str(),
        "authorization" | "x-api-key" | "api-key" | "cookie"
    ) || name
        .strip_prefix("x-")
        .and_then(|rest| {
            rest.strip_suffix("-token")
                .or_else(|| rest.strip_suffix("-key"))
        })
        .is_some_and(|middle| !middle.is_empty())
}

/// One secret bound to one header of requests to exact origins.
///
/// # Examples
///
/// ```
/// use airlock_egress::CredentialBinding;
///
/// let binding = CredentialBinding::new("github", "Authorization", "Bearer {secret}", &["api.github.com"])?;
/// assert_eq!(binding.secret(), "github");
/// assert!(CredentialBinding::new("github", "User-Agent", "{secret}", &["api.github.com"]).is_err());
/// # Ok::<(), airlock_egress::BindingError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CredentialBinding {
    secret: String,
    header: HeaderName,
    prefix: String,
    suffix: String,
    hosts: Vec<TargetHost>,
    schemes: Vec<Scheme>,
    ports: Option<Vec<u16>>,
    replace: bool,
}

impl CredentialBinding {
    /// Binds secret `secret` to `header` (credential-shaped, see
    /// [`is_credential_header`]) as `format` (with `{secret}` once) on
    /// `https` requests to `hosts` on port 443.
    pub fn new(
        secret: &str,
        header: &str,
        format: &str,
        hosts: &[&str],
    ) -> Result<Self, BindingError> {
        if !is_credential_header(header) {
            return Err(BindingError::Header {
                header: header.to_string(),
            });
        }
        let header =
            HeaderName::from_bytes(header.as_bytes()).map_err(|_| BindingError::Header {
                header: header.to_string(),
            })?;
        let (prefix, suffix) = match format.split_once(SECRET_PLACEHOLDER) {
            Some((prefix, suffix)) if !suffix.contains(SECRET_PLACEHOLDER) => (prefix, suffix),
            _ => {
                return Err(BindingError::Format {
                    format: format.to_string(),
                });
            }
        };
        if HeaderValue::from_str(&format!("{prefix}x{suffix}")).is_err() {
            return Err(BindingError::Format {
                format: format.to_string(),
            });
        }
        if hosts.is_empty() {
            return Err(BindingError::NoHosts);
        }
        let hosts = hosts
            .iter()
            .map(|host| exact_host(host))
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Self {
            secret: secret.to_string(),
            header,
            prefix: prefix.to_string(),
            suffix: suffix.to_string(),
            hosts,
            schemes: vec![Scheme::Https],
            ports: None,
            replace: false,
        })
    }

    /// Allows these schemes instead of `https` only (plain `http` sends the
    /// secret in the clear: only for loopback test servers and the like).
    pub fn with_schemes(mut self, schemes: Vec<Scheme>) -> Result<Self, BindingError> {
        if schemes.is_empty() {
            return Err(BindingError::NoSchemes);
        }
        self.schemes = schemes;
        Ok(self)
    }

    /// Allows these ports instead of each scheme's default.
    pub fn with_ports(mut self, ports: Vec<u16>) -> Result<Self, BindingError> {
        if ports.is_empty() || ports.contains(&0) {
            return Err(BindingError::Ports);
        }
        self.ports = Some(ports);
        Ok(self)
    }

    /// Replaces the header when the program set it itself, instead of
    /// refusing the request: for programs that will not start without a
    /// token and send the placeholder they were given.
    pub fn replacing(mut self) -> Self {
        self.replace = true;
        self
    }

    /// Whether a header the program set is replaced (else refused).
    pub fn replaces(&self) -> bool {
        self.replace
    }

    /// The secret's name in the vault.
    pub fn secret(&self) -> &str {
        &self.secret
    }

    /// The header the secret goes into.
    pub fn header(&self) -> &HeaderName {
        &self.header
    }

    /// Whether a request to `target` gets this credential: scheme, host
    /// and port must all be the binding's.
    pub fn matches(&self, target: &Target) -> bool {
        self.schemes.contains(&target.scheme)
            && self.hosts.contains(&target.host)
            && match &self.ports {
                Some(ports) => ports.contains(&target.port),
                None => target.port == target.scheme.default_port(),
            }
    }

    /// Whether `target` is a plain-`http` request to a host this binding
    /// serves over `https` only: refused, rather than sent without the
    /// credential the server expects (or with it, in the clear).
    pub fn wants_https(&self, target: &Target) -> bool {
        target.scheme == Scheme::Http
            && !self.schemes.contains(&Scheme::Http)
            && self.hosts.contains(&target.host)
    }

    /// The header value with `secret` in place of `{secret}`, marked
    /// sensitive so hyper never logs or compresses it.
    pub(crate) fn header_value(&self, secret: &[u8]) -> Option<HeaderValue> {
        let mut bytes = Vec::with_capacity(self.prefix.len() + secret.len() + self.suffix.len());
        bytes.extend_from_slice(self.prefix.as_bytes());
        bytes.extend_from_slice(secret);
        bytes.extend_from_slice(self.suffix.as_bytes());
        let mut value = HeaderValue::from_bytes(&bytes).ok()?;
        value.set_sensitive(true);
        Some(value)
    }

    /// The first origin of this binding the grant does not allow, if any:
    /// a binding may only narrow what the tool can reach.
    pub fn outside(&self, grant: &NetworkGrant) -> Option<String> {
        self.origins()
            .find(|target| grant.rules().find(target).is_err())
            .map(|target| format!("{}://{}", target.scheme, target.host_header()))
    }

    /// The first `https` origin of this binding whose rule in `grant` says
    /// `intercept = false`, if any: the native tools' proxy never sees
    /// inside that TLS, so it could not add the secret.
    pub fn not_intercepted(&self, grant: &NetworkGrant) -> Option<String> {
        self.origins()
            .filter(|target| target.scheme == Scheme::Https)
            .find(|target| grant.rules().find(target).is_ok_and(|rule| !rule.intercept))
            .map(|target| format!("https://{}", target.host_header()))
    }

    /// Every origin the binding names.
    fn origins(&self) -> impl Iterator<Item = Target> + '_ {
        self.hosts.iter().flat_map(move |host| {
            self.schemes.iter().flat_map(move |&scheme| {
                let ports = match &self.ports {
                    Some(ports) => ports.clone(),
                    None => vec![scheme.default_port()],
                };
                ports.into_iter().map(move |port| Target {
                    scheme,
                    host: host.clone(),
                    port,
                    path_and_query: "/".into(),
                })
            })
        })
    }
}

/// A host as the URL parser normalises it; wildcards are refused because a
/// credential must go to named servers only.
fn exact_host(host: &str) -> Result<TargetHost, BindingError> {
    let bad = || BindingError::Host {
        host: host.to_string(),
    };
    if host.contains(['*', '/', ':', '@']) && !host.starts_with('[') {
        return Err(bad());
    }
    crate::url::parse(&format!("https://{host}/"))
        .map(|target| target.host)
        .map_err(|_| bad())
}

/// A binding that cannot be built.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum BindingError {
    /// Not a credential-shaped header.
    #[error(
        "`{header}` is not a credential header: use authorization, x-api-key, api-key, cookie, x-NAME-token or x-NAME-key"
    )]
    Header {
        /// The header given.
        header: String,
    },
    /// `format` lacks `{secret}`, has it twice, or has characters a header
    /// value cannot hold.
    #[error(
        "format `{format}` must contain `{{secret}}` exactly once and only printable characters, e.g. \"Bearer {{secret}}\""
    )]
    Format {
        /// The format given.
        format: String,
    },
    /// No hosts.
    #[error("a binding needs `hosts`: the exact servers the secret may go to")]
    NoHosts,
    /// A host that is not an exact name or IP.
    #[error(
        "`{host}` is not an exact host name or IP address (wildcards, ports and paths are not allowed here)"
    )]
    Host {
        /// The host given.
        host: String,
    },
    /// An empty scheme list.
    #[error("`schemes` is empty: leave it out for https only")]
    NoSchemes,
    /// An empty port list or port 0.
    #[error("`ports` must list ports from 1 to 65535: leave it out for the scheme's default")]
    Ports,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(url: &str) -> Target {
        crate::url::parse(url).expect("valid URL")
    }

    #[test]
    fn only_credential_headers_can_carry_a_secret() {
        for ok in [
            "Authorization",
            "x-api-key",
            "API-Key",
            "cookie",
            "X-Auth-Token",
            "x-goog-api-key",
        ] {
            assert!(is_credential_header(ok), "{ok}");
        }
        for bad in [
            "user-agent",
            "x-token",
            "x--key",
            "referer",
            "x-forwarded-for",
            "authorization2",
        ] {
            assert!(!is_credential_header(bad), "{bad}");
        }
    }

    #[test]
    fn a_binding_matches_its_exact_origins_only() {
        let binding = CredentialBinding::new(
            "gh",
            "authorization",
            "Bearer {secret}",
            &["API.GitHub.com."],
        )
        .expect("valid");
        assert!(binding.matches(&target("https://api.github.com/user")));
        for other in [
            "http://api.github.com/",
            "https://api.github.com:8443/",
            "https://github.com/",
            "https://evil.api.github.com/",
            "https://api.github.com.evil.example/",
        ] {
            assert!(!binding.matches(&target(other)), "{other}");
        }
        let local = CredentialBinding::new("gh", "x-api-key", "{secret}", &["api.test"])
            .and_then(|b| b.with_schemes(vec![Scheme::Http]))
            .and_then(|b| b.with_ports(vec![8080]))
            .expect("valid");
        assert!(local.matches(&target("http://api.test:8080/")));
        assert!(!local.matches(&target("http://api.test/")));
    }

    #[test]
    fn bad_bindings_say_what_to_write() {
        let cases: [(&str, &str, &[&str], &str); 6] = [
            (
                "user-agent",
                "{secret}",
                &["a.test"],
                "not a credential header",
            ),
            ("authorization", "Bearer", &["a.test"], "exactly once"),
            (
                "authorization",
                "{secret}{secret}",
                &["a.test"],
                "exactly once",
            ),
            (
                "authorization",
                "Bearer\n{secret}",
                &["a.test"],
                "printable",
            ),
            ("authorization", "{secret}", &["*.a.test"], "wildcards"),
            ("authorization", "{secret}", &[], "needs `hosts`"),
        ];
        for (header, format, hosts, hint) in cases {
            let error = CredentialBinding::new("s", header, format, hosts).expect_err(hint);
            assert!(error.to_string().contains(hint), "{error}");
        }
    }

    #[test]
    fn the_value_is_formatted_and_marked_sensitive() {
        let binding = CredentialBinding::new("gh", "authorization", "Bearer {secret}", &["a.test"])
            .expect("valid");
        let value = binding.header_value(b"sk-0123456789").expect("header-safe");
        assert_eq!(value.as_bytes(), b"Bearer sk-0123456789");
        assert!(value.is_sensitive());
    }
}
