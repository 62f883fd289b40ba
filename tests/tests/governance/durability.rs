//! `kill -9` a writer 100 times, at random points, while several threads
//! append journal entries and request approvals: every entry whose append
//! returned is there at the sequence number it was given, every approval
//! whose request returned is still pending, the chain and every signed
//! tree head verify, and the journal still extends a head exported early.
//!
//! The same for invocations' commit modes: in `each` nothing acknowledged
//! is lost; in `batched` only the last window is (at most its entries, and
//! for each writer only its latest ones), and the log stays gap-free.

use airlock::approvals::Status;
use airlock::attest::HostKey;
use airlock::journal::head::TreeHead;
use airlock::journal::{Cadence, JournalStore};
use airlock::store::Store;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};

const THREADS: &str = "4";
const KILLS: usize = 100;
/// The most lines to wait for before a kill: the first kills land during
/// start-up, the first head and the first approvals, later ones anywhere.
const MOST_LINES: u64 = 300;

#[derive(Default)]
struct Acknowledged {
    entries: Vec<(u64, String)>,
    pending: Vec<String>,
    /// `committed` or `queued` by a commit mode, in order.
    committed: Vec<String>,
}

impl Acknowledged {
    fn take(&mut self, line: &str) {
        let parts: Vec<&str> = line.split(' ').collect();
        match parts[..] {
            ["ack", seq, tag] => self.entries.push((
                seq.parse().unwrap_or_else(|_| panic!("bad ack {line:?}")),
                tag.to_string(),
            )),
            ["pending", id] => self.pending.push(id.to_string()),
            ["committed" | "queued", tag] => self.committed.push(tag.to_string()),
            _ => panic!("not an acknowledgement: {line:?}"),
        }
    }

    fn len(&self) -> usize {
        self.entries.len() + self.pending.len() + self.committed.len()
    }
}

/// Runs the writer (in commit `mode`, if any) until it has acknowledged
/// `lines` writes, kills it with SIGKILL, and adds every acknowledgement it
/// printed to `acks`.
fn write_then_kill(
    state: &std::path::Path,
    mode: Option<&str>,
    lines: u64,
    acks: &mut Acknowledged,
) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_journal-writer"))
        .arg(state)
        .arg(THREADS)
        .args(mode)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn the journal writer");
    let stdout = child.stdout.take().expect("stdout");
    let mut reader = BufReader::new(stdout).lines();
    let before = acks.len();
    for line in reader.by_ref() {
        acks.take(&line.expect("read an ack"));
        if (acks.len() - before) as u64 == lines {
            break;
        }
    }
    assert_eq!(
        (acks.len() - before) as u64,
        lines,
        "the writer stopped on its own"
    );
    child.kill().expect("kill -9");
    // Acknowledgements already in the pipe count too.
    for line in reader.map_while(Result::ok) {
        acks.take(&line);
    }
    let status = child.wait().expect("reap");
    assert!(!status.success(), "the writer was killed, not finished");
}

/// A small deterministic generator, seeded per run and printed on failure.
fn next(seed: &mut u64) -> u64 {
    *seed ^= *seed << 13;
    *seed ^= *seed >> 7;
    *seed ^= *seed << 17;
    *seed
}

fn seed() -> u64 {
    let mut bytes = [0u8; 8];
    getrandom::fill(&mut bytes).expect("random seed");
    u64::from_le_bytes(bytes) | 1
}

