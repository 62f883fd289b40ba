//! Cedar decides every invocation; operators can forbid tools and
//! destinations; invalid policies stop start-up with Cedar's diagnostic.

use airlock::egress::{Reason, StaticResolver};
use airlock::policy::{Channel, DEFAULT_POLICIES, DEFAULT_SCHEMA, PolicyEngine, Principal};
use airlock::{DenialReason, Grants, Host, Invocation, NetworkGrant, Outcome};
use airlock_tests::{load_guest_with, test_cache_dir};
use std::net::{IpAddr, Ipv4Addr};
use std::sync::Arc;

fn engine_with(extra: &str) -> PolicyEngine {
    PolicyEngine::from_sources(
        ("schema", DEFAULT_SCHEMA),
        &[("default.cedar", DEFAULT_POLICIES), ("operator.cedar", extra)],
        Some((
            "entities.json",
            r#"[{"uid": {"type": "Airlock::Agent", "id": "crawler"}, "attrs": {}, "parents": [{"type": "Airlock::Group", "id": "bots"}]},
                {"uid": {"type": "Airlock::Group", "id": "bots"}, "attrs": {}, "parents": []}]"#,
        )),
    )
    .expect("valid policies")
}

#[tokio::test]
async fn pure_tools_run_and_operators_can_forbid_them_for_a_group() {
    let policies = engine_with(
        r#"@id("bots-no-echo")
forbid (principal in Airlock::Group::"bots", action == Airlock::Action::"tool.execute", resource)
when { resource.name == "echo" };"#,
    );
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .policies(policies)
        .build()
        .expect("host");
    let echo = load_guest_with(&host, "echo", Grants::none()).await;
    assert!(!echo.facts().sensitive);

    let ok = host
        .invoke(
            &echo,
            Invocation::new("[1]").as_principal(Principal::agent("claude")),
        )
        .await
        .expect("runs");
    assert_eq!(ok.code(), "ok");

    let refused = host
        .invoke(
            &echo,
            Invocation::new("[1]").as_principal(Principal::agent("crawler")),
        )
        .await
        .expect("runs");
    let Outcome::Denied { denial, .. } = &refused else {
        panic!("expected a denial, got {refused:?}")
    };
    assert_eq!(denial.reason, DenialReason::Policy);
    assert_eq!(denial.policies, vec!["bots-no-echo"]);
    assert_eq!(refused.exit_code(), airlock::exit_code::DENIED);
}

