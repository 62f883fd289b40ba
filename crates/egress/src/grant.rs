//! A tool's network grant: allow rules and budgets, read from TOML.
//!
//! The grammar is the types: each rule is exactly one of `host`, `suffix` or
//! `cidr`, plus optional `ports`, `schemes` and `private`. Everything is
//! checked when the grant is loaded, and a mistake is reported with the file,
//! line and column and what to write instead. An empty (or missing) grant
//! reaches nothing.

use super::rules::{Matcher, PortSet, Rule, RuleSet, SchemeSet};
use super::url::normalise_name;
use airlock_toml::{ConfigError, RawSize, TomlText, positive_size, size, timeout};
use ipnet::IpNet;
use serde::Deserialize;
use std::net::IpAddr;
use std::num::NonZeroU64;
use std::path::Path;
use std::time::Duration;
use toml::Spanned;

/// Default cap on one response body: 1 MiB.
pub const DEFAULT_MAX_RESPONSE_BYTES: u64 = 1 << 20;
/// Default cap on one request body: 1 MiB.
pub const DEFAULT_MAX_REQUEST_BYTES: u64 = 1 << 20;
/// Default number of requests per invocation.
pub const DEFAULT_MAX_REQUESTS: u32 = 32;
/// Default time to establish a connection (TCP and TLS).
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(10);
/// Default time from sending a request to the response head.
pub const DEFAULT_FIRST_BYTE_TIMEOUT: Duration = Duration::from_secs(30);
/// Default longest pause between two chunks of a response body.
pub const DEFAULT_BETWEEN_BYTES_TIMEOUT: Duration = Duration::from_secs(30);

/// Per-invocation limits on a tool's HTTP traffic.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Budgets {
    /// Largest response body, in bytes (also enforced on `Content-Length`).
    pub max_response_bytes: u64,
    /// Largest request body, in bytes.
    pub max_request_bytes: u64,
    /// Requests per invocation.
    pub max_requests: u32,
    /// Token-bucket rate over request and response bytes together.
    pub bytes_per_second: Option<NonZeroU64>,
    /// Connect (TCP + TLS) timeout; a guest can only shorten it.
    pub connect_timeout: Duration,
    /// Time to the response head; a guest can only shorten it.
    pub first_byte_timeout: Duration,
    /// Longest pause between body chunks; a guest can only shorten it.
    pub between_bytes_timeout: Duration,
}

impl Default for Budgets {
    fn default() -> Self {
        Self {
            max_response_bytes: DEFAULT_MAX_RESPONSE_BYTES,
            max_request_bytes: DEFAULT_MAX_REQUEST_BYTES,
            max_requests: DEFAULT_MAX_REQUESTS,
            bytes_per_second: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
            first_byte_timeout: DEFAULT_FIRST_BYTE_TIMEOUT,
            between_bytes_timeout: DEFAULT_BETWEEN_BYTES_TIMEOUT,
        }
    }
}

/// What a tool may reach over HTTP. [`NetworkGrant::default`] reaches nothing.
///
/// # Examples
///
/// ```
/// let grant = airlock_egress::NetworkGrant::from_toml(
///     r#"
///     max_response_bytes = "256KiB"
///     [[allow]]
///     host = "api.example.com"
///     schemes = ["https"]
///     "#,
///     "example.toml",
/// )?;
/// assert_eq!(grant.rules().rules().len(), 1);
/// assert_eq!(grant.budgets().max_response_bytes, 256 * 1024);
///
/// let err = airlock_egress::NetworkGrant::from_toml("[[allow]]\nhost = \"a.*.example\"\n", "bad.toml")
///     .expect_err("wildcard in the middle");
/// assert!(err.to_string().starts_with("bad.toml:2:8:"));
/// # Ok::<(), airlock_toml::ConfigError>(())
/// ```
#[derive(Clone, Debug, Default)]
pub struct NetworkGrant {
    rules: RuleSet,
    budgets: Budgets,
    intercept: Intercept,
}

