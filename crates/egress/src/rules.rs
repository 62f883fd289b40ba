//! Allow rules and the index they are compiled into.
//!
//! A rule matches a host one of four ways (`host = "api.example.com"`,
//! `host = "*.example.org"`, `suffix = "example.net"`, `cidr = "…"`) and then
//! allows some schemes and ports. Rules are compiled once into hash tables so
//! that a match costs a handful of lookups whatever the number of rules:
//! exact names and IP literals in one table each, one-label wildcards keyed by
//! their parent, suffixes looked up once per label boundary of the host, and
//! CIDR ranges in one table per prefix length in use. When several rules
//! match, the first in the file that allows the scheme and port decides.

use super::url::{Scheme, Target, TargetHost};
use ipnet::IpNet;
use std::collections::HashMap;
use std::fmt;
use std::net::IpAddr;
use std::ops::RangeInclusive;

/// How a rule matches hosts.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Matcher {
    /// Exactly this name.
    Exact(String),
    /// Any name with exactly one more label than this parent
    /// (`*.example.org`: `a.example.org`, not `example.org` or `a.b.example.org`).
    Wildcard(String),
    /// This name and every name below it, on a label boundary.
    Suffix(String),
    /// Exactly this IP literal.
    Ip(IpAddr),
    /// IP literals in this range.
    Cidr(IpNet),
}

/// Allowed ports: an explicit list of ranges, or the scheme's default port.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PortSet {
    /// 80 for http, 443 for https.
    SchemeDefault,
    /// Any port in these ranges, for every allowed scheme.
    Ranges(Vec<RangeInclusive<u16>>),
}

impl PortSet {
    fn allows(&self, scheme: Scheme, port: u16) -> bool {
        match self {
            PortSet::SchemeDefault => port == scheme.default_port(),
            PortSet::Ranges(ranges) => ranges.iter().any(|r| r.contains(&port)),
        }
    }
}

/// Allowed schemes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct SchemeSet {
    /// `http` allowed.
    pub http: bool,
    /// `https` allowed.
    pub https: bool,
}

impl SchemeSet {
    /// Both http and https (the default).
    pub const BOTH: SchemeSet = SchemeSet {
        http: true,
        https: true,
    };

    fn allows(self, scheme: Scheme) -> bool {
        match scheme {
            Scheme::Http => self.http,
            Scheme::Https => self.https,
        }
    }
}

/// One compiled allow rule.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Rule {
    /// How it matches hosts.
    pub matcher: Matcher,
    /// Ports it allows.
    pub ports: PortSet,
    /// Schemes it allows.
    pub schemes: SchemeSet,
    /// Whether it may reach special-purpose addresses.
    pub private: bool,
    /// Whether the native tools' proxy may terminate TLS to what it
    /// allows (to inject a credential, or under `intercept = "all"`);
    /// `false` keeps a blind tunnel, for clients that pin certificates.
    pub intercept: bool,
    /// Where it was written (`file:line`), for records and messages.
    pub origin: String,
}

impl Rule {
    /// Whether this rule names `ip` exactly (`host = "<ip>"` or a full-length
    /// CIDR): the only way to reach a cloud metadata address.
    pub fn names_exactly(&self, ip: IpAddr) -> bool {
        match &self.matcher {
            Matcher::Ip(named) => *named == ip,
            Matcher::Cidr(net) => net.prefix_len() == net.max_prefix_len() && net.addr() == ip,
            _ => false,
        }
    }
}

impl fmt::Display for Rule {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.matcher {
            Matcher::Exact(name) => write!(f, "host = \"{name}\""),
            Matcher::Wildcard(parent) => write!(f, "host = \"*.{parent}\""),
            Matcher::Suffix(name) => write!(f, "suffix = \"{name}\""),
            Matcher::Ip(ip) => write!(f, "host = \"{ip}\""),
            Matcher::Cidr(net) => write!(f, "cidr = \"{net}\""),
        }?;
        if self.private {
            f.write_str(", private = true")?;
        }
        if !self.intercept {
            f.write_str(", intercept = false")?;
        }
        write!(f, " ({})", self.origin)
    }
}

/// Why no rule allows a target.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum NoMatch {
    /// No rule matches the host.
    Host,
    /// Rules match the host, none allows the scheme.
    Scheme,
    /// Rules match the host and scheme, none allows the port.
    Port,
}

