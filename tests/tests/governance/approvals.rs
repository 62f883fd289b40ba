//! Sensitive invocations wait for an operator; each scope binds what it says
//! and expires when it says; a new build of a tool needs a new approval.

use airlock::approvals::{ApprovalStore, OperatorDecision, Status};
use airlock::policy::{Principal, RequestContext};
use airlock::{DenialReason, Grants, Host, Invocation, InvokeError, Limits, Outcome, Tool};
use airlock_tests::{guest_path, load_guest_with, test_cache_dir};
use std::path::Path;
use std::time::{Duration, SystemTime};

/// A host keeping approvals in `state`, with the default policies.
fn host_in(state: &Path) -> Host {
    Host::builder()
        .cache_dir(test_cache_dir())
        .state_dir(state)
        .build()
        .expect("host")
}

/// A host on a fresh state directory, and `echo` marked sensitive on it.
async fn fresh() -> (tempfile::TempDir, Host, Tool) {
    let state = tempfile::tempdir().expect("tempdir");
    let host = host_in(state.path());
    let echo = sensitive_echo(&host).await;
    (state, host, echo)
}

/// An hour-long approval.
const FOR_AN_HOUR: OperatorDecision = OperatorDecision::AllowFor(Duration::from_secs(3600));

/// `echo`, marked sensitive so the default policies hold it for approval.
async fn sensitive_echo(host: &Host) -> Tool {
    load_guest_with(host, "echo", Grants::none().mark_sensitive()).await
}

fn store(host: &Host) -> &dyn ApprovalStore {
    host.approvals()
        .expect("a host with a state directory keeps approvals")
}

/// The operator decides approval `id`, as of `at`.
fn decide_at(host: &Host, id: &str, decision: &OperatorDecision, at: SystemTime) {
    store(host)
        .decide(id, decision, "test:operator", at)
        .expect("decide");
}

/// The operator decides approval `id` now.
fn decide(host: &Host, id: &str, decision: &OperatorDecision) {
    decide_at(host, id, decision, SystemTime::now());
}

fn in_session(session: &str) -> RequestContext {
    RequestContext {
        session_id: session.into(),
        ..RequestContext::default()
    }
}

fn call(input: &str, who: &str, session: &str) -> Invocation {
    Invocation::new(input)
        .as_principal(Principal::agent(who))
        .in_context(in_session(session))
}

/// Invokes and expects a pending approval; returns its id.
async fn pending(host: &Host, tool: &Tool, invocation: Invocation) -> String {
    match host.invoke(tool, invocation).await.expect("invoke") {
        Outcome::PendingApproval { approval, report } => {
            assert!(
                report.egress.is_empty() && report.duration.is_zero(),
                "nothing ran"
            );
            approval.id
        }
        other => panic!("expected a pending approval, got {other:?}"),
    }
}

async fn ran(host: &Host, tool: &Tool, invocation: Invocation) -> bool {
    let outcome = host.invoke(tool, invocation).await.expect("invoke");
    match outcome.code() {
        "ok" => true,
        "approval_pending" => false,
        other => panic!("unexpected outcome {other}: {outcome:?}"),
    }
}

