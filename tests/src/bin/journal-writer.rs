//! Appends journal entries and requests approvals from several threads as
//! fast as it can, and prints `ack <seq> <tag>` after each journal append
//! returns and `pending <id>` after each approval request returns, so a
//! test can kill it (-9) mid-write and check that everything acknowledged
//! survived.
//!
//! `journal-writer STATE_DIR THREADS`

use airlock::approvals::{ApprovalRequest, ApprovalStore, GrantBinding};
use airlock::attest::HostKey;
use airlock::journal::{EntryKind, Journal, JournalStore};
use airlock::store::SqliteStore;
use std::io::Write;
use std::sync::Arc;

const USAGE: &str = "usage: journal-writer STATE_DIR THREADS";

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(args.next().ok_or(USAGE)?);
    let threads: usize = args.next().ok_or(USAGE)?.parse()?;
    let store = Arc::new(SqliteStore::open_in(&dir)?);
    let key = Arc::new(HostKey::open_or_create(&dir)?);
    let journal = Arc::new(Journal::new(
        Arc::clone(&store) as Arc<dyn JournalStore>,
        key,
    ));
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let (journal, store) = (Arc::clone(&journal), Arc::clone(&store));
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
                        match store.request(&request) {
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
