//! The attack corpus in `fixtures/security/egress_attacks.json`, run twice:
//! through `airlock::egress::decide`, and live through the `http-get` guest
//! and the hook, with a connector that records every address it is asked
//! for and never dials outside loopback.

use airlock::NetworkGrant;
use airlock::egress::{Decision, ResolveError, ResolveFuture, Resolver, Verdict, decide};
use airlock_tests::fixtures::fixtures_dir;
use airlock_tests::net::{Behaviour, EgressHarness, TestServer};
use serde::Deserialize;
use std::collections::HashMap;
use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Mutex;

#[derive(Deserialize)]
struct Corpus {
    grants: HashMap<String, String>,
    cases: Vec<Case>,
}

#[derive(Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct Case {
    name: String,
    grant: String,
    url: String,
    expect: String,
    reason: Option<String>,
    resolve: Option<HashMap<String, Vec<IpAddr>>>,
    resolve_rounds: Option<HashMap<String, Vec<Vec<IpAddr>>>>,
    pinned: Option<Vec<IpAddr>>,
    live: Option<bool>,
}

fn corpus() -> Corpus {
    let path = fixtures_dir().join("security/egress_attacks.json");
    let text = std::fs::read_to_string(&path).expect("read the corpus");
    serde_json::from_str(&text).expect("parse the corpus")
}

/// Lookup k of a name gets its k-th answers (the last repeats); counts lookups.
struct RoundResolver {
    rounds: HashMap<String, Vec<Vec<IpAddr>>>,
    lookups: Mutex<HashMap<String, usize>>,
}

impl RoundResolver {
    fn for_case(case: &Case) -> Self {
        let mut rounds = case.resolve_rounds.clone().unwrap_or_default();
        for (name, ips) in case.resolve.clone().unwrap_or_default() {
            rounds.insert(name, vec![ips]);
        }
        Self {
            rounds,
            lookups: Mutex::default(),
        }
    }

    fn most_lookups_of_one_name(&self) -> usize {
        self.lookups
            .lock()
            .expect("lookups")
            .values()
            .copied()
            .max()
            .unwrap_or(0)
    }
}

impl Resolver for RoundResolver {
    fn resolve<'a>(&'a self, name: &'a str) -> ResolveFuture<'a> {
        Box::pin(async move {
            let round = {
                let mut lookups = self.lookups.lock().expect("lookups");
                let count = lookups.entry(name.to_string()).or_default();
                *count += 1;
                *count - 1
            };
            let Some(rounds) = self.rounds.get(name) else {
                return Err(ResolveError::NotGiven {
                    name: name.to_string(),
                });
            };
            match rounds.get(round).or(rounds.last()) {
                Some(ips) if !ips.is_empty() => Ok(ips.clone()),
                _ => Err(ResolveError::NotFound {
                    name: name.to_string(),
                }),
            }
        })
    }
}

fn with_port(text: &str, port: u16) -> String {
    text.replace("{port}", &port.to_string())
}

fn grant_for(corpus: &Corpus, case: &Case, port: u16) -> (String, NetworkGrant) {
    let text = with_port(
        corpus
            .grants
            .get(&case.grant)
            .unwrap_or_else(|| panic!("{}: no grant `{}`", case.name, case.grant)),
        port,
    );
    let grant = NetworkGrant::from_toml(&text, &format!("corpus:{}", case.grant))
        .unwrap_or_else(|e| panic!("{}: grant `{}`: {e}", case.name, case.grant));
    (text, grant)
}

fn sorted(mut ips: Vec<IpAddr>) -> Vec<IpAddr> {
    ips.sort();
    ips
}

