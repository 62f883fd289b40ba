//! Which IP addresses a tool may connect to: the one place that says which
//! addresses are special-purpose.
//!
//! [`classify`] runs every address through one ordered chain: cloud metadata
//! endpoints first, then addresses that embed an IPv4 address (IPv4-mapped,
//! SIIT, NAT64, 6to4, Teredo, IPv4-compatible: the embedded address is
//! extracted and classified too), then the IANA IPv4 and IPv6 Special-Purpose
//! Address Registries' blocks that are not globally reachable, plus
//! multicast, broadcast and the deprecated site-local range.
//!
//! Decisions beyond the registries, each fail-closed:
//! - 6to4 (`2002::/16`) and Teredo (`2001::/32`) are denied outright, whatever
//!   they embed: both tunnel through third-party relays to the embedded IPv4
//!   host, which is a way around IPv4 rules, and no service needs them
//!   (6to4 relays are deprecated by RFC 7526). The embedded address still
//!   appears in the reason.
//! - IPv4-compatible addresses (`::a.b.c.d`, deprecated by RFC 4291) are
//!   denied outright.
//! - The whole IETF protocol assignment blocks `192.0.0.0/24` and
//!   `2001::/23` are denied, including the few anycast addresses the registry
//!   marks global (PCP, TURN, AMT, AS112, ORCHID): no tool needs them.
//! - Unspecified, multicast, broadcast and reserved (`240.0.0.0/4`) addresses
//!   can never be dialled, not even by a `private = true` rule.
//! - A local-use NAT64 address (`64:ff9b:1::/48`) is read at every RFC 6052
//!   prefix length that fits in the /48 and is as strict as its strictest
//!   reading: the translator's prefix length is the network's choice, which
//!   airlock cannot see. A /48 or /56 layout's zero suffix reads as
//!   `0.0.0.0/8` at /96, so in practice only /64 and /96 translators with a
//!   non-zero prefix below the /48 can be opted into.

use ipnet::{Ipv4Net, Ipv6Net};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Addresses of cloud instance-metadata services. They are reachable only
/// through a rule that names that exact address, never through a wider range
/// or a hostname.
pub const CLOUD_METADATA: [IpAddr; 8] = [
    IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)), // AWS, GCP, Azure IMDS, OpenStack
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 2)),   // AWS ECS task metadata
    IpAddr::V4(Ipv4Addr::new(169, 254, 170, 23)),  // AWS EKS pod identity
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x254)), // AWS IMDS over IPv6
    IpAddr::V6(Ipv6Addr::new(0xfd00, 0xec2, 0, 0, 0, 0, 0, 0x23)), // AWS EKS pod identity, IPv6
    IpAddr::V4(Ipv4Addr::new(100, 100, 100, 200)), // Alibaba Cloud
    IpAddr::V4(Ipv4Addr::new(192, 0, 0, 192)),     // Oracle Cloud
    IpAddr::V4(Ipv4Addr::new(168, 63, 129, 16)),   // Azure WireServer
];

/// How far a `private = true` rule can open a special block.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Reach {
    /// Not globally reachable, but a rule may opt in (`private = true`).
    OptIn,
    /// Never dialled: unspecified, multicast, broadcast, reserved, tunnels.
    Never,
}

/// One special-purpose block.
#[derive(Debug, PartialEq, Eq)]
pub struct Block {
    /// Short stable name, e.g. `loopback`.
    pub name: &'static str,
    /// Where it is defined.
    pub rfc: &'static str,
    /// Whether a rule can opt in.
    pub reach: Reach,
}

const fn block(name: &'static str, rfc: &'static str, reach: Reach) -> Block {
    Block { name, rfc, reach }
}

const fn v4(a: u8, b: u8, c: u8, d: u8, len: u8) -> Ipv4Net {
    Ipv4Net::new_assert(Ipv4Addr::new(a, b, c, d), len)
}

const fn v6(s: [u16; 8], len: u8) -> Ipv6Net {
    Ipv6Net::new_assert(
        Ipv6Addr::new(s[0], s[1], s[2], s[3], s[4], s[5], s[6], s[7]),
        len,
    )
}

use Reach::{Never, OptIn};

