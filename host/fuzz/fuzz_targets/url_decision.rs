//! URL → egress decision, with the fuzzer choosing both the URL and the
//! address DNS answers. Invariant: the grant does not say `private`, so an
//! allowed request is only ever pinned to public addresses.
#![no_main]

use airlock_egress::addr::{Class, classify};
use airlock_egress::{Decision, NetworkGrant, StaticResolver, decide};
use libfuzzer_sys::fuzz_target;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::sync::OnceLock;

const GRANT: &str = r#"
[[allow]]
host = "svc.test"
[[allow]]
host = "*.example.test"
schemes = ["http", "https"]
ports = [80, 443, 8080]
[[allow]]
cidr = "0.0.0.0/0"
"#;

fn grant() -> &'static NetworkGrant {
    static GRANT_ONCE: OnceLock<NetworkGrant> = OnceLock::new();
    GRANT_ONCE
        .get_or_init(|| NetworkGrant::from_toml(GRANT, "fuzz").expect("the fuzz grant parses"))
}

fuzz_target!(|data: &[u8]| {
    if data.len() < 17 {
        return;
    }
    let (address, url) = data.split_at(17);
    let ip = if address[0] & 1 == 0 {
        IpAddr::V4(Ipv4Addr::new(
            address[1], address[2], address[3], address[4],
        ))
    } else {
        let octets: [u8; 16] = address[1..17].try_into().unwrap_or_default();
        IpAddr::V6(Ipv6Addr::from(octets))
    };
    let Ok(url) = std::str::from_utf8(url) else {
        return;
    };
    let resolver = StaticResolver::new()
        .with("svc.test", [ip])
        .with("a.example.test", [ip]);
    let runtime = tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime");
    if let Decision::Allow(pinned) = runtime.block_on(decide(grant(), url, &resolver)) {
        for address in pinned.addresses() {
            assert_eq!(
                classify(*address),
                Class::Public,
                "{url:?} was allowed to {address} under a grant without `private`"
            );
        }
    }
});
