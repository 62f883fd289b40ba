//! Appends journal entries from several threads as fast as it can and prints
//! `ack <seq> <tag>` after each append returns, so a test can kill it (-9)
//! mid-write and check that every acknowledged entry survived.
//!
//! `journal-writer STATE_DIR THREADS`

use airlock::attest::HostKey;
use airlock::journal::{EntryKind, Journal, JournalStore};
use airlock::store::SqliteStore;
use std::io::Write;
use std::sync::Arc;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let dir = std::path::PathBuf::from(
        args.next()
            .ok_or("usage: journal-writer STATE_DIR THREADS")?,
    );
    let threads: usize = args
        .next()
        .ok_or("usage: journal-writer STATE_DIR THREADS")?
        .parse()?;
    let store: Arc<dyn JournalStore> = Arc::new(SqliteStore::open_in(&dir)?);
    let key = Arc::new(HostKey::open_or_create(&dir)?);
    let journal = Arc::new(Journal::new(store, key));
    let handles: Vec<_> = (0..threads)
        .map(|thread| {
            let journal = Arc::clone(&journal);
            std::thread::spawn(move || {
                let stdout = std::io::stdout();
                for n in 0u64.. {
                    let tag = format!("{}-{thread}-{n}", std::process::id());
                    let payload = serde_json::json!({ "tag": tag, "padding": "x".repeat(200) });
                    let Ok(stored) = journal.record(&[(EntryKind::Egress, payload)]) else {
                        return;
                    };
                    let mut out = stdout.lock();
                    if writeln!(out, "ack {} {tag}", stored[0].seq)
                        .and_then(|()| out.flush())
                        .is_err()
                    {
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
