//! Turning a URL into the one destination the host will decide on, by the
//! WHATWG URL rules (the `url` crate): scheme, normalised host, port, path.
//!
//! The same text always yields the same [`Target`], so the policy decides on
//! exactly what will be dialled: names are lowercased and IDNA-mapped (so
//! full-width and other look-alike forms collapse), one trailing dot is
//! removed, and IPv4 literals in decimal, octal, hex or short forms become
//! dotted quads before any rule sees them. Some inputs are refused rather
//! than repaired, because a forgiving parser is how URL-confusion attacks
//! work: userinfo (`user@host`), any control character or space (WHATWG
//! would silently drop tabs and newlines), backslashes (WHATWG reads them as
//! `/`, other parsers do not), and schemes other than http(s).

use std::fmt;
use std::net::IpAddr;

/// `http` or `https`: the only schemes that exist for a tool.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain HTTP.
    Http,
    /// HTTP over TLS.
    Https,
}

impl Scheme {
    /// `http` or `https`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }

    /// 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// Parses `http` or `https` (lowercase, as after URL parsing).
    pub fn parse(text: &str) -> Option<Self> {
        match text {
            "http" => Some(Scheme::Http),
            "https" => Some(Scheme::Https),
            _ => None,
        }
    }
}

impl fmt::Display for Scheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A destination host after normalisation.
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
pub enum TargetHost {
    /// A DNS name: lowercase ASCII (punycode), no trailing dot.
    Name(String),
    /// An IP literal, canonical.
    Ip(IpAddr),
}

impl fmt::Display for TargetHost {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            TargetHost::Name(name) => f.write_str(name),
            TargetHost::Ip(ip) => write!(f, "{ip}"),
        }
    }
}

/// A parsed, normalised destination.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Target {
    /// The scheme.
    pub scheme: Scheme,
    /// The host.
    pub host: TargetHost,
    /// The port, explicit or the scheme's default.
    pub port: u16,
    /// Path and query, for the origin-form request line (`/` at least).
    pub path_and_query: String,
}

impl Target {
    /// The `Host` header value: the host, with the port when it is not the
    /// scheme's default, IPv6 in brackets.
    pub fn host_header(&self) -> String {
        let host = match &self.host {
            TargetHost::Ip(IpAddr::V6(v6)) => format!("[{v6}]"),
            other => other.to_string(),
        };
        if self.port == self.scheme.default_port() {
            host
        } else {
            format!("{host}:{}", self.port)
        }
    }
}

/// Why a URL is refused before any rule is consulted.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum UrlError {
    /// The URL does not parse.
    #[error("`{url}` is not a valid URL: {reason}")]
    Invalid {
        /// The URL as given (control characters escaped).
        url: String,
        /// What is wrong.
        reason: String,
    },
    /// A scheme other than http and https.
    #[error("scheme `{scheme}` is not allowed: tools can only use http and https")]
    Scheme {
        /// The scheme as parsed.
        scheme: String,
    },
    /// `user@host` or `user:password@host`.
    #[error(
        "`{url}` carries userinfo (`…@`), which is never allowed: put credentials in the host's vault, not in URLs"
    )]
    Userinfo {
        /// The URL (userinfo elided).
        url: String,
    },
}

impl UrlError {
    /// Stable machine-readable reason code.
    pub fn code(&self) -> &'static str {
        match self {
            UrlError::Invalid { .. } => "invalid_url",
            UrlError::Scheme { .. } => "scheme_not_allowed",
            UrlError::Userinfo { .. } => "userinfo_not_allowed",
        }
    }
}

/// Parses and normalises `url`.
pub fn parse(url: &str) -> Result<Target, UrlError> {
    let shown = || url.escape_debug().to_string();
    let invalid = |reason: &str| UrlError::Invalid {
        url: shown(),
        reason: reason.to_string(),
    };
    if let Some(c) = url.chars().find(|c| c.is_control() || c.is_whitespace()) {
        return Err(invalid(&format!(
            "it contains {:?}; control characters and spaces are refused, not stripped",
            c
        )));
    }
    if url.contains('\\') {
        return Err(invalid(
            "it contains a backslash, which URL parsers disagree about; write `/`",
        ));
    }
    let (raw_scheme, rest) = url
        .split_once(':')
        .ok_or_else(|| invalid("it has no scheme; write e.g. `https://api.example.com/`"))?;
    let raw_authority = rest
        .trim_start_matches('/')
        .split(['/', '?', '#'])
        .next()
        .unwrap_or_default();
    if raw_authority.contains('@') {
        let elided = url.replacen(raw_authority, "…@…", 1);
        return Err(UrlError::Userinfo { url: elided });
    }

    let parsed = url::Url::parse(url).map_err(|e| invalid(&e.to_string()))?;
    let Some(scheme) = Scheme::parse(parsed.scheme()) else {
        return Err(UrlError::Scheme {
            scheme: raw_scheme.to_lowercase(),
        });
    };
    let host = match parsed.host() {
        None => return Err(invalid("it has no host")),
        Some(url::Host::Ipv4(v4)) => TargetHost::Ip(IpAddr::V4(v4)),
        Some(url::Host::Ipv6(v6)) => TargetHost::Ip(IpAddr::V6(v6)),
        Some(url::Host::Domain(domain)) => TargetHost::Name(
            normalise_name(domain).ok_or_else(|| invalid("its host name has an empty label"))?,
        ),
    };
    let port = parsed
        .port_or_known_default()
        .unwrap_or_else(|| scheme.default_port());
    let path_and_query = match parsed.query() {
        Some(query) => format!("{}?{query}", parsed.path()),
        None => parsed.path().to_string(),
    };
    Ok(Target {
        scheme,
        host,
        port,
        path_and_query,
    })
}

