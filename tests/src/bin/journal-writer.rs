//! Appends journal entries and requests approvals from several threads as
//! fast as it can, and prints `ack <seq> <tag>` after each journal append
//! returns and `pending <id>` after each approval request returns, so a
//! test can kill it (-9) mid-write and check that everything acknowledged
//! survived.
//!
//! With a commit mode (`each`, or `batched:ENTRIES`) it instead commits
//! entries as invocations do ([`Journal::commit`]) from as many tasks on a
//! two-worker runtime, and prints `committed <tag>` (each) or
//! `queued <tag>` (batched) when the commit returns.
//!
//! `journal-writer STATE_DIR THREADS [each|batched:ENTRIES]`

use airlock::approvals::{ApprovalRequest, GrantBinding};
use airlock::attest::HostKey;
use airlock::journal::{Batching, Cadence, CommitMode, EntryKind, Journal};
use airlock::store::Store;
use std::io::Write;
use std::sync::Arc;

const USAGE: &str = "usage: journal-writer STATE_DIR THREADS [each|batched:ENTRIES]";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or(USAGE)?);
    let threads: usize = args.next().ok_or(USAGE)?.parse()?;
    let mode = match args.next().as_deref() {
        None => None,
        Some("each") => Some(CommitMode::Each),
        Some(batched) => {
            let entries = batched.strip_prefix("batched:").ok_or(USAGE)?.parse()?;
            Some(CommitMode::Batched(Batching {
                entries,
                ..Batching::default()
            }))
        }
    };
    let store = Store::in_state_dir(&dir)?;
    let approvals = airlock::approvals::kept_in(&store);
    let key = Arc::new(HostKey::open_or_create(&dir)?);
    let journal = Arc::new(Journal::with_commit(
        airlock::journal::kept_in(&store),
        key,
        Cadence::default(),
        mode.unwrap_or_default(),
    ));
    if let Some(mode) = mode {
        return commit(&journal, threads, mode);
    }
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let (journal, approvals) = (Arc::clone(&journal), Arc::clone(&approvals));
            std::thread::spawn(move || {
                let stdout = std::io::stdout();
                for n in 0u64.. {
                    let tag = format!("{}-{thread}-{n}", std::process::id());
                    // Every eighth write is an approval request (which
                    // journals too, in the same transaction).
                    let line = if n % 8 == 7 {
                        let request = ApprovalRequest::new(
                            "Agent::\"writer\"",
                            "",
                            "fetch",
                            "0".repeat(64).as_str(),
                            &["network".into()],
                            GrantBinding::new("any".into(), [tag.clone()]),
                            &format!("{{\"tag\":\"{tag}\"}}"),
                        );
                        match approvals.request(&request) {
                            Ok(approval) => format!("pending {}", approval.id),
                            Err(_) => return,
                        }
                    } else {
                        let payload = serde_json::json!({ "tag": tag, "padding": "x".repeat(200) });
                        match journal.record(&[(EntryKind::Egress, payload)]) {
                            Ok(stored) => format!("ack {} {tag}", stored[0].seq),
                            Err(_) => return,
                        }
                    };
                    let mut out = stdout.lock();
                    if writeln!(out, "{line}").and_then(|()| out.flush()).is_err() {
                        return;
                    }
                }
            })
        })
        .collect();
    for handle in handles {
        let _ = handle.join();
    }
    Ok(())
}

/// Commits from `tasks` tasks as invocations do, printing each
/// acknowledgement.
fn commit(
    journal: &Arc<Journal>,
    tasks: usize,
    mode: CommitMode,
) -> Result<(), Box<dyn std::error::Error>> {
    let said = match mode {
        CommitMode::Each => "committed",
        CommitMode::Batched(_) => "queued",
    };
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .build()?;
    runtime.block_on(async {
        let tasks: Vec<_> = (0..tasks)
            .map(|task| {
                let journal = Arc::clone(journal);
                tokio::spawn(async move {
                    for n in 0u64.. {
                        let tag = format!("{}-{task}-{n}", std::process::id());
                        let payload = serde_json::json!({ "tag": tag, "padding": "x".repeat(200) });
                        if journal
                            .commit(vec![(EntryKind::Egress, payload)])
                            .await
                            .is_err()
                        {
                            return;
                        }
                        let mut out = std::io::stdout().lock();
                        if writeln!(out, "{said} {tag}")
                            .and_then(|()| out.flush())
                            .is_err()
                        {
                            return;
                        }
                    }
                })
            })
            .collect();
        for task in tasks {
            let _ = task.await;
        }
    });
    Ok(())
}