#[tokio::test]
async fn sensitive_tools_without_a_state_directory_are_denied_not_run() {
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .build()
        .expect("host");
    let fetch = load_guest_with(&host, "http-get", Grants::none()).await;
    assert!(fetch.facts().sensitive);
    let outcome = host
        .invoke(&fetch, Invocation::new(r#"{"url":"http://x.test/"}"#))
        .await
        .expect("runs");
    let Outcome::Denied { denial, .. } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(denial.reason, DenialReason::ApprovalUnavailable);
    assert_eq!(denial.policies, vec!["sensitive-tools-need-approval"]);
    assert!(outcome.report().egress.is_empty(), "the tool did not run");
}

#[tokio::test]
async fn operators_can_mark_pure_tools_sensitive() {
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .build()
        .expect("host");
    let echo = load_guest_with(&host, "echo", Grants::none().mark_sensitive()).await;
    assert!(echo.facts().sensitive);
    let outcome = host
        .invoke(&echo, Invocation::new("[]"))
        .await
        .expect("runs");
    assert_eq!(outcome.code(), "approval_unavailable");
}

#[tokio::test]
async fn cedar_can_forbid_a_destination_the_grant_allows() {
    let policies = PolicyEngine::from_sources(
        ("schema", DEFAULT_SCHEMA),
        &[(
            "operator.cedar",
            r#"@id("run-anything") permit (principal, action == Airlock::Action::"tool.execute", resource);
@id("egress") permit (principal, action == Airlock::Action::"http.request", resource);
@id("no-internal") forbid (principal, action == Airlock::Action::"http.request", resource) when { resource.host like "*.internal.test" };"#,
        )],
        None,
    )
    .expect("valid policies");
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .policies(policies)
        .resolver(Arc::new(StaticResolver::new().with(
            "db.internal.test",
            [IpAddr::V4(Ipv4Addr::new(127, 0, 0, 2))],
        )))
        .build()
        .expect("host");
    let grant = NetworkGrant::from_toml(
        "[[allow]]\nsuffix = \"internal.test\"\nprivate = true\n",
        "grant.toml",
    )
    .expect("grant");
    let fetch = load_guest_with(&host, "http-get", Grants::none().with_network(grant)).await;
    let outcome = host
        .invoke(
            &fetch,
            Invocation::new(r#"{"url": "http://db.internal.test/"}"#),
        )
        .await
        .expect("runs");
    assert_eq!(outcome.code(), "tool_denied", "{outcome:?}");
    let record = &outcome.report().egress[0];
    assert_eq!(record.reason, Some(Reason::PolicyDenied));
    assert_eq!(record.rule.as_deref(), Some("cedar: no-internal"));
}

#[test]
fn invalid_policy_directories_stop_start_up_with_a_location() {
    let dir = tempfile::tempdir().expect("tempdir");
    std::fs::write(
        dir.path().join("broken.cedar"),
        "@id(\"typo\")\npermit (principal, action, resource)\nwhen { resource.sensitve };\n",
    )
    .expect("write");
    let err = PolicyEngine::from_dir(dir.path()).expect_err("invalid");
    let message = err.to_string();
    assert!(message.contains("broken.cedar:3:"), "{message}");
    assert!(message.contains("sensitve"), "{message}");
}

#[tokio::test]
async fn tools_that_share_a_name_never_share_attributes() {
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .build()
        .expect("host");
    let plain = load_guest_with(&host, "echo", Grants::none()).await;
    let marked = load_guest_with(&host, "echo", Grants::none().mark_sensitive()).await;
    assert_eq!(plain.name(), marked.name());
    // Each check sees its own tool's facts, whichever was loaded last.
    for _ in 0..2 {
        assert_eq!(
            host.invoke(&plain, Invocation::new("[]"))
                .await
                .expect("runs")
                .code(),
            "ok"
        );
        assert_eq!(
            host.invoke(&marked, Invocation::new("[]"))
                .await
                .expect("runs")
                .code(),
            "approval_unavailable"
        );
    }
}

#[tokio::test]
async fn the_operators_name_is_what_policies_see_not_the_authors_claim() {
    let policies = engine_with(
        r#"@id("no-shouting")
forbid (principal, action == Airlock::Action::"tool.execute", resource)
when { resource.name == "shout" };"#,
    );
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .policies(policies)
        .build()
        .expect("host");
    // `echo` declares itself "echo"; the operator calls it "shout".
    let named = load_guest_with(&host, "echo", Grants::none().named("shout")).await;
    assert_eq!(named.name(), "shout");
    assert_eq!(named.descriptor().name, "echo");
    let outcome = host
        .invoke(&named, Invocation::new("[]"))
        .await
        .expect("runs");
    let Outcome::Denied { denial, .. } = &outcome else {
        panic!("{outcome:?}")
    };
    assert_eq!(denial.policies, vec!["no-shouting"]);
    let unnamed = load_guest_with(&host, "echo", Grants::none()).await;
    assert_eq!(
        host.invoke(&unnamed, Invocation::new("[]"))
            .await
            .expect("runs")
            .code(),
        "ok"
    );
}

#[tokio::test]
async fn reloaded_policies_apply_to_tools_loaded_before_and_are_journaled() {
    use airlock::journal::JournalStore;
    use airlock::store::Store;

    let state = tempfile::tempdir().expect("tempdir");
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .state_dir(state.path())
        .build()
        .expect("host");
    let echo = load_guest_with(&host, "echo", Grants::none()).await;
    let before = host
        .invoke(&echo, Invocation::new("[1]"))
        .await
        .expect("runs");
    assert_eq!(before.code(), "ok");

    let reloads = || {
        Store::in_state_dir(state.path())
            .expect("store")
            .all()
            .expect("entries")
            .into_iter()
            .filter(|e| e.kind == "policy_reload")
            .map(|e| e.payload)
            .collect::<Vec<_>>()
    };
    assert_eq!(reloads().len(), 1, "start-up journals the policies once");

    host.reload_policies(engine_with(
        r#"@id("echo-retired")
forbid (principal, action == Airlock::Action::"tool.execute", resource)
when { resource.name == "echo" };"#,
    ))
    .expect("reload");
    let after = host
        .invoke(&echo, Invocation::new("[1]"))
        .await
        .expect("runs");
    let Outcome::Denied { denial, .. } = &after else {
        panic!("expected a denial after the reload, got {after:?}")
    };
    assert_eq!(denial.policies, vec!["echo-retired"]);

    let recorded = reloads();
    assert_eq!(recorded.len(), 2, "the reload is journaled");
    assert!(recorded[1].contains("echo-retired"), "{}", recorded[1]);
    assert!(recorded[1].contains(&host.policies().digest()));
}

/// A paired console device decides as `Device::"ID"` in its operator:
/// the shipped policies let it decide through the console only, and a
/// policy that names the operator with `in` covers the device too.
#[test]
fn a_device_decides_as_a_member_of_its_operator() {
    use airlock::policy::{ApprovalFacts, PrincipalKind};
    let keep_exec_for_alice = r#"
        forbid (principal, action == Airlock::Action::"approval.decide", resource)
        when { resource.capabilities.contains("process_exec") && !(principal in Airlock::Operator::"alice") };
    "#;
    let engine = engine_with(keep_exec_for_alice);
    let approval = |capability: &str| ApprovalFacts {
        id: "01J".into(),
        tool: "tool".into(),
        requester: "Agent::\"claude\"".into(),
        capabilities: vec![capability.to_string()],
        tool_sha256: "00".into(),
    };
    let device = Principal::new(PrincipalKind::Device, "phone");
    let of = |operator: &str| vec![Principal::operator(operator)];
    let decide = |operator: &str, capability: &str, channel: &str| {
        engine
            .check_decide(
                &device,
                &of(operator),
                &approval(capability),
                "allow_once",
                &Channel::named(channel),
            )
            .allowed
    };
    assert!(decide("alice", "network", "console"));
    assert!(decide("alice", "process_exec", "console"));
    assert!(decide("bob", "network", "console"));
    assert!(
        !decide("bob", "process_exec", "console"),
        "bob's device is not alice"
    );
    assert!(
        !decide("alice", "network", "operator-socket"),
        "devices decide in the console only"
    );
}

/// A hosted server's tools carry the server's name: a policy can keep a
/// whole server (or one agent from it) out.
#[test]
fn policies_can_name_a_hosted_server() {
    use airlock::policy::{RequestContext, ToolFacts};
    use airlock::{Capability, World};
    let no_files_for_bots = r#"
        forbid (principal == Airlock::Agent::"bot", action == Airlock::Action::"tool.execute", resource)
        when { resource has server && resource.server == "files" };
    "#;
    let engine = engine_with(no_files_for_bots);
    let hosted = |server: Option<&str>| {
        let facts = ToolFacts {
            server: server.map(str::to_string),
            ..ToolFacts::derive(
                "files.read_text_file",
                World::McpServer,
                vec![Capability::FilesystemRead],
                &"ab".repeat(32),
                false,
            )
        };
        engine.register_tool(&facts).expect("registered");
        facts
    };
    let run = |who: &str, facts: &ToolFacts| {
        engine
            .check_execute(
                &Principal::agent(who),
                facts,
                &RequestContext::default(),
                false,
            )
            .allowed
    };
    let files = hosted(Some("files"));
    assert!(!run("bot", &files), "the bot is kept from that server");
    assert!(run("claude", &files), "others are not");
    assert!(run("bot", &hosted(Some("docs"))), "nor is another server");
}

/// `tool.execute` decisions are cached by what they depend on: a policy
/// that reads `context.run_id` is decided per call (and turns caching off),
/// and the cache answers exactly as Cedar does.
#[test]
fn cached_decisions_follow_the_context_the_policies_read() {
    use airlock::policy::{RequestContext, ToolFacts};
    use airlock::{Capability, World};
    let tool = ToolFacts::derive(
        "fetch",
        World::Network,
        vec![Capability::Network],
        &"cd".repeat(32),
        false,
    );
    let context = |run: &str| RequestContext {
        run_id: run.to_string(),
        ..RequestContext::default()
    };
    let agent = Principal::agent("claude");

    // The shipped policies read `approved` (and `channel`, for approvals):
    // the same request is answered from the cache, the same way.
    let shipped = PolicyEngine::embedded();
    shipped.register_tool(&tool).expect("registered");
    let first = shipped.check_execute(&agent, &tool, &context("a"), true);
    let again = shipped.check_execute(&agent, &tool, &context("b"), true);
    assert!(first.allowed);
    assert_eq!(first, again);
    assert_eq!(
        shipped.cached_decisions(),
        (1, true),
        "run_id is not read: one entry"
    );
    assert!(
        !shipped
            .check_execute(&agent, &tool, &context("a"), false)
            .allowed
    );
    assert_eq!(
        shipped.cached_decisions().0,
        2,
        "approved is read: its own entry"
    );

    // A policy that reads run_id: each run is decided on its own.
    let per_run = engine_with(
        r#"forbid (principal, action == Airlock::Action::"tool.execute", resource)
                   when { context.run_id == "blocked" };"#,
    );
    per_run.register_tool(&tool).expect("registered");
    for (run, allowed) in [
        ("ok", true),
        ("blocked", false),
        ("ok", true),
        ("blocked", false),
    ] {
        assert_eq!(
            per_run
                .check_execute(&agent, &tool, &context(run), true)
                .allowed,
            allowed,
            "run {run}"
        );
    }
    assert_eq!(
        per_run.cached_decisions(),
        (0, false),
        "run_id is per call: nothing is cached, every call is evaluated"
    );

    // A policy that uses the whole context turns the cache off.
    let whole = engine_with(
        r#"forbid (principal, action == Airlock::Action::"tool.execute", resource)
                   when { context == context && context.run_id == "never" };"#,
    );
    whole.register_tool(&tool).expect("registered");
    assert!(
        whole
            .check_execute(&agent, &tool, &context("a"), true)
            .allowed
    );
    assert_eq!(whole.cached_decisions(), (0, false));
}