/// The IPv4 blocks, most specific first where they overlap.
static IPV4_BLOCKS: [(Ipv4Net, Block); 16] = [
    (
        v4(255, 255, 255, 255, 32),
        block("broadcast", "RFC 919", Never),
    ),
    (v4(0, 0, 0, 0, 8), block("this_network", "RFC 791", Never)),
    (v4(10, 0, 0, 0, 8), block("private", "RFC 1918", OptIn)),
    (
        v4(100, 64, 0, 0, 10),
        block("shared_cgnat", "RFC 6598", OptIn),
    ),
    (v4(127, 0, 0, 0, 8), block("loopback", "RFC 1122", OptIn)),
    (
        v4(169, 254, 0, 0, 16),
        block("link_local", "RFC 3927", OptIn),
    ),
    (v4(172, 16, 0, 0, 12), block("private", "RFC 1918", OptIn)),
    (
        v4(192, 0, 0, 0, 24),
        block("ietf_protocol", "RFC 6890", OptIn),
    ),
    (
        v4(192, 0, 2, 0, 24),
        block("documentation", "RFC 5737", OptIn),
    ),
    (
        v4(192, 88, 99, 0, 24),
        block("6to4_relay_anycast", "RFC 7526", Never),
    ),
    (v4(192, 168, 0, 0, 16), block("private", "RFC 1918", OptIn)),
    (
        v4(198, 18, 0, 0, 15),
        block("benchmarking", "RFC 2544", OptIn),
    ),
    (
        v4(198, 51, 100, 0, 24),
        block("documentation", "RFC 5737", OptIn),
    ),
    (
        v4(203, 0, 113, 0, 24),
        block("documentation", "RFC 5737", OptIn),
    ),
    (v4(224, 0, 0, 0, 4), block("multicast", "RFC 5771", Never)),
    (v4(240, 0, 0, 0, 4), block("reserved", "RFC 1112", Never)),
];

/// The IPv6 blocks that embed nothing; the embedding prefixes are handled in
/// [`classify_v6`] before these.
static IPV6_BLOCKS: [(Ipv6Net, Block); 13] = [
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 128),
        block("unspecified", "RFC 4291", Never),
    ),
    (
        v6([0, 0, 0, 0, 0, 0, 0, 1], 128),
        block("loopback", "RFC 4291", OptIn),
    ),
    (
        v6([0x100, 0, 0, 0, 0, 0, 0, 0], 64),
        block("discard_only", "RFC 6666", OptIn),
    ),
    (
        v6([0x100, 0, 0, 1, 0, 0, 0, 0], 64),
        block("dummy_prefix", "RFC 9780", OptIn),
    ),
    (
        v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 23),
        block("ietf_protocol", "RFC 2928", OptIn),
    ),
    (
        v6([0x2001, 0xdb8, 0, 0, 0, 0, 0, 0], 32),
        block("documentation", "RFC 3849", OptIn),
    ),
    (
        v6([0x3fff, 0, 0, 0, 0, 0, 0, 0], 20),
        block("documentation", "RFC 9637", OptIn),
    ),
    (
        v6([0x5f00, 0, 0, 0, 0, 0, 0, 0], 16),
        block("srv6_sid", "RFC 9602", OptIn),
    ),
    (
        v6([0xfc00, 0, 0, 0, 0, 0, 0, 0], 7),
        block("unique_local", "RFC 4193", OptIn),
    ),
    (
        v6([0xfe80, 0, 0, 0, 0, 0, 0, 0], 10),
        block("link_local", "RFC 4291", OptIn),
    ),
    (
        v6([0xfec0, 0, 0, 0, 0, 0, 0, 0], 10),
        block("site_local", "RFC 3879", OptIn),
    ),
    (
        v6([0xff00, 0, 0, 0, 0, 0, 0, 0], 8),
        block("multicast", "RFC 4291", Never),
    ),
    (
        v6([0, 0, 0, 0, 0, 0, 0, 0], 96),
        block("ipv4_compatible", "RFC 4291", Never),
    ),
];

