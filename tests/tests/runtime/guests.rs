//! Every guest against its entry in `fixtures/runtime/guests.toml`:
//! classification, then each case's reason code and output, then proof that
//! the same host still serves `echo`.

use airlock::{Invocation, Outcome, Tool};
use airlock_tests::fixtures::{GuestCase, GuestSpec, guest_table};
use airlock_tests::{guest_path, host, load_guest, metered_host};
use std::collections::BTreeSet;
use std::time::Duration;

/// A case that hangs is a failure, not a stuck suite.
const CASE_TIMEOUT: Duration = Duration::from_secs(120);

macro_rules! guest_test {
    ($name:ident) => {
        #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
        async fn $name() {
            check_guest(&stringify!($name).replace('_', "-")).await;
        }
    };
}

airlock_tests::artifacts::foreach_guest!(guest_test);

#[test]
fn every_fixture_entry_has_a_guest() {
    let built: BTreeSet<&str> = airlock_tests::artifacts::GUESTS
        .iter()
        .map(|(name, _)| *name)
        .collect();
    let table = guest_table();
    let described: BTreeSet<&str> = table.guest.iter().map(|g| g.name.as_str()).collect();
    assert_eq!(
        built, described,
        "guests/ and fixtures/runtime/guests.toml must list the same guests"
    );
}

fn spec_for(name: &str) -> GuestSpec {
    guest_table()
        .guest
        .into_iter()
        .find(|g| g.name == name)
        .unwrap_or_else(|| panic!("fixtures/runtime/guests.toml has no entry for guest `{name}`"))
}

async fn check_guest(name: &str) {
    let spec = spec_for(name);
    let bytes = std::fs::read(guest_path(name)).expect("read guest");
    let info = airlock::inspect(&bytes).expect("guest inspects");
    assert_eq!(info.runs_as(false).as_str(), spec.world, "{name}: world");
    assert_eq!(
        info.runs_as(true).as_str(),
        spec.with_directories.as_deref().unwrap_or(&spec.world),
        "{name}: world with directories"
    );
    let capabilities: Vec<&str> = info.capabilities().iter().map(|c| c.as_str()).collect();
    assert_eq!(capabilities, spec.capabilities, "{name}: capabilities");
    let roles: BTreeSet<&str> = info.imports.iter().map(|i| i.role.as_str()).collect();
    let expected_roles: BTreeSet<&str> = spec.roles.iter().map(String::as_str).collect();
    assert_eq!(roles, expected_roles, "{name}: import roles");
    assert!(
        !spec.case.is_empty(),
        "{name}: the fixture needs at least one case"
    );

    let plain = load_guest(host(), name).await;
    assert_eq!(plain.name(), name, "descriptor name");
    assert_eq!(plain.info(), &info, "load and inspect agree");
    let metered = load_guest(metered_host(), name).await;
    let echo = load_guest(host(), "echo").await;

    for case in &spec.case {
        let (host, tool) = if case.fuel.is_some() {
            (metered_host(), &metered)
        } else {
            (host(), &plain)
        };
        let invocation = Invocation::new(case.input.clone()).with_limits(case.limits());
        let outcome = tokio::time::timeout(CASE_TIMEOUT, host.invoke(tool, invocation))
            .await
            .unwrap_or_else(|_| panic!("{name}: {} did not end", case.input))
            .unwrap_or_else(|e| panic!("{name}: {} could not run: {e}", case.input));
        check_case(name, case, &outcome);
        still_serves(&echo).await;
    }
}

fn check_case(name: &str, case: &GuestCase, outcome: &Outcome) {
    let context = format!(
        "{name} on {}: got {} ({:?})",
        case.input.trim(),
        outcome.code(),
        outcome.message()
    );
    assert_eq!(outcome.code(), case.code, "{context}");
    if let Some(expected) = &case.output {
        assert_eq!(outcome.output(), Some(expected.as_str()), "{context}");
    }
    let output = outcome.output().unwrap_or_default();
    for fragment in &case.output_contains {
        assert!(
            output.contains(fragment.as_str()),
            "{context}: output lacks {fragment:?}: {output}"
        );
    }
    let message = outcome.message().unwrap_or_default();
    for fragment in &case.message_contains {
        assert!(
            message.contains(fragment.as_str()),
            "{context}: message lacks {fragment:?}"
        );
    }
    let report = outcome.report();
    for fragment in &case.stderr_contains {
        assert!(
            report.stderr.text.contains(fragment.as_str()),
            "{context}: stderr lacks {fragment:?}: {}",
            report.stderr.text
        );
    }
    if let Some(dropped) = case.stdout_dropped {
        assert_eq!(
            report.stdout.dropped_bytes, dropped,
            "{context}: stdout dropped"
        );
        assert_eq!(
            report.stdout.text.len(),
            report.limits.max_stdio_bytes,
            "{context}: stdout kept"
        );
    }
    assert_eq!(
        report.limits,
        case.limits(),
        "{context}: the report names the limits used"
    );
}

async fn still_serves(echo: &Tool) {
    let outcome = host()
        .invoke(echo, Invocation::new(r#"{"still":"serving"}"#))
        .await
        .expect("echo runs");
    assert_eq!(outcome.output(), Some(r#"{"still":"serving"}"#));
}
