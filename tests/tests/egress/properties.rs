//! Invariants of the decision that must hold for every input, not just the
//! corpus: a special-purpose answer is never dialled unless the rule says
//! `private` (and metadata never without naming it exactly), and the URL
//! normaliser is a fixed point.

use airlock::NetworkGrant;
use airlock::egress::addr::{Class, classify};
use airlock::egress::url::parse;
use airlock::egress::{Decision, Reason, StaticResolver, decide};
use proptest::prelude::*;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Addresses drawn to hit the special-purpose blocks often: anywhere, or
/// inside a known prefix with random host bits, or wrapped in IPv6 forms.
fn address() -> impl Strategy<Value = IpAddr> {
    let v4_prefixes = [
        (0x0000_0000u32, 8),
        (0x0a00_0000, 8),
        (0x6440_0000, 10),
        (0x7f00_0000, 8),
        (0xa9fe_0000, 16),
        (0xac10_0000, 12),
        (0xc000_0000, 24),
        (0xc000_0200, 24),
        (0xc0a8_0000, 16),
        (0xc612_0000, 15),
        (0xe000_0000, 4),
        (0xf000_0000, 4),
    ];
    let v6_prefixes: [(u128, u32); 8] = [
        (0, 128),
        (1, 128),
        (0xfc00 << 112, 7),
        (0xfe80 << 112, 10),
        (0xff00 << 112, 8),
        (0x2001_0db8 << 96, 32),
        (0x0064_ff9b << 96, 96),
        (0x0064_ff9b_0001 << 80, 48),
    ];
    prop_oneof![
        any::<u32>().prop_map(|bits| IpAddr::V4(Ipv4Addr::from(bits))),
        any::<u128>().prop_map(|bits| IpAddr::V6(Ipv6Addr::from(bits))),
        (0..v4_prefixes.len(), any::<u32>()).prop_map(move |(i, host)| {
            let (prefix, len) = v4_prefixes[i];
            let mask = u32::MAX.checked_shr(len).unwrap_or(0);
            IpAddr::V4(Ipv4Addr::from(prefix | (host & mask)))
        }),
        (0..v6_prefixes.len(), any::<u128>()).prop_map(move |(i, host)| {
            let (prefix, len) = v6_prefixes[i];
            let mask = u128::MAX.checked_shr(len).unwrap_or(0);
            IpAddr::V6(Ipv6Addr::from(prefix | (host & mask)))
        }),
        any::<u32>().prop_map(|bits| IpAddr::V6(Ipv4Addr::from(bits).to_ipv6_mapped())),
        Just(IpAddr::V4(Ipv4Addr::new(169, 254, 169, 254))),
    ]
}

fn decide_now(grant: &NetworkGrant, url: &str, answer: IpAddr) -> Decision {
    let resolver = StaticResolver::new().with("svc.test", [answer]);
    tokio::runtime::Builder::new_current_thread()
        .build()
        .expect("runtime")
        .block_on(decide(grant, url, &resolver))
}

fn reason(decision: &Decision) -> Option<Reason> {
    match decision {
        Decision::Allow(_) => None,
        Decision::Deny(denial) => Some(denial.reason),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2000))]

    #[test]
    fn special_purpose_answers_are_denied_unless_the_rule_says_private(ip in address()) {
        let plain = NetworkGrant::from_toml("[[allow]]\nhost = \"svc.test\"\n", "g").expect("grant");
        let private = NetworkGrant::from_toml(
            "[[allow]]\nhost = \"svc.test\"\nprivate = true\n",
            "g",
        )
        .expect("grant");
        let class = classify(ip);
        let by_name = decide_now(&plain, "https://svc.test/", ip);
        let by_private_name = decide_now(&private, "https://svc.test/", ip);
        match class {
            Class::Public => {
                prop_assert_eq!(reason(&by_name), None, "{} is public", ip);
            }
            Class::CloudMetadata { .. } => {
                // Reached only by a private rule naming the address itself.
                prop_assert_eq!(reason(&by_name), Some(Reason::MetadataAddress));
                prop_assert_eq!(reason(&by_private_name), Some(Reason::MetadataAddress));
            }
            Class::Special { .. } => {
                prop_assert_eq!(reason(&by_name), Some(Reason::PrivateAddress), "{}", ip);
                // `private` opens only the blocks that may be opted into.
                prop_assert!(matches!(reason(&by_private_name), None | Some(Reason::PrivateAddress)));
            }
        }
    }

    #[test]
    fn a_normalised_url_normalises_to_itself(
        scheme in prop_oneof![Just("http"), Just("HTTPS"), Just("https"), Just("hTtP")],
        host in prop_oneof![
            "[a-zA-Z][a-zA-Z0-9-]{0,10}(\\.[a-zA-Z][a-zA-Z0-9-]{0,10}){0,3}\\.?",
            any::<u32>().prop_map(|n| n.to_string()),
            any::<u32>().prop_map(|n| Ipv4Addr::from(n).to_string()),
            any::<u128>().prop_map(|n| format!("[{}]", Ipv6Addr::from(n))),
            "0x[0-9a-f]{1,8}",
        ],
        port in prop::option::of(0u32..70_000),
        path in "(/[a-zA-Z0-9._~!$&'()*+,;=:@%-]{0,12}){0,4}(\\?[a-zA-Z0-9=&%/?-]{0,16})?(#[a-z]{0,4})?",
    ) {
        let port = port.map(|p| format!(":{p}")).unwrap_or_default();
        let url = format!("{scheme}://{host}{port}{path}");
        if let Ok(target) = parse(&url) {
            let again = format!(
                "{}://{}{}",
                target.scheme.as_str(),
                target.host_header(),
                target.path_and_query
            );
            prop_assert_eq!(parse(&again), Ok(target.clone()), "{} -> {}", url, again);
            prop_assert!(!target.path_and_query.contains('#'), "fragments never leave");
        }
    }
}
