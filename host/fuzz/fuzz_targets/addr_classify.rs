//! Address classification against the standard library's reading of the
//! IANA special-purpose registries (`is_global`, unstable in std; the
//! `ip_rfc` backport, so the target checks on stable): whatever it says is
//! not globally reachable, airlock must not call public. airlock
//! may be stricter (it refuses documentation, benchmarking, tunnels and
//! NAT64 forms carrying such addresses).
//!
//! The one place the two read the registry differently by design: an
//! IPv4-mapped, SIIT or well-known-prefix NAT64 address is dialled as the
//! IPv4 address it carries, so airlock classifies it as that address while
//! std calls every IPv4-mapped address non-global. For those forms the
//! oracle is the carried address.
//!
//! A local-use NAT64 address (`64:ff9b:1::/48`) is never laxer than any of
//! its RFC 6052 readings: if one of them is a metadata endpoint or may
//! never be dialled, no `private` rule may open the address.
#![no_main]

use airlock_egress::addr::{Block, Class, Reach, classify, embedded_v4};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// The IPv4 address a translated form carries (RFC 4291, 7915, 6052 /96).
fn carried(ip: Ipv6Addr) -> Option<Ipv4Addr> {
    let [a, b, c, d, e, f, ..] = ip.segments();
    let translated = matches!(
        (a, b, c, d, e, f),
        (0, 0, 0, 0, 0, 0xffff) | (0, 0, 0, 0, 0xffff, 0) | (0x64, 0xff9b, 0, 0, 0, 0)
    );
    translated.then(|| Ipv4Addr::from(u128::from(ip) as u32))
}

fuzz_target!(|data: [u8; 16]| {
    let v6 = Ipv6Addr::from(data);
    let v4 = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
    for ip in [IpAddr::V6(v6), IpAddr::V4(v4)] {
        let dialled = match ip {
            IpAddr::V6(v6) => carried(v6).map_or(ip, IpAddr::V4),
            IpAddr::V4(_) => ip,
        };
        if classify(ip) == Class::Public {
            assert!(
                ip_rfc::global(&dialled),
                "{ip} (dialled as {dialled}) is not global, yet classified public"
            );
        }
    }
    // A translated form is exactly as public as what it carries.
    if let Some(inner) = carried(v6) {
        assert_eq!(
            classify(IpAddr::V6(v6)) == Class::Public,
            classify(IpAddr::V4(inner)) == Class::Public,
            "{v6} and the {inner} it carries are classified apart"
        );
    }
    if u128::from(v6) >> 80 == 0x0064_ff9b_0001 {
        let opted_into = matches!(
            classify(IpAddr::V6(v6)),
            Class::Special {
                block: Block {
                    reach: Reach::OptIn,
                    ..
                },
                ..
            }
        );
        for len in [48, 56, 64, 96] {
            let carried = embedded_v4(v6, len);
            let strict = match classify(IpAddr::V4(carried)) {
                Class::CloudMetadata { .. } => true,
                Class::Special { block, .. } => block.reach == Reach::Never,
                Class::Public => false,
            };
            assert!(
                !(strict && opted_into),
                "{v6} reads as {carried} at /{len}, yet a private rule may open it"
            );
        }
    }
    let mapped = IpAddr::V6(v4.to_ipv6_mapped());
    if classify(IpAddr::V4(v4)) != Class::Public {
        assert_ne!(classify(mapped), Class::Public, "{mapped} hides {v4}");
    }
});
