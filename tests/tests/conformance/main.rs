//! The language conformance suite: every case of
//! `fixtures/conformance/cases.toml` runs against every language's build of
//! its tool (Rust from `guests/<tool>`, the others from
//! `guests/<lang>/<tool>`), on one host with the same limits. The report is
//! a language x case matrix; one failing cell fails the suite.

mod cases;
mod matrix;

use airlock::egress::StaticResolver;
use airlock::{Grants, Invocation, NetworkGrant, Outcome, Tool};
use airlock_tests::kits;
use airlock_tests::net::{Behaviour, EgressHarness, TestServer};
use airlock_tests::{LoopbackListener, guest_path};
use cases::{Case, cases};
use matrix::Matrix;
use serde_json::Value;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};
use std::time::Duration;

/// The loopback address svc.test and other.test resolve to.
const SVC: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);
/// A case that hangs is a failure, not a stuck suite.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

/// Rust first: its outputs are the reference for `same_as_rust`.
fn languages() -> Vec<&'static str> {
    let mut languages = vec!["rust"];
    languages.extend(kits::languages());
    languages
}

fn component(lang: &str, tool: &str) -> std::path::PathBuf {
    if lang == "rust" {
        return guest_path(tool).into();
    }
    kits::all()
        .iter()
        .find(|g| g.lang == lang && g.tool == tool)
        .map(|g| g.path.clone())
        .unwrap_or_else(|| panic!("guests/kits.toml has no {lang}/{tool}"))
}

/// The pieces every case may need: a host whose network is a guarded
/// connector and a static resolver, a loopback server, a listener that
/// must stay untouched.
struct Rig {
    harness: EgressHarness,
    server: TestServer,
    listener: LoopbackListener,
    tools: BTreeMap<(String, String), Tool>,
}

impl Rig {
    async fn new() -> Self {
        let harness = EgressHarness::new();
        let server = TestServer::start(SVC, 0, Behaviour::Echo)
            .await
            .expect("loopback server");
        harness.resolver.set(
            StaticResolver::new()
                .with("svc.test", [IpAddr::V4(SVC)])
                .with("other.test", [IpAddr::V4(SVC)]),
        );
        Self {
            harness,
            server,
            listener: LoopbackListener::bind(),
            tools: BTreeMap::new(),
        }
    }

    fn port(&self) -> u16 {
        self.server.addr().port()
    }

    /// The tool, loaded once per language; `http-get` is granted svc.test.
    async fn tool(&mut self, lang: &str, name: &str) -> Result<&Tool, String> {
        let key = (lang.to_string(), name.to_string());
        if !self.tools.contains_key(&key) {
            let grants = if name == "http-get" {
                let grant = format!(
                    "[[allow]]\nhost = \"svc.test\"\nprivate = true\nports = [{}]\n",
                    self.port()
                );
                let grant = NetworkGrant::from_toml(&grant, "conformance-grant.toml")
                    .map_err(|e| e.to_string())?;
                Grants::none().with_network(grant)
            } else {
                Grants::none()
            };
            let tool = self
                .harness
                .host
                .load(component(lang, name).as_path(), grants)
                .await
                .map_err(|e| format!("load: {e}"))?;
            self.tools.insert(key.clone(), tool);
        }
        Ok(&self.tools[&key])
    }

    /// Runs `case` (its `input` filled in) on `lang`'s build of its tool.
    async fn run(&mut self, lang: &str, case: &Case, input: &str) -> Result<Outcome, String> {
        let tool = self.tool(lang, &case.tool).await?.clone();
        let invocation = Invocation::new(input).with_limits(case.limits());
        tokio::time::timeout(CASE_TIMEOUT, self.harness.host.invoke(&tool, invocation))
            .await
            .map_err(|_| "did not end".to_string())?
            .map_err(|e| format!("could not run: {e}"))
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_language_passes_every_case() {
    let languages = languages();
    let cases = cases();
    let mut rig = Rig::new().await;
    let mut matrix = Matrix::new(&languages);

    for lang in &languages {
        let row = describe_shape(&mut rig, lang).await;
        matrix.record("describe()", lang, row);
    }
    for case in &cases {
        // Filled once: `{large}` is 600 KiB.
        let input = rig.input_of(case);
        let mut reference: Option<Value> = None;
        for lang in &languages {
            let verdict = match rig.run(lang, case, &input).await {
                Ok(outcome) => {
                    if *lang == "rust" {
                        reference = outcome.output().and_then(|o| serde_json::from_str(o).ok());
                    }
                    case.check(&outcome, reference.as_ref(), &input)
                        .and_then(|()| rig.network_check(case, &outcome))
                }
                Err(e) => Err(e),
            };
            matrix.record(&case.name, lang, verdict);
        }
    }
    rig.listener.assert_no_connection();

    let report = matrix.render();
    println!("{report}");
    assert!(
        matrix.all_passed(),
        "conformance failures:\n{report}\n{}",
        matrix.failures()
    );
}

impl Rig {
    /// The case's input with this rig's port and listener filled in.
    fn input_of(&self, case: &Case) -> String {
        case.input(self.port(), &self.listener.addr().to_string())
    }

    /// What the network saw: only granted requests were dialled, and
    /// `reached-server` requests arrived with the path asked for.
    fn network_check(&self, case: &Case, outcome: &Outcome) -> Result<(), String> {
        let asked = self.harness.connector.take_asked();
        let allowed = outcome
            .report()
            .egress
            .iter()
            .filter(|r| r.verdict == airlock::egress::Verdict::Allow)
            .count();
        if asked.len() != allowed || asked.iter().any(|a| a.ip() != IpAddr::V4(SVC)) {
            return Err(format!(
                "dialled {asked:?} for {allowed} allowed request(s)"
            ));
        }
        if case.check.as_deref() == Some("reached-server") {
            let output: Value = outcome
                .output()
                .and_then(|o| serde_json::from_str(o).ok())
                .ok_or("no JSON output")?;
            let seen: Value = output["body"]
                .as_str()
                .and_then(|b| serde_json::from_str(b).ok())
                .ok_or_else(|| format!("the body is not the server's echo: {output}"))?;
            if output["status"] != 200
                || seen["target"] != "/conformance?q=1"
                || seen["method"] != "GET"
            {
                return Err(format!(
                    "the server saw {seen}, status {}",
                    output["status"]
                ));
            }
        }
        Ok(())
    }
}

/// Every tool's `describe()`: its own name, a semantic version, a
/// description, and an input schema that is a JSON object.
async fn describe_shape(rig: &mut Rig, lang: &str) -> Result<(), String> {
    for name in kits::tools() {
        let tool = rig.tool(lang, name).await?;
        let d = tool.descriptor();
        let schema: Result<Value, _> = serde_json::from_str(&d.input_schema);
        let problems = [
            (d.name != name).then(|| format!("name `{}`", d.name)),
            (!semver_like(&d.version)).then(|| format!("version `{}`", d.version)),
            d.description
                .trim()
                .is_empty()
                .then(|| "no description".into()),
            (!schema.as_ref().is_ok_and(Value::is_object))
                .then(|| format!("input schema `{}`", d.input_schema)),
        ];
        if let Some(problem) = problems.into_iter().flatten().next() {
            return Err(format!("{name}: {problem}"));
        }
    }
    Ok(())
}

fn semver_like(version: &str) -> bool {
    let parts: Vec<&str> = version.split('.').collect();
    parts.len() == 3
        && parts
            .iter()
            .all(|p| !p.is_empty() && p.chars().all(|c| c.is_ascii_digit()))
}