#[test]
fn nothing_acknowledged_is_lost_across_a_hundred_kills() {
    let mut seed = seed();
    let run_seed = seed;
    let state = tempfile::tempdir().expect("tempdir");
    let mut acks = Acknowledged::default();
    let mut exported: Option<TreeHead> = None;
    for kill in 0..KILLS {
        let lines = 1 + next(&mut seed) % MOST_LINES;
        write_then_kill(state.path(), None, lines, &mut acks);
        let context = format!("kill {kill} after {lines} lines (seed {run_seed})");

        let store = Store::in_state_dir(state.path()).expect("reopen after the kill");
        let key = HostKey::open_or_create(state.path()).expect("host key");
        let audit = store
            .audit(&key.verifying_key(), exported.as_ref(), &Cadence::default())
            .expect("read")
            .unwrap_or_else(|e| panic!("the journal does not verify after {context}: {e}"));
        if exported.is_none() {
            // The operator keeps the first head off the machine; every later
            // journal must extend it.
            exported = store.heads().expect("heads").pop();
        } else {
            assert!(audit.extends.is_some(), "{context}");
        }

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
        for (seq, tag) in &acks.entries {
            assert_eq!(
                by_seq.get(seq),
                Some(tag),
                "acknowledged entry {seq} ({tag}) is missing after {context}"
            );
        }
        let approvals = airlock::approvals::kept_in(&store);
        for id in &acks.pending {
            let approval = approvals
                .get(id)
                .expect("read approvals")
                .unwrap_or_else(|| panic!("approval {id} is gone after {context}"));
            assert_eq!(approval.status, Status::Pending, "{context}");
        }
        assert!(audit.entries as usize >= acks.len(), "{context}");
    }
    let distinct: HashSet<_> = acks.entries.iter().map(|(seq, _)| seq).collect();
    assert_eq!(
        distinct.len(),
        acks.entries.len(),
        "no sequence number was handed out twice"
    );
    assert!(exported.is_some(), "a head was signed");
}

/// Kills per commit mode.
const MODE_KILLS: usize = 25;

/// The tags of the journal's entries, after checking its chain and heads.
fn audited_tags(state: &std::path::Path, context: &str) -> HashSet<String> {
    let store = Store::in_state_dir(state).expect("reopen after the kill");
    let key = HostKey::open_or_create(state).expect("host key");
    store
        .audit(&key.verifying_key(), None, &Cadence::default())
        .expect("read")
        .unwrap_or_else(|e| panic!("the journal does not verify after {context}: {e}"));
    store
        .all()
        .expect("entries")
        .into_iter()
        .filter_map(|e| {
            let payload: Value = serde_json::from_str(&e.payload).ok()?;
            Some(payload["tag"].as_str()?.to_string())
        })
        .collect()
}

/// The writing task a tag came from (`PID-TASK-N`).
fn task(tag: &str) -> &str {
    tag.rsplit_once('-').map_or(tag, |(task, _)| task)
}

#[test]
fn commit_modes_keep_their_promise_across_kills() {
    // (mode, how many acknowledged entries a crash may lose)
    for (mode, window) in [("each", 0usize), ("batched:16", 16)] {
        let mut seed = seed();
        let run_seed = seed;
        let state = tempfile::tempdir().expect("tempdir");
        let mut acks = Acknowledged::default();
        let mut lost_somewhere = 0;
        for kill in 0..MODE_KILLS {
            let lines = 1 + next(&mut seed) % MOST_LINES;
            let before = acks.committed.len();
            write_then_kill(state.path(), Some(mode), lines, &mut acks);
            let context = format!("{mode}: kill {kill} after {lines} lines (seed {run_seed})");
            let present = audited_tags(state.path(), &context);

            let this_run = &acks.committed[before..];
            let lost: Vec<&String> = this_run.iter().filter(|t| !present.contains(*t)).collect();
            assert!(
                lost.len() <= window,
                "{} acknowledged entries lost, more than the window of {window}, after {context}: {lost:?}",
                lost.len()
            );
            // Per writer, what is lost is its latest: nothing it wrote
            // after a lost entry survived (the log has no gaps).
            let mut gone: HashSet<&str> = HashSet::new();
            for tag in this_run {
                if present.contains(tag) {
                    assert!(
                        !gone.contains(task(tag)),
                        "{tag} survived after an earlier entry of its writer was lost, after {context}"
                    );
                } else {
                    gone.insert(task(tag));
                }
            }
            lost_somewhere += lost.len();
        }
        if window == 0 {
            assert_eq!(lost_somewhere, 0, "{mode}");
        }
        assert!(
            !acks.committed.is_empty(),
            "{mode}: something was acknowledged"
        );
    }
}
