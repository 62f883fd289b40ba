//! The compile cache: hits are verified, a changed, swapped or truncated
//! entry is detected and recompiled, never trusted.

use airlock::{CompileEvent, Grants, Host};
use airlock_tests::guest_path;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

/// A host with its own cache directory that records its compile events.
struct Recorder {
    host: Host,
    events: Arc<Mutex<Vec<CompileEvent>>>,
}

impl Recorder {
    fn new(cache: &Path, fuel_metering: bool) -> Self {
        let events = Arc::new(Mutex::new(Vec::new()));
        let sink = Arc::clone(&events);
        let host = Host::builder()
            .cache_dir(cache)
            .fuel_metering(fuel_metering)
            .on_compile(move |event| sink.lock().expect("events").push(event.clone()))
            .build()
            .expect("host");
        Self { host, events }
    }

    /// Loads `guest` and returns whether it came from the cache, with the
    /// events of this load.
    async fn load(&self, guest: &str) -> (bool, Vec<CompileEvent>) {
        self.load_path(guest_path(guest)).await
    }

    /// Like [`Recorder::load`], for the component at `path`.
    async fn load_path(&self, path: &str) -> (bool, Vec<CompileEvent>) {
        self.events.lock().expect("events").clear();
        let tool = self
            .host
            .load(Path::new(path), Grants::none())
            .await
            .expect("loads");
        let outcome = self
            .host
            .invoke(&tool, airlock::Invocation::new(r#"{"how":"error"}"#))
            .await
            .expect("runs");
        assert_ne!(outcome.code(), "trap", "a cached tool must still run");
        (
            tool.compiled_from_cache(),
            self.events.lock().expect("events").clone(),
        )
    }
}

fn entries(cache: &Path) -> Vec<PathBuf> {
    let mut entries: Vec<PathBuf> = std::fs::read_dir(cache)
        .expect("cache dir")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "cwasm"))
        .collect();
    entries.sort();
    entries
}

fn entry_for(cache: &Path, guest: &str) -> PathBuf {
    let bytes = std::fs::read(guest_path(guest)).expect("guest");
    let sha = airlock::Sha256Digest::of(&bytes).to_hex();
    entries(cache)
        .into_iter()
        .find(|p| {
            p.file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with(&sha))
        })
        .expect("an entry for the guest")
}

fn rejected(events: &[CompileEvent]) -> Option<String> {
    events.iter().find_map(|e| match e {
        CompileEvent::CacheRejected { reason, .. } => Some(reason.clone()),
        _ => None,
    })
}

/// Every toolchain's output, the tens-of-megabytes Python and JavaScript
/// components too, is compiled once and then taken from the cache by a new
/// host (a new process would do the same).
#[tokio::test]
async fn every_toolchains_components_load_from_the_cache_the_second_time() {
    for lang in airlock_tests::kits::languages() {
        let kit = airlock_tests::kits::kit(lang, "echo");
        let path = kit.path.to_str().expect("utf-8 path");
        let dir = tempfile::tempdir().expect("tempdir");
        let size = std::fs::metadata(path).expect("component").len() as usize;
        let (cached, events) = Recorder::new(dir.path(), false).load_path(path).await;
        assert!(!cached, "{}", kit.lang);
        assert!(
            matches!(
                events.as_slice(),
                [CompileEvent::Compiling { bytes, .. }, CompileEvent::Compiled { .. }] if *bytes == size
            ),
            "{}: {events:?}",
            kit.lang
        );
        let (cached, events) = Recorder::new(dir.path(), false).load_path(path).await;
        assert!(cached, "{}", kit.lang);
        assert!(
            matches!(events.as_slice(), [CompileEvent::CacheHit { .. }]),
            "{}: {events:?}",
            kit.lang
        );
    }
}

#[tokio::test]
async fn second_load_uses_the_verified_entry() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recorder = Recorder::new(dir.path(), false);
    let (cached, events) = recorder.load("echo").await;
    assert!(!cached);
    assert!(
        matches!(
            events.as_slice(),
            [
                CompileEvent::Compiling { .. },
                CompileEvent::Compiled { .. }
            ]
        ),
        "{events:?}"
    );
    assert_eq!(entries(dir.path()).len(), 1);

    let (cached, events) = recorder.load("echo").await;
    assert!(cached);
    assert!(
        matches!(events.as_slice(), [CompileEvent::CacheHit { .. }]),
        "{events:?}"
    );
}

#[tokio::test]
async fn a_changed_entry_is_detected_recompiled_and_replaced() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recorder = Recorder::new(dir.path(), false);
    recorder.load("trap").await;
    let entry = entry_for(dir.path(), "trap");

    let mut bytes = std::fs::read(&entry).expect("entry");
    let middle = bytes.len() / 2;
    bytes[middle] ^= 0x40;
    std::fs::write(&entry, &bytes).expect("tamper");
    let (cached, events) = recorder.load("trap").await;
    assert!(!cached, "a tampered entry was used");
    assert!(
        rejected(&events)
            .expect("rejection reported")
            .contains("integrity"),
        "{events:?}"
    );

    let (cached, _) = recorder.load("trap").await;
    assert!(cached, "the entry was rewritten");
}

#[tokio::test]
async fn truncated_and_swapped_entries_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let recorder = Recorder::new(dir.path(), false);
    recorder.load("echo").await;
    recorder.load("trap").await;
    let echo_entry = entry_for(dir.path(), "echo");
    let trap_entry = entry_for(dir.path(), "trap");

    // Another component's (valid, authentic) code under this component's name.
    std::fs::copy(&echo_entry, &trap_entry).expect("swap");
    let (cached, events) = recorder.load("trap").await;
    assert!(!cached && rejected(&events).is_some(), "{events:?}");

    std::fs::write(&echo_entry, b"ALCWASM1short").expect("truncate");
    let (cached, events) = recorder.load("echo").await;
    assert!(!cached && rejected(&events).is_some(), "{events:?}");
}

#[tokio::test]
async fn a_differently_configured_engine_keeps_its_own_entries() {
    let dir = tempfile::tempdir().expect("tempdir");
    Recorder::new(dir.path(), false).load("echo").await;
    let (cached, events) = Recorder::new(dir.path(), true).load("echo").await;
    assert!(!cached);
    assert!(
        rejected(&events).is_none(),
        "a miss, not a rejection: {events:?}"
    );
    assert_eq!(entries(dir.path()).len(), 2);
}