/// Lowercase (already so after IDNA), one trailing dot removed, no empty
/// labels left.
pub(crate) fn normalise_name(domain: &str) -> Option<String> {
    let name = domain
        .strip_suffix('.')
        .unwrap_or(domain)
        .to_ascii_lowercase();
    if name.is_empty() || name.split('.').any(str::is_empty) {
        return None;
    }
    Some(name)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::{Ipv4Addr, Ipv6Addr};

    fn host(url: &str) -> TargetHost {
        parse(url).unwrap_or_else(|e| panic!("{url}: {e}")).host
    }

    fn v4(a: u8, b: u8, c: u8, d: u8) -> TargetHost {
        TargetHost::Ip(IpAddr::V4(Ipv4Addr::new(a, b, c, d)))
    }

    #[test]
    fn ipv4_literals_are_canonicalised() {
        for url in [
            "http://127.0.0.1/",
            "http://2130706433/",
            "http://0x7f000001/",
            "http://0177.0.0.1/",
            "http://0x7f.1/",
            "http://127.1/",
            "http://127.0.1/",
            "http://0x7F.0.0.0x1/",
            "http://%31%32%37.0.0.1/",
            "http://１２７.０.０.１/",
        ] {
            assert_eq!(host(url), v4(127, 0, 0, 1), "{url}");
        }
        assert_eq!(host("http://0/"), v4(0, 0, 0, 0));
        assert_eq!(
            host("http://[::ffff:127.0.0.1]/"),
            TargetHost::Ip(IpAddr::V6(Ipv6Addr::new(0, 0, 0, 0, 0, 0xffff, 0x7f00, 1)))
        );
    }

    #[test]
    fn names_are_normalised() {
        assert_eq!(
            host("https://API.Example.COM./x"),
            TargetHost::Name("api.example.com".into())
        );
        assert_eq!(
            host("https://ⓔⓧⓐⓜⓟⓛⓔ.com/"),
            TargetHost::Name("example.com".into())
        );
        assert_eq!(
            host("https://bücher.example/"),
            TargetHost::Name("xn--bcher-kva.example".into())
        );
        let target = parse("https://api.example.com:443/a/b?c=d#frag").expect("parses");
        assert_eq!(
            (target.port, target.path_and_query.as_str()),
            (443, "/a/b?c=d")
        );
        assert_eq!(target.host_header(), "api.example.com");
        let target = parse("http://[::1]:8080").expect("parses");
        assert_eq!((target.port, target.path_and_query.as_str()), (8080, "/"));
        assert_eq!(target.host_header(), "[::1]:8080");
    }

    #[test]
    fn confusing_urls_are_refused_with_their_own_code() {
        let cases = [
            ("http://user@example.com/", "userinfo_not_allowed"),
            ("http://user:pw@example.com/", "userinfo_not_allowed"),
            ("http://@example.com/", "userinfo_not_allowed"),
            ("http://example.com@127.0.0.1/", "userinfo_not_allowed"),
            ("http://127.0.0.1\\@example.com/", "invalid_url"),
            ("http://exa mple.com/", "invalid_url"),
            ("http://example.com\r\nHost: evil/", "invalid_url"),
            ("http://exam\tple.com/", "invalid_url"),
            ("http://example.com\0/", "invalid_url"),
            (" http://example.com/", "invalid_url"),
            // WHATWG skips extra slashes: the host is `path`, as dialled.
            ("http:///path", "ok"),
            ("http://", "invalid_url"),
            ("http://a..b/", "invalid_url"),
            ("example.com/path", "invalid_url"),
            ("file:///etc/passwd", "scheme_not_allowed"),
            ("gopher://example.com/", "scheme_not_allowed"),
            ("ftp://example.com/", "scheme_not_allowed"),
            ("ws://example.com/", "scheme_not_allowed"),
            ("HTTPS://example.com/", "ok"),
            ("http://example.com:99999/", "invalid_url"),
        ];
        for (url, code) in cases {
            let got = parse(url).err().map_or("ok", |e| e.code());
            assert_eq!(got, code, "{url:?}");
        }
    }

    #[test]
    fn backslashes_are_refused_wherever_they_are() {
        for url in ["http://evil.com\\.example.com/", "http://example.com/a\\b"] {
            assert_eq!(
                parse(url).err().map(|e| e.code()),
                Some("invalid_url"),
                "{url}"
            );
        }
    }
}
