//! Native tools through the host: admitted like components, run under
//! bubblewrap, in `strict` mode reaching only what the grant allows through
//! the same egress decision, journaled with their own executor.
#![cfg(target_os = "linux")]

use airlock::egress::{Reason, StaticResolver, Verdict};
use airlock::native::{NativeNetwork, NativeSpec, Tier};
use airlock::{Grants, Host, Invocation, NetworkGrant};
use airlock_tests::net::{Behaviour, TestServer};
use airlock_tests::{permit_all, test_cache_dir};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

const SVC: Ipv4Addr = Ipv4Addr::new(127, 0, 0, 2);

fn spec(script: &str, network: NativeNetwork) -> NativeSpec {
    NativeSpec {
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        tier: Tier::Sandbox,
        network,
        fs_read: Vec::new(),
        fs_write: Vec::new(),
        limits: airlock_sandbox::ProcessLimits::default(),
        hide_airlock_files: false,
    }
}

/// A loopback echo server at [`SVC`], a state directory, and a host whose
/// policies permit everything, `svc.test` resolving to [`SVC`], with the
/// bridge strict mode needs.
async fn strict_world() -> (TestServer, tempfile::TempDir, Host) {
    let server = TestServer::start(SVC, 0, Behaviour::Echo)
        .await
        .expect("server");
    let state = tempfile::tempdir().expect("tempdir");
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .state_dir(state.path())
        .policies(permit_all())
        .resolver(Arc::new(
            StaticResolver::new().with("svc.test", [IpAddr::V4(SVC)]),
        ))
        .native_bridge(env!("CARGO_BIN_EXE_bridge"))
        .build()
        .expect("host");
    (server, state, host)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_strict_native_tool_reaches_its_grant_and_nothing_else() {
    let (server, state, host) = strict_world().await;
    let port = server.addr().port();
    let grant = NetworkGrant::from_toml(
        &format!("[[allow]]\nhost = \"svc.test\"\nprivate = true\nports = [{port}]\n"),
        "grant.toml",
    )
    .expect("grant");
    let script = format!(
        r#"read -r input
body=$(curl -s -m 5 http://svc.test:{port}/hello)
refused=$(curl -s -m 5 -o /dev/null -w '%{{http_code}}' http://metadata.test/)
direct=$(curl -s -m 2 --noproxy '*' -o /dev/null -w '%{{http_code}}' http://127.0.0.2:{port}/ || true)
printf '{{"echoed": %s, "refused": "%s", "direct": "%s"}}' "$body" "$refused" "$direct""#
    );
    let tool = host
        .load_native(
            "fetcher",
            spec(&script, NativeNetwork::Strict),
            Grants::none().with_network(grant),
        )
        .expect("loads");
    assert!(
        tool.facts()
            .capabilities
            .contains(&airlock::Capability::ProcessExec)
    );
    let outcome = host
        .invoke_native(&tool, Invocation::new("{}"))
        .await
        .expect("runs");
    assert_eq!(outcome.code(), "ok", "{outcome:?}");
    let output: serde_json::Value =
        serde_json::from_str(outcome.output().expect("output")).expect("JSON");
    assert_eq!(output["echoed"]["target"], "/hello");
    assert_eq!(output["refused"], "403");
    assert_eq!(output["direct"], "000", "no route out but the proxy");
    assert_eq!(
        server.requests().len(),
        1,
        "only the granted request arrived"
    );

    let records = &outcome.report().egress;
    assert_eq!(records.len(), 2, "{records:#?}");
    assert_eq!(records[0].verdict, Verdict::Allow);
    assert_eq!(records[0].host.as_deref(), Some("svc.test"));
    assert_eq!(records[1].verdict, Verdict::Deny);
    assert_eq!(records[1].reason, Some(Reason::HostNotAllowed));

    let journal = airlock::store::Store::in_state_dir(state.path()).expect("store");
    let entries = airlock::journal::JournalStore::all(&journal).expect("entries");
    let invocation = entries
        .iter()
        .find(|e| e.kind == "invocation")
        .expect("journaled");
    assert!(
        invocation
            .payload
            .contains("\"executor\":\"native_linux_bubblewrap\""),
        "{}",
        invocation.payload
    );
    assert!(invocation.payload.contains("\"enforcement\":\"strict\""));
    assert_eq!(entries.iter().filter(|e| e.kind == "egress").count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_proxy_limits_bodies_and_tunnels_carry_tls_to_the_granted_name_only() {
    let (server, _state, host) = strict_world().await;
    let port = server.addr().port();
    let grant = NetworkGrant::from_toml(
        &format!(
            "max_request_bytes = \"1KiB\"\n[[allow]]\nhost = \"svc.test\"\nprivate = true\n\
             schemes = [\"http\", \"https\"]\nports = [{port}]\n"
        ),
        "grant.toml",
    )
    .expect("grant");
    // 1. A 300 kB POST, announced and chunked; 2. plain HTTP inside a
    // CONNECT tunnel; 3. TLS whose SNI names another server than the
    // tunnel's. Each prints curl's status; none may reach the server.
    let script = format!(
        r#"read -r input
head -c 300000 /dev/zero > /tmp/big
announced=$(curl -s -m 5 -o /dev/null -w '%{{http_code}}' --data-binary @/tmp/big http://svc.test:{port}/post)
chunked=$(curl -s -m 5 -o /dev/null -w '%{{http_code}}' -H 'Transfer-Encoding: chunked' --data-binary @/tmp/big http://svc.test:{port}/chunked)
plain=$(curl -s -m 5 -p -o /dev/null -w '%{{http_code}}' http://svc.test:{port}/in-tunnel || true)
sni=$(curl -s -m 5 -k -o /dev/null -w '%{{http_code}}' --connect-to evil.test:{port}:svc.test:{port} https://evil.test:{port}/ || true)
printf '{{"announced": "%s", "chunked": "%s", "plain": "%s", "sni": "%s"}}' "$announced" "$chunked" "$plain" "$sni""#
    );
    let tool = host
        .load_native(
            "uploader",
            spec(&script, NativeNetwork::Strict),
            Grants::none().with_network(grant),
        )
        .expect("loads");
    let outcome = host
        .invoke_native(&tool, Invocation::new("{}"))
        .await
        .expect("runs");
    assert_eq!(outcome.code(), "ok", "{outcome:?}");
    let output: serde_json::Value =
        serde_json::from_str(outcome.output().expect("output")).expect("JSON");
    assert_eq!(output["announced"], "502", "{output}");
    let records = &outcome.report().egress;
    let reasons: Vec<Option<Reason>> = records.iter().map(|r| r.reason).collect();
    assert_eq!(
        reasons,
        [
            Some(Reason::RequestTooLarge),
            Some(Reason::RequestTooLarge),
            Some(Reason::TunnelNotTls),
            Some(Reason::SniMismatch),
        ],
        "{records:#?}"
    );
    for record in records {
        assert!(record.bytes_up <= 1024, "{record:#?}");
    }
    assert!(
        server
            .requests()
            .iter()
            .all(|r| r.target != "/post" && r.target != "/in-tunnel"),
        "{:?}",
        server.requests()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn native_tools_wait_for_approval_and_unsandboxed_ones_need_a_policy() {
    let state = tempfile::tempdir().expect("tempdir");
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .state_dir(state.path())
        .build()
        .expect("host with the default policies");
    let tool = host
        .load_native("echoer", spec("cat", NativeNetwork::None), Grants::none())
        .expect("loads");
    let first = host
        .invoke_native(&tool, Invocation::new("[1]"))
        .await
        .expect("runs");
    assert_eq!(
        first.code(),
        "approval_pending",
        "process_exec is sensitive"
    );

    let mut unsandboxed = spec("cat", NativeNetwork::None);
    unsandboxed.tier = Tier::None;
    let bare = host
        .load_native("bare", unsandboxed, Grants::none())
        .expect("loads");
    let Outcome::PendingApproval { approval, .. } = host
        .invoke_native(&bare, Invocation::new("[2]"))
        .await
        .expect("runs")
    else {
        panic!("expected a pending approval")
    };
    allow_once(&host, &approval.id);
    let refused = host
        .invoke_native(&bare, Invocation::new("[2]"))
        .await
        .expect("runs");
    assert_eq!(refused.code(), "policy_denied", "{refused:?}");
    assert!(
        refused
            .message()
            .unwrap_or_default()
            .contains("unsandboxed")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_session_approval_covers_only_the_program_line_it_was_given_for() {
    let state = tempfile::tempdir().expect("tempdir");
    let workspace = tempfile::tempdir().expect("workspace");
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .state_dir(state.path())
        .build()
        .expect("host with the default policies");
    let in_session = |input: &str| {
        Invocation::new(input).in_context(airlock::policy::RequestContext {
            session_id: "s1".into(),
            ..Default::default()
        })
    };
    let approved = host
        .load_native("py", spec("cat", NativeNetwork::None), Grants::none())
        .expect("loads");
    let Outcome::PendingApproval { approval, .. } = host
        .invoke_native(&approved, in_session("[1]"))
        .await
        .expect("runs")
    else {
        panic!("process_exec needs an approval")
    };
    host.approvals()
        .expect("approvals")
        .decide(
            &approval.id,
            &airlock::approvals::OperatorDecision::AllowSession,
            "test:operator",
            std::time::SystemTime::now(),
        )
        .expect("decide");
    let ran = host
        .invoke_native(&approved, in_session("[2]"))
        .await
        .expect("runs");
    assert_eq!(
        ran.output(),
        Some("[2]"),
        "the session covers another input"
    );

    // The same program (same digest, same name, same capabilities) with
    // another command line, a writable mount or wider limits is another
    // grant: none of them may run under that approval.
    let mut other_code = spec("echo pwned", NativeNetwork::None);
    other_code.args.push("extra".into());
    let mut mounted = spec("cat", NativeNetwork::None);
    mounted.fs_read.push(workspace.path().to_path_buf());
    let mut wider = spec("cat", NativeNetwork::None);
    wider.limits.processes *= 4;
    for (what, changed) in [
        ("args", spec("echo pwned", NativeNetwork::None)),
        ("more args", other_code),
        ("a mount", mounted),
        ("limits", wider),
    ] {
        let tool = host
            .load_native("py", changed, Grants::none())
            .expect("loads");
        let outcome = host
            .invoke_native(&tool, in_session("[3]"))
            .await
            .expect("runs");
        assert_eq!(outcome.code(), "approval_pending", "{what}: {outcome:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invocations_limits_tighten_a_native_tool_and_are_checked() {
    let state = tempfile::tempdir().expect("tempdir");
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .state_dir(state.path())
        .policies(permit_all())
        .build()
        .expect("host");
    let tool = host
        .load_native(
            "sleeper",
            spec("sleep 20; cat", NativeNetwork::None),
            Grants::none(),
        )
        .expect("loads");
    let tight = airlock::Limits {
        timeout: std::time::Duration::from_millis(300),
        ..airlock::Limits::default()
    };
    let outcome = host
        .invoke_native(&tool, Invocation::new("[1]").with_limits(tight.clone()))
        .await
        .expect("runs");
    assert_eq!(outcome.code(), "deadline_exceeded", "{outcome:?}");
    assert_eq!(outcome.report().limits.timeout, tight.timeout);

    let small_input = airlock::Limits {
        max_input_bytes: 4,
        ..airlock::Limits::default()
    };
    let outcome = host
        .invoke_native(&tool, Invocation::new("[1, 2, 3]").with_limits(small_input))
        .await
        .expect("refused before it runs");
    assert_eq!(outcome.code(), "input_too_large", "{outcome:?}");

    let fuel = airlock::Limits {
        fuel: Some(1_000),
        ..airlock::Limits::default()
    };
    let refused = host
        .invoke_native(&tool, Invocation::new("[1]").with_limits(fuel))
        .await
        .expect_err("a limit this host cannot provide");
    assert_eq!(refused.code(), "fuel_not_enabled", "{refused}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn components_and_native_programs_answer_by_one_output_rule() {
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .policies(permit_all())
        .build()
        .expect("host");
    let component = host
        .load(
            std::path::Path::new(airlock_tests::guest_path("echo")),
            Grants::none(),
        )
        .await
        .expect("echo loads");
    let program = host
        .load_native("cat", spec("cat", NativeNetwork::None), Grants::none())
        .expect("cat loads");
    // Both echo their input, JSON with whitespace around it: both answer
    // the JSON text alone.
    let input = " [1, 2] \n";
    let from_component = host
        .invoke(&component, Invocation::new(input))
        .await
        .expect("runs");
    let from_program = host
        .invoke_native(&program, Invocation::new(input))
        .await
        .expect("runs");
    assert_eq!(from_component.output(), Some("[1, 2]"));
    assert_eq!(from_program.output(), Some("[1, 2]"));
}

use airlock::Outcome;

/// An operator allows the pending approval `id` once.
fn allow_once(host: &Host, id: &str) {
    host.approvals()
        .expect("approvals")
        .decide(
            id,
            &airlock::approvals::OperatorDecision::AllowOnce,
            "test:operator",
            std::time::SystemTime::now(),
        )
        .expect("decide");
}

/// A backend that confines nothing but resources, like a Windows Job
/// Object: it runs the program unsandboxed and counts its runs.
#[derive(Debug, Default)]
struct LimitsOnly {
    runs: std::sync::atomic::AtomicUsize,
}

impl airlock_sandbox::TierCBackend for LimitsOnly {
    fn kind(&self) -> airlock_sandbox::BackendKind {
        airlock_sandbox::BackendKind::WindowsJobObject
    }

    fn confinement(&self) -> airlock_sandbox::Confinement {
        airlock_sandbox::Confinement::LIMITS_ONLY
    }

    fn run(
        &self,
        plan: &airlock_sandbox::Plan,
        input: &[u8],
    ) -> Result<airlock_sandbox::RunOutput, airlock_sandbox::SandboxError> {
        self.runs.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        airlock_sandbox::run_unsandboxed(plan, input)
    }
}

/// The shipped policies plus `extra`.
fn shipped_policies_and(extra: &str) -> airlock::policy::PolicyEngine {
    let dir = airlock_tests::workspace_root().join("policies");
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).expect("shipped policies");
    airlock::policy::PolicyEngine::from_sources(
        ("schema.cedarschema", &read("schema.cedarschema")),
        &[
            ("default.cedar", &read("default.cedar")),
            ("extra.cedar", extra),
        ],
        None,
    )
    .expect("policies")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backend_that_confines_only_resources_counts_as_unsandboxed() {
    let backend = Arc::new(LimitsOnly::default());
    let host_with = |policies| {
        let state = tempfile::tempdir().expect("tempdir");
        let host = Host::builder()
            .cache_dir(test_cache_dir())
            .state_dir(state.path())
            .policies(policies)
            .native_sandbox(backend.clone())
            .build()
            .expect("host");
        (host, state)
    };

    let (host, _state) = host_with(permit_all());
    let strict = host
        .load_native("net", spec("true", NativeNetwork::Strict), Grants::none())
        .expect_err("a job cannot confine the network");
    assert_eq!(strict.code(), "grant_invalid");
    assert!(strict.to_string().contains("native_windows_job_object"));
    let tool = host
        .load_native("echo", spec("cat", NativeNetwork::None), Grants::none())
        .expect("loads");
    assert!(!tool.sandboxed());
    let refused = host
        .invoke_native(&tool, Invocation::new("[1]"))
        .await
        .expect("decided");
    assert_eq!(
        refused.code(),
        "policy_denied",
        "policies alone are not enough"
    );
    assert!(refused.message().unwrap_or_default().contains("approved"));
    assert_eq!(backend.runs.load(std::sync::atomic::Ordering::SeqCst), 0);

    let permit_unsandboxed = r#"@id("unsandboxed-programs")
permit (principal, action == Airlock::Action::"process.exec", resource)
when { !resource.sandboxed };"#;
    let (host, state) = host_with(shipped_policies_and(permit_unsandboxed));
    let tool = host
        .load_native("echo", spec("cat", NativeNetwork::None), Grants::none())
        .expect("loads");
    let Outcome::PendingApproval { approval, .. } = host
        .invoke_native(&tool, Invocation::new("[2]"))
        .await
        .expect("decided")
    else {
        panic!("process_exec waits for a human");
    };
    allow_once(&host, &approval.id);
    let ran = host
        .invoke_native(&tool, Invocation::new("[2]"))
        .await
        .expect("runs");
    assert_eq!(ran.output(), Some("[2]"), "{ran:?}");
    assert_eq!(backend.runs.load(std::sync::atomic::Ordering::SeqCst), 1);
    let journal = airlock::store::Store::in_state_dir(state.path()).expect("store");
    let entries = airlock::journal::JournalStore::all(&journal).expect("entries");
    let invocation = entries
        .iter()
        .find(|e| e.kind == "invocation")
        .expect("journaled");
    assert!(
        invocation
            .payload
            .contains("\"executor\":\"native_windows_job_object\""),
        "{}",
        invocation.payload
    );
    assert!(
        invocation
            .payload
            .contains("\"enforcement\":\"limits_only\"")
    );
}

/// The review's fourth way in: a tool that can write where another tool's
/// program lives replaces it, to run its own code under the other tool's
/// name, grants and approvals. The program is checked against its digest
/// before every run.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_program_replaced_after_load_does_not_run() {
    let (_server, _state, host) = strict_world().await;
    let dir = tempfile::tempdir().expect("tempdir");
    let program = dir.path().join("tool.sh");
    std::fs::write(&program, "#!/bin/sh\necho '{\"who\": \"honest\"}'\n").expect("program");
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755))
            .expect("chmod");
        std::fs::set_permissions(&program, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }
    let tool = host
        .load_native(
            "honest",
            NativeSpec {
                program: program.clone(),
                args: Vec::new(),
                ..spec("", NativeNetwork::None)
            },
            Grants::none(),
        )
        .expect("loads");
    let ran = host
        .invoke_native(&tool, Invocation::new("{}"))
        .await
        .expect("runs");
    assert_eq!(ran.output(), Some(r#"{"who": "honest"}"#), "{ran:?}");
    std::fs::write(&program, "#!/bin/sh\necho '{\"who\": \"sneaky\"}'\n").expect("replace");
    let refused = host
        .invoke_native(&tool, Invocation::new("{}"))
        .await
        .expect_err("changed");
    assert_eq!(refused.code(), "program_changed", "{refused}");
}

/// A state directory the host made at start is held to the identity it was
/// made with: carried away inside a granted directory (and a decoy put at
/// its name), no run shows the moved one uncovered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_state_directory_made_at_start_is_held_to_its_identity() {
    let project = tempfile::tempdir().expect("tempdir");
    let state = project.path().join(".airlock");
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .state_dir(&state)
        .policies(permit_all())
        .build()
        .expect("host");
    assert!(state.join("host.key").exists(), "the host made it");
    let tool = host
        .load_native(
            "reader",
            NativeSpec {
                fs_read: vec![project.path().to_path_buf()],
                hide_airlock_files: true,
                ..spec("ls -a; cat */host.key", NativeNetwork::None)
            },
            Grants::none(),
        )
        .expect("loads, covering the state directory");
    std::fs::rename(&state, project.path().join("moved")).expect("carry it away");
    std::fs::create_dir(&state).expect("a decoy at its name");
    let refused = host
        .invoke_native(&tool, Invocation::new("{}"))
        .await
        .expect_err("moved");
    assert_eq!(refused.code(), "protected_path_moved", "{refused}");
}