/// Rules compiled for matching.
#[derive(Clone, Debug, Default)]
pub struct RuleSet {
    rules: Vec<Rule>,
    exact: HashMap<String, Vec<usize>>,
    wildcard: HashMap<String, Vec<usize>>,
    suffix: HashMap<String, Vec<usize>>,
    ips: HashMap<IpAddr, Vec<usize>>,
    /// One table per prefix length in use, keyed by the masked network.
    cidr_v4: Vec<(u8, HashMap<u32, Vec<usize>>)>,
    cidr_v6: Vec<(u8, HashMap<u128, Vec<usize>>)>,
}

fn mask_v4(bits: u32, len: u8) -> u32 {
    if len == 0 {
        0
    } else {
        bits & (u32::MAX << (32 - u32::from(len)))
    }
}

fn mask_v6(bits: u128, len: u8) -> u128 {
    if len == 0 {
        0
    } else {
        bits & (u128::MAX << (128 - u32::from(len)))
    }
}

/// The table for prefix length `len`, created on first use.
fn table_for<K>(
    tables: &mut Vec<(u8, HashMap<K, Vec<usize>>)>,
    len: u8,
) -> &mut HashMap<K, Vec<usize>> {
    let index = match tables.iter().position(|(l, _)| *l == len) {
        Some(index) => index,
        None => {
            tables.push((len, HashMap::new()));
            tables.len() - 1
        }
    };
    &mut tables[index].1
}

impl RuleSet {
    /// Compiles `rules`; their order decides between rules that all match.
    pub fn new(rules: Vec<Rule>) -> Self {
        let mut set = RuleSet::default();
        for (id, rule) in rules.iter().enumerate() {
            match &rule.matcher {
                Matcher::Exact(name) => set.exact.entry(name.clone()).or_default().push(id),
                Matcher::Wildcard(parent) => {
                    set.wildcard.entry(parent.clone()).or_default().push(id)
                }
                Matcher::Suffix(name) => set.suffix.entry(name.clone()).or_default().push(id),
                Matcher::Ip(ip) => set.ips.entry(*ip).or_default().push(id),
                Matcher::Cidr(IpNet::V4(net)) => {
                    let len = net.prefix_len();
                    let key = mask_v4(u32::from(net.addr()), len);
                    table_for(&mut set.cidr_v4, len)
                        .entry(key)
                        .or_default()
                        .push(id);
                }
                Matcher::Cidr(IpNet::V6(net)) => {
                    let len = net.prefix_len();
                    let key = mask_v6(u128::from(net.addr()), len);
                    table_for(&mut set.cidr_v6, len)
                        .entry(key)
                        .or_default()
                        .push(id);
                }
            }
        }
        set.rules = rules;
        set
    }

    /// The rules, in file order.
    pub fn rules(&self) -> &[Rule] {
        &self.rules
    }

    /// Whether there are no rules (nothing is reachable).
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// Ids of every rule whose host part matches `host`.
    fn candidates(&self, host: &TargetHost, out: &mut Vec<usize>) {
        match host {
            TargetHost::Name(name) => {
                out.extend(self.exact.get(name.as_str()).into_iter().flatten());
                if let Some((_, parent)) = name.split_once('.') {
                    out.extend(self.wildcard.get(parent).into_iter().flatten());
                }
                let mut rest = name.as_str();
                loop {
                    out.extend(self.suffix.get(rest).into_iter().flatten());
                    match rest.split_once('.') {
                        Some((_, parent)) => rest = parent,
                        None => break,
                    }
                }
            }
            TargetHost::Ip(ip) => {
                out.extend(self.ips.get(ip).into_iter().flatten());
                match ip {
                    IpAddr::V4(v4) => {
                        let bits = u32::from(*v4);
                        for (len, table) in &self.cidr_v4 {
                            out.extend(table.get(&mask_v4(bits, *len)).into_iter().flatten());
                        }
                    }
                    IpAddr::V6(v6) => {
                        let bits = u128::from(*v6);
                        for (len, table) in &self.cidr_v6 {
                            out.extend(table.get(&mask_v6(bits, *len)).into_iter().flatten());
                        }
                    }
                }
            }
        }
    }

