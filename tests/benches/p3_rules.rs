//! Benchmark P3-egress: matching one request against a grant of 10,000
//! rules (exact hosts, one-label wildcards, suffixes, CIDR ranges), compiled
//! into airlock's index, against a linear scan over the same rules in the
//! same run. Target: at most 1 µs per match (p50 over batches).
//!
//! `cargo bench -p airlock-tests --bench p3_rules [-- BATCHES]`

use airlock::NetworkGrant;
use airlock::egress::rules::{Matcher, Rule};
use airlock::egress::url::{Target, TargetHost, parse};
use airlock_tests::stats;
use std::hint::black_box;
use std::time::Duration;

const RULES: usize = 10_000;
const CALLS_PER_BATCH: usize = 2_000;

fn grant_text() -> String {
    let mut text = String::new();
    for i in 0..RULES {
        let rule = match i % 4 {
            0 => format!("host = \"api{i}.service{}.example.com\"", i % 97),
            1 => format!("host = \"*.tenant{i}.example.org\""),
            2 => format!("suffix = \"zone{i}.example.net\""),
            _ => format!(
                "cidr = \"10.{}.{}.0/24\"\nprivate = true",
                (i / 256) % 256,
                i % 256
            ),
        };
        text.push_str(&format!("[[allow]]\n{rule}\n\n"));
    }
    text
}

/// The baseline: every rule checked in turn.
fn linear(rules: &[Rule], target: &Target) -> bool {
    rules
        .iter()
        .any(|rule| match (&rule.matcher, &target.host) {
            (Matcher::Exact(name), TargetHost::Name(host)) => name == host,
            (Matcher::Wildcard(parent), TargetHost::Name(host)) => {
                host.split_once('.').is_some_and(|(_, rest)| rest == parent)
            }
            (Matcher::Suffix(suffix), TargetHost::Name(host)) => {
                host == suffix || host.ends_with(&format!(".{suffix}"))
            }
            (Matcher::Ip(ip), TargetHost::Ip(host)) => ip == host,
            (Matcher::Cidr(net), TargetHost::Ip(host)) => net.contains(host),
            _ => false,
        })
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let batches = stats::iterations(200);
    let grant = NetworkGrant::from_toml(&grant_text(), "p3-grant.toml")?;
    let rules = grant.rules();
    assert_eq!(rules.rules().len(), RULES);
    let urls = [
        "https://api4000.service23.example.com/v1",
        "https://x.tenant4001.example.org/",
        "https://deep.a.b.zone4002.example.net/",
        "http://10.15.167.9/",
        "https://not-granted.example.com/",
        "https://a.b.tenant4001.example.org/",
    ];
    let targets: Vec<Target> = urls.iter().map(|u| parse(u)).collect::<Result<_, _>>()?;
    for (url, target) in urls.iter().zip(&targets) {
        assert_eq!(
            rules.find(target).is_ok(),
            linear(rules.rules(), target),
            "{url}"
        );
    }

    let mut indexed = Vec::with_capacity(batches);
    let mut scanned = Vec::with_capacity(batches);
    for i in 0..batches {
        let target = &targets[i % targets.len()];
        indexed.push(stats::per_call(CALLS_PER_BATCH, || {
            black_box(rules.find(black_box(target)).is_ok());
        }));
        scanned.push(stats::per_call(CALLS_PER_BATCH, || {
            black_box(linear(rules.rules(), black_box(target)));
        }));
    }
    let mut parsed = Vec::with_capacity(batches);
    for i in 0..batches {
        let url = urls[i % urls.len()];
        parsed.push(stats::per_call(CALLS_PER_BATCH, || {
            let target = parse(black_box(url)).expect("valid");
            black_box(rules.find(&target).is_ok());
        }));
    }

    stats::report(
        &format!(
            "P3-egress: one match against {RULES} rules, {batches} batches of {CALLS_PER_BATCH}"
        ),
        ("linear scan (baseline)", &mut scanned),
        ("compiled index", &mut indexed),
        1.0,
    );
    let p50 = stats::percentile(&mut indexed, 0.5);
    let with_parse = stats::percentile(&mut parsed, 0.5);
    println!(
        "  compiled index p50 {:.3} µs per match (target <= 1 µs: {}); with URL parsing {:.3} µs",
        stats::micros(p50),
        if p50 <= Duration::from_micros(1) {
            "OK"
        } else {
            "OVER TARGET"
        },
        stats::micros(with_parse)
    );
    Ok(())
}
