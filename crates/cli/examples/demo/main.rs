//! The airlock demo: builds the guest tools, then runs a useful tool, a
//! transforming tool and hostile ones on one host with its built-in
//! defaults; then a network tool that waits for an operator's approval,
//! reaches only what its grant allows, calls an authenticated API with a
//! key the host injects from the vault (the tool never sees it), and leaves
//! a verifiable journal; finally `airlock serve` answers an MCP client whose
//! network call waits until the operator approves it over the socket.
//!
//! ```sh
//! cargo run --example demo
//! ```
//!
//! Each step prints the `airlock` CLI command that does the same thing. The
//! demo keeps its state in `.airlock/demo` (emptied at start) and exits
//! non-zero if any step does not end the way it should. Its only network
//! traffic goes to a server it starts on 127.0.0.1.

mod mcp;

use airlock::approvals::OperatorDecision;
use airlock::attest::{Proof, attestation_in};
use airlock::egress::StaticResolver;
use airlock::policy::{Principal, RequestContext};
use airlock::vault::{CredentialBinding, NewVault, Passphrase, SecretScope, SecretValue, Vault};
use airlock::{Grants, Host, Invocation, Limits, NetworkGrant, Outcome, Tool};
use airlock_tests::net::{Behaviour, TestServer};
use std::net::{IpAddr, Ipv4Addr};
use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

const STATE_DIR: &str = ".airlock/demo";
/// The demo's API key: stored in the vault, injected by the host, and
/// looked for (in vain) in everything the tool gets back.
const DEMO_KEY: &str = "sk-demo-4f1c9a7e2b6d8053";
/// The demo vault's passphrase (a real one comes from
/// AIRLOCK_VAULT_PASSPHRASE or a prompt).
const DEMO_PASSPHRASE: &str = "airlock demo passphrase";

struct Step {
    guest: &'static str,
    what: &'static str,
    input: &'static str,
    flags: &'static str,
    limits: Limits,
    expect: &'static str,
}

fn steps() -> Vec<Step> {
    let defaults = Limits::default;
    vec![
        Step {
            guest: "echo",
            what: "a pure tool returns its input",
            input: r#"{"hello":"airlock"}"#,
            flags: "",
            limits: defaults(),
            expect: "ok",
        },
        Step {
            guest: "json-transform",
            what: "a pure tool does real work on JSON",
            input: r#"{"records":[{"name":"ada","age":36},{"name":"bob","age":17},{"name":"cy","age":52}],"where":{"field":"age","op":"ge","value":18},"select":["name"],"sort_by":"age","descending":true}"#,
            flags: "",
            limits: defaults(),
            expect: "ok",
        },
        Step {
            guest: "spin-forever",
            what: "an infinite loop is stopped at its deadline",
            input: "{}",
            flags: " --timeout 500ms",
            limits: Limits {
                timeout: Duration::from_millis(500),
                ..defaults()
            },
            expect: "deadline_exceeded",
        },
        Step {
            guest: "memory-bomb",
            what: "a memory bomb hits its memory limit",
            input: "{}",
            flags: " --memory 32MiB",
            limits: Limits {
                max_memory_bytes: 32 << 20,
                ..defaults()
            },
            expect: "memory_limit",
        },
    ]
}

fn guest(name: &str) -> &'static str {
    airlock_test_artifacts::GUESTS
        .iter()
        .find(|(guest, _)| *guest == name)
        .map(|(_, path)| *path)
        .unwrap_or_default()
}

fn show(path: &str) -> String {
    let cwd = std::env::current_dir().unwrap_or_default();
    Path::new(path)
        .strip_prefix(&cwd)
        .unwrap_or(Path::new(path))
        .display()
        .to_string()
}

async fn load(host: &Host, name: &str) -> Result<Tool, airlock::LoadError> {
    host.load(Path::new(guest(name)), Grants::none()).await
}

/// Prints an outcome the way `airlock run` would; counts a surprise.
fn report(outcome: &Outcome, expect: &str, failures: &mut u32) {
    match outcome {
        Outcome::Completed { output, report } => {
            println!("  {output}");
            println!(
                "  ok in {:.2?}, peak memory {} KiB",
                report.duration,
                report.memory_peak_bytes / 1024
            );
        }
        other => println!(
            "  {} (exit {}): {}",
            other.code(),
            other.exit_code(),
            other.message().unwrap_or_default()
        ),
    }
    for record in &outcome.report().egress {
        println!(
            "  egress: {} {}://{}:{} -> {}{}{}",
            record.method,
            record.scheme.as_deref().unwrap_or("?"),
            record.host.as_deref().unwrap_or("?"),
            record.port.unwrap_or_default(),
            record.verdict.as_str(),
            record
                .reason
                .map(|r| format!(" ({})", r.code()))
                .unwrap_or_default(),
            if record.credentials.is_empty() {
                String::new()
            } else {
                format!(", host injected: {}", record.credentials.join(", "))
            }
        );
    }
    if outcome.code() != expect {
        println!("  !! expected {expect}");
        *failures += 1;
    }
    println!();
}