    /// The first rule (in file order) that allows `target`'s host, scheme and
    /// port, or the most specific reason none does.
    pub fn find(&self, target: &Target) -> Result<&Rule, NoMatch> {
        let mut ids = Vec::new();
        self.candidates(&target.host, &mut ids);
        if ids.is_empty() {
            return Err(NoMatch::Host);
        }
        ids.sort_unstable();
        let mut scheme_matched = false;
        for id in ids {
            let rule = &self.rules[id];
            if !rule.schemes.allows(target.scheme) {
                continue;
            }
            scheme_matched = true;
            if rule.ports.allows(target.scheme, target.port) {
                return Ok(rule);
            }
        }
        Err(if scheme_matched {
            NoMatch::Port
        } else {
            NoMatch::Scheme
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::url::parse;

    fn rule(matcher: Matcher) -> Rule {
        Rule {
            matcher,
            ports: PortSet::SchemeDefault,
            schemes: SchemeSet::BOTH,
            private: false,
            intercept: true,
            origin: "test".into(),
        }
    }

    fn verdict(set: &RuleSet, url: &str) -> Result<usize, NoMatch> {
        let target = parse(url).expect("valid url");
        set.find(&target)
            .map(|r| set.rules().iter().position(|x| x == r).expect("own rule"))
    }

    #[test]
    fn host_forms_match_as_documented() {
        let set = RuleSet::new(vec![
            rule(Matcher::Exact("api.example.com".into())),
            rule(Matcher::Wildcard("example.org".into())),
            rule(Matcher::Suffix("example.net".into())),
            rule(Matcher::Ip("198.51.100.7".parse().expect("ip"))),
            rule(Matcher::Cidr("203.0.113.0/24".parse().expect("net"))),
            rule(Matcher::Cidr("2001:db8::/32".parse().expect("net"))),
        ]);
        let cases = [
            ("https://api.example.com/", Ok(0)),
            ("https://example.com/", Err(NoMatch::Host)),
            ("https://x.api.example.com/", Err(NoMatch::Host)),
            ("https://a.example.org/", Ok(1)),
            ("https://example.org/", Err(NoMatch::Host)),
            ("https://a.b.example.org/", Err(NoMatch::Host)),
            ("https://evil-example.org/", Err(NoMatch::Host)),
            ("https://example.org.evil.com/", Err(NoMatch::Host)),
            ("https://example.net/", Ok(2)),
            ("https://deep.sub.example.net/", Ok(2)),
            ("https://notexample.net/", Err(NoMatch::Host)),
            ("https://example.net.evil.com/", Err(NoMatch::Host)),
            ("http://198.51.100.7/", Ok(3)),
            ("http://198.51.100.8/", Err(NoMatch::Host)),
            ("http://203.0.113.0/", Ok(4)),
            ("http://203.0.113.255/", Ok(4)),
            ("http://203.0.114.0/", Err(NoMatch::Host)),
            ("http://[2001:db8:ffff::1]/", Ok(5)),
            ("http://[2001:db9::1]/", Err(NoMatch::Host)),
        ];
        for (url, expected) in cases {
            assert_eq!(verdict(&set, url), expected, "{url}");
        }
    }

    #[test]
    fn schemes_and_ports_decide_between_host_matches() {
        let mut https_only = rule(Matcher::Exact("api.example.com".into()));
        https_only.schemes = SchemeSet {
            http: false,
            https: true,
        };
        let mut ranged = rule(Matcher::Suffix("example.com".into()));
        ranged.ports = PortSet::Ranges(vec![443..=443, 8000..=8099]);
        ranged.schemes = SchemeSet {
            http: false,
            https: true,
        };
        let set = RuleSet::new(vec![https_only, ranged]);
        let cases = [
            ("https://api.example.com/", Ok(0)),
            ("https://api.example.com:443/", Ok(0)),
            ("https://api.example.com:8000/", Ok(1)),
            ("https://api.example.com:8099/", Ok(1)),
            ("https://api.example.com:8100/", Err(NoMatch::Port)),
            ("https://api.example.com:7999/", Err(NoMatch::Port)),
            ("http://api.example.com/", Err(NoMatch::Scheme)),
            ("http://api.example.com:443/", Err(NoMatch::Scheme)),
            ("https://api.example.com:80/", Err(NoMatch::Port)),
        ];
        for (url, expected) in cases {
            assert_eq!(verdict(&set, url), expected, "{url}");
        }
    }

    #[test]
    fn default_ports_follow_the_scheme() {
        let set = RuleSet::new(vec![rule(Matcher::Exact("a.test".into()))]);
        assert_eq!(verdict(&set, "http://a.test/"), Ok(0));
        assert_eq!(verdict(&set, "https://a.test/"), Ok(0));
        assert_eq!(verdict(&set, "http://a.test:443/"), Err(NoMatch::Port));
        assert_eq!(verdict(&set, "https://a.test:80/"), Err(NoMatch::Port));
    }

    #[test]
    fn masks_cover_edges() {
        assert_eq!(mask_v4(0xffff_ffff, 0), 0);
        assert_eq!(mask_v4(0xffff_ffff, 32), 0xffff_ffff);
        assert_eq!(mask_v4(0xc0a8_0101, 16), 0xc0a8_0000);
        assert_eq!(mask_v6(u128::MAX, 0), 0);
        assert_eq!(mask_v6(u128::MAX, 128), u128::MAX);
    }
}