#[tokio::test]
async fn every_case_through_the_decision_function() {
    let corpus = corpus();
    assert!(
        corpus.cases.len() >= 200,
        "the corpus has only {} cases",
        corpus.cases.len()
    );
    let mut failures = Vec::new();
    for case in &corpus.cases {
        let (_, grant) = grant_for(&corpus, case, 8080);
        let resolver = RoundResolver::for_case(case);
        let url = with_port(&case.url, 8080);
        let decision = decide(&grant, &url, &resolver).await;
        let problem = match (&decision, case.expect.as_str()) {
            (Decision::Allow(pinned), "allow") => {
                let expected = sorted(case.pinned.clone().unwrap_or_default());
                (sorted(pinned.addresses().to_vec()) != expected)
                    .then(|| format!("pinned {:?}, expected {expected:?}", pinned.addresses()))
            }
            (Decision::Deny(denial), "deny") => {
                (Some(denial.reason.code()) != case.reason.as_deref()).then(|| {
                    format!(
                        "reason {} ({}), expected {:?}",
                        denial.reason, denial.message, case.reason
                    )
                })
            }
            (Decision::Allow(pinned), _) => Some(format!(
                "allowed ({:?}), expected deny {:?}",
                pinned.addresses(),
                case.reason
            )),
            (Decision::Deny(denial), _) => Some(format!(
                "denied {} ({}), expected allow",
                denial.reason, denial.message
            )),
        };
        if let Some(problem) = problem {
            failures.push(format!("{}: {url}: {problem}", case.name));
        }
        if resolver.most_lookups_of_one_name() > 1 {
            failures.push(format!("{}: a name was resolved more than once", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} cases failed:\n{}",
        failures.len(),
        corpus.cases.len(),
        failures.join("\n")
    );
}

/// Echo servers on 127.0.0.2, .3 and .4, all on one port.
async fn loopback_servers() -> (u16, Vec<TestServer>) {
    for _ in 0..20 {
        let first = TestServer::start(Ipv4Addr::new(127, 0, 0, 2), 0, Behaviour::Echo)
            .await
            .expect("server");
        let port = first.addr().port();
        let mut servers = vec![first];
        for last in [3, 4] {
            if let Ok(server) =
                TestServer::start(Ipv4Addr::new(127, 0, 0, last), port, Behaviour::Echo).await
            {
                servers.push(server);
            }
        }
        if servers.len() == 3 {
            return (port, servers);
        }
    }
    panic!("could not bind one port on 127.0.0.2-4");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_case_live_through_the_guest_and_the_hook() {
    let corpus = corpus();
    let (port, _servers) = loopback_servers().await;
    let harness = EgressHarness::new();
    let mut failures = Vec::new();
    let mut live_allowed = 0;
    for case in corpus.cases.iter().filter(|c| c.live != Some(false)) {
        let (grant, _) = grant_for(&corpus, case, port);
        harness.resolver.set(RoundResolver::for_case(case));
        let url = with_port(&case.url, port);
        let outcome = harness
            .fetch(&grant, serde_json::json!({ "url": url }))
            .await;
        let asked = harness.connector.take_asked();
        let records = &outcome.report().egress;
        let problem = if case.expect == "deny" {
            // The guest may be refused by wasi:http itself before the hook
            // (e.g. an authority with a space); either way nothing is dialled.
            if !asked.is_empty() {
                Some(format!("a denied request asked to connect to {asked:?}"))
            } else {
                match records.last() {
                    Some(r)
                        if r.verdict != Verdict::Deny
                            || r.reason.map(|r| r.code()) != case.reason.as_deref() =>
                    {
                        Some(format!(
                            "recorded {:?} {:?}, expected deny {:?}",
                            r.verdict, r.reason, case.reason
                        ))
                    }
                    _ if outcome.code() == "ok" => Some("the guest got a response".into()),
                    _ => None,
                }
            }
        } else {
            let pinned = case.pinned.clone().unwrap_or_default();
            let url_port = airlock::egress::url::parse(&url)
                .map(|t| t.port)
                .unwrap_or_default();
            let loopback = pinned.first().is_some_and(IpAddr::is_loopback);
            let expected_asked: Vec<SocketAddr> = if loopback {
                vec![SocketAddr::new(pinned[0], url_port)]
            } else {
                pinned
                    .iter()
                    .map(|ip| SocketAddr::new(*ip, url_port))
                    .collect()
            };
            let recorded = records.first().map(|r| r.verdict);
            if recorded != Some(Verdict::Allow) {
                Some(format!("recorded {records:?}, expected allow"))
            } else if sorted(asked.iter().map(SocketAddr::ip).collect())
                != sorted(expected_asked.iter().map(SocketAddr::ip).collect())
                || asked.iter().any(|a| a.port() != url_port)
            {
                Some(format!("asked {asked:?}, expected {expected_asked:?}"))
            } else if loopback && outcome.code() != "ok" {
                Some(format!(
                    "the loopback server was not reached: {:?}",
                    outcome.message()
                ))
            } else {
                live_allowed += usize::from(loopback);
                None
            }
        };
        if let Some(problem) = problem {
            failures.push(format!("{}: {url}: {problem}", case.name));
        }
    }
    assert!(
        failures.is_empty(),
        "{} cases failed live:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(
        live_allowed >= 5,
        "only {live_allowed} allowed cases reached a loopback server"
    );
}