/// Which `CONNECT` tunnels the native tools' proxy terminates (a
/// component's TLS is always the host's own).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Intercept {
    /// Only origins a credential binding names, so the secret can be
    /// added (`intercept = "credentials"`, the default).
    #[default]
    Credentials,
    /// Every origin whose rule does not say `intercept = false`: each
    /// request inside TLS is decided, recorded and limited on its own
    /// (`intercept = "all"`).
    All,
}

impl NetworkGrant {
    /// Reads a grant file (the `[tools.network]` table's keys at top level).
    pub fn from_file(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Self::from_toml(&text, &path.display().to_string())
    }

    /// Parses a grant from TOML text; `origin` names it in errors.
    pub fn from_toml(text: &str, origin: &str) -> Result<Self, ConfigError> {
        let raw: RawGrant =
            toml::from_str(text).map_err(|e| ConfigError::from_toml(&e, text, origin))?;
        Self::from_raw(raw, &TomlText { text, origin })
    }

    /// The grant a `[network]` table of a larger file holds (`airlock.toml`'s
    /// tools), checked against `source` for positions.
    pub fn from_raw(raw: RawGrant, source: &TomlText<'_>) -> Result<Self, ConfigError> {
        let mut rules = Vec::with_capacity(raw.allow.len());
        for rule in raw.allow {
            rules.push(compile_rule(rule, source)?);
        }
        let d = Budgets::default();
        let budgets = Budgets {
            max_response_bytes: positive_size(
                raw.max_response_bytes,
                d.max_response_bytes,
                "max_response_bytes",
                source,
            )?,
            max_request_bytes: match raw.max_request_bytes {
                None => d.max_request_bytes,
                Some(v) => size(&v, "max_request_bytes", source)?,
            },
            max_requests: match raw.max_requests {
                None => d.max_requests,
                Some(v) if *v.get_ref() == 0 => {
                    return Err(source.error(
                        v.span(),
                        "max_requests = 0 would refuse every request: remove the network grant instead, or allow at least 1",
                    ));
                }
                Some(v) => v.into_inner(),
            },
            bytes_per_second: match raw.bytes_per_second {
                None => None,
                Some(v) => NonZeroU64::new(positive_size(Some(v), 0, "bytes_per_second", source)?),
            },
            connect_timeout: timeout(
                raw.connect_timeout,
                d.connect_timeout,
                "connect_timeout",
                source,
            )?,
            first_byte_timeout: timeout(
                raw.first_byte_timeout,
                d.first_byte_timeout,
                "first_byte_timeout",
                source,
            )?,
            between_bytes_timeout: timeout(
                raw.between_bytes_timeout,
                d.between_bytes_timeout,
                "between_bytes_timeout",
                source,
            )?,
        };
        let intercept = match raw.intercept {
            None => Intercept::Credentials,
            Some(value) => match value.get_ref().as_str() {
                "credentials" => Intercept::Credentials,
                "all" => Intercept::All,
                other => {
                    return Err(source.error(
                        value.span(),
                        format!(
                            "intercept `{other}` does not exist: write \"credentials\" (the default: terminate TLS only where a secret is injected) or \"all\""
                        ),
                    ));
                }
            },
        };
        Ok(Self {
            rules: RuleSet::new(rules),
            budgets,
            intercept,
        })
    }

    /// The compiled allow rules.
    pub fn rules(&self) -> &RuleSet {
        &self.rules
    }

    /// The traffic budgets.
    pub fn budgets(&self) -> &Budgets {
        &self.budgets
    }

    /// Which tunnels the native tools' proxy terminates.
    pub fn intercept(&self) -> Intercept {
        self.intercept
    }

    /// Whether the grant reaches nothing.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }
}