/// Prefixes that carry an IPv4 address inside an IPv6 one.
static IPV4_MAPPED: Ipv6Net = v6([0, 0, 0, 0, 0, 0xffff, 0, 0], 96);
static SIIT: Ipv6Net = v6([0, 0, 0, 0, 0xffff, 0, 0, 0], 96);
static NAT64_WELL_KNOWN: Ipv6Net = v6([0x64, 0xff9b, 0, 0, 0, 0, 0, 0], 96);
static NAT64_LOCAL_USE: Ipv6Net = v6([0x64, 0xff9b, 1, 0, 0, 0, 0, 0], 48);
static SIX_TO_FOUR: Ipv6Net = v6([0x2002, 0, 0, 0, 0, 0, 0, 0], 16);
static TEREDO: Ipv6Net = v6([0x2001, 0, 0, 0, 0, 0, 0, 0], 32);

const SIX_TO_FOUR_BLOCK: Block = block("6to4", "RFC 3056", Never);
const TEREDO_BLOCK: Block = block("teredo", "RFC 4380", Never);
const NAT64_LOCAL_USE_BLOCK: Block = block("nat64_local_use", "RFC 8215", OptIn);

/// The RFC 6052 prefix lengths that fit inside `64:ff9b:1::/48` (section
/// 2.2 allows 32, 40, 48, 56, 64 and 96; a /32 or /40 would reach outside
/// the /48), each with the block an address gets when what that length
/// reads may never be dialled.
static NAT64_LOCAL_USE_NEVER: [(u8, Block); 4] = [
    (
        48,
        block("nat64_local_use", "RFC 8215, read as RFC 6052 /48", Never),
    ),
    (
        56,
        block("nat64_local_use", "RFC 8215, read as RFC 6052 /56", Never),
    ),
    (
        64,
        block("nat64_local_use", "RFC 8215, read as RFC 6052 /64", Never),
    ),
    (
        96,
        block("nat64_local_use", "RFC 8215, read as RFC 6052 /96", Never),
    ),
];

/// What an address is, as far as dialling it goes.
#[derive(Debug, PartialEq, Eq)]
pub enum Class {
    /// Globally reachable: any rule that matched may dial it.
    Public,
    /// A cloud metadata endpoint (possibly wrapped in an IPv6 form).
    CloudMetadata {
        /// The metadata address itself.
        address: IpAddr,
    },
    /// In a special-purpose block.
    Special {
        /// The block.
        block: &'static Block,
        /// The IPv4 address an IPv6 form carried, if any.
        embedded: Option<Ipv4Addr>,
    },
}

impl Class {
    /// `public`, `cloud_metadata`, or the block's name.
    pub fn name(&self) -> &'static str {
        match self {
            Class::Public => "public",
            Class::CloudMetadata { .. } => "cloud_metadata",
            Class::Special { block, .. } => block.name,
        }
    }
}

impl fmt::Display for Class {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Class::Public => f.write_str("a public address"),
            Class::CloudMetadata { address } => write!(f, "the cloud metadata endpoint {address}"),
            Class::Special {
                block,
                embedded: None,
            } => write!(f, "{} ({})", block.name, block.rfc),
            Class::Special {
                block,
                embedded: Some(v4),
            } => write!(
                f,
                "{} ({}) carrying {v4}, which is {}",
                block.name,
                block.rfc,
                classify(IpAddr::V4(*v4))
            ),
        }
    }
}

/// Classifies one address.
pub fn classify(ip: IpAddr) -> Class {
    if CLOUD_METADATA.contains(&ip) {
        return Class::CloudMetadata { address: ip };
    }
    match ip {
        IpAddr::V4(v4) => classify_v4(v4),
        IpAddr::V6(v6) => classify_v6(v6),
    }
}

fn classify_v4(ip: Ipv4Addr) -> Class {
    IPV4_BLOCKS
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map_or(Class::Public, |(_, block)| Class::Special {
            block,
            embedded: None,
        })
}

fn classify_v6(ip: Ipv6Addr) -> Class {
    // Forms that the stack or a translator turns into the embedded IPv4
    // address: exactly as special (or public) as that address.
    for prefix in [&IPV4_MAPPED, &SIIT, &NAT64_WELL_KNOWN] {
        if prefix.contains(&ip) {
            return classify(IpAddr::V4(embedded_v4(ip, 96)));
        }
    }
    // Tunnels: denied outright, naming what they carry.
    if SIX_TO_FOUR.contains(&ip) {
        let [_, a, b, ..] = ip.segments();
        return Class::Special {
            block: &SIX_TO_FOUR_BLOCK,
            embedded: Some(Ipv4Addr::from((u32::from(a) << 16) | u32::from(b))),
        };
    }
    if TEREDO.contains(&ip) {
        // RFC 4380 section 4: the client's address is the last 32 bits, inverted.
        let client = !(u128::from(ip) as u32);
        return Class::Special {
            block: &TEREDO_BLOCK,
            embedded: Some(Ipv4Addr::from(client)),
        };
    }
    if NAT64_LOCAL_USE.contains(&ip) {
        return classify_nat64_local_use(ip);
    }
    IPV6_BLOCKS
        .iter()
        .find(|(net, _)| net.contains(&ip))
        .map_or(Class::Public, |(_, block)| Class::Special {
            block,
            embedded: None,
        })
}

