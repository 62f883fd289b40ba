//! Benchmark P7: replicas on one PostgreSQL database.
//!
//! 1. Approval round trip across replicas: a call waits on replica B; the
//!    operator decides through replica A; the time from the decision's
//!    commit to B's outcome (LISTEN/NOTIFY wakes B), p50 and p99.
//! 2. Journaled invocation throughput (`each` commit mode, 64 concurrent
//!    calls on 2 workers) on PostgreSQL against SQLite on this machine.
//!
//! Needs the test cluster: `bash .ci/with-postgres cargo bench -p
//! airlock-tests --bench p7_replicas [-- ITERATIONS]`.

use airlock::approvals::OperatorDecision;
use airlock::attest::HostKey;
use airlock::journal::CommitMode;
use airlock::store::{PostgresStore, Store, StoreLocation};
use airlock::{Grants, Host, Invocation, Outcome, Tool};
use airlock_tests::postgres::{TestDatabase, fresh_database};
use airlock_tests::stats;
use std::time::{Duration, Instant, SystemTime};

const CONCURRENT: usize = 64;
const CALLS_PER_TASK: usize = 50;
const INPUT: &str = r#"{"query": "weather in Lisbon"}"#;

/// A host keeping its state in `location`, with `echo` loaded (sensitive:
/// every call needs an approval).
async fn host(
    state: &std::path::Path,
    location: StoreLocation,
    sensitive: bool,
) -> Result<(Host, Tool), Box<dyn std::error::Error>> {
    let host = Host::builder()
        .state_dir(state)
        .store(location)
        .journal_commit(CommitMode::Each)
        .build()?;
    let grants = if sensitive {
        Grants::none().mark_sensitive()
    } else {
        Grants::none()
    };
    let tool = host
        .load(std::path::Path::new(airlock_test_artifacts::ECHO), grants)
        .await?;
    Ok((host, tool))
}

fn shared(db: &TestDatabase, replica: &str) -> StoreLocation {
    StoreLocation::Postgres(Box::new(db.settings(replica)))
}

/// Decides each call through replica A while it waits on replica B.
async fn round_trips(
    db: &TestDatabase,
    iterations: usize,
) -> Result<(), Box<dyn std::error::Error>> {
    let (state_a, state_b) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let key_a = HostKey::open_or_create(state_a.path())?;
    let a = airlock::approvals::kept_in(&Store::Postgres(std::sync::Arc::new(
        PostgresStore::open(&db.settings("a"), &key_a.verifying_key())?,
    )));
    let (b, tool) = host(state_b.path(), shared(db, "b"), true).await?;
    let mut samples = Vec::with_capacity(iterations);
    for n in 0..iterations {
        let input = format!("{{\"n\":{n}}}");
        let waiting = tokio::spawn({
            let (b, tool) = (b.clone(), tool.clone());
            async move {
                let outcome = b
                    .invoke(
                        &tool,
                        Invocation::new(input).wait_for_approval(Duration::from_secs(30)),
                    )
                    .await;
                (outcome, Instant::now())
            }
        });
        let id = loop {
            if let Some(pending) = a.list(true)?.into_iter().next() {
                break pending.id;
            }
            tokio::task::yield_now().await;
        };
        a.decide(
            &id,
            &OperatorDecision::AllowOnce,
            "operator:bench",
            SystemTime::now(),
        )?;
        let decided = Instant::now();
        let (outcome, released) = waiting.await?;
        let outcome = outcome?;
        assert!(
            matches!(outcome, Outcome::Completed { .. }),
            "the call ran: {outcome:?}"
        );
        samples.push(released.duration_since(decided));
    }
    println!(
        "P7 approval round trip across replicas (decided on A, released on B), {iterations} calls"
    );
    println!(
        "  p50 {:8.0} us   p99 {:8.0} us",
        stats::micros(stats::percentile(&mut samples, 0.5)),
        stats::micros(stats::percentile(&mut samples, 0.99))
    );
    Ok(())
}

async fn stores(db: &TestDatabase) -> Result<(), Box<dyn std::error::Error>> {
    let (state_pg, state_sqlite) = (tempfile::tempdir()?, tempfile::tempdir()?);
    let (pg, pg_tool) = host(state_pg.path(), shared(db, "t"), false).await?;
    let (sqlite, sqlite_tool) = host(state_sqlite.path(), StoreLocation::Sqlite, false).await?;
    let (on_pg, on_sqlite) = stats::paired_medians(
        3,
        || stats::calls_per_second(&pg, &pg_tool, INPUT, CONCURRENT, CALLS_PER_TASK),
        || stats::calls_per_second(&sqlite, &sqlite_tool, INPUT, CONCURRENT, CALLS_PER_TASK),
    )
    .await?;
    println!(
        "P7 journaled throughput, commit = each, {CONCURRENT} tasks x {CALLS_PER_TASK} calls on 2 workers, median of 3"
    );
    println!("  SQLite (state directory)                 {on_sqlite:9.0} calls/s");
    println!("  PostgreSQL (shared, Unix socket)         {on_pg:9.0} calls/s");
    println!("  ratio (PostgreSQL / SQLite): {:.2}x", on_pg / on_sqlite);
    Ok(())
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let iterations = stats::iterations(200);
    let db = fresh_database();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()?;
    runtime.block_on(async {
        round_trips(&db, iterations).await?;
        stores(&db).await
    })
}
