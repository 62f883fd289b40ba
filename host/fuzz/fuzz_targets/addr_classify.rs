//! Address classification against the standard library's reading of the
//! IANA special-purpose registries (`is_global`, nightly): whatever std
//! says is not globally reachable, airlock must not call public. airlock
//! may be stricter (it also refuses documentation, benchmarking and NAT64
//! forms carrying such addresses).
#![no_main]
#![feature(ip)]

use airlock::egress::addr::{Class, classify};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

fuzz_target!(|data: [u8; 16]| {
    let v6 = Ipv6Addr::from(data);
    let v4 = Ipv4Addr::new(data[0], data[1], data[2], data[3]);
    for ip in [IpAddr::V6(v6), IpAddr::V4(v4)] {
        if classify(ip) == Class::Public {
            assert!(ip.is_global(), "{ip} is not global, yet classified public");
        }
    }
    // An IPv4 address wrapped in IPv6 is what it carries.
    let mapped = IpAddr::V6(v4.to_ipv6_mapped());
    if classify(IpAddr::V4(v4)) != Class::Public {
        assert_ne!(classify(mapped), Class::Public, "{mapped} hides {v4}");
    }
});