#[tokio::test]
async fn a_pending_approval_is_persisted_with_what_the_operator_needs() {
    let (state, host, echo) = fresh().await;
    let input = r#"{"path": "/etc/passwd", "note": "exfiltrate"}"#;
    let id = pending(&host, &echo, call(input, "claude", "s1")).await;

    // Persisted before the caller heard of it: a second host on the same
    // directory (as after a restart) sees it.
    let again = host_in(state.path());
    let approval = store(&again).get(&id).expect("read").expect("persisted");
    assert_eq!(approval.status, Status::Pending);
    let request = &approval.request;
    assert_eq!(request.principal, r#"Agent::"claude""#);
    assert_eq!(request.session_id, "s1");
    assert_eq!(request.tool_name, echo.facts().name);
    assert_eq!(request.tool_sha256, echo.facts().sha256);
    assert_eq!(request.capabilities, echo.facts().capability_names());
    assert!(
        request.input_summary.contains("/etc/passwd"),
        "{}",
        request.input_summary
    );
    assert_eq!(request.request_hash.len(), 64);
    assert_eq!(
        store(&again)
            .list(true)
            .expect("list")
            .iter()
            .map(|a| a.id.clone())
            .collect::<Vec<_>>(),
        vec![id.clone()]
    );

    // Asking again does not pile up approvals.
    assert_eq!(pending(&host, &echo, call(input, "claude", "s1")).await, id);
}

#[tokio::test]
async fn once_allows_exactly_one_run_of_exactly_that_request() {
    let (_state, host, echo) = fresh().await;
    let id = pending(&host, &echo, call("[1]", "claude", "s1")).await;
    decide(&host, &id, &OperatorDecision::AllowOnce);

    assert!(
        !ran(&host, &echo, call("[2]", "claude", "s1")).await,
        "another input is another request"
    );
    assert!(
        !ran(&host, &echo, call("[1]", "gemini", "s1")).await,
        "another principal is another request"
    );
    let outcome = host
        .invoke(&echo, call("[1]", "claude", "s1").under_approval(&id))
        .await
        .expect("invoke");
    assert_eq!(outcome.output(), Some("[1]"));
    assert!(
        !ran(&host, &echo, call("[1]", "claude", "s1")).await,
        "once means once"
    );
}

#[tokio::test]
async fn session_covers_any_input_in_that_session_only() {
    let (_state, host, echo) = fresh().await;
    let id = pending(&host, &echo, call("[1]", "claude", "s1")).await;
    decide(&host, &id, &OperatorDecision::AllowSession);

    assert!(ran(&host, &echo, call("[1]", "claude", "s1")).await);
    assert!(ran(&host, &echo, call(r#"{"other": true}"#, "claude", "s1")).await);
    assert!(
        ran(&host, &echo, call("[1]", "claude", "s1")).await,
        "not used up"
    );
    assert!(
        !ran(&host, &echo, call("[1]", "claude", "s2")).await,
        "another session"
    );
    assert!(
        !ran(&host, &echo, call("[1]", "gemini", "s1")).await,
        "another principal"
    );
}

#[tokio::test]
async fn until_covers_every_session_and_ends_when_it_expires() {
    let (_state, host, echo) = fresh().await;

    let id = pending(&host, &echo, call("[1]", "claude", "s1")).await;
    decide(&host, &id, &FOR_AN_HOUR);
    assert!(ran(&host, &echo, call("[1]", "claude", "s1")).await);
    assert!(
        ran(&host, &echo, call("[2]", "claude", "s9")).await,
        "any session, any input"
    );
    assert!(
        !ran(&host, &echo, call("[1]", "gemini", "s1")).await,
        "another principal"
    );

    // An approval decided two hours ago for one hour has expired: the
    // request becomes pending again rather than running.
    let id = pending(&host, &echo, call("[1]", "bard", "s1")).await;
    let two_hours_ago = SystemTime::now() - Duration::from_secs(7200);
    decide_at(&host, &id, &FOR_AN_HOUR, two_hours_ago);
    let renewed = pending(&host, &echo, call("[1]", "bard", "s1")).await;
    assert_ne!(renewed, id, "an expired approval is not reused");
}

#[tokio::test]
async fn a_new_build_of_the_tool_invalidates_every_approval_for_the_old_one() {
    let (_state, host, echo) = fresh().await;
    let id = pending(&host, &echo, call("[1]", "claude", "s1")).await;
    decide(&host, &id, &FOR_AN_HOUR);
    assert!(ran(&host, &echo, call("[1]", "claude", "s1")).await);

    // The same tool name, different bytes: a custom section changes the
    // digest but not the behaviour.
    let mut bytes = std::fs::read(guest_path("echo")).expect("read echo");
    bytes.extend_from_slice(&[0x00, 0x05, 0x04, b'n', b'o', b't', b'e']);
    let dir = tempfile::tempdir().expect("tempdir");
    let rebuilt_path = dir.path().join(
        Path::new(guest_path("echo"))
            .file_name()
            .expect("file name"),
    );
    std::fs::write(&rebuilt_path, &bytes).expect("write");
    let rebuilt = host
        .load(rebuilt_path.as_path(), Grants::none().mark_sensitive())
        .await
        .expect("load");
    assert_eq!(rebuilt.facts().name, echo.facts().name);
    assert_ne!(rebuilt.facts().sha256, echo.facts().sha256);

    let fresh = pending(&host, &rebuilt, call("[1]", "claude", "s1")).await;
    assert_ne!(fresh, id);
}

#[tokio::test]
async fn a_denial_is_final_and_carries_the_operators_reason() {
    let (_state, host, echo) = fresh().await;
    let id = pending(&host, &echo, call("[1]", "claude", "s1")).await;
    decide(
        &host,
        &id,
        &OperatorDecision::Deny("not on a Sunday".into()),
    );
    for _ in 0..2 {
        let outcome = host
            .invoke(&echo, call("[1]", "claude", "s1"))
            .await
            .expect("invoke");
        let Outcome::Denied { denial, .. } = &outcome else {
            panic!("{outcome:?}")
        };
        assert_eq!(denial.reason, DenialReason::ApprovalDenied);
        assert_eq!(denial.approval_id.as_deref(), Some(id.as_str()));
        assert!(
            denial.message.contains("not on a Sunday"),
            "{}",
            denial.message
        );
        assert_eq!(outcome.exit_code(), airlock::exit_code::DENIED);
    }
    let again = store(&host).decide(
        &id,
        &OperatorDecision::AllowOnce,
        "operator:test",
        SystemTime::now(),
    );
    assert!(again.is_err(), "a decided approval cannot be decided again");
}

#[tokio::test]
async fn an_invocation_can_wait_for_an_operator_in_another_task() {
    let (state, host, echo) = fresh().await;

    // The operator works through their own handle on the same directory,
    // as `airlock approvals decide` in another shell would.
    let operator = airlock::approvals::kept_in(
        &airlock::store::Store::in_state_dir(state.path()).expect("operator store"),
    );
    let decider = tokio::task::spawn_blocking(move || {
        loop {
            if let Some(approval) = operator.list(true).expect("list").into_iter().next() {
                operator
                    .decide(
                        &approval.id,
                        &OperatorDecision::AllowOnce,
                        "operator:test",
                        SystemTime::now(),
                    )
                    .expect("decide");
                return approval.id;
            }
            std::thread::yield_now();
        }
    });
    let outcome = host
        .invoke(
            &echo,
            call("[7]", "claude", "s1").wait_for_approval(Duration::from_secs(60)),
        )
        .await
        .expect("invoke");
    let decided = decider.await.expect("decider");
    assert_eq!(outcome.output(), Some("[7]"), "{outcome:?}");
    assert_eq!(
        store(&host).get(&decided).expect("get").map(|a| a.used),
        Some(true)
    );
}

/// A `once` approval pinned again after its run says so, and leaves no new
/// pending approval behind.
#[tokio::test]
async fn a_used_once_approval_says_it_was_used() {
    let (_state, host, echo) = fresh().await;
    let id = pending(&host, &echo, call("[3]", "claude", "s1")).await;
    decide(&host, &id, &OperatorDecision::AllowOnce);
    let first = host
        .invoke(&echo, call("[3]", "claude", "s1").under_approval(&id))
        .await
        .expect("invoke");
    assert_eq!(first.output(), Some("[3]"), "{first:?}");

    let err = host
        .invoke(&echo, call("[3]", "claude", "s1").under_approval(&id))
        .await
        .expect_err("used up");
    assert!(
        matches!(&err, InvokeError::ApprovalUsed { id: used } if *used == id),
        "{err:?}"
    );
    assert_eq!(err.code(), "approval_used");
    assert!(err.to_string().contains("without `--approval`"), "{err}");
    assert!(
        store(&host).list(true).expect("list").is_empty(),
        "no new pending approval"
    );

    let other = host
        .invoke(&echo, call("[4]", "claude", "s1").under_approval(&id))
        .await
        .expect_err("another input");
    assert!(
        matches!(other, InvokeError::ApprovalMismatch { .. }),
        "{other:?}"
    );
}

#[tokio::test]
async fn a_run_pinned_to_one_approval_refuses_to_run_under_another() {
    let (_state, host, echo) = fresh().await;
    let first = pending(&host, &echo, call("[1]", "claude", "s1")).await;
    decide(&host, &first, &OperatorDecision::AllowSession);

    let err = host
        .invoke(
            &echo,
            call("[2]", "claude", "s1").under_approval("01JUNKJUNKJUNKJUNKJUNKJUNK"),
        )
        .await
        .expect_err("pinned to another approval");
    assert!(
        matches!(err, InvokeError::ApprovalMismatch { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains(&first), "{err}");
}

#[tokio::test]
async fn without_a_state_directory_nothing_can_be_approved() {
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .build()
        .expect("host");
    assert!(host.approvals().is_none());
    let echo = sensitive_echo(&host).await;
    let outcome = host
        .invoke(&echo, Invocation::new("[]"))
        .await
        .expect("invoke");
    assert_eq!(outcome.code(), "approval_unavailable");
}

#[tokio::test]
async fn an_approval_covers_the_grant_it_was_given_for_not_a_wider_one() {
    use airlock::NetworkGrant;
    let state = tempfile::tempdir().expect("tempdir");
    // No name resolves: the tool runs, its requests go nowhere.
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .state_dir(state.path())
        .resolver(std::sync::Arc::new(airlock::egress::StaticResolver::new()))
        .build()
        .expect("host");
    let narrow =
        NetworkGrant::from_toml("[[allow]]\nhost = \"api.test\"\n", "a.toml").expect("grant");
    let wide = NetworkGrant::from_toml("[[allow]]\nsuffix = \"test\"\n", "b.toml").expect("grant");
    let fetch = load_guest_with(&host, "http-get", Grants::none().with_network(narrow)).await;
    let widened = load_guest_with(&host, "http-get", Grants::none().with_network(wide)).await;
    assert_eq!(
        fetch.facts().sha256,
        widened.facts().sha256,
        "one component"
    );

    let input = r#"{"url": "http://api.test/"}"#;
    let id = pending(&host, &fetch, call(input, "claude", "s1")).await;
    decide(&host, &id, &OperatorDecision::AllowSession);
    let admitted = host
        .invoke(&fetch, call(input, "claude", "s1"))
        .await
        .expect("invoke");
    assert_eq!(
        admitted.code(),
        "tool_failed",
        "it ran (and found no DNS answer)"
    );
    // Same component, principal and session, but granted more: ask again.
    let again = pending(&host, &widened, call(input, "claude", "s1")).await;
    assert_ne!(again, id);
    let asked = store(&host).get(&again).expect("read").expect("exists");
    assert!(
        asked.request.grant_summary.contains("suffix"),
        "{}",
        asked.request.grant_summary
    );
}

/// An approval id presented for another tool, another principal or
/// another input does not approve it; the call it was given for still
/// runs under it afterwards.
#[tokio::test]
async fn an_approval_id_approves_only_its_own_tool_principal_and_input() {
    let (_state, host, echo) = fresh().await;
    // The same component under another name, granted the same.
    let twin = load_guest_with(
        &host,
        "echo",
        Grants::none().mark_sensitive().named("echo-twin"),
    )
    .await;
    assert_eq!(twin.facts().sha256, echo.facts().sha256);
    let id = pending(&host, &echo, call("[1]", "claude", "s1")).await;
    decide(&host, &id, &OperatorDecision::AllowOnce);

    for (what, tool, invocation) in [
        ("another tool", &twin, call("[1]", "claude", "s1")),
        ("another principal", &echo, call("[1]", "mallory", "s1")),
        ("another input", &echo, call("[2]", "claude", "s1")),
    ] {
        let refused = host
            .invoke(tool, invocation.clone().under_approval(&id))
            .await
            .expect_err(what);
        assert_eq!(refused.code(), "approval_mismatch", "{what}: {refused:?}");
        assert!(!ran(&host, tool, invocation).await, "{what} is not covered");
    }
    let approval = store(&host).get(&id).expect("get").expect("there");
    assert!(!approval.used, "nothing spent the approval");
    assert!(
        ran(
            &host,
            &echo,
            call("[1]", "claude", "s1").under_approval(&id)
        )
        .await,
        "its own call runs under it"
    );
}

/// A component's limits are part of what its approval binds: widened,
/// the same request needs a new approval.
#[tokio::test]
async fn a_widened_limit_needs_a_new_approval() {
    let state = tempfile::tempdir().expect("tempdir");
    let host = Host::builder()
        .cache_dir(test_cache_dir())
        .state_dir(state.path())
        .fuel_metering(true)
        .build()
        .expect("host");
    let echo = sensitive_echo(&host).await;
    let limited = || Limits {
        timeout: Duration::from_secs(5),
        fuel: Some(100_000_000),
        max_memory_bytes: 32 << 20,
        max_input_bytes: 1 << 10,
        max_output_bytes: 1 << 10,
        ..Limits::default()
    };
    let under = |limits: Limits| call("[1]", "claude", "s1").with_limits(limits);
    let id = pending(&host, &echo, under(limited())).await;
    decide(&host, &id, &FOR_AN_HOUR);
    assert!(ran(&host, &echo, under(limited())).await, "as approved");
    for (what, widened) in [
        (
            "timeout",
            Limits {
                timeout: Duration::from_secs(600),
                ..limited()
            },
        ),
        (
            "memory",
            Limits {
                max_memory_bytes: 256 << 20,
                ..limited()
            },
        ),
        (
            "fuel",
            Limits {
                fuel: Some(100_000_000_000),
                ..limited()
            },
        ),
        (
            "input",
            Limits {
                max_input_bytes: 1 << 20,
                ..limited()
            },
        ),
        (
            "output",
            Limits {
                max_output_bytes: 1 << 20,
                ..limited()
            },
        ),
    ] {
        let outcome = host.invoke(&echo, under(widened)).await.expect("invoke");
        let Outcome::PendingApproval { approval, .. } = outcome else {
            panic!("a wider {what} ran under the old approval: {outcome:?}");
        };
        assert_ne!(approval.id, id, "{what}: a new approval is asked");
    }
}