/// An address in the local-use NAT64 prefix `64:ff9b:1::/48` (RFC 8215).
///
/// Not globally reachable whatever it carries, so opt-in at most. But the
/// network carves its translator's prefix out of the /48 at any RFC 6052
/// length that fits (/48, /56, /64 or /96), airlock cannot know which, and
/// a translator delivers to what its own length reads. So every reading
/// is checked and the strictest wins: one that may never be dialled
/// (multicast, `0.0.0.0/8`, ...) makes the address never dialled; else one
/// that is a metadata endpoint makes it that endpoint. Only when no reading
/// is either may a `private = true` rule open it. The u-octet (bits 64-71)
/// is never read as address bits; RFC 6052 section 2.2 requires it to be
/// zero at every length, /96 included, but a translator need not check, so
/// a non-zero u-octet rules no reading out.
fn classify_nat64_local_use(ip: Ipv6Addr) -> Class {
    let mut strictest = Class::Special {
        block: &NAT64_LOCAL_USE_BLOCK,
        embedded: None,
    };
    for (len, never) in &NAT64_LOCAL_USE_NEVER {
        let carried = embedded_v4(ip, *len);
        match classify(IpAddr::V4(carried)) {
            Class::Special {
                block: Block { reach: Never, .. },
                ..
            } => {
                return Class::Special {
                    block: never,
                    embedded: Some(carried),
                };
            }
            metadata @ Class::CloudMetadata { .. }
                if !matches!(strictest, Class::CloudMetadata { .. }) =>
            {
                strictest = metadata;
            }
            _ => {}
        }
    }
    strictest
}

