//! Limits end only the invocation that breached them, with the right reason,
//! while other invocations on the same host carry on.

use airlock::{
    CancellationToken, Host, Invocation, InvokeError, LimitExceeded, Limits, Outcome, Tool,
};
use airlock_tests::{host, load_guest, metered_host};
use std::time::Duration;

fn limits(change: impl FnOnce(&mut Limits)) -> Limits {
    let mut limits = Limits::default();
    change(&mut limits);
    limits
}

/// Runs `tool` on `input` under `limits`; the run itself must start.
async fn invoke(host: &Host, tool: &Tool, input: &str, limits: Limits) -> Outcome {
    host.invoke(tool, Invocation::new(input).with_limits(limits))
        .await
        .expect("the invocation starts")
}

/// How long a spinner or an echo may run in the spinner tests: a bound on
/// a hung run only. Nothing there is asserted about how long anything took.
const LIVENESS: Duration = Duration::from_secs(120);

/// Spinners started on a host of their own whose pool has one slot for
/// each, once every one holds its slot (the pool says so: nothing is
/// timed). Each comes with its deadline, a cancellation the test fires.
async fn spinners(
    count: u32,
) -> Vec<(
    CancellationToken,
    tokio::task::JoinHandle<Result<Outcome, InvokeError>>,
)> {
    let spin_host: &'static Host = Box::leak(Box::new(
        Host::builder()
            .cache_dir(airlock_tests::test_cache_dir())
            .policies(airlock_tests::permit_all())
            .max_concurrent_instances(count)
            .build()
            .expect("host"),
    ));
    let spin = load_guest(spin_host, "spin-forever").await;
    let mut spinners = Vec::new();
    for _ in 0..count {
        let deadline = CancellationToken::new();
        let run = Invocation::new("{}")
            .with_limits(limits(|l| l.timeout = LIVENESS))
            .cancel_on(deadline.clone());
        let spin = spin.clone();
        let task = tokio::spawn(async move { spin_host.invoke(&spin, run).await });
        spinners.push((deadline, task));
    }
    let held = || {
        spin_host
            .engine()
            .pooling_allocator_metrics()
            .expect("the pooling allocator")
            .component_instances()
    };
    while held() < u64::from(count) {
        if let Some(n) = spinners.iter().position(|(_, task)| task.is_finished()) {
            panic!("spinner {n} ended before it was asked to");
        }
        tokio::task::yield_now().await;
    }
    spinners
}