/// A network grant as written, before its checks ([`NetworkGrant::from_raw`]).
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawGrant {
    #[serde(default)]
    allow: Vec<Spanned<RawRule>>,
    max_response_bytes: Option<Spanned<RawSize>>,
    max_request_bytes: Option<Spanned<RawSize>>,
    max_requests: Option<Spanned<u32>>,
    bytes_per_second: Option<Spanned<RawSize>>,
    connect_timeout: Option<Spanned<String>>,
    first_byte_timeout: Option<Spanned<String>>,
    between_bytes_timeout: Option<Spanned<String>>,
    intercept: Option<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawRule {
    host: Option<Spanned<String>>,
    suffix: Option<Spanned<String>>,
    cidr: Option<Spanned<String>>,
    ports: Option<Spanned<Vec<Spanned<RawPort>>>>,
    schemes: Option<Spanned<Vec<Spanned<String>>>>,
    #[serde(default)]
    private: bool,
    intercept: Option<bool>,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum RawPort {
    Number(i64),
    Range(String),
}

fn compile_rule(raw: Spanned<RawRule>, source: &TomlText<'_>) -> Result<Rule, ConfigError> {
    let span = raw.span();
    let (line, _) = source.line_column(span.start);
    let rule = raw.into_inner();
    let matcher = match (rule.host, rule.suffix, rule.cidr) {
        (Some(host), None, None) => host_matcher(&host, source)?,
        (None, Some(suffix), None) => suffix_matcher(&suffix, source)?,
        (None, None, Some(cidr)) => cidr_matcher(&cidr, source)?,
        _ => {
            return Err(source.error(
                span,
                "a rule needs exactly one of `host`, `suffix` or `cidr`: split it into one rule each",
            ));
        }
    };
    let ports = match rule.ports {
        None => PortSet::SchemeDefault,
        Some(list) if list.get_ref().is_empty() => {
            return Err(source.error(
                list.span(),
                "`ports = []` allows nothing: remove the rule, or leave `ports` out for 80/443",
            ));
        }
        Some(list) => PortSet::Ranges(
            list.into_inner()
                .iter()
                .map(|p| port_range(p, source))
                .collect::<Result<_, _>>()?,
        ),
    };
    let schemes = match rule.schemes {
        None => SchemeSet::BOTH,
        Some(list) => {
            let mut set = SchemeSet {
                http: false,
                https: false,
            };
            if list.get_ref().is_empty() {
                return Err(source.error(
                    list.span(),
                    "`schemes = []` allows nothing: write `[\"https\"]`, or leave it out for both",
                ));
            }
            for scheme in list.get_ref() {
                match scheme.get_ref().as_str() {
                    "http" => set.http = true,
                    "https" => set.https = true,
                    other => {
                        return Err(source.error(
                            scheme.span(),
                            format!("scheme `{other}` does not exist for tools: write \"http\" or \"https\""),
                        ));
                    }
                }
            }
            set
        }
    };
    Ok(Rule {
        matcher,
        ports,
        schemes,
        private: rule.private,
        intercept: rule.intercept.unwrap_or(true),
        origin: format!("{}:{line}", source.origin),
    })
}

fn host_matcher(host: &Spanned<String>, source: &TomlText<'_>) -> Result<Matcher, ConfigError> {
    let text = host.get_ref().trim();
    let error = |message: String| source.error(host.span(), message);
    if let Ok(ip) = text
        .trim_start_matches('[')
        .trim_end_matches(']')
        .parse::<IpAddr>()
    {
        return Ok(Matcher::Ip(ip));
    }
    if text.contains(':') || text.contains('/') {
        return Err(error(format!(
            "`host = \"{text}\"` is not a host name: give the name alone (e.g. `host = \"api.example.com\"`), ports in `ports = [...]`, ranges in `cidr`"
        )));
    }
    if let Some(parent) = text.strip_prefix("*.") {
        if parent.contains('*') {
            return Err(error(wildcard_hint(text)));
        }
        return name(parent, &error).map(Matcher::Wildcard);
    }
    if text.contains('*') {
        return Err(error(wildcard_hint(text)));
    }
    match url::Host::parse(text) {
        Ok(url::Host::Ipv4(v4)) => Ok(Matcher::Ip(IpAddr::V4(v4))),
        Ok(url::Host::Ipv6(v6)) => Ok(Matcher::Ip(IpAddr::V6(v6))),
        _ => name(text, &error).map(Matcher::Exact),
    }
}

fn wildcard_hint(text: &str) -> String {
    format!(
        "`{text}`: a wildcard is only allowed as the whole first label, e.g. `host = \"*.example.org\"` \
         (one label); for a domain and everything below it write `suffix = \"example.org\"`"
    )
}

/// A host name as requests will see it (IDNA, lowercase, no trailing dot).
fn name(text: &str, error: &impl Fn(String) -> ConfigError) -> Result<String, ConfigError> {
    match url::Host::parse(text) {
        Ok(url::Host::Domain(domain)) => normalise_name(&domain).ok_or_else(|| {
            error(format!(
                "`{text}` has an empty label: write e.g. `api.example.com`"
            ))
        }),
        Ok(_) => Err(error(format!(
            "`{text}` is an IP address, not a name: use `host = \"{text}\"` or `cidr`"
        ))),
        Err(e) => Err(error(format!(
            "`{text}` is not a host name ({e}): write e.g. `api.example.com`"
        ))),
    }
}

fn suffix_matcher(suffix: &Spanned<String>, source: &TomlText<'_>) -> Result<Matcher, ConfigError> {
    let text = suffix.get_ref().trim().trim_start_matches('.');
    let error = |message: String| source.error(suffix.span(), message);
    if text.contains('*') {
        return Err(error(format!(
            "`suffix = \"{text}\"` needs no wildcard: a suffix already matches the name and all names below it"
        )));
    }
    name(text, &error).map(Matcher::Suffix)
}

fn cidr_matcher(cidr: &Spanned<String>, source: &TomlText<'_>) -> Result<Matcher, ConfigError> {
    let text = cidr.get_ref().trim();
    let net: IpNet = text.parse().map_err(|_| {
        source.error(
            cidr.span(),
            format!("`cidr = \"{text}\"` is not a CIDR range: write e.g. `cidr = \"198.51.100.0/24\"` or `\"2001:db8::/32\"`"),
        )
    })?;
    if net.trunc() != net {
        return Err(source.error(
            cidr.span(),
            format!(
                "`cidr = \"{text}\"` has host bits set: write the network address, `cidr = \"{}\"`",
                net.trunc()
            ),
        ));
    }
    Ok(Matcher::Cidr(net))
}

fn port_range(
    port: &Spanned<RawPort>,
    source: &TomlText<'_>,
) -> Result<std::ops::RangeInclusive<u16>, ConfigError> {
    let bad = |what: String| {
        source.error(
            port.span(),
            format!("{what}: ports are 1-65535, written `443` or `\"8000-8099\"`"),
        )
    };
    let single = |n: i64| match u16::try_from(n) {
        Ok(0) => Err(bad("port 0 is not a port".into())),
        Ok(p) => Ok(p),
        Err(_) => Err(bad(format!("port {n} is out of range"))),
    };
    match port.get_ref() {
        RawPort::Number(n) => single(*n).map(|p| p..=p),
        RawPort::Range(text) => {
            let parse = |s: &str| {
                s.trim()
                    .parse::<i64>()
                    .map_err(|_| bad(format!("`{text}` is not a port range")))
                    .and_then(single)
            };
            let (low, high) = match text.split_once('-') {
                Some((low, high)) => (parse(low)?, parse(high)?),
                None => {
                    let p = parse(text)?;
                    (p, p)
                }
            };
            if low > high {
                return Err(bad(format!("range `{text}` runs backwards")));
            }
            Ok(low..=high)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn error(text: &str) -> String {
        NetworkGrant::from_toml(text, "grant.toml")
            .expect_err("must be refused")
            .to_string()
    }

    #[test]
    fn a_full_grant_compiles() {
        let grant = NetworkGrant::from_toml(
            r#"
max_response_bytes = "64KiB"
max_request_bytes = 0
max_requests = 5
bytes_per_second = 1000
connect_timeout = "2s"
first_byte_timeout = "3s"
between_bytes_timeout = "500ms"

[[allow]]
host = "API.Example.com."
ports = [443, "8000-8099"]
schemes = ["https"]

[[allow]]
host = "*.example.org"

[[allow]]
suffix = "example.net"

[[allow]]
cidr = "10.0.0.0/8"
private = true

[[allow]]
host = "169.254.169.254"
private = true
"#,
            "grant.toml",
        )
        .expect("valid");
        let rules = grant.rules().rules();
        assert_eq!(rules[0].matcher, Matcher::Exact("api.example.com".into()));
        assert_eq!(
            rules[0].ports,
            PortSet::Ranges(vec![443..=443, 8000..=8099])
        );
        assert_eq!(rules[0].origin, "grant.toml:10");
        assert_eq!(rules[1].matcher, Matcher::Wildcard("example.org".into()));
        assert_eq!(rules[2].matcher, Matcher::Suffix("example.net".into()));
        assert!(rules[3].private);
        assert!(rules[4].names_exactly("169.254.169.254".parse().expect("ip")));
        let b = grant.budgets();
        assert_eq!(
            (b.max_response_bytes, b.max_request_bytes, b.max_requests),
            (65536, 0, 5)
        );
        assert_eq!(b.bytes_per_second.map(NonZeroU64::get), Some(1000));
        assert_eq!(b.between_bytes_timeout, Duration::from_millis(500));
    }

    #[test]
    fn mistakes_name_the_line_and_the_fix() {
        let cases = [
            (
                "intercept = \"some\"\n[[allow]]\nhost = \"a.example\"\n",
                "grant.toml:1:13:",
                "\"credentials\" (the default",
            ),
            (
                "[[allow]]\ncidr = \"10.0.0.0/33\"\n",
                "grant.toml:2:8:",
                "198.51.100.0/24",
            ),
            (
                "[[allow]]\ncidr = \"10.0.0.1/8\"\n",
                "grant.toml:2:8:",
                "10.0.0.0/8",
            ),
            (
                "[[allow]]\nhost = \"a.*.example.org\"\n",
                "grant.toml:2:8:",
                "*.example.org",
            ),
            (
                "[[allow]]\nhost = \"*.*.example.org\"\n",
                "grant.toml:2:8:",
                "suffix",
            ),
            (
                "[[allow]]\nhost = \"ex*ample.org\"\n",
                "grant.toml:2:8:",
                "first label",
            ),
            (
                "[[allow]]\nhost = \"a.test\"\nports = [0]\n",
                "grant.toml:3:10:",
                "port 0",
            ),
            (
                "[[allow]]\nhost = \"a.test\"\nports = [65536]\n",
                "grant.toml:3:10:",
                "out of range",
            ),
            (
                "[[allow]]\nhost = \"a.test\"\nports = [\"90-80\"]\n",
                "grant.toml:3:10:",
                "backwards",
            ),
            (
                "[[allow]]\nhost = \"a.test\"\nports = []\n",
                "grant.toml:3:9:",
                "allows nothing",
            ),
            (
                "[[allow]]\nhost = \"a.test\"\nschemes = [\"ftp\"]\n",
                "grant.toml:3:12:",
                "\"https\"",
            ),
            (
                "[[allow]]\nhosts = \"a.test\"\n",
                "grant.toml:2:1:",
                "unknown field `hosts`",
            ),
            (
                "[[allow]]\nhost = \"a.test\"\nsuffix = \"b.test\"\n",
                "grant.toml:1:1:",
                "exactly one",
            ),
            (
                "[[allow]]\nhost = \"a.test:443\"\n",
                "grant.toml:2:8:",
                "ports = [...]",
            ),
            (
                "max_response_bytes = 0\n",
                "grant.toml:1:22:",
                "would refuse all traffic",
            ),
            ("max_requests = 0\n", "grant.toml:1:16:", "at least 1"),
            (
                "connect_timeout = \"soon\"\n",
                "grant.toml:1:19:",
                "\"10s\"",
            ),
            (
                "max_response_bytes = \"lots\"\n",
                "grant.toml:1:22:",
                "\"1MiB\"",
            ),
            (
                "[[allow]]\nsuffix = \"*.example.org\"\n",
                "grant.toml:2:10:",
                "needs no wildcard",
            ),
            (
                "unknown = 1\n",
                "grant.toml:1:1:",
                "unknown field `unknown`",
            ),
        ];
        for (text, location, hint) in cases {
            let message = error(text);
            assert!(message.starts_with(location), "{text:?}: {message}");
            assert!(message.contains(hint), "{text:?}: {message}");
        }
    }

    #[test]
    fn empty_grant_reaches_nothing() {
        let grant = NetworkGrant::from_toml("", "empty.toml").expect("valid");
        assert!(grant.is_empty());
        assert_eq!(grant.budgets(), &Budgets::default());
    }
}