/// Extracts the IPv4 address an RFC 6052 IPv4-embedded IPv6 address carries
/// under a prefix of `prefix_len` bits (32, 40, 48, 56, 64 or 96). Bits 64–71
/// (the "u" octet) never carry address bits.
pub fn embedded_v4(ip: Ipv6Addr, prefix_len: u8) -> Ipv4Addr {
    let o = ip.octets();
    let bytes = match prefix_len {
        32 => [o[4], o[5], o[6], o[7]],
        40 => [o[5], o[6], o[7], o[9]],
        48 => [o[6], o[7], o[9], o[10]],
        56 => [o[7], o[9], o[10], o[11]],
        64 => [o[9], o[10], o[11], o[12]],
        _ => [o[12], o[13], o[14], o[15]],
    };
    Ipv4Addr::from(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(ip: &str) -> &'static str {
        classify(ip.parse().expect("address")).name()
    }

    #[test]
    fn ipv4_block_boundaries() {
        let cases = [
            ("0.0.0.0", "this_network"),
            ("0.255.255.255", "this_network"),
            ("1.0.0.0", "public"),
            ("9.255.255.255", "public"),
            ("10.0.0.0", "private"),
            ("10.255.255.255", "private"),
            ("11.0.0.0", "public"),
            ("100.63.255.255", "public"),
            ("100.64.0.0", "shared_cgnat"),
            ("100.127.255.255", "shared_cgnat"),
            ("100.128.0.0", "public"),
            ("126.255.255.255", "public"),
            ("127.0.0.0", "loopback"),
            ("127.255.255.255", "loopback"),
            ("128.0.0.0", "public"),
            ("169.253.255.255", "public"),
            ("169.254.0.0", "link_local"),
            ("169.254.255.255", "link_local"),
            ("169.255.0.0", "public"),
            ("172.15.255.255", "public"),
            ("172.16.0.0", "private"),
            ("172.31.255.255", "private"),
            ("172.32.0.0", "public"),
            ("192.0.0.0", "ietf_protocol"),
            ("192.0.0.255", "ietf_protocol"),
            ("192.0.1.0", "public"),
            ("192.0.2.0", "documentation"),
            ("192.0.2.255", "documentation"),
            ("192.88.99.0", "6to4_relay_anycast"),
            ("192.88.99.255", "6to4_relay_anycast"),
            ("192.167.255.255", "public"),
            ("192.168.0.0", "private"),
            ("192.168.255.255", "private"),
            ("192.169.0.0", "public"),
            ("198.17.255.255", "public"),
            ("198.18.0.0", "benchmarking"),
            ("198.19.255.255", "benchmarking"),
            ("198.20.0.0", "public"),
            ("198.51.100.0", "documentation"),
            ("198.51.100.255", "documentation"),
            ("203.0.113.0", "documentation"),
            ("203.0.113.255", "documentation"),
            ("223.255.255.255", "public"),
            ("224.0.0.0", "multicast"),
            ("239.255.255.255", "multicast"),
            ("240.0.0.0", "reserved"),
            ("255.255.255.254", "reserved"),
            ("255.255.255.255", "broadcast"),
            ("8.8.8.8", "public"),
        ];
        for (ip, expected) in cases {
            assert_eq!(name(ip), expected, "{ip}");
        }
    }

    #[test]
    fn ipv6_blocks_and_embeddings() {
        let cases = [
            ("::", "unspecified"),
            ("::1", "loopback"),
            ("::2", "ipv4_compatible"),
            ("::7f00:1", "ipv4_compatible"),
            ("::ffff:127.0.0.1", "loopback"),
            ("::ffff:8.8.8.8", "public"),
            ("::ffff:169.254.169.254", "cloud_metadata"),
            ("::ffff:0:10.0.0.1", "private"),
            ("::ffff:0:1.1.1.1", "public"),
            ("64:ff9b::127.0.0.1", "loopback"),
            ("64:ff9b::8.8.8.8", "public"),
            ("64:ff9b::a9fe:a9fe", "cloud_metadata"),
            ("64:ff9b:0:ffff:ffff:ffff:ffff:ffff", "public"),
            ("64:ff9b:1::", "nat64_local_use"),
            ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", "nat64_local_use"),
            ("64:ff9b:2::", "public"),
            ("100::", "discard_only"),
            ("100::ffff:ffff:ffff:ffff", "discard_only"),
            ("100:0:0:1::", "dummy_prefix"),
            ("2001::1", "teredo"),
            ("2001:0:ffff:ffff:ffff:ffff:ffff:ffff", "teredo"),
            ("2001:1::1", "ietf_protocol"),
            ("2001:1ff:ffff:ffff:ffff:ffff:ffff:ffff", "ietf_protocol"),
            ("2001:200::", "public"),
            ("2001:db8::", "documentation"),
            ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"),
            ("2002::", "6to4"),
            ("2002:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "6to4"),
            ("2003::", "public"),
            ("2606:4700:4700::1111", "public"),
            ("3fff::", "documentation"),
            ("3fff:fff:ffff:ffff:ffff:ffff:ffff:ffff", "documentation"),
            ("4000::", "public"),
            ("5f00::", "srv6_sid"),
            ("fbff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "public"),
            ("fc00::", "unique_local"),
            ("fdff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "unique_local"),
            ("fd00:ec2::254", "cloud_metadata"),
            ("fd00:ec2::23", "cloud_metadata"),
            ("fe80::", "link_local"),
            ("febf:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "link_local"),
            ("fec0::", "site_local"),
            ("feff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "site_local"),
            ("ff00::", "multicast"),
            ("ff02::1", "multicast"),
        ];
        for (ip, expected) in cases {
            assert_eq!(name(ip), expected, "{ip}");
        }
    }

    #[test]
    fn tunnels_name_what_they_carry() {
        let six_to_four = classify("2002:7f00:1::".parse().expect("address"));
        assert_eq!(
            six_to_four,
            Class::Special {
                block: &SIX_TO_FOUR_BLOCK,
                embedded: Some(Ipv4Addr::new(127, 0, 0, 1))
            }
        );
        assert!(
            six_to_four
                .to_string()
                .contains("carrying 127.0.0.1, which is loopback")
        );
        // Teredo client 192.0.2.45 is stored inverted: 3fff:fdd2.
        let teredo = classify(
            "2001:0:4136:e378:8000:63bf:3fff:fdd2"
                .parse()
                .expect("address"),
        );
        assert_eq!(
            teredo,
            Class::Special {
                block: &TEREDO_BLOCK,
                embedded: Some(Ipv4Addr::new(192, 0, 2, 45))
            }
        );
    }

    #[test]
    fn rfc6052_extraction_at_every_prefix_length() {
        // RFC 6052 section 2.4: 192.0.2.33 under 2001:db8::/N.
        let cases = [
            ("2001:db8:c000:221::", 32),
            ("2001:db8:1c0:2:21::", 40),
            ("2001:db8:122:c000:2:2100::", 48),
            ("2001:db8:122:3c0:0:221::", 56),
            ("2001:db8:122:344:c0:2:2100:0", 64),
            ("2001:db8:122:344::192.0.2.33", 96),
        ];
        for (ip, len) in cases {
            let ip: Ipv6Addr = ip.parse().expect("address");
            assert_eq!(embedded_v4(ip, len), Ipv4Addr::new(192, 0, 2, 33), "/{len}");
        }
    }

    #[test]
    fn nat64_local_use_is_as_strict_as_its_strictest_reading() {
        let opt_in = || Class::Special {
            block: &NAT64_LOCAL_USE_BLOCK,
            embedded: None,
        };
        let never = |len: u8, carried: [u8; 4]| Class::Special {
            block: NAT64_LOCAL_USE_NEVER
                .iter()
                .find(|(l, _)| *l == len)
                .map(|(_, block)| block)
                .expect("a length"),
            embedded: Some(Ipv4Addr::from(carried)),
        };
        let metadata = || Class::CloudMetadata {
            address: IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254)),
        };
        // Readings at /48, /56, /64 and /96 in each comment.
        let cases = [
            // 10.10.10.10, 10.10.10.10, 10.10.10.8, 8.8.8.8
            ("64:ff9b:1:a0a:a:a0a:808:808", opt_in()),
            // The same with a non-zero u-octet, which no reading includes.
            ("64:ff9b:1:a0a:ff0a:a0a:808:808", opt_in()),
            // ..., 127.0.0.1: loopback may be opted into.
            ("64:ff9b:1:a0a:a:a0a:7f00:1", opt_in()),
            // ..., 10.10.10.169, 169.254.169.254: metadata under a /96.
            ("64:ff9b:1:a0a:a:a0a:a9fe:a9fe", metadata()),
            // 10.10.169.254, 10.169.254.169, 169.254.169.254, 254.0.0.0:
            // metadata under a /64, and a /96 reading never dialled wins.
            ("64:ff9b:1:a0a:a9:fea9:fe00:0", never(96, [254, 0, 0, 0])),
            // 10.169.254.169, 169.254.169.254, 254.169.254.0, 0.0.0.0
            ("64:ff9b:1:aa9:fe:a9fe::", never(64, [254, 169, 254, 0])),
            // ..., 224.0.0.1: multicast under a /96.
            ("64:ff9b:1:a0a:a:a0a:e000:1", never(96, [224, 0, 0, 1])),
            // 10.0.0.1 in the /48 layout reads 0.0.1.0 at /56: a network
            // with a /56 translator would send it to "this network".
            ("64:ff9b:1:a00:0:100::", never(56, [0, 0, 1, 0])),
            // 8.8.8.8 under 64:ff9b:1::/96 reads 0.0.0.0 at /48.
            ("64:ff9b:1::808:808", never(48, [0, 0, 0, 0])),
            ("64:ff9b:1:ffff:ffff:ffff:ffff:ffff", never(48, [255; 4])),
        ];
        for (ip, expected) in cases {
            assert_eq!(classify(ip.parse().expect("address")), expected, "{ip}");
        }
        assert_eq!(
            classify("64:ff9b:1:a00:0:100::".parse().expect("address")).to_string(),
            "nat64_local_use (RFC 8215, read as RFC 6052 /56) carrying 0.0.1.0, \
             which is this_network (RFC 791)"
        );
    }

    #[test]
    fn every_metadata_address_is_metadata() {
        for ip in CLOUD_METADATA {
            assert_eq!(classify(ip), Class::CloudMetadata { address: ip });
        }
    }
}