/// Ends each spinner by its own deadline: it ends `cancelled`, and no other
/// spinner ends with it.
async fn end_each_by_its_own_deadline(
    mut spinners: Vec<(
        CancellationToken,
        tokio::task::JoinHandle<Result<Outcome, InvokeError>>,
    )>,
) {
    for (n, (_, task)) in spinners.iter().enumerate() {
        assert!(!task.is_finished(), "spinner {n} ended before its deadline");
    }
    while let Some((deadline, task)) = spinners.pop() {
        deadline.cancel();
        let outcome = task.await.expect("task").expect("the spinner started");
        assert_eq!(
            outcome.code(),
            "cancelled",
            "spinner {}: {outcome:?}",
            spinners.len()
        );
        for (n, (_, other)) in spinners.iter().enumerate() {
            assert!(!other.is_finished(), "spinner {n} ended with another");
        }
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_spinning_guest_does_not_block_others_even_on_one_thread() {
    let echo = load_guest(host(), "echo").await;
    let spinning = spinners(1).await;
    let outcome = host()
        .invoke(
            &echo,
            Invocation::new("[1]").with_limits(limits(|l| l.timeout = LIVENESS)),
        )
        .await
        .expect("echo runs");
    assert_eq!(outcome.output(), Some("[1]"));
    // The echo answered while the spinner ran.
    end_each_by_its_own_deadline(spinning).await;
}

#[tokio::test]
async fn deadline_reports_the_limit_and_is_not_early() {
    let spin = load_guest(host(), "spin-forever").await;
    let timeout = Duration::from_millis(150);
    let outcome = invoke(host(), &spin, "{}", limits(|l| l.timeout = timeout)).await;
    let Outcome::LimitExceeded { limit, report } = outcome else {
        panic!("expected a limit, got {outcome:?}");
    };
    assert_eq!(limit, LimitExceeded::Deadline { timeout });
    assert!(
        report.duration >= timeout,
        "stopped after {:?}",
        report.duration
    );
}

#[tokio::test]
async fn fuel_is_metered_and_reported() {
    let echo = load_guest(metered_host(), "echo").await;
    let budget = 50_000_000;
    let outcome = invoke(
        metered_host(),
        &echo,
        "{}",
        limits(|l| l.fuel = Some(budget)),
    )
    .await;
    assert_eq!(outcome.code(), "ok");
    let used = outcome.report().fuel_consumed.expect("metered");
    assert!(used > 0 && used < budget, "used {used} of {budget}");

    // The same run is deterministic: the measured amount is enough, half of
    // it is not. (Fuel is checked at loop heads and calls, not per
    // instruction, so the boundary is not exact to one unit.)
    let again = invoke(metered_host(), &echo, "{}", limits(|l| l.fuel = Some(used))).await;
    assert_eq!(again.code(), "ok");
    assert_eq!(again.report().fuel_consumed, Some(used));
    let short = invoke(
        metered_host(),
        &echo,
        "{}",
        limits(|l| l.fuel = Some(used / 2)),
    )
    .await;
    assert_eq!(short.code(), "fuel_exhausted");
}

#[tokio::test]
async fn fuel_needs_a_metered_host() {
    let echo = load_guest(host(), "echo").await;
    let err = host()
        .invoke(
            &echo,
            Invocation::new("{}").with_limits(limits(|l| l.fuel = Some(1))),
        )
        .await
        .expect_err("no metering");
    assert!(matches!(err, InvokeError::FuelNotEnabled), "{err}");
}

#[tokio::test]
async fn memory_limit_is_a_total_and_peak_stays_under_it() {
    let bomb = load_guest(host(), "memory-bomb").await;
    let cap = 16 << 20;
    let outcome = invoke(host(), &bomb, "{}", limits(|l| l.max_memory_bytes = cap)).await;
    let Outcome::LimitExceeded {
        limit: LimitExceeded::Memory { limit, requested },
        report,
    } = outcome
    else {
        panic!("expected memory_limit, got {outcome:?}");
    };
    assert_eq!(limit, cap);
    assert!(requested > cap);
    assert!(report.memory_peak_bytes <= cap && report.memory_peak_bytes > cap / 2);
}

#[tokio::test]
async fn limits_above_the_engine_ceiling_are_refused() {
    let echo = load_guest(host(), "echo").await;
    let err = host()
        .invoke(
            &echo,
            Invocation::new("{}").with_limits(limits(|l| l.max_memory_bytes = 8 << 30)),
        )
        .await
        .expect_err("above ceiling");
    assert_eq!(err.code(), "limit_above_ceiling");
    assert!(err.to_string().contains("max_memory_bytes"), "{err}");
}

#[tokio::test]
async fn input_is_checked_before_the_guest_runs() {
    let echo = load_guest(host(), "echo").await;
    let small = limits(|l| l.max_input_bytes = 8);
    let outcome = invoke(host(), &echo, r#"{"a":123}"#, small.clone()).await;
    assert_eq!(outcome.code(), "input_too_large");
    assert_eq!(
        outcome.report().duration,
        Duration::ZERO,
        "the guest never ran"
    );
    assert_eq!(
        invoke(host(), &echo, r#"{"a":1}"#, small).await.code(),
        "ok"
    );

    let err = host()
        .invoke(&echo, Invocation::new("{not json"))
        .await
        .expect_err("not JSON");
    assert_eq!(err.code(), "invalid_input");
    assert_eq!(err.exit_code(), airlock::exit_code::USAGE);
}

/// Spinners do not starve other calls, and each invocation ends with its
/// own outcome. Eight spinners hold every slot of their own host's pool
/// while eight echoes run on the shared host, all on the runtime's two
/// workers. Every echo answers while every spinner still runs; only then
/// does each spinner's own deadline come, and it ends that spinner alone.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn spinners_do_not_starve_other_calls_and_each_gets_its_own_outcome() {
    let echo = load_guest(host(), "echo").await;
    let spinning = spinners(8).await;
    let echoes: Vec<_> = (0..8)
        .map(|i| {
            let echo = echo.clone();
            let run =
                Invocation::new(format!("[{i}]")).with_limits(limits(|l| l.timeout = LIVENESS));
            tokio::spawn(async move { host().invoke(&echo, run).await })
        })
        .collect();
    for (i, task) in echoes.into_iter().enumerate() {
        let outcome = task.await.expect("task").expect("the echo starts");
        assert_eq!(outcome.code(), "ok", "echo {i}");
        assert_eq!(outcome.output(), Some(format!("[{i}]").as_str()));
    }
    end_each_by_its_own_deadline(spinning).await;
}

#[tokio::test(flavor = "current_thread")]
async fn a_full_pool_is_reported_not_waited_on() {
    let host: &'static airlock::Host = Box::leak(Box::new(
        airlock::Host::builder()
            .cache_dir(airlock_tests::test_cache_dir())
            .max_concurrent_instances(1)
            .build()
            .expect("host"),
    ));
    let spin = load_guest(host, "spin-forever").await;
    let echo = load_guest(host, "echo").await;
    let spinning = tokio::spawn(async move {
        let long = limits(|l| l.timeout = Duration::from_secs(30));
        host.invoke(&spin, Invocation::new("{}").with_limits(long))
            .await
    });
    tokio::task::yield_now().await;

    let err = host
        .invoke(&echo, Invocation::new("{}"))
        .await
        .expect_err("the only slot is taken");
    assert_eq!(err.code(), "host_busy", "{err}");
    spinning.abort();
    let _ = spinning.await;
    let outcome = host
        .invoke(&echo, Invocation::new("{}"))
        .await
        .expect("the slot is free again");
    assert_eq!(outcome.code(), "ok");
}