#[tokio::main]
async fn main() -> Result<ExitCode, Box<dyn std::error::Error>> {
    println!(
        "airlock demo: every tool below is a WASI 0.2 component in guests/, built for wasm32-wasip2.\n"
    );
    // A fresh state directory each run, so earlier approvals do not apply.
    if Path::new(STATE_DIR).exists() {
        std::fs::remove_dir_all(STATE_DIR)?;
    }
    let server = TestServer::start(Ipv4Addr::LOCALHOST, 0, Behaviour::Echo).await?;
    let port = server.addr().port();
    // An API that reflects every request header back, secrets included.
    let api = TestServer::start(Ipv4Addr::LOCALHOST, 0, Behaviour::Reflect).await?;
    let api_port = api.addr().port();
    let vault = Vault::create(
        Path::new(STATE_DIR),
        NewVault::Passphrase(Passphrase::new(DEMO_PASSPHRASE)),
    )?;
    vault.set(
        "weather-key",
        &SecretScope::Tool("weather".into()),
        &SecretValue::new(DEMO_KEY.as_bytes().to_vec())?,
    )?;
    let host = Host::builder()
        .vault(vault)
        .cache_dir(".airlock/cache")
        .state_dir(STATE_DIR)
        // `api.demo` is the loopback server; every other name resolves to
        // nothing, so nothing leaves this machine.
        .resolver(Arc::new(
            StaticResolver::new().with("api.demo", [IpAddr::V4(Ipv4Addr::LOCALHOST)]),
        ))
        .build()?;

    let echo = load(&host, "echo").await?;
    let info = echo.info();
    println!("$ airlock inspect {}", show(guest("echo")));
    let mut roles: Vec<&str> = info.imports.iter().map(|i| i.role.explain()).collect();
    roles.dedup();
    println!("  sha256 {}  world {}", info.sha256, info.world);
    println!("  {} imports: {}\n", info.imports.len(), roles.join("; "));

    let mut failures = 0;
    for step in steps() {
        let tool = load(&host, step.guest).await?;
        println!("# {} ({}, world {})", step.what, step.guest, tool.world());
        println!(
            "$ airlock run {} --input '{}'{}",
            show(guest(step.guest)),
            step.input,
            step.flags
        );
        let outcome = host
            .invoke(&tool, Invocation::new(step.input).with_limits(step.limits))
            .await?;
        report(&outcome, step.expect, &mut failures);
    }

    // A network tool: sensitive, so the default policies hold it for a
    // human; its grant opens exactly one loopback origin.
    let grant_toml = format!("[[allow]]\nhost = \"api.demo\"\nports = [{port}]\nprivate = true\n");
    let grant_path = Path::new(STATE_DIR).join("grant.toml");
    std::fs::write(&grant_path, &grant_toml)?;
    let grant = NetworkGrant::from_toml(&grant_toml, &grant_path.display().to_string())?;
    let fetch = host
        .load(
            Path::new(guest("http-get")),
            Grants::none().with_network(grant),
        )
        .await?;
    let call = |url: String| {
        let input = serde_json::json!({ "url": url }).to_string();
        let invocation = Invocation::new(input.clone())
            .as_principal(Principal::agent("demo-agent"))
            .in_context(RequestContext {
                session_id: "demo".into(),
                ..RequestContext::default()
            });
        (invocation, input)
    };
    let cli = format!(
        "airlock --state-dir {STATE_DIR} run {} --grant {} --resolve api.demo=127.0.0.1 --no-dns \\\n    --principal 'Agent::\"demo-agent\"' --session demo",
        show(guest("http-get")),
        grant_path.display()
    );
    let (first, first_input) = call(format!("http://api.demo:{port}/weather"));
    println!(
        "# a network tool waits for a human (http-get, world {})",
        fetch.world()
    );
    println!("$ {cli} --input '{first_input}'");
    let outcome = host.invoke(&fetch, first.clone()).await?;
    report(&outcome, "approval_pending", &mut failures);
    let Outcome::PendingApproval { approval, .. } = &outcome else {
        return Ok(ExitCode::FAILURE);
    };

    println!("# the operator, in another shell, approves it for this session");
    println!(
        "$ airlock --state-dir {STATE_DIR} approvals decide {} --allow session",
        approval.id
    );
    let approvals = host.approvals().ok_or("the demo host keeps approvals")?;
    approvals.decide(
        &approval.id,
        &OperatorDecision::AllowSession,
        "demo:operator",
        SystemTime::now(),
    )?;
    println!("  allowed for session `demo`\n");

    println!("# now it runs, and reaches its granted origin");
    println!("$ {cli} --input '{first_input}'");
    let allowed = host.invoke(&fetch, first).await?;
    report(&allowed, "ok", &mut failures);

    let (metadata, metadata_input) = call("http://169.254.169.254/latest/meta-data/".into());
    println!("# a prompt-injected call to cloud metadata is refused before any socket opens");
    println!("$ {cli} --input '{metadata_input}'");
    let refused = host.invoke(&fetch, metadata).await?;
    report(&refused, "tool_denied", &mut failures);

    println!("# a tool calls an authenticated API; the host adds the key, the tool never sees it");
    println!(
        "$ echo $KEY | AIRLOCK_VAULT_PASSPHRASE=... airlock --state-dir {STATE_DIR} vault set weather-key --scope tool:weather"
    );
    println!(
        "$ airlock --state-dir {STATE_DIR} run --config airlock.toml --tool weather --input ...   # [[tools.credentials]] binds it"
    );
    let api_grant = NetworkGrant::from_toml(
        &format!("[[allow]]\nhost = \"api.demo\"\nports = [{api_port}]\nprivate = true\n"),
        "airlock.toml",
    )?;
    let binding = CredentialBinding::new(
        "weather-key",
        "Authorization",
        "Bearer {secret}",
        &["api.demo"],
    )?
    .with_schemes(vec![airlock::egress::url::Scheme::Http])?
    .with_ports(vec![api_port])?;
    let weather = host
        .load(
            Path::new(guest("http-get")),
            Grants::none()
                .named("weather")
                .with_network(api_grant)
                .with_credential(binding),
        )
        .await?;
    let (keyed, _) = call(format!("http://api.demo:{api_port}/forecast"));
    let first_try = host.invoke(&weather, keyed.clone()).await?;
    // A credential is a new capability: the earlier approval does not cover it.
    report(&first_try, "approval_pending", &mut failures);
    if let Outcome::PendingApproval { approval, .. } = &first_try {
        println!(
            "$ airlock --state-dir {STATE_DIR} approvals decide {} --allow once",
            approval.id
        );
        approvals.decide(
            &approval.id,
            &OperatorDecision::AllowOnce,
            "demo:operator",
            SystemTime::now(),
        )?;
    }
    let keyed_outcome = host.invoke(&weather, keyed).await?;
    report(&keyed_outcome, "ok", &mut failures);
    let sent = api
        .requests()
        .first()
        .and_then(|r| r.header("authorization").map(str::to_string));
    let seen_by_tool = format!("{:?}", keyed_outcome.output());
    if sent.as_deref() == Some(format!("Bearer {DEMO_KEY}").as_str())
        && !seen_by_tool.contains(DEMO_KEY)
    {
        println!(
            "  the API received `Authorization: Bearer sk-demo-…`; the tool saw the reflection masked: {}\n",
            if seen_by_tool.contains("****") {
                "`Bearer ****…`"
            } else {
                "no key"
            }
        );
    } else {
        println!("  !! the key did not arrive, or the tool saw it\n");
        failures += 1;
    }

    println!("# and the same host keeps serving");
    println!(
        "$ airlock run {} --input '{{\"still\":\"serving\"}}'",
        show(guest("echo"))
    );
    let outcome = host
        .invoke(&echo, Invocation::new(r#"{"still":"serving"}"#))
        .await?;
    report(&outcome, "ok", &mut failures);

    failures += mcp::serve_step(&Path::new(STATE_DIR).join("serve"), port, guest).await?;

    // The journal holds the whole story; one execution is provable alone.
    let journal = host.journal().ok_or("the demo host keeps a journal")?;
    journal.seal()?;
    let store = journal.store();
    println!("$ airlock --state-dir {STATE_DIR} journal tail -n 100");
    let entries = store.all()?;
    for entry in &entries {
        println!(
            "  {:>3}  {:<18} {}",
            entry.seq,
            entry.kind,
            &entry.hash.to_hex()[..16]
        );
    }
    println!("$ airlock --state-dir {STATE_DIR} journal verify");
    match store.audit(&journal.verifying_key(), None, journal.cadence())? {
        Ok(audit) => println!(
            "  journal intact: {} entries, root {}, {} signed heads\n",
            audit.entries,
            &audit.root.to_hex()[..16],
            audit.heads
        ),
        Err(broken) => {
            println!("  !! {broken}\n");
            failures += 1;
        }
    }
    let id = &allowed.report().invocation_id;
    println!("$ airlock --state-dir {STATE_DIR} attest verify {id}");
    let (entry, attestation) = entries
        .iter()
        .find_map(|e| attestation_in(e).filter(|a| &a.id == id).map(|a| (e, a)))
        .ok_or("the invocation is journaled")?;
    let proof = Proof::new(attestation, entry, store.inclusion(entry.seq)??);
    let key = airlock::attest::read_public_key(
        &Path::new(STATE_DIR).join(airlock::attest::PUBLIC_KEY_FILE),
    )?;
    match proof.verify(&key) {
        Ok(seq) => println!(
            "  valid: `{}` ran under approval {} with {} egress record(s); in the signed tree head of {seq} entries\n",
            proof.attestation.tool,
            proof.attestation.approval_id.as_deref().unwrap_or("-"),
            proof.attestation.egress_count
        ),
        Err(e) => {
            println!("  !! {e}\n");
            failures += 1;
        }
    }

    if failures == 0 {
        println!(
            "Every tool ended the way it should. Next: `cargo run -p airlock-cli -- --help`, or the README."
        );
        Ok(ExitCode::SUCCESS)
    } else {
        println!("{failures} step(s) did not end as expected.");
        Ok(ExitCode::FAILURE)
    }
}
