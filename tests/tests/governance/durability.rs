//! `kill -9` while several threads append: every entry whose append
//! returned is there, at the sequence number it was given, and the chain
//! still verifies — across many kills of the same journal.

use airlock::journal::JournalStore;
use airlock::store::SqliteStore;
use serde_json::Value;
use std::collections::HashMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const THREADS: &str = "4";
/// How many acknowledgements to wait for before each kill: early (during
/// start-up and the first checkpoint), mid-stream and deep into a run.
const KILL_AFTER: [usize; 12] = [1, 2, 5, 17, 40, 63, 64, 65, 100, 150, 230, 300];

/// Runs the writer until it has acknowledged `kill_after` entries, kills it
/// with SIGKILL, and returns every acknowledgement it printed.
fn write_then_kill(state: &std::path::Path, kill_after: usize) -> Vec<(u64, String)> {
    let mut child = Command::new(env!("CARGO_BIN_EXE_journal-writer"))
        .arg(state)
        .arg(THREADS)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the journal writer");
    let stdout = child.stdout.take().expect("stdout");
    let mut acks = Vec::new();
    let mut lines = BufReader::new(stdout).lines();
    for line in lines.by_ref() {
        acks.push(parse_ack(&line.expect("read an ack")));
        if acks.len() == kill_after {
            break;
        }
    }
    assert_eq!(acks.len(), kill_after, "the writer stopped on its own");
    child.kill().expect("kill -9");
    // Acknowledgements already in the pipe count too.
    acks.extend(lines.map_while(Result::ok).map(|line| parse_ack(&line)));
    let status = child.wait().expect("reap");
    assert!(!status.success(), "the writer was killed, not finished");
    acks
}

fn parse_ack(line: &str) -> (u64, String) {
    let mut parts = line.split(' ');
    match (
        parts.next(),
        parts.next().and_then(|s| s.parse().ok()),
        parts.next(),
    ) {
        (Some("ack"), Some(seq), Some(tag)) => (seq, tag.to_string()),
        _ => panic!("not an acknowledgement: {line:?}"),
    }
}

#[test]
fn every_acknowledged_entry_survives_kill_9_and_the_chain_verifies() {
    let state = tempfile::tempdir().expect("tempdir");
    let mut acknowledged: Vec<(u64, String)> = Vec::new();
    for kill_after in KILL_AFTER {
        acknowledged.extend(write_then_kill(state.path(), kill_after));

        let store = SqliteStore::open_in(state.path()).expect("reopen after the kill");
        let (count, _) = store
            .verify()
            .expect("read")
            .unwrap_or_else(|e| panic!("the chain broke after a kill at {kill_after} acks: {e}"));
        let by_seq: HashMap<u64, String> = store
            .all()
            .expect("entries")
            .into_iter()
            .filter(|e| e.kind == "egress")
            .filter_map(|e| {
                let payload: Value = serde_json::from_str(&e.payload).ok()?;
                Some((e.seq, payload["tag"].as_str()?.to_string()))
            })
            .collect();
        for (seq, tag) in &acknowledged {
            assert_eq!(
                by_seq.get(seq),
                Some(tag),
                "acknowledged entry {seq} ({tag}) is missing after a kill at {kill_after} acks"
            );
        }
        assert!(count as usize >= acknowledged.len());
    }
    let distinct: std::collections::HashSet<_> = acknowledged.iter().map(|(seq, _)| seq).collect();
    assert_eq!(
        distinct.len(),
        acknowledged.len(),
        "no sequence number was handed out twice"
    );
}
